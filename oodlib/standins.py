"""Offline stand-ins for the papers' OOD sets, built from files inside installed packages.

Each says what it stands in for (the registry in :mod:`oodlib.data` labels it so):

* :func:`digits_standin` — scikit-learn's 8×8 handwritten digits, MNIST-style (for MNIST);
* :func:`letters_standin` — letters rendered from matplotlib's fonts (for EMNIST-letters / notMNIST);
* :func:`photos_standin` — grayscale crops of scikit-image / scikit-learn photographs (for
  grayscale CIFAR-10 / LSUN);
* :func:`aux_pool` — the auxiliary out-distribution for training (OE, ACET, CCU, GOOD, ATOM), a
  substitute for the withdrawn 80M Tiny Images, drawn from sources disjoint from every test set.
"""

from __future__ import annotations

import functools
import math
import string
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from fontTools.agl import UV2AGL
from fontTools.ttLib import TTFont
from torch import Tensor

from .profiles import Profile
from .runtime import derive_seed, numpy_generator
from .validation import IMAGE_SIDE, check_int, check_positive_int

if TYPE_CHECKING:
    from PIL import Image as PILImage  # noqa: PLC0415 - a heavy optional source, loaded when a stand-in is built


# ---------------------------------------------------------------------------
# Handwritten digits: the MNIST stand-in
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digit_images() -> tuple[Tensor, Tensor]:
    """scikit-learn's 1797 8×8 digits (0..16), MNIST-style: 20×20 box centred in 28×28."""
    from sklearn.datasets import load_digits  # noqa: PLC0415 - a heavy optional source, loaded when a stand-in is built

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
    check_int(max_shift, "max_shift", low=0, high=4)
    base, labels = _digit_images()
    rng = numpy_generator(seed)
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

#: ITU-R BT.601 luma, the weights torchvision's Grayscale transform uses.
LUMA = (0.299, 0.587, 0.114)

LETTERS = string.ascii_uppercase

#: Non-letter, non-digit symbols for the auxiliary pool. Symbols that look like a
#: Latin letter (e.g. ∀ ∃ ∩ ⊂ × ○) are left out so the pool stays clear of the letters set.
AUX_SYMBOLS = "#$%&@?*+=<>{}[]~^∑∏∫√∞≈≠≤≥±÷←→↑↓↔⇒⇔∂∈⊕⊗★☆♠♣♥♦♪♫☺☼■□▲△●◆◇"

_GLYPH_SIZE = 64  # render size in points/pixels before shrinking to 28×28
_STROKES = (0, 2, 4)  # extra stroke width at render size (thickens the glyph)


def _font_dir() -> Path:
    import matplotlib  # noqa: PLC0415 - a heavy optional source, loaded when a stand-in is built

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.cache
def _font_cmap(path: str) -> dict[int, str]:
    return dict(TTFont(path, lazy=True).getBestCmap() or {})


def _has_standard_glyph(path: str, char: str) -> bool:
    """Whether the font maps ``char`` to the glyph of that name (not a re-encoded symbol).

    TeX fonts such as cmex10 map ASCII code points to delimiters; their glyph names
    give them away.
    """
    code = ord(char)
    names = {f"uni{code:04X}", f"u{code:05X}", UV2AGL.get(code)}
    return _font_cmap(path).get(code) in names


@functools.cache
def _pil_font(path: str, size: int = _GLYPH_SIZE) -> Any:
    from PIL import ImageFont  # noqa: PLC0415 - a heavy optional source, loaded when a stand-in is built

    return ImageFont.truetype(path, size)


