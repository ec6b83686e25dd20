"""Datasets as a registry: in-distribution data, OOD test sets, the auxiliary pool.

Everything lives in memory as float32 tensors in [0, 1] of shape ``(N, 1, 28, 28)``
(no DataLoader: DESIGN.md measured 9.7 s per epoch for one, 0.08 s for tensor indexing).

Offline first (DESIGN.md, "Data on machines without internet"):

* **In-distribution**: Fashion-MNIST, read by torchvision from the idx files that
  Debian's ``dataset-fashion-mnist`` installs (:func:`load_fashion_mnist`).
* **OOD test sets** needing no download: uniform noise, Gaussian noise (ODIN), smooth
  noise (Hein et al. 2019) and three *stand-ins* built from files that ship inside
  installed packages: handwritten digits from scikit-learn (for MNIST), letters
  rendered from matplotlib's fonts (for EMNIST-letters / notMNIST) and grayscale crops
  of photographs from scikit-image / scikit-learn (for grayscale CIFAR-10 / LSUN).
  Every stand-in says what it stands in for (:attr:`OODSet.stand_in_for`), so tables
  can label it as such.
* **Auxiliary out-distribution pool** for training (OE, ACET, CCU, GOOD, ATOM), a
  substitute for the withdrawn 80M Tiny Images: :func:`aux_pool`, drawn from sources
  disjoint from every test set.
* In the ``full`` profile, torchvision's MNIST, EMNIST-letters, CIFAR-10/100 and SVHN
  test sets join the registry (grayscale, 28×28). They are downloaded only when
  allowed (``OODLIB_DOWNLOAD=1`` or ``download=True``); otherwise a missing dataset
  raises ``FileNotFoundError`` naming the fix.

Environment variables: ``OODLIB_DATA`` (data root, default ``~/.cache/oodlib/data``)
and ``OODLIB_DOWNLOAD`` (``1`` allows downloads). All generators take a ``seed`` and use
local random generators only, so the same seed gives the same images.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import shutil
import string
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .profiles import Profile
from .validation import check_choice, check_images, check_positive_int, describe

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from PIL import Image as PILImage

__all__ = [
    "AUX_SYMBOLS",
    "DATASETS",
    "DEBIAN_FMNIST",
    "FASHION_CLASSES",
    "IMAGE_SHAPE",
    "LETTERS",
    "OODSet",
    "OODSpec",
    "PHOTO_AUX_SOURCES",
    "PHOTO_TEST_SOURCES",
    "aux_pool",
    "aux_pool_for",
    "blur_and_rescale",
    "clear_cache",
    "data_root",
    "derive_seed",
    "digits_standin",
    "download_allowed",
    "gaussian_noise",
    "get_ood_set",
    "in_distribution",
    "letter_fonts",
    "letters_standin",
    "load_fashion_mnist",
    "ood_sets",
    "photos_standin",
    "plot_samples",
    "smooth_noise",
    "uniform_noise",
]

DATA_ENV = "OODLIB_DATA"
DOWNLOAD_ENV = "OODLIB_DOWNLOAD"
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SHAPE: tuple[int, int, int] = (1, 28, 28)
_SIDE = 28

# ITU-R BT.601 luma, the weights torchvision's Grayscale transform uses.
_LUMA = (0.299, 0.587, 0.114)


# ---------------------------------------------------------------------------
# Paths, seeds, small checks
# ---------------------------------------------------------------------------


def data_root() -> Path:
    """The data root: ``$OODLIB_DATA`` if set, else ``~/.cache/oodlib/data``."""
    env = os.environ.get(DATA_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "oodlib" / "data"


def download_allowed(download: bool | None = None) -> bool:
    """Whether downloads are allowed: ``download`` if given, else ``$OODLIB_DOWNLOAD``."""
    if download is not None:
        return bool(download)
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def derive_seed(base: int, name: str) -> int:
    """A seed for the data set called ``name``, derived from a profile's ``base`` seed.

    Different names give unrelated seeds, so no two sets (nor the auxiliary pool)
    share a random stream.
    """
    base = _check_seed(base)
    sequence = np.random.SeedSequence([base, zlib.crc32(name.encode("utf-8"))])
    return int(sequence.generate_state(1)[0])


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"expected seed as a non-negative integer, got {seed!r}")
    return int(seed)


def _check_shape(shape: object) -> tuple[int, int, int]:
    expected = f"expected shape as (C, H, W) with positive ints, got {shape!r}"
    if not isinstance(shape, Sequence) or len(shape) != 3:
        raise ValueError(expected)
    if any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s <= 0 for s in shape):
        raise ValueError(expected)
    c, h, w = (int(s) for s in shape)
    return c, h, w


def _torch_rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(_check_seed(seed))


def _numpy_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(_check_seed(seed))


def clear_cache() -> None:
    """Forget every in-process cache (loaded datasets, photo sources, fonts, glyphs)."""
    for cached in (
        _fashion_mnist_tensors,
        _digit_images,
        _photo_pyramid,
        _font_cmap,
        _pil_font,
        letter_fonts,
        _symbol_items,
        _render_glyph,
    ):
        cached.cache_clear()


# ---------------------------------------------------------------------------
# Fashion-MNIST (the in-distribution)
# ---------------------------------------------------------------------------

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def load_fashion_mnist(
    split: str = "train", root: str | Path | None = None, download: bool | None = None
) -> tuple[Tensor, Tensor]:
    """Fashion-MNIST images ``(N, 1, 28, 28)`` float32 in [0, 1] and labels int64 (0–9).

    The idx files are looked up in this order:

    1. ``ROOT/FashionMNIST/raw/`` (uncompressed, the layout torchvision reads);
    2. Debian's gzipped copies in :data:`DEBIAN_FMNIST` (``apt-get install
       dataset-fashion-mnist``), unpacked into 1. They carry other md5 sums than
       torchvision records, so torchvision is never asked to download over them;
    3. a torchvision download into 1, only if ``download=True`` or ``OODLIB_DOWNLOAD=1``.

    ``root`` defaults to :func:`data_root`. Tensors are cached in-process; each call
    returns fresh copies, so callers may modify them.
    """
    check_choice(split, list(_FMNIST_FILES), "Fashion-MNIST split")
    root = Path(root).expanduser() if root is not None else data_root()
    x, y = _fashion_mnist(root, split, download)
    return x.clone(), y.clone()


def _fashion_mnist(root: Path, split: str, download: bool | None) -> tuple[Tensor, Tensor]:
    """The cached (shared, do not modify) tensors behind :func:`load_fashion_mnist`."""
    _ensure_fashion_mnist_raw(root, download_allowed(download))
    return _fashion_mnist_tensors(str(root.resolve()), split)


def _ensure_fashion_mnist_raw(root: Path, allow_download: bool) -> None:
    raw = root / "FashionMNIST" / "raw"
    names = [name for pair in _FMNIST_FILES.values() for name in pair]
    if all((raw / name).is_file() for name in names):
        return
    debian = DEBIAN_FMNIST  # read at call time, so tests can point it elsewhere
    if all((debian / f"{name}.gz").is_file() for name in names):
        raw.mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (raw / name).is_file():
                _gunzip(debian / f"{name}.gz", raw / name)
        return
    if allow_download:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=True, download=True)  # fetches both splits
        return
    raise FileNotFoundError(
        f"Fashion-MNIST not found: expected the idx files in {raw} or Debian's gzipped "
        f"copies in {debian}. Fix it with `sudo apt-get install dataset-fashion-mnist` "
        f"(offline), or allow torchvision to download it (needs internet) with "
        f"`export {DOWNLOAD_ENV}=1` or load_fashion_mnist(..., download=True)."
    )


def _gunzip(source: Path, target: Path) -> None:
    """Unpack ``source`` to ``target`` atomically (safe if two processes race)."""
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    with gzip.open(source, "rb") as fin, open(partial, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    os.replace(partial, target)


@functools.lru_cache(maxsize=4)
def _fashion_mnist_tensors(root: str, split: str) -> tuple[Tensor, Tensor]:
    from torchvision.datasets import FashionMNIST

    dataset = FashionMNIST(root, train=split == "train", download=False)
    x = dataset.data.unsqueeze(1).float().div_(255.0)
    return x, dataset.targets.long()


def in_distribution(profile: Profile) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_test, y_test)`` of Fashion-MNIST sized by ``profile``.

    The training set is a seeded random subset of ``profile.train_size`` images (kept
    in the original order); the test set is the first ``profile.test_size`` images.
    """
    x_train, y_train = _fashion_mnist(data_root(), "train", None)
    x_test, y_test = _fashion_mnist(data_root(), "test", None)
    n_train = check_positive_int(profile.train_size, "profile.train_size")
    n_test = check_positive_int(profile.test_size, "profile.test_size")
    if n_train > len(x_train) or n_test > len(x_test):
        raise ValueError(
            f"expected profile.train_size <= {len(x_train)} and profile.test_size <= "
            f"{len(x_test)}, got {n_train} and {n_test}"
        )
    if n_train < len(x_train):
        rng = _torch_rng(derive_seed(profile.seed, "fashion-mnist train subset"))
        keep = torch.randperm(len(x_train), generator=rng)[:n_train].sort().values
        x_train, y_train = x_train[keep], y_train[keep]
    else:
        x_train, y_train = x_train.clone(), y_train.clone()
    return x_train, y_train, x_test[:n_test].clone(), y_test[:n_test].clone()


