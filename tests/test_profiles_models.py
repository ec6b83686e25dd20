from __future__ import annotations

import dataclasses

import pytest
import torch

from oodlib import models, profiles, runtime


def test_profiles_current_default(monkeypatch):
    monkeypatch.delenv("OODLIB_PROFILE", raising=False)
    monkeypatch.delenv("OODLIB_SEED", raising=False)
    assert profiles.current() == profiles.CI
    monkeypatch.setenv("OODLIB_PROFILE", "full")
    assert profiles.current() == profiles.FULL


def test_unknown_profile_names_choices(monkeypatch):
    monkeypatch.setenv("OODLIB_PROFILE", "huge")
    with pytest.raises(ValueError, match="ci"):
        profiles.current()
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.get("huge")


def test_profile_is_frozen_and_replace():
    with pytest.raises(AttributeError):
        profiles.CI.epochs = 5  # type: ignore[misc]
    p = profiles.CI.replace(epochs=5)
    assert p.epochs == 5 and profiles.CI.epochs != 5
    assert profiles.FULL.epochs == 100 and profiles.FULL.pgd_train_steps == 40


@pytest.mark.parametrize(
    ("name", "params"),
    [("small_cnn", (0.25e6, 0.4e6)), ("lenet", (3.2e6, 3.35e6)), ("good_l", (13e6, 13.5e6)),
     ("mlp", (0.26e6, 0.27e6))],
)
def test_architectures_shapes_and_sizes(name, params):
    m = models.build(name)
    n = models.num_parameters(m)
    assert params[0] <= n <= params[1], n
    out = m(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert not any(isinstance(layer, torch.nn.BatchNorm2d) for layer in m.modules())


def test_build_is_deterministic_and_k_plus_one():
    a, b = models.build("small_cnn", seed=3), models.build("small_cnn", seed=3)
    c = models.build("small_cnn", seed=4)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))
    assert models.build("small_cnn", num_classes=11)(torch.rand(2, 1, 28, 28)).shape == (2, 11)
    assert models.build("toy_mlp", num_classes=2)(torch.rand(5, 2)).shape == (5, 2)


def test_build_bad_names():
    with pytest.raises(ValueError, match="architecture"):
        models.build("resnet9000")
    with pytest.raises(ValueError, match="num_classes"):
        models.build("small_cnn", num_classes=0)


def test_seed_everything_repeatable():
    runtime.seed_everything(1)
    a = torch.rand(3)
    runtime.seed_everything(1)
    assert torch.equal(a, torch.rand(3))


def test_default_device_rejects_missing_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert runtime.default_device().type == "cpu"
    with pytest.raises(ValueError, match="CUDA"):
        runtime.default_device("cuda")


def test_accuracy_and_proba():
    m = models.build("mlp")
    x, y = torch.rand(10, 1, 28, 28), torch.randint(10, (10,))
    p = runtime.predict_proba(m, x, batch_size=3)
    assert p.shape == (10, 10) and torch.allclose(p.sum(1), torch.ones(10), atol=1e-5)
    assert 0.0 <= runtime.accuracy(m, x, y) <= 1.0
    with pytest.raises(ValueError):
        runtime.accuracy(m, x, y[:5])


def test_seed_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("OODLIB_PROFILE", raising=False)
    monkeypatch.setenv("OODLIB_SEED", "2")
    assert profiles.current().seed == 2 and profiles.get("full").seed == 2
    for bad in ("-1", "x", "1.5"):
        monkeypatch.setenv("OODLIB_SEED", bad)
        with pytest.raises(ValueError, match="OODLIB_SEED"):
            profiles.current()


def test_resnet18_for_28x28_grayscale():
    """CCU's Fashion-MNIST architecture: torchvision's ResNet-18 with a 3x3 stride-1 stem, no max-pool."""
    m = models.build("resnet18").eval()
    # torchvision's 11,689,512 minus the 1000-class head and the 7x7 RGB stem, plus a 10-class head
    # and a 3x3 grayscale stem: 11,689,512 - 513,000 - 9,408 + 5,130 + 576
    assert models.num_parameters(m) == 11_172_810
    assert m(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert m[:-1](torch.rand(2, 1, 28, 28)).shape == (2, 512)  # penultimate features
    assert models.build("resnet18", num_classes=11)(torch.rand(2, 1, 28, 28)).shape == (2, 11)
    assert any(isinstance(layer, torch.nn.BatchNorm2d) for layer in m.modules())
    assert not any(isinstance(layer, torch.nn.MaxPool2d) for layer in m.modules())


def test_smoke_is_full_with_every_field_listed_once():
    """A new ``full`` field cannot be forgotten: it is either shrunk or kept, by name."""
    fields = {f.name for f in dataclasses.fields(profiles.Profile)}
    shrunk, kept = set(profiles.SMOKE_SIZES), set(profiles.SMOKE_KEEPS)
    assert not shrunk & kept, shrunk & kept
    assert fields - {"name", "assert_claims"} == shrunk | kept
    smoke = profiles.SMOKE
    assert smoke.name == "smoke" and not smoke.assert_claims and profiles.FULL.assert_claims
    for name in kept:
        assert getattr(smoke, name) == getattr(profiles.FULL, name), name
    for name in shrunk:  # every shrunk field is no larger than its paper value
        small, paper = getattr(smoke, name), getattr(profiles.FULL, name)
        assert (len(small) <= len(paper)) if isinstance(paper, tuple) else small <= paper, name
    # the code paths that differ from ci stay FULL's
    assert smoke.model == "resnet18" and smoke.ibp_model == "good_l" and smoke.torchvision_sets
    assert smoke.pgd_eval_restarts > 1 and smoke.ccu_attack_proj_rounds > 0 and smoke.atom_out_ratio == 2.0
    assert len(smoke.good_quantiles) > 1 and set(smoke.bench_good_quantiles) <= set(smoke.good_quantiles)
    assert smoke.atom_holdout < smoke.aux_size and smoke.atom_keep <= smoke.atom_candidates


def test_smoke_profile_by_name(monkeypatch):
    monkeypatch.setenv("OODLIB_PROFILE", "smoke")
    monkeypatch.delenv("OODLIB_SEED", raising=False)
    assert profiles.current() == profiles.SMOKE
