"""Tests for the (μ, σ, ν)-Gaussian model of Chen et al. 2021 (oodlib.gaussian_model)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from oodlib import gaussian_model as T


@pytest.fixture(scope="module")
def model():
    return T.GaussianOODModel.instance(d=400, n0=1, eps=0.25, seed=0)


def _binomial_tol(p: float, n: int) -> float:
    return 5 * math.sqrt(max(p * (1 - p), 1e-4) / n) + 2e-3


def test_instance_follows_eq15(model):
    assert model.d == 400
    assert model.sigma**2 == pytest.approx(math.sqrt(400))
    assert model.nu == pytest.approx(0.25 * np.linalg.norm(model.mu))
    assert T.mining_window() == pytest.approx((1 / (1 + math.exp(1.5)), 1 / (1 + math.exp(0.5))))


@pytest.mark.parametrize("kind", ["mu", "noisy", "tilted", "wrong"])
def test_closed_forms_match_monte_carlo(model, kind):
    g = np.random.default_rng(1)
    theta = {
        "mu": model.mu,
        "noisy": model.mu + 3.0 * g.standard_normal(model.d),
        "tilted": model.mu + 0.8 * np.linalg.norm(model.mu) * np.eye(model.d)[0],
        "wrong": -0.2 * model.mu + g.standard_normal(model.d),
    }[kind]
    n = 60_000
    fnr_mc, fpr_mc = T.monte_carlo_errors(theta, model, n_test=n, rng=g)
    fnr, fpr = T.gaussian_fnr(theta, model), T.gaussian_worst_fpr(theta, model)
    assert fnr_mc == pytest.approx(fnr, abs=_binomial_tol(fnr, n))
    assert fpr_mc == pytest.approx(fpr, abs=_binomial_tol(fpr, n))


def test_worst_shift_is_the_supremum(model):
    g = np.random.default_rng(2)
    theta = model.mu + 2.0 * g.standard_normal(model.d)
    worst = T.gaussian_worst_fpr(theta, model)
    for _ in range(50):
        v = g.standard_normal(model.d)
        v *= model.nu * g.random() / np.linalg.norm(v)
        assert T.gaussian_robust_fpr(theta, model, v) <= worst + 1e-12
    v_star = model.nu * theta / np.linalg.norm(theta)
    assert T.gaussian_robust_fpr(theta, model, v_star) == pytest.approx(worst, rel=1e-9)
    # eps = 0 and v = 0: the robust FPR is the plain FPR Φ(−μᵀθ/(σ‖θ‖)), the mirror of the FNR
    clean = T.GaussianOODModel(model.mu, model.sigma, model.nu, eps=0.0)
    assert T.gaussian_robust_fpr(theta, clean) == pytest.approx(T.gaussian_fnr(theta, clean))


def test_vectorised_forms_and_degenerate_theta(model):
    thetas = np.stack([model.mu, -model.mu, np.zeros(model.d)])
    fnr = T.gaussian_fnr(thetas, model)
    fpr = T.gaussian_worst_fpr(thetas, model)
    assert fnr.shape == (3,) and fnr[0] < 1e-3 and fnr[1] > 0.999 and fnr[2] == 1.0
    assert fpr[0] < 0.05 and fpr[1] > 0.999 and fpr[2] == 1.0


def test_mixture_mean_is_minus_seven_quarters(model):
    assert T.expected_theta_mixture_coef(50, 50) == pytest.approx(-7 / 4)
    g = np.random.default_rng(3)
    coefs = []
    for _ in range(40):
        x_mix, _ = T.sample_aux_mixture(model, 200, g)
        theta = T.theta_averaging(T.sample_in(model, 200, g), x_mix)
        coefs.append(theta @ model.mu / (model.mu @ model.mu))
    assert np.mean(coefs) == pytest.approx(-1.75, abs=0.1)


def test_mining_keeps_the_informative_component_and_fixes_the_detector(model):
    g = np.random.default_rng(4)
    x_in = T.sample_in(model, 50, g)
    x_mix, informative = T.sample_aux_mixture(model, 800, g)
    theta_om, keep = T.theta_mining(x_in, x_mix)
    assert keep[informative].mean() > 0.9 and keep[~informative].mean() == 0.0
    theta_mix = T.theta_averaging(x_in, x_mix)
    assert T.gaussian_fnr(theta_mix, model) > 0.99 and T.gaussian_worst_fpr(theta_mix, model) > 0.99
    assert T.gaussian_fnr(theta_om, model) < 1e-3 and T.gaussian_worst_fpr(theta_om, model) < 0.05
    # the kept points are exactly those whose confidence lies in [σ(−3/2), σ(−1/2)] (eq. 48–49)
    conf = T.gaussian_confidence(x_mix, T.theta_in_only(x_in))
    a, b = T.mining_window()
    assert np.array_equal(keep, (conf >= a) & (conf <= b))
    assert np.allclose(theta_om, -x_mix[keep].mean(0))


def test_ideal_auxiliary_data_beat_in_distribution_only(model):
    # Prop. 3 vs Prop. 4: with few in-distribution points the averaging detector needs the outliers
    g = np.random.default_rng(5)
    n = 4
    fpr_no, fpr_ideal = [], []
    for _ in range(20):
        x_in = T.sample_in(model, n, g)
        fpr_no.append(T.gaussian_worst_fpr(T.theta_in_only(x_in), model))
        theta_ideal = T.theta_averaging(x_in, T.sample_aux_ideal(model, 16 * n, g))
        fpr_ideal.append(T.gaussian_worst_fpr(theta_ideal, model))
    assert np.mean(fpr_ideal) < 0.5 * np.mean(fpr_no)


def test_ideal_auxiliary_shifts_lie_in_the_ball(model):
    x = T.sample_aux_ideal(model, 2000, np.random.default_rng(6))
    shifts = x + model.mu  # = v + noise: the mean shift is ~0, the spread is the noise
    assert np.abs(shifts.mean(0)).max() < 5 * model.sigma / math.sqrt(2000) + model.nu / math.sqrt(model.d)


def test_plugin_predictions_match_the_simulation(model):
    out = T.simulate_gaussian(model, [2, 16], aux_ratio=8, trials=30, seed=0)
    for case in T.GAUSSIAN_CASES:
        for k in ("fnr", "fpr"):
            sim = out[f"{case}/{k}"].mean(1)
            pred = out[f"{case}/{k}_pred"]
            assert np.all(np.abs(sim - pred) < 0.08), (case, k, sim, pred)
    assert out["ideal auxiliary/fpr"].shape == (2, 30)


def test_validation_errors(model):
    with pytest.raises(ValueError, match="nu_ratio"):
        T.GaussianOODModel.instance(d=10, nu_ratio=0.5)
    with pytest.raises(ValueError, match="sigma"):
        T.GaussianOODModel(np.ones(3), sigma=0.0, nu=0.1, eps=0.1)
    with pytest.raises(ValueError, match="theta"):
        T.gaussian_fnr(np.ones(7), model)
    with pytest.raises(ValueError, match="case"):
        T.predicted_errors(model, "oracle", 3, 3)
    with pytest.raises(ValueError, match="x_aux"):
        T.theta_averaging(np.ones((3, model.d)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="a < b"):
        T.theta_mining(np.ones((3, model.d)), np.ones((3, model.d)), a=0.6, b=0.4)