# ---------------------------------------------------------------------------
# Noise (ODIN; Hein et al. 2019)
# ---------------------------------------------------------------------------


def uniform_noise(n: int, seed: int = 0, shape: Sequence[int] = IMAGE_SHAPE) -> Tensor:
    """``n`` images with i.i.d. pixels ~ U[0, 1] (Hein et al. 2019 §5, Table 1)."""
    n = check_positive_int(n, "n")
    return torch.rand((n, *_check_shape(shape)), generator=_torch_rng(seed))


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
    if not std > 0:
        raise ValueError(f"expected std > 0, got {std!r}")
    x = torch.randn((n, *_check_shape(shape)), generator=_torch_rng(seed))
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
    return ((y - low) / span.clamp_min(1e-12)).clamp_(0.0, 1.0)


def smooth_noise(
    n: int, x_in: Tensor, seed: int = 0, sigma_range: tuple[float, float] = (1.0, 2.5)
) -> Tensor:
    """Hein et al. 2019's noise distribution (§5 "Training" and appendix).

    Half the images (``n // 2``) are in-distribution images from ``x_in`` (drawn with
    replacement) whose pixel positions are randomly permuted, channels kept
    together; the other half are uniform noise. Each image is then blurred with
    σ ~ U[``sigma_range``] and contrast-rescaled to [0, 1] (:func:`blur_and_rescale`).
    The two halves are shuffled together. Output shape ``(n, *x_in.shape[1:])``.
    """
    n = check_positive_int(n, "n")
    check_images(x_in, "x_in")
    low, high = sigma_range
    if not 0 < low <= high:
        raise ValueError(
            f"expected sigma_range as (low, high) with 0 < low <= high, got {sigma_range}"
        )
    rng = _torch_rng(seed)
    _, c, h, w = x_in.shape
    n_perm = n // 2
    pick = torch.randint(len(x_in), (n_perm,), generator=rng)
    order = torch.argsort(torch.rand(n_perm, h * w, generator=rng), dim=1)
    pixels = x_in[pick].float().reshape(n_perm, c, h * w)
    permuted = pixels.gather(2, order[:, None, :].expand(-1, c, -1)).reshape(n_perm, c, h, w)
    uniform = torch.rand((n - n_perm, c, h, w), generator=rng)
    x = torch.cat([permuted, uniform])[torch.randperm(n, generator=rng)]
    sigma = torch.empty(n).uniform_(low, high, generator=rng)
    return blur_and_rescale(x, sigma)


