"""The papers' own settings: each recipe value cited, each setting's model trainable at smoke size."""

from __future__ import annotations

import pytest

from oodlib import cli, datasets, models, paper_settings, synthetic_files, zoo, zoo_plan
from oodlib.profiles import CI, FULL, SMOKE, SMOKE_SIZES

SETTINGS = list(paper_settings.SETTINGS.values())


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.key)
def test_a_setting_names_what_exists_and_cites_every_value(setting):
    spec = datasets.IN_DISTRIBUTIONS[setting.dataset]
    assert setting.arch in models.ARCHITECTURES and set(setting.methods) <= set(zoo.PLUGINS)
    assert setting.chapter in zoo_plan.CHAPTERS and setting.dataset in datasets.IN_DISTRIBUTIONS
    leaves = FULL.leaves()
    for leaf, cited in setting.leaves.items():
        assert leaf in leaves, f"{setting.key}: {leaf} is no profile leaf"
        assert cited.cite.startswith(("not stated", "not in our copy", "the whole")) or any(
            mark in cited.cite for mark in ("§", "App.", "Hein et al.", "Meinke & Hein")), (leaf, cited.cite)
    p = setting.profile(FULL)
    assert all(p.leaves()[k] == c.value for k, c in setting.leaves.items())
    assert p.train.train_size == spec.sizes[0] and p.eval.test_size == spec.sizes[1]
    assert (setting.pool is None) == (set(setting.methods) <= {"plain", "ceda", "acet"})


def test_smoke_keeps_its_toy_sizes_and_ci_has_no_settings():
    odin = paper_settings.get("odin-cifar10-densenet")
    small = odin.profile(SMOKE)
    assert small.train.epochs == SMOKE_SIZES["train.epochs"] == 1 and small.train.batch_size == 32
    assert small.train.nesterov and small.train.hflip and small.train.lr_milestones == (0.5, 0.75)
    assert odin.profile(FULL).train.epochs == 300 and odin.profile(FULL).train.batch_size == 64
    with pytest.raises(ValueError, match="full or smoke"):
        odin.profile(CI)
    with pytest.raises(ValueError, match="paper setting"):
        paper_settings.get("odin-imagenet")
    assert [s.key for s in paper_settings.for_chapter("03")][:1] == ["odin-cifar10-densenet"]
    assert paper_settings.for_chapter("07") == [] and not paper_settings.for_chapter("00")
    table = paper_settings.table()
    assert len(table) == sum(len(s.leaves) for s in SETTINGS) and table.source.str.len().min() > 10


def test_every_setting_is_its_own_zoo_model_under_full():
    items = zoo_plan.setting_needs(FULL)
    assert len(items) == sum(len(s.methods) for s in SETTINGS)
    hashes = [n.hash for n in items]
    shared = sorted(n.name for n in items if hashes.count(n.hash) > 1)
    # recipe, data set and network all enter the hash; Hein et al.'s and CCU's plain LeNet on MNIST are
    # one model: the same recipe (Adam 1e-3, 100 epochs, weight decay 5e-4, batch 128, 2-px crops)
    assert shared == ["ccu-mnist: plain", "hein-mnist: plain"]
    book = {n.hash for n in zoo_plan.unique(zoo_plan.needs(FULL, resolve=False)) if n.hash}
    assert not book & set(hashes)
    with pytest.raises(ValueError, match="full or smoke"):
        zoo_plan.setting_needs(CI)


def test_zoo_trains_a_paper_setting_at_smoke_size(zoo_cache, tmp_path, monkeypatch, capsys):
    """MNIST with LeNet and Adam (Hein et al.), CIFAR-10 with DenseNet-BC-100, SGD with Nesterov
    momentum, crops and flips (ODIN): the settings' code paths on synthetic files in torchvision's formats."""
    synthetic_files.write(tmp_path / "data", n=8, n_train=16, extra=True)
    monkeypatch.setenv("OODLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(cli, "_profile", lambda name: SMOKE)
    assert cli.main(["zoo", "plan", "--profile", "smoke", "--settings", "--chapter", "03"]) == 0
    out = capsys.readouterr().out
    assert "odin-cifar100-wrn: plain" in out and "4 models for profile 'smoke'" in out
    for key in ("hein-mnist", "odin-cifar10-densenet"):
        need = next(n for n in zoo_plan.setting_needs(SMOKE) if n.name == f"{key}: plain")
        assert cli.main(["zoo", "train", "--profile", "smoke", "--settings", "--only", need.hash]) == 0
        assert need.cached
        config = need.load().record["config"]
        setting = paper_settings.get(key)
        assert (config["dataset"], config["arch"]) == (setting.dataset, setting.arch)
    capsys.readouterr()
