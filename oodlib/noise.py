"""Noise images: uniform (Hein et al. 2019 Table 1), Gaussian (Liang et al. 2018 §4.2) and the
smooth noise of Hein et al. 2019 (§5, App. F): permuted pixels or uniform noise, blurred with a
Gaussian of σ ~ U[1, 2.5] and min–max rescaled to [0, 1] (docs/design.md, pitfall 4).

Every generator takes a ``seed`` (or a ``torch.Generator``) and uses local random generators only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .runtime import torch_generator
from .validation import IMAGE_SHAPE, check_images, check_number, check_positive_int, check_shape, describe


def uniform_noise(n: int, seed: int = 0, shape: Sequence[int] = IMAGE_SHAPE) -> Tensor:
    """``n`` images with i.i.d. pixels ~ U[0, 1] (Hein et al. 2019 §5, Table 1)."""
    n = check_positive_int(n, "n")
    return torch.rand((n, *check_shape(shape)), generator=torch_generator(seed))


def gaussian_noise(
    n: int,
    seed: int = 0,
    shape: Sequence[int] = IMAGE_SHAPE,
    mean: float = 0.5,
    std: float = 1.0,
) -> Tensor:
    """``n`` images with i.i.d. pixels ~ N(mean, std²) clipped to [0, 1].

    The defaults are ODIN's "Gaussian noise" set (Liang et al. 2018 §4: mean 0.5,
    unit variance, clipped).
    """
    n = check_positive_int(n, "n")
    std = check_number(std, "std", low=0, low_open=True)
    mean = check_number(mean, "mean")
    x = torch.randn((n, *check_shape(shape)), generator=torch_generator(seed))
    return x.mul_(std).add_(mean).clamp_(0.0, 1.0)


def blur_and_rescale(x: Tensor, sigma: float | Tensor) -> Tensor:
    """Gaussian-blur each image with its own ``sigma``, then min–max rescale it to [0, 1].

    The low-pass filter and "global rescaling so that the maximal range of the image
    is again in [0, 1]" of Hein et al. 2019 (§5 and appendix). ``sigma`` is a float
    or one value per image (pixels); the kernel is truncated at 4σ and edges are
    replicated. A constant image becomes all zeros.
    """
    check_images(x, "x")
    n, c, h, w = x.shape
    sigma = torch.as_tensor(sigma, dtype=torch.float32).flatten()
    if sigma.numel() == 1:
        sigma = sigma.expand(n)
    if sigma.numel() != n or not bool(torch.all(sigma > 0)):
        raise ValueError(
            f"expected sigma as a positive float or {n} positive values, got {describe(sigma)}"
        )
    radius = math.ceil(4.0 * float(sigma.max()))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernels = torch.exp(-0.5 * (offsets[None, :] / sigma[:, None]) ** 2)
    kernels = (kernels / kernels.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)
    size = 2 * radius + 1
    y = x.float().reshape(1, n * c, h, w)  # one group per (image, channel)
    y = F.pad(y, (radius, radius, radius, radius), mode="replicate")
    y = F.conv2d(y, kernels.view(n * c, 1, 1, size), groups=n * c)
    y = F.conv2d(y, kernels.view(n * c, 1, size, 1), groups=n * c).reshape(n, c, h, w)
    low = y.amin(dim=(1, 2, 3), keepdim=True)
    span = y.amax(dim=(1, 2, 3), keepdim=True) - low
    # A constant image blurs to a constant only up to float32 rounding: each output sums 2 * size
    # products, so a range below that many ulps of the largest value is rounding, not structure
    # (rescaling it would blow the rounding up to a 0/1 pattern that differs between CPUs).
    tol = 2 * size * torch.finfo(y.dtype).eps * y.abs().amax(dim=(1, 2, 3), keepdim=True)
    flat = span <= tol
    return torch.where(flat, 0.0, (y - low) / torch.where(flat, 1.0, span)).clamp_(0.0, 1.0)


SIGMA_RANGE = (1.0, 2.5)  #: Hein et al. 2019, App. F: σ ~ U[1, 2.5] pixels


def smooth_noise(
    n: int, x_in: Tensor, seed: int | torch.Generator = 0,
    sigma_range: tuple[float, float] = SIGMA_RANGE, shuffle: bool = True,
) -> Tensor:
    """Hein et al. 2019's noise distribution (§5 "Training" and App. F), for training and testing.

    Half the images (``n // 2``) are in-distribution images from ``x_in`` (drawn with
    replacement) whose pixel positions are randomly permuted, channels kept
    together; the other half are uniform noise. Each image is then blurred with
    σ ~ U[``sigma_range``] and contrast-rescaled to [0, 1] (:func:`blur_and_rescale`,
    one grouped separable convolution for the whole batch). ``shuffle`` mixes the two
    halves (the test sets); CEDA/ACET's out-batches keep them in order. ``seed`` is an
    int or a CPU ``torch.Generator`` (the training loop passes its own). Output shape
    ``(n, *x_in.shape[1:])``, float32 on the CPU.
    """
    n = check_positive_int(n, "n")
    check_images(x_in, "x_in")
    low, high = sigma_range
    if not 0 < low <= high:
        raise ValueError(
            f"expected sigma_range as (low, high) with 0 < low <= high, got {sigma_range}"
        )
    rng = seed if isinstance(seed, torch.Generator) else torch_generator(seed)
    src = x_in.detach().cpu().float()
    _, c, h, w = src.shape
    n_perm = n // 2
    pick = torch.randint(len(src), (n_perm,), generator=rng)
    order = torch.argsort(torch.rand(n_perm, h * w, generator=rng), dim=1)  # one permutation per image
    pixels = src[pick].reshape(n_perm, c, h * w)
    permuted = pixels.gather(2, order[:, None, :].expand(-1, c, -1)).reshape(n_perm, c, h, w)
    uniform = torch.rand((n - n_perm, c, h, w), generator=rng)
    x = torch.cat([permuted, uniform])
    if shuffle:
        x = x[torch.randperm(n, generator=rng)]
    sigma = torch.empty(n).uniform_(low, high, generator=rng)
    return blur_and_rescale(x, sigma)
