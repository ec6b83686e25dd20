"""Tests for oodlib.gmm (Meinke & Hein 2020, CCU): metric, GMMs, p̂(y|x), certificates, attack."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch import nn

from oodlib import attacks, ball_attack, ccu, gmm, models, toy, train, zoo

# --------------------------------------------------------------------------- helpers


def _metric(d: int, seed: int = 0, n: int = 200) -> gmm.Metric:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) @ a * 0.2 + 0.5
    return gmm.Metric(d).fit(x)


def _random_ccu(seed: int, d: int = 4, m: int = 3, k_in: int = 3, k_out: int = 2) -> ccu.CCU:
    """A small CCU model on (1, 2, 2) 'images' with random metric, mixtures and classifier."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    clf = nn.Sequential(nn.Flatten(), nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, m))
    with torch.no_grad():
        for p in clf.parameters():
            p.mul_(4.0)  # confident classifier
    model = ccu.CCU(clf, dim=d, n_in=k_in, n_out=k_out)
    x = torch.rand(300, d, generator=g, dtype=torch.float64) * 0.5 + 0.25
    model.metric.fit(x)
    z = model.metric.transform(x)
    with torch.no_grad():
        model.gmm_in.mu.copy_(z[:k_in])
        model.gmm_in.log_var.copy_(torch.rand(k_in, generator=g, dtype=torch.float64) - 1.0)
        model.gmm_in.log_weight.copy_(torch.randn(k_in, generator=g, dtype=torch.float64))
        shift = torch.randn(k_out, d, generator=g, dtype=torch.float64)
        model.gmm_out.mu.copy_(z[k_in : k_in + k_out] + shift)
        model.gmm_out.log_var.copy_(torch.rand(k_out, generator=g, dtype=torch.float64))
        model.gmm_out.log_weight.copy_(torch.randn(k_out, generator=g, dtype=torch.float64))
    model.clamp_out_variances_()
    return model.eval()


def _conf(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(model(x).double(), dim=1).max(1).values


# --------------------------------------------------------------------------- metric and mixtures


def test_metric_floor_transform_and_distance():
    d = 6
    met = _metric(d)
    lam = met.eigvals
    assert float(lam.min()) >= 1e-6 * float(lam.max()) * (1 - 1e-12)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, d, generator=g, dtype=torch.float64)
    y = torch.rand(5, d, generator=g, dtype=torch.float64)
    C = met.eigvecs @ torch.diag(lam) @ met.eigvecs.T
    direct = torch.einsum("ni,ij,nj->n", x - y, torch.linalg.inv(C), x - y).sqrt()
    assert torch.allclose(met.distance(x, y), direct, rtol=1e-9)
    assert torch.allclose(met.inverse(met.transform(x)), x, atol=1e-10)
    # gradients map consistently: <g, T^{-1} v> = <grad_to_z(g), v>
    v = torch.randn(5, d, generator=g, dtype=torch.float64)
    gx = torch.randn(5, d, generator=g, dtype=torch.float64)
    assert torch.allclose((gx * met.inverse(v)).sum(1), (met.grad_to_z(gx) * v).sum(1), atol=1e-10)
    # eq. 12's floor on a rank-deficient covariance
    flat = torch.zeros(50, 3, dtype=torch.float64)
    flat[:, 0] = torch.randn(50, generator=g, dtype=torch.float64)
    met3 = gmm.Metric(3).fit(flat)
    floor = torch.full((2,), 1e-6 * float(met3.eigvals.max()), dtype=torch.float64)
    assert torch.allclose(met3.eigvals[:2], floor)
    with pytest.raises(ValueError, match="features"):
        gmm.Metric(4).fit(torch.rand(10, 5))


