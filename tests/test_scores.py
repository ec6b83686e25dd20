from __future__ import annotations

import pytest
import torch

from oodlib import models, scores


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


def test_score_registry():
    assert scores.get("msp") is scores.msp
    with pytest.raises(ValueError, match="unknown score"):
        scores.get("magic")
