"""The papers' settings evaluated (oodlib.reproduction) and their auxiliary pool (datasets.load_pool)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oodlib import (
    beside,
    chapter,
    datasets,
    paper_settings,
    provenance,
    reproduction,
    synthetic_files,
    zoo,
    zoo_plan,
)
from oodlib.datasets import COLOUR32, GREY28
from oodlib.profiles import CI, SMOKE


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    synthetic_files.write(root, n=12, n_train=16, extra=True)
    monkeypatch.setenv("OODLIB_DATA", str(root))
    return root


def test_the_pool_of_a_paper_setting_is_read_from_files_at_the_models_shape(data_root):
    colour = paper_settings.get("atom-cifar10").profile(SMOKE).replace(train={"aux_size": 10})
    x = zoo.training_pool("cifar10", colour)
    assert x.shape == (10, *COLOUR32) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(x, zoo.training_pool("cifar10", colour))  # seeded
    grey = paper_settings.get("good-mnist").profile(SMOKE).replace(train={"aux_size": 10})
    assert zoo.training_pool("mnist", grey).shape == (10, *GREY28)  # converted as the papers convert
    with pytest.raises(ValueError, match="stand-in pool is built for the Fashion-MNIST"):
        zoo.training_pool("cifar10", SMOKE)
    with pytest.raises(FileNotFoundError, match="aux_pool/ not found"):
        zoo.training_pool("cifar10", colour.replace(train={"pool": "folder"}))
    with pytest.raises(ValueError, match="train.pool"):
        zoo.training_pool("cifar10", colour.replace(train={"pool": "tiny_images"}))
    assert zoo.training_pool("fashion_mnist", CI.replace(train={"aux_size": 5})).shape == (5, *GREY28)


def test_a_folder_pool_reads_any_images_and_names_a_corrupt_one(data_root):
    folder = data_root / datasets.POOL_FOLDER / "class_a"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}.png").write_bytes((data_root / "iSUN" / "iSUN_patches" / f"{i:05d}.png").read_bytes())
    x = datasets.load_pool("folder", 3, seed=0, shape=COLOUR32)
    assert x.shape == (3, *COLOUR32)
    (folder / "1.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="1.png is corrupt"):
        datasets.load_pool("folder", 3, seed=0, shape=COLOUR32)
    with pytest.raises(ValueError, match="expected n <= 3"):
        datasets.load_pool("folder", 4, seed=0, shape=COLOUR32)


def test_the_pool_enters_the_hash_only_where_it_is_not_cis():
    ci_config = zoo.make_config("oe", "fashion_mnist", CI)
    assert "pool" not in ci_config["train"]  # ci's hashes are those of before the pool existed
    assert "width_scale" not in ci_config["train"]  # nor smoke's narrow networks (the published width, 1)
    setting = paper_settings.get("atom-cifar10").profile(SMOKE)
    assert zoo.make_config("oe", "cifar10", setting)["train"]["pool"] == "random_300k"
    assert zoo.make_config("oe", "cifar10", setting)["train"]["width_scale"] == SMOKE.train.width_scale < 1
    assert zoo.make_config("atom", "cifar100", setting)["hparams"]["num_classes"] == 101  # the (K+1) head
    assert zoo.make_config("atom", "fashion_mnist", CI)["hparams"]["num_classes"] == 11


def test_near_duplicates_find_a_copy_in_a_real_kind_of_pool(data_root):
    pool = datasets.load_random_300k(12, seed=0)
    test = {"copy": pool[:4].clone(), "other": datasets.load_archive("iSUN", 4, seed=0)}
    table = provenance.near_duplicates(test, pool, sample=4)
    near = table.columns[-1]
    assert table.loc["copy", near] == 4 and table.loc["copy", "min RMS distance to pool"] == 0.0
    assert table.loc["other", near] == 0


def test_plan_lists_what_full_runs_and_ci_shows():
    table = reproduction.plan("03")
    assert list(table.index) == [s.key for s in paper_settings.for_chapter("03")]
    assert "TinyImageNet (crop)" in table.loc["odin-cifar10-densenet", "OOD test sets"]
    assert reproduction.plan("06").loc["atom-svhn", "pool"] == "random_300k"
    assert reproduction.plan("01").loc["hein-mnist", "pool"] == "none (noise only)"
    with pytest.raises(ValueError, match="paper settings"):
        reproduction.plan("07")


def test_a_settings_data_reads_what_exists_and_says_why_not_the_rest(data_root):
    data = reproduction.load_data(paper_settings.get("hein-svhn"), SMOKE)
    shape = datasets.IN_DISTRIBUTIONS["svhn"].shape
    assert data.x_test.shape[1:] == shape and set(data.ood) == {"CIFAR-10", "CIFAR-100", "smooth noise"}
    assert all(x.shape[1:] == shape and len(x) <= data.profile.eval.ood_size for x in data.ood.values())
    assert set(data.skipped) == {"LSUN classroom", "ImageNet-"}
    assert "no reader" in reproduction.skipped(data).loc["ImageNet-", "not evaluated because"]


def test_every_settings_table_on_tiny_models(data_root, zoo_cache, monkeypatch):
    """The chapter tables of one MNIST setting per kind, on models trained here at smoke size."""
    monkeypatch.setenv("OODLIB_ZOO_TRAIN", "cells")
    monkeypatch.setitem(paper_settings.SETTING_SMOKE_SIZES, "train.aux_size", 12)  # the 300K file holds 12
    for key in ("hein-mnist", "good-mnist"):
        setting = paper_settings.get(key)
        data = reproduction.load_data(setting, SMOKE)
        entries = reproduction.load_models(setting, SMOKE)
        assert list(entries) == [reproduction.METHOD_NAMES[m] for m in setting.methods]
        table = reproduction.detection_table(data, entries, "02" if key == "hein-mnist" else None)
        assert set(table.index.get_level_values("method")) == set(entries)
        ours = table["AUROC ours"].astype(float)
        assert ((0 <= ours) & (ours <= 100)).all()
        if key == "good-mnist":  # Table 1 beside ours: GOOD's AUC, AAUC and GAUC
            assert table.loc[("plain", "apgd (AAUC)", "Fashion-MNIST"), "AUROC paper"] == 34.2
            certified = table.xs("certified (GAUC)", level="threat")["AUROC ours"].astype(float)
            clean = table.xs("natural (AUC)", level="threat")["AUROC ours"].astype(float)
            assert len(certified) == len(clean)  # every model certified by IBP, as in GOOD's Table 1
            assert (certified <= clean.loc[certified.index] + 1e-9).all()  # a bound never beats clean AUC
            audit = reproduction.pool_audit(data, sample=3)  # the pool GOOD's OE and GOOD models trained on
            assert list(audit.index) == ["MNIST test (in-distribution)", *data.ood]
            assert set(audit["pool"]) == {"random_300k, 12 images"} and (audit["sampled"] == 3).all()
            assert (audit["min RMS distance to pool"] >= 0).all()
        else:
            cost = reproduction.training_time(data, entries)  # Hein et al. state no training time
            assert list(cost.index) == list(entries) and set(cost["training (h) paper"]) == {beside.MISSING}
            assert (cost["training (h) ours"].astype(float) >= 0).all() and set(cost["trained on"]) == {"cpu"}
            alpha = reproduction.alpha_table(data, entries)
            assert alpha.loc["plain", "median α (99.9 %) paper"] == "1.5"
            assert table.loc[("plain", "natural", "EMNIST letters"), "FPR95 paper"] == pytest.approx(37.4)
            assert table.loc[("ACET", "natural", "smooth noise"), "AUROC paper"] == pytest.approx(100.0)
    assert not any(n.cached for n in zoo_plan.setting_needs(SMOKE, ["03"]))
    assert beside.MISSING in set(table["FPR95 paper"])
    assert np.isfinite(table["FPR95 ours"].astype(float)).all()


def test_a_cold_zoo_stops_a_chapter_at_setup_naming_its_settings_models(zoo_cache, monkeypatch):
    monkeypatch.setenv("OODLIB_PROFILE", "smoke")
    monkeypatch.setenv("OODLIB_ZOO_TRAIN", "never")
    with pytest.raises(zoo.MissingModelError, match=r"cifar10-densenet: plain .*--settings --chapter 03"):
        chapter.setup("03")
    with pytest.raises(zoo.MissingModelError, match=r"hein-mnist: ceda .*--settings --chapter 01'"):
        chapter.setup("02")  # chapter 02 reads chapter 01's settings


def test_training_time_sets_atoms_models_beside_its_table3(tmp_path):
    """Chen et al. 2021 is the one paper that states GPU hours (App. B.2, Table 3); NTOM has no row."""
    setting = paper_settings.get("atom-cifar10")
    data = reproduction.SettingData(setting, SMOKE, torch.zeros(0), torch.zeros(0), {}, {})
    entries = {name: zoo.Entry(torch.nn.Identity(), {"device": "cuda:0", "train_time_s": 7200.0 * (i + 1)},
                               tmp_path / f"{name}.pt")
               for i, name in enumerate(reproduction.METHOD_NAMES[m] for m in setting.methods)}
    cost = reproduction.training_time(data, entries)
    assert list(cost["training (h) paper"]) == [2.5, 5.0, beside.MISSING, 21.0]  # plain, OE, NTOM, ATOM
    assert list(cost["training (h) ours"]) == [2.0, 4.0, 6.0, 8.0]
    assert set(cost["trained on"]) == {"cuda:0"}
