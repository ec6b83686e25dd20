"""Training-time data augmentation of the papers' recipes, per image, on the batch's own device.

* Random crops with padding (Meinke & Hein 2020, App. C.1: 2 px on MNIST / Fashion-MNIST, 4 px on
  SVHN and CIFAR; SVHN's padding repeats the boundary value, CIFAR's reflects at the boundary;
  Bitterwolf et al. 2020, §4.1: 4 px on every set; Chen et al. 2021, App. B: 4 px on the auxiliary
  images; Hein et al. 2019, §5: random crops on every set).
* Random horizontal flips (CIFAR in CCU, Hein et al. and ATOM; never on digits).
* AutoAugment (Cubuk et al. 2019) for GOOD on SVHN and CIFAR-10 (Bitterwolf et al. 2020, §4.1), on
  the in- and the out-batches: torchvision's ``torchvision.transforms.v2.AutoAugment`` with
  the CIFAR-10 or SVHN policy.

Crops and flips are written here rather than taken from ``torchvision.transforms`` because a
torchvision transform draws *one* set of random parameters per call: applied to a batch it crops
every image at the same offset. :func:`random_crop` draws an offset per image and gathers all
crops in one indexing operation on the batch's device (no per-image Python loop, no DataLoader);
AutoAugment has no batched form, so it runs torchvision's per image. Every random choice comes
from the ``generator`` passed in (a CPU ``torch.Generator``), so a seed gives the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from .runtime import standard_layout
from .validation import check_choice, check_images, check_int, describe

PAD_MODES = {"constant": "constant", "edge": "replicate", "reflect": "reflect"}  #: ours -> torch's F.pad
POLICIES = {"cifar10": v2.AutoAugmentPolicy.CIFAR10, "svhn": v2.AutoAugmentPolicy.SVHN}  #: AutoAugment


@dataclass(frozen=True)
class Augmentation:
    """One recipe's augmentation: ``pad`` px random crops (``mode`` fills the padding), flips, AutoAugment.

    ``Augmentation()`` does nothing (the ``ci`` recipe: its 6-epoch runs do not need it).
    ``autoaugment`` names the policy (``"cifar10"`` or ``"svhn"``) or is ``None``.
    """

    pad: int = 0
    mode: str = "constant"
    hflip: bool = False
    autoaugment: str | None = None

    def __post_init__(self) -> None:
        check_int(self.pad, "pad", low=0)
        check_choice(self.mode, list(PAD_MODES), "mode")
        if not isinstance(self.hflip, bool):
            raise ValueError(f"expected hflip as a bool, got {describe(self.hflip)}")
        if self.autoaugment is not None:
            check_choice(self.autoaugment, list(POLICIES), "autoaugment")

    @property
    def active(self) -> bool:
        """Whether this augmentation changes anything."""
        return self.pad > 0 or self.hflip or self.autoaugment is not None

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The augmented batch (same shape, dtype and device as ``x``; images in [0, 1])."""
        if not self.active:
            return x
        check_images(x, "x")
        if self.autoaugment is not None:
            x = autoaugment(x, self.autoaugment, generator)
        if self.pad > 0:
            x = random_crop(x, self.pad, self.mode, generator)
        if self.hflip:
            x = random_hflip(x, generator)
        return x


def random_crop(x: torch.Tensor, pad: int, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Pad every image by ``pad`` px (``mode``: ``constant`` zeros, ``edge`` or ``reflect``) and crop it
    back to its size at an offset drawn per image, uniform in ``[0, 2 pad]²``."""
    check_images(x, "x")
    check_int(pad, "pad", low=0)
    check_choice(mode, list(PAD_MODES), "mode")
    if pad == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode=PAD_MODES[mode])
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (N, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (N, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return standard_layout(padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2))


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    check_images(x, "x")
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def autoaugment(x: torch.Tensor, policy: str, generator: torch.Generator) -> torch.Tensor:
    """torchvision's AutoAugment (``policy``: ``"cifar10"`` or ``"svhn"``) on each image.

    torchvision draws from the global RNG; it runs here under a forked RNG seeded from
    ``generator``, so the result depends on ``generator`` only.
    """
    check_images(x, "x")
    check_choice(policy, list(POLICIES), "policy")
    transform = v2.AutoAugment(POLICIES[policy])
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        as_bytes = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        out = torch.stack([transform(img) for img in as_bytes])
    return (out.to(torch.float32) / 255).to(device=x.device, dtype=x.dtype)