def test_gmm_log_density_equals_direct_mixture_of_gaussians():
    d, k = 5, 3
    met = _metric(d, seed=2)
    mix = gmm.GMM(k, d)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        mix.mu.copy_(torch.randn(k, d, generator=g, dtype=torch.float64))
        mix.log_var.copy_(torch.randn(k, generator=g, dtype=torch.float64) * 0.3)
        mix.log_weight.copy_(torch.randn(k, generator=g, dtype=torch.float64))
    x = torch.rand(7, d, generator=g, dtype=torch.float64)
    ours = mix.log_density(met.transform(x), met.log_det)
    # direct: sum_k w_k N(x; T^{-1} mu_k, sigma_k^2 C) in image space
    C = (met.eigvecs @ torch.diag(met.eigvals) @ met.eigvecs.T).numpy()
    w = torch.softmax(mix.log_weight, 0).detach().numpy()
    centres = met.inverse(mix.mu.detach()).numpy()
    var = mix.log_var.exp().detach().numpy()
    direct = np.log(sum(w[j] * multivariate_normal(centres[j], var[j] * C).pdf(x.numpy()) for j in range(k)))
    assert np.allclose(ours.detach().numpy(), direct, rtol=1e-8, atol=1e-8)


def test_em_initialisation_recovers_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    z = centres.repeat(200, 1) + 0.5 * torch.randn(600, 2, generator=g, dtype=torch.float64)
    mix = gmm.GMM(3, 2).fit_em(z, seed=0)
    found = mix.mu.detach()
    assert torch.cdist(found, centres).min(0).values.max() < 0.2
    assert torch.allclose(mix.sigma.detach(), torch.full((3,), 0.5, dtype=torch.float64), rtol=0.2)
    with pytest.raises(ValueError, match="shape"):
        mix.fit_em(np.zeros((2, 2)))


# --------------------------------------------------------------------------- the model p̂(y|x) (eq. 7)


