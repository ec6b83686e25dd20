"""Detectors, the certified threat, and the shared threat table (chapters 06-07)."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
import torch
from test_ccu import _random_ccu
from torch import nn

from oodlib import ccu, data, detectors, evaluate, metrics, models, runtime, scores


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def cnn() -> nn.Module:
    return models.build("small_cnn", num_classes=10, seed=0, width=4).eval()


def test_every_detector_scores_higher_is_in_and_its_objective_matches_the_score(cnn):
    x = _images(6, 1)
    dets = [detectors.msp_detector("msp", cnn), detectors.energy_detector("energy", cnn, temperature=2.0),
            detectors.odin_detector("odin", cnn, 1000.0, 0.0), detectors.good_detector("good", cnn)]
    for det in dets:
        s = det.score(x)
        assert s.shape == (6,)
        with torch.no_grad():
            obj = det.objective(det.model(x))
        # the attack raises a monotone transform of the score: same order on these points
        assert torch.equal(torch.argsort(s), torch.argsort(obj)), det.name
    assert torch.allclose(dets[1].score(x), scores.energy(cnn, x, temperature=2.0))
    with pytest.raises(ValueError, match="temperature"):
        detectors.energy_detector("e", cnn, temperature=0)
    with pytest.raises(ValueError, match="CCU model"):
        detectors.ccu_detector("ccu", cnn)


def test_good_certificate_bounds_the_attacked_score(cnn):
    det = detectors.good_detector("good", cnn)
    x = _images(10, 2)
    attack = evaluate.AttackSettings(eps=0.05, steps=10, step_size=0.01)
    adv = evaluate.threat_images(det, x, "linf", attack=attack, generator=torch.Generator().manual_seed(0))
    cert = det.certify(x, attack.eps)
    assert bool((det.score(adv) <= cert + 1e-5).all())
    assert bool((det.score(x) <= cert + 1e-5).all())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linf_ball_lies_inside_the_ccu_metric_ball(seed):
    model = _random_ccu(20 + seed)
    eps = 0.07
    radius = ccu.linf_ball_radius(model.metric, eps)
    x0 = torch.rand(5, 1, 2, 2, generator=torch.Generator().manual_seed(seed))
    # every corner of the 4-d ℓ∞ cube (the farthest points in any norm) is within the radius
    corners = torch.tensor(list(itertools.product([-eps, eps], repeat=4)), dtype=torch.float64)
    for p in x0.reshape(5, 4).double():
        d = model.metric.distance(p + corners, p[None])
        assert float(d.max()) <= radius * (1 + 1e-9)
    bound = ccu.linf_certified_confidence(model, x0, eps)
    noise = torch.rand(5, 200, 1, 2, 2, generator=torch.Generator().manual_seed(9)) * 2 - 1
    pts = x0[:, None] + noise * eps
    with torch.no_grad():
        conf = torch.softmax(model(pts.reshape(-1, 1, 2, 2)).double(), 1).max(1).values.reshape(5, 200)
    assert bool((conf.max(1).values <= bound + 1e-9).all())
    with pytest.raises(ValueError, match="eps"):
        ccu.linf_ball_radius(model.metric, -1.0)


def test_certified_threat_gives_gauc_below_the_attacked_auc(cnn):
    x_in = _images(30, 3)
    ood = {"a": _images(8, 4), "b": _images(8, 5) * 0.3}
    dets = [detectors.good_detector("good", cnn), detectors.msp_detector("msp", cnn)]
    attack = evaluate.AttackSettings(eps=0.03, steps=5, step_size=0.01)
    table = evaluate.threat_table(dets, x_in, ood, threats=("natural", "linf", "certified"), attack_size=8,
                                  attack=attack, desc=None, metrics_=("FPR95", "AUROC", "AUROC_cons"))
    assert set(table[table.model == "msp"].threat) == {"natural", "linf"}  # no certificate, no row
    v = table.set_index(["model", "threat", "ood_set", "metric"]).value
    for s in ood:
        assert v[("good", "certified", s, "AUROC_cons")] <= v[("good", "linf", s, "AUROC_cons")] + 1e-12
        assert v[("good", "linf", s, "AUROC_cons")] <= v[("good", "natural", s, "AUROC_cons")] + 1e-12
    assert set(table.attrs["seconds"]) == {"good", "msp"}
    summary = evaluate.summarise(table)
    assert ("certified", "AUROC_cons") in summary.columns


def test_a_detectors_rows_do_not_depend_on_the_other_detectors(cnn):
    x_in, ood = _images(20, 6), {"a": _images(6, 7)}
    attack = evaluate.AttackSettings(eps=0.03, steps=3, step_size=0.01)
    other = models.build("small_cnn", num_classes=10, seed=1, width=4).eval()
    alone = evaluate.threat_table([detectors.msp_detector("m", cnn)], x_in, ood, threats=("linf",),
                                  attack_size=6, attack=attack, desc=None)
    both = [detectors.msp_detector("o", other), detectors.msp_detector("m", cnn)]
    mixed = evaluate.threat_table(both, x_in, ood, threats=("linf",), attack_size=6, attack=attack, desc=None)
    pd.testing.assert_frame_equal(alone.reset_index(drop=True),
                                  mixed[mixed.model == "m"].reset_index(drop=True))


def test_threat_table_rejects_unknown_threats_and_metrics(cnn):
    det = detectors.msp_detector("m", cnn)
    with pytest.raises(ValueError, match="threat"):
        evaluate.threat_table([det], _images(4), {"a": _images(4)}, threats=("rotation",), desc=None)
    with pytest.raises(ValueError, match="metric"):
        evaluate.threat_table([det], _images(4), {"a": _images(4)}, metrics_=("F1",), desc=None)
    with pytest.raises(ValueError, match="eps"):
        evaluate.AttackSettings(eps=0.0)
    weak = evaluate.AttackSettings(eps=0.1, steps=40, step_size=0.01).weak(3)
    assert (weak.steps, weak.step_size, weak.restarts) == (3, 0.05, 1)


def test_cached_table_round_trip_and_key(zoo_cache):
    calls = []

    def compute() -> pd.DataFrame:
        calls.append(1)
        t = pd.DataFrame([{"model": "m", "ood_set": "a", "stand_in_for": None, "threat": "natural",
                           "metric": "AUROC", "value": 0.75},
                          {"model": "m", "ood_set": "b", "stand_in_for": "MNIST", "threat": "natural",
                           "metric": "AUROC", "value": 0.5}])
        t.attrs["seconds"] = {"m": 1.5}
        return t

    a = evaluate.cached_table("bench", {"k": 1}, compute)
    b = evaluate.cached_table("bench", {"k": 1}, compute)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(a, b)
    assert b.stand_in_for.tolist() == [None, "MNIST"] and b.attrs["seconds"] == {"m": 1.5}
    evaluate.cached_table("bench", {"k": 2}, compute)
    assert len(calls) == 2
    with pytest.raises(ValueError, match="table name"):
        evaluate.cached_table("../x", {}, compute)


def test_cached_tensors_round_trip_and_key(zoo_cache):
    calls = []

    def compute() -> dict[str, torch.Tensor]:
        calls.append(1)
        return {"x": torch.arange(6.0).reshape(2, 3), "conf": torch.tensor([0.5, 0.25])}

    a = evaluate.cached_tensors("balls", {"k": 1}, compute)
    b = evaluate.cached_tensors("balls", {"k": 1}, compute)
    assert len(calls) == 1 and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    evaluate.cached_tensors("balls", {"k": 2}, compute)
    assert len(calls) == 2
    with pytest.raises(ValueError, match="dict of tensors"):
        evaluate.cached_tensors("balls", {"k": 3}, lambda: {"x": [1, 2]})
    with pytest.raises(ValueError, match="plain-JSON key"):
        evaluate.cached_tensors("balls", {"k": torch.tensor(1)}, compute)
    threads = torch.get_num_threads()  # another thread count sums in another order: computed again
    try:
        torch.set_num_threads(threads + 1)
        evaluate.cached_tensors("balls", {"k": 1}, compute)
        assert len(calls) == 3 and runtime.numerics() == f"cpu, {threads + 1} threads"
    finally:
        torch.set_num_threads(threads)
    evaluate.cached_tensors("balls", {"k": 1}, compute)
    assert len(calls) == 3


def test_tuning_helpers_pick_the_lowest_validation_fpr(cnn):
    from oodlib import mahalanobis, profiles

    x, y = _images(60, 8), torch.arange(60) % 10
    head = mahalanobis.fit(cnn, x, y)
    x_in, x_out = _images(30, 9), _images(30, 10) * 0.2
    grid = (0.0, 0.002, 0.01)
    eps = detectors.tune_mahalanobis(head, x_in, x_out, grid)
    fprs = [metrics.fpr_at_tpr(mahalanobis.mahalanobis(head, x_in, eps=e),
                               mahalanobis.mahalanobis(head, x_out, eps=e)) for e in grid]
    assert fprs[grid.index(eps)] == min(fprs)
    pick = detectors.tune_odin(cnn, x_in, x_out, profiles.CI.replace(odin={"num_eps": 3}))
    assert pick.temperature == 1000.0 and 0.0 <= pick.eps <= profiles.CI.odin.max_eps
    # the detectors' fit step is these helpers: an untuned detector refuses to score, a fitted one has them
    odin_det = detectors.make("odin", "ODIN", cnn, profile=profiles.CI.replace(odin={"num_eps": 3}))
    maha_det = detectors.make("mahalanobis", "M", head, grid=grid)
    for det in (odin_det, maha_det):
        with pytest.raises(ValueError, match="call .fit"):
            det.score(x_in)
        with pytest.raises(ValueError, match="x_val_out"):
            det.fit(x_in)
        det.fit(x_in, None, x_out)
    assert odin_det.extra == {"temperature": pick.temperature, "eps": pick.eps}
    assert maha_det.extra == {"eps": eps}
    assert torch.equal(maha_det.score(x_in), mahalanobis.mahalanobis(head, x_in, eps=eps))
    assert detectors.make("msp", "MSP", cnn).fit(x_in) is not None  # nothing to tune: unchanged


def test_benchmark_summary_and_ranks():
    from types import SimpleNamespace

    from oodlib import benchmark

    rec = {"test_error": 0.1, "train_time_s": 10.0, "hash": "h"}
    entries = {"plain": SimpleNamespace(record=rec),
               "GOOD_100": SimpleNamespace(record=rec | {"test_error": 0.2})}
    dets = [SimpleNamespace(name="MSP", note="plain", source="plain"),
            SimpleNamespace(name="GOOD_100", note="", source="GOOD_100")]
    rows = []
    for model, nat, cert in [("MSP", 0.9, None), ("GOOD_100", 0.8, 0.6)]:
        for ood_set, shift in [("a", 0.0), ("b", 0.1)]:
            rows.append({"model": model, "ood_set": ood_set, "stand_in_for": None, "threat": "natural",
                         "metric": "AUROC_cons", "value": nat - shift})
            if cert is not None:
                rows.append({"model": model, "ood_set": ood_set, "stand_in_for": None, "threat": "certified",
                             "metric": "AUROC_cons", "value": cert})
    table = pd.DataFrame(rows)
    table.attrs["seconds"] = {"MSP": 1.0, "GOOD_100": 2.0}
    summ = benchmark.summary(table, dets, entries)
    assert summ.loc["MSP", ("natural", "AUROC_cons")] == pytest.approx(85.0)
    assert summ.loc["GOOD_100", ("test error", "")] == pytest.approx(20.0)
    assert pd.isna(summ.loc["MSP", ("certified", "AUROC_cons")])
    assert summ.loc["GOOD_100", ("eval time (s)", "")] == 2.0
    r = benchmark.ranks(summ)
    assert r.loc["MSP", "natural"] == 1 and r.loc["GOOD_100", "natural"] == 2
    assert pd.isna(r.loc["MSP", "certified"]) and r.loc["GOOD_100", "certified"] == 1
    with pytest.raises(ValueError, match="metric"):
        benchmark.ranks(summ, metric="F1")


def test_threat_table_and_cached_table_validate_their_inputs(cnn, zoo_cache):
    det = detectors.msp_detector("m", cnn)
    with pytest.raises(ValueError, match="unique detector names"):
        evaluate.threat_table([det, det], _images(4), {"a": _images(4)}, desc=None)
    with pytest.raises(ValueError, match="Detector"):
        evaluate.threat_table([cnn], _images(4), {"a": _images(4)}, desc=None)
    with pytest.raises(ValueError, match="OOD set"):
        evaluate.threat_table([det], _images(4), {}, desc=None)
    with pytest.raises(ValueError, match="plain-JSON"):
        evaluate.cached_table("t", {"x": torch.zeros(2)}, pd.DataFrame)
    with pytest.raises(ValueError, match="step_size"):
        evaluate.AttackSettings(step_size=float("inf"))


def test_ccu_detector_attacks_the_excess_and_scores_the_confidence():
    model = _random_ccu(3)
    det = detectors.ccu_detector("ccu", model)
    x = torch.rand(6, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        excess = det.objective(det.model(x))
    assert torch.allclose(excess, ccu.ccu_log_excess(model, x))
    conf = torch.softmax(model(x).double(), 1).max(1).values
    assert torch.allclose(det.score(x).double(), conf, atol=1e-6)
    # same order: the excess is a monotone transform of the confidence
    assert torch.equal(torch.argsort(excess), torch.argsort(conf))


@pytest.mark.skipif(not data.DEBIAN_FMNIST.exists(), reason="needs Debian's dataset-fashion-mnist")
def test_benchmark_lists_missing_models_and_weights_hash_tracks_the_file(zoo_cache, tiny_profile):
    from oodlib import zoo, zoo_plan

    todo = [n.name for n in zoo_plan.missing(tiny_profile, ["07"])]
    assert "plain" in todo and "GOOD_100" in todo and "ATOM (q=0.0)" in todo and "ATOM" in todo
    entry = zoo.load_or_train("plain", profile=tiny_profile)
    assert "plain" not in [n.name for n in zoo_plan.missing(tiny_profile, ["07"])]
    h = entry.weights_hash
    assert len(h) == 12 and h == entry.weights_hash
    entry.path.write_bytes(entry.path.read_bytes() + b"x")
    assert entry.weights_hash != h


def test_threat_table_keeps_its_scores_through_the_cache(cnn, zoo_cache):
    x_in, ood = _images(12, 8), {"a": _images(5, 9)}
    det = detectors.msp_detector("m", cnn)

    def compute() -> pd.DataFrame:
        return evaluate.threat_table([det], x_in, ood, threats=("natural",), attack_size=5, desc=None)

    fresh = compute()
    cached = evaluate.cached_table("scores", {"k": 1}, compute)
    again = evaluate.cached_table("scores", {"k": 1}, compute)
    for t in (fresh, cached, again):
        s_in, s_out = evaluate.scores_of(t, "m"), evaluate.scores_of(t, "m", "natural")
        assert s_in.shape == (12,) and s_out["a"].shape == (5,)
        v = t.set_index(["ood_set", "metric"]).value
        assert v[("a", "AUROC")] == pytest.approx(metrics.auroc(s_in, s_out["a"]))
    pd.concat([fresh, cached])  # attrs holding arrays must not break pandas
    with pytest.raises(ValueError, match="unknown detector"):
        evaluate.scores_of(fresh, "x")


def test_threat_table_reports_the_mmc_of_confidence_scores_only(cnn):
    x_in, x_out = _images(20, 21), _images(10, 22)
    k1 = detectors.k1_detector("k1", models.build("small_cnn", num_classes=11, seed=1, width=4))
    t = evaluate.threat_table([detectors.msp_detector("MSP", cnn), k1], x_in, {"o": x_out},
                              threats=("natural",), desc=None, metrics_=("MMC", "AUROC"))
    mmc = t[t.metric == "MMC"]
    assert list(mmc.model) == ["MSP"]  # the (K+1) score is not a confidence: no MMC row
    assert mmc.value.iloc[0] == pytest.approx(float(scores.msp(cnn, x_out).double().mean()))
