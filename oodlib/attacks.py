"""Projected gradient attacks with a pluggable objective.

One routine, :func:`pgd`, serves every worst-case evaluation and adversarial
training scheme in the book. It *maximises* a per-sample objective
``objective(logits, y) -> Tensor[N]`` over the ℓ∞ ball of radius ``eps``
around ``x`` intersected with the image box [0, 1]:

    max_{u : ||u - x||_∞ <= eps, u ∈ [0, 1]^d}  objective(f(u), y).

Objectives shipped here:

* :func:`log_max_confidence` — ``max_k log softmax_k f(u)``, the inner problem
  of ACET (Hein et al. 2019, eq. 2 inside eq. 4). Maximised around a noise
  image it gives *adversarial noise* (Hein et al. 2019, Table 1 "Adv. Noise").
* :func:`max_confidence` — ``max_k softmax_k f(u)`` (same maximiser, the
  gradient saturates earlier; kept for comparison).
* :func:`cross_entropy_objective` — ``CE(f(u), y)``, the classical adversarial
  sample of Madry et al. (2018) (Hein et al. 2019, Table 1 "Adv. Samples").

Design choices (docs/design.md, pitfall 4):

* the model is put in eval mode for the attack (batch norm statistics frozen,
  no dropout) and its previous mode is restored afterwards;
* gradients are taken with :func:`torch.autograd.grad` with respect to the
  input only, so nothing accumulates in the parameters' ``.grad``;
* the objective is evaluated at *every* iterate (including the clean point
  and each restart's start) and the best iterate per sample is returned, so
  the returned point is never worse than ``x`` itself;
* restarts run one after another on the CPU and as one batch on CUDA
  (:func:`restarts_batched`); either way the best iterate over all of them is
  kept, ties going to the earlier restart (:func:`best_over_restarts`), which
  :mod:`oodlib.apgd` and :mod:`oodlib.ball_attack` share.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .runtime import eval_mode, input_gradient, model_device
from .validation import check_choice, check_images, check_number, check_positive_int, describe

Objective = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

NORMS = ("linf",)


# --------------------------------------------------------------------------- objectives


def log_max_confidence(logits: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample ``max_k log softmax_k(logits)`` (Hein et al. 2019, eq. 2).

    The ACET inner problem (eq. 4) and adversarial noise maximise it; ``y`` is ignored.
    Computed with ``log_softmax`` so the gradient does not vanish numerically
    before the confidence is exactly 1.
    """
    return torch.log_softmax(logits, dim=1).max(dim=1).values


def log_max_confidence_at(temperature: float) -> Objective:
    """``max_k log softmax_k(z / T)``: the white-box objective of ODIN's temperature-scaled score
    (Liang et al. 2018, eq. 1; Chen et al. 2021, App. B.4); ``T = 1`` is :func:`log_max_confidence`."""
    t = check_number(temperature, "temperature", low=0, low_open=True)
    return lambda z, y=None: log_max_confidence(z / t)


