"""Gaussian mixtures in a Mahalanobis-type metric: the density model behind CCU (Meinke & Hein 2020).

* :class:`Metric` — ``d(x, y) = ||C^{-1/2}(x - y)||`` with ``C`` the covariance of augmented
  in-distribution data and its small eigenvalues floored at ``1e-6 · λ_max`` (eq. 12, App. C.1);
  :func:`augment_crops` is the augmentation.
* :class:`GMM` — a Gaussian mixture in the transformed space, evaluated in log space (eq. 4),
  initialised by EM with spherical covariances (scikit-learn's ``GaussianMixture``; the authors'
  ``mixture.GMM`` no longer exists). Choices beyond the paper: the mixture weights are learned
  (softmax-normalised, started at EM's; eq. 4 writes ``1/K``, Theorem 3.1 allows any
  ``α_k > 0``); the normaliser uses ``det(C)^{1/2}`` (eq. 4 prints ``det(C)^{d/2}``; the factor
  cancels in ``p̂(y|x)`` and every bound); EM adds ``1e-3 ×`` the mean coordinate variance to
  every variance, so a component fitted to one outlier cannot collapse.

The CCU model, its loss and certificates are in :mod:`oodlib.ccu`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .validation import check_images, check_int, check_number, check_positive_int, describe

EIG_FLOOR = 1e-6  #: eq. 12: eigenvalues floored at 1e-6 · max eigenvalue
LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------------- checks


def check_batch(x: object, name: str = "x") -> torch.Tensor:
    """A non-empty finite float tensor with a batch dimension (images or points)."""
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or x.shape[0] == 0 or not torch.is_floating_point(x):
        raise ValueError(f"expected {name} as a float tensor of shape (N, ...) with N > 0, got {describe(x)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"expected {name} to be finite, got {describe(x)}")
    return x


def check_radius(radius: object, n: int) -> torch.Tensor:
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
    check_int(pad, "pad", low=0)
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
        check_batch(x, "x")
        floor = check_number(floor, "floor", low=0, low_open=True)
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
        from sklearn.mixture import GaussianMixture  # noqa: PLC0415 - heavy (~1 s); only EM needs it

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