def test_posterior_sums_to_one_matches_eq7_and_tends_to_uniform():
    model = _random_ccu(0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(20, 1, 2, 2, generator=g)
    logp = model(x)
    assert logp.dtype == torch.float64 and logp.shape == (20, 3)
    p = logp.exp()
    assert torch.allclose(p.sum(1), torch.ones(20, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(torch.softmax(logp, 1), p, atol=1e-12)  # scores.msp works unchanged
    with torch.no_grad():
        lpi, lpo = model.log_densities(x)
        p_in = torch.softmax(model.classifier(x).double(), 1)
        pi, po = lpi.exp()[:, None], lpo.exp()[:, None]
        direct = (p_in * pi + model.lam / 3 * po) / (pi + model.lam * po)
    assert torch.allclose(p, direct, rtol=1e-9)
    assert torch.equal(logp.argmax(1), p_in.argmax(1))  # the prediction is the classifier's
    far = _conf(model, x * 1e3 + 50)
    assert torch.allclose(far, torch.full_like(far, 1 / 3), atol=1e-9)
    with pytest.raises(ValueError, match="logits"):
        ccu.CCU(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), 4, 2, 2, num_classes=5)(x)


def test_log_excess_objective_matches_confidence():
    model = _random_ccu(1)
    x = torch.rand(30, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ex = ccu.ccu_log_excess(model, x)
        conf = _conf(model, x)
    ok = conf - 1 / 3 > 1e-6
    assert ok.any()
    assert torch.allclose(ex[ok], (conf[ok] - 1 / 3).log(), atol=1e-6)


# --------------------------------------------------------------------------- certificates


def test_certified_radius_hits_the_target_and_bound_is_monotone():
    model = _random_ccu(2)
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(40, 1, 2, 2, generator=g) * 3 + 2  # away from the data: certifiable
    radii = torch.linspace(0, 50, 200, dtype=torch.float64)
    lb = torch.stack([ccu.log_b(model, x0, r) for r in radii], 1)
    assert (lb.diff(dim=1) >= -1e-9).all()  # b(R) increases with R (App. D)
    R = ccu.certified_radius(model, x0, nu=1.1)
    assert (R > 0).all()
    target = 1.1 / 3
    bound = ccu.corollary_bound(model, x0, R)
    assert (bound <= target + 1e-12).all()
    assert torch.allclose(bound, torch.full_like(bound, target), atol=1e-9)
    assert (ccu.corollary_bound(model, x0, R * (1 + 1e-6)) > target).all()
    # a training-like point is not certifiable: radius 0
    centre = model.metric.inverse(model.gmm_in.mu[:1].detach()).float().reshape(1, 1, 2, 2)
    if float(ccu.corollary_bound(model, centre, 0.0)) > target:
        assert float(ccu.certified_radius(model, centre)) == 0.0
    with pytest.raises(ValueError, match="nu"):
        ccu.certified_radius(model, x0, nu=3.5)


def test_projection_lands_in_ellipsoid_and_box():
    met = _metric(4, seed=5)
    g = torch.Generator().manual_seed(5)
    x0 = torch.rand(30, 4, generator=g, dtype=torch.float64)
    x = x0 + 5 * torch.randn(30, 4, generator=g, dtype=torch.float64)
    r = torch.rand(30, generator=g, dtype=torch.float64) * 3 + 0.1
    p = ball_attack.project_ball_box(met, x, x0, r)
    assert (met.distance(p, x0) <= r * (1 + 1e-9)).all()
    assert (p >= 0).all() and (p <= 1).all()
    # points already inside stay where they are
    inside = ball_attack.project_ball_box(met, p, x0, r)
    assert torch.allclose(inside, p, atol=1e-12)
    # the ellipsoid projection is the Euclidean one: on the boundary, x - p normal to the ellipsoid
    q = ball_attack.project_ellipsoid(met, x, x0, r)
    out = met.distance(x, x0) > r
    assert torch.allclose(met.distance(q[out], x0[out]), r[out], rtol=1e-6)
    C_inv = met.eigvecs @ torch.diag(1 / met.eigvals) @ met.eigvecs.T
    normal = (q - x0) @ C_inv
    cos = torch.nn.functional.cosine_similarity(x - q, normal, dim=1)
    assert (cos[out] > 1 - 1e-6).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soundness_no_sampled_or_attacked_point_beats_the_certificate(seed):
    model = _random_ccu(10 + seed)
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(12, 1, 2, 2, generator=g)
    # radii certified at 1.1/M where possible, and arbitrary radii with Corollary 3.1's bound
    for radius in (ccu.certified_radius(model, x0), torch.rand(12, generator=g, dtype=torch.float64) * 5):
        bound = ccu.corollary_bound(model, x0, radius)
        pts = ball_attack.sample_in_ball(model.metric, x0, radius, 300, g)
        conf = _conf(model, pts.float().reshape(-1, 1, 2, 2)).reshape(12, 300)
        assert (conf.max(1).values <= bound + 1e-9).all()
        # the log-confidence of CCU itself, and its log-excess (what ccu_detector attacks)
        targets = ((model, attacks.log_max_confidence), (ccu.LogExcess(model), ccu.excess_objective))
        for target, objective in targets:
            adv = ball_attack.attack_in_ball(target, model.metric, x0, radius, objective, steps=20,
                                             restarts=2, proj_rounds=seed % 2, generator=g,
                                             show_progress=False, confidence=lambda u: _conf(model, u))
            assert (adv.distance <= radius).all()
            assert (adv.x >= 0).all() and (adv.x <= 1).all()
            assert (adv.confidence <= bound + 1e-9).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_theorem31_bound_holds(seed):
    model = _random_ccu(20 + seed)
    g = torch.Generator().manual_seed(seed)
    x_train = torch.rand(100, 1, 2, 2, generator=g) * 0.5 + 0.25
    direction = torch.randn(1, 1, 2, 2, generator=g)
    z = 0.5 + direction * torch.logspace(-1, 3, 40).reshape(-1, 1, 1, 1)
    res = ccu.theorem31(model, z, x_train)
    conf = _conf(model, z)
    assert (conf <= res.conf_bound + 1e-12).all()
    assert torch.isfinite(res.eps[-10:]).all() and (res.eps[-1] < 1e-6)  # far away: close to uniform
    # eq. 9 holds exactly at eps*, and the right-hand side is decreasing in eps
    fin = torch.isfinite(res.eps) & (res.eps > 1e-300)
    for i in torch.nonzero(fin)[:3, 0]:
        assert abs(float(res.rhs(float(res.eps[i]))[i]) - float(res.lhs[i])) < 1e-6 * float(res.lhs[i])
    assert (res.rhs(1e-3) >= res.rhs(1e-1) - 1e-12).all()


def test_attack_moves_and_beats_random_sampling_in_64_dimensions():
    met = _metric(64, seed=7, n=500)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 5))
    x0 = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    r = torch.full((10,), 4.0, dtype=torch.float64)
    for rounds in (0, 1):
        adv = ball_attack.attack_in_ball(net, met, x0, r, steps=30, restarts=1, proj_rounds=rounds,
                                 generator=torch.Generator().manual_seed(0), show_progress=False)
        start = _conf(net, x0)
        assert (adv.confidence >= start - 1e-6).all() and (adv.confidence > start + 1e-2).all()
        assert (adv.distance > 0).all() and (adv.distance <= r).all()
        assert (adv.x >= 0).all() and (adv.x <= 1).all() and adv.x.dtype == torch.float32
        pts = ball_attack.sample_in_ball(met, x0, r, 100).float().reshape(-1, 1, 8, 8)
        best_sampled = _conf(net, pts).reshape(10, 100).max(1).values
        assert (adv.confidence > best_sampled).float().mean() >= 0.8  # gradient steps beat 100 samples
        assert adv.confidence.mean() > best_sampled.mean() + 0.01
    with pytest.raises(ValueError, match="radius"):
        ball_attack.attack_in_ball(net, met, x0, -1.0, steps=1, restarts=1)
    with pytest.raises(ValueError, match="proj_rounds"):
        ball_attack.attack_in_ball(net, met, x0, r, steps=1, restarts=1, proj_rounds=-1)


# --------------------------------------------------------------------------- training plug-in


def test_plugin_registered_and_trains_on_tiny_images():
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        zoo.make_method("ccu", centroids=3)
    method = zoo.make_method("ccu", n_in=2, n_out=2, em_in=100, em_out=100, seed=0, dim=36)
    assert method.out_source == "aux" and method.lam == 1.0
    assert isinstance(zoo.make_method("ccu").wrap(models.build("mlp", hidden=8)), ccu.CCU)  # 784-d default

    def classifier() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Linear(16, 10))

    model = method.wrap(classifier())
    assert isinstance(model, ccu.CCU) and model.num_classes == 10
    g = torch.Generator().manual_seed(0)
    x = torch.rand(128, 1, 6, 6, generator=g) * 0.5
    y = torch.randint(10, (128,), generator=g)
    x_out = torch.rand(128, 1, 6, 6, generator=g)
    hist = train.fit(model, x, y, method, epochs=1, batch_size=32, x_out=x_out, weight_decay=5e-4)
    assert all(math.isfinite(v[-1]) for v in hist.logs.values())
    with torch.no_grad():
        assert float(model.gmm_out.sigma.min()) >= 2 * float(model.gmm_in.sigma.max()) * (1 - 1e-9)
    groups = method.param_groups(model, 1e-3, 5e-4)
    assert groups[1]["lr"] == 1e-5 and groups[1]["weight_decay"] == 0.0
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.gmm_parameters()}
    # checkpoint round trip into a structure built from shapes only
    fresh = method.wrap(classifier())
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    model.eval()
    assert torch.allclose(fresh(x[:4]), model(x[:4]))


