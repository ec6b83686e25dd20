"""Tests for oodlib.acet (out-distribution losses, CEDA / ACET / OE plug-ins) and its smooth noise."""

from __future__ import annotations

import math

import pytest
import torch

from oodlib import acet, models, noise, train, zoo

K = 10


# --------------------------------------------------------------------------- pure losses


@pytest.mark.parametrize(
    "fn, minimum",
    [(acet.log_max_confidence_loss, -math.log(K)), (acet.uniform_ce_loss, math.log(K))],
)
def test_out_losses_minimal_at_equal_logits(fn, minimum):
    equal = torch.full((4, K), 2.5)
    assert fn(equal).item() == pytest.approx(minimum, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        other = torch.randn(4, K, generator=g) * 3
        assert fn(other).item() > minimum + 1e-4


@pytest.mark.parametrize("method, lam", [("ceda", 1.0), ("ceda", 0.5), ("oe", 0.5)])
def test_ceda_and_oe_losses_match_a_hand_computation(method, lam):
    # eq. 1: CE on the in-batch plus lam times the mean out-loss, written out with explicit softmaxes
    g = torch.Generator().manual_seed(0)
    model = models.build("mlp", hidden=8, seed=0)
    x_in, y_in = torch.rand(4, 1, 28, 28, generator=g), torch.tensor([0, 3, 5, 9])
    x_out = torch.rand(2, 1, 28, 28, generator=g)
    batch = train.Batch(x_in, y_in, x_out, 0, 1, g)
    loss, logs = zoo.make_method(method, lam=lam).loss(model, batch)
    with torch.no_grad():
        p_in = torch.softmax(model(x_in), 1)
        p_out = torch.softmax(model(x_out), 1)
    ce = -torch.log(p_in[torch.arange(4), y_in]).mean()
    out = (torch.log(p_out.max(1).values) if method == "ceda" else -torch.log(p_out).mean(1)).mean()
    assert loss.item() == pytest.approx((ce + lam * out).item(), rel=1e-5)
    assert logs["ce"] == pytest.approx(ce.item(), rel=1e-5)
    assert logs["out"] == pytest.approx(out.item(), rel=1e-5)


def test_uniform_ce_gradient_vanishes_at_equal_logits_only():
    z = torch.full((3, K), -1.0, requires_grad=True)
    (g,) = torch.autograd.grad(acet.uniform_ce_loss(z), z)
    assert g.abs().max() < 1e-7
    z2 = torch.randn(3, K, requires_grad=True)
    (g2,) = torch.autograd.grad(acet.uniform_ce_loss(z2), z2)
    assert g2.abs().max() > 1e-3


def test_uniform_ce_is_logsumexp_minus_mean():
    z = torch.randn(5, K)
    expected = (torch.logsumexp(z, 1) - z.mean(1)).mean()
    assert acet.uniform_ce_loss(z).item() == pytest.approx(expected.item(), rel=1e-6)
    assert acet.uniform_ce_per_sample(z).shape == (5,)


# --------------------------------------------------------------------------- smooth noise


def _neighbour_corr(x: torch.Tensor) -> float:
    """Mean correlation between horizontally adjacent pixels."""
    a, b = x[..., :, :-1].flatten(1), x[..., :, 1:].flatten(1)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean())


def test_smooth_noise_range_shape_and_blur():
    g = torch.Generator().manual_seed(0)
    x_in = torch.rand(8, 1, 28, 28, generator=g) ** 3
    smooth = noise.smooth_noise(12, x_in, torch.Generator().manual_seed(1), shuffle=False)
    assert smooth.shape == (12, 1, 28, 28) and smooth.dtype == x_in.dtype
    assert smooth.min() >= 0 and smooth.max() <= 1
    flat = smooth.flatten(1)
    assert torch.allclose(flat.min(1).values, torch.zeros(12), atol=1e-6)  # full contrast range
    assert torch.allclose(flat.max(1).values, torch.ones(12), atol=1e-6)
    assert _neighbour_corr(smooth) > 0.8 > 0.1 > abs(_neighbour_corr(torch.rand(12, 1, 28, 28)))
    # deterministic given the generator, different for another seed
    again = noise.smooth_noise(12, x_in, torch.Generator().manual_seed(1), shuffle=False)
    other = noise.smooth_noise(12, x_in, torch.Generator().manual_seed(2), shuffle=False)
    assert torch.equal(smooth, again) and not torch.equal(smooth, other)


def test_ceda_out_batches_are_the_one_smooth_noise_generator():
    # one generator for training (CEDA/ACET, unshuffled, driven by the loop's generator) and test sets
    x_in = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    out = acet.CEDA(lam=1.5).make_out(x_in, torch.Generator().manual_seed(4))
    ref = noise.smooth_noise(12, x_in, torch.Generator().manual_seed(4), shuffle=False)
    assert torch.equal(out, ref)


