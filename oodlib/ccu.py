"""CCU — Certified Certain Uncertainty (Meinke & Hein 2020): Gaussian mixtures that certify low confidence.

The chapter-04 module. Equation numbers refer to Meinke & Hein, *Towards neural
networks that provably know when they don't know* (ICLR 2020).

* :class:`oodlib.gmm.Metric` — the Mahalanobis-type metric ``d(x, y) = ||C^{-1/2}(x - y)||``
  with ``C`` the covariance of augmented in-distribution data and its small
  eigenvalues floored at ``1e-6 · λ_max`` (eq. 12, App. C.1).
* :class:`oodlib.gmm.GMM` — a Gaussian mixture in the transformed space, evaluated in log
  space (eq. 4), initialised by EM with spherical covariances (scikit-learn's
  ``GaussianMixture``; the authors' ``mixture.GMM`` no longer exists).
* :class:`CCU` — the model ``p̂(y|x)`` of eq. 7 wrapped around a classifier.
  Its ``forward`` returns ``log p̂(y|x)`` (float64), so ``softmax(forward(x)) = p̂(y|x)``
  and every score in :mod:`oodlib.scores` works unchanged.
* The training plug-in ``"ccu"`` (eq. 6, λ = 1, auxiliary pool as out-distribution),
  registered in :data:`oodlib.zoo.PLUGINS`; its zoo defaults come from the profile (:func:`zoo_defaults`).
* Certificates: Theorem 3.1 (eq. 9, :func:`theorem31`), Corollary 3.1 (eq. 11,
  :func:`corollary_bound`) and the certified radius for confidence ``<= ν/M``
  by bracketed bisection on the monotone bound ``b(R)`` (App. D, eq. 24–25,
  :func:`certified_radius`).
* The attack inside a certified ball (App. C.2, :func:`~oodlib.ball_attack.attack_in_ball`) and the
  projection onto ellipsoid ∩ ``[0, 1]^d`` (:func:`~oodlib.ball_attack.project_ball_box`).
* Small helpers for the 2-D toy of Figure 1 (:func:`~oodlib.toy.fit_toy`,
  :func:`~oodlib.toy.confidence_grid`).

Choices that differ from, or go beyond, the paper's text (documented where they apply):

* the mixture weights are learned (softmax-normalised, started at EM's weights;
  eq. 4 writes ``1/K``, Theorem 3.1 allows any ``α_k > 0``);
* the Gaussian normaliser uses ``det(C)^{1/2}`` (eq. 4 prints ``det(C)^{d/2}`` but
  calls the density "properly normalized"; the factor is shared by both mixtures,
  so it cancels in ``p̂(y|x)`` and in every bound);
* EM adds ``1e-3 ×`` the mean coordinate variance to every variance, so a
  component fitted to one outlier image cannot collapse;
* every attack iterate is kept inside ellipsoid ∩ box (the paper projects once,
  at the end), and CCU itself can be attacked on ``log(p̂ - 1/M)``
  (:func:`ccu_log_excess`), whose gradient does not vanish in floating point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import beside, train
from .ball_attack import BallAttack, attack_in_ball, sample_in_ball
from .gmm import EIG_FLOOR, GMM, Metric, augment_crops, check_batch, check_radius
from .profiles import Profile
from .runtime import predict_proba, torch_generator
from .validation import check_images, check_int, check_number, check_positive_int, check_seed, describe

NU = 1.1  #: certify max confidence <= NU / M ("1.1 · uniform confidence", §4)
GMM_LR = 1e-5  #: §4 / App. C: learning rate of the GMM parameters


# --------------------------------------------------------------------------- the CCU model (eq. 7)


def _num_classes(classifier: nn.Module) -> int:
    for m in reversed(list(classifier.modules())):
        if isinstance(m, nn.Linear):
            return m.out_features
    raise ValueError("could not infer the number of classes (no nn.Linear): pass num_classes")


class CCU(nn.Module):
    """``p̂(y|x) = (p̂(y|x,i) p̂(x|i) + (λ/M) p̂(x|o)) / (p̂(x|i) + λ p̂(x|o))`` (eq. 7).

    ``p̂(y|x,i)`` is the softmax of ``classifier``; ``p̂(x|i)`` and ``p̂(x|o)`` are
    the GMMs ``gmm_in`` / ``gmm_out`` in the metric ``metric``; ``λ = p̂(o)/p̂(i)``.
    ``forward(x)`` returns ``log p̂(y|x)`` (N, M) in float64, computed with logsumexp,
    so ``softmax(forward(x)) == p̂(y|x)``; the prediction is the classifier's
    (eq. 7 is increasing in ``p̂(y|x,i)``).
    """

    def __init__(self, classifier: nn.Module, dim: int, n_in: int, n_out: int, lam: float = 1.0,
                 num_classes: int | None = None) -> None:
        super().__init__()
        self.classifier = classifier
        self.metric = Metric(dim)
        self.gmm_in = GMM(n_in, dim)
        self.gmm_out = GMM(n_out, dim)
        self.lam = check_number(lam, "lam", low=0, low_open=True)
        self.num_classes = check_positive_int(num_classes or _num_classes(classifier), "num_classes")
        if self.num_classes < 2:
            raise ValueError(f"expected at least 2 classes, got {self.num_classes}")

    # -- densities
    def log_densities(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log p̂(x|i), log p̂(x|o))``, each (N,) float64."""
        z = self.metric.transform(x)
        ld = self.metric.log_det
        return self.gmm_in.log_density(z, ld), self.gmm_out.log_density(z, ld)

    def log_ratio(self, x: torch.Tensor) -> torch.Tensor:
        """``log(p̂(x|i) / (λ p̂(x|o)))`` (N,): the calibration of Theorem 3.1's proof."""
        lpi, lpo = self.log_densities(x)
        return lpi - lpo - math.log(self.lam)

    def _log_posterior(self, logits: torch.Tensor, lpi: torch.Tensor, lpo: torch.Tensor) -> torch.Tensor:
        log_in = torch.log_softmax(logits.double(), dim=1) + lpi[:, None]
        log_out = (lpo + math.log(self.lam) - math.log(self.num_classes))[:, None]
        num = torch.logaddexp(log_in, log_out.expand_as(log_in))
        return num - torch.logaddexp(lpi, lpo + math.log(self.lam))[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``log p̂(y|x)`` (N, M), float64 (eq. 7)."""
        logits = self.classifier(x)
        if logits.shape[1] != self.num_classes:
            raise ValueError(f"expected the classifier to return {self.num_classes} logits, "
                             f"got shape {tuple(logits.shape)}")
        lpi, lpo = self.log_densities(x)
        return self._log_posterior(logits, lpi, lpo)

    # -- parameters
    def gmm_parameters(self) -> list[nn.Parameter]:
        return [*self.gmm_in.parameters(), *self.gmm_out.parameters()]

    def classifier_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.classifier.parameters() if p.requires_grad]

    @torch.no_grad()
    def clamp_out_variances_(self, factor: float = 2.0) -> None:
        """``θ_l ← max(θ_l, factor · max_k σ_k)`` (§4: factor 2, after every gradient step)."""
        floor = float(self.gmm_in.log_var.max()) + 2 * math.log(factor)
        self.gmm_out.log_var.clamp_(min=floor)

    @torch.no_grad()
    def init_from_data(self, x_in: torch.Tensor, x_out: torch.Tensor, *, em_in: int, em_out: int,
                       pad: int = 2, seed: int = 0, floor: float = EIG_FLOOR,
                       max_iter: int = 100) -> None:
        """Metric from augmented in-data (eq. 12, App. C.1), then EM for both mixtures (§4).

        ``x_in`` is augmented with random crops (``pad`` pixels, one per image) when
        it is a batch of images and ``pad > 0``; the in-GMM is fitted on ``em_in``
        augmented images, the out-GMM on ``em_out`` images of ``x_out``; finally
        ``θ ≥ 2 max σ`` is enforced.
        """
        check_batch(x_in, "x_in")
        check_batch(x_out, "x_out")
        em_in = check_positive_int(em_in, "em_in")
        em_out = check_positive_int(em_out, "em_out")
        gen = torch_generator(seed)
        x_in = x_in.detach().cpu()
        aug = augment_crops(x_in, pad, gen) if (x_in.ndim == 4 and pad > 0) else x_in
        self.metric.fit(aug, floor=floor)
        metric_cpu = Metric(self.metric.dim)
        metric_cpu.load_state_dict({k: v.cpu() for k, v in self.metric.state_dict().items()})
        pick_in = torch.randperm(len(aug), generator=gen)[: min(em_in, len(aug))]
        pick_out = torch.randperm(len(x_out), generator=gen)[: min(em_out, len(x_out))]
        z_in = metric_cpu.transform(aug[pick_in].double())
        z_out = metric_cpu.transform(x_out.detach().cpu()[pick_out].double())
        self.gmm_in.fit_em(z_in, seed=seed, max_iter=max_iter)
        self.gmm_out.fit_em(z_out, seed=seed, max_iter=max_iter)
        self.clamp_out_variances_()


# --------------------------------------------------------------------------- training (eq. 6)


def ccu_loss(model: CCU, x_in: torch.Tensor, y_in: torch.Tensor, x_out: torch.Tensor | None
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """The negative of eq. 6 (to be minimised), with ``λ = model.lam``:

        - mean_i log p̂(y_i|x_i) - λ mean_j (1/M) Σ_m log p̂(m|z_j)
        - mean_i log p̂(x_i)     - λ mean_j log p̂(z_j).

    The first two terms are the classification terms (they reduce to CE + OE's
    uniform-label CE when ``p̂(y|x) = p̂(y|x,i)``); the last two are the density
    terms. Logged separately as ``ce``, ``out``, ``nll_in``, ``nll_out``.
    """
    if not isinstance(model, CCU):
        raise ValueError(f"expected a CCU model, got {type(model).__name__}")
    n = len(x_in)
    xb = x_in if x_out is None else torch.cat([x_in, x_out])
    logits = model.classifier(xb)
    lpi, lpo = model.log_densities(xb)
    logp = model._log_posterior(logits, lpi, lpo)
    log_px = torch.logaddexp(lpi, lpo + math.log(model.lam)) - math.log1p(model.lam)
    ce = F.nll_loss(logp[:n], y_in)
    nll_in = -log_px[:n].mean()
    loss = ce + nll_in
    logs = {"ce": ce.item(), "nll_in": nll_in.item()}
    if x_out is not None and len(x_out) > 0:
        out = -logp[n:].mean()
        nll_out = -log_px[n:].mean()
        loss = loss + model.lam * (out + nll_out)
        with torch.no_grad():
            mmc = logp[n:].exp().max(1).values.mean()
        logs.update(out=out.item(), nll_out=nll_out.item(), mmc_out=mmc.item())
    logs["loss"] = loss.item()
    return loss, logs


class CCUMethod(train.Method):
    """Training plug-in ``"ccu"``: eq. 6 on in-batches and equally large auxiliary batches.

    Hyper-parameters: ``lam`` (λ = p̂(o)/p̂(i), 1 in the paper), ``n_in`` / ``n_out``
    (centroids K_i / K_o), ``em_in`` / ``em_out`` (EM sample sizes), ``gmm_lr``
    (1e-5), ``pad`` (crop padding for the covariance, 2), ``seed`` (EM and crops),
    ``dim`` (input dimension, 784 for Fashion-MNIST).

    Hooks: :meth:`wrap` builds the CCU structure from shapes only; :meth:`init_from_data`
    fits the metric and runs EM; :meth:`after_step` enforces ``θ_l ≥ 2 max_k σ_k``;
    :meth:`param_groups` gives the GMM parameters their own learning rate and no
    weight decay (§4).
    """

    name = "ccu"
    bf16_safe = False  # the mixtures' log-densities (eq. 4) need float32 exponents
    out_source = "aux"

    def __init__(self, lam: float = 1.0, n_in: int = 100, n_out: int = 100, em_in: int = 10000,
                 em_out: int = 20000, gmm_lr: float = GMM_LR, pad: int = 2, seed: int = 0,
                 dim: int = 784) -> None:
        self.lam = check_number(lam, "lam", low=0, low_open=True)
        self.out_ratio = self.lam  # eq. 6 weighs the out-terms by λ; the aux batch is λ·B (Hein's eq. 1)
        self.n_in = check_positive_int(n_in, "n_in")
        self.n_out = check_positive_int(n_out, "n_out")
        self.em_in = check_positive_int(em_in, "em_in")
        self.em_out = check_positive_int(em_out, "em_out")
        self.gmm_lr = check_number(gmm_lr, "gmm_lr", low=0, low_open=True)
        self.pad = check_int(pad, "pad", low=0)
        self.seed = check_seed(seed)
        self.dim = check_positive_int(dim, "dim")

    def wrap(self, model: nn.Module) -> CCU:
        return CCU(model, self.dim, self.n_in, self.n_out, self.lam)

    def init_from_data(self, model: nn.Module, x: torch.Tensor, x_out: torch.Tensor | None) -> None:
        if not isinstance(model, CCU):
            raise ValueError(f"expected the CCU model built by wrap(), got {type(model).__name__}")
        if x_out is None:
            raise ValueError("CCU fits its out-GMM on an auxiliary pool: pass x_out")
        model.init_from_data(x, x_out, em_in=self.em_in, em_out=self.em_out, pad=self.pad, seed=self.seed)

    def loss(self, model: nn.Module, batch: train.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        return ccu_loss(model, batch.x_in, batch.y_in, batch.x_out)

    def after_step(self, model: nn.Module) -> None:
        model.clamp_out_variances_()

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
        return [
            {"params": model.classifier_parameters(), "lr": lr, "weight_decay": weight_decay},
            {"params": model.gmm_parameters(), "lr": self.gmm_lr, "weight_decay": 0.0},
        ]


HPARAMS = ("lam", "n_in", "n_out", "em_in", "em_out", "gmm_lr", "pad", "seed", "dim")


def zoo_defaults(p: Profile) -> dict[str, object]:
    """The zoo hyper-parameters of ``"ccu"`` from the profile's ``ccu`` part (they enter the hash)."""
    return {"lam": 1.0, "n_in": p.ccu.centroids, "n_out": p.ccu.centroids, "em_in": p.ccu.em_in_size,
            "em_out": p.ccu.em_out_size, "gmm_lr": GMM_LR, "seed": p.seed}


# --------------------------------------------------------------------------- certificates


def _check_ccu(model: object) -> CCU:
    if not isinstance(model, CCU):
        raise ValueError(f"expected a CCU model, got {type(model).__name__}")
    return model


def _center_distances(model: CCU, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``d(x0, μ_k)`` (N, K_i) and ``d(x0, ν_l)`` (N, K_o), float64."""
    z = model.metric.transform(x0.double().to(model.metric.eigvals.device))
    return model.gmm_in.sq_dist(z).sqrt(), model.gmm_out.sq_dist(z).sqrt()


@torch.no_grad()
def log_b(model: CCU, x0: torch.Tensor, radius: torch.Tensor | float,
          dists: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``log b(R)`` of Corollary 3.1 / eq. 24 (N,), float64:

        b(R) = Σ_k α_k exp(-max(d(x0, μ_k) - R, 0)² / (2σ_k²)) / Σ_l β_l exp(-(d(x0, ν_l) + R)² / (2θ_l²)),

    an upper bound on ``p̂(x|i)/p̂(x|o)`` over the ball ``d(x, x0) <= R``;
    increasing in ``R``.
    """
    model = _check_ccu(model)
    check_batch(x0, "x0")
    r = check_radius(radius, len(x0)).to(model.metric.eigvals.device)
    d_in, d_out = dists if dists is not None else _center_distances(model, x0)
    ld = model.metric.log_det
    gi, go = model.gmm_in, model.gmm_out
    num = torch.logsumexp(gi.log_alpha(ld) - 0.5 * (d_in - r[:, None]).clamp_min(0) ** 2
                          * torch.exp(-gi.log_var), dim=1)
    den = torch.logsumexp(go.log_alpha(ld) - 0.5 * (d_out + r[:, None]) ** 2 * torch.exp(-go.log_var), dim=1)
    return num - den


def _conf_from_log_b(lb: torch.Tensor, m: int, lam: float) -> torch.Tensor:
    """``(1/M)(1 + M b/λ)/(1 + b/λ)`` from ``log b``, stably: ``1/M + (1 - 1/M) σ(log b - log λ)``."""
    return 1.0 / m + (1.0 - 1.0 / m) * torch.sigmoid(lb - math.log(lam))


@torch.no_grad()
def corollary_bound(model: CCU, x0: torch.Tensor, radius: torch.Tensor | float) -> torch.Tensor:
    """Corollary 3.1 (eq. 11): an upper bound on ``max_{d(x, x0) <= R} max_y p̂(y|x)`` (N,)."""
    model = _check_ccu(model)
    return _conf_from_log_b(log_b(model, x0, radius), model.num_classes, model.lam).cpu()


@torch.no_grad()
def linf_ball_radius(metric: Metric, eps: float) -> float:
    """A radius ``R`` with ``B_∞(x0, eps) ⊆ {x : d(x, x0) <= R}`` for every ``x0`` (eq. 12 metric).

    ``d(x0 + δ, x0)² = δᵀ C⁻¹ δ <= eps² · min(Σ_jk |C⁻¹_jk|, d · λ_max(C⁻¹))`` for
    ``‖δ‖_∞ <= eps`` (the first from ``|δ_j δ_k| <= eps²``, the second from ``‖δ‖₂² <= d eps²``).
    Both are sound upper bounds (the exact maximum is a box-constrained quadratic program);
    the smaller is returned, so the ball may be larger than needed, never smaller.
    """
    if not isinstance(metric, Metric):
        raise ValueError(f"expected an oodlib.gmm.Metric, got {type(metric).__name__}")
    eps = check_number(eps, "eps", low=0)
    inv = (metric.eigvecs / metric.eigvals) @ metric.eigvecs.T  # C⁻¹ = U diag(1/λ) Uᵀ
    entrywise = float(inv.abs().sum())
    spectral = metric.dim / float(metric.eigvals.min())
    return float(eps) * math.sqrt(min(entrywise, spectral))


@torch.no_grad()
def linf_certified_confidence(model: CCU, x0: torch.Tensor, eps: float) -> torch.Tensor:
    """Upper bound ``(N,)`` on CCU's confidence over each ``B_∞(x0, eps)``: Corollary 3.1 at
    :func:`linf_ball_radius` (the ℓ∞ ball lies inside that metric ball, so the bound is sound)."""
    model = _check_ccu(model)
    check_images(x0, "x0")
    return corollary_bound(model, x0, linf_ball_radius(model.metric, eps))


@torch.no_grad()
def certified_radius(model: CCU, x0: torch.Tensor, nu: float = NU, iters: int = 200,
                     rtol: float = 1e-12) -> torch.Tensor:
    """The largest ``R`` with Corollary 3.1's bound ``<= nu/M`` (App. D), by bracketed bisection.

    Solves ``b(R) = λ (ν - 1)/(M - ν)`` (eq. 25) for each ``x0``: ``log b`` is
    increasing in ``R``, the bracket starts at ``[0, h]`` and ``h`` doubles until
    ``b(h)`` exceeds the target. Returns the lower end of the final bracket, so
    the bound at the returned radius is at most ``nu/M`` (sound). A point whose
    bound already exceeds ``nu/M`` at ``R = 0`` gets radius ``0`` (no certificate),
    float64, on the CPU.
    """
    model = _check_ccu(model)
    check_batch(x0, "x0")
    m = model.num_classes
    if not (isinstance(nu, int | float) and 1 < nu < m):
        raise ValueError(f"expected nu in (1, M={m}), got {nu!r}")
    check_positive_int(iters, "iters")
    target = math.log(model.lam * (nu - 1) / (m - nu))
    dists = _center_distances(model, x0)
    n = len(x0)
    dev = dists[0].device
    lo = torch.zeros(n, dtype=torch.float64, device=dev)
    ok = log_b(model, x0, lo, dists) <= target
    scale = float(torch.cat([dists[0].flatten(), dists[1].flatten()]).max()) + 1.0
    hi = torch.full((n,), scale, dtype=torch.float64, device=dev)
    for _ in range(200):
        above = log_b(model, x0, hi, dists) > target
        if bool(above[ok].all()):
            break
        hi = torch.where(above, hi, 2 * hi)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        below = log_b(model, x0, mid, dists) <= target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
        if bool(((hi - lo) <= rtol * hi).all()):
            break
    return torch.where(ok, lo, torch.zeros_like(lo)).cpu()


@torch.no_grad()
def nearest_distance(metric: Metric, z: torch.Tensor, x_ref: torch.Tensor, batch_size: int = 5000
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``min_i d(z_n, x_i)`` and its index ``i*`` over a reference set (e.g. the training set).

    The reference set is transformed batch-wise in float32, distances are taken in float64.
    """
    check_batch(z, "z")
    check_batch(x_ref, "x_ref")
    dev = metric.eigvals.device
    zq = metric.transform(z.double().to(dev))
    best = torch.full((len(z),), math.inf, dtype=torch.float64, device=dev)
    arg = torch.zeros(len(z), dtype=torch.long, device=dev)
    for i in range(0, len(x_ref), batch_size):
        zr = metric.transform(x_ref[i : i + batch_size].to(dev).float()).double()
        d, j = torch.cdist(zq, zr).min(1)
        better = d < best
        best = torch.where(better, d, best)
        arg = torch.where(better, j + i, arg)
    return best.cpu(), arg.cpu()


@dataclass
class Theorem31:
    """Theorem 3.1 (eq. 9) evaluated at points ``z`` (all tensors (N,), float64).

    ``lhs = min_i d(z, x_i)``; ``offset = d(x_{i*}, μ_{k*}) + d(μ_{k*}, ν_{l*}) (2/Δ + 1/√Δ)``
    (the ε-free part of the right-hand side); ``eps`` is the smallest ε for which
    eq. 9 holds (``inf`` where ``lhs < offset``), so ``max_m p̂(m|z) <= conf_bound = (1 + eps)/M``.
    """

    lhs: torch.Tensor
    offset: torch.Tensor
    eps: torch.Tensor
    conf_bound: torch.Tensor
    delta: torch.Tensor
    theta: torch.Tensor
    log_a: torch.Tensor  # log((M-1)/λ · Σ_k α_k / β_{l*})
    k_star: torch.Tensor
    l_star: torch.Tensor
    i_star: torch.Tensor

    def rhs(self, eps: float) -> torch.Tensor:
        """The right-hand side of eq. 9 for a given ε (with ``max(0, ·)`` under the root, as in the proof)."""
        e = check_number(eps, "eps", low=0, low_open=True)
        log_term = (self.log_a - math.log(e)).clamp_min(0)
        return self.offset + self.theta * torch.sqrt(2 / self.delta * log_term)


@torch.no_grad()
def theorem31(model: CCU, z: torch.Tensor, x_train: torch.Tensor) -> Theorem31:
    """Theorem 3.1: how far from the training set ``z`` is, and the ε this distance certifies.

    ``k* = argmin_k d(z, μ_k)/σ_k``, ``l* = argmax_l β_l exp(-d(z, ν_l)²/(2θ_l²))``,
    ``i* = argmin_i d(z, x_i)``, ``Δ = θ_{l*}²/σ_{k*}² - 1`` (requires ``min θ > max σ``).
    Eq. 9 holds for ``ε`` iff ``lhs - offset >= θ_{l*} sqrt((2/Δ) log(A/ε))`` with
    ``A = (M-1)/λ · Σ_k α_k / β_{l*}``; solving for ε gives
    ``ε* = A exp(-(Δ/2) ((lhs - offset)/θ_{l*})²)`` when ``lhs >= offset``.
    """
    model = _check_ccu(model)
    check_batch(z, "z")
    gi, go, metric = model.gmm_in, model.gmm_out, model.metric
    if float(go.log_var.min()) <= float(gi.log_var.max()):
        raise ValueError("Theorem 3.1 needs min_l θ_l > max_k σ_k; call model.clamp_out_variances_()")
    m, lam = model.num_classes, model.lam
    dev = metric.eigvals.device
    lhs, i_star = nearest_distance(metric, z, x_train)
    zt = metric.transform(z.double().to(dev))
    d_in = gi.sq_dist(zt).sqrt()
    k_star = (d_in / gi.sigma).argmin(1)
    ld = metric.log_det
    l_star = go.log_components(zt, ld).argmax(1)
    sig2 = gi.log_var.exp()[k_star]
    th2 = go.log_var.exp()[l_star]
    delta = th2 / sig2 - 1
    x_star = metric.transform(x_train[i_star.to(x_train.device)].double().to(dev))
    d_x_mu = (x_star - gi.mu[k_star]).norm(dim=1)
    d_mu_nu = (gi.mu[k_star] - go.mu[l_star]).norm(dim=1)
    offset = d_x_mu + d_mu_nu * (2 / delta + 1 / delta.sqrt())
    log_a = (math.log(m - 1) - math.log(lam) + torch.logsumexp(gi.log_alpha(ld), 0)
             - go.log_alpha(ld)[l_star])
    theta = th2.sqrt()
    gap = lhs.to(dev) - offset
    eps = torch.where(gap >= 0, torch.exp(log_a - 0.5 * delta * (gap.clamp_min(0) / theta) ** 2),
                      torch.full_like(gap, math.inf))
    return Theorem31(lhs=lhs, offset=offset.cpu(), eps=eps.cpu(), conf_bound=((1 + eps) / m).cpu(),
                     delta=delta.cpu(), theta=theta.cpu(), log_a=log_a.cpu(), k_star=k_star.cpu(),
                     l_star=l_star.cpu(), i_star=i_star)


def ccu_log_excess(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``log(max_y p̂(y|x) - 1/M)`` for a :class:`CCU` model, computed without cancellation.

    From eq. 7, ``p̂(y|x) - 1/M = (p̂(y|x,i) - 1/M) · ξ/(1 + ξ)`` with
    ``ξ = p̂(x|i)/(λ p̂(x|o))``, so the objective is
    ``log(max_y p̂(y|x,i) - 1/M) + logsigmoid(log ξ)``. It has the same maximiser
    as the confidence, but its gradient does not vanish in float arithmetic where
    ``p̂(y|x)`` rounds to ``1/M`` — a stronger attack on CCU than
    :func:`oodlib.attacks.log_max_confidence`.
    """
    model = _check_ccu(model)
    logits = model.classifier(x).double()
    p_max = torch.softmax(logits, dim=1).max(dim=1).values
    excess = (p_max - 1.0 / model.num_classes).clamp_min(1e-300)
    return excess.log() + F.logsigmoid(model.log_ratio(x))


class LogExcess(nn.Module):
    """``x -> log(max_y p̂(y|x) − 1/M)`` as a one-column output (:func:`ccu_log_excess`).

    The module an attack differentiates to raise CCU's confidence (chapter 04's ball attack,
    :func:`oodlib.detectors.ccu_detector`), with :func:`excess_objective` as its objective.
    """

    def __init__(self, ccu: CCU) -> None:
        super().__init__()
        self.ccu = _check_ccu(ccu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ccu_log_excess(self.ccu, x)[:, None]


def excess_objective(z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """The attack objective of :class:`LogExcess`'s output: its one column."""
    return z[:, 0]


@dataclass
class BallCheck:
    """Corollary 3.1 against sampling and the App. C.2 attack, ball by ball (:func:`check_corollary`)."""

    radii: torch.Tensor  # (R,) float64, the balls' radii in the metric
    bound: torch.Tensor  # (R,) Corollary 3.1's upper bound on the confidence in each ball
    sampled_max: torch.Tensor  # (R,) highest confidence among the random points of each ball
    attacked: BallAttack  # the attack's best point per ball, its confidence and objective

    def sound(self, tol: float) -> bool:
        """Whether the bound is >= every sampled and attacked confidence (up to ``tol``)."""
        return bool((self.attacked.confidence <= self.bound + tol).all()
                    and (self.sampled_max <= self.bound + tol).all())


def check_corollary(model: CCU, x0: torch.Tensor, radii: torch.Tensor, n_samples: int = 2000,
                    steps: int = 100, restarts: int = 3, generator: torch.Generator | None = None,
                    box: bool = True) -> BallCheck:
    """Corollary 3.1's bound in balls of radius ``radii`` around one point ``x0`` (1, ...), checked by
    ``n_samples`` random points of each ball (:func:`oodlib.ball_attack.sample_in_ball`) and by the
    attack of App. C.2 on CCU's log-excess (:func:`oodlib.ball_attack.attack_in_ball`).

    The bound must never be below what either finds (chapter 04's Fig. 1 check). ``box=False``
    drops the ``[0, 1]^d`` constraint (the 2-D toy).
    """
    model = _check_ccu(model)
    radii = torch.as_tensor(radii, dtype=torch.float64).flatten()
    if x0.ndim < 2 or x0.shape[0] != 1:
        raise ValueError(f"expected x0 as one point of shape (1, ...), got {describe(x0)}")
    x0s = x0.repeat(len(radii), *([1] * (x0.ndim - 1)))
    bound = corollary_bound(model, x0s, radii)
    samples = sample_in_ball(model.metric, x0s, radii, n_samples, generator, box=box).float()
    samples = samples.reshape(-1, *x0.shape[1:])
    conf = predict_proba(model, samples).max(1).values.double()
    attacked = attack_in_ball(LogExcess(model), model.metric, x0s, radii, excess_objective, steps=steps,
                              restarts=restarts, box=box, generator=generator, show_progress=False,
                              confidence=lambda u: predict_proba(model, u).max(1).values)
    return BallCheck(radii, bound, conf.reshape(len(radii), -1).max(1).values, attacked)


# --------------------------------------------------------------------------- the paper's tables

#: Meinke & Hein 2020, Fashion-MNIST rows (%), one value per method of PAPER_METHODS and per OOD set:
#: Table 2 (AUROC) and Table 6 (AUPR, in-distribution positive); ACET2's AUROC is Table 4's, and the
#: paper reports no AUPR for it (nan). PAPER_SETS maps the start of our set's name to the paper's column.
PAPER_METHODS = ("Base", "ODIN", "Maha", "ACET2", "OE", "CCU")
PAPER_AUROC_FMNIST: dict[str, tuple[float, ...]] = {
    "MNIST": (96.7, 99.0, 96.7, 96.5, 96.3, 97.8), "EMNIST": (97.5, 99.3, 97.5, 97.3, 99.3, 99.5),
    "GrCIFAR10": (91.0, 93.0, 98.2, 91.6, 100.0, 100.0), "Noise": (97.3, 98.9, 98.9, 97.1, 100.0, 100.0),
    "Uniform": (96.9, 98.8, 99.1, 100.0, 97.6, 100.0)}
PAPER_AUPR_FMNIST: dict[str, tuple[float, ...]] = {
    "MNIST": (97.6, 99.2, 97.2, math.nan, 97.0, 98.3),
    "EMNIST": (96.8, 98.9, 96.5, math.nan, 98.6, 99.1),
    "GrCIFAR10": (92.2, 92.9, 98.6, math.nan, 100.0, 100.0),
    "Noise": (93.8, 95.4, 97.0, math.nan, 100.0, 100.0),
    "Uniform": (97.8, 99.1, 99.4, math.nan, 98.2, 100.0)}
#: Table 2 (AUROC, %) for every in-distribution set, one value per method of PAPER_METHODS per OOD set (the
#: paper's set names), ACET2's from Table 4. Our copy of the paper merged two row labels of the SVHN,
#: CIFAR10 and CIFAR100 blocks, shifting the later labels up a row: the rows printed "Uniform" are the
#: Noise rows (ACET's column matches Table 4's in 15 of 16 cells, and CCU is 100.0 only on the true
#: Uniform rows), and SVHN's and CIFAR10's Uniform rows are missing (None; ACET2's 100.0 is Table 4's).
PAPER_AUROC_BY_SET: dict[str, dict[str, tuple[float | None, ...]]] = {
    "MNIST": {
        "FMNIST": (97.4, 98.7, 96.8, 99.8, 99.9, 99.9),
        "EMNIST": (89.2, 88.9, 91.6, 93.5, 95.8, 92.0),
        "GrCIFAR10": (99.7, 99.9, 98.7, 100.0, 100.0, 100.0),
        "Noise": (100.0, 100.0, 97.2, 100.0, 100.0, 100.0),
        "Uniform": (95.2, 98.2, 100.0, 100.0, 100.0, 100.0),
    },
    "FMNIST": PAPER_AUROC_FMNIST,
    "SVHN": {
        "CIFAR10": (95.4, 95.9, 97.1, 94.2, 100.0, 100.0),
        "CIFAR100": (94.5, 94.8, 96.7, 93.7, 100.0, 100.0),
        "LSUN_CR": (95.6, 96.5, 97.2, 96.1, 100.0, 100.0),
        "Imagenet-": (94.7, 95.1, 96.8, 95.6, 100.0, 100.0),
        "Noise": (96.4, 82.7, 98.0, 95.2, 97.8, 97.4),
        "Uniform": (None, None, None, 100.0, None, None),
    },
    "CIFAR10": {
        "SVHN": (95.8, 96.7, 91.5, 82.8, 98.8, 98.2),
        "CIFAR100": (87.3, 87.5, 82.8, 85.3, 95.3, 94.2),
        "LSUN_CR": (91.9, 93.3, 89.2, 88.5, 98.6, 98.2),
        "Imagenet-": (87.5, 88.1, 84.1, 84.8, 94.7, 93.3),
        "Noise": (96.5, 97.6, 94.4, 91.2, 97.3, 97.0),
        "Uniform": (None, None, None, 100.0, None, None),
    },
    "CIFAR100": {
        "SVHN": (78.8, 81.3, 77.5, 84.6, 93.5, 94.2),
        "CIFAR10": (78.6, 79.5, 59.9, 77.0, 81.6, 80.2),
        "LSUN_CR": (81.0, 81.4, 79.7, 80.0, 95.4, 95.9),
        "Imagenet-": (80.8, 81.3, 70.8, 79.4, 83.8, 81.4),
        "Noise": (73.4, 76.8, 90.6, 66.3, 86.9, 94.6),
        "Uniform": (93.3, 93.5, 94.3, 100.0, 99.1, 100.0),
    },
}
#: Table 1 (FMNIST block): clean test error (%), success rate (%) of the attack inside the balls CCU
#: certifies around uniform noise, and AUC (%) of those adversarial noise points vs the test set;
#: ACET2's row is Table 5's
PAPER_TABLE1_FMNIST: dict[str, tuple[float, float, float]] = {
    "Base": (4.8, 100.0, 0.0), "ODIN": (4.8, 100.0, 0.0), "Maha": (4.8, 100.0, 18.8),
    "ACET2": (4.6, 0.0, 100.0), "OE": (5.7, 100.0, 35.7), "CCU": (4.9, 0.0, 100.0)}
#: Table 3: FMNIST test images with CCU confidence below 1.1/M (of 10 000)
PAPER_BELOW_LEVEL_FMNIST = 0
PAPER_SETS = {"MNIST": "MNIST", "font letters": "EMNIST", "photo crops": "GrCIFAR10",
              "smooth noise": "Noise", "uniform noise": "Uniform"}


def table_beside_paper(ours: pd.DataFrame, paper: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """Our Table 2 (or 6) beside the paper's: one row per OOD set, each method's paper value beside ours.

    ``ours`` has one row per OOD set (the row label starts with a key of ``PAPER_SETS`` where the
    set has a paper column) and one column per method of ``PAPER_METHODS``; ``paper`` is
    ``PAPER_AUROC_FMNIST`` or ``PAPER_AUPR_FMNIST``. Layout: :func:`oodlib.beside.table`.
    """
    if not isinstance(ours, pd.DataFrame) or not set(PAPER_METHODS) <= set(ours.columns):
        raise ValueError(f"expected a table with a column per method {list(PAPER_METHODS)}, "
                         f"got {describe(ours)}")
    rows = []
    for name in ours.index:
        key = next((PAPER_SETS[k] for k in PAPER_SETS if str(name).startswith(k)), None)
        values = paper[key] if key is not None else (None,) * len(PAPER_METHODS)
        rows.append({"OOD set": name, **{m: beside.Pair(values[i], ours.loc[name, m])
                                         for i, m in enumerate(PAPER_METHODS)}})
    return beside.table(rows, index=["OOD set"])


def paper_auroc_gap(a: str = "CCU", b: str = "OE") -> float:
    """Mean over the paper's five Fashion-MNIST OOD sets of AUROC ``a`` minus ``b`` (points, Table 2)."""
    i, j = PAPER_METHODS.index(a), PAPER_METHODS.index(b)
    return sum(v[i] - v[j] for v in PAPER_AUROC_FMNIST.values()) / len(PAPER_AUROC_FMNIST)


def paper_mean_auroc() -> dict[str, float]:
    """Each method's mean AUROC (%) over the paper's five Fashion-MNIST OOD sets (Table 2; ACET2: Table 4)."""
    return {m: sum(v[i] for v in PAPER_AUROC_FMNIST.values()) / len(PAPER_AUROC_FMNIST)
            for i, m in enumerate(PAPER_METHODS)}