# ---------------------------------------------------------------------------
# Handwritten digits: the MNIST stand-in
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digit_images() -> tuple[Tensor, Tensor]:
    """scikit-learn's 1797 8×8 digits (0..16), MNIST-style: 20×20 box centred in 28×28."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32).div_(16.0).unsqueeze(1)
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False).clamp_(0, 1)
    return F.pad(x, (4, 4, 4, 4)), torch.as_tensor(digits.target, dtype=torch.int64)


def digits_standin(
    n: int, seed: int = 0, max_shift: int = 2, return_labels: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """``n`` real handwritten digits from scikit-learn, upsampled to 28×28 (MNIST stand-in).

    Source: ``sklearn.datasets.load_digits`` (1797 images of 8×8, values 0..16, from
    the UCI optical digits set), bilinearly upsampled to 20×20 and padded by 4 pixels,
    as MNIST centres its digits in a 20×20 box, then scaled to [0, 1] and shifted by up
    to ``max_shift`` pixels. For ``n <= 1797`` every digit appears at most once; for
    larger ``n`` images repeat (each at most ``ceil(n / 1797)`` times, with fresh
    shifts). With ``return_labels`` also returns the digit labels (int64).
    """
    n = check_positive_int(n, "n")
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or not 0 <= max_shift <= 4:
        raise ValueError(f"expected max_shift as an int in [0, 4], got {max_shift!r}")
    base, labels = _digit_images()
    rng = _numpy_rng(seed)
    rounds = math.ceil(n / len(base))
    pick = torch.as_tensor(np.concatenate([rng.permutation(len(base)) for _ in range(rounds)])[:n])
    x = base[pick]
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    for dy, dx in np.unique(shifts, axis=0):
        rows = torch.as_tensor(np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx)))
        x[rows] = torch.roll(x[rows], shifts=(int(dy), int(dx)), dims=(2, 3))
    return (x, labels[pick]) if return_labels else x


# ---------------------------------------------------------------------------
# Glyphs from matplotlib's fonts: the letters stand-in (and aux-pool symbols)
# ---------------------------------------------------------------------------

LETTERS = string.ascii_uppercase

# Non-letter, non-digit symbols for the auxiliary pool. Symbols that look like a
# Latin letter (e.g. ∀ ∃ ∩ ⊂ × ○) are left out so the pool stays clear of the letters set.
AUX_SYMBOLS = "#$%&@?*+=<>{}[]~^∑∏∫√∞≈≠≤≥±÷←→↑↓↔⇒⇔∂∈⊕⊗★☆♠♣♥♦♪♫☺☼■□▲△●◆◇"

_GLYPH_SIZE = 64  # render size in points/pixels before shrinking to 28×28
_STROKES = (0, 2, 4)  # extra stroke width at render size (thickens the glyph)


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.cache
def _font_cmap(path: str) -> dict[int, str]:
    from fontTools.ttLib import TTFont

    return dict(TTFont(path, lazy=True).getBestCmap() or {})


def _has_standard_glyph(path: str, char: str) -> bool:
    """Whether the font maps ``char`` to the glyph of that name (not a re-encoded symbol).

    TeX fonts such as cmex10 map ASCII code points to delimiters; their glyph names
    give them away.
    """
    from fontTools.agl import UV2AGL

    code = ord(char)
    names = {f"uni{code:04X}", f"u{code:05X}", UV2AGL.get(code)}
    return _font_cmap(path).get(code) in names


@functools.cache
def _pil_font(path: str, size: int = _GLYPH_SIZE) -> Any:
    from PIL import ImageFont

    return ImageFont.truetype(path, size)


@functools.cache
def _render_glyph(path: str, char: str, stroke: int = 0) -> PILImage.Image:
    """``char`` in white on black, cropped to its bounding box (8-bit PIL image)."""
    from PIL import Image, ImageDraw

    font = _pil_font(path)
    left, top, right, bottom = font.getbbox(char, stroke_width=stroke)
    image = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(image).text(
        (-left, -top), char, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    return image


@functools.lru_cache(maxsize=1)
def letter_fonts() -> tuple[str, ...]:
    """Paths of the matplotlib TTF fonts that render the 26 letters A–Z.

    A font qualifies if its character map sends every letter to the glyph named for
    it (this rules out cmex10's delimiters and the Display / STIX size fonts, which
    lack letters) and the 26 rendered glyphs are non-empty and pairwise different
    (this rules out LastResortHE, which draws one placeholder box for every letter).
    With matplotlib 3.11 this finds 23 fonts: the DejaVu Sans / Serif / Sans Mono
    families, STIXGeneral (4 styles) and cmr10, cmb10, cmss10, cmti10, cmtt10, cmmi10
    and cmsy10 (calligraphic capitals).
    """
    found = []
    for path in sorted(str(p) for p in _font_dir().glob("*.ttf")):
        bitmaps = [_render_glyph(path, ch) for ch in LETTERS]
        if any(b.getbbox() is None for b in bitmaps):  # cheap test first
            continue
        distinct = len({(b.size, b.tobytes()) for b in bitmaps}) == len(LETTERS)
        if distinct and all(_has_standard_glyph(path, ch) for ch in LETTERS):
            found.append(path)
    return tuple(found)


@functools.lru_cache(maxsize=1)
def _symbol_items() -> tuple[tuple[str, str], ...]:
    """(symbol, font path) pairs: the :data:`AUX_SYMBOLS` each text font draws.

    The text fonts are those of :func:`letter_fonts`; a pair counts if the font maps
    the symbol to its standard glyph and that glyph is not empty.
    """
    return tuple(
        (ch, path)
        for ch in AUX_SYMBOLS
        for path in letter_fonts()
        if _has_standard_glyph(path, ch) and _render_glyph(path, ch).getbbox() is not None
    )


def _compose_glyphs(
    glyphs: Sequence[tuple[str, str]],
    rng: np.random.Generator,
    size_range: tuple[float, float] = (14.0, 24.0),
    max_angle: float = 12.0,
) -> Tensor:
    """Place each (char, font) glyph on a black 28×28 canvas.

    Each glyph gets a random stroke width, rotation (±``max_angle`` degrees), size (its
    longer side, in pixels) and position; it is shrunk with PIL's antialiased bilinear
    resize and its peak brightness set to 1.
    """
    from PIL import Image

    out = np.zeros((len(glyphs), _SIDE, _SIDE), dtype=np.float32)
    strokes = rng.integers(len(_STROKES), size=len(glyphs))
    angles = rng.uniform(-max_angle, max_angle, size=len(glyphs))
    sizes = rng.uniform(*size_range, size=len(glyphs))
    for i, (char, path) in enumerate(glyphs):
        glyph = _render_glyph(path, char, _STROKES[strokes[i]])
        glyph = glyph.rotate(angles[i], resample=Image.Resampling.BILINEAR, expand=True)
        scale = sizes[i] / max(glyph.size)
        w = min(_SIDE, max(1, round(glyph.width * scale)))
        h = min(_SIDE, max(1, round(glyph.height * scale)))
        pixels = np.asarray(glyph.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
        top, left = rng.integers(0, _SIDE - h + 1), rng.integers(0, _SIDE - w + 1)
        out[i, top : top + h, left : left + w] = pixels / max(float(pixels.max()), 1.0)
    return torch.from_numpy(out).unsqueeze(1)


def letters_standin(
    n: int, seed: int = 0, return_labels: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """``n`` letters A–Z rendered from matplotlib's fonts (EMNIST-letters / notMNIST stand-in).

    White glyph on black as in EMNIST; the letter and font (one of
    :func:`letter_fonts`) are drawn uniformly, then stroke width, rotation, size
    (14–24 px) and position vary (:func:`_compose_glyphs`). With ``return_labels``
    also returns the letter index (A = 0, ..., Z = 25, int64).
    """
    n = check_positive_int(n, "n")
    fonts = letter_fonts()
    if not fonts:
        raise RuntimeError(f"no font in {_font_dir()} renders the letters A-Z")
    rng = _numpy_rng(seed)
    labels = rng.integers(len(LETTERS), size=n)
    font_pick = rng.integers(len(fonts), size=n)
    x = _compose_glyphs(
        [(LETTERS[k], fonts[f]) for k, f in zip(labels, font_pick, strict=True)], rng
    )
    return (x, torch.as_tensor(labels, dtype=torch.int64)) if return_labels else x


# ---------------------------------------------------------------------------
# Photographs shipped with scikit-image / scikit-learn: photo stand-in and aux pool
# ---------------------------------------------------------------------------

# Photos of objects and scenes (like CIFAR-10 / LSUN), used only by the OOD test set.
PHOTO_TEST_SOURCES: tuple[str, ...] = (
    "astronaut",
    "camera",
    "chelsea",  # skimage.data.cat() loads the same file, so neither group uses "cat"
    "clock",
    "coffee",
    "coins",
    "rocket",
    "china",  # scikit-learn sample image
)

# Textures, microscopy, astronomy, faces and other scenes, used only by the aux pool.
# Documents (page, text) are in neither group: their crops look like letters.
PHOTO_AUX_SOURCES: tuple[str, ...] = (
    "brick",
    "grass",
    "gravel",
    "moon",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "cell",
    "microaneurysms",
    "horse",  # binary silhouette
    "motorcycle",  # left view of skimage.data.stereo_motorcycle
    "flower",  # scikit-learn sample image
    "lfw_faces",  # skimage.data.lfw_subset: 200 faces of 25×25
)


def _load_photo(name: str) -> np.ndarray:
    """The raw array of one photo source; all ship inside the packages (no download)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    if name == "lfw_faces":
        return skimage.data.lfw_subset()  # (200, 25, 25) gray stack
    return getattr(skimage.data, name)()


