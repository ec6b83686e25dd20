"""Per-image augmentation (oodlib.augment): crops with the papers' padding modes, flips, AutoAugment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from oodlib import augment
from oodlib.runtime import torch_generator


def test_every_crop_is_a_window_of_the_padded_image_at_its_own_offset():
    x = torch.rand(64, 3, 8, 8)
    out = augment.random_crop(x, 2, "reflect", torch_generator(0))
    assert out.shape == x.shape
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    offsets = []
    for i in range(len(x)):
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if torch.equal(out[i], padded[i, :, dy : dy + 8, dx : dx + 8])]
        assert hits, f"image {i} is not a crop of its padded image"
        offsets.append(hits[0])
    assert len(set(offsets)) > 5  # drawn per image, not once per batch


def test_a_grey_crop_is_nchw_and_a_resnet_trains_on_an_odd_batch_of_them():
    """A crop goes through a permute; for one channel its channels-last strides pass ``contiguous()``,
    and torch 2.14.1's CPU backward of ResNet-18's 8-channel stride-2 shortcut (``smoke``'s eighth
    width) then corrupts the heap at odd batch sizes (seed 2's class-subset model died so). In a
    subprocess, since the failure is a crash."""
    out = augment.random_crop(torch.rand(27, 1, 28, 28), 2, "constant", torch_generator(0))
    assert out.stride() == (784, 784, 28, 1)
    code = ("import torch\nfrom oodlib import augment, profiles, train, zoo\n"
            "g = torch.Generator().manual_seed(0)\n"
            "x, y = torch.rand(27, 1, 28, 28, generator=g), torch.randint(0, 10, (27,), generator=g)\n"
            "net = zoo.build_network('resnet18', 'fashion_mnist', 10, profiles.SMOKE)\n"
            "train.fit(net, x, y, epochs=1, batch_size=27, augment=augment.Augmentation(2))\n"
            "print('trained')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OODLIB_PROGRESS": "off"})
    assert run.returncode == 0 and "trained" in run.stdout, (run.returncode, run.stderr[-500:])


@pytest.mark.parametrize("mode, fill", [("constant", 0.0), ("edge", 1.0), ("reflect", 1.0)])
def test_padding_modes_fill_as_the_papers_say(mode, fill):
    # CCU App. C.1: SVHN repeats the boundary value ("edge"), CIFAR reflects; MNIST pads with zeros
    x = torch.ones(200, 1, 6, 6)
    out = augment.random_crop(x, 3, mode, torch_generator(1))
    assert set(out.unique().tolist()) == ({0.0, 1.0} if fill == 0.0 else {1.0})


def test_crops_are_reproducible_and_change_with_the_seed():
    x = torch.rand(16, 1, 28, 28)
    a, b = (augment.random_crop(x, 2, "constant", torch_generator(3)) for _ in range(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, augment.random_crop(x, 2, "constant", torch_generator(4)))


def test_flips_mirror_about_half_the_images():
    x = torch.rand(400, 1, 5, 5)
    out = augment.random_hflip(x, torch_generator(0))
    flipped = [torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 150 < sum(flipped) < 250


def test_autoaugment_keeps_shape_range_and_is_seeded():
    x = torch.rand(6, 3, 32, 32)
    a = augment.autoaugment(x, "cifar10", torch_generator(0))
    b = augment.autoaugment(x, "cifar10", torch_generator(0))
    assert a.shape == x.shape and a.dtype == x.dtype and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert augment.autoaugment(x, "svhn", torch_generator(0)).shape == x.shape


def test_augmentation_recipe_and_its_errors():
    x = torch.rand(4, 3, 32, 32)
    assert augment.Augmentation()(x, torch_generator(0)) is x  # the ci recipe: nothing
    cifar = augment.Augmentation(pad=4, mode="reflect", hflip=True)
    assert cifar.active and cifar(x, torch_generator(0)).shape == x.shape
    with pytest.raises(ValueError, match="mode"):
        augment.Augmentation(pad=2, mode="wrap")
    with pytest.raises(ValueError, match="pad"):
        augment.Augmentation(pad=-1)
    with pytest.raises(ValueError, match="autoaugment"):
        augment.Augmentation(autoaugment="imagenet-ish")
    with pytest.raises(ValueError, match="hflip"):
        augment.Augmentation(hflip=1)
