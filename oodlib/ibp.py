"""Interval bound propagation (IBP) and GOOD training (Bitterwolf, Meinke & Hein 2020).

Certified worst-case OOD detection: an upper bound on the confidence a ReLU
network can reach anywhere in the ℓ∞ ball of radius ε around an input,
intersected with the image domain [0, 1]^d, and a training loss that pushes that
bound down on an auxiliary out-distribution.

The pieces, in the paper's order:

* **Boxes through layers (eq. 3).** An interval ``[lo, hi]`` per activation,
  starting from ``[x - ε, x + ε] ∩ [0, 1]`` (the clamp to the domain keeps the
  bound sound and tighter, pitfall 5 in DESIGN.md). Affine layers (``Linear``,
  ``Conv2d`` with any stride / padding / dilation / groups) are propagated in
  centre-radius form, ``mid' = W mid + b`` and ``rad' = |W| rad``, which gives
  exactly eq. 3's ``max(W,0)·hi + min(W,0)·lo + b`` and
  ``min(W,0)·hi + max(W,0)·lo + b`` with two instead of four products. Monotone
  layers (``ReLU``, ``MaxPool2d``, ``Flatten``) map ``lo`` and ``hi`` separately;
  ``AvgPool2d`` is linear with non-negative weights, so it does too.
* **Last-layer elision (eq. 5).** The final ``Linear`` is not propagated as a
  box: the upper bound on every logit difference ``f_k - f_l`` is taken directly
  with the row differences ``W_k - W_l``, which is much tighter than
  ``hi_k - lo_l`` (:func:`logit_diff_upper`).
* **Confidence bounds.** eq. 6, ``max_k -log Σ_l exp(-U_kl)``
  (:func:`log_confidence_upper`, used for evaluation and the GAUC), and the
  cheaper, looser eq. 7, ``max_{k,l} U_kl - log K`` (:func:`log_confidence_upper_eq7`).
* **CUB loss (eq. 8).** ``log((max_{k,l} U_kl)² / 2 + 1)`` (:func:`cub_loss`).
* **GOOD and quantile GOOD (eq. 9 / 10).** The training plug-in ``"good"``
  registered with :func:`oodlib.train.register`: cross-entropy on the
  in-distribution plus ``κ`` times the CUB loss at radius ε on the fraction ``q``
  of each out-batch with the *lowest* bound loss and the CUB loss at ε = 0 on
  the rest; ``q = 1`` is GOOD_100 (eq. 9), ``q = 0`` is GOOD_0 (an OE/CEDA-like
  model). ε and κ ramp up linearly (§4.1; the paper's exact schedule is in its
  Appendix D).

Only ``nn.Sequential`` models (nested ones are flattened) built from the layers
above are supported; batch norm is refused (pitfall 5: no batch norm in
certified models). Everything is differentiable, so the bounds can be trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import train, zoo
from .profiles import Profile
from .runtime import model_device, progress
from .validation import check_images, check_positive_int, describe

__all__ = [
    "Bounds",
    "GOOD",
    "auc_triplet",
    "certified_confidence",
    "cub_loss",
    "cub_loss_clean",
    "flatten_layers",
    "input_box",
    "interval_bounds",
    "layer_boxes",
    "log_confidence_upper",
    "log_confidence_upper_eq7",
    "logit_diff_upper",
    "naive_logit_diff_upper",
    "good_table",
    "propagate",
    "quantile_name",
    "ramp",
    "supports",
    "worst_case_confidences",
]

SUPPORTED = (nn.Linear, nn.Conv2d, nn.ReLU, nn.Flatten, nn.MaxPool2d, nn.AvgPool2d, nn.Identity,
             nn.Dropout)


# --------------------------------------------------------------------------- checks


def _check_eps(eps: object) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating | np.integer) or not (
        math.isfinite(eps) and eps >= 0
    ):
        raise ValueError(f"expected eps as a finite number >= 0, got {eps!r}")
    return float(eps)


def _check_box(lo: torch.Tensor, hi: torch.Tensor) -> None:
    if not isinstance(lo, torch.Tensor) or not isinstance(hi, torch.Tensor) or lo.shape != hi.shape:
        raise ValueError(
            f"expected lo and hi as tensors of equal shape, got {describe(lo)} and {describe(hi)}"
        )


def flatten_layers(model: nn.Module) -> list[nn.Module]:
    """The layers of a (possibly nested) ``nn.Sequential``, in order, checked for IBP support.

    Raises ``ValueError`` for any other container and for layers IBP cannot bound
    here (batch norm in particular: certified models must not use it).
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"expected the model as an nn.Sequential of {[c.__name__ for c in SUPPORTED]}, "
            f"got {type(model).__name__}"
        )
    layers: list[nn.Module] = []
    for layer in model:
        if isinstance(layer, nn.Sequential):
            layers += flatten_layers(layer)
        elif isinstance(layer, SUPPORTED):
            if isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
                raise ValueError(f"expected Conv2d with padding_mode='zeros', got {layer.padding_mode!r}")
            layers.append(layer)
        else:
            hint = " (no batch norm in certified models)" if "Norm" in type(layer).__name__ else ""
            raise ValueError(
                f"IBP supports {[c.__name__ for c in SUPPORTED]}, got layer {type(layer).__name__}{hint}"
            )
    if not layers:
        raise ValueError("expected a model with at least one layer, got an empty nn.Sequential")
    return layers


