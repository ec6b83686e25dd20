"""ATOM's (μ, σ, ν)-Gaussian model (Chen et al. 2021, §3, App. A.2): why outlier mining matters.

In-distribution ``P_X = N(μ, σ²I)``; test OOD family ``Q = {N(−μ + v, σ²I) : ‖v‖₂ ≤ ν}``;
detectors ``G_θ(x) = sign(θᵀx)`` (+1 = in-distribution); the adversary moves an OOD point by
``δ`` with ``‖δ‖_∞ ≤ ε``. Closed forms of the false negative rate and the (robust) false positive
rate (eq. 17), the four estimators of θ (no auxiliary data, ideal auxiliary data, a mixture,
mixture + mining) and their Monte-Carlo check. Everything is numpy (float64) and takes a
``numpy.random.Generator`` (or a seed) for its randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr as _Phi  # standard normal CDF Φ (eq. 17)
from scipy.stats import binom as _binom

from .validation import check_choice, check_number, check_positive_int, describe

#: the four detectors of Chen et al. 2021 §3 compared on the Gaussian model
GAUSSIAN_CASES = ("no auxiliary", "ideal auxiliary", "mixture", "mixture + mining")


@dataclass(frozen=True)
class GaussianOODModel:
    """One instance of the (μ, σ, ν)-Gaussian model (Chen et al. 2021, §3 / App. A.2).

    ``eps`` is the ℓ∞ budget of the adversary on OOD inputs (the FPR of eq. 1 with
    Ω = Ω_{∞,ε}); ``far`` is the factor c of the uninformative component
    N(cμ, σ²I) of U_mix (the paper uses μ₀ = 10μ).
    """

    mu: np.ndarray
    sigma: float
    nu: float
    eps: float
    far: float = 10.0

    def __post_init__(self) -> None:
        mu = np.asarray(self.mu, dtype=np.float64)
        if mu.ndim != 1 or mu.size == 0 or not np.all(np.isfinite(mu)):
            raise ValueError(f"expected mu as a finite 1-D vector, got {describe(self.mu)}")
        object.__setattr__(self, "mu", mu)
        check_number(self.sigma, "sigma", low=0, low_open=True)
        for name in ("nu", "eps", "far"):
            check_number(getattr(self, name), name, low=0)

    @property
    def d(self) -> int:
        """The dimension."""
        return int(self.mu.size)

    @classmethod
    def instance(
        cls, d: int = 1000, n0: int = 1, eps: float = 0.25, nu_ratio: float = 0.25, far: float = 10.0,
        seed: int = 0,
    ) -> GaussianOODModel:
        """The family of eq. 15: ``σ² = sqrt(d / n0)``, ``ν = nu_ratio · ‖μ‖₂`` (≤ ‖μ‖₂/4).

        ``μ ~ N(0, I_d)`` as in Schmidt et al. (2018) and Carmon et al. (2019), whose
        model this one adapts (so ‖μ‖₂² ≈ d, the scale eq. 48 divides by).
        """
        check_positive_int(d, "d")
        check_positive_int(n0, "n0")
        if not 0 <= nu_ratio <= 0.25:
            raise ValueError(f"expected nu_ratio in [0, 1/4] (eq. 15: ν ≤ ‖μ‖₂/4), got {nu_ratio!r}")
        mu = np.random.default_rng(seed).standard_normal(d)
        return cls(mu=mu, sigma=float((d / n0) ** 0.25), nu=float(nu_ratio * np.linalg.norm(mu)),
                   eps=float(eps), far=float(far))


def _thetas(theta: object, d: int) -> np.ndarray:
    th = np.asarray(theta, dtype=np.float64)
    if th.ndim not in (1, 2) or th.shape[-1] != d or not np.all(np.isfinite(th)):
        raise ValueError(f"expected theta of shape ({d},) or (T, {d}) with finite values, got {describe(th)}")
    return th


def gaussian_fnr(theta: np.ndarray, model: GaussianOODModel) -> np.ndarray | float:
    """Eq. 16: ``FNR(G_θ) = P_{x~P_X}[θᵀx ≤ 0] = Φ(−μᵀθ / (σ‖θ‖₂))``.

    ``theta`` is one vector ``(d,)`` or a stack ``(T, d)``; θ = 0 rejects everything (FNR 1).
    """
    th = _thetas(theta, model.d)
    norm = np.linalg.norm(th, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(norm > 0, _Phi(-(th @ model.mu) / (model.sigma * norm)), 1.0)
    return float(out) if out.ndim == 0 else out


def gaussian_robust_fpr(theta: np.ndarray, model: GaussianOODModel, v: np.ndarray | None = None
                        ) -> np.ndarray | float:
    """Eq. 18–22: the robust FPR of G_θ on Q_v = N(−μ + v, σ²I) under ‖δ‖_∞ ≤ ε.

    ``Φ((−μ + v)ᵀθ / (σ‖θ‖₂) + ε‖θ‖₁ / (σ‖θ‖₂))``: the worst δ is ``ε·sign(θ)``.
    ``v`` defaults to 0 (the test OOD distribution N(−μ, σ²I)).
    """
    th = _thetas(theta, model.d)
    v = np.zeros(model.d) if v is None else np.asarray(v, dtype=np.float64)
    if v.shape != (model.d,):
        raise ValueError(f"expected v of shape ({model.d},), got {describe(v)}")
    norm = np.linalg.norm(th, axis=-1)
    l1 = np.abs(th).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = ((v - model.mu) @ th.T + model.eps * l1) / (model.sigma * norm)
        out = np.where(norm > 0, _Phi(z), 1.0)
    return float(out) if out.ndim == 0 else out


def gaussian_worst_fpr(theta: np.ndarray, model: GaussianOODModel) -> np.ndarray | float:
    """Eq. 23–24: ``sup_{Q∈Q} FPR = Φ(−μᵀθ/(σ‖θ‖₂) + ν/σ + ε‖θ‖₁/(σ‖θ‖₂))``.

    The worst shift is ``v* = ν θ/‖θ‖₂`` (Cauchy–Schwarz); θ = 0 accepts everything (FPR 1).
    """
    th = _thetas(theta, model.d)
    norm = np.linalg.norm(th, axis=-1)
    l1 = np.abs(th).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (-(th @ model.mu) + model.eps * l1) / (model.sigma * norm) + model.nu / model.sigma
        out = np.where(norm > 0, _Phi(z), 1.0)
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------- sampling


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def sample_in(model: GaussianOODModel, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``n`` in-distribution points from P_X = N(μ, σ²I), shape ``(n, d)``."""
    n = check_positive_int(n, "n")
    return model.mu + model.sigma * _rng(rng).standard_normal((n, model.d))


