"""Tests for oodlib.atom (NTOM / ATOM, Algorithm 1, q selection, threat evaluation) and oodlib.mahalanobis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from oodlib import atom, detectors, evaluate, mahalanobis, metrics, models, train, zoo

K = 10


@pytest.fixture(scope="module")
def k1_model() -> nn.Module:
    return models.build("small_cnn", num_classes=K + 1, seed=0, width=4).eval()


def _images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- the (K+1) detector


def test_scores_and_classification(k1_model):
    x = _images(20)
    p_ood = atom.ood_probability(k1_model, x)
    with torch.no_grad():
        z = k1_model(x)
    assert torch.allclose(p_ood, torch.softmax(z, 1)[:, -1], atol=1e-6)
    assert torch.allclose(atom.ood_score(k1_model, x), 1 - p_ood)
    assert torch.equal(atom.classify(k1_model, x), z[:, :K].argmax(1))
    obj = atom.atom_objective(z)
    assert torch.allclose(obj, -torch.log(p_ood), atol=1e-5)


@pytest.mark.parametrize("n", [1000, 999, 37])
def test_threshold_is_the_largest_keeping_95_percent(n):
    s = np.random.default_rng(n).random(n)
    gamma = metrics.tpr_threshold(s, 0.95)  # ATOM's γ (eq. 5) is the book's one 95 %-TPR threshold
    assert np.mean(atom.detect(s, gamma) == 1) >= 0.95
    assert np.mean(s >= np.nextafter(gamma, np.inf)) < 0.95  # any larger threshold keeps fewer


def _validation(fprs: dict[str, list[float]]) -> pd.DataFrame:
    atom_threats = ("natural", "corruption", "linf", "compositional")
    rows = [{"model": m, "threat": t, "ood_set": "aux validation", "metric": "FPR95", "value": v}
            for m, vals in fprs.items() for t, v in zip(atom_threats, vals, strict=True)]
    rows += [{"model": m, "threat": "natural", "ood_set": "aux validation", "metric": "AUROC", "value": 0.0}
             for m in fprs]  # other metrics must not enter the choice
    return pd.DataFrame(rows)


def test_choose_q_takes_the_lowest_mean_fpr_over_threats():
    # App. B.7: the q whose model has the lowest FPR95 averaged over the four threat types
    val = _validation({"ATOM (q=0.0)": [0.1, 0.5, 0.9, 0.9], "ATOM (q=0.125)": [0.3, 0.3, 0.4, 0.4],
                       "ATOM (rand. sample)": [0.0, 0.0, 0.0, 0.0]})
    q, per_model = atom.choose_q(val, {"ATOM (q=0.0)": 0.0, "ATOM (q=0.125)": 0.125})
    assert q == 0.125  # mean 0.35 < 0.6; the random-sampling model is not a candidate
    assert per_model.to_dict() == pytest.approx({"ATOM (q=0.0)": 0.6, "ATOM (q=0.125)": 0.35})


def test_choose_q_breaks_ties_towards_the_smaller_q():
    val = _validation({"a": [0.2, 0.2, 0.4, 0.4], "b": [0.3, 0.3, 0.3, 0.3], "c": [0.4, 0.4, 0.2, 0.2]})
    assert atom.choose_q(val, {"c": 0.5, "a": 0.25, "b": 0.125})[0] == 0.125
    with pytest.raises(ValueError, match="expected validation rows"):
        atom.choose_q(val, {"missing": 0.0})


def test_select_slice_is_the_documented_slice():
    rng = np.random.default_rng(1)
    ood_prob = rng.random(400)
    for q in (0.0, 0.125, 0.25, 0.5, 0.75):
        keep = atom.select_slice(ood_prob, q, 100)
        order = np.argsort(ood_prob)
        start = int(round(q * 400))
        assert np.array_equal(keep, order[start : start + 100])
        assert np.all(np.diff(ood_prob[keep]) >= 0)  # hardest (lowest OOD score) first
        # everything skipped is harder, everything left out above is easier
        assert np.sum(ood_prob < ood_prob[keep].min()) == start
    with pytest.raises(ValueError, match=r"1 - n/N"):
        atom.select_slice(ood_prob, 0.8, 100)
    with pytest.raises(ValueError, match="n_keep"):
        atom.select_slice(ood_prob, 0.0, 500)


def test_mine_and_epoch_pool(k1_model):
    pool = _images(300, seed=2)
    gen = torch.Generator().manual_seed(0)
    m = atom.mine(k1_model, pool, 200, 50, 0.25, gen)
    assert len(m.candidates) == 200 and len(m.kept) == 50 and len(set(m.kept.tolist())) == 50
    scores_all = atom.ood_probability(k1_model, pool)
    assert torch.allclose(m.candidate_scores, scores_all[m.candidates])
    kept_scores = scores_all[m.kept]
    assert int((m.candidate_scores < kept_scores.min()).sum()) == 50  # q·N = 50 harder ones skipped

    method = atom.NTOM(n_candidates=200, n_keep=50, q=0.0, holdout=100)
    out = method.epoch_pool(k1_model, pool, 0, torch.Generator().manual_seed(1))
    assert out.shape == (50, 1, 28, 28)
    assert int(method.rounds[0].kept.max()) < 200  # the held-out last 100 images are never used
    rand = atom.NTOM(n_candidates=200, n_keep=50, sampling="random", holdout=100)
    assert rand.epoch_pool(k1_model, pool, 0, torch.Generator()).shape == (50, 1, 28, 28)
    idx = rand.rounds[0]
    assert len(set(idx.tolist())) == 50 and int(idx.max()) < 200


def test_losses_and_atom_perturbs_half(k1_model):
    x_in, y_in = _images(8, 3), torch.randint(0, K, (8,))
    x_out = _images(6, 4)
    gen = torch.Generator().manual_seed(0)
    batch = train.Batch(x_in, y_in, x_out, 0, 1, gen)
    model = models.build("small_cnn", num_classes=K + 1, seed=1, width=4).train()
    ntom = atom.NTOM(lam=1.0, n_candidates=10, n_keep=5)
    loss, logs = ntom.loss(model, batch)
    loss.backward()
    z = model(torch.cat([x_in, x_out]))
    ce = nn.functional.cross_entropy
    manual = ce(z[:8], y_in) + ce(z[8:], torch.full((6,), K))
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
    assert set(logs) >= {"ce", "out", "ood_prob_out"}

    atom_m = atom.ATOM(n_candidates=10, n_keep=5, eps=8 / 255, steps=3, step_size=2 / 255)
    adv = atom_m.out_batch(model, batch)
    assert model.training
    assert torch.equal(adv[3:], x_out[3:])
    assert (adv[:3] - x_out[:3]).abs().max() <= 8 / 255 + 1e-6
    with torch.no_grad():
        gain = atom.atom_objective(model(adv[:3])) - atom.atom_objective(model(x_out[:3]))
    assert bool((gain >= -1e-6).all())


def test_hyper_parameter_validation():
    with pytest.raises(ValueError, match="q"):
        atom.NTOM(n_candidates=100, n_keep=50, q=0.75)
    with pytest.raises(ValueError, match="n_keep"):
        atom.NTOM(n_candidates=10, n_keep=50)
    with pytest.raises(ValueError, match="sampling"):
        atom.NTOM(sampling="greedy")
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        zoo.make_method("atom", temperature=2)
    with pytest.raises(ValueError, match="K\\+1"):
        atom.atom_objective(torch.zeros(3, 1))


def test_zoo_builds_a_k_plus_1_head_and_trains(zoo_cache, tiny_profile):
    hp = dict(n_candidates=128, n_keep=32, q=0.125, holdout=64, out_ratio=0.5)
    entry = zoo.load_or_train("ntom", profile=tiny_profile, **hp)
    assert entry.record["config"]["hparams"]["num_classes"] == 11
    assert entry.model[-1].out_features == 11
    assert 0.0 <= entry.record["test_error"] <= 1.0
    assert "ood_prob_out" in entry.record["history"]
    again = zoo.load_or_train("ntom", profile=tiny_profile, **hp)
    assert again.path == entry.path
    atom = zoo.load_or_train("atom", profile=tiny_profile, steps=1, **hp)
    assert atom.record["config"]["hparams"]["eps"] == pytest.approx(8 / 255)


def test_trajectory_scores_its_probe_before_training_and_after_every_epoch():
    x, y = _images(64, 5), torch.randint(0, K, (64,))
    pool = _images(80, 6)
    method = atom.Trajectory(probe_size=30, epochs=2, n_candidates=40, n_keep=20, sampling="random",
                             holdout=10)
    model = method.wrap(models.build("small_cnn", num_classes=K + 1, seed=0, width=4))
    train.fit(model, x, y, method, epochs=2, batch_size=32, x_out=pool)
    t = model.trajectory
    assert t.shape == (3, 30) and torch.isfinite(t).all()
    probe = atom.validation_split(pool, 10)[0][:30]  # the first images of the pool's training split
    assert torch.allclose(t[-1], atom.ood_probability(model, probe))
    assert not torch.allclose(t[0], t[-1])
    big = atom.Trajectory(probe_size=71, epochs=1, n_candidates=40, n_keep=20, sampling="random", holdout=10)
    with pytest.raises(ValueError, match="probe_size = 71"):
        train.fit(big.wrap(models.build("mlp", num_classes=K + 1)), x, y, big, x_out=pool)


def test_the_zoo_trains_the_trajectory_run_and_keeps_its_scores(zoo_cache, tiny_profile):
    prof = atom.trajectory_profile(tiny_profile.replace(atom={"hist_train_size": 128, "hist_epochs": 2}))
    hp = {"n_candidates": 64, "n_keep": 32, "probe_size": 16, "holdout": 50}
    run = zoo.load_or_train("ntom_trajectory", profile=prof, **hp)
    assert run.model.trajectory.shape == (3, 16) and torch.isfinite(run.model.trajectory).all()
    again = zoo.load_or_train("ntom_trajectory", profile=prof, **hp)
    assert torch.equal(again.model.trajectory, run.model.trajectory)  # read back from the checkpoint


def test_threat_table_on_a_k1_model(k1_model):
    x_in = _images(40, 8)
    ood = {"a": _images(12, 9), "b": _images(10, 10) * 0.5}
    det = detectors.k1_detector("k1", k1_model)
    attack = evaluate.AttackSettings(eps=8 / 255, steps=3, step_size=2 / 255)
    nat = evaluate.threat_images(det, ood["a"], "natural")
    lin = evaluate.threat_images(det, ood["a"], "linf", attack=attack)
    assert (lin - nat).abs().max() <= 8 / 255 + 1e-6
    assert bool((det.score(lin) >= det.score(nat) - 1e-6).all())  # PGD keeps the best iterate
    table = evaluate.threat_table([det], x_in, ood, attack_size=5, attack=attack, desc=None)
    assert set(table.threat) == set(evaluate.ATOM_THREATS) and set(table.metric) == {"FPR95", "AUROC"}
    summary = evaluate.summarise(table)
    assert summary.shape == (1, 8)
    # no certificate: the certified threat is skipped, not filled with a made-up bound
    only = evaluate.threat_table([det], x_in, ood, threats=("certified",), attack_size=5, desc=None)
    assert only.empty


# --------------------------------------------------------------------------- Mahalanobis (Lee et al. 2018)


def test_mahalanobis_matches_the_formula():
    model = models.build("small_cnn", num_classes=K, seed=0, width=4).eval()
    x, y = _images(200, 11), torch.arange(200) % K
    head = mahalanobis.fit(model, x, y)
    feats = mahalanobis.penultimate(model, x).double()
    means = torch.stack([feats[y == c].mean(0) for c in range(K)])
    cov = (feats - means[y]).T @ (feats - means[y]) / len(x)
    assert torch.allclose(head.means.double(), means, atol=1e-5)
    xt = _images(7, 12)
    ft = mahalanobis.penultimate(model, xt).double()
    prec = head.precision.double()
    d = torch.stack([((ft - means[c]) @ prec * (ft - means[c])).sum(1) for c in range(K)], 1)
    s = mahalanobis.mahalanobis(model, xt, head=head)
    assert torch.allclose(s.double(), -d.min(1).values, rtol=1e-3, atol=1e-3)
    assert torch.allclose(prec @ (cov + 1e-6 * cov.diagonal().mean() * torch.eye(len(cov), dtype=cov.dtype)),
                          torch.eye(len(cov), dtype=cov.dtype), atol=1e-3)
    assert torch.allclose(detectors.make("mahalanobis", "M", head, eps=0.0).score(xt), s)


def test_mahalanobis_preprocessing_and_attack_raise_the_score():
    model = models.build("small_cnn", num_classes=K, seed=0, width=4).eval()
    x, y = _images(100, 13), torch.arange(100) % K
    head = mahalanobis.fit(model, x, y)
    xt = _images(8, 14)
    plain = mahalanobis.mahalanobis(head, xt)
    assert bool((mahalanobis.mahalanobis(head, xt, eps=0.002) >= plain - 1e-4).all())
    det = detectors.mahalanobis_detector("maha", head, eps=0.0)
    adv = evaluate.threat_images(det, xt, "linf", attack=evaluate.AttackSettings(steps=5, step_size=2 / 255))
    assert float(det.score(adv).mean()) > float(plain.mean())
    with pytest.raises(ValueError, match="MahalanobisHead"):
        mahalanobis.mahalanobis(model, xt)
    with pytest.raises(ValueError, match="Sequential"):
        mahalanobis.penultimate(nn.Linear(3, 2), xt)


def test_paper_gap_text_reads_table1():
    text = atom.paper_gap_text(["ACET", "OE", "NTOM"], "compositional")
    assert text == "57.99 points (CIFAR-10: ACET 96.88 vs 38.89)"
    assert atom.paper_gap_text(["NTOM", "OE"], "linf").startswith("79.35 points (CIFAR-10: NTOM 99.90")
    assert atom.paper_mean_fpr_gap("SVHN", "ATOM (q=0.75)", "ATOM (q=0.0)") == pytest.approx((27.8775, 4))
    with pytest.raises(ValueError, match="detector"):
        atom.paper_fpr("SOFL", "linf")


def test_paper_accuracy_text_reads_table12():
    # App. B.12, Table 12 (DenseNet): ATOM minus the pre-trained network's accuracy
    assert atom.paper_accuracy_text() == "SVHN +0.26, CIFAR-10 +0.81, CIFAR-100 +0.01 points (Table 12)"


def test_paper_training_hours_read_table3():
    # App. B.2, Table 3 (DenseNet, one RTX 2080 Ti): standard training is ODIN's and Mahalanobis' row
    methods = ("plain", "oe", "acet", "ccu", "atom")
    assert [atom.paper_training_hours(m) for m in methods] == [2.5, 5, 17, 6.7, 21]
    assert atom.PAPER_TABLE3_HOURS["MSP"][0] is None  # illegible in our copy, never guessed
    with pytest.raises(ValueError, match="Table 3 times"):
        atom.paper_training_hours("ntom")
