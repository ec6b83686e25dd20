"""The attack inside a certified ball (Meinke & Hein 2020, App. C.2).

Maximises a confidence objective over ``{x : d(x, x0) <= r} ∩ [0, 1]^d`` where ``d`` is the
metric of :class:`oodlib.gmm.Metric`: projected gradient ascent in which every iterate is kept
inside ellipsoid ∩ box (the paper projects once, at the end; :func:`project_ball_box`), started
from random points of the ball (:func:`sample_in_ball`). Used to test CCU's certificates in
chapter 04: an attack must never exceed the certified bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .attacks import Objective, best_over_restarts, log_max_confidence, restarts_batched
from .gmm import Metric, check_batch, check_radius
from .runtime import eval_mode, input_gradient, model_device, progress
from .validation import check_images, check_int, check_positive_int, describe


def _radial(metric: Metric, x: torch.Tensor, x0: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Pull ``x`` towards ``x0`` onto the ball ``d(x, x0) <= r`` (the ℓ2-ball projection in z-space)."""
    dist = metric.transform(x - x0).norm(dim=1)
    t = torch.where(dist > r, r / dist.clamp_min(1e-300), torch.ones_like(dist))
    return x0 + t[:, None] * (x - x0)


def _feasible(metric: Metric, x: torch.Tensor, x0: torch.Tensor, r: torch.Tensor, box: bool = True
              ) -> torch.Tensor:
    """Clip to the box, then pull radially into the ball: a point of ellipsoid ∩ box (``x0`` in the box)."""
    return _radial(metric, x.clamp(0.0, 1.0) if box else x, x0, r)


def project_ellipsoid(metric: Metric, x: torch.Tensor, x0: torch.Tensor, radius: torch.Tensor | float,
                      iters: int = 60) -> torch.Tensor:
    """Euclidean projection of ``x`` (N, d flat) onto the ellipsoid ``{y : d(y, x0) <= R}``.

    With ``w = Uᵀ(x - x0)`` the minimiser of ``||y - x||²`` on the ellipsoid is
    ``y = x0 + U diag(λ/(λ + μ)) w`` where ``μ >= 0`` solves
    ``Σ_i w_i² λ_i/(λ_i + μ)² = R²`` (found by bisection; the upper end is kept, so ``y`` is inside).
    """
    x = x.double()
    x0 = x0.double()
    r = check_radius(radius, len(x)).to(x.device)
    lam = metric.eigvals.to(x.device)
    w = (x - x0) @ metric.eigvecs.to(x.device)
    inside = ((w * w / lam).sum(1)) <= r * r
    lo = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    hi = ((w * w * lam).sum(1)).sqrt() / r.clamp_min(1e-300) + 1e-300
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        f = (w * w * lam / (lam + mid[:, None]) ** 2).sum(1)
        outside = f > r * r
        lo = torch.where(outside, mid, lo)
        hi = torch.where(outside, hi, mid)
    y = x0 + (w * lam / (lam + hi[:, None])) @ metric.eigvecs.to(x.device).T
    return torch.where(inside[:, None], x, y)


def project_ball_box(metric: Metric, x: torch.Tensor, x0: torch.Tensor, radius: torch.Tensor | float,
                     iters: int = 10, box: bool = True) -> torch.Tensor:
    """A point of ``{y : d(y, x0) <= R} ∩ [0, 1]^d`` near ``x`` by alternating projections (App. C.2).

    ``iters`` rounds of the Euclidean projections onto the ellipsoid
    (:func:`project_ellipsoid`) and onto the box (Bauschke & Borwein 1996: both
    sets are convex, the iterates approach their intersection), then one
    feasibility step — clip to the box and pull radially towards ``x0`` — which
    lands exactly in the intersection because ``x0`` lies in the box (a convex
    combination of two box points). Inputs and output are flat ``(N, d)``, float64.
    With ``box=False`` (points in ``R^d``, e.g. the 2-D toy) it is the ellipsoid projection.
    """
    x = x.double()
    x0 = x0.double()
    r = check_radius(radius, len(x)).to(x.device)
    check_positive_int(iters, "iters")
    if not box:
        return _radial(metric, project_ellipsoid(metric, x, x0, r), x0, r)
    for _ in range(iters):
        x = project_ellipsoid(metric, x, x0, r).clamp(0.0, 1.0)
    return _feasible(metric, x, x0, r)