def sample_ood(model: GaussianOODModel, n: int, rng: np.random.Generator | int | None = None,
               v: np.ndarray | None = None) -> np.ndarray:
    """``n`` points from the test OOD distribution Q_v = N(−μ + v, σ²I) (v = 0 by default)."""
    n = check_positive_int(n, "n")
    shift = 0.0 if v is None else np.asarray(v, dtype=np.float64)
    return -model.mu + shift + model.sigma * _rng(rng).standard_normal((n, model.d))


def sample_aux_ideal(model: GaussianOODModel, n: int, rng: np.random.Generator | int | None = None
                     ) -> np.ndarray:
    """``n`` points of U_X (App. A.2.2): v uniform in the ball ‖v‖₂ ≤ ν, then x ~ N(−μ + v, σ²I)."""
    n = check_positive_int(n, "n")
    g = _rng(rng)
    direction = g.standard_normal((n, model.d))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = model.nu * g.random(n) ** (1.0 / model.d)
    return -model.mu + radius[:, None] * direction + model.sigma * g.standard_normal((n, model.d))


def sample_aux_mixture(model: GaussianOODModel, n: int, rng: np.random.Generator | int | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of U_mix (§3): ½ N(−μ, σ²I) + ½ N(cμ, σ²I) with c = ``model.far`` (10).

    Returns the points and a boolean mask, true for the informative component N(−μ, σ²I).
    """
    n = check_positive_int(n, "n")
    g = _rng(rng)
    informative = g.random(n) < 0.5
    centre = np.where(informative[:, None], -model.mu, model.far * model.mu)
    return centre + model.sigma * g.standard_normal((n, model.d)), informative


# --------------------------------------------------------------------------- estimators


def _points(x: object, name: str, d: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or (d is not None and a.shape[1] != d) or not np.all(np.isfinite(a)):
        want = "(n, d)" if d is None else f"(n, {d})"
        raise ValueError(f"expected {name} as finite points of shape {want} with n >= 1, got {describe(a)}")
    return a


def theta_in_only(x_in: np.ndarray) -> np.ndarray:
    """Eq. 28: ``θ_n = (1/n) Σ x_i`` — the averaging detector without auxiliary data."""
    return _points(x_in, "x_in").mean(axis=0)


def theta_averaging(x_in: np.ndarray, x_aux: np.ndarray) -> np.ndarray:
    """Eq. 2 / 33, in the pooled form of eq. 35: ``θ = (Σ x_i − Σ x̃_j) / (n + n')``.

    With n = n' this is eq. 2 up to a positive factor (which does not change sign(θᵀx)).
    """
    a = _points(x_in, "x_in")
    b = _points(x_aux, "x_aux", a.shape[1])
    return (a.sum(axis=0) - b.sum(axis=0)) / (len(a) + len(b))


def mining_window() -> tuple[float, float]:
    """The confidence interval [a, b] = [σ(−3/2), σ(−1/2)] of the proof of Proposition 1."""
    return 1.0 / (1.0 + math.exp(1.5)), 1.0 / (1.0 + math.exp(0.5))


def gaussian_confidence(x: np.ndarray, theta_int: np.ndarray) -> np.ndarray:
    """Eq. 48: ``f(x) = σ(xᵀθ_int / d)``, the in-distribution confidence used for mining."""
    pts = _points(x, "x")
    th = np.asarray(theta_int, dtype=np.float64)
    if th.shape != (pts.shape[1],):
        raise ValueError(f"expected theta_int of shape ({pts.shape[1]},), got {describe(th)}")
    return 1.0 / (1.0 + np.exp(-(pts @ th) / pts.shape[1]))


def theta_mining(
    x_in: np.ndarray, x_aux: np.ndarray, a: float | None = None, b: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Outlier mining in the Gaussian model (eq. 47–49).

    ``θ_int = (1/n) Σ x_i`` (eq. 47); keep the auxiliary points whose confidence
    ``f(x̃) = σ(x̃ᵀθ_int/d)`` lies in [a, b] (default [σ(−3/2), σ(−1/2)]); ``θ_om`` is −1
    times their mean (eq. 49). If no point is kept, θ_om is undefined in the paper; we
    return θ_int then. Returns ``(θ_om, keep_mask)``.
    """
    xi = _points(x_in, "x_in")
    xa = _points(x_aux, "x_aux", xi.shape[1])
    lo, hi = mining_window() if a is None or b is None else (float(a), float(b))
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"expected 0 <= a < b <= 1, got a={lo!r}, b={hi!r}")
    theta_int = xi.mean(axis=0)
    conf = gaussian_confidence(xa, theta_int)
    keep = (conf >= lo) & (conf <= hi)
    if not keep.any():
        return theta_int, keep
    return -xa[keep].mean(axis=0), keep


def expected_theta_mixture_coef(n: int, n_aux: int, far: float = 10.0) -> float:
    """``E[θ_{n,n'}] = coef · μ`` under U_mix: ``(n − n'(c − 1)/2) / (n + n')``; −7/4 for n = n', c = 10."""
    check_positive_int(n, "n")
    check_positive_int(n_aux, "n_aux")
    return (n - n_aux * (far - 1.0) / 2.0) / (n + n_aux)


# --------------------------------------------------------------------------- Monte Carlo and plug-in forms


def monte_carlo_errors(theta: np.ndarray, model: GaussianOODModel, n_test: int = 100_000,
                       rng: np.random.Generator | int | None = None) -> tuple[float, float]:
    """Estimate FNR and the worst robust FPR of G_θ by sampling test points (checks eq. 16 / 24).

    FNR: the fraction of x ~ P_X with θᵀx ≤ 0. Worst robust FPR: x ~ Q_{v*} with
    v* = ν θ/‖θ‖₂, moved by the worst δ = ε·sign(θ); the fraction with θᵀ(x + δ) ≥ 0.
    """
    th = _thetas(theta, model.d)
    if th.ndim != 1:
        raise ValueError(f"expected one theta of shape ({model.d},), got {describe(th)}")
    g = _rng(rng)
    norm = np.linalg.norm(th)
    if norm == 0:
        return 1.0, 1.0
    fn = fp = 0
    done = 0
    v_star = model.nu * th / norm
    delta = model.eps * np.sign(th)
    while done < n_test:
        m = min(20_000, n_test - done)
        fn += int(np.sum(sample_in(model, m, g) @ th <= 0))
        fp += int(np.sum((sample_ood(model, m, g, v_star) + delta) @ th >= 0))
        done += m
    return fn / n_test, fp / n_test


def plugin_errors(model: GaussianOODModel, coef: np.ndarray | float, noise_var: np.ndarray | float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """FNR (eq. 16) and worst robust FPR (eq. 24) for ``θ = coef·μ + ξ``, ``ξ ~ N(0, noise_var·I)``.

    The large-d plug-in form: ``μᵀθ ≈ coef‖μ‖²``, ``‖θ‖₂² ≈ coef²‖μ‖² + d·noise_var`` and
    ``‖θ‖₁ ≈ Σ_j E|coef μ_j + ξ_j|`` (folded-normal means) — the concentration the proofs of
    Propositions 1, 3 and 4 rest on. Broadcasts over ``coef`` and ``noise_var``.
    """
    c = np.asarray(coef, dtype=np.float64)
    s2 = np.asarray(noise_var, dtype=np.float64)
    if np.any(s2 < 0):
        raise ValueError("expected noise_var >= 0")
    c, s2 = np.broadcast_arrays(c, s2)
    mu = model.mu
    m2 = float(mu @ mu)
    s = np.sqrt(s2)[..., None]
    m = c[..., None] * mu
    with np.errstate(divide="ignore", invalid="ignore"):
        folded = np.where(s > 0, s * np.sqrt(2 / np.pi) * np.exp(-0.5 * (m / s) ** 2)
                          + m * (1 - 2 * _Phi(-m / s)), np.abs(m))
        l1 = folded.sum(-1)
        l2 = np.sqrt(c**2 * m2 + model.d * s2)
        margin = c * m2 / (model.sigma * l2)
        fnr = np.where(l2 > 0, _Phi(-margin), 1.0)
        robust = -margin + model.nu / model.sigma + model.eps * l1 / (model.sigma * l2)
        fpr = np.where(l2 > 0, _Phi(robust), 1.0)
    return fnr, fpr


def predicted_errors(model: GaussianOODModel, case: str, n: int, n_aux: int) -> tuple[float, float]:
    """Plug-in prediction of the expected FNR and worst robust FPR for one of :data:`GAUSSIAN_CASES`.

    * ``"no auxiliary"`` (eq. 28, Prop. 3): θ = μ + ξ with noise σ²/n.
    * ``"ideal auxiliary"`` (eq. 33, Prop. 4): noise σ²/(n + n') plus the ball shifts.
    * ``"mixture"`` (§3): coef (n + k − c(n' − k))/(n + n') with k ~ Bin(n', ½) informative
      points; its mean is −7/4 for n = n', c = 10.
    * ``"mixture + mining"`` (eq. 47–49, Prop. 1): k ~ Bin(n', ½·p_keep) kept informative
      points, θ = μ + ξ with noise σ²/k (θ_int when k = 0), where p_keep is the chance that
      an informative point's t = x̃ᵀθ_int/d falls in [−3/2, −1/2] (far points: ≈ 0, neglected).
    """
    check_choice(case, GAUSSIAN_CASES, "case")
    check_positive_int(n, "n")
    check_positive_int(n_aux, "n_aux")
    s2 = model.sigma**2
    if case == "no auxiliary":
        f, p = plugin_errors(model, 1.0, s2 / n)
        return float(f), float(p)
    total = n + n_aux
    if case == "ideal auxiliary":
        shift_var = n_aux * model.nu**2 / (model.d + 2) / total**2
        f, p = plugin_errors(model, 1.0, s2 / total + shift_var)
        return float(f), float(p)
    if case == "mixture":
        k = np.arange(n_aux + 1)
        w = _binom.pmf(k, n_aux, 0.5)
        f, p = plugin_errors(model, (n + k - model.far * (n_aux - k)) / total, np.full(k.shape, s2 / total))
        return float(w @ f), float(w @ p)
    m2 = float(model.mu @ model.mu)
    norm_int = math.sqrt(m2 + model.d * s2 / n)
    centre, spread = -m2 / model.d, model.sigma * norm_int / model.d
    p_keep = float(_Phi((-0.5 - centre) / spread) - _Phi((-1.5 - centre) / spread))
    k = np.arange(n_aux + 1)
    w = _binom.pmf(k, n_aux, 0.5 * p_keep)
    f, p = plugin_errors(model, 1.0, s2 / np.maximum(k, 1))
    f0, p0 = plugin_errors(model, 1.0, s2 / n)
    f = np.where(k > 0, f, f0)
    p = np.where(k > 0, p, p0)
    return float(w @ f), float(w @ p)


def simulate_gaussian(
    model: GaussianOODModel,
    ns: list[int] | tuple[int, ...],
    aux_ratio: int = 8,
    trials: int = 20,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Monte Carlo over training sets for the four detectors of :data:`GAUSSIAN_CASES`.

    For each n in ``ns`` and each trial: draw n in-distribution points and
    n' = ``aux_ratio``·n auxiliary points (from U_X for the ideal case, from U_mix for the
    two mixture cases), fit θ, and record its exact FNR (eq. 16) and worst robust FPR
    (eq. 24). Returns arrays keyed ``"n"``, ``"n_aux"``, ``"<case>/fnr"``, ``"<case>/fpr"``
    (shape ``(len(ns), trials)``), ``"<case>/fnr_pred"``, ``"<case>/fpr_pred"`` (the
    :func:`predicted_errors` plug-in forms) and ``"mining/kept_informative"`` /
    ``"mining/kept_far"`` (fractions of each U_mix component the mining step keeps).
    """
    ns = [check_positive_int(n, "n") for n in ns]
    check_positive_int(aux_ratio, "aux_ratio")
    check_positive_int(trials, "trials")
    g = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {"n": np.array(ns), "n_aux": np.array(ns) * aux_ratio}
    for case in GAUSSIAN_CASES:
        for k in ("fnr", "fpr"):
            out[f"{case}/{k}"] = np.zeros((len(ns), trials))
    out["mining/kept_informative"] = np.zeros((len(ns), trials))
    out["mining/kept_far"] = np.zeros((len(ns), trials))
    for i, n in enumerate(ns):
        n_aux = n * aux_ratio
        for t in range(trials):
            x_in = sample_in(model, n, g)
            x_mix, informative = sample_aux_mixture(model, n_aux, g)
            theta_om, keep = theta_mining(x_in, x_mix)
            thetas = {
                "no auxiliary": theta_in_only(x_in),
                "ideal auxiliary": theta_averaging(x_in, sample_aux_ideal(model, n_aux, g)),
                "mixture": theta_averaging(x_in, x_mix),
                "mixture + mining": theta_om,
            }
            for case, th in thetas.items():
                out[f"{case}/fnr"][i, t] = gaussian_fnr(th, model)
                out[f"{case}/fpr"][i, t] = gaussian_worst_fpr(th, model)
            out["mining/kept_informative"][i, t] = keep[informative].mean() if informative.any() else np.nan
            out["mining/kept_far"][i, t] = keep[~informative].mean() if (~informative).any() else np.nan
    for case in GAUSSIAN_CASES:
        pred = np.array([predicted_errors(model, case, n, n * aux_ratio) for n in ns])
        out[f"{case}/fnr_pred"], out[f"{case}/fpr_pred"] = pred[:, 0], pred[:, 1]
    return out
