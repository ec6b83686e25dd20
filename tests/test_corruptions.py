"""Tests for oodlib.corruptions: the 15 common corruptions × 5 severities and the worst case over them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from oodlib import corruptions as C
from oodlib import data, standins


@pytest.fixture(scope="module")
def gray() -> torch.Tensor:
    """16 Fashion-MNIST test images, 28×28 grayscale."""
    return data.load_fashion_mnist("test")[0][:16]


@pytest.fixture(scope="module")
def colour() -> torch.Tensor:
    """8 CIFAR-like 32×32 colour images: photo crops, tinted per channel."""
    x = F.interpolate(standins.photos_standin(8, seed=3), size=(32, 32), mode="bilinear", align_corners=False)
    tint = torch.tensor([1.0, 0.8, 0.6]).view(1, 3, 1, 1)
    return (x.repeat(1, 3, 1, 1) * tint).clamp(0, 1)


def _dist(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).flatten(1).norm(dim=1).mean().item()


def test_fifteen_corruptions_in_four_categories():
    assert len(C.NAMES) == 15 and len(set(C.NAMES)) == 15
    assert sorted(n for group in C.CATEGORIES.values() for n in group) == sorted(C.NAMES)
    assert all(len(C.SEVERITY[n]) == 5 for n in C.NAMES)


@pytest.mark.parametrize("name", C.NAMES)
def test_shape_range_and_change(name, gray, colour):
    for x in (gray, colour):
        for s in (1, 5):
            y = C.corrupt(x, name, s, seed=0)
            assert y.shape == x.shape and y.dtype == torch.float32
            assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
            assert _dist(y, x) > 1e-3, f"{name} severity {s} left the images unchanged"


@pytest.mark.parametrize("name", C.NAMES)
def test_severity_is_monotone_in_distance(name, gray, colour):
    for x in (gray, colour):
        d = [_dist(C.corrupt(x, name, s, seed=0), x) for s in C.SEVERITIES]
        assert all(b > a for a, b in zip(d, d[1:], strict=False)), f"{name}: distances {d}"


def test_seeded_and_deterministic(gray):
    a = C.corrupt(gray, "gaussian_noise", 3, seed=7)
    assert torch.equal(a, C.corrupt(gray, "gaussian_noise", 3, seed=7))
    assert not torch.equal(a, C.corrupt(gray, "gaussian_noise", 3, seed=8))
    assert torch.equal(C.corrupt(gray, "contrast", 2, seed=1), C.corrupt(gray, "contrast", 2, seed=2))


def test_known_values(gray):
    x = gray[:4]
    c = C.SEVERITY["contrast"][2]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(C.corrupt(x, "contrast", 3), ((x - mean) * c + mean).clamp(0, 1))
    assert torch.allclose(C.corrupt(x, "brightness", 1), (x + C.SEVERITY["brightness"][0]).clamp(0, 1))
    flat = torch.full((2, 3, 32, 32), 0.5)
    assert torch.allclose(C.corrupt(flat, "defocus_blur", 5), flat, atol=1e-6)  # blur keeps constants
    assert torch.allclose(C.corrupt(flat, "zoom_blur", 5), flat, atol=1e-6)


def test_colour_brightness_raises_value_and_keeps_hue(colour):
    hsv0 = C._rgb_to_hsv(colour)
    assert torch.allclose(C._hsv_to_rgb(hsv0), colour, atol=1e-5)
    hsv1 = C._rgb_to_hsv(C.corrupt(colour, "brightness", 2))
    assert bool((hsv1[:, 2] >= hsv0[:, 2] - 1e-6).all())
    ok = hsv0[:, 1] > 0.1
    assert torch.allclose(hsv1[:, 0][ok], hsv0[:, 0][ok], atol=0.02)


def test_corrupt_all_and_worst_case(gray):
    x = gray[:6]
    stack = C.corrupt_all(x, names=("contrast", "brightness", "gaussian_noise"), severities=(1, 3, 5))
    assert stack.images.shape == (9, *x.shape) and len(stack.labels) == 9

    def score(z: torch.Tensor) -> torch.Tensor:  # a black-box detector: brighter = "more in-distribution"
        return z.flatten(1).mean(1)

    worst = stack.worst(score)
    manual = torch.stack([score(stack.images[k]) for k in range(9)])
    assert torch.allclose(worst.scores.float(), manual.max(0).values)
    best = manual.argmax(0)
    for i in range(len(x)):
        assert torch.equal(worst.images[i], stack.images[best[i], i])
        assert worst.labels[i] == stack.labels[int(best[i])]
    assert sum(worst.counts().values()) == len(x)
    direct = C.worst_case(score, x, names=("contrast", "brightness", "gaussian_noise"), severities=(1, 3, 5))
    assert torch.equal(direct.images, worst.images)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: C.corrupt(x, "rain", 1), "corruption"),
        (lambda x: C.corrupt(x, "snow", 0), "severity"),
        (lambda x: C.corrupt(x, "snow", 6), "severity"),
        (lambda x: C.corrupt(x * 255, "snow", 1), r"\[0, 1\]"),
        (lambda x: C.corrupt(x[0], "snow", 1), "N, C, H, W"),
        (lambda x: C.corrupt(x.repeat(1, 2, 1, 1), "snow", 1), "1 or 3"),
        (lambda x: C.corrupt_all(x, severities=()), "at least one"),
    ],
)
def test_validation(call, match, gray):
    with pytest.raises(ValueError, match=match):
        call(gray[:2])