def _to_gray(image: np.ndarray, stack: bool = False) -> Tensor:
    """A grayscale float tensor ``(K, 1, H, W)`` in [0, 1] from an image or gray stack."""
    arr = np.asarray(image)
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    x = torch.as_tensor(arr.astype(np.float32) / scale)
    if not stack and x.ndim == 3:  # (H, W, 3 or 4): drop alpha, weight the colours
        x = (x[..., :3] * torch.tensor(_LUMA)).sum(dim=-1)
    if x.ndim == 2:
        x = x[None]
    return x[:, None].clamp_(0.0, 1.0)


@functools.cache
def _photo_pyramid(name: str) -> tuple[Tensor, ...]:
    """The source ``(K, 1, H, W)`` and 2×-downsampled copies while the short side >= 56.

    Crops are sampled from the level where they span 28–56 pixels, so bilinear
    sampling never shrinks by more than 2× (little aliasing).
    """
    levels = [_to_gray(_load_photo(name), stack=name == "lfw_faces")]
    while min(levels[-1].shape[-2:]) >= 4 * _SIDE:
        levels.append(F.avg_pool2d(levels[-1], 2))
    return tuple(levels)


def _crops_from(name: str, m: int, rng: np.random.Generator, min_scale: float) -> Tensor:
    """``m`` random square crops of the photo source ``name``, resized to 28×28.

    The crop side is log-uniform between ``min_scale`` (but at least 14 px) and 1 times
    the image's short side; its position is uniform and half the crops are mirrored.
    """
    levels = _photo_pyramid(name)
    count, _, height, width = levels[0].shape
    short = min(height, width)
    low = min(1.0, max(min_scale, 14.0 / short))
    side = short * np.exp(rng.uniform(np.log(low), 0.0, size=m))
    x0 = rng.uniform(0.0, width - side)
    y0 = rng.uniform(0.0, height - side)
    centres = (np.arange(_SIDE) + 0.5) / _SIDE  # output pixel centres in (0, 1)
    xs = x0[:, None] + side[:, None] * centres  # (m, 28) source pixel coordinates
    ys = y0[:, None] + side[:, None] * centres
    flip = rng.random(m) < 0.5
    xs[flip] = xs[flip, ::-1]
    image = rng.integers(count, size=m)
    level = np.clip(np.floor(np.log2(side / _SIDE)), 0, len(levels) - 1).astype(int)
    # grid_sample's normalised coordinates (align_corners=False) do not depend on the
    # level's resolution: -1 and 1 are the outer edges of the image at every level.
    gx = torch.as_tensor(2.0 * xs / width - 1.0, dtype=torch.float32)
    gy = torch.as_tensor(2.0 * ys / height - 1.0, dtype=torch.float32)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    out = torch.empty(m, 1, _SIDE, _SIDE)
    for lv in np.unique(level):
        sel = torch.as_tensor(np.flatnonzero(level == lv))
        if count == 1:  # one big image: sample all its crops as one tall grid
            source, g = levels[lv], grid[sel].reshape(1, -1, _SIDE, 2)
        else:  # a stack of small images: one crop per indexed image
            source, g = levels[lv][torch.as_tensor(image)[sel]], grid[sel]
        crops = F.grid_sample(
            source, g, mode="bilinear", padding_mode="border", align_corners=False
        )
        out[sel] = crops.reshape(-1, 1, _SIDE, _SIDE)
    return out.clamp_(0.0, 1.0)