def test_smooth_noise_permutes_in_batch_pixels_keeping_channels_together(monkeypatch):
    """Before blurring, the first half are pixel permutations of in-batch images."""
    x_in = torch.zeros(1, 3, 8, 8)
    x_in[0, :, 0, 0] = torch.tensor([0.9, 0.5, 0.1])  # a single coloured pixel
    n = 4
    sigma_calls = []

    def no_blur(x, sigma):
        sigma_calls.append(sigma)
        return x

    monkeypatch.setattr(noise, "blur_and_rescale", no_blur)
    out = noise.smooth_noise(n, x_in, torch.Generator().manual_seed(0), shuffle=False)
    s = sigma_calls[0]
    assert s.shape == (n,) and (s >= 1.0).all() and (s <= 2.5).all()
    for img in out[: n // 2]:  # one pixel lit, its colour kept
        lit = (img.sum(0) > 0).nonzero()
        assert len(lit) == 1
        i, j = lit[0]
        assert torch.allclose(img[:, i, j], torch.tensor([0.9, 0.5, 0.1]))


# --------------------------------------------------------------------------- plug-ins


@pytest.fixture(scope="module")
def tiny_data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 28, 28, generator=g)
    y = torch.randint(0, K, (64,), generator=g)
    aux = torch.rand(64, 1, 28, 28, generator=g)
    return x, y, aux


@pytest.mark.parametrize(
    "name, hparams",
    [
        ("ceda", {}),
        ("ceda", {"variant": "uniform_ce", "lam": 0.5}),
        ("acet", {"steps": 2, "step_size": 0.1}),
        ("oe", {}),
    ],
)
def test_fit_runs_with_each_method(tiny_data, name, hparams):
    x, y, aux = tiny_data
    method = zoo.make_method(name, **hparams)
    assert method.name == name
    model = models.build("small_cnn", num_classes=K, seed=0, width=4)
    hist = train.fit(model, x, y, method, epochs=1, batch_size=32, x_out=aux if name == "oe" else None)
    assert hist.steps == 2
    for key in ("ce", "out", "loss", "mmc_out"):
        assert all(math.isfinite(v) for v in hist.logs[key])
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_ceda_out_batch_size_follows_lam():
    x_in = torch.rand(10, 1, 28, 28)
    for lam in (0.5, 1.0, 2.0):
        m = zoo.make_method("ceda", lam=lam)
        assert len(m.make_out(x_in, torch.Generator().manual_seed(0))) == math.ceil(lam * 10)


def test_acet_out_batch_within_eps_and_back_in_train_mode():
    model = models.build("small_cnn", num_classes=K, seed=0, width=4).train()
    m = zoo.make_method("acet", eps=0.2, steps=3, step_size=0.1)
    gen = torch.Generator().manual_seed(0)
    x_in = torch.rand(8, 1, 28, 28, generator=gen)
    z = m.make_out(x_in, gen)
    batch = train.Batch(x_in, torch.zeros(8, dtype=torch.long), z, 0, 1, gen)
    u = m.out_batch(model, batch)
    assert model.training
    assert (u - z).abs().max() <= 0.2 + 1e-6 and u.min() >= 0 and u.max() <= 1
    assert not torch.equal(u, z)
    with torch.no_grad():  # the attack increased the out-loss it is trained against
        assert acet.log_max_confidence_loss(model(u)) > acet.log_max_confidence_loss(model(z))
    loss, logs = m.loss(model, batch)
    assert model.training and loss.requires_grad and math.isfinite(logs["loss"])
    assert all(p.grad is None for p in model.parameters())  # the attack leaves no parameter grads


@pytest.mark.parametrize(
    "name, hparams, match",
    [
        ("ceda", {"lam": 0.0}, "lam"),
        ("ceda", {"variant": "kl"}, "variant"),
        ("acet", {"eps": -0.1}, "eps"),
        ("acet", {"steps": 0}, "steps"),
        ("acet", {"step_size": float("nan")}, "step_size"),
        ("oe", {"lam": -1}, "lam"),
        ("oe", {"eps": 0.3}, "hyper-parameter"),
    ],
)
def test_bad_hyperparameters_raise(name, hparams, match):
    with pytest.raises(ValueError, match=match):
        zoo.make_method(name, **hparams)


def test_oe_needs_an_auxiliary_pool(tiny_data):
    x, y, _ = tiny_data
    with pytest.raises(ValueError, match="x_out"):
        train.fit(models.build("small_cnn", width=4), x, y, zoo.make_method("oe"), batch_size=32)


def test_table1_beside_paper_lists_each_paper_row_with_ours(monkeypatch):
    import pandas as pd

    monkeypatch.setenv("OODLIB_PROFILE", "ci")
    rows = [{"model": "plain", "ood_set": "(in-distribution)", "metric": "MMC", "value": 0.95}]
    rows += [{"model": "plain", "ood_set": "MNIST", "metric": m, "value": v}
             for m, v in (("MMC", 0.7), ("AUROC", 0.6), ("FPR95", 0.9))]
    out = acet.table1_beside_paper(pd.DataFrame(rows), {"MNIST (in)": "(in-distribution)", "FMNIST": "MNIST"},
                                   {"plain": 0.091})
    ours = "MNIST (5 000-image subset)"  # the ci profile's MNIST is the offline subset, and says so
    assert out.loc[("FMNIST", ours, "plain"), "FPR95 paper"] == 0.121
    assert out.loc[("FMNIST", ours, "plain"), "AUROC ours"] == 0.6
    assert out.loc[("MNIST (in)", "(in-distribution)", "plain"), "MMC ours"] == 0.95
    assert out.loc[("MNIST (in)", "(in-distribution)", "plain"), "AUROC paper"] == "—"
    assert out.loc[("test error (%)", "Fashion-MNIST test", "plain"), "MMC ours"] == 9.1
    with pytest.raises(ValueError, match="long table"):
        acet.table1_beside_paper(pd.DataFrame({"x": [1]}), {}, {})
