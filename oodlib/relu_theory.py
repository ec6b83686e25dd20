"""Hein, Andriushchenko & Bitterwolf 2019: ReLU networks are overconfident far from the data.

Chapters 01–02. The affine form of a ReLU network on the linear region of a point (App. D,
:func:`affine_form`), the half-space description of that region (:func:`linear_region`), the
α-scaling experiment behind Theorem 3.1 / Table 2 (:func:`alpha_search`, :func:`overconfident`),
and RBF networks with the far-away confidence bound of Theorem E.1 (:class:`RBFNet`,
:func:`rbf_confidence_bound`, :func:`rbf_far_radius`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from .runtime import eval_mode, model_device
from .validation import check_number, check_positive_int, describe

# --------------------------------------------------------------------------- helpers

_PASSTHROUGH = (nn.Identity, nn.Dropout)


def _layers(model: nn.Module) -> list[nn.Module]:
    """The leaf layers of a (possibly nested) ``nn.Sequential``, in order."""
    if isinstance(model, nn.Sequential):
        out: list[nn.Module] = []
        for m in model:
            out += _layers(m)
        return out
    return [model]


def _single_point(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` as a batch of one ``(1, *shape)`` on the model's device (a 1-D ``x`` gets a batch axis)."""
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x) or x.numel() == 0:
        raise ValueError(f"expected x as a non-empty float tensor (one input point), got {describe(x)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"expected x to be finite, got {describe(x)}")
    if x.ndim == 1:
        xb = x.unsqueeze(0)
    elif x.shape[0] == 1:
        xb = x
    else:
        raise ValueError(f"expected one point as a batch of one, shape (1, ...), got {describe(x)}")
    return xb.detach().to(model_device(model))


def _linear_step(m: nn.Linear, V: torch.Tensor, a: torch.Tensor, dtype: torch.dtype
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``nn.Linear`` applied to the affine form ``x -> V x + a`` (App. D): ``(W V, W a + b)``."""
    W = m.weight.to(dtype)
    return F.linear(V, W), F.linear(a, W, None if m.bias is None else m.bias.to(dtype))


def _check_supported(layers: list[nn.Module], allowed: tuple[type, ...], what: str) -> None:
    for m in layers:
        if not isinstance(m, allowed):
            names = ", ".join(t.__name__ for t in allowed)
            raise ValueError(
                f"{what} supports nn.Sequential networks of {names}; got a layer {type(m).__name__}"
            )


# --------------------------------------------------------------------------- affine form (App. D)

_AFFINE_LAYERS = (nn.Linear, nn.Conv2d, nn.ReLU, nn.Flatten, nn.MaxPool2d, nn.AvgPool2d, *_PASSTHROUGH)
# affine_form also reads ResNets (batch norm in eval mode is affine; a residual block adds two affine forms)
_AFFINE_FORM_LAYERS = (*_AFFINE_LAYERS, nn.BatchNorm2d, nn.AdaptiveAvgPool2d, BasicBlock)


def _affine_step(m: nn.Module, h: torch.Tensor, V: torch.Tensor, a: torch.Tensor, dtype: torch.dtype
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One layer applied to the activations ``h`` and to the affine form ``x -> V x + a`` (App. D)."""
    if isinstance(m, nn.Linear):
        return m(h), *_linear_step(m, V, a, dtype)
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros":
            raise ValueError(f"affine_form supports Conv2d with zero padding, got {m.padding_mode!r}")
        W = m.weight.to(dtype)
        kw = dict(stride=m.stride, padding=m.padding, dilation=m.dilation, groups=m.groups)
        bias = None if m.bias is None else m.bias.to(dtype)
        return m(h), F.conv2d(V, W, None, **kw), F.conv2d(a, W, bias, **kw)
    if isinstance(m, nn.BatchNorm2d):  # eval mode: the affine map x -> scale * x + shift per channel
        if m.training or m.running_mean is None:
            raise ValueError("affine_form needs BatchNorm2d in eval mode with running statistics "
                             "(call model.eval())")
        scale = (m.weight if m.affine else torch.ones_like(m.running_var)).to(dtype) / torch.sqrt(
            m.running_var.to(dtype) + m.eps)
        shift = (m.bias.to(dtype) if m.affine else 0.0) - m.running_mean.to(dtype) * scale
        return m(h), V * scale.view(1, -1, 1, 1), a * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
    if isinstance(m, nn.ReLU):
        mask = (h > 0).to(dtype)
        return F.relu(h), V * mask, a * mask
    if isinstance(m, nn.MaxPool2d):
        h, idx = F.max_pool2d(h, m.kernel_size, m.stride, m.padding, m.dilation,
                              ceil_mode=m.ceil_mode, return_indices=True)
        flat = idx.flatten(2)  # (1, C, Ho*Wo) indices into H*W
        V = V.flatten(2).gather(2, flat.expand(V.shape[0], -1, -1)).reshape(V.shape[0], *h.shape[1:])
        return h, V, a.flatten(2).gather(2, flat).reshape(h.shape)
    if isinstance(m, nn.AvgPool2d | nn.AdaptiveAvgPool2d | nn.Flatten):  # linear maps
        return m(h), m(V), m(a)
    if isinstance(m, BasicBlock):  # torchvision's residual block: relu(main(x) + shortcut(x))
        hm, Vm, am = h, V, a
        for layer in (m.conv1, m.bn1, nn.ReLU(), m.conv2, m.bn2):
            hm, Vm, am = _affine_step(layer, hm, Vm, am, dtype)
        hs, Vs, as_ = h, V, a
        for layer in _layers(m.downsample) if m.downsample is not None else []:
            hs, Vs, as_ = _affine_step(layer, hs, Vs, as_, dtype)
        return _affine_step(nn.ReLU(), hm + hs, Vm + Vs, am + as_, dtype)
    return h, V, a  # Identity / Dropout: eval-mode identity (the callers checked the layer types)


@torch.no_grad()
def affine_form(
    model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine map ``f(z) = V z + a`` of a ReLU network on the linear region ``Q(x)``.

    Hein et al. 2019, §2 and Appendix D: with the activation pattern
    ``Σ^(l)(x)`` (which ReLUs are on; for max-pooling also *which* input each
    window selects) fixed,

        V = W^(L+1) Σ^(L) W^(L) ... Σ^(1) W^(1),
        a = b^(L+1) + Σ_l W^(L+1) Σ^(L) ... W^(l+1) Σ^(l) b^(l).

    Computed by recording the pattern in one forward pass of ``model`` at ``x``
    and then pushing the ``d`` unit vectors (for ``V``) and the zero input (for
    ``a``) through the network with that pattern frozen — no autograd.

    Args:
        model: an ``nn.Sequential`` (nesting allowed) of Linear, Conv2d, ReLU,
            Flatten, MaxPool2d, AvgPool2d, Identity, Dropout (identity in eval), and the
            ResNet layers BatchNorm2d (eval mode), AdaptiveAvgPool2d and torchvision's
            ``BasicBlock`` (``relu(main(x) + shortcut(x))``: the two forms add).
        x: one input point as a batch of one, shape ``(1, *in_shape)`` (a 1-D
            vector ``(d,)`` is also accepted).
        dtype: precision of the returned ``V, a`` (float64 by default).

    Returns:
        ``V`` of shape ``(K, d)`` with ``d = prod(in_shape)`` and ``a`` of shape
        ``(K,)``; ``V`` equals the Jacobian of the network at ``x`` and
        ``f(x) = V x.flatten() + a``. At a point on a region boundary (a
        pre-activation exactly 0, a max-pool tie) this is the affine piece of
        the pattern torch's forward pass chose.
    """
    layers = _layers(model)
    _check_supported(layers, _AFFINE_FORM_LAYERS, "affine_form")
    xb = _single_point(model, x)
    d = xb[0].numel()
    h = xb  # the actual activations (model dtype), used to read off the pattern
    V = torch.eye(d, dtype=dtype, device=xb.device).reshape(d, *xb.shape[1:])  # d "images"
    a = torch.zeros_like(xb, dtype=dtype)
    for m in layers:
        h, V, a = _affine_step(m, h, V, a, dtype)
    if h.ndim != 2:
        raise ValueError(f"expected the network to output logits of shape (1, K), got shape {tuple(h.shape)}")
    return V.reshape(d, -1).T.contiguous(), a.reshape(-1)


# --------------------------------------------------------------------------- linear region (App. D)


@torch.no_grad()
def linear_region(
    model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Half-space description ``Q(x) = {z : A z <= b}`` of the linear region of ``x``.

    Hein et al. 2019, Appendix D: for every hidden unit ``i`` of layer ``l``
    with pre-activation ``f_i^(l)(z) = V_i^(l) z + a_i^(l)`` on ``Q(x)``,
    ``Γ_{l,i} = {z : Δ_ii^(l)(x) (V_i^(l) z + a_i^(l)) >= 0}``; ``Q(x)`` is the
    intersection of the ``N = Σ_l n_l`` half-spaces. A unit that is on at
    ``x`` contributes ``-V_i z <= a_i``, one that is off ``V_i z <= -a_i``
    (a pre-activation exactly 0 is counted as off, like the ReLU's mask).

    Only MLPs: an ``nn.Sequential`` of Linear and ReLU (plus Flatten / Identity /
    Dropout, which are no-ops for the geometry); anything else raises ``ValueError``.

    Returns:
        ``A`` of shape ``(N, d)`` and ``b`` of shape ``(N,)`` in ``dtype``, with
        ``z`` the flattened input.
    """
    layers = _layers(model)
    _check_supported(layers, (nn.Linear, nn.ReLU, nn.Flatten, *_PASSTHROUGH), "linear_region")
    xb = _single_point(model, x)
    d = xb[0].numel()
    h = xb.reshape(1, d)
    V = torch.eye(d, dtype=dtype, device=xb.device)  # rows: input dims; V.T is the current linear part
    a = torch.zeros(1, d, dtype=dtype, device=xb.device)
    rows_A: list[torch.Tensor] = []
    rows_b: list[torch.Tensor] = []
    for m in layers:
        if isinstance(m, nn.Linear):
            h, V, a = m(h), *_linear_step(m, V, a, dtype)
        elif isinstance(m, nn.ReLU):
            on = (h > 0)[0]
            s = on.to(dtype) * 2 - 1  # +1 on, -1 off
            rows_A.append(-(V.T * s[:, None]))
            rows_b.append(a[0] * s)
            mask = on.to(dtype)
            h = F.relu(h)
            V = V * mask
            a = a * mask
    if not rows_A:
        return torch.zeros(0, d, dtype=dtype, device=xb.device), torch.zeros(0, dtype=dtype, device=xb.device)
    return torch.cat(rows_A), torch.cat(rows_b)


def activation_pattern(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The on/off pattern of every ReLU at each point of a batch ``x``: bool ``(N, #units)``.

    Two points lie in the same linear region of an MLP iff their patterns agree
    (Hein et al. 2019, App. D).
    """
    layers = _layers(model)
    _check_supported(layers, _AFFINE_LAYERS, "activation_pattern")
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"expected x as a batch (N, ...), got {describe(x)}")
    pats = []
    h = x.to(model_device(model))
    with torch.no_grad():
        for m in layers:
            if isinstance(m, nn.ReLU):
                pats.append((h > 0).flatten(1))
            h = m(h)
    return torch.cat(pats, dim=1) if pats else torch.zeros(len(x), 0, dtype=torch.bool)


def last_layer_off(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Whether every ReLU of the last hidden layer is off at each point of ``x``: bool ``(N,)``.

    There the output is the last layer's bias, so ``V = 0`` — all rows identical, the case
    Hein et al.'s Theorem 3.1 excludes ("unless the output of the network is constant"). If
    it holds at ``αx`` for large α, the ray stays in a region where the network is constant
    and its confidence never approaches 1.
    """
    layers = _layers(model)
    _check_supported(layers, _AFFINE_FORM_LAYERS, "last_layer_off")
    if not any(isinstance(m, nn.ReLU) for m in model.modules()):
        raise ValueError("expected a ReLU network, got a model without nn.ReLU layers")
    if not isinstance(layers[-1], nn.Linear):
        raise ValueError(f"expected a network ending in nn.Linear, got {type(layers[-1]).__name__}")
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"expected x as a batch (N, ...), got {describe(x)}")
    # The penultimate features: the last hidden ReLUs, pooled / flattened (a ResNet's last block
    # ends in a ReLU too). Non-negative; all zero exactly when every ReLU there is off.
    h = x.to(model_device(model))
    with torch.no_grad(), eval_mode(model):
        for m in layers[:-1]:
            h = m(h)
    if bool((h < 0).any()):
        raise ValueError("expected the last hidden layer to end in a ReLU (non-negative features), "
                         "got negative penultimate features")
    return ~(h > 0).flatten(1).any(dim=1)


# --------------------------------------------------------------------------- α-scaling (Thm 3.1, Table 2)


@dataclass
class AlphaResult:
    """Result of :func:`alpha_search` for a batch of ``N`` directions ``x``.

    Attributes:
        alpha: ``(N,)`` float64, the returned scale (see :func:`alpha_search`);
            ``inf`` where the threshold was not reached by ``alpha_max``.
        reached: ``(N,)`` bool, whether ``confidence(alpha * x) >= threshold``.
        lower: ``(N,)`` float64, the bracket's lower end: the confidence at
            ``lower`` is below the threshold (``nan`` when ``alpha == 1``, where
            no lower end exists, and ``alpha_max`` when not reached).
        confidence: ``(N,)`` max-softmax at ``alpha`` (at ``alpha_max`` when not reached).
        label: ``(N,)`` predicted class at ``alpha`` (at ``alpha_max`` when not reached).
        threshold: the confidence asked for.
        alpha_max: the largest scale tried.
    """

    alpha: torch.Tensor
    reached: torch.Tensor
    lower: torch.Tensor
    confidence: torch.Tensor
    label: torch.Tensor
    threshold: float
    alpha_max: float

    def median(self) -> float:
        """Median of ``alpha`` over all points, counting unreached ones as ``inf``
        (Table 2, first row, reports this median); for even N the lower of the
        two middle values, as :func:`torch.median`."""
        return float(self.alpha.median())

    @property
    def fraction_reached(self) -> float:
        """Fraction of points that reached the threshold within ``alpha_max``."""
        return float(self.reached.double().mean())


def _check_batch(x: object, name: str = "x") -> torch.Tensor:
    if (not isinstance(x, torch.Tensor) or not torch.is_floating_point(x) or x.ndim < 2
            or x.shape[0] == 0):
        raise ValueError(f"expected {name} as a non-empty float batch of shape (N, ...), got {describe(x)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"expected {name} to be finite, got {describe(x)}")
    return x


@torch.no_grad()
def _conf_at(model: nn.Module, x: torch.Tensor, alpha: torch.Tensor, batch_size: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Max-softmax and argmax of ``model(alpha_i * x_i)`` for each i (CPU tensors)."""
    dev = model_device(model)
    confs, labels = [], []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(dev)
        ab = alpha[i : i + batch_size].to(dev, xb.dtype).reshape(-1, *([1] * (xb.ndim - 1)))
        p = torch.softmax(model(ab * xb).double(), dim=1)
        c, k = p.max(dim=1)
        confs.append(c.cpu())
        labels.append(k.cpu())
    return torch.cat(confs), torch.cat(labels)


def confidence_along_ray(
    model: nn.Module, x: torch.Tensor, alphas: torch.Tensor | list[float], batch_size: int = 1000
) -> torch.Tensor:
    """Max-softmax confidence of ``model(α x)`` for every point and every α: ``(N, len(alphas))``.

    For plotting the curves of Theorem 3.1 (confidence → 1 as α → ∞).
    """
    _check_batch(x)
    check_positive_int(batch_size, "batch_size")
    alphas = torch.as_tensor(alphas, dtype=torch.float64).flatten()
    with eval_mode(model):
        cols = [_conf_at(model, x, torch.full((len(x),), float(a), dtype=torch.float64), batch_size)[0]
                for a in alphas]
    return torch.stack(cols, dim=1)


def alpha_search(
    model: nn.Module,
    x: torch.Tensor,
    threshold: float = 0.999,
    alpha_max: float = 1e6,
    tol: float = 1e-3,
    batch_size: int = 1000,
) -> AlphaResult:
    """Smallest scale α >= 1 found with ``max_k softmax_k f(α x) >= threshold`` (Thm 3.1, Table 2).

    Theorem 3.1 (Hein et al. 2019) says that for almost every ``x`` the
    confidence along the ray ``α x`` tends to 1; Table 2 (first row) reports
    the median over uniform-noise ``x`` of the smallest α reaching 99.9 %.
    The search, vectorised over the batch:

    1. **bracketing**: evaluate ``α = 1, 2, 4, ...`` (and finally ``alpha_max``)
       and stop at the first grid value ``hi`` where the confidence reaches
       ``threshold``; the previous grid value ``lo`` is below it;
    2. **bisection** on ``[lo, hi]``, keeping ``conf(lo) < threshold <= conf(hi)``,
       until ``hi - lo <= tol * hi`` (relative tolerance).

    What is returned, precisely: ``alpha = hi``, a scale at which the
    threshold *is* reached, with a point ``lower`` in ``[alpha (1 - tol), alpha)``
    at which it is not, and with every grid value ``1, 2, 4, ... < lower``
    below the threshold. The confidence along a ray is *eventually*
    monotone (the ray ends in one linear region, Lemma 3.1, where the
    confidence → 1), but it need not be monotone before that: the ray may
    cross the threshold, fall back, and cross again. The result is then the
    crossing inside the first doubling interval whose right end reaches the
    threshold — the smallest α *found by bracketing from 1*, not necessarily
    the global minimum (a crossing and fall-back that happen entirely between
    two grid points are not seen). If ``conf(x) >= threshold`` already,
    ``alpha = 1``. Points that do not reach the threshold at any grid value
    up to ``alpha_max`` get ``alpha = inf`` and ``reached = False`` (this
    happens e.g. when all logits stay equal along the ray, the excluded case of
    Theorem 3.1, or for ACET models whose α exceeds ``alpha_max``).

    Args:
        model: classifier returning logits; evaluated in eval mode on its device.
        x: batch of directions ``(N, ...)`` (Table 2: uniform noise in [0, 1]^d).
        threshold: confidence in (0, 1) (Table 2: 0.999).
        alpha_max: largest scale tried (> 1).
        tol: relative width of the final bracket (> 0).
        batch_size: evaluation batch size.
    """
    _check_batch(x)
    threshold = check_number(threshold, "threshold", low=0, high=1, low_open=True, high_open=True)
    check_number(alpha_max, "alpha_max", low=1, low_open=True)
    check_number(tol, "tol", low=0, high=1, low_open=True, high_open=True)
    check_positive_int(batch_size, "batch_size")
    n = len(x)
    grid = [1.0]
    while grid[-1] * 2 < alpha_max:
        grid.append(grid[-1] * 2)
    grid.append(float(alpha_max))

    with eval_mode(model):
        hi = torch.full((n,), math.inf, dtype=torch.float64)
        lo = torch.full((n,), math.nan, dtype=torch.float64)
        conf = torch.zeros(n, dtype=torch.float64)
        label = torch.zeros(n, dtype=torch.long)
        todo = torch.ones(n, dtype=torch.bool)
        prev = math.nan
        for g in grid:
            idx = todo.nonzero().flatten()
            if len(idx) == 0:
                break
            c, k = _conf_at(model, x[idx], torch.full((len(idx),), g, dtype=torch.float64), batch_size)
            ok = c >= threshold
            hit = idx[ok]
            hi[hit] = g
            lo[hit] = prev
            todo[hit] = False
            conf[idx], label[idx] = c, k  # at g (final: at alpha_max for unreached points)
            prev = g
        reached = torch.isfinite(hi)
        lo[~reached] = float(alpha_max)
        # bisection on points with a proper bracket
        active = reached & torch.isfinite(lo)
        while True:
            idx = (active & (hi - lo > tol * hi)).nonzero().flatten()
            if len(idx) == 0:
                break
            mid = (lo[idx] + hi[idx]) / 2
            c, k = _conf_at(model, x[idx], mid, batch_size)
            up = c >= threshold
            hi[idx[up]] = mid[up]
            conf[idx[up]], label[idx[up]] = c[up], k[up]
            lo[idx[~up]] = mid[~up]
    return AlphaResult(alpha=hi, reached=reached, lower=lo, confidence=conf.float(), label=label,
                       threshold=threshold, alpha_max=float(alpha_max))


def overconfident(
    model: nn.Module,
    x: torch.Tensor,
    alpha: float | torch.Tensor,
    threshold: float = 0.95,
    batch_size: int = 1000,
) -> torch.Tensor:
    """Per point: is the prediction at ``clip(α x, 0, 1)`` more confident than ``threshold``? ``(N,)`` bool.

    Hein et al. 2019, Table 2 second row: the α-scaled inputs projected back to the image
    box. ``alpha`` is one number or one per point (e.g. ``alpha_search(...).alpha``); an
    infinite α uses the limit ``clip(α x) → 1[x > 0]``.
    """
    _check_batch(x)
    threshold = check_number(threshold, "threshold", low=0, high=1, low_open=True, high_open=True)
    check_positive_int(batch_size, "batch_size")
    a = torch.as_tensor(alpha, dtype=torch.float64).flatten()
    if a.numel() == 1:
        a = a.expand(len(x))
    if a.numel() != len(x) or torch.isnan(a).any() or (a < 0).any():
        raise ValueError(
            f"expected alpha as a number >= 0 or one per point ({len(x)}), got {describe(alpha)}"
        )
    shape = (-1, *([1] * (x.ndim - 1)))
    fin = torch.isfinite(a)
    af = torch.where(fin, a, torch.zeros_like(a)).to(x.dtype).reshape(shape)
    z = torch.where(fin.reshape(shape), (af * x).clamp(0, 1), (x > 0).to(x.dtype))
    with eval_mode(model):
        c, _ = _conf_at(model, z, torch.ones(len(x), dtype=torch.float64), batch_size)
    return c > threshold


def overconfident_fraction(
    model: nn.Module,
    x: torch.Tensor,
    alpha: float | torch.Tensor,
    threshold: float = 0.95,
    batch_size: int = 1000,
) -> float:
    """Fraction (in [0, 1]) of points of :func:`overconfident` (Table 2, second row, in % there)."""
    return float(overconfident(model, x, alpha, threshold, batch_size).double().mean())


# --------------------------------------------------------------------------- RBF networks (App. E)


class RBFNet(nn.Module):
    """RBF network ``f_k(x) = Σ_l α_kl exp(-γ ||x - x_l||²)`` (Hein et al. 2019, Theorem E.1).

    Args:
        centres: ``(L, d)`` tensor of centres ``x_l`` (e.g. training points); or
            an int ``L`` together with ``in_features`` for random centres.
        num_classes: ``K``.
        gamma: bandwidth ``γ > 0`` (fixed, a buffer).
        train_centres: whether the centres are learned as well.

    Inputs of any shape ``(N, ...)`` are flattened to ``(N, d)``. ``coef`` holds
    ``α`` of shape ``(K, L)``.
    """

    def __init__(
        self,
        centres: torch.Tensor | int,
        num_classes: int,
        gamma: float = 1.0,
        in_features: int | None = None,
        train_centres: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        check_number(gamma, "gamma", low=0, low_open=True)
        if isinstance(centres, torch.Tensor):
            if centres.ndim < 2 or centres.shape[0] == 0 or not torch.is_floating_point(centres):
                raise ValueError(f"expected centres as a float tensor (L, d), got {describe(centres)}")
            c = centres.detach().flatten(1).clone().float()
        else:
            L = check_positive_int(centres, "centres (number of centres)")
            d = check_positive_int(in_features, "in_features")
            c = torch.rand(L, d, generator=generator)
        self.centres = nn.Parameter(c, requires_grad=train_centres)
        self.coef = nn.Parameter(0.01 * torch.randn(num_classes, c.shape[0], generator=generator))
        self.register_buffer("gamma", torch.tensor(float(gamma)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, L)`` the basis functions ``exp(-γ ||x - x_l||²)``."""
        z = x.flatten(1)
        return torch.exp(-self.gamma * torch.cdist(z, self.centres).pow(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)``."""
        return self.features(x) @ self.coef.T


def _rbf_alpha(model: RBFNet) -> torch.Tensor:
    """``α = max_{r,k} Σ_l |α_rl - α_kl|`` (Theorem E.1)."""
    c = model.coef.detach().double()
    return (c[:, None, :] - c[None, :, :]).abs().sum(-1).max()


@torch.no_grad()
def rbf_confidence_bound(model: RBFNet, x: torch.Tensor) -> torch.Tensor:
    """The ε of Theorem E.1 at each point: ``|softmax_k f(x) - 1/K| <= ε(x)`` for every class k.

    Theorem E.1 (Hein et al. 2019): with ``r_min = min_l ||x - x_l||`` and
    ``α = max_{r,k} Σ_l |α_rl - α_kl|``, if ``r_min² >= (1/γ) log(α / log(1 + Kε))``
    then ``1/K - ε <= softmax_k f(x) <= 1/K + ε`` for all k. Solving the
    condition for the smallest ε gives the bound at a given point,

        ε(x) = (exp(α exp(-γ r_min²)) - 1) / K,

    which tends to 0 — confidence → 1/K — as ``x`` moves away from all centres.
    Returns ``(N,)`` float64.
    """
    if not isinstance(model, RBFNet):
        raise ValueError(f"expected an RBFNet, got {type(model).__name__}")
    _check_batch(x)
    z = x.flatten(1).to(model.centres.device).double()
    if z.shape[1] != model.centres.shape[1]:
        raise ValueError(f"expected inputs with {model.centres.shape[1]} features, got {z.shape[1]}")
    r2 = torch.cdist(z, model.centres.detach().double()).min(dim=1).values.pow(2)
    K = model.coef.shape[0]
    delta = _rbf_alpha(model) * torch.exp(-model.gamma.double() * r2)
    return torch.expm1(delta).cpu() / K


def rbf_far_radius(model: RBFNet, eps: float) -> float:
    """Theorem E.1's radius: ``sqrt((1/γ) log(α / log(1 + Kε)))`` (0 if the log is negative).

    Every ``x`` whose nearest centre is at least this far away has all class
    confidences within ``eps`` of ``1/K``.
    """
    if not isinstance(model, RBFNet):
        raise ValueError(f"expected an RBFNet, got {type(model).__name__}")
    check_number(eps, "eps", low=0, low_open=True)
    K = model.coef.shape[0]
    alpha = float(_rbf_alpha(model))
    if alpha == 0.0:
        return 0.0
    r2 = math.log(alpha / math.log1p(K * eps)) / float(model.gamma)
    return math.sqrt(max(r2, 0.0))


# =========================================================================== #
# Chen et al. 2021 (ATOM) — the (μ, σ, ν)-Gaussian model (§3, App. A.2)       #
# =========================================================================== #
#
# In-distribution P_X = N(μ, σ²I); test OOD family Q = {N(−μ + v, σ²I) : ‖v‖₂ ≤ ν};
# detectors G_θ(x) = sign(θᵀx) (+1 = in-distribution); the adversary moves an OOD


# --------------------------------------------------------------------------- the paper's Table 2

#: Hein et al. 2019, Table 2, per model and in-distribution: the median α at which uniform noise αx
#: reaches 99.9 % confidence (10 000 trials), and the % of the α-scaled noise, projected back to
#: [0, 1]^d, still predicted with > 95 % confidence.
PAPER_TABLE2: dict[str, dict[str, tuple[float, float]]] = {
    "plain": {"MNIST": (1.5, 98.7), "SVHN": (28.1, 99.9), "CIFAR-10": (8.1, 99.9), "CIFAR-100": (9.9, 99.8)},
    "ACET": {"MNIST": (3.0e15, 0.0), "SVHN": (49.8, 50.2), "CIFAR-10": (45.3, 3.4), "CIFAR-100": (9.9, 0.0)},
}
