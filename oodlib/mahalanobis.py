"""The Mahalanobis-distance detector of Lee et al. (2018), on one layer: the penultimate features.

Lee et al. fit, on the training set, class means ``μ_k`` of the features ``φ(x)`` and one
covariance ``Σ`` shared by all classes ("tied", their eq. 1):

    μ_k = (1/N_k) Σ_{i: y_i = k} φ(x_i),      Σ = (1/N) Σ_k Σ_{i: y_i = k} (φ(x_i) − μ_k)(φ(x_i) − μ_k)ᵀ,

and score a test input by its (negative, squared) Mahalanobis distance to the closest
class (their eq. 2):

    M(x) = max_k −(φ(x) − μ_k)ᵀ Σ⁻¹ (φ(x) − μ_k)          (higher = more in-distribution).

Optionally the input is first moved by one signed-gradient step that raises ``M`` (their
eq. 4, the analogue of ODIN's preprocessing): ``x̃ = x + ε · sign(∇ₓ M(x))``. Chen et al.
(2021, App. B.3) use the full multi-layer version with a logistic-regression combination
tuned on adversarial in-distribution examples; we use the single-layer version on the
penultimate features (no tuning data needed), as the issue asks, and say so in tables.

:class:`MahalanobisHead` wraps a classifier into a module whose "logits" are the
class-wise scores ``−(φ(x) − μ_k)ᵀ Σ⁻¹ (φ(x) − μ_k)``, so the max-logit is ``M(x)`` and
:func:`oodlib.attacks.pgd` can attack it white-box (Chen et al. eq. 116 without the
logistic regression).
"""

from __future__ import annotations

import torch
from torch import nn

from .runtime import batched, eval_mode, input_step, model_device
from .validation import check_images, check_number, check_positive_int, describe


def _check_sequential(model: nn.Module) -> nn.Sequential:
    if not isinstance(model, nn.Sequential) or len(model) < 2 or not isinstance(model[-1], nn.Linear):
        raise ValueError(
            "expected an nn.Sequential classifier ending in nn.Linear (its input is the penultimate "
            f"feature vector), got {type(model).__name__}"
        )
    return model


def penultimate(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Features ``φ(x)`` entering the last linear layer, ``(N, D)`` on the CPU (eval mode)."""
    seq = _check_sequential(model)
    check_images(x)
    body = seq[:-1]
    with eval_mode(seq):
        return batched(body, x, batch_size, model_device(seq)).flatten(1)


class MahalanobisHead(nn.Module):
    """``x ↦ (−(φ(x) − μ_k)ᵀ Σ⁻¹ (φ(x) − μ_k))_k``: class-wise Mahalanobis scores as logits.

    ``max_k`` of the output is the detector score ``M(x)`` of Lee et al. (2018, eq. 2).
    The classifier's parameters are shared, not copied.
    """

    def __init__(self, model: nn.Module, means: torch.Tensor, precision: torch.Tensor) -> None:
        super().__init__()
        seq = _check_sequential(model)
        k, d = means.shape
        if precision.shape != (d, d):
            raise ValueError(f"expected precision of shape ({d}, {d}), got {describe(precision)}")
        self.body = seq[:-1]
        self.register_buffer("means", means.float())
        self.register_buffer("precision", precision.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x).flatten(1)
        diff = f[:, None, :] - self.means[None, :, :]  # (N, K, D)
        return -torch.einsum("nkd,de,nke->nk", diff, self.precision, diff)


def fit(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None,
    batch_size: int = 1000, ridge: float = 1e-6,
) -> MahalanobisHead:
    """Class means and the tied covariance of the penultimate features on ``(x, y)`` (Lee et al. eq. 1).

    ``Σ⁻¹`` is the inverse of ``Σ + ridge · mean(diag Σ) · I`` (a tiny ridge keeps it finite
    when ReLU features are linearly dependent). Returns a :class:`MahalanobisHead`.
    """
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"expected labels y of shape ({len(x)},), got {describe(y)}")
    feats = penultimate(model, x, batch_size).double()
    k = int(num_classes) if num_classes is not None else int(y.max()) + 1
    check_positive_int(k, "num_classes")
    y = y.cpu().long()
    means = torch.zeros(k, feats.shape[1], dtype=torch.float64)
    for c in range(k):
        sel = feats[y == c]
        if len(sel) == 0:
            raise ValueError(f"class {c} has no training examples; expected every class 0..{k - 1} present")
        means[c] = sel.mean(0)
    centred = feats - means[y]
    cov = centred.T @ centred / len(feats)
    cov += ridge * cov.diagonal().mean().clamp_min(1e-12) * torch.eye(len(cov), dtype=cov.dtype)
    precision = torch.linalg.inv(cov)
    precision = 0.5 * (precision + precision.T)
    head = MahalanobisHead(model, means, precision)
    return head.to(model_device(model))


def mahalanobis(
    model: nn.Module,
    x: torch.Tensor,
    head: MahalanobisHead | None = None,
    eps: float = 0.0,
    batch_size: int = 500,
) -> torch.Tensor:
    """The Mahalanobis score ``M(x̃)`` (Lee et al. 2018, eq. 2 and 4), ``Tensor[N]`` on the CPU.

    ``model`` is either a fitted :class:`MahalanobisHead` or the classifier it was fitted
    on, with the head passed as ``head=`` (from :func:`fit`). ``eps`` > 0 applies the
    input preprocessing ``x̃ = x + eps · sign(∇ₓ M(x))`` ([0, 1] pixel units, not clipped).
    Higher = more in-distribution.
    """
    check_images(x)
    check_number(eps, "eps", low=0)
    if isinstance(model, MahalanobisHead):
        head = model
    if head is None:
        raise ValueError("expected a fitted MahalanobisHead: pass head=oodlib.mahalanobis.fit(model, x, y)")
    check_positive_int(batch_size, "batch_size")
    def step_and_score(xb: torch.Tensor) -> torch.Tensor:
        xt = input_step(lambda v: head(v).max(1).values, xb, eps)
        with torch.no_grad():
            return head(xt).max(1).values

    with eval_mode(head):
        return batched(step_and_score, x, batch_size, model_device(head))


def max_score_objective(scores: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """PGD objective for a :class:`MahalanobisHead`: ``max_k`` of its output, i.e. ``M(u)``."""
    return scores.max(dim=1).values
