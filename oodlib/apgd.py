"""An attack on the confidence around OOD points that tries hard not to overestimate robustness.

The adversarial AUC (AAUC) of Bitterwolf, Meinke & Hein (2020, §4.1) needs, for
every OOD point ``x``, a *lower* bound on

    max_{u : ||u - x||_∞ <= ε, u ∈ [0, 1]^d}  Conf_f(u).

A weak attack makes a model look robust. Around OOD inputs this is easy to get
wrong: all ReLUs of a layer can be off in a whole region, so the gradient is zero
and plain PGD from the clean point never moves (docs/design.md, pitfall 4). The
paper therefore uses Auto-PGD (Croce & Hein 2020) with several starting points,
restarts and transfer attacks, and reports the worst case per point. Ours,
:func:`max_confidence_attack`:

* maximises ``log Conf_f(u) = max_k log softmax_k f(u)`` (:func:`oodlib.attacks.log_max_confidence`);
* runs from several starts: the clean point, a **low-contrast** start (every pixel
  moved by ε towards mid-grey 0.5, the flattest image in the ball), and
  ``restarts`` starts drawn uniformly in the ball ∩ [0, 1]^d;
* each run is APGD (Croce & Hein 2020, Alg. 1): step size η starting at 2ε,
  momentum α = 0.75, and at the checkpoints ``w_j`` the step is halved (and the run
  restarted from its best point) when fewer than ρ = 0.75 of the steps since the
  last checkpoint increased the objective, or when neither η nor the best value
  changed since the last checkpoint;
* optional extra ``candidates`` (e.g. points found on another model: a transfer
  attack) are projected onto the feasible set and evaluated too;
* the result is the best point per sample over every iterate of every run, the
  clean point and the candidates included, so it is never below the clean
  confidence. Every iterate is projected onto ``[x - ε, x + ε] ∩ [0, 1]^d``.

This lives apart from :mod:`oodlib.attacks` (whose :func:`~oodlib.attacks.pgd` is
the fixed-step PGD of Hein et al.) and imports its objectives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .attacks import Objective, log_max_confidence, restarts_batched
from .runtime import eval_mode, input_gradient, model_device, progress
from .validation import check_images, check_int, check_number, check_positive_int, describe

__all__ = ["AttackResult", "apgd", "apgd_checkpoints", "low_contrast_start", "max_confidence_attack",
           "uniform_start", "STARTS"]

STARTS = ("clean", "low_contrast", "uniform")


def apgd_checkpoints(steps: int) -> list[int]:
    """APGD's checkpoints ``w_j = ceil(p_j · steps)``: ``p_0 = 0``, ``p_1 = 0.22``,
    ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` (Croce & Hein 2020, §3.2)."""
    check_positive_int(steps, "steps")
    p = [0.0, 0.22]
    while p[-1] < 1.0:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    ws = sorted({math.ceil(round(q * steps, 9)) for q in p if 0 < q <= 1.0})
    return [w for w in ws if 0 < w < steps]


def low_contrast_start(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Every pixel moved by (at most) ε towards 0.5: the lowest-contrast image in the ball ∩ [0,1]^d."""
    eps = check_number(eps, "eps", low=0)
    return x + (0.5 - x).clamp(-eps, eps)


def uniform_start(x: torch.Tensor, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A point drawn uniformly in the ball ``[x - ε, x + ε]``, clipped to [0, 1]."""
    eps = check_number(eps, "eps", low=0)
    noise = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return (x + (2 * noise - 1) * eps).clamp(0.0, 1.0)


def _value_and_grad(model: nn.Module, u: torch.Tensor, objective: Objective) -> tuple[torch.Tensor,
                                                                                    torch.Tensor]:
    return input_gradient(lambda v: objective(model(v), None), u)


def apgd(
    model: nn.Module,
    x: torch.Tensor,
    start: torch.Tensor,
    eps: float,
    steps: int,
    objective: Objective = log_max_confidence,
    alpha: float = 0.75,
    rho: float = 0.75,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One APGD run (Croce & Hein 2020, Alg. 1) maximising ``objective`` from ``start``.

    The feasible set is ``[x - ε, x + ε] ∩ [0, 1]^d``. Per sample: step size
    ``η = 2ε``, ``z = P(u_k + η sign ∇)``, ``u_{k+1} = P(u_k + α(z - u_k) + (1-α)(u_k - u_{k-1}))``
    (plain step for k = 0); at each checkpoint η is halved and the run restarts
    from its best point when (1) fewer than ``ρ`` of the steps since the last
    checkpoint increased the objective, or (2) η and the best value are both
    unchanged since the last checkpoint. Returns ``(best point, best value)``,
    the start counted as a candidate. The model should be in eval mode.
    """
    lo, hi = (x - eps).clamp(0.0, 1.0), (x + eps).clamp(0.0, 1.0)

    def proj(u: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(u, lo), hi)

    n = len(x)
    shape = (n,) + (1,) * (x.ndim - 1)
    checkpoints = set(apgd_checkpoints(steps))
    u = proj(start)
    val, grad = _value_and_grad(model, u, objective)
    best_u, best_val = u.clone(), val.clone()
    eta = torch.full((n,), 2 * eps, dtype=x.dtype, device=x.device)
    eta_at_last = eta.clone()
    best_at_last = best_val.clone()
    successes = torch.zeros(n, device=x.device)
    last_w = 0
    u_prev = u
    prev_val = val
    for k in range(steps):
        z = proj(u + eta.view(shape) * grad.sign())
        u_new = z if k == 0 else proj(u + alpha * (z - u) + (1 - alpha) * (u - u_prev))
        u_prev, u = u, u_new
        val, grad = _value_and_grad(model, u, objective)
        successes += (val > prev_val).float()
        prev_val = val
        better = val > best_val  # NaN never wins
        best_val = torch.where(better, val, best_val)
        best_u = torch.where(better.view(shape), u, best_u)
        w = k + 1
        if w in checkpoints:
            cond1 = successes < rho * (w - last_w)
            cond2 = (eta == eta_at_last) & (best_val == best_at_last)
            reduce = cond1 | cond2
            eta_at_last = eta.clone()
            best_at_last = best_val.clone()
            eta = torch.where(reduce, eta / 2, eta)
            if reduce.any():  # restart the halved runs from their best point, no momentum
                r = reduce.view(shape)
                u = torch.where(r, best_u, u)
                u_prev = torch.where(r, best_u, u_prev)
                val_b, grad_b = _value_and_grad(model, u, objective)
                grad = torch.where(r, grad_b, grad)
                prev_val = torch.where(reduce, val_b, prev_val)
            successes.zero_()
            last_w = w
    return best_u, best_val


@dataclass
class AttackResult:
    """Outcome of :func:`max_confidence_attack` (all on the CPU).

    ``x_adv``: best point per sample; ``confidence``: its max-softmax confidence
    (>= ``clean``); ``clean``: confidence at ``x``; ``by_start``: best confidence of
    each start (name -> Tensor[N]), to see which start found the worst case.
    """

    x_adv: torch.Tensor
    confidence: torch.Tensor
    clean: torch.Tensor
    by_start: dict[str, torch.Tensor]


def max_confidence_attack(
    model: nn.Module,
    x: torch.Tensor,
    eps: float,
    steps: int = 100,
    restarts: int = 1,
    starts: Sequence[str] = ("clean", "low_contrast", "uniform"),
    candidates: Sequence[torch.Tensor] = (),
    generator: torch.Generator | None = None,
    batch_size: int = 500,
    objective: Objective = log_max_confidence,
    batch_restarts: bool | None = None,
) -> AttackResult:
    """Lower bound on the worst-case confidence in ``B_∞(x, ε) ∩ [0,1]^d``, per point.

    Runs :func:`apgd` from each start in ``starts`` (``"uniform"`` is repeated
    ``restarts`` times with fresh draws) and evaluates any ``candidates``
    (tensors shaped like ``x``, projected onto the feasible set first: a transfer
    attack). The worst case per point over all of them *and the clean point*
    is returned. ``eps = 0`` returns the clean point. The runs go one after another on the CPU and
    as one batch on CUDA (``batch_restarts``, :func:`oodlib.attacks.restarts_batched`): APGD works
    per point, so both give the same points up to float rounding.
    """
    check_images(x, "x")
    eps = check_number(eps, "eps", low=0)
    check_positive_int(steps, "steps")
    check_positive_int(batch_size, "batch_size")
    check_int(restarts, "restarts", low=0)
    bad = [s for s in starts if s not in STARTS]
    if bad or not starts:
        raise ValueError(f"expected starts as a non-empty subset of {list(STARTS)}, got {list(starts)}")
    for c in candidates:
        if not isinstance(c, torch.Tensor) or c.shape != x.shape:
            raise ValueError(f"expected every candidate shaped like x {tuple(x.shape)}, got {describe(c)}")
    runs = [s for s in starts if s != "uniform"] + (["uniform"] * restarts if "uniform" in starts else [])
    dev = model_device(model)
    with eval_mode(model):
        adv, conf, clean = [], [], []
        by_start: dict[str, list[torch.Tensor]] = {}
        bar = progress(range(0, len(x), batch_size), desc=f"APGD eps={eps:g}", leave=False)
        for i in bar:
            xb = x[i : i + batch_size].to(dev)
            lo, hi = (xb - eps).clamp(0, 1), (xb + eps).clamp(0, 1)
            with torch.no_grad():
                best_val = log_max_confidence(model(xb), None)
            clean.append(best_val.exp().cpu())
            best_u = xb.clone()
            per_start: dict[str, torch.Tensor] = {}
            tried: list[tuple[str, torch.Tensor, torch.Tensor]] = []  # (name, point, log-confidence)
            if eps > 0:
                for j, c in enumerate(candidates):
                    u = torch.minimum(torch.maximum(c[i : i + batch_size].to(dev), lo), hi)
                    with torch.no_grad():
                        tried.append((f"candidate {j}", u, log_max_confidence(model(u), None)))
                # every start drawn first, in run order (APGD itself draws nothing)
                starts_ = [xb if name == "clean" else low_contrast_start(xb, eps) if name == "low_contrast"
                           else uniform_start(xb, eps, generator) for name in runs]
                if restarts_batched(batch_restarts, dev) and len(runs) > 1:
                    n = len(xb)
                    u_all, v_all = apgd(model, xb.repeat((len(runs),) + (1,) * (xb.ndim - 1)),
                                        torch.cat(starts_), eps, steps, objective)
                    done = [(u_all[j * n:(j + 1) * n], v_all[j * n:(j + 1) * n]) for j in range(len(runs))]
                else:
                    done = [apgd(model, xb, s, eps, steps, objective) for s in starts_]
                for name, (u, val) in zip(runs, done, strict=True):
                    if objective is not log_max_confidence:
                        with torch.no_grad():
                            val = log_max_confidence(model(u), None)
                    tried.append((name, u, val))
            for name, u, val in tried:  # worst case per point, the clean point included
                better = val > best_val
                best_val = torch.where(better, val, best_val)
                best_u = torch.where(better.view(-1, 1, 1, 1), u, best_u)
                per_start[name] = torch.maximum(per_start.get(name, val), val)
            adv.append(best_u.cpu())
            conf.append(best_val.exp().cpu())
            for name, v in per_start.items():
                by_start.setdefault(name, []).append(v.exp().cpu())
    return AttackResult(
        torch.cat(adv), torch.cat(conf), torch.cat(clean),
        {k: torch.cat(v) for k, v in by_start.items()},
    )