@functools.cache
def _render_glyph(path: str, char: str, stroke: int = 0) -> PILImage.Image:
    """``char`` in white on black, cropped to its bounding box (8-bit PIL image)."""
    from PIL import Image, ImageDraw  # noqa: PLC0415 - a heavy optional source, loaded when a stand-in is built

    font = _pil_font(path)
    left, top, right, bottom = font.getbbox(char, stroke_width=stroke)
    image = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(image).text(
        (-left, -top), char, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    return image


#: Font families split between the letters test set and the auxiliary pool: no font file (and no
#: family) feeds both, so the pool's glyphs share no typeface with the test letters (issue 15).
TEST_FONT_FAMILIES: tuple[str, ...] = ("DejaVu", "cm")  #: DejaVu Sans / Serif / Sans Mono, Computer Modern
POOL_FONT_FAMILIES: tuple[str, ...] = ("STIX",)  #: STIXGeneral (4 styles)


@functools.lru_cache(maxsize=1)
def text_fonts() -> tuple[str, ...]:
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


def _of_families(fonts: Sequence[str], families: Sequence[str]) -> tuple[str, ...]:
    return tuple(f for f in fonts if Path(f).name.startswith(tuple(families)))


def letter_fonts() -> tuple[str, ...]:
    """The text fonts of the letters test set, :data:`TEST_FONT_FAMILIES` (19 with matplotlib 3.11)."""
    return _of_families(text_fonts(), TEST_FONT_FAMILIES)


def pool_fonts() -> tuple[str, ...]:
    """The text fonts of the auxiliary pool's symbols: :data:`POOL_FONT_FAMILIES` (4 STIXGeneral styles)."""
    return _of_families(text_fonts(), POOL_FONT_FAMILIES)


@functools.lru_cache(maxsize=1)
def _symbol_items() -> tuple[tuple[str, str], ...]:
    """(symbol, font path) pairs: the :data:`AUX_SYMBOLS` each pool font draws.

    The fonts are those of :func:`pool_fonts` (none of them renders the letters test set);
    a pair counts if the font maps the symbol to its standard glyph and that glyph is not empty.
    """
    return tuple(
        (ch, path)
        for ch in AUX_SYMBOLS
        for path in pool_fonts()
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
    from PIL import Image  # noqa: PLC0415 - a heavy optional source, loaded when a stand-in is built

    out = np.zeros((len(glyphs), IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    strokes = rng.integers(len(_STROKES), size=len(glyphs))
    angles = rng.uniform(-max_angle, max_angle, size=len(glyphs))
    sizes = rng.uniform(*size_range, size=len(glyphs))
    for i, (char, path) in enumerate(glyphs):
        glyph = _render_glyph(path, char, _STROKES[strokes[i]])
        glyph = glyph.rotate(angles[i], resample=Image.Resampling.BILINEAR, expand=True)
        scale = sizes[i] / max(glyph.size)
        w = min(IMAGE_SIDE, max(1, round(glyph.width * scale)))
        h = min(IMAGE_SIDE, max(1, round(glyph.height * scale)))
        pixels = np.asarray(glyph.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
        top, left = rng.integers(0, IMAGE_SIDE - h + 1), rng.integers(0, IMAGE_SIDE - w + 1)
        out[i, top : top + h, left : left + w] = pixels / max(float(pixels.max()), 1.0)
    return torch.from_numpy(out).unsqueeze(1)


def letters_standin(
    n: int, seed: int = 0, return_labels: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """``n`` letters A–Z rendered from matplotlib's fonts (EMNIST-letters / notMNIST stand-in).

    White glyph on black as in EMNIST; the letter and font (one of :func:`letter_fonts`,
    the DejaVu and Computer Modern families) are drawn uniformly, then stroke width,
    rotation, size (14–24 px) and position vary (``_compose_glyphs``). With ``return_labels``
    also returns the letter index (A = 0, ..., Z = 25, int64).
    """
    n = check_positive_int(n, "n")
    fonts = letter_fonts()
    if not fonts:
        raise RuntimeError(f"no font in {_font_dir()} renders the letters A-Z")
    rng = numpy_generator(seed)
    labels = rng.integers(len(LETTERS), size=n)
    font_pick = rng.integers(len(fonts), size=n)
    x = _compose_glyphs(
        [(LETTERS[k], fonts[f]) for k, f in zip(labels, font_pick, strict=True)], rng
    )
    return (x, torch.as_tensor(labels, dtype=torch.int64)) if return_labels else x


# ---------------------------------------------------------------------------
# Photographs shipped with scikit-image / scikit-learn: photo stand-in and aux pool
# ---------------------------------------------------------------------------

#: Photos of objects and scenes (like CIFAR-10 / LSUN), used only by the OOD test set.
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

#: Textures, microscopy, astronomy, faces and other scenes, used only by the aux pool.
#: Documents (page, text) are in neither group: their crops look like letters.
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
        from sklearn.datasets import load_sample_image  # noqa: PLC0415 - a heavy optional source, loaded when a stand-in is built

        return load_sample_image(f"{name}.jpg")
    import skimage.data  # noqa: PLC0415 - a heavy optional source, loaded when a stand-in is built

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
        x = (x[..., :3] * torch.tensor(LUMA)).sum(dim=-1)
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
    while min(levels[-1].shape[-2:]) >= 4 * IMAGE_SIDE:
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
    centres = (np.arange(IMAGE_SIDE) + 0.5) / IMAGE_SIDE  # output pixel centres in (0, 1)
    xs = x0[:, None] + side[:, None] * centres  # (m, 28) source pixel coordinates
    ys = y0[:, None] + side[:, None] * centres
    flip = rng.random(m) < 0.5
    xs[flip] = xs[flip, ::-1]
    image = rng.integers(count, size=m)
    level = np.clip(np.floor(np.log2(side / IMAGE_SIDE)), 0, len(levels) - 1).astype(int)
    # grid_sample's normalised coordinates (align_corners=False) do not depend on the
    # level's resolution: -1 and 1 are the outer edges of the image at every level.
    gx = torch.as_tensor(2.0 * xs / width - 1.0, dtype=torch.float32)
    gy = torch.as_tensor(2.0 * ys / height - 1.0, dtype=torch.float32)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
    out = torch.empty(m, 1, IMAGE_SIDE, IMAGE_SIDE)
    for lv in np.unique(level):
        sel = torch.as_tensor(np.flatnonzero(level == lv))
        if count == 1:  # one big image: sample all its crops as one tall grid
            source, g = levels[lv], grid[sel].reshape(1, -1, IMAGE_SIDE, 2)
        else:  # a stack of small images: one crop per indexed image
            source, g = levels[lv][torch.as_tensor(image)[sel]], grid[sel]
        crops = F.grid_sample(
            source, g, mode="bilinear", padding_mode="border", align_corners=False
        )
        out[sel] = crops.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
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
    out = torch.empty(n, 1, IMAGE_SIDE, IMAGE_SIDE)
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
    (sky, background) are redrawn (``_random_crops``).
    """
    n = check_positive_int(n, "n")
    return _random_crops(PHOTO_TEST_SOURCES, n, numpy_generator(seed), min_scale=0.2)


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
      card suits, shapes; no letters, no digits) rendered from matplotlib's STIX fonts
      (:func:`pool_fonts`, a family the letters test set does not use):
      a symbol is drawn uniformly, then a font that has it, then the glyph is varied
      as in :func:`letters_standin`.

    Disjoint from every OOD test set by source: no photo is shared with
    :data:`PHOTO_TEST_SOURCES`, no font with :func:`letter_fonts`, no glyph is a letter
    (letters set) or a digit (digits sets), and no noise is included (noise sets);
    :func:`oodlib.provenance.audit` checks it. Images are shuffled.
    """
    n = check_positive_int(n, "n")
    if not 0.0 <= symbol_fraction <= 1.0:
        raise ValueError(f"expected symbol_fraction in [0, 1], got {symbol_fraction!r}")
    rng = numpy_generator(seed)
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
    """The auxiliary pool a profile trains with: ``profile.train.aux_size`` images, own seed.

    Built once per process and size (it takes ~1.5 s) and returned as a copy.
    """
    return _aux_pool_cached(profile.train.aux_size, derive_seed(profile.seed, "aux pool")).clone()


@functools.lru_cache(maxsize=2)
def _aux_pool_cached(n: int, seed: int) -> Tensor:
    return aux_pool(n, seed=seed)


def clear_cache() -> None:
    """Forget the stand-ins' in-process caches (photo sources, fonts, glyphs, digits)."""
    for cached in (_digit_images, _photo_pyramid, _font_cmap, _pil_font, text_fonts, _symbol_items,
                   _render_glyph, _aux_pool_cached):
        cached.cache_clear()