def _random_crops(
    sources: Sequence[str],
    n: int,
    rng: np.random.Generator,
    min_scale: float,
    min_std: float = 0.03,
    max_rounds: int = 10,
) -> Tensor:
    """``n`` crops (:func:`_crops_from`), each from a source drawn uniformly.

    Nearly flat crops (pixel standard deviation below ``min_std``: sky, background)
    are redrawn, up to ``max_rounds`` times, so the set shows objects and textures.
    """
    out = torch.empty(n, 1, _SIDE, _SIDE)
    todo = np.arange(n)
    for _ in range(max_rounds):
        which = rng.integers(len(sources), size=todo.size)
        for s, name in enumerate(sources):
            rows = todo[which == s]
            if rows.size:
                out[torch.as_tensor(rows)] = _crops_from(name, rows.size, rng, min_scale)
        spread = out[torch.as_tensor(todo)].flatten(1).std(dim=1).numpy()
        todo = todo[spread < min_std]
        if todo.size == 0:
            break
    return out


def photos_standin(n: int, seed: int = 0) -> Tensor:
    """``n`` grayscale 28×28 crops of photographs (grayscale CIFAR-10 / LSUN stand-in).

    Sources (:data:`PHOTO_TEST_SOURCES`, all shipped inside the packages): scikit-image's
    astronaut, camera, chelsea, clock, coffee, coins and rocket and scikit-learn's
    china. A source is drawn uniformly, then a random square crop of random scale
    (20–100 % of the short side, log-uniform) is mirrored with probability 1/2,
    converted to grayscale (BT.601 luma) and resized to 28×28; nearly flat crops
    (sky, background) are redrawn (:func:`_random_crops`).
    """
    n = check_positive_int(n, "n")
    return _random_crops(PHOTO_TEST_SOURCES, n, _numpy_rng(seed), min_scale=0.2)