def test_toy_ccu_is_uniform_far_away_and_plain_is_not():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(2, (200,), generator=g)
    x = torch.randn(200, 2, generator=g) * 0.3 + torch.stack([y * 2.0 - 1.0, torch.zeros(200)], 1)
    x_out = (torch.rand(500, 2, generator=g) * 2 - 1) * 5
    plain = models.build("toy_mlp", num_classes=2, seed=0)
    toy.fit_toy(plain, x, y, steps=100)
    method = ccu.CCUMethod(dim=2, n_in=2, n_out=3, em_in=200, em_out=500, pad=0)
    ccu_toy = method.wrap(models.build("toy_mlp", num_classes=2, seed=0))
    toy.fit_toy(ccu_toy, x, y, method, x_out, steps=100)
    _, _, c_plain, _ = toy.confidence_grid(plain, 1000.0, 20)
    _, _, c_ccu, _ = toy.confidence_grid(ccu_toy, 1000.0, 20)
    assert c_ccu[0, 0] == pytest.approx(0.5, abs=1e-9) and c_plain[0, 0] > 0.99
    # Corollary 3.1 in R^2 (no box): the attack never beats the bound, and reaches it only near the data
    x0 = torch.tensor([[3.0, 2.0]]).repeat(6, 1)
    radius = torch.linspace(0.5, 6, 6, dtype=torch.float64)
    excess = ccu.LogExcess(ccu_toy)
    adv = ball_attack.attack_in_ball(excess, ccu_toy.metric, x0, radius, ccu.excess_objective, steps=40,
                                     restarts=2, box=False, generator=torch.Generator().manual_seed(0),
                                     show_progress=False, confidence=lambda u: _conf(ccu_toy, u))
    assert (adv.distance <= radius).all()
    assert (adv.confidence <= ccu.corollary_bound(ccu_toy, x0, radius) + 1e-12).all()
    assert float(adv.confidence[-1]) > 0.9  # a ball of radius 6 reaches the data
    assert float((ccu_toy(x).argmax(1) == y).float().mean()) > 0.95  # it still classifies the data