def supports(model: nn.Module) -> bool:
    """Whether IBP here can bound ``model``: an ``nn.Sequential`` of supported layers ending in Linear."""
    try:
        layers = flatten_layers(model)
    except ValueError:
        return False
    return isinstance(layers[-1], nn.Linear)


# --------------------------------------------------------------------------- eq. 3


def input_box(
    x: torch.Tensor, eps: float, domain: tuple[float, float] | None = (0.0, 1.0)
) -> tuple[torch.Tensor, torch.Tensor]:
    """The input box ``[x - ε, x + ε]``, intersected with ``domain`` (the image box [0, 1]).

    Clamping is part of the threat model (the ball ∩ [0, 1]^d) and makes the bounds
    tighter; ``domain=None`` gives the unclamped ball of eq. 3.
    """
    eps = _check_eps(eps)
    lo, hi = x - eps, x + eps
    if domain is not None:
        lo, hi = lo.clamp(domain[0], domain[1]), hi.clamp(domain[0], domain[1])
    return lo, hi


def propagate(layer: nn.Module, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds ``(lo', hi')`` on ``layer(z)`` for every ``z`` with ``lo <= z <= hi`` (eq. 3).

    Affine layers use the centre-radius form ``W·mid + b ± |W|·rad``, identical to
    eq. 3's split of ``W`` into positive and negative parts. ReLU, max-pooling and
    flattening are monotone and average pooling has non-negative weights, so they
    map each end of the interval on its own.
    """
    _check_box(lo, hi)
    if isinstance(layer, nn.Linear | nn.Conv2d):
        mid, rad = (hi + lo) / 2, (hi - lo) / 2
        if isinstance(layer, nn.Linear):
            mid = F.linear(mid, layer.weight, layer.bias)
            rad = F.linear(rad, layer.weight.abs())
        else:
            if layer.padding_mode != "zeros":
                raise ValueError(f"expected Conv2d with padding_mode='zeros', got {layer.padding_mode!r}")
            kw = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation,
                  "groups": layer.groups}
            mid = F.conv2d(mid, layer.weight, layer.bias, **kw)
            rad = F.conv2d(rad, layer.weight.abs(), None, **kw)
        return mid - rad, mid + rad
    if isinstance(layer, nn.ReLU | nn.Flatten | nn.MaxPool2d | nn.AvgPool2d | nn.Identity | nn.Dropout):
        if isinstance(layer, nn.Dropout) and layer.training:
            raise ValueError("expected Dropout in eval mode for IBP (call model.eval())")
        return layer(lo), layer(hi)
    raise ValueError(f"IBP supports {[c.__name__ for c in SUPPORTED]}, got layer {type(layer).__name__}")


def layer_boxes(
    model: nn.Module, x: torch.Tensor, eps: float, domain: tuple[float, float] | None = (0.0, 1.0)
) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, lo, hi)`` after the input and after every layer, the last one included (naive).

    For pictures and tests: the last entry is the plain interval on the logits,
    *without* the elision of eq. 5.
    """
    layers = flatten_layers(model)
    lo, hi = input_box(x, eps, domain)
    out = [("input", lo, hi)]
    for i, layer in enumerate(layers):
        lo, hi = propagate(layer, lo, hi)
        out.append((f"{i}: {type(layer).__name__}", lo, hi))
    return out


@dataclass
class Bounds:
    """IBP bounds on one batch: the penultimate box and the eq. 5 logit-difference bounds.

    ``diff_upper[n, k, l]`` is an upper bound on ``f_k(u) - f_l(u)`` over the ball
    around ``x_n`` (zero on the diagonal); ``logit_lo`` / ``logit_hi`` are the plain
    (non-elided) logit intervals, kept for comparison.
    """

    penult_lo: torch.Tensor
    penult_hi: torch.Tensor
    diff_upper: torch.Tensor
    logit_lo: torch.Tensor
    logit_hi: torch.Tensor


def _elide(last: nn.Linear, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Eq. 5: ``max(W_k - W_l, 0)·hi + min(W_k - W_l, 0)·lo + b_k - b_l`` for all ``k, l``."""
    mid, rad = (hi + lo) / 2, (hi - lo) / 2
    w = last.weight  # (K, H)
    wd = w[:, None, :] - w[None, :, :]  # (K, K, H)
    k = w.shape[0]
    flat = wd.reshape(k * k, -1)
    up = F.linear(mid, flat) + F.linear(rad, flat.abs())
    if last.bias is not None:
        up = up + (last.bias[:, None] - last.bias[None, :]).reshape(1, k * k)
    up = up.reshape(-1, k, k)
    eye = torch.eye(k, dtype=torch.bool, device=up.device)
    return up.masked_fill(eye, 0.0)  # f_k - f_k = 0 exactly


def interval_bounds(
    model: nn.Module, x: torch.Tensor, eps: float, domain: tuple[float, float] | None = (0.0, 1.0)
) -> Bounds:
    """IBP through all layers but the last (eq. 3), then last-layer elision (eq. 5).

    The model's last layer must be ``nn.Linear`` (the paper's assumption that
    ``f(x) = W_L z_{L-1}(x) + b_L``). Differentiable in the parameters.
    """
    last, lo, hi = _penultimate_box(model, x, eps, domain)
    logit_lo, logit_hi = propagate(last, lo, hi)
    return Bounds(lo, hi, _elide(last, lo, hi), logit_lo, logit_hi)


def _penultimate_box(
    model: nn.Module, x: torch.Tensor, eps: float, domain: tuple[float, float] | None
) -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """The last layer and the IBP box of its input (eq. 3 through all other layers)."""
    layers = flatten_layers(model)
    last = layers[-1]
    if not isinstance(last, nn.Linear):
        raise ValueError(f"expected the last layer to be nn.Linear (eq. 5), got {type(last).__name__}")
    lo, hi = input_box(x, eps, domain)
    for layer in layers[:-1]:
        lo, hi = propagate(layer, lo, hi)
    return last, lo, hi


def logit_diff_upper(
    model: nn.Module, x: torch.Tensor, eps: float, domain: tuple[float, float] | None = (0.0, 1.0)
) -> torch.Tensor:
    """Upper bounds ``(N, K, K)`` on all ``f_k(u) - f_l(u)`` over the ball ∩ domain (eq. 5)."""
    last, lo, hi = _penultimate_box(model, x, eps, domain)
    return _elide(last, lo, hi)


def naive_logit_diff_upper(logit_lo: torch.Tensor, logit_hi: torch.Tensor) -> torch.Tensor:
    """``hi_k - lo_l``: the logit-difference bound *without* elision (looser than eq. 5)."""
    up = logit_hi[:, :, None] - logit_lo[:, None, :]
    eye = torch.eye(up.shape[1], dtype=torch.bool, device=up.device)
    return up.masked_fill(eye, 0.0)


# --------------------------------------------------------------------------- eq. 6-8


def _check_diff(diff_upper: torch.Tensor) -> torch.Tensor:
    if not isinstance(diff_upper, torch.Tensor) or diff_upper.ndim != 3 or diff_upper.shape[1] != \
            diff_upper.shape[2] or diff_upper.shape[1] < 2:
        raise ValueError(f"expected logit-difference bounds of shape (N, K, K) with K >= 2, "
                         f"got {describe(diff_upper)}")
    return diff_upper


def log_confidence_upper(diff_upper: torch.Tensor) -> torch.Tensor:
    """Eq. 6: ``max_k -log Σ_l exp(-U_kl)`` >= the log confidence anywhere in the ball, per sample.

    At ε = 0 (``U_kl = f_k - f_l``) this is exactly ``log Conf(x)`` (eq. 4). Always <= 0.
    """
    u = _check_diff(diff_upper)
    return (-torch.logsumexp(-u, dim=2)).max(dim=1).values


def log_confidence_upper_eq7(diff_upper: torch.Tensor) -> torch.Tensor:
    """Eq. 7: ``max_{k,l} U_kl - log K``, a cheaper bound >= eq. 6 (may exceed 0 = log 1)."""
    u = _check_diff(diff_upper)
    return u.flatten(1).max(dim=1).values - math.log(u.shape[1])


def cub_loss(diff_upper: torch.Tensor) -> torch.Tensor:
    """Eq. 8, per sample: ``L_CUB = log((max_{k,l} U_kl)² / 2 + 1)``.

    ``max_{k,l} U_kl >= 0`` (the diagonal is 0), so the loss is >= 0 and is 0 exactly
    when every logit difference is bounded by 0, i.e. all logits equal over the ball.
    """
    a = _check_diff(diff_upper).flatten(1).max(dim=1).values
    return torch.log1p(a.square() / 2)


def cub_loss_clean(logits: torch.Tensor) -> torch.Tensor:
    """``L_CUB(x; 0)`` from the logits: eq. 8 with ``max_{k,l} f_k - f_l = max f - min f``."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(f"expected logits of shape (N, K), got {describe(logits)}")
    a = logits.max(dim=1).values - logits.min(dim=1).values
    return torch.log1p(a.square() / 2)


@torch.no_grad()
def certified_confidence(
    model: nn.Module,
    x: torch.Tensor,
    eps: float,
    batch_size: int = 500,
    dtype: torch.dtype | None = None,
    eq7: bool = False,
) -> torch.Tensor:
    """Guaranteed upper bound ``(N,)`` on ``max_{u ∈ B_∞(x, ε) ∩ [0,1]^d} Conf_f(u)`` (eq. 6), on the CPU.

    The scores behind the guaranteed AUC (GAUC). ``eq7=True`` uses the looser
    eq. 7 bound instead (clipped at 1). ``dtype=torch.float64`` evaluates a
    double-precision copy of the model (slower, for checks near ties).
    """
    check_images(x, "x")
    eps = _check_eps(eps)
    check_positive_int(batch_size, "batch_size")
    was_training = model.training
    model.eval()
    net = model
    if dtype is not None:
        import copy

        net = copy.deepcopy(model).to(dtype)
    dev = model_device(net)
    outs = []
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(dev, dtype=dtype or x.dtype)
            u = logit_diff_upper(net, xb, eps)
            lc = log_confidence_upper_eq7(u) if eq7 else log_confidence_upper(u)
            outs.append(lc.clamp_max(0.0).exp().float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs)


# --------------------------------------------------------------------------- GOOD training (eq. 9 / 10)


def ramp(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear ramp-up factor in [0, 1]: 0 before ``start``, 1 after ``end`` (fractions of training)."""
    if total_steps <= 0:
        raise ValueError(f"expected total_steps > 0, got {total_steps!r}")
    frac = step / total_steps
    if end <= start:
        return 1.0 if frac >= start else 0.0
    return float(min(1.0, max(0.0, (frac - start) / (end - start))))


def _check_frac(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0.0 <= value <= 1.0):
        raise ValueError(f"expected {name} as a number in [0, 1], got {value!r}")
    return float(value)


def _check_nonneg(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and value >= 0
    ):
        raise ValueError(f"expected {name} as a finite number >= 0, got {value!r}")
    return float(value)


class GOOD(train.Method):
    """Guaranteed OOD detection training (eq. 9) and quantile GOOD_Q (eq. 10).

    ``loss = CE(f(x_in), y) + κ_t/M [ Σ_{j <= ⌊qM⌋} L_CUB(x_πj; ε_t) + Σ_{j > ⌊qM⌋} L_CUB(x_πj; 0) ]``

    where ``π`` sorts the out-batch (``M = ceil(lam·B)`` auxiliary images) by
    ``L_CUB(x; ε_t)`` ascending, so the bound loss goes to the *easiest* q-fraction.
    ``ε_t = r_t ε`` and ``κ_t = r_t κ`` with the linear ramp ``r_t`` =
    :func:`ramp` ``(step, total_steps, ramp_start, ramp_end)``.

    Hyper-parameters: ``quantile`` q in [0, 1] (GOOD_Q with Q = 100 q), ``eps``,
    ``kappa`` (paper, MNIST: ε = 0.3, κ = 0.3), ``ramp_start`` / ``ramp_end``
    (fractions of training), ``lam`` (out-batch size relative to B; the paper uses
    128 + 128, i.e. 1).
    """

    name = "good"
    out_source = "aux"

    def __init__(
        self,
        quantile: float = 1.0,
        eps: float = 0.3,
        kappa: float = 0.3,
        ramp_start: float = 0.0,
        ramp_end: float = 0.5,
        lam: float = 1.0,
    ) -> None:
        self.quantile = _check_frac(quantile, "quantile")
        self.eps = _check_nonneg(eps, "eps")
        self.kappa = _check_nonneg(kappa, "kappa")
        self.ramp_start = _check_frac(ramp_start, "ramp_start")
        self.ramp_end = _check_frac(ramp_end, "ramp_end")
        if self.ramp_end < self.ramp_start:
            raise ValueError(f"expected ramp_start <= ramp_end, got {ramp_start} and {ramp_end}")
        if isinstance(lam, bool) or not isinstance(lam, int | float) or not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"expected lam as a finite number > 0, got {lam!r}")
        self.lam = float(lam)

    def schedule(self, step: int, total_steps: int) -> tuple[float, float]:
        """``(ε_t, κ_t)`` at ``step`` (linear ramp-up, §4.1)."""
        r = ramp(step, total_steps, self.ramp_start, self.ramp_end)
        return r * self.eps, r * self.kappa

    def out_loss(self, model: nn.Module, x_out: torch.Tensor, logits_out: torch.Tensor,
                 eps: float) -> tuple[torch.Tensor, dict[str, float]]:
        """The bracket of eq. 10 divided by M (eq. 9 when ``quantile == 1``)."""
        m = len(x_out)
        clean = cub_loss_clean(logits_out)
        n_bound = math.floor(self.quantile * m + 1e-9)
        logs = {"cub0": clean.mean().item()}
        if n_bound == 0:
            return clean.mean(), logs
        if eps == 0.0:  # the bound at radius 0 is the clean loss (up to rounding)
            return clean.mean(), {**logs, "cub_eps": logs["cub0"], "bound_frac": n_bound / m}
        bound = cub_loss(logit_diff_upper(model, x_out, eps))
        order = torch.argsort(bound.detach())
        use_bound = torch.zeros(m, dtype=torch.bool, device=x_out.device)
        use_bound[order[:n_bound]] = True
        per = torch.where(use_bound, bound, clean)
        logs.update(cub_eps=bound.mean().item(), bound_frac=n_bound / m)
        return per.mean(), logs

    def loss(self, model: nn.Module, batch: train.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 10 (eq. 9 for ``quantile = 1``) with the ramped ε_t and κ_t."""
        if batch.x_out is None:
            raise ValueError("method 'good' needs an auxiliary batch (pass x_out to train.fit)")
        eps, kappa = self.schedule(batch.step, batch.total_steps)
        n = len(batch.x_in)
        if self.quantile == 1.0:  # eq. 9: the clean out-logits are not needed (saves ~1/4 of a step)
            ce = F.cross_entropy(model(batch.x_in), batch.y_in)
            out = cub_loss(logit_diff_upper(model, batch.x_out, eps)).mean()
            loss = ce + kappa * out
            return loss, {"ce": ce.item(), "out": out.item(), "cub_eps": out.item(), "eps": eps,
                          "kappa": kappa, "loss": loss.item(), "bound_frac": 1.0}
        logits = model(torch.cat([batch.x_in, batch.x_out]))
        ce = F.cross_entropy(logits[:n], batch.y_in)
        out, logs = self.out_loss(model, batch.x_out, logits[n:], eps)
        loss = ce + kappa * out
        with torch.no_grad():
            mmc_out = torch.softmax(logits[n:], dim=1).max(dim=1).values.mean()
        return loss, {"ce": ce.item(), "out": out.item(), "mmc_out": mmc_out.item(), "eps": eps,
                      "kappa": kappa, "loss": loss.item(), **logs}


_GOOD_ARGS = ("quantile", "eps", "kappa", "ramp_start", "ramp_end", "lam")


def _good_factory(**hparams: object) -> GOOD:
    unknown = sorted(set(hparams) - set(_GOOD_ARGS))
    if unknown:
        raise ValueError(f"unknown hyper-parameters {unknown} for method 'good'; expected some of "
                         f"{list(_GOOD_ARGS)}")
    return GOOD(**hparams)  # type: ignore[arg-type]


train.register("good", _good_factory)


def _profile_defaults(profile: Profile) -> dict[str, object]:
    """GOOD's hyper-parameters from the profile's chapter-05 fields (they enter the zoo hash)."""
    return {
        "quantile": 1.0,
        "eps": profile.good_eps,
        "kappa": profile.good_kappa,
        "ramp_start": profile.good_ramp[0],
        "ramp_end": profile.good_ramp[1],
    }


zoo.register_defaults("good", _profile_defaults)


# --------------------------------------------------------------------------- helpers for chapters


def quantile_name(q: float) -> str:
    """``GOOD_Q`` with ``Q = 100 q`` (e.g. ``GOOD_80``)."""
    return f"GOOD_{round(100 * q)}"


# --------------------------------------------------------------------------- evaluation: AUC / AAUC / GAUC


def worst_case_confidences(
    model: nn.Module,
    x: torch.Tensor,
    eps: float,
    steps: int,
    restarts: int = 1,
    seed: int = 0,
    certify: bool | None = None,
) -> dict[str, torch.Tensor]:
    """Per point: clean confidence <= attacked (lower bound on the worst case) <= certified (upper bound).

    ``attacked`` comes from :func:`oodlib.apgd.max_confidence_attack` (clean,
    low-contrast and ``restarts`` uniform starts, worst case per point, the clean
    point included); ``certified`` is eq. 6 on the ball ∩ [0, 1]^d
    (:func:`certified_confidence`). ``certify=None`` certifies with IBP when
    :func:`supports` the model and otherwise uses the trivial bound 1 (e.g. CCU,
    whose Gaussian mixtures IBP here cannot pass); ``False`` skips the bound.
    Returns CPU tensors ``clean``, ``attacked`` and ``certified``.
    """
    from .apgd import max_confidence_attack

    gen = torch.Generator().manual_seed(seed)
    res = max_confidence_attack(model, x, eps, steps=steps, restarts=restarts, generator=gen)
    out = {"clean": res.clean.float(), "attacked": res.confidence.float()}
    if certify is None:
        certify = supports(model)
        if not certify:
            out["certified"] = torch.ones(len(x))
    if certify:
        out["certified"] = certified_confidence(model, x, eps)
    return out


def auc_triplet(s_in: torch.Tensor, conf: dict[str, torch.Tensor]) -> dict[str, float]:
    """``AUC``, ``AAUC``, ``GAUC`` (as fractions) from in-distribution confidences and the OOD
    confidences of :func:`worst_case_confidences`.

    All three use the conservative AUC (ties count as failures, GOOD App. C; pitfall 2):
    P(conf_in > conf_out) with conf_out clean, attacked and certified. Since the
    conservative AUC falls when any OOD score rises, ``GAUC <= AAUC <= AUC`` holds
    whenever ``clean <= attacked <= certified`` point by point.
    """
    from .metrics import auroc_conservative

    names = {"clean": "AUC", "attacked": "AAUC", "certified": "GAUC"}
    return {names[k]: auroc_conservative(s_in, v) for k, v in conf.items() if k in names}


def good_table(
    models_: dict[str, object],
    x_in: torch.Tensor,
    y_in: torch.Tensor,
    ood_sets: dict[str, object],
    eps: float,
    n_attack: int,
    steps: int,
    restarts: int = 1,
    seed: int = 0,
) -> tuple[object, dict[str, dict[str, dict[str, torch.Tensor]]]]:
    """Table 1 of GOOD: accuracy and AUC / AAUC / GAUC per model and OOD set.

    ``models_`` maps display names to :class:`oodlib.zoo.Entry` (results are
    cached in the entry's record under a key naming ε, the attack and the set)
    or bare modules. Each OOD set contributes its first ``n_attack`` images, the
    same images for all three AUCs; the in-distribution side is the clean
    confidence on ``x_in``. Returns the long DataFrame
    ``(model, ood_set, stand_in_for, metric, value, certificate)`` (accuracy as
    ``ood_set='(in-distribution)'``; ``certificate`` is ``"IBP"`` or ``"trivial"``
    (bound 1) for models IBP cannot pass, see :func:`worst_case_confidences`) and the
    per-point confidences
    ``conf[model][set] = {clean, attacked, certified}``.
    """
    import pandas as pd

    from .runtime import predict_proba

    check_positive_int(n_attack, "n_attack")
    check_images(x_in, "x_in")
    if not isinstance(y_in, torch.Tensor) or y_in.shape != (len(x_in),):
        raise ValueError(f"expected y_in as a tensor of {len(x_in)} labels, got {describe(y_in)}")
    rows: list[dict] = []
    confs: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    for name, obj in progress(models_.items(), desc="Table 1", leave=False):
        model = obj.model if isinstance(obj, zoo.Entry) else obj
        if not isinstance(model, nn.Module):
            raise ValueError(
                f"expected models_ values as zoo entries or nn.Modules, got {type(obj).__name__}"
            )
        conf_in, pred = predict_proba(model, x_in).max(dim=1)  # the MSP score and the prediction
        s_in = conf_in
        cert = "IBP" if supports(model) else "trivial"
        rows.append({"model": name, "ood_set": "(in-distribution)", "stand_in_for": None,
                     "metric": "accuracy", "value": float((pred == y_in.cpu()).float().mean()),
                     "certificate": cert})
        confs[name] = {}
        for set_name, s in ood_sets.items():
            x = s.x[:n_attack]

            def compute(x: torch.Tensor = x, model: nn.Module = model) -> dict[str, list[float]]:
                c = worst_case_confidences(model, x, eps, steps, restarts, seed)
                return {k: v.tolist() for k, v in c.items()}

            key = f"good_eval|{set_name}|n={len(x)}|eps={eps:g}|steps={steps}|restarts={restarts}|seed={seed}"
            raw = obj.cached(key, compute) if isinstance(obj, zoo.Entry) else compute()
            conf = {k: torch.tensor(v) for k, v in raw.items()}
            confs[name][set_name] = conf
            for metric, value in auc_triplet(s_in, conf).items():
                rows.append({"model": name, "ood_set": set_name, "stand_in_for": s.stand_in_for,
                             "metric": metric, "value": value, "certificate": cert})
    return pd.DataFrame(rows), confs
