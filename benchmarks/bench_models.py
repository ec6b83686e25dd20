"""Speed benchmark: training and inference images/s of each architecture at batch 128.

Run with ``make bench`` (or ``python benchmarks/bench_models.py [--quick]``).
Warms up 3 steps before timing (the first steps are 4–20x slower: docs/design.md, "Measured on
these machines"),
then times a fixed number of steps and prints a table. Also reports the cost
of one PGD step (forward + input gradient) relative to a forward pass, the
quantity that budgets ACET training and adversarial evaluation.

This is a benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
import torch.nn.functional as F

from oodlib import models

BATCH = 128


def _time(fn, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def bench(name: str, steps: int) -> dict[str, float | str]:
    model = models.build(name)
    x = torch.rand(BATCH, 1, 28, 28)
    y = torch.randint(10, (BATCH,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step() -> None:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    @torch.no_grad()
    def infer() -> None:
        model(x)

    def pgd_step() -> None:
        xa = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.log_softmax(model(xa), 1).max(1).values.sum(), xa)
        (xa + 0.01 * g.sign()).clamp(0, 1)

    model.train()
    t_train = _time(train_step, steps)
    model.eval()
    t_inf = _time(infer, steps * 3)
    t_pgd = _time(pgd_step, steps)
    return {
        "model": name,
        "params (M)": round(models.num_parameters(model) / 1e6, 2),
        "train img/s": round(BATCH / t_train),
        "infer img/s": round(BATCH / t_inf),
        "PGD step / fwd": round(t_pgd / t_inf, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, skip the 13M-parameter GOOD L")
    ap.add_argument("--models", nargs="*", default=["mlp", "small_cnn", "lenet", "good_l"])
    args = ap.parse_args()
    names = [m for m in args.models if not (args.quick and m == "good_l")]
    steps = 5 if args.quick else 20
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
    rows = [bench(n, steps if n != "good_l" else max(2, steps // 5)) for n in names]
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