def sample_in_ball(metric: Metric, x0: torch.Tensor, radius: torch.Tensor | float, n: int,
                   generator: torch.Generator | None = None, box: bool = True) -> torch.Tensor:
    """``n`` points per centre drawn uniformly in the ellipsoid ``d(x, x0) <= R`` (N*n, d flat, float64).

    With ``box`` they are made feasible for images (clip to [0,1], radial pull), so
    they lie in ellipsoid ∩ box (no longer uniform there).
    """
    check_batch(x0, "x0")
    n = check_positive_int(n, "n")
    x0f = x0.reshape(len(x0), -1).double()
    r = check_radius(radius, len(x0)).to(x0f.device)
    d = x0f.shape[1]
    dirs = torch.randn(len(x0) * n, d, generator=generator, dtype=torch.float64).to(x0f.device)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    scale = torch.rand(len(x0) * n, generator=generator, dtype=torch.float64).to(x0f.device) ** (1.0 / d)
    rr = r.repeat_interleave(n)
    centres = x0f.repeat_interleave(n, dim=0)
    pts = centres + metric.inverse(dirs * (scale * rr)[:, None])
    return _feasible(metric, pts, centres, rr, box)


def _round_into_ball(metric: Metric, x: torch.Tensor, x0: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``x`` (float64, feasible) as float32 points that are still in the ball (``x0`` float32-exact)."""
    shrink = torch.ones(len(x), dtype=torch.float64, device=x.device)
    for _ in range(60):
        xf = (x0 + shrink[:, None] * (x - x0)).float()
        bad = metric.transform(xf.double() - x0).norm(dim=1) > r
        if not bool(bad.any()):
            return xf
        shrink = torch.where(bad, shrink * (1 - 1e-6) - 1e-9, shrink).clamp_min(0.0)
    return torch.where(bad[:, None], x0.float(), xf)


@dataclass
class BallAttack:
    """Result of :func:`attack_in_ball`: best point per seed, its confidence and objective."""

    x: torch.Tensor  # (N, ...) float32 points, each in its ball (∩ [0,1]^d for images)
    confidence: torch.Tensor  # (N,) max_y softmax(model(x))_y
    objective: torch.Tensor  # (N,) objective value at x
    distance: torch.Tensor  # (N,) d(x, x0), <= radius


def attack_in_ball(
    model: nn.Module,
    metric: Metric,
    x0: torch.Tensor,
    radius: torch.Tensor | float,
    objective: Objective = log_max_confidence,
    *,
    confidence: Callable[[torch.Tensor], torch.Tensor] | None = None,
    steps: int = 500,
    restarts: int = 50,
    step_size: float | torch.Tensor = 3.0,
    proj_rounds: int = 0,
    box: bool = True,
    generator: torch.Generator | None = None,
    show_progress: bool = True,
    batch_restarts: bool | None = None,
) -> BallAttack:
    """Maximise ``objective(model(x))`` over ``{x : d(x, x0) <= R} ∩ [0, 1]^d`` (App. C.2).

    ``model`` and ``objective`` follow :mod:`oodlib.attacks`' convention (an objective of the
    outputs, ``objective(z, y) -> Tensor[N]``), so a :class:`oodlib.detectors.Detector` is attacked
    through its ``model`` and ``objective`` (CCU through its log-excess module). ``confidence(x)``
    reports the confidence at the returned points (default: the max softmax of ``model(x)``).

    Normalised-gradient (ℓ2) steps in the transformed space ``z = T x``, where the
    ball is Euclidean: ``z ← Proj_ball(z + η ∇_z/||∇_z||)``, then back to image
    space and mapped into ellipsoid ∩ box — by ``proj_rounds`` rounds of alternating
    Euclidean projections (:func:`project_ball_box`) or, with ``proj_rounds=0``
    (cheaper, a weaker attack), only by clipping and the radial pull — so *every*
    iterate is feasible and counts (the paper projects once, after the last step,
    by 10 alternating projections; our iterates never leave the set). The step
    size starts at ``step_size`` (3 in the paper) per seed, grows ×1.1 after a
    step that improves the objective and is halved (the step undone:
    backtracking) after one that does not. Each restart starts at a uniform random
    point of the ellipsoid; the seed itself is a candidate too; the best point
    over all restarts is returned, rounded to float32 and shrunk towards ``x0``
    if rounding left it outside the ball. One forward–backward pass per step.
    ``box=False`` drops the ``[0, 1]^d`` constraint (points in ``R^d``, e.g. the 2-D toy).
    The restarts run one after another on the CPU and as one batch on CUDA (``batch_restarts``,
    :func:`oodlib.attacks.restarts_batched`; every step works per point, so both agree up to float
    rounding), the starts drawn in the same order either way.
    """
    if box:
        check_images(x0, "x0")
    else:
        check_batch(x0, "x0")
    check_positive_int(steps, "steps")
    check_positive_int(restarts, "restarts")
    if not callable(objective):
        raise ValueError(f"expected objective as a callable (z, y) -> Tensor[N], got {objective!r}")
    check_int(proj_rounds, "proj_rounds", low=0)
    n, shape = len(x0), x0.shape
    r = check_radius(radius, n)
    eta0 = check_radius(step_size, n)
    if not bool((eta0 > 0).all()):
        raise ValueError(f"expected step_size > 0 (a number or one per seed), got {describe(eta0)}")
    dev = model_device(model)
    mdev = metric.eigvals.device
    x0f = x0.reshape(n, -1).double().to(mdev)
    r = r.to(mdev)
    runs = restarts if restarts_batched(batch_restarts, dev) else 1
    x0r, rr, eta0r = x0f.repeat(runs, 1), r.repeat(runs), eta0.to(mdev).repeat(runs)
    with eval_mode(model):

        def evaluate(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            val, g = input_gradient(lambda v: objective(model(v), None),
                                    x.float().reshape((len(x),) + tuple(shape[1:])).to(dev))
            val = val.double().to(mdev)
            return torch.nan_to_num(val, nan=-math.inf), g.reshape(len(x), -1).double().to(mdev)

        best_x = x0f.clone()
        best_val, _ = evaluate(x0f)
        bar = progress(total=restarts * steps, desc="attack in ball", leave=False,
                       disable=not show_progress)
        for _ in range(0, restarts, runs):
            x = torch.cat([sample_in_ball(metric, x0f, r, 1, generator, box) for _ in range(runs)]).to(mdev)
            val, g = evaluate(x)
            run_x, run_val = x.clone(), val.clone()  # each row's best: the start counts
            eta = eta0r.clone()
            for _ in range(steps):
                gz = metric.grad_to_z(g)
                gz = gz / gz.norm(dim=1, keepdim=True).clamp_min(1e-300)
                u = metric.transform(x - x0r) + eta[:, None] * gz
                nu = u.norm(dim=1)
                u = u * torch.where(nu > rr, rr / nu.clamp_min(1e-300), torch.ones_like(nu))[:, None]
                cand = x0r + metric.inverse(u)
                cand = (project_ball_box(metric, cand, x0r, rr, proj_rounds, box) if proj_rounds
                        else _feasible(metric, cand, x0r, rr, box))
                cval, cg = evaluate(cand)
                acc = cval > val
                x = torch.where(acc[:, None], cand, x)
                g = torch.where(acc[:, None], cg, g)
                val = torch.where(acc, cval, val)
                eta = torch.where(acc, eta * 1.1, eta / 2)
                better = val > run_val
                run_x[better], run_val[better] = x[better], val[better]
                bar.update(runs)
            best_x, best_val = best_over_restarts(best_x, best_val, run_x, run_val, runs)
        bar.close()
        x_adv = _round_into_ball(metric, best_x, x0f, r)
        with torch.no_grad():
            xa = x_adv.reshape(shape).to(dev)
            conf = (torch.softmax(model(xa).double(), dim=1).max(dim=1).values if confidence is None
                    else confidence(xa)).double().cpu()
            val = objective(model(xa), None).detach().double().cpu()
        dist = metric.distance(x_adv.double(), x0f).cpu()
        return BallAttack(x_adv.reshape(shape).cpu(), conf, val, dist)