def aux_pool(n: int, seed: int = 0, symbol_fraction: float = 0.15) -> Tensor:
    """``n`` auxiliary out-distribution training images (stand-in for 80M Tiny Images).

    For Outlier Exposure, ACET, CCU, GOOD and ATOM. 80M Tiny Images has been
    withdrawn, so this pool is a documented substitute made of

    * ``1 - symbol_fraction`` random crops (as in :func:`photos_standin`, but 10–100 %
      of the short side) of
      :data:`PHOTO_AUX_SOURCES`: scikit-image's brick, grass, gravel, moon,
      hubble_deep_field, immunohistochemistry, retina, cell, microaneurysms, horse,
      stereo_motorcycle (left) and the 200 lfw_subset faces, and scikit-learn's flower;
    * ``symbol_fraction`` glyphs of :data:`AUX_SYMBOLS` (punctuation, math, arrows,
      card suits, shapes; no letters, no digits) rendered from matplotlib's fonts:
      a symbol is drawn uniformly, then a font that has it, then the glyph is varied
      as in :func:`letters_standin`.

    Disjoint from every OOD test set by source: no photo is shared with
    :data:`PHOTO_TEST_SOURCES`, no glyph is a letter (letters set) or a digit
    (digits set), and no noise is included (noise sets). Images are shuffled.
    """
    n = check_positive_int(n, "n")
    if not 0.0 <= symbol_fraction <= 1.0:
        raise ValueError(f"expected symbol_fraction in [0, 1], got {symbol_fraction!r}")
    rng = _numpy_rng(seed)
    n_symbols = round(n * symbol_fraction)
    parts = []
    if n - n_symbols > 0:
        parts.append(_random_crops(PHOTO_AUX_SOURCES, n - n_symbols, rng, min_scale=0.1))
    if n_symbols > 0:
        fonts_for: dict[str, list[str]] = {}
        for char, path in _symbol_items():
            fonts_for.setdefault(char, []).append(path)
        chars = sorted(fonts_for)
        glyphs = []
        for k in rng.integers(len(chars), size=n_symbols):
            fonts = fonts_for[chars[k]]
            glyphs.append((chars[k], fonts[rng.integers(len(fonts))]))
        parts.append(_compose_glyphs(glyphs, rng))
    return torch.cat(parts)[torch.as_tensor(rng.permutation(n))]


def aux_pool_for(profile: Profile) -> Tensor:
    """The auxiliary pool a profile trains with: ``profile.aux_size`` images, own seed.

    Built once per process and size (it takes ~1.5 s) and returned as a copy.
    """
    return _aux_pool_cached(profile.aux_size, derive_seed(profile.seed, "aux pool")).clone()


@functools.lru_cache(maxsize=2)
def _aux_pool_cached(n: int, seed: int) -> Tensor:
    return aux_pool(n, seed=seed)


# ---------------------------------------------------------------------------
# Real OOD test sets through torchvision (``full`` profile)
# ---------------------------------------------------------------------------


def _torchvision_dataset(label: str, factory: Callable[[str, bool], Any]) -> Any:
    """``factory(root, download)`` with files on disk, downloading only when allowed.

    Raises ``FileNotFoundError`` naming the dataset and the fix when it is missing.
    """
    root = data_root()
    try:
        return factory(str(root), False)
    except (RuntimeError, OSError) as missing:
        if not download_allowed():
            raise FileNotFoundError(
                f"{label} not found under {root} (the data root, ${DATA_ENV}). To get it, "
                f"allow torchvision to download it with `export {DOWNLOAD_ENV}=1` on a "
                f"machine with internet, or copy the files there."
            ) from missing
    try:
        return factory(str(root), True)
    except Exception as failed:  # network errors come in many types
        raise FileNotFoundError(
            f"{label} not found under {root} and the download failed ({failed}); "
            f"it needs internet access, or copy the files there."
        ) from failed


