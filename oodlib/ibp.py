"""Interval bound propagation (IBP): certified confidence bounds (Bitterwolf et al. 2020, eq. 3–8).

Certified worst-case OOD detection: an upper bound on the confidence a ReLU
network can reach anywhere in the ℓ∞ ball of radius ε around an input,
intersected with the image domain [0, 1]^d, and a training loss that pushes that
bound down on an auxiliary out-distribution.

The pieces, in the paper's order:

* **Boxes through layers (eq. 3).** An interval ``[lo, hi]`` per activation,
  starting from ``[x - ε, x + ε] ∩ [0, 1]`` (the clamp to the domain keeps the
  bound sound and tighter, docs/design.md, pitfall 5). Affine layers (``Linear``,
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

GOOD training and its evaluation live in :mod:`oodlib.good`.

Only ``nn.Sequential`` models (nested ones are flattened) built from the layers
above are supported; batch norm is refused (pitfall 5: no batch norm in
certified models). Everything is differentiable, so the bounds can be trained.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .runtime import eval_mode, model_device
from .validation import check_images, check_number, check_positive_int, describe

SUPPORTED = (nn.Linear, nn.Conv2d, nn.ReLU, nn.Flatten, nn.MaxPool2d, nn.AvgPool2d, nn.Identity,
             nn.Dropout)


# --------------------------------------------------------------------------- checks


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
    eps = check_number(eps, "eps", low=0)
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
    eps = check_number(eps, "eps", low=0)
    check_positive_int(batch_size, "batch_size")
    with eval_mode(model):
        net = model
        if dtype is not None:
            net = copy.deepcopy(model).to(dtype)
        dev = model_device(net)
        outs = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(dev, dtype=dtype or x.dtype)
            u = logit_diff_upper(net, xb, eps)
            lc = log_confidence_upper_eq7(u) if eq7 else log_confidence_upper(u)
            outs.append(lc.clamp_max(0.0).exp().float().cpu())
    return torch.cat(outs)