def test_check_corollary_bound_holds_against_samples_and_the_attack():
    model = _random_ccu(21)
    x0 = torch.rand(1, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    radii = torch.tensor([0.0, 0.5, 2.0, 8.0], dtype=torch.float64)
    check = ccu.check_corollary(model, x0, radii, n_samples=50, steps=10, restarts=1,
                                generator=torch.Generator().manual_seed(0))
    assert check.bound.shape == check.sampled_max.shape == (4,) and check.attacked.x.shape == (4, 1, 2, 2)
    assert check.sound(1e-9)
    # sampling and the attack both stay inside each ball; at radius 0 they see the centre's confidence
    assert (check.attacked.distance <= radii + 1e-9).all()
    assert check.attacked.confidence[0] == pytest.approx(float(_conf(model, x0)), abs=1e-6)
    # a bound shrunk below what the attack finds is caught
    broken = ccu.BallCheck(check.radii, check.attacked.confidence - 0.01, check.sampled_max, check.attacked)
    assert not broken.sound(1e-9)
    with pytest.raises(ValueError, match=r"one point of shape \(1, ...\)"):
        ccu.check_corollary(model, torch.rand(2, 1, 2, 2), radii)


def test_paper_mean_auroc_over_the_five_fmnist_sets():
    mean = ccu.paper_mean_auroc()
    # Table 2, FMNIST: OE (96.3 + 99.3 + 100 + 100 + 97.6) / 5, CCU (97.8 + 99.5 + 100 + 100 + 100) / 5
    assert mean["OE"] == pytest.approx(98.64)
    assert mean["CCU"] == pytest.approx(99.46)
    assert max(v for k, v in mean.items() if k not in ("OE", "CCU")) == pytest.approx(mean["Maha"])


def test_table_beside_paper_matches_our_sets_to_the_papers_columns():
    import pandas as pd

    ours = pd.DataFrame({m: [90.0, 70.0] for m in ccu.PAPER_METHODS},
                        index=["font letters (stand-in for EMNIST)", "adversarial noise"])
    t = ccu.table_beside_paper(ours, ccu.PAPER_AUPR_FMNIST)
    assert t.loc["font letters (stand-in for EMNIST)", "CCU paper"] == 99.1  # Meinke & Hein 2020, Table 6
    assert t.loc["font letters (stand-in for EMNIST)", "ACET2 paper"] == "—"  # no AUPR for ACET2
    assert t.loc["adversarial noise", "Base paper"] == "—" and t.loc["adversarial noise", "OE ours"] == 70.0
    with pytest.raises(ValueError, match="column per method"):
        ccu.table_beside_paper(ours[["Base"]], ccu.PAPER_AUPR_FMNIST)
