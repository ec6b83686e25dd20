"""Tests for oodlib.odin: ODIN (Liang, Li & Srikant 2018) and its analysis helpers."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch

from oodlib import (
    data,
    detectors,
    experiments,
    metrics,
    models,
    odin,
    odin_analysis,
    profiles,
    runtime,
    scores,
    train,
    zoo,
)


@pytest.fixture(scope="module")
def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build("mlp", seed=0).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(24, 1, 28, 28, generator=torch.Generator().manual_seed(1))


# --------------------------------------------------------------------------- the score (eq. 1-2)


def test_odin_with_t1_eps0_is_msp(mlp, images):
    s = odin.odin(mlp, images, temperature=1.0, eps=0.0)
    assert s.shape == (len(images),)
    assert torch.allclose(s, scores.msp(mlp, images), atol=1e-6)


def test_registered_scores(mlp, images):
    assert torch.equal(detectors.make("odin", "ODIN", mlp, temperature=2.0, eps=0.001).score(images),
                       odin.odin(mlp, images, temperature=2.0, eps=0.001))
    e = detectors.make("energy", "E", mlp, temperature=2.0).score(images)
    assert torch.allclose(e, 2.0 * torch.logsumexp(mlp(images).detach() / 2.0, 1), atol=1e-5)


def test_step_follows_eq2_and_stays_in_pixel_units(mlp, images):
    t, eps = 10.0, 0.003
    xt = odin.perturb(mlp, images, t, eps)
    u = images.clone().requires_grad_(True)
    logs = torch.log_softmax(mlp(u) / t, 1).max(1).values
    (g,) = torch.autograd.grad(logs.sum(), u)
    assert torch.allclose(xt, images - eps * torch.sign(-g), atol=1e-7)
    assert (xt - images).abs().max() <= eps + 1e-7  # ε in [0, 1] pixel units
    clipped = odin.perturb(mlp, images, t, eps, clip=True)
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_preprocessing_raises_the_targeted_softmax_score(mlp, images):
    """Eq. 2 is one signed-gradient ascent step on log S_ŷ(x; T): the score goes up."""
    for t in (1.0, 1000.0):
        before = odin.softmax_score(mlp(images).detach(), t)
        after_step = odin.odin(mlp, images, t, 1e-3)
        assert (after_step >= before - 1e-7).all()
        assert (after_step > before).float().mean() > 0.9
        # first order (§5.3): log S(x̃) − log S(x) ≈ ε ‖∇ₓ log S‖₁ for a small step (in float64)
        m64, x64, eps = copy.deepcopy(mlp).double(), images.double(), 1e-6
        gain = torch.log(odin.odin(m64, x64, t, eps)) - torch.log(odin.odin(m64, x64, t, 0.0))
        predicted = eps * odin.grad_norm(m64, x64, t)
        assert torch.allclose(gain, predicted, rtol=1e-3)


def test_grid_matches_single_settings(mlp, images):
    temps, epss = [1.0, 5.0, 1000.0], [0.0, 0.001, 0.004]
    g = odin.odin_grid(mlp, images, temps, epss, batch_size=7)
    assert g.shape == (3, 3, len(images))
    for i, t in enumerate(temps):
        for j, e in enumerate(epss):
            assert torch.allclose(g[i, j], odin.odin(mlp, images, t, e), atol=1e-6)
    # a grid with only ε = 0 needs no gradient and equals the temperature-scaled MSP
    g0 = odin.odin_grid(mlp, images, temps, [0.0])
    z = mlp(images).detach()
    for i, t in enumerate(temps):
        assert torch.allclose(g0[i, 0], odin.softmax_score(z, t), atol=1e-6)


def test_matches_pytorch_ood(mlp, images):
    """pytorch-ood's ODIN (norm_std=None steps in the model's input space) returns −S(x̃; T)."""
    pytest.importorskip("pytorch_ood")
    from pytorch_ood.detector import ODIN

    for t, eps in [(1.0, 0.0), (1000.0, 0.0014), (10.0, 0.004)]:
        theirs = -ODIN(mlp, eps=eps, temperature=t).predict(images).detach()
        assert torch.allclose(odin.odin(mlp, images, t, eps), theirs, atol=1e-6)


def test_energy_matches_pytorch_ood(mlp, images):
    pytest.importorskip("pytorch_ood")
    from pytorch_ood.detector import EnergyBased

    theirs = -EnergyBased(mlp, t=1.0).predict(images).detach()
    assert torch.allclose(scores.energy(mlp, images), theirs, atol=1e-5)


def test_scorer_caches(mlp, images):
    sc = odin.ODINScorer(mlp, {"a": images, "b": images[:5]})
    s1 = sc("a", 1000, 0.002)
    assert sc("a", 1000.0, 0.002) is s1
    g = sc.grid("b", [1, 1000], [0.0, 0.002])
    assert torch.allclose(sc("b", 1000, 0.002), g[1, 1])
    assert torch.allclose(s1[:5], g[1, 1], atol=1e-6)
    with pytest.raises(ValueError, match="unknown image set"):
        sc("c", 1, 0)


@pytest.mark.parametrize(
    "kwargs",
    [{"temperature": 0.0}, {"temperature": -1.0}, {"temperature": float("nan")}, {"temperature": True},
     {"eps": -0.001}, {"eps": float("inf")}],
)
def test_bad_parameters_raise(mlp, images, kwargs):
    with pytest.raises(ValueError, match="expected (temperature|eps)"):
        odin.odin(mlp, images, **kwargs)


def test_bad_inputs_raise(mlp, images):
    with pytest.raises(ValueError, match="expected x as a float tensor"):
        odin.odin(mlp, images * 255)
    with pytest.raises(ValueError, match="expected x as a float tensor"):
        odin.odin(mlp, torch.rand(28, 28))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        odin.odin_grid(mlp, images, [], [0.0])
    with pytest.raises(ValueError, match="expected each of epsilons"):
        odin.odin_grid(mlp, images, [1.0], [0.0, -1.0])
    with pytest.raises(ValueError, match="expected logits"):
        odin_analysis.u1_u2(torch.zeros(3))
    with pytest.raises(ValueError, match="expected n_tune < n"):
        odin.split_tuning(10, 10)
    with pytest.raises(ValueError, match="grid_in"):
        odin.search(torch.rand(2, 3, 5), torch.rand(2, 3, 5), [1.0], [0.0, 0.001, 0.002])
    with pytest.raises(ValueError, match="equal feature counts"):
        odin_analysis.mmd2(torch.rand(4, 3), torch.rand(4, 5))
    with pytest.raises(ValueError, match="equal non-zero length"):
        odin_analysis.binned_mean([1.0, 2.0], [1.0])


# --------------------------------------------------------------------------- parameter search (§4.4)


def test_split_is_disjoint_and_seeded():
    t, e = odin.split_tuning(100, 30, seed=3)
    assert len(t) == 30 and len(e) == 70
    assert not set(t.tolist()) & set(e.tolist())
    assert sorted(t.tolist() + e.tolist()) == list(range(100))
    t2, _ = odin.split_tuning(100, 30, seed=3)
    assert torch.equal(t, t2)


def test_epsilon_grid():
    e = odin.epsilon_grid(21, 0.004)
    assert len(e) == 21 and e[0] == 0 and math.isclose(e[-1], 0.004) and math.isclose(e[1], 0.0002)


def test_search_picks_min_fpr_and_breaks_ties_by_auroc():
    gen = torch.Generator().manual_seed(0)
    s_in = torch.rand(2, 3, 200, generator=gen) + 1.0
    s_out = torch.rand(2, 3, 100, generator=gen)  # every setting separates perfectly: FPR 0
    s_out[1, 2] += 1.5  # the worst setting
    s_out[0, 1] -= 0.5  # same FPR (0) and AUROC (1) as the others: smallest T, then ε wins
    r = odin.search(s_in, s_out, [1.0, 1000.0], [0.0, 0.001, 0.002])
    assert (r.temperature, r.eps) == (1.0, 0.0)
    assert r.fpr[1, 2] > 0.9 and r.best_fpr == 0.0
    # make one setting clearly best: only it separates the tails
    s_out = torch.rand(2, 3, 100, generator=gen) + 0.6
    s_out[1, 1] -= 0.6
    r = odin.search(s_in, s_out, [1.0, 1000.0], [0.0, 0.001, 0.002])
    assert (r.temperature, r.eps) == (1000.0, 0.001)
    assert r.best_fpr == pytest.approx(metrics.fpr_at_tpr(s_in[1, 1], s_out[1, 1]))
    assert len(r.table()) == 6


# --------------------------------------------------------------------------- analysis (§5, App. D-G)


def test_u1_u2_definitions_and_app_f_identity():
    z = torch.tensor([[3.0, 1.0, 0.0, -1.0], [0.0, 2.0, 2.0, 1.0]])
    u1, u2 = odin_analysis.u1_u2(z)
    assert torch.allclose(u1, torch.tensor([(2 + 3 + 4) / 3, (2 + 0 + 1) / 3], dtype=torch.float64))
    assert torch.allclose(u2, torch.tensor([(4 + 9 + 16) / 3, (4 + 0 + 1) / 3], dtype=torch.float64))
    d = odin_analysis.logit_gaps(torch.randn(50, 10))
    u1, u2 = d.mean(1), d.pow(2).mean(1)
    assert torch.allclose(u2, d.var(1, unbiased=False) + u1**2)  # App. F


def test_taylor_approximation_close_for_large_t():
    z = torch.randn(500, 10, generator=torch.Generator().manual_seed(0)) * 5
    for t, tol in [(100.0, 5e-3), (1000.0, 5e-6)]:  # third-order error ~ (Δ/T)³
        exact = odin.softmax_score(z.double(), t)
        approx = odin_analysis.taylor_softmax_score(z, t)
        assert ((approx - exact).abs() / exact).max() < tol
    # and it is poor at T = 1, which is why it is an argument about large T only
    taylor = odin_analysis.taylor_softmax_score(z, 1.0)
    assert (taylor - odin.softmax_score(z.double(), 1.0)).abs().max() > 0.1


def test_prop1_statistic_tends_to_scaled_u1():
    z = torch.randn(100, 10, generator=torch.Generator().manual_seed(0)) * 4
    u1, _ = odin_analysis.u1_u2(z)
    errs = [float((odin_analysis.prop1_statistic(z, t) - 9 * u1).abs().max()) for t in (10.0, 1e3, 1e6, 1e12)]
    assert errs[0] > errs[1] > errs[2] > errs[3] and errs[3] < 1e-8
    # the statistic is an increasing function of S: the same detector
    s = odin.softmax_score(z.double(), 5.0)
    p = odin_analysis.prop1_statistic(z, 5.0)
    assert np.all(np.diff(p[torch.argsort(s)].numpy()) >= -1e-9)


def test_binned_mean():
    x = np.array([0.1, 0.2, 0.6, 0.7, 0.8])
    y = np.array([1.0, 3.0, 10.0, 20.0, 30.0])
    c, m, n = odin_analysis.binned_mean(x, y, bins=[0.0, 0.5, 1.0], min_count=2)
    assert np.allclose(c, [0.25, 0.75]) and np.allclose(m, [2.0, 20.0]) and np.allclose(n, [2, 3])
    _, m, _ = odin_analysis.binned_mean(x, y, bins=[0.0, 0.5, 1.0], min_count=3)
    assert np.isnan(m[0]) and m[1] == 20.0


def _mmd2_naive(v: torch.Tensor, w: torch.Tensor, two_s2: float) -> float:
    def k(a, b):
        return math.exp(-float(((a - b) ** 2).sum()) / two_s2)

    m, n = len(v), len(w)
    kvv = sum(k(v[i], v[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kww = sum(k(w[i], w[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kvw = sum(k(v[i], w[j]) for i in range(m) for j in range(n)) / (m * n)
    return kvv + kww - 2 * kvw


def test_mmd_and_energy_distance():
    gen = torch.Generator().manual_seed(0)
    v, w = torch.rand(12, 1, 2, 3, generator=gen), torch.rand(9, 1, 2, 3, generator=gen) + 0.5
    z = torch.cat([v, w]).flatten(1).double()
    d2 = torch.cdist(z, z).pow(2)
    iu = torch.triu_indices(len(z), len(z), 1)
    med = float(d2[iu[0], iu[1]].median())
    vf, wf = v.flatten(1).double(), w.flatten(1).double()
    assert odin_analysis.mmd2(v, w) == pytest.approx(_mmd2_naive(vf, wf, med))
    assert odin_analysis.mmd2(v, w, sigma=0.7) == pytest.approx(
        _mmd2_naive(v.flatten(1).double(), w.flatten(1).double(), 2 * 0.49))
    # same distribution: both distances near 0; shifted: clearly positive; symmetric
    a, b = torch.rand(300, 5, generator=gen), torch.rand(300, 5, generator=gen)
    c = torch.rand(300, 5, generator=gen) + 0.5
    assert abs(odin_analysis.mmd2(a, b)) < 0.02 and odin_analysis.mmd2(a, c) > 0.1
    assert abs(odin_analysis.energy_distance(a, b)) < 0.05 and odin_analysis.energy_distance(a, c) > 0.5
    assert odin_analysis.energy_distance(a, c) == pytest.approx(odin_analysis.energy_distance(c, a))
    # energy distance by brute force
    vv, ww = v.flatten(1).double(), w.flatten(1).double()
    cross = torch.cdist(vv, ww).mean()
    within_v = torch.cdist(vv, vv).sum() / (12 * 11)
    within_w = torch.cdist(ww, ww).sum() / (9 * 8)
    assert odin_analysis.energy_distance(v, w) == pytest.approx(float(2 * cross - within_v - within_w))


# --------------------------------------------------------------------------- same-manifold split (§4.5)


def test_class_split_and_subset():
    kept, held = odin_analysis.class_split(2, seed=0)
    assert len(kept) == 8 and len(held) == 2 and sorted(kept + held) == list(range(10))
    assert odin_analysis.class_split(2, seed=0) == (kept, held)
    y = torch.arange(10).repeat(3)
    x = torch.rand(30, 1, 4, 4)
    xs, ys = odin_analysis.subset(x, y, kept)
    assert len(xs) == 24 and ys.min() == 0 and ys.max() == 7
    with pytest.raises(ValueError, match="distinct ints"):
        odin_analysis.subset(x, y, [0, 0, 1])
    with pytest.raises(ValueError, match="num_held_out < num_classes"):
        odin_analysis.class_split(10)


def test_class_subset_plugin_ignores_held_out_classes():
    method = zoo.make_method("plain_subset", classes=[1, 3])
    assert isinstance(method, odin_analysis.ClassSubset)
    model = models.build("mlp", num_classes=2, seed=0)
    x = torch.rand(6, 1, 28, 28)
    y = torch.tensor([1, 3, 5, 1, 7, 3])
    batch = train.Batch(x, y, None, 0, 1, torch.Generator())
    loss, logs = method.loss(model, batch)
    keep = torch.tensor([0, 1, 3, 5])
    expected = torch.nn.functional.cross_entropy(model(x[keep]), torch.tensor([0, 1, 0, 1]))
    assert torch.allclose(loss, expected)
    only_held_out = train.Batch(x[:2], torch.tensor([5, 7]), None, 0, 1, torch.Generator())
    loss, _ = method.loss(model, only_held_out)
    assert float(loss.detach()) == 0.0 and loss.requires_grad


# --------------------------------------------------------------------------- study, tables, sweeps


def test_run_study_keeps_tuning_images_out_of_evaluation(mlp, tiny_profile):
    p = tiny_profile.replace(odin={"tune_in": 20, "tune_size": 10, "temperatures": (1, 1000), "num_eps": 2,
                                   "max_eps": 0.004})
    gen = torch.Generator().manual_seed(0)
    x_in = torch.rand(60, 1, 28, 28, generator=gen)
    ood = {"dark": torch.rand(30, 1, 28, 28, generator=gen) * 0.3,
           "bright": torch.rand(25, 1, 28, 28, generator=gen)}
    st = odin.run_study(mlp, x_in, ood, p)
    for key, x in [(odin.IN, x_in), *ood.items()]:
        tune, ev = st.splits[key]
        assert not set(tune.tolist()) & set(ev.tolist())
        assert torch.equal(st.scorer.images[key], x[ev])
    assert st.tune_in.shape == (2, 2, 20) and st.tune_out["dark"].shape == (2, 2, 10)
    tab = st.table()
    base = tab[(tab.ood_set == "dark") & (tab.detector == "baseline") & (tab.metric == "FPR95")].value.item()
    _, ev_in = st.splits[odin.IN]
    _, ev_out = st.splits["dark"]
    expected = metrics.fpr_at_tpr(scores.msp(mlp, x_in[ev_in]), scores.msp(mlp, ood["dark"][ev_out]))
    assert base == pytest.approx(expected)
    tr = st.transfer()
    own = tab[(tab.detector == "ODIN") & (tab.metric == "FPR95")].set_index("ood_set").value
    for k in st.sets:
        assert tr.loc[k, k] == pytest.approx(own[k])
    wide = odin_analysis.baseline_vs_odin(tab)
    assert list(wide.columns) == [*odin_analysis.TABLE2_METRICS, "T", "eps"] and len(wide) == 2
    curve = st.tuning_size_curve("bright", ood["bright"], [3, 5], repeats=2)
    assert len(curve) == 4 and curve.FPR95.between(0, 1).all()
    with pytest.raises(ValueError, match="long table"):
        odin_analysis.baseline_vs_odin(pd.DataFrame({"a": [1]}))


def test_temperature_sweep_limits():
    gen = torch.Generator().manual_seed(0)
    z_in, z_out = torch.randn(200, 10, generator=gen) * 3, torch.randn(100, 10, generator=gen) * 2
    sw = odin_analysis.temperature_sweep(z_in, {"o": z_out}, [1.0, 1e9, math.inf]).set_index("T")
    s_in, s_out = torch.softmax(z_in, 1).max(1).values, torch.softmax(z_out, 1).max(1).values
    assert sw.loc[1.0, "AUROC"] == pytest.approx(metrics.auroc(s_in, s_out))
    assert sw.loc[1.0, "FPR95"] == pytest.approx(metrics.fpr_at_tpr(s_in, s_out))
    u_in, u_out = odin_analysis.u1_u2(z_in)[0], odin_analysis.u1_u2(z_out)[0]
    assert sw.loc[math.inf, "AUROC"] == pytest.approx(metrics.auroc(u_in, u_out))
    assert sw.loc[1e9, "FPR95"] == pytest.approx(sw.loc[math.inf, "FPR95"])  # Proposition 1
    with pytest.raises(ValueError, match="temperatures > 0"):
        odin_analysis.temperature_sweep(z_in, {"o": z_out}, [0.0])


def test_load_subset_model_trains_on_kept_classes(zoo_cache, tiny_profile):
    entry = experiments.load_subset_model(tiny_profile, [0, 1, 2, 3, 4, 5, 6, 7])
    assert entry.record["config"]["method"] == "plain_subset"
    assert entry.model(torch.rand(2, 1, 28, 28)).shape == (2, 8)
    # the record's test error is on the kept classes, relabelled (not against all 10 labels)
    _, _, x_test, y_test = data.in_distribution(tiny_profile)
    kept = odin_analysis.subset(x_test, y_test, [0, 1, 2, 3, 4, 5, 6, 7])
    assert entry.record["test_error"] == pytest.approx(zoo.classification_error(entry.model, *kept))
    assert entry.record["test_error"] < 0.8  # better than chance (7/8)
    again = experiments.load_subset_model(tiny_profile, [0, 1, 2, 3, 4, 5, 6, 7])  # from the cache
    assert again.record["hash"] == entry.record["hash"]


def test_fpr_grid_and_choice_match_the_search():
    from oodlib import metrics as _metrics

    rng = np.random.default_rng(0)
    g_in = torch.tensor(rng.normal(1, 1, (3, 2, 50)))
    g_out = torch.tensor(np.round(rng.normal(0, 1, (3, 2, 30)), 1))
    f = odin.fpr_grid(g_in.numpy(), g_out.numpy())
    for i in range(3):
        for j in range(2):
            assert f[i, j] == _metrics.fpr_at_tpr(g_in[i, j], g_out[i, j])
    s = odin.search(g_in, g_out, [1.0, 10.0, 100.0], [0.0, 0.001])
    i, j = odin._choose(g_in.numpy(), g_out.numpy())
    assert (s.temperature, s.eps) == ([1.0, 10.0, 100.0][i], [0.0, 0.001][j])
    # ties in FPR: every setting equal -> the search's tie-break (AUROC, then smaller T, then smaller eps)
    same_in, same_out = g_in[:1, :1].expand(3, 2, 50).clone(), g_out[:1, :1].expand(3, 2, 30).clone()
    assert odin._choose(same_in.numpy(), same_out.numpy()) == (0, 0)


def test_chapter_claim_estimates_on_a_tiny_study(mlp):
    g = torch.Generator().manual_seed(5)
    x_in = torch.rand(230, 1, 28, 28, generator=g) ** 2
    ood = {"uniform noise": torch.rand(215, 1, 28, 28, generator=g),
           "gaussian noise": (0.5 + 0.3 * torch.randn(215, 1, 28, 28, generator=g)).clamp(0, 1),
           "dark": 0.1 * torch.rand(215, 1, 28, 28, generator=g)}
    prof = profiles.CI.replace(odin={"tune_in": 30, "tune_size": 15, "temperatures": (1.0, 100.0, 1000.0),
                                     "num_eps": 2})
    study = odin.run_study(mlp, x_in, ood, prof)
    ev = {k: study.scorer.images[k] for k in [odin.IN, *study.sets]}
    z = {k: runtime.logits(mlp, x) for k, x in ev.items()}
    u = {k: odin_analysis.u1_u2(v) for k, v in z.items()}
    gn = {k: odin.grad_norm(mlp, x, 1000.0) for k, x in ev.items()}
    edges = np.linspace(0, float(max(v[0].max() for v in u.values())), 5)
    z_out = {k: z[k] for k in study.sets}
    est = odin_analysis.claim_estimates(study, z[odin.IN], z_out, u, gn, edges, seed=0)
    assert set(est) == {"gain_min", "noise_max", "eps_gain", "t_help", "t_sat", "u1", "u2", "grad"}
    for e in est.values():
        assert e.lo <= e.value <= e.hi or not np.isfinite(e.value)
    assert 0 <= est["grad"].value <= 3 and 0 <= est["noise_max"].value <= 1
    # a known answer: in-distribution gradient norms far above every set's -> all 3 sets, in every replicate
    big = {**gn, odin.IN: gn[odin.IN] + 1e6}
    grad = odin_analysis.claim_estimates(study, z[odin.IN], z_out, u, big, edges, seed=0)["grad"]
    assert grad.value == grad.lo == grad.hi == 3
    with pytest.raises(ValueError, match="missing"):
        odin_analysis.claim_estimates(study, z[odin.IN], z_out, {odin.IN: u[odin.IN]}, gn, edges)


def test_paper_tables_satisfy_the_deterr_identity():
    """Data-entry check: every transcribed DetErr is 2.5 + FPR95 / 2 (ODIN §4.3), within rounding."""
    for rows in odin_analysis.PAPER_TABLES.values():
        for _, values in rows:
            fpr, deterr = values[0], values[1]
            for f, d in zip(fpr, deterr, strict=True):
                assert abs(d - (2.5 + f / 2)) <= 0.1, (rows, f, d)


def test_table2_beside_paper_puts_every_metric_beside_ours():
    rows = [{"ood_set": "font letters", "stand_in_for": "EMNIST", "detector": det, "metric": m, "value": v}
            for det, v in (("baseline", 0.5), ("ODIN", 0.25)) for m in odin_analysis.TABLE2_METRICS]
    rows += [{"ood_set": "MNIST", "stand_in_for": None, "detector": "ODIN", "metric": "FPR95", "value": 0.1}]
    out = odin_analysis.table2_beside_paper(pd.DataFrame(rows), "ours: test")
    assert len(out) == len(odin_analysis.TABLE2_METRICS)  # one paper row for letters; MNIST has none
    key = ("font letters (stand-in for EMNIST)", "Table 3, MLP / MNIST: notMNIST", "DetErr")
    assert out.loc[key, "paper"] == "7.7 → 6.8"
    assert (out["ours"] == "50.0 → 25.0").all()
    with pytest.raises(ValueError, match="Study.table"):
        odin_analysis.table2_beside_paper(pd.DataFrame({"x": [1]}), "s")


def test_paper_headline_is_table2_tinyimagenet_crop():
    # abstract: "from the baseline 34.7% to 4.3%" (DenseNet-BC, CIFAR-10, TinyImageNet crop)
    assert odin_analysis.paper_headline_fpr() == (34.7, 4.3)
    assert odin_analysis.paper_headline_ratio() == pytest.approx(4.3 / 34.7)


def test_input_step_is_the_signed_gradient_step():
    x = torch.rand(4, 1, 28, 28)
    objective = lambda v: (v * v).flatten(1).sum(1)  # noqa: E731  gradient 2v: sign +1 where v > 0
    stepped = runtime.input_step(objective, x, 0.01)
    assert torch.allclose(stepped, x + 0.01 * torch.sign(x))
    same = runtime.input_step(objective, x, 0.0)
    assert torch.equal(same, x) and same is not x


def test_paper_table2_is_whole_and_obeys_the_detection_error_identity():
    """ODIN's Table 2 as transcribed: 2 networks x 2 in-distributions x 7 OOD sets x 5 metrics, and every
    detection error 2.5 + FPR / 2 at the printed digit (§4.3, TPR 95 %), but for one printed cell."""
    table = odin_analysis.PAPER_TABLE2
    assert set(table) == {(n, d) for n in ("DenseNet-BC", "WRN-28-10") for d in ("CIFAR-10", "CIFAR-100")}
    off = []
    for key, rows in table.items():
        assert list(rows) == ["TinyImageNet (crop)", "TinyImageNet (resize)", "LSUN (crop)", "LSUN (resize)",
                              "iSUN", "uniform noise", "gaussian noise"]
        for ood, pairs in rows.items():
            assert len(pairs) == 5 and all(0 <= v <= 100 for pair in pairs for v in pair)
            for which in (0, 1):
                if abs(pairs[1][which] - (2.5 + pairs[0][which] / 2)) > 0.1:
                    off.append((*key, ood, which))
    assert off == [("DenseNet-BC", "CIFAR-100", "iSUN", 0)]  # printed 84.8 / 44.7 (44.9 expected)
    for _, pairs in odin_analysis.PAPER_TABLES["photo crops"][1:]:  # the chapter's rows are read from it
        assert pairs == table[("DenseNet-BC", "CIFAR-10")]["TinyImageNet (crop)"]
