"""Interval bound propagation, the GOOD bounds and losses, and the APGD confidence attack.

The central property (docs/design.md, pitfall 5): IBP is *sound*. For random small
networks, points sampled in the input box (inside, at the vertices, and found by
an attack) never produce an activation, logit difference or confidence outside
the computed bounds.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from oodlib import apgd, detectors, evaluate, good, ibp, models, profiles, scores, train, zoo

TOL = 1e-5  # float32 rounding of the centre-radius form


def _mlp(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 20), nn.ReLU(), nn.Linear(20, 16), nn.ReLU(),
                         nn.Linear(16, 5))


def _cnn(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),  # 8x8 -> 4x4
        nn.Conv2d(4, 6, 3, padding=2, dilation=2), nn.ReLU(),  # dilation, padding
        nn.MaxPool2d(2),  # 4x4 -> 2x2
        nn.Sequential(nn.Conv2d(6, 6, 1), nn.ReLU()),  # nested Sequential is flattened
        nn.AvgPool2d(2, stride=1, padding=1),  # 2x2 -> 3x3
        nn.Flatten(), nn.Linear(6 * 3 * 3, 10), nn.ReLU(), nn.Linear(10, 4),
    )


NETS = [("mlp", _mlp), ("cnn", _cnn)]


def _activations(net: nn.Sequential, u: torch.Tensor) -> list[torch.Tensor]:
    acts = [u]
    for layer in ibp.flatten_layers(net):
        acts.append(layer(acts[-1]))
    return acts


def _diffs(logits: torch.Tensor) -> torch.Tensor:
    return logits[:, :, None] - logits[:, None, :]


def _attack_diff(net: nn.Module, x: torch.Tensor, eps: float, k: int, l: int, steps: int = 20
                 ) -> torch.Tensor:
    """Sign-gradient ascent on f_k - f_l inside the clamped box (a strong in-box sampler)."""
    lo, hi = ibp.input_box(x, eps)
    u = lo + (hi - lo) * torch.rand_like(x)
    for _ in range(steps):
        u = u.detach().requires_grad_(True)
        f = net(u)
        (g,) = torch.autograd.grad((f[:, k] - f[:, l]).sum(), u)
        u = torch.minimum(torch.maximum(u + 0.25 * eps * g.sign(), lo), hi)
    return u.detach()


@pytest.mark.parametrize("kind,make", NETS)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("eps", [0.02, 0.1, 0.4])
def test_soundness_random_nets(kind, make, seed, eps):
    net = make(seed).eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(6, 1, 8, 8, generator=gen)
    x[0] = 0.0  # a point on the domain's corner: the clamp must not break soundness
    boxes = ibp.layer_boxes(net, x, eps)
    bounds = ibp.interval_bounds(net, x, eps)
    cert = ibp.certified_confidence(net, x, eps)
    lo, hi = ibp.input_box(x, eps)
    assert torch.all(lo >= 0) and torch.all(hi <= 1)
    samples = [lo + (hi - lo) * torch.rand(x.shape, generator=gen) for _ in range(30)]
    samples += [torch.where(torch.rand(x.shape, generator=gen) < 0.5, lo, hi) for _ in range(30)]  # vertices
    k_cls = bounds.diff_upper.shape[1]
    samples += [_attack_diff(net, x, eps, k, (k + 1) % k_cls) for k in range(k_cls)]
    samples.append(apgd.max_confidence_attack(net, x, eps, steps=20, restarts=1).x_adv)
    with torch.no_grad():
        for u in samples:
            assert torch.all(u >= lo - 1e-7) and torch.all(u <= hi + 1e-7)
            for (name, blo, bhi), a in zip(boxes, _activations(net, u), strict=True):
                assert torch.all(a >= blo - TOL) and torch.all(a <= bhi + TOL), f"{kind} left box at {name}"
            f = net(u)
            assert torch.all(f >= bounds.logit_lo - TOL) and torch.all(f <= bounds.logit_hi + TOL)
            assert torch.all(_diffs(f) <= bounds.diff_upper + TOL), "logit difference above eq. 5 bound"
            conf = torch.softmax(f, 1).max(1).values
            assert torch.all(conf <= cert + TOL), "confidence above the eq. 6 certificate"


@pytest.mark.parametrize("kind,make", NETS)
def test_bounds_exact_at_zero_radius(kind, make):
    net = make(3).eval()
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        for (_, lo, hi), a in zip(ibp.layer_boxes(net, x, 0.0), _activations(net, x), strict=True):
            torch.testing.assert_close(lo, a, atol=TOL, rtol=0)
            torch.testing.assert_close(hi, a, atol=TOL, rtol=0)
        f = net(x)
        u = ibp.logit_diff_upper(net, x, 0.0)
        torch.testing.assert_close(u, _diffs(f), atol=TOL, rtol=0)
        log_conf = torch.log_softmax(f, 1).max(1).values
        torch.testing.assert_close(ibp.log_confidence_upper(u), log_conf, atol=TOL, rtol=0)
        torch.testing.assert_close(ibp.certified_confidence(net, x, 0.0), log_conf.exp(), atol=TOL, rtol=0)
        torch.testing.assert_close(ibp.cub_loss(u), ibp.cub_loss_clean(f), atol=TOL, rtol=0)


def test_bounds_grow_with_eps_and_elision_is_tighter():
    net = _cnn(4).eval()
    x = torch.rand(8, 1, 8, 8)
    with torch.no_grad():
        prev = None
        for eps in [0.0, 0.01, 0.05, 0.2, 0.5]:
            b = ibp.interval_bounds(net, x, eps)
            naive = ibp.naive_logit_diff_upper(b.logit_lo, b.logit_hi)
            assert torch.all(b.diff_upper <= naive + TOL)
            c = ibp.log_confidence_upper(b.diff_upper)
            if prev is not None:
                assert torch.all(c >= prev - TOL)
            prev = c
        clamped = ibp.logit_diff_upper(net, x, 0.3)
        unclamped = ibp.logit_diff_upper(net, x, 0.3, domain=None)
        assert torch.all(clamped <= unclamped + TOL)


def test_eq7_bound_above_eq6_and_cub_loss():
    gen = torch.Generator().manual_seed(0)
    for scale in [0.1, 1.0, 10.0, 100.0]:
        u = torch.randn(50, 10, 10, generator=gen).abs() * scale
        u = u.masked_fill(torch.eye(10, dtype=torch.bool), 0.0)
        assert torch.all(ibp.log_confidence_upper_eq7(u) >= ibp.log_confidence_upper(u) - 1e-6)
        assert torch.all(ibp.log_confidence_upper(u) <= 1e-7)
    # CUB loss: 0 (its minimum) exactly for equal logits, with zero gradient there
    logits = torch.full((3, 10), 2.5, requires_grad=True)
    loss = ibp.cub_loss_clean(logits)
    assert torch.all(loss == 0)
    (g,) = torch.autograd.grad(loss.sum(), logits)
    assert torch.all(g == 0)
    other = torch.randn(100, 10, generator=gen)
    assert torch.all(ibp.cub_loss_clean(other) > 0)
    # eq. 6 at equal logits is log(1/K); eq. 7 too: both bounds meet at the global minimum
    flat = nn.Sequential(nn.Flatten(), nn.Linear(4, 10))
    nn.init.zeros_(flat[1].weight)
    nn.init.constant_(flat[1].bias, 1.5)
    with torch.no_grad():
        u0 = ibp.logit_diff_upper(flat, torch.rand(2, 1, 2, 2), 0.3)
    torch.testing.assert_close(ibp.log_confidence_upper(u0), torch.full((2,), -math.log(10)))
    torch.testing.assert_close(ibp.log_confidence_upper_eq7(u0), torch.full((2,), -math.log(10)))


def test_invalid_inputs_raise():
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="batch norm"):
        ibp.interval_bounds(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(),
                                          nn.Linear(72, 3)), x, 0.1)
    with pytest.raises(ValueError, match="nn.Sequential"):
        ibp.interval_bounds(nn.Linear(3, 3), x, 0.1)
    with pytest.raises(ValueError, match="last layer"):
        ibp.interval_bounds(nn.Sequential(nn.Flatten(), nn.Linear(64, 3), nn.ReLU()), x, 0.1)
    with pytest.raises(ValueError, match="eps"):
        ibp.logit_diff_upper(_mlp(0), x, -0.1)
    with pytest.raises(ValueError, match=r"\(N, K, K\)"):
        ibp.log_confidence_upper(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="quantile"):
        good.GOOD(quantile=1.5)
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['q'\]"):
        zoo.make_method("good", q=0.5)
    with pytest.raises(ValueError, match="x"):
        ibp.certified_confidence(_mlp(0), x * 3, 0.1)


def test_good_quantile_loss_and_ramp():
    torch.manual_seed(0)
    net = models.build("small_cnn", seed=0)
    x_in, y_in = torch.rand(8, 1, 28, 28), torch.randint(10, (8,))
    x_out = torch.rand(10, 1, 28, 28)
    gen = torch.Generator()
    batch = train.Batch(x_in, y_in, x_out, step=100, total_steps=100, generator=gen)
    with torch.no_grad():
        clean = ibp.cub_loss_clean(net(x_out))
        bound = ibp.cub_loss(ibp.logit_diff_upper(net, x_out, 0.1))
        assert torch.all(bound >= clean - TOL)
        order = torch.argsort(bound)
        for q in [0.0, 0.3, 0.5, 1.0]:
            method = good.GOOD(quantile=q, eps=0.1, kappa=0.5)
            loss, logs = method.loss(net, batch)
            k = math.floor(q * 10 + 1e-9)
            expect_out = (bound[order[:k]].sum() + clean[order[k:]].sum()) / 10
            ce = torch.nn.functional.cross_entropy(net(x_in), y_in)
            torch.testing.assert_close(loss, ce + 0.5 * expect_out, atol=1e-5, rtol=1e-5)
            assert logs["eps"] == 0.1 and logs["kappa"] == 0.5
    method = good.GOOD(eps=0.3, kappa=0.3, ramp_start=0.1, ramp_end=0.5)
    assert method.schedule(0, 100) == (0.0, 0.0)
    assert method.schedule(30, 100) == pytest.approx((0.15, 0.15))
    assert method.schedule(80, 100) == pytest.approx((0.3, 0.3))
    assert good.ramp(5, 10, 0.5, 0.5) == 1.0 and good.ramp(4, 10, 0.5, 0.5) == 0.0


def test_good_trains_and_lowers_its_bound():
    torch.manual_seed(0)
    net = models.build("mlp", seed=0)
    x, y = torch.rand(256, 1, 28, 28) * 0.5, torch.randint(2, (256,))
    x_out = torch.rand(256, 1, 28, 28)
    before = ibp.certified_confidence(net, x_out, 0.05).mean()
    method = zoo.make_method("good", quantile=1.0, eps=0.05, kappa=1.0, ramp_end=0.2)
    hist = train.fit(net, x, y, method, epochs=3, batch_size=64, x_out=x_out)
    after = ibp.certified_confidence(net, x_out, 0.05).mean()
    assert {"ce", "cub_eps", "eps", "kappa", "loss"} <= set(hist.logs)
    assert all(len(v) == 3 for v in hist.logs.values())  # every step logs the same keys
    assert after < before


def test_zoo_takes_good_defaults_from_profile():
    cfg = zoo.make_config("good", "fashion_mnist", profiles.CI, arch=profiles.CI.ibp_model, quantile=0.5)
    hp = cfg["hparams"]
    assert hp["eps"] == profiles.CI.good.eps and hp["kappa"] == profiles.CI.good.kappa
    assert hp["quantile"] == 0.5
    assert profiles.FULL.good.eps == 0.3 and 100 in profiles.FULL.good.quantiles
    assert good.quantile_name(0.8) == "GOOD_80"


def test_apgd_attack_increases_confidence_and_stays_feasible():
    net = _cnn(5).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 8, 8, generator=gen)
    eps = 0.2
    res = apgd.max_confidence_attack(net, x, eps, steps=30, restarts=2, generator=gen)
    clean = scores.msp(net, x)
    torch.testing.assert_close(res.clean, clean, atol=1e-6, rtol=0)
    assert torch.all(res.confidence >= res.clean)
    assert (res.confidence > res.clean + 1e-4).float().mean() > 0.5, "the attack should move"
    assert torch.all((res.x_adv - x).abs() <= eps + 1e-6)
    assert torch.all(res.x_adv >= 0) and torch.all(res.x_adv <= 1)
    torch.testing.assert_close(scores.msp(net, res.x_adv), res.confidence, atol=1e-5, rtol=0)
    assert torch.all(res.confidence <= ibp.certified_confidence(net, x, eps) + TOL)
    assert set(res.by_start) == {"clean", "low_contrast", "uniform"}
    # APGD beats a single step from the clean point
    one = apgd.max_confidence_attack(net, x, eps, steps=1, restarts=0, starts=("clean",))
    assert res.confidence.mean() > one.confidence.mean()
    # eps = 0 returns the clean point; candidates are projected onto the feasible set
    zero = apgd.max_confidence_attack(net, x, 0.0, steps=5)
    assert torch.equal(zero.x_adv, x)
    far = apgd.max_confidence_attack(net, x, 0.05, steps=2, restarts=0, starts=("clean",),
                                     candidates=[torch.rand(x.shape, generator=gen)])
    assert torch.all((far.x_adv - x).abs() <= 0.05 + 1e-6)


def test_apgd_helpers():
    assert apgd.apgd_checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    x = torch.tensor([0.0, 0.3, 0.5, 0.9]).view(1, 1, 2, 2)
    torch.testing.assert_close(apgd.low_contrast_start(x, 0.25).flatten(),
                               torch.tensor([0.25, 0.5, 0.5, 0.65]))
    u = apgd.uniform_start(x, 0.1, torch.Generator().manual_seed(0))
    assert torch.all((u - x).abs() <= 0.1 + 1e-7) and torch.all((u >= 0) & (u <= 1))
    with pytest.raises(ValueError, match="starts"):
        apgd.max_confidence_attack(_mlp(0), torch.rand(2, 1, 8, 8), 0.1, starts=("nowhere",))


def test_good_threats_order_auc_aauc_gauc_point_by_point():
    # chapter 05's Table 1 is threat_table with GOOD's threats: clean <= APGD-attacked <= IBP bound per image
    torch.manual_seed(0)
    nets = {"a": models.build("mlp", seed=1), "b": models.build("small_cnn", seed=2)}
    dets = [detectors.good_detector(n, m) for n, m in nets.items()]
    x_in = torch.rand(40, 1, 28, 28)
    sets = {"noise": torch.rand(8, 1, 28, 28), "dark": 0.2 * torch.rand(8, 1, 28, 28)}
    table = evaluate.threat_table(dets, x_in, sets, threats=evaluate.GOOD_THREATS, attack_size=8,
                                  attack=evaluate.AttackSettings(eps=0.05, steps=5, restarts=1), desc=None,
                                  metrics_=("AUROC_cons",))
    assert len(table) == 2 * 2 * 3 and set(table.threat) == set(evaluate.GOOD_THREATS)
    v = table.set_index(["model", "ood_set", "threat"]).value
    for m in nets:
        for s in sets:
            assert v[(m, s, "certified")] <= v[(m, s, "apgd")] <= v[(m, s, "natural")]
            clean, att, cert = (evaluate.scores_of(table, m, t)[s] for t in evaluate.GOOD_THREATS)
            assert len(clean) == 8 and (clean <= att).all() and (att <= cert + TOL).all()
    # the APGD threat needs a detector whose score is a network's max softmax
    k1 = detectors.k1_detector("k1", models.build("mlp", num_classes=11, seed=3))
    t = evaluate.threat_table([k1], x_in, sets, threats=("apgd",), attack_size=8, desc=None)
    assert t.empty


def test_table1_beside_paper_and_gauc_by_radius():
    rows = [{"model": m, "ood_set": "(in-distribution)", "metric": "accuracy", "value": 0.9}
            for m in ("plain", "GOOD_100", "mine")]
    rows += [{"model": m, "ood_set": s, "metric": k, "value": v}
             for m in ("plain", "GOOD_100", "mine") for s in ("letters", "noise")
             for k, v in (("AUC", 0.95), ("AAUC", 0.5), ("GAUC", 0.25))]
    t = good.table1_beside_paper(pd.DataFrame(rows), {"EMNIST letters": "letters", "uniform noise": "noise"})
    # Bitterwolf et al., Table 1
    assert t.loc["plain", "EMNIST letters / letters paper"] == "88.0 / 31.4 / 0.0"
    assert t.loc["GOOD_100", "acc paper"] == 98.7 and t.loc["mine", "acc paper"] == "—"
    assert t.loc["mine", "uniform noise / noise ours"] == "95.0 / 50.0 / 25.0"
    assert t.loc["mine", "acc ours"] == 90.0
    with pytest.raises(ValueError, match="columns"):
        good.table1_beside_paper(pd.DataFrame({"x": [1]}), {})
    # GAUC vs radius: at radius 0 the bound is the clean confidence; it can only fall as the ball grows
    net = _mlp(0)
    x_in, x_out = torch.rand(30, 1, 8, 8), torch.rand(10, 1, 8, 8) * 0.3
    s_in = {"a": torch.softmax(net(x_in), 1).max(1).values.detach()}
    g = good.gauc_by_radius({"a": net}, s_in, {"dim": x_out}, [0.0, 0.05, 0.3])
    assert list(g.radius) == [0.0, 0.05, 0.3] and g.GAUC.is_monotonic_decreasing
    with pytest.raises(ValueError, match="missing"):
        good.gauc_by_radius({"a": net, "b": net}, s_in, {"dim": x_out}, [0.0])


def test_paper_mean_auc_of_table1():
    # Table 1, MNIST: GOOD_100's clean AUCs 100, 99.0, 100, 100; GOOD_0's 99.9, 92.9, 100, 100
    assert good.paper_mean_auc("GOOD_100") == pytest.approx(99.75)
    assert good.paper_mean_auc("GOOD_0") == pytest.approx(98.2)
    assert good.paper_mean_auc("GOOD_100", 2) == pytest.approx((78.0 + 3.3 + 99.4 + 100.0) / 4)
    with pytest.raises(ValueError, match="column"):
        good.paper_mean_auc("GOOD_100", 3)
