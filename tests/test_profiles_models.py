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
        profiles.CI.seed = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        profiles.CI.train.epochs = 5  # type: ignore[misc]
    p = profiles.CI.replace(seed=1)
    assert p.seed == 1 and profiles.CI.seed == 0 and p.train is profiles.CI.train
    assert profiles.FULL.train.epochs == 100 and profiles.FULL.attack.pgd_train_steps == 40


def test_replace_merges_a_dict_into_its_group_or_takes_a_new_group():
    ci = profiles.CI
    p = ci.replace(train={"epochs": 3}, atom={"candidates": 100}, seed=2)
    assert p.train.epochs == 3 and p.train.lr == ci.train.lr and p.train.train_size == ci.train.train_size
    assert p.atom.candidates == 100 and p.atom.keep == ci.atom.keep and p.seed == 2
    assert ci.train.epochs == 6 and ci.atom.candidates == 24000  # the original is unchanged
    new_odin = profiles.OdinSettings(num_eps=2)
    assert ci.replace(odin=new_odin).odin is new_odin
    assert ci.replace(train={}) == ci
    assert ci.replace_leaves({"train.epochs": 3, "atom.candidates": 100, "seed": 2}) == p


@pytest.mark.parametrize(("changes", "message"), [
    ({"epochs": 3}, r"unknown profile field 'epochs' \(a field of train: .*expected one of \[.*'train'"),
    ({"odin_tune_size": 3}, r"unknown profile field 'odin_tune_size' \(a field of odin: "
                            r"replace\(odin=\{'tune_size': \.\.\.\}\)\); expected one of"),
    ({"nope": 3}, r"unknown profile field 'nope'; expected one of"),
    ({"train": {"epoch": 3}},
     r"unknown train field 'epoch'; expected one of \['augment_out', 'autoaugment', 'aux_size'"),
    ({"atom": {"atom_q": 0.5}}, r"unknown atom field 'atom_q'; expected one of"),
    ({"train": 3}, r"expected train as Training or a dict of some of its fields, got int"),
    ({"odin": profiles.CCUSettings()}, r"expected odin as OdinSettings or a dict .*got CCUSettings"),
])
def test_replace_names_what_it_expected(changes, message):
    with pytest.raises(ValueError, match=message):
        profiles.CI.replace(**changes)


def test_replace_leaves_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"unknown profile group 'training' in 'training.epochs'"):
        profiles.CI.replace_leaves({"training.epochs": 3})
    with pytest.raises(ValueError, match="unknown atom field 'nope'"):
        profiles.CI.replace_leaves({"atom.nope": 3})


def test_leaves_and_asdict():
    leaves = profiles.CI.leaves()
    assert leaves["train.epochs"] == 6 and leaves["atom.candidates"] == 24000 and leaves["seed"] == 0
    assert not any(isinstance(v, dict) or dataclasses.is_dataclass(v) for v in leaves.values())
    d = profiles.CI.asdict()
    assert d["train"]["epochs"] == 6 and d["odin"]["tune_size"] == 200 and d["name"] == "ci"
    assert set(d) == {f.name for f in dataclasses.fields(profiles.Profile)}
    assert set(profiles.GROUPS) <= set(d)
    # every leaf once: top-level fields plus each group's fields
    n_groups = sum(len(dataclasses.fields(cls)) for cls in profiles.GROUPS.values())
    assert len(leaves) == len(d) - len(profiles.GROUPS) + n_groups


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
    """A new ``full`` leaf cannot be forgotten: it is either shrunk or kept, by its dotted name."""
    leaves = set(profiles.FULL.leaves()) - {"name", "assert_claims"}
    assert "train.epochs" in leaves and "atom.candidates" in leaves and "train" not in leaves
    shrunk, kept = set(profiles.SMOKE_SIZES), set(profiles.SMOKE_KEEPS)
    assert not shrunk & kept, shrunk & kept
    assert leaves == shrunk | kept, leaves ^ (shrunk | kept)
    smoke, full = profiles.SMOKE.leaves(), profiles.FULL.leaves()
    assert smoke["name"] == "smoke" and not smoke["assert_claims"] and full["assert_claims"]
    for name in kept:
        assert smoke[name] == full[name], name
    for name in shrunk:  # every shrunk leaf is no larger than its paper value
        small, paper = smoke[name], full[name]
        assert small == profiles.SMOKE_SIZES[name], name
        assert (len(small) <= len(paper)) if isinstance(paper, tuple) else small <= paper, name
    # the code paths that differ from ci stay FULL's
    s = profiles.SMOKE
    assert s.model == "resnet18" and s.ibp_model == "good_l" and s.torchvision_sets
    assert s.attack.pgd_eval_restarts > 1 and s.ccu.attack_proj_rounds > 0 and s.atom.out_ratio == 2.0
    assert len(s.good.quantiles) > 1 and set(s.bench.good_quantiles) <= set(s.good.quantiles)
    assert s.atom.holdout < s.train.aux_size and s.atom.keep <= s.atom.candidates


def test_smoke_profile_by_name(monkeypatch):
    monkeypatch.setenv("OODLIB_PROFILE", "smoke")
    monkeypatch.delenv("OODLIB_SEED", raising=False)
    assert profiles.current() == profiles.SMOKE