def _gray28(images: Tensor) -> Tensor:
    """uint8 images ``(N, C, H, W)`` -> float ``(N, 1, 28, 28)`` in [0, 1] (BT.601 luma)."""
    x = images.float().div_(255.0)
    if x.shape[1] == 3:
        x = (x * torch.tensor(_LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    if x.shape[-2:] != (_SIDE, _SIDE):
        x = F.interpolate(x, size=(_SIDE, _SIDE), mode="bilinear", antialias=True)
    return x.clamp_(0.0, 1.0)


def _subset(images: Tensor, n: int, seed: int) -> Tensor:
    """A seeded random subset of ``min(n, len(images))`` images."""
    keep = torch.randperm(len(images), generator=_torch_rng(seed))[: min(n, len(images))]
    return images[keep]


def _mnist_test(n: int, seed: int) -> Tensor:
    from torchvision.datasets import MNIST

    ds = _torchvision_dataset("MNIST", lambda root, dl: MNIST(root, train=False, download=dl))
    return _gray28(_subset(ds.data, n, seed).unsqueeze(1))


def _emnist_letters_test(n: int, seed: int) -> Tensor:
    from torchvision.datasets import EMNIST

    ds = _torchvision_dataset(
        "EMNIST (letters)",
        lambda root, dl: EMNIST(root, split="letters", train=False, download=dl),
    )
    # EMNIST stores images transposed; swap H and W to show the letters upright.
    return _gray28(_subset(ds.data, n, seed).transpose(1, 2).unsqueeze(1))


def _cifar_test(n: int, seed: int, classes: int) -> Tensor:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if classes == 10 else CIFAR100
    ds = _torchvision_dataset(
        f"CIFAR-{classes}", lambda root, dl: cls(root, train=False, download=dl)
    )
    images = torch.as_tensor(ds.data).permute(0, 3, 1, 2)  # (N, 32, 32, 3) -> NCHW
    return _gray28(_subset(images, n, seed))


def _svhn_test(n: int, seed: int) -> Tensor:
    from torchvision.datasets import SVHN

    ds = _torchvision_dataset("SVHN", lambda root, dl: SVHN(root, split="test", download=dl))
    return _gray28(_subset(torch.as_tensor(ds.data), n, seed))


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OODSet:
    """One OOD test set: images in [0, 1] and what they stand for.

    ``stand_in_for`` names the paper's dataset a stand-in replaces (``None`` for the
    real thing and for noise); tables should print :attr:`label`.
    """

    name: str
    x: Tensor
    stand_in_for: str | None
    description: str

    def __post_init__(self) -> None:
        check_images(self.x, f"OODSet {self.name!r} images")

    @property
    def label(self) -> str:
        """The name for tables, e.g. ``'font letters (stand-in for EMNIST-letters)'``."""
        if self.stand_in_for is None:
            return self.name
        return f"{self.name} (stand-in for {self.stand_in_for})"


@dataclass(frozen=True)
class OODSpec:
    """How to build one registered OOD set: ``make(n, seed, in_train_x) -> images``.

    ``full_only`` sets need torchvision downloads and join only the ``full`` profile.
    """

    name: str
    stand_in_for: str | None
    description: str
    make: Callable[[int, int, Tensor | None], Tensor]
    full_only: bool = False
    needs_in_distribution: bool = False


def _smooth(n: int, seed: int, x_in: Tensor | None) -> Tensor:
    if x_in is None:
        raise ValueError("smooth noise needs in-distribution images (in_train_x)")
    return smooth_noise(n, x_in, seed)


DATASETS: dict[str, OODSpec] = {
    spec.name: spec
    for spec in [
        OODSpec(
            name="uniform noise",
            stand_in_for=None,
            description="i.i.d. pixels ~ U[0, 1] (Hein et al. 2019, Table 1)",
            make=lambda n, seed, _: uniform_noise(n, seed),
        ),
        OODSpec(
            name="gaussian noise",
            stand_in_for=None,
            description="i.i.d. pixels ~ N(0.5, 1) clipped to [0, 1] (Liang et al. 2018, ODIN)",
            make=lambda n, seed, _: gaussian_noise(n, seed),
        ),
        OODSpec(
            name="smooth noise",
            stand_in_for=None,
            description="half permuted training images, half uniform noise; Gaussian blur "
            "with sigma ~ U[1, 2.5], contrast rescaled (Hein et al. 2019, Sec. 5)",
            make=_smooth,
            needs_in_distribution=True,
        ),
        OODSpec(
            name="sklearn digits",
            stand_in_for="MNIST",
            description="scikit-learn's 8x8 handwritten digits upsampled to a 20x20 box "
            "centred in 28x28",
            make=lambda n, seed, _: digits_standin(n, seed),
        ),
        OODSpec(
            name="font letters",
            stand_in_for="EMNIST-letters / notMNIST",
            description="letters A-Z rendered from matplotlib's fonts, white on black; "
            "varied font, stroke, size, rotation and position",
            make=lambda n, seed, _: letters_standin(n, seed),
        ),
        OODSpec(
            name="photo crops",
            stand_in_for="grayscale CIFAR-10 / LSUN",
            description="grayscale 28x28 crops of photographs shipped with scikit-image "
            "and scikit-learn (" + ", ".join(PHOTO_TEST_SOURCES) + ")",
            make=lambda n, seed, _: photos_standin(n, seed),
        ),
        OODSpec(
            name="MNIST",
            stand_in_for=None,
            description="MNIST test set (torchvision)",
            make=lambda n, seed, _: _mnist_test(n, seed),
            full_only=True,
        ),
        OODSpec(
            name="EMNIST letters",
            stand_in_for=None,
            description="EMNIST letters test set, shown upright (torchvision)",
            make=lambda n, seed, _: _emnist_letters_test(n, seed),
            full_only=True,
        ),
        OODSpec(
            name="CIFAR-10 gray",
            stand_in_for=None,
            description="CIFAR-10 test set, grayscale, resized to 28x28 (torchvision)",
            make=lambda n, seed, _: _cifar_test(n, seed, 10),
            full_only=True,
        ),
        OODSpec(
            name="CIFAR-100 gray",
            stand_in_for=None,
            description="CIFAR-100 test set, grayscale, resized to 28x28 (torchvision)",
            make=lambda n, seed, _: _cifar_test(n, seed, 100),
            full_only=True,
        ),
        OODSpec(
            name="SVHN gray",
            stand_in_for=None,
            description="SVHN test set, grayscale, resized to 28x28 (torchvision)",
            make=lambda n, seed, _: _svhn_test(n, seed),
            full_only=True,
        ),
    ]
}


def get_ood_set(name: str, profile: Profile, in_train_x: Tensor | None = None) -> OODSet:
    """The registered OOD set ``name`` with ``profile.ood_size`` images.

    Its seed is :func:`derive_seed` of ``profile.seed`` and ``name``. Smooth noise
    permutes ``in_train_x`` (default: the profile's Fashion-MNIST training images).
    """
    check_choice(name, list(DATASETS), "OOD set")
    spec = DATASETS[name]
    n = check_positive_int(profile.ood_size, "profile.ood_size")
    if spec.needs_in_distribution and in_train_x is None:
        in_train_x = in_distribution(profile)[0]
    x = spec.make(n, derive_seed(profile.seed, name), in_train_x)
    return OODSet(spec.name, x, spec.stand_in_for, spec.description)


def ood_sets(
    profile: Profile, in_train_x: Tensor | None = None, skip_missing: bool = False
) -> dict[str, OODSet]:
    """Every OOD test set of ``profile``, ``profile.ood_size`` images each.

    ``ci``: the offline sets (three noises, three stand-ins). ``full``: those plus
    MNIST, EMNIST letters, CIFAR-10/100 and SVHN (grayscale 28×28) through torchvision.
    A missing torchvision dataset raises ``FileNotFoundError`` naming the fix, or is
    left out when ``skip_missing`` is true.
    """
    wanted = [s for s in DATASETS.values() if profile.name == "full" or not s.full_only]
    if in_train_x is None and any(s.needs_in_distribution for s in wanted):
        in_train_x = in_distribution(profile)[0]
    sets = {}
    for spec in wanted:
        try:
            sets[spec.name] = get_ood_set(spec.name, profile, in_train_x)
        except FileNotFoundError:
            if not (skip_missing and spec.full_only):
                raise
    return sets


# ---------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------


def plot_samples(
    sets: Mapping[str, OODSet] | Mapping[str, Tensor], n: int = 8, fig: Figure | None = None
) -> Figure:
    """A grid with one labelled row of ``n`` images per set; returns the Figure.

    Stand-ins are labelled "(stand-in for X)". Draws into ``fig`` if given, else
    into a new pyplot figure (in a notebook, assign the result to avoid showing it twice).
    """
    import matplotlib.pyplot as plt

    n = check_positive_int(n, "n")
    if not sets:
        raise ValueError("expected at least one set to plot, got an empty mapping")
    if fig is None:
        fig = plt.figure(figsize=(0.9 * n + 2.4, 0.95 * len(sets) + 0.2), layout="constrained")
    axes = fig.subplots(len(sets), n, squeeze=False)
    for row, (key, item) in enumerate(sets.items()):
        if isinstance(item, OODSet):
            images, label = item.x, item.name
            if item.stand_in_for:
                label += f"\n(stand-in for\n{item.stand_in_for})"
        else:
            images, label = check_images(item, f"sets[{key!r}]"), key
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(images):
                ax.axis("off")
                continue
            image = images[col].detach().cpu().permute(1, 2, 0).numpy()
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return fig


# ---------------------------------------------------------------------------
# 2-D toy problems (chapters 01 and 04)
# ---------------------------------------------------------------------------


def toy_blobs(n: int = 300, k: int = 3, seed: int = 0, spread: float = 0.35) -> tuple[Tensor, Tensor]:
    """``n`` 2-D points in ``k`` Gaussian blobs on the unit circle, and their labels.

    The toy in-distribution of the confidence-map figures (Hein et al. 2019 Fig. 2,
    Meinke & Hein 2020 Fig. 1): data live in a small region, so the maps can be
    zoomed out far beyond it.
    """
    n = check_positive_int(n, "n")
    k = check_positive_int(k, "k")
    g = _torch_rng(seed)
    y = torch.arange(n) % k
    angles = 2 * math.pi * y.double() / k + math.pi / 2
    centres = torch.stack([angles.cos(), angles.sin()], 1).float()
    x = centres + spread * torch.randn(n, 2, generator=g)
    return x, y
