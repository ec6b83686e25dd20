from __future__ import annotations

import pytest
import torch

from oodlib import detectors, models, scores, zoo


def test_msp_is_max_softmax_and_in_unit_interval():
    m = models.build("mlp")
    x = torch.rand(7, 1, 28, 28)
    s = scores.msp(m, x, batch_size=3)
    expected = torch.softmax(m(x), 1).max(1).values
    assert s.shape == (7,)
    assert torch.allclose(s, expected, atol=1e-6)
    assert (s >= 0.1 - 1e-6).all() and (s <= 1).all()


@pytest.mark.parametrize(
    "bad",
    [torch.rand(28, 28), torch.rand(2, 1, 28, 28) * 255, torch.randint(0, 255, (2, 1, 28, 28)),
     torch.rand(0, 1, 28, 28)],
)
def test_msp_rejects_bad_images(bad):
    with pytest.raises(ValueError, match=r"expected x as a float tensor of shape \(N, C, H, W\)"):
        scores.msp(models.build("mlp"), bad)


def test_every_score_of_the_book_is_in_the_detector_registry():
    assert set(detectors.FACTORIES) == {"msp", "odin", "energy", "mahalanobis", "ccu", "good", "k1"}
    m = models.build("small_cnn", width=4, seed=0)
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.equal(detectors.make("msp", "MSP", m).score(x), scores.msp(m, x))
    assert torch.equal(detectors.make("energy", "E", m, temperature=2.0).score(x), scores.energy(m, x, 2.0))
    with pytest.raises(ValueError, match="unknown detector 'magic'"):
        detectors.make("magic", "x", m)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['eps'\] for detector 'msp'"):
        detectors.make("msp", "MSP", m, eps=0.1)
    # every zoo method has a detector
    assert set(detectors.ZOO_DETECTORS) == set(zoo.PLUGINS)
    assert set(detectors.ZOO_DETECTORS.values()) <= set(detectors.FACTORIES)
