"""Speed benchmark: the cost of an IBP bound pass relative to a plain forward pass.

GOOD (Bitterwolf et al. 2020) trains on interval bounds, so the bound pass
(eq. 3 through every layer but the last, then the K² logit-difference bounds of
eq. 5) sets the price of GOOD training and of the guaranteed AUC. It computes
two products per affine layer (``W·mid`` and ``|W|·rad``), so the goal is at
most ~2.5x a forward pass. Also timed: the bound pass with gradients (what GOOD
training back-propagates through) against a forward + backward.

Run ``python benchmarks/bench_ibp.py [--quick] [--batch 128]``. Warms up 3
steps before timing (the first steps are 4–20x slower: docs/design.md, "Measured on these
machines"), then prints
a table. A benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from oodlib import ibp, models


def _time(fn, steps: int, warmup: int = 3) -> float:  # noqa: ANN001 - any callable
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(sorted(times)[len(times) // 2])  # median: robust to other jobs on the machine


def bench(name: str, steps: int, batch: int, eps: float = 0.1) -> dict[str, float | str]:
    model = models.build(name).eval()
    x = torch.rand(batch, 1, 28, 28)

    @torch.no_grad()
    def forward() -> None:
        model(x)

    @torch.no_grad()
    def bound() -> None:
        ibp.logit_diff_upper(model, x, eps)

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        model(x).logsumexp(1).sum().backward()

    def bound_backward() -> None:
        model.zero_grad(set_to_none=True)
        ibp.cub_loss(ibp.logit_diff_upper(model, x, eps)).sum().backward()

    t_fwd, t_ibp = _time(forward, steps), _time(bound, steps)
    t_fb, t_ibp_b = _time(forward_backward, steps), _time(bound_backward, steps)
    return {
        "model": name,
        "params (M)": round(models.num_parameters(model) / 1e6, 2),
        "forward ms": round(1e3 * t_fwd, 2),
        "IBP pass ms": round(1e3 * t_ibp, 2),
        "IBP / fwd": round(t_ibp / t_fwd, 2),
        "fwd+bwd ms": round(1e3 * t_fb, 2),
        "IBP+bwd ms": round(1e3 * t_ibp_b, 2),
        "IBP+bwd / fwd+bwd": round(t_ibp_b / t_fb, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small models only, few steps")
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    names = ["mlp", "small_cnn"] if args.quick else ["mlp", "small_cnn", "lenet", "good_l"]
    steps = 5 if args.quick else 10
    torch.manual_seed(0)
    rows = [bench(n, steps if n != "good_l" else 3, args.batch) for n in names]
    print(f"IBP bound pass (eq. 3 + eq. 5, eps=0.1) vs plain forward, batch {args.batch}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; goal: IBP / fwd <= 2.5")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
