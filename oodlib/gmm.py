"""CCU — Certified Certain Uncertainty (Meinke & Hein 2020): Gaussian mixtures that certify low confidence.

The chapter-04 module. Equation numbers refer to Meinke & Hein, *Towards neural
networks that provably know when they don't know* (ICLR 2020).

* :class:`Metric` — the Mahalanobis-type metric ``d(x, y) = ||C^{-1/2}(x - y)||``
  with ``C`` the covariance of augmented in-distribution data and its small
  eigenvalues floored at ``1e-6 · λ_max`` (eq. 12, App. C.1).
* :class:`GMM` — a Gaussian mixture in the transformed space, evaluated in log
  space (eq. 4), initialised by EM with spherical covariances (scikit-learn's
  ``GaussianMixture``; the authors' ``mixture.GMM`` no longer exists).
* :class:`CCU` — the model ``p̂(y|x)`` of eq. 7 wrapped around a classifier.
  Its ``forward`` returns ``log p̂(y|x)`` (float64), so ``softmax(forward(x)) = p̂(y|x)``
  and every score in :mod:`oodlib.scores` works unchanged.
* The training plug-in ``"ccu"`` (eq. 6, λ = 1, auxiliary pool as out-distribution),
  registered with :func:`oodlib.train.register`; its zoo defaults come from the profile.
* Certificates: Theorem 3.1 (eq. 9, :func:`theorem31`), Corollary 3.1 (eq. 11,
  :func:`corollary_bound`) and the certified radius for confidence ``<= ν/M``
  by bracketed bisection on the monotone bound ``b(R)`` (App. D, eq. 24–25,
  :func:`certified_radius`).
* The attack inside a certified ball (App. C.2, :func:`attack_in_ball`) and the
  projection onto ellipsoid ∩ ``[0, 1]^d`` (:func:`project_ball_box`).
* Small helpers for the 2-D toy of Figure 1 (:func:`fit_toy`, :func:`confidence_grid`).

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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import train, zoo
from .runtime import model_device, progress
from .validation import check_images, check_positive_int, describe

NU = 1.1  # certify max confidence <= NU / M ("1.1 · uniform confidence", §4)
EIG_FLOOR = 1e-6  # eq. 12: eigenvalues floored at 1e-6 · max eigenvalue
GMM_LR = 1e-5  # §4 / App. C: learning rate of the GMM parameters
LOG_2PI = math.log(2 * math.pi)

__all__ = [
    "CCU", "CCUMethod", "GMM", "Metric", "BallAttack", "Theorem31", "NU",
    "augment_crops", "ccu_loss", "log_confidence", "ccu_log_excess",
    "log_b", "corollary_bound", "linf_ball_radius", "linf_certified_confidence", "certified_radius",
    "theorem31", "nearest_distance",
    "sample_in_ball", "project_ellipsoid", "project_ball_box", "attack_in_ball",
    "fit_toy", "confidence_grid",
]


# --------------------------------------------------------------------------- checks


def _check_pos_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and value > 0
    ):
        raise ValueError(f"expected {name} as a finite number > 0, got {value!r}")
    return float(value)


def _check_batch(x: object, name: str = "x") -> torch.Tensor:
    """A non-empty finite float tensor with a batch dimension (images or points)."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0 or not torch.is_floating_point(x):
        raise ValueError(f"expected {name} as a float tensor of shape (N, ...) with N > 0, got {describe(x)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"expected {name} to be finite, got {describe(x)}")
    return x


def _check_radius(radius: object, n: int) -> torch.Tensor:
    r = torch.as_tensor(radius, dtype=torch.float64).flatten()
    if r.numel() == 1:
        r = r.expand(n).clone()
    if r.numel() != n or not bool(torch.isfinite(r).all()) or bool((r < 0).any()):
        raise ValueError(f"expected radius as a number or {n} finite values >= 0, got {describe(r)}")
    return r


# --------------------------------------------------------------------------- metric (eq. 12)


def augment_crops(x: torch.Tensor, pad: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crops with zero padding ``pad`` (App. C.1: 2 pixels on MNIST / FMNIST), one per image.

    Equivalent to shifting each image by a random offset in ``[-pad, pad]²`` and
    filling with zeros. Used to compute the covariance ``C'`` of eq. 12.
    """
    check_images(x, "x")
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"expected pad as an int >= 0, got {pad!r}")
    if pad == 0:
        return x.clone()
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    out = torch.empty_like(x)
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            sel = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            if sel.any():
                out[sel] = padded[sel, :, dy : dy + h, dx : dx + w]
    return out


class Metric(nn.Module):
    """``d(x, y) = ||C^{-1/2}(x - y)||₂`` with ``C = Σ_i max(λ_i, floor · λ_max) u_i u_iᵀ`` (eq. 12).

    Stores the eigenvectors ``U`` and the floored eigenvalues of ``C`` (float64
    buffers). The *transformed space* is ``z = T x`` with ``T = diag(λ)^{-1/2} Uᵀ``,
    where ``d`` is the Euclidean distance. Built as the identity from ``dim``
    alone (so a checkpoint can be loaded into it) and fitted by :meth:`fit`.
    Transforms run in the dtype of their input (float32 for training, float64
    for certificates).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        dim = check_positive_int(dim, "dim")
        self.register_buffer("eigvecs", torch.eye(dim, dtype=torch.float64))
        self.register_buffer("eigvals", torch.ones(dim, dtype=torch.float64))

    @property
    def dim(self) -> int:
        return self.eigvals.numel()

    @property
    def log_det(self) -> torch.Tensor:
        """``log det C`` (float64 scalar)."""
        return self.eigvals.log().sum()

    @torch.no_grad()
    def fit(self, x: torch.Tensor, floor: float = EIG_FLOOR, batch_size: int = 10000) -> Metric:
        """Set ``C`` from the covariance of ``x`` (N, ...) with the eigenvalue floor of eq. 12."""
        _check_batch(x, "x")
        floor = _check_pos_float(floor, "floor")
        flat = x.reshape(len(x), -1)
        if flat.shape[1] != self.dim:
            raise ValueError(f"expected x with {self.dim} features per sample, got {describe(x)}")
        if len(x) < 2:
            raise ValueError(f"expected at least 2 samples to estimate a covariance, got {len(x)}")
        d = self.dim
        s1 = torch.zeros(d, dtype=torch.float64)
        s2 = torch.zeros(d, d, dtype=torch.float64)
        for i in range(0, len(flat), batch_size):
            xb = flat[i : i + batch_size].double().cpu()
            s1 += xb.sum(0)
            s2 += xb.T @ xb
        n = len(flat)
        mean = s1 / n
        cov = (s2 - n * torch.outer(mean, mean)) / (n - 1)
        evals, evecs = torch.linalg.eigh((cov + cov.T) / 2)
        evals = evals.clamp_min(floor * float(evals.max()))
        self.eigvecs.copy_(evecs.to(self.eigvecs.device))
        self.eigvals.copy_(evals.to(self.eigvals.device))
        return self

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1)
        if flat.shape[1] != self.dim:
            raise ValueError(f"expected inputs with {self.dim} features per sample, got {describe(x)}")
        return flat

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """``z = T x = diag(λ)^{-1/2} Uᵀ x`` for each row of ``x`` flattened; shape ``(N, d)``."""
        flat = self._flat(x)
        u = self.eigvecs.to(flat.dtype)
        return (flat @ u) * self.eigvals.rsqrt().to(flat.dtype)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """``x = T^{-1} z = U diag(λ)^{1/2} z`` (flat, shape ``(N, d)``)."""
        return (z * self.eigvals.sqrt().to(z.dtype)) @ self.eigvecs.to(z.dtype).T

    def grad_to_z(self, g: torch.Tensor) -> torch.Tensor:
        """A gradient w.r.t. ``x`` (flat) expressed w.r.t. ``z``: ``(T^{-1})ᵀ g = diag(λ)^{1/2} Uᵀ g``."""
        return (g @ self.eigvecs.to(g.dtype)) * self.eigvals.sqrt().to(g.dtype)

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Row-wise ``d(x_n, y_n)`` (float64); ``y`` may be a single point broadcast over ``x``."""
        x = x.double()
        y = y.double().to(x.device)
        if y.shape[0] != x.shape[0]:
            y = y.expand(x.shape[0], *y.shape[1:]) if y.shape[0] == 1 else y
        return self.transform(x - y).norm(dim=1)


# --------------------------------------------------------------------------- GMM (eq. 4)


class GMM(nn.Module):
    """``p̂(x) = Σ_k α_k exp(-d(x, μ_k)² / (2σ_k²))`` with normalised Gaussians (eq. 4), in log space.

    Parameters live in the transformed space of a :class:`Metric` (float64):
    centroids ``mu`` (K, d), ``log_var = log σ_k²`` (K,) and unnormalised log
    mixture weights ``log_weight`` (K,). With ``w = softmax(log_weight)``,

        log α_k = log w_k - (d/2) log(2π σ_k²) - (1/2) log det C,

    so ``p̂`` integrates to one over ``R^d``. All methods take transformed points ``z``.
    """

    def __init__(self, n_components: int, dim: int) -> None:
        super().__init__()
        k = check_positive_int(n_components, "n_components")
        d = check_positive_int(dim, "dim")
        self.mu = nn.Parameter(torch.zeros(k, d, dtype=torch.float64))
        self.log_var = nn.Parameter(torch.zeros(k, dtype=torch.float64))
        self.log_weight = nn.Parameter(torch.zeros(k, dtype=torch.float64))

    @property
    def n_components(self) -> int:
        return self.mu.shape[0]

    @property
    def dim(self) -> int:
        return self.mu.shape[1]

    @property
    def sigma(self) -> torch.Tensor:
        """Standard deviations ``σ_k`` (K,)."""
        return (0.5 * self.log_var).exp()

    def log_alpha(self, log_det: torch.Tensor | float = 0.0) -> torch.Tensor:
        """``log α_k`` (K,): log weight plus the log normaliser of a d-dim Gaussian in the metric."""
        return (torch.log_softmax(self.log_weight, 0) - 0.5 * self.dim * (LOG_2PI + self.log_var)
                - 0.5 * torch.as_tensor(log_det, dtype=torch.float64))

    def sq_dist(self, z: torch.Tensor) -> torch.Tensor:
        """``d(x, μ_k)²`` (N, K) for transformed points ``z`` (N, d), in float64."""
        z = z.double()
        sq = (z * z).sum(1, keepdim=True) - 2 * z @ self.mu.T + (self.mu * self.mu).sum(1)
        return sq.clamp_min(0.0)

    def log_components(self, z: torch.Tensor, log_det: torch.Tensor | float = 0.0) -> torch.Tensor:
        """``log α_k - d(x, μ_k)² / (2σ_k²)`` (N, K)."""
        return self.log_alpha(log_det) - 0.5 * self.sq_dist(z) * torch.exp(-self.log_var)

    def log_density(self, z: torch.Tensor, log_det: torch.Tensor | float = 0.0) -> torch.Tensor:
        """``log p̂(x)`` (N,) by logsumexp over the components (eq. 4)."""
        return torch.logsumexp(self.log_components(z, log_det), dim=1)

    @torch.no_grad()
    def fit_em(self, z: np.ndarray | torch.Tensor, seed: int = 0, max_iter: int = 100,
               reg: float = 1e-3) -> GMM:
        """Initialise by EM with spherical covariances (scikit-learn ``GaussianMixture``), §4.

        ``reg`` (times the mean per-coordinate variance of ``z``) is added to every
        variance so that a component fitted to a single outlier image cannot
        collapse to zero variance (EM's singularity).
        """
        from sklearn.mixture import GaussianMixture

        arr = z.detach().cpu().double().numpy() if isinstance(z, torch.Tensor) else np.asarray(z, np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.dim or len(arr) < self.n_components:
            raise ValueError(f"expected z of shape (N >= {self.n_components}, {self.dim}), got {arr.shape}")
        reg_covar = float(reg * arr.var(0).mean()) + 1e-12
        gm = GaussianMixture(self.n_components, covariance_type="spherical", random_state=seed,
                             max_iter=max_iter, reg_covar=reg_covar).fit(arr)
        dev = self.mu.device
        self.mu.copy_(torch.as_tensor(gm.means_, dtype=torch.float64, device=dev))
        self.log_var.copy_(torch.as_tensor(np.log(gm.covariances_), dtype=torch.float64, device=dev))
        self.log_weight.copy_(torch.as_tensor(np.log(gm.weights_), dtype=torch.float64, device=dev))
        return self


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
        self.lam = _check_pos_float(lam, "lam")
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

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """``log p̂(x) = log((p̂(x|i) + λ p̂(x|o)) / (1 + λ))`` (eq. 7, right)."""
        lpi, lpo = self.log_densities(x)
        return torch.logaddexp(lpi, lpo + math.log(self.lam)) - math.log1p(self.lam)

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
        _check_batch(x_in, "x_in")
        _check_batch(x_out, "x_out")
        em_in = check_positive_int(em_in, "em_in")
        em_out = check_positive_int(em_out, "em_out")
        gen = torch.Generator().manual_seed(seed)
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
    out_source = "aux"

    def __init__(self, lam: float = 1.0, n_in: int = 100, n_out: int = 100, em_in: int = 10000,
                 em_out: int = 20000, gmm_lr: float = GMM_LR, pad: int = 2, seed: int = 0,
                 dim: int = 784) -> None:
        self.lam = _check_pos_float(lam, "lam")
        self.n_in = check_positive_int(n_in, "n_in")
        self.n_out = check_positive_int(n_out, "n_out")
        self.em_in = check_positive_int(em_in, "em_in")
        self.em_out = check_positive_int(em_out, "em_out")
        self.gmm_lr = _check_pos_float(gmm_lr, "gmm_lr")
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            raise ValueError(f"expected pad as an int >= 0, got {pad!r}")
        self.pad = pad
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"expected seed as an int >= 0, got {seed!r}")
        self.seed = seed
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


_HPARAMS = ("lam", "n_in", "n_out", "em_in", "em_out", "gmm_lr", "pad", "seed", "dim")


def _make_ccu(**hparams: object) -> CCUMethod:
    unknown = sorted(set(hparams) - set(_HPARAMS))
    if unknown:
        raise ValueError(f"unknown hyper-parameter(s) {unknown} for method 'ccu'; "
                         f"expected some of {list(_HPARAMS)}")
    return CCUMethod(**hparams)


train.register("ccu", _make_ccu)
zoo.register_defaults("ccu", lambda p: {
    "lam": 1.0, "n_in": p.ccu_centroids, "n_out": p.ccu_centroids, "em_in": p.ccu_em_in_size,
    "em_out": p.ccu_em_out_size, "gmm_lr": GMM_LR, "seed": p.seed,
})


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
    _check_batch(x0, "x0")
    r = _check_radius(radius, len(x0)).to(model.metric.eigvals.device)
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
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating) or not 0 <= eps < math.inf:
        raise ValueError(f"expected eps as a finite number >= 0, got {eps!r}")
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
    _check_batch(x0, "x0")
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
    _check_batch(z, "z")
    _check_batch(x_ref, "x_ref")
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
        e = _check_pos_float(eps, "eps")
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
    _check_batch(z, "z")
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


# ---------------------------------------------------------------- attack in a certified ball (App. C.2)


ModelObjective = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def log_confidence(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``max_y log softmax(model(x))_y`` (N,): the confidence an attack maximises (adversarial noise)."""
    return torch.log_softmax(model(x), dim=1).max(dim=1).values


def ccu_log_excess(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``log(max_y p̂(y|x) - 1/M)`` for a :class:`CCU` model, computed without cancellation.

    From eq. 7, ``p̂(y|x) - 1/M = (p̂(y|x,i) - 1/M) · ξ/(1 + ξ)`` with
    ``ξ = p̂(x|i)/(λ p̂(x|o))``, so the objective is
    ``log(max_y p̂(y|x,i) - 1/M) + logsigmoid(log ξ)``. It has the same maximiser
    as the confidence, but its gradient does not vanish in float arithmetic where
    ``p̂(y|x)`` rounds to ``1/M`` — a stronger attack on CCU than ``log_confidence``.
    """
    model = _check_ccu(model)
    logits = model.classifier(x).double()
    p_max = torch.softmax(logits, dim=1).max(dim=1).values
    excess = (p_max - 1.0 / model.num_classes).clamp_min(1e-300)
    return excess.log() + F.logsigmoid(model.log_ratio(x))


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
    r = _check_radius(radius, len(x)).to(x.device)
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
    r = _check_radius(radius, len(x)).to(x.device)
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
    _check_batch(x0, "x0")
    n = check_positive_int(n, "n")
    x0f = x0.reshape(len(x0), -1).double()
    r = _check_radius(radius, len(x0)).to(x0f.device)
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
    objective: ModelObjective = log_confidence,
    *,
    steps: int = 500,
    restarts: int = 50,
    step_size: float | torch.Tensor = 3.0,
    proj_rounds: int = 0,
    box: bool = True,
    generator: torch.Generator | None = None,
    show_progress: bool = True,
) -> BallAttack:
    """Maximise ``objective(model, x)`` over ``{x : d(x, x0) <= R} ∩ [0, 1]^d`` (App. C.2).

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
    """
    if box:
        check_images(x0, "x0")
    else:
        _check_batch(x0, "x0")
    check_positive_int(steps, "steps")
    check_positive_int(restarts, "restarts")
    if not callable(objective):
        raise ValueError(f"expected objective as a callable (model, x) -> Tensor[N], got {objective!r}")
    if isinstance(proj_rounds, bool) or not isinstance(proj_rounds, int) or proj_rounds < 0:
        raise ValueError(f"expected proj_rounds as an int >= 0, got {proj_rounds!r}")
    n, shape = len(x0), x0.shape
    r = _check_radius(radius, n)
    eta0 = _check_radius(step_size, n)
    if not bool((eta0 > 0).all()):
        raise ValueError(f"expected step_size > 0 (a number or one per seed), got {describe(eta0)}")
    dev = model_device(model)
    mdev = metric.eigvals.device
    x0f = x0.reshape(n, -1).double().to(mdev)
    r = r.to(mdev)
    was_training = model.training
    model.eval()

    def evaluate(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xi = x.float().reshape(shape).to(dev).requires_grad_(True)
            val = objective(model, xi)
            if val.shape != (n,):
                raise ValueError(f"expected the objective to return shape ({n},), got {tuple(val.shape)}")
            (g,) = torch.autograd.grad(val.sum(), xi)
        val = val.detach().double().to(mdev)
        return torch.nan_to_num(val, nan=-math.inf), g.reshape(n, -1).double().to(mdev)

    try:
        best_x = x0f.clone()
        best_val, _ = evaluate(x0f)
        bar = progress(total=restarts * steps, desc="attack in ball", leave=False,
                       disable=not show_progress)
        for _ in range(restarts):
            x = sample_in_ball(metric, x0f, r, 1, generator, box).to(mdev)
            val, g = evaluate(x)
            better = val > best_val
            best_x[better], best_val[better] = x[better], val[better]
            eta = eta0.to(mdev).clone()
            for _ in range(steps):
                gz = metric.grad_to_z(g)
                gz = gz / gz.norm(dim=1, keepdim=True).clamp_min(1e-300)
                u = metric.transform(x - x0f) + eta[:, None] * gz
                nu = u.norm(dim=1)
                u = u * torch.where(nu > r, r / nu.clamp_min(1e-300), torch.ones_like(nu))[:, None]
                cand = x0f + metric.inverse(u)
                cand = (project_ball_box(metric, cand, x0f, r, proj_rounds, box) if proj_rounds
                        else _feasible(metric, cand, x0f, r, box))
                cval, cg = evaluate(cand)
                acc = cval > val
                x = torch.where(acc[:, None], cand, x)
                g = torch.where(acc[:, None], cg, g)
                val = torch.where(acc, cval, val)
                eta = torch.where(acc, eta * 1.1, eta / 2)
                better = val > best_val
                best_x[better], best_val[better] = x[better], val[better]
                bar.update(1)
        bar.close()
        x_adv = _round_into_ball(metric, best_x, x0f, r)
        with torch.no_grad():
            xa = x_adv.reshape(shape).to(dev)
            conf = torch.softmax(model(xa).double(), dim=1).max(dim=1).values.cpu()
            val = objective(model, xa).detach().double().cpu()
        dist = metric.distance(x_adv.double(), x0f).cpu()
        return BallAttack(x_adv.reshape(shape).cpu(), conf, val, dist)
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------- 2-D toy helpers (Figure 1)


def fit_toy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: train.Method | None = None,
    x_out: torch.Tensor | None = None,
    *,
    steps: int = 300,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    batch_size: int | None = None,
    seed: int = 0,
) -> list[float]:
    """Train on points ``(N, d)`` (the toy problems) with the hooks of a :class:`oodlib.train.Method`.

    :func:`oodlib.train.fit` expects images; this is the same loop for points:
    ``method.init_from_data``, Adam on ``method.param_groups``, ``method.loss``
    on a batch (full batch by default) plus an out-batch of ``ceil(lam·B)``
    points drawn from ``x_out`` when the method trains on one, then
    ``method.after_step``. Returns the loss per step.
    """
    method = method or train.Plain()
    _check_batch(x, "x")
    check_positive_int(steps, "steps")
    if len(x) != len(y):
        raise ValueError(f"expected x and y of equal length, got {len(x)} and {len(y)}")
    if method.out_source == "aux" and x_out is None:
        raise ValueError(f"method {method.name!r} trains on an out-distribution: pass x_out")
    gen = torch.Generator().manual_seed(seed)
    method.init_from_data(model, x, x_out)
    opt = torch.optim.Adam(method.param_groups(model, lr, weight_decay))
    bs = len(x) if batch_size is None else check_positive_int(batch_size, "batch_size")
    n_out = math.ceil(method.lam * bs)
    model.train()
    losses = []
    for step in range(steps):
        idx = torch.randint(len(x), (bs,), generator=gen) if bs < len(x) else torch.arange(len(x))
        xo = None
        if method.out_source == "aux":
            xo = x_out[torch.randint(len(x_out), (n_out,), generator=gen)]
        loss, _ = method.loss(model, train.Batch(x[idx], y[idx], xo, step, steps, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        method.after_step(model)
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def confidence_grid(model: nn.Module, lim: float, n: int = 200, center: tuple[float, float] = (0.0, 0.0)
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Max confidence and prediction of a 2-D model on an ``n × n`` grid over ``center ± lim``.

    Returns ``(xs, ys, confidence, prediction)`` with ``confidence[i, j]`` at ``(xs[j], ys[i])``.
    """
    lim = _check_pos_float(lim, "lim")
    n = check_positive_int(n, "n")
    xs = np.linspace(center[0] - lim, center[0] + lim, n)
    ys = np.linspace(center[1] - lim, center[1] + lim, n)
    gx, gy = np.meshgrid(xs, ys)
    pts = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    was_training = model.training
    model.eval()
    p = torch.softmax(model(pts.to(model_device(model))).double(), dim=1).cpu()
    model.train(was_training)
    conf, pred = p.max(1)
    return xs, ys, conf.reshape(n, n).numpy(), pred.reshape(n, n).numpy()