def max_confidence(logits: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample maximal softmax probability ``max_k softmax_k(logits)``; ``y`` is ignored."""
    return torch.softmax(logits, dim=1).max(dim=1).values


def cross_entropy_objective(logits: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Per-sample cross-entropy ``-log softmax_y(logits)`` (adversarial samples, Madry et al. 2018)."""
    if y is None:
        raise ValueError("cross_entropy_objective needs labels: pass y=<Tensor[N] of class indices>")
    return F.cross_entropy(logits, y, reduction="none")


# --------------------------------------------------------------------------- restarts


def restarts_batched(batch_restarts: bool | None, device: torch.device) -> bool:
    """Whether an attack runs its R restarts as one batch of R·N points rather than one after another.

    ``None`` (every attack's default) batches on CUDA only, where one batch of R·N fills the GPU
    better than R batches of N; on the CPU the restarts run one after another, as they always did,
    so the ``ci`` numbers do not move (a batch of another size may sum in another order). Both ways
    return the best iterate over every restart with ties to the earlier restart
    (:func:`best_over_restarts`); they agree up to float rounding (tests/test_attacks.py).
    """
    if batch_restarts is None:
        return torch.device(device).type == "cuda"
    if not isinstance(batch_restarts, bool):
        raise ValueError(f"expected batch_restarts as True, False or None (batch on CUDA), "
                         f"got {describe(batch_restarts)}")
    return batch_restarts


def running_best(n: int, like: torch.Tensor) -> torch.Tensor:
    """Per-row best values to start a run with: ``-inf`` (so its first finite value wins), ``like``'s
    dtype and device."""
    return torch.full((n,), -math.inf, dtype=like.dtype, device=like.device)


def best_over_restarts(best_x: torch.Tensor, best_val: torch.Tensor, xs: torch.Tensor, vals: torch.Tensor,
                       runs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold ``runs`` batched runs into the best so far, in run order, as running them in turn would.

    Rows ``r·N … (r+1)·N − 1`` of ``xs`` / ``vals`` are run ``r``'s best point and value for the
    ``N`` points of ``best_x`` / ``best_val``; a run replaces the best only where it is strictly
    better (ties keep the earlier run, NaN never wins). Returns the new ``(best_x, best_val)``.
    """
    n = len(best_val)
    if len(vals) != runs * n or len(xs) != runs * n:
        raise ValueError(f"expected {runs} runs of {n} rows ({runs * n}), got {len(xs)} points and "
                         f"{len(vals)} values")
    shape = (n,) + (1,) * (best_x.ndim - 1)
    for r in range(runs):
        v = vals[r * n:(r + 1) * n]
        better = v > best_val
        best_val = torch.where(better, v, best_val)
        best_x = torch.where(better.view(shape), xs[r * n:(r + 1) * n], best_x)
    return best_x, best_val


# --------------------------------------------------------------------------- PGD


def _check_values(val: torch.Tensor, n: int) -> torch.Tensor:
    if not isinstance(val, torch.Tensor) or val.shape != (n,):
        got = tuple(val.shape) if isinstance(val, torch.Tensor) else type(val).__name__
        raise ValueError(f"expected the objective to return one value per sample, shape ({n},), got {got}")
    return val


def _keep_better(best_x: torch.Tensor, best_val: torch.Tensor, u: torch.Tensor, val: torch.Tensor) -> None:
    """In place: rows where ``val`` is strictly better (NaN never wins) take ``u`` and ``val``."""
    better = val > best_val
    if better.any():
        best_val[better] = val[better]
        best_x[better] = u[better]


def _evaluate(
    model: nn.Module, u: torch.Tensor, objective: Objective, y: torch.Tensor | None, with_grad: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Objective values ``Tensor[N]`` at ``u`` and, if asked, their input gradient."""
    if not with_grad:
        with torch.no_grad():
            val = _check_values(objective(model(u), y), len(u))
        return val.detach(), None
    return input_gradient(lambda v: _check_values(objective(model(v), y), len(v)), u)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    objective: Objective,
    *,
    eps: float,
    steps: int,
    step_size: float,
    norm: str = "linf",
    restarts: int = 1,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    y: torch.Tensor | None = None,
    batch_restarts: bool | None = None,
) -> torch.Tensor:
    """Projected gradient *ascent* on ``objective`` in the ℓ∞ ball of radius ``eps`` around ``x``.

    Each step is ``u <- Proj(u + step_size * sign(∇_u objective(f(u), y)))`` where
    ``Proj`` clips to ``[x - eps, x + eps] ∩ [0, 1]`` (the PGD of Madry et al. 2018
    as used for ACET, Hein et al. 2019 eq. 4, with p = ∞).

    Args:
        model: classifier returning logits ``(N, K)``; it runs on its own device.
        x: images ``(N, C, H, W)`` in [0, 1] (the centres of the balls).
        objective: ``objective(logits, y) -> Tensor[N]``, maximised per sample.
        eps: ℓ∞ radius (>= 0; 0 returns ``x``).
        steps: gradient steps per restart (> 0).
        step_size: ℓ∞ step length (> 0).
        norm: only ``"linf"`` for now.
        restarts: independent runs; the best iterate over all of them is kept.
        random_start: start each run uniformly in the ball (clipped to [0, 1]);
            with ``False`` the first run starts at ``x`` and later runs start at random.
        generator: CPU generator for the random starts (global RNG when ``None``).
        y: labels passed to the objective (needed by :func:`cross_entropy_objective`).
        batch_restarts: run the restarts as one batch (default: on CUDA only,
            :func:`restarts_batched`); the random starts are drawn in the same order either way.

    Returns:
        The best iterate per sample (the clean point, every start and every step
        are candidates), detached, on the device and dtype of ``x``.
    """
    check_choice(norm, NORMS, "norm")
    check_images(x, "x")
    eps = check_number(eps, "eps", low=0)
    check_positive_int(steps, "steps")
    step_size = check_number(step_size, "step_size", low=0, low_open=True)
    check_positive_int(restarts, "restarts")
    if not callable(objective):
        raise ValueError(f"expected objective as a callable (logits, y) -> Tensor[N], got {objective!r}")
    if y is not None and (not isinstance(y, torch.Tensor) or y.shape[:1] != x.shape[:1]):
        raise ValueError(f"expected y as a tensor with {len(x)} entries, got {y!r}")

    dev = model_device(model)
    x0 = x.detach().to(dev)
    yd = None if y is None else y.to(dev)
    lo = (x0 - eps).clamp(0.0, 1.0)
    hi = (x0 + eps).clamp(0.0, 1.0)
    with eval_mode(model):
        best = x0.clone()
        best_val, _ = _evaluate(model, x0, objective, yd, with_grad=False)
        if eps == 0.0:
            return best.to(x.device)
        runs = restarts if restarts_batched(batch_restarts, dev) else 1
        rep = (runs,) + (1,) * (x0.ndim - 1)
        lo_r, hi_r = lo.repeat(rep), hi.repeat(rep)
        y_r = None if yd is None else yd.repeat(runs)
        for first in range(0, restarts, runs):
            starts = []
            for r in range(first, first + runs):
                if r == 0 and not random_start:
                    starts.append(x0.clone())
                else:
                    noise = torch.rand(x0.shape, generator=generator, dtype=x0.dtype)
                    starts.append(torch.minimum(torch.maximum(x0 + (2 * noise.to(dev) - 1) * eps, lo), hi))
            u = torch.cat(starts)
            row_best, row_val = u.clone(), running_best(len(u), best_val)
            for _ in range(steps):
                val, grad = _evaluate(model, u, objective, y_r, with_grad=True)
                _keep_better(row_best, row_val, u, val)
                u = torch.minimum(torch.maximum(u + step_size * grad.sign(), lo_r), hi_r)
            val, _ = _evaluate(model, u, objective, y_r, with_grad=False)
            _keep_better(row_best, row_val, u, val)
            best, best_val = best_over_restarts(best, best_val, row_best, row_val, runs)
        return best.to(x.device)


def adversarial_noise(
    model: nn.Module,
    x_seed: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float,
    restarts: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Adversarial noise (Hein et al. 2019, eq. 4 at test time): the point of highest
    log max-confidence within ``eps`` (ℓ∞) of each noise seed, found by :func:`pgd`
    with random starts (Hein: ε = 0.3, 200 steps of 0.0075 at test time).
    """
    return pgd(model, x_seed, log_max_confidence, eps=eps, steps=steps, step_size=step_size,
               restarts=restarts, random_start=True, generator=generator)
