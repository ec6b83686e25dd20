"""The papers' data sets at their own shapes: the in-distributions, their OOD test sets, the archives.

The book's chapters run on Fashion-MNIST, 1×28×28 (:mod:`oodlib.data`). The five seed papers train on
MNIST, Fashion-MNIST, SVHN, CIFAR-10 and CIFAR-100 and test on sets at those sets' shapes. This module
holds them as parameters:

* :data:`IN_DISTRIBUTIONS`: each in-distribution set with its shape, classes, published normalisation
  constants, torchvision class and split names, the papers that train on it and the OOD test sets each
  of those papers reports for it (with the section or table that says so);
* :func:`load`: ``(x, y)`` of a set's train or test split, float in [0, 1] at its own shape, read by
  torchvision from the data root through ``oodlib.data._torchvision_dataset`` (one mechanism:
  missing files name themselves and the fix, corrupt ones raise ``ValueError``); Fashion-MNIST
  through :func:`oodlib.data.load_fashion_mnist`;
* :func:`convert`: colour 32×32 ↔ grey 28×28, as the papers convert;
* the OOD sets that torchvision does not hold, read from a documented layout under the data root
  (:data:`ARCHIVES`, :data:`RANDOM_300K`; no download: the error names where the authors publish
  them), and torchvision's DTD (Textures) and Places365 as ATOM uses them (:func:`load_ood`).

The data root is ``$OODLIB_DATA`` (:func:`oodlib.data.data_root`); torchvision sets are downloaded only
when ``OODLIB_DOWNLOAD=1``. Layout of the sets outside torchvision (``ROOT`` is the data root)::

    ROOT/Imagenet/…         TinyImageNet (crop)    ODIN's Imagenet.tar.gz         (unpacks as Imagenet/test/)
    ROOT/Imagenet_resize/…  TinyImageNet (resize)  ODIN's Imagenet_resize.tar.gz
    ROOT/LSUN/…             LSUN (crop)            ODIN's LSUN.tar.gz             (unpacks as LSUN/test/)
    ROOT/LSUN_resize/…      LSUN (resize)          ODIN's LSUN_resize.tar.gz
    ROOT/iSUN/…             iSUN                   ODIN's iSUN.tar.gz       (unpacks as iSUN/iSUN_patches/)
    ROOT/300K_random_images.npy   (300 000, 32, 32, 3) uint8, Outlier Exposure's 300K random images
    ROOT/aux_pool/…         any folder of images (e.g. a TinyImageNet split): an auxiliary pool of your own

A folder's images may lie at any depth below it (the archives hold one subfolder); they are read
in sorted order of their paths. :mod:`oodlib.synthetic_files` writes every layout in small synthetic
form (``write(root, n_train=..., extra=True)``) for the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torchvision.datasets import CIFAR10, CIFAR100, DTD, MNIST, SVHN, Places365

from . import data, noise, synthetic_files
from .profiles import Profile
from .runtime import derive_seed, standard_layout, torch_generator
from .validation import check_choice, check_images, check_positive_int

SPLITS = ("train", "test")
GREY28 = (1, 28, 28)  #: MNIST's and Fashion-MNIST's shape
COLOUR32 = (3, 32, 32)  #: SVHN's and CIFAR's shape, and every OOD set of ODIN and ATOM
ODIN_README = "https://github.com/facebookresearch/odin"  #: its README links the five archives
OE_README = "https://github.com/hendrycks/outlier-exposure"  #: its README links 300K_random_images.npy
RANDOM_300K = synthetic_files.RANDOM_300K  #: ``300K_random_images.npy``, in the data root
PLACES365_FIRST = "test_256/Places365_test_00000001.jpg"  #: its first test image (checked before reading)


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperUse:
    """One paper's use of an in-distribution set: where it says so and the OOD test sets it reports.

    ``ood_sets`` are names of :data:`OOD_SETS`, in the order of the paper's table.
    """

    paper: str  # "ODIN", "ATOM", "GOOD", "CCU", "Hein"
    where: str  # the section / table that names the in-distribution and its OOD sets
    ood_sets: tuple[str, ...]


@dataclass(frozen=True)
class InDistribution:
    """An in-distribution data set of the papers.

    ``mean`` / ``std`` are the standard published per-channel normalisation constants: the training
    set's pixel mean and standard deviation in [0, 1] as commonly quoted (MNIST's from PyTorch's
    example; Fashion-MNIST's checked here on Debian's files: 0.2860 / 0.3530). The book's models take
    [0, 1] inputs (its threat models' ε and the [0, 1] box are defined there), so :func:`load` does not
    apply them: they are for whoever loads weights trained on normalised inputs or compares with code
    that normalises — as a first layer of the model, so that attacks still act on [0, 1] pixels.
    ``classes`` is ``None`` where the names are in the data files (CIFAR's meta files):
    :func:`class_names` reads them.
    """

    name: str  # the registry key
    title: str  # as the papers and the synthetic-files marker write it
    shape: tuple[int, int, int]
    num_classes: int
    classes: tuple[str, ...] | None
    mean: tuple[float, ...]
    std: tuple[float, ...]
    torchvision: str  # the torchvision class
    splits: tuple[str, str]  # torchvision's arguments for the train and the test split
    sizes: tuple[int, int]  # images in the published train and test split
    papers: tuple[PaperUse, ...]

    def ood_sets(self, paper: str) -> tuple[str, ...]:
        """The OOD test sets ``paper`` reports for this in-distribution."""
        uses = {use.paper: use for use in self.papers}
        return uses[check_choice(paper, list(uses), f"paper using {self.title}")].ood_sets


_ODIN = ("TinyImageNet (crop)", "TinyImageNet (resize)", "LSUN (crop)", "LSUN (resize)", "iSUN",
         "uniform noise", "gaussian noise")
_ODIN_WHERE = "Liang et al. 2018, §4.1 (CIFAR-10/100) and §4.2 (OOD sets); Table 2"
_ATOM_NATURAL = ("Textures", "Places365", "LSUN (crop)", "LSUN (resize)", "iSUN")
_ATOM_WHERE = ("Chen et al. 2021, §5.1 and App. B.1 (OOD test sets); Tables 14–16 (per set), "
               "App. B.11 / Tables 9–11 (noise)")
_NOISES = ("gaussian noise", "uniform noise")
_GOOD_WHERE = "Bitterwolf et al. 2020, §4.1 'Evaluation' and Table 1"
_CCU_WHERE = "Meinke & Hein 2020, §4 'OOD performance' and Table 2"
_HEIN_WHERE = "Hein et al. 2019, §5 / App. F 'Evaluation' and Table 1"
_GREY_OOD = ("Fashion-MNIST", "EMNIST letters", "CIFAR-10 gray")  # for MNIST
_COLOUR_CCU = ("LSUN classroom", "ImageNet-", "smooth noise", "uniform noise")
_COLOUR_HEIN = ("LSUN classroom", "ImageNet-", "smooth noise")

#: the papers' in-distribution sets, by name
IN_DISTRIBUTIONS: dict[str, InDistribution] = {
    ds.name: ds
    for ds in [
        InDistribution(
            "mnist", "MNIST", GREY28, 10, tuple(MNIST.classes), (0.1307,), (0.3081,), "MNIST",
            ("train=True", "train=False"), (60000, 10000),
            (PaperUse("GOOD", _GOOD_WHERE, (*_GREY_OOD, "uniform noise")),
             PaperUse("CCU", _CCU_WHERE, (*_GREY_OOD, "smooth noise", "uniform noise")),
             PaperUse("Hein", _HEIN_WHERE, (*_GREY_OOD, "smooth noise")))),
        InDistribution(
            "fashion_mnist", "Fashion-MNIST", GREY28, 10, tuple(data.FASHION_CLASSES), (0.2860,), (0.3530,),
            "FashionMNIST", ("train=True", "train=False"), (60000, 10000),
            (PaperUse("CCU", _CCU_WHERE,
                      ("MNIST", "EMNIST letters", "CIFAR-10 gray", "smooth noise", "uniform noise")),)),
        InDistribution(
            "svhn", "SVHN", COLOUR32, 10, tuple(str(d) for d in range(10)), (0.4377, 0.4438, 0.4728),
            (0.1980, 0.2010, 0.1970), "SVHN", ('split="train"', 'split="test"'), (73257, 26032),
            (PaperUse("ATOM", _ATOM_WHERE, ("CIFAR-10", *_ATOM_NATURAL, *_NOISES)),
             PaperUse("GOOD", _GOOD_WHERE, ("CIFAR-100", "CIFAR-10", "LSUN classroom", "uniform noise")),
             PaperUse("CCU", _CCU_WHERE, ("CIFAR-10", "CIFAR-100", *_COLOUR_CCU)),
             PaperUse("Hein", _HEIN_WHERE, ("CIFAR-10", "CIFAR-100", *_COLOUR_HEIN)))),
        InDistribution(
            "cifar10", "CIFAR-10", COLOUR32, 10, None, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
            "CIFAR10", ("train=True", "train=False"), (50000, 10000),
            (PaperUse("ODIN", _ODIN_WHERE, _ODIN),
             PaperUse("ATOM", _ATOM_WHERE, ("SVHN", *_ATOM_NATURAL, *_NOISES)),
             PaperUse("GOOD", _GOOD_WHERE, ("CIFAR-100", "SVHN", "LSUN classroom", "uniform noise")),
             PaperUse("CCU", _CCU_WHERE, ("SVHN", "CIFAR-100", *_COLOUR_CCU)),
             PaperUse("Hein", _HEIN_WHERE, ("SVHN", "CIFAR-100", *_COLOUR_HEIN)))),
        InDistribution(
            "cifar100", "CIFAR-100", COLOUR32, 100, None, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
            "CIFAR100", ("train=True", "train=False"), (50000, 10000),
            (PaperUse("ODIN", _ODIN_WHERE, _ODIN),
             PaperUse("ATOM", _ATOM_WHERE, ("SVHN", *_ATOM_NATURAL, *_NOISES)),
             PaperUse("CCU", _CCU_WHERE, ("SVHN", "CIFAR-10", *_COLOUR_CCU)),
             PaperUse("Hein", _HEIN_WHERE, ("SVHN", "CIFAR-10", *_COLOUR_HEIN)))),
    ]
}


@dataclass(frozen=True)
class Archive:
    """An OOD set the ODIN authors publish as a tar.gz of 32×32 image folders (ATOM reuses them)."""

    name: str  # the papers' name
    folder: str  # under the data root, as the archive unpacks
    images: int  # as the papers count them
    how: str  # how the authors made it (ODIN §4.2)


#: ODIN's five archives, by the papers' names (Liang et al. 2018, §4.2; linked from :data:`ODIN_README`)
ARCHIVES: dict[str, Archive] = {
    a.name: a
    for a in [
        Archive("TinyImageNet (crop)", "Imagenet", 10000, "random 32×32 crops of Tiny ImageNet's test set"),
        Archive("TinyImageNet (resize)", "Imagenet_resize", 10000, "Tiny ImageNet's test images downsampled"),
        Archive("LSUN (crop)", "LSUN", 10000, "random 32×32 crops of LSUN's test images"),
        Archive("LSUN (resize)", "LSUN_resize", 10000, "LSUN's test images downsampled to 32×32"),
        Archive("iSUN", "iSUN", 8925, "all of iSUN (a subset of SUN) downsampled to 32×32"),
    ]
}

#: every OOD test set named in :data:`IN_DISTRIBUTIONS`: where it comes from (:func:`load_ood` reads
#: those marked "read here")
OOD_SETS: dict[str, str] = {
    **{a.name: f"{a.how}; ODIN's {a.folder}.tar.gz (read here)" for a in ARCHIVES.values()},
    "Textures": "DTD, all 5 640 images (ATOM App. B.1); torchvision DTD, resized and centre-cropped to "
                "32×32 (read here)",
    "Places365": "Places365's test split, of which ATOM samples 10 000 (App. B.1); torchvision Places365 "
                 "(small images), resized and centre-cropped to 32×32 (read here)",
    "SVHN": "SVHN test split (read here; ATOM takes 1 000 per class, App. B.1)",
    "CIFAR-10": "CIFAR-10 test split (read here)",
    "CIFAR-100": "CIFAR-100 test split (read here)",
    "MNIST": "MNIST test split (read here)",
    "Fashion-MNIST": "Fashion-MNIST test split (read here)",
    "CIFAR-10 gray": "CIFAR-10 test split, grey and 28×28 (GOOD, CCU §4, Hein App. F; read here)",
    "EMNIST letters": "EMNIST letters test split (GOOD; CCU and Hein write 'EMNIST'; read here)",
    "gaussian noise": "i.i.d. N(0.5, 1) pixels clipped to [0, 1] (ODIN §4.2, ATOM App. B.1; read here)",
    "uniform noise": "i.i.d. U[0, 1] pixels (read here)",
    "smooth noise": "Hein et al. 2019's noise: permuted training pixels or uniform noise, blurred and "
                    "rescaled; needs the in-distribution training images (oodlib.noise.smooth_noise)",
    "LSUN classroom": "LSUN's classroom category (GOOD, CCU, Hein); no reader yet (LSUN ships as lmdb)",
    "ImageNet-": "10 000 ImageNet validation images without CIFAR-like classes (CCU §4, Hein App. F); "
                 "not published, no reader",
}


def class_names(name: str) -> tuple[str, ...]:
    """The class names of in-distribution set ``name``: constants, or CIFAR's from its meta file."""
    spec = IN_DISTRIBUTIONS[check_choice(name, list(IN_DISTRIBUTIONS), "in-distribution set")]
    if spec.classes is not None:
        return spec.classes
    return tuple(_cifar(spec, "test").classes)


# ---------------------------------------------------------------------------
# In-distribution sets through torchvision
# ---------------------------------------------------------------------------


class _UnverifiedCIFAR10(CIFAR10):
    """torchvision's CIFAR-10 reader without MD5 sums, for synthetic files (both splits)."""

    train_list = [[name, None] for name, _ in CIFAR10.train_list]  # noqa: RUF012 -- torchvision's attributes
    test_list = [[name, None] for name, _ in CIFAR10.test_list]  # noqa: RUF012
    meta = {**CIFAR10.meta, "md5": None}  # noqa: RUF012


class _UnverifiedCIFAR100(CIFAR100):
    """As :class:`_UnverifiedCIFAR10`, for CIFAR-100."""

    train_list = [[name, None] for name, _ in CIFAR100.train_list]  # noqa: RUF012
    test_list = [[name, None] for name, _ in CIFAR100.test_list]  # noqa: RUF012
    meta = {**CIFAR100.meta, "md5": None}  # noqa: RUF012


class _UnverifiedSVHN(SVHN):
    """torchvision's SVHN reader without MD5 sums, for synthetic files (both splits)."""

    split_list = {k: [url, name, None] for k, (url, name, _) in SVHN.split_list.items()}  # noqa: RUF012


class _UnverifiedPlaces365(Places365):
    """torchvision's Places365 reader without MD5 sums on its lists, for synthetic files."""

    _CATEGORIES_META = (Places365._CATEGORIES_META[0], None)
    _FILE_LIST_META = {k: (v[0], None) for k, v in Places365._FILE_LIST_META.items()}  # noqa: RUF012


def _cifar(spec: InDistribution, split: str) -> Any:
    verified, unverified = (CIFAR10, _UnverifiedCIFAR10) if spec.num_classes == 10 else (
        CIFAR100, _UnverifiedCIFAR100)
    folder = verified.base_folder  # torchvision checks both splits' files, whichever it reads
    files = tuple(f"{folder}/{name}" for name, _ in verified.train_list + verified.test_list) + (
        f"{folder}/{verified.meta['filename']}",)
    return data._torchvision_dataset(
        spec.title, files,
        lambda root, dl, verify: (verified if verify else unverified)(
            root, train=split == "train", download=dl))


def _read_split(spec: InDistribution, split: str) -> tuple[Tensor, Tensor]:
    """A whole split: uint8 images ``(N, C, H, W)`` and int64 labels (float for Fashion-MNIST)."""
    if spec.name == "fashion_mnist":
        return data.load_fashion_mnist(split)  # Debian's package or the root (one reader)
    if spec.name == "mnist":
        ds = data._torchvision_dataset(
            spec.title, data._MNIST_RAW, lambda root, dl, _: MNIST(root, train=split == "train", download=dl))
        return ds.data.unsqueeze(1), ds.targets
    if spec.name == "svhn":
        ds = data._torchvision_dataset(
            spec.title, (f"{split}_32x32.mat",),
            lambda root, dl, verify: (SVHN if verify else _UnverifiedSVHN)(root, split=split, download=dl))
        return torch.as_tensor(ds.data), torch.as_tensor(ds.labels)
    ds = _cifar(spec, split)
    return torch.as_tensor(ds.data).permute(0, 3, 1, 2), torch.as_tensor(ds.targets)


def _pick(total: int, n: int | None, seed: int, what: str) -> Tensor:
    """Indices of all ``total`` items (``n=None``) or of a seeded subset of ``n``, in the original order."""
    if n is None:
        return torch.arange(total)
    n = check_positive_int(n, "n")
    if n > total:
        raise ValueError(f"expected n <= {total} (the images in {what}), got {n}")
    order = torch.randperm(total, generator=torch_generator(derive_seed(seed, f"{what} subset")))
    return order[:n].sort().values


def load(name: str, split: str, n: int | None = None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(x, y)`` of the ``split`` (``"train"`` / ``"test"``) of in-distribution set ``name``.

    ``x`` is float32 in [0, 1] at the set's own shape (:attr:`InDistribution.shape`; not normalised),
    ``y`` int64 labels in ``0 .. num_classes - 1`` (SVHN's digit 0 is 0). ``n`` takes a seeded random
    subset (kept in the file's order; the same ``seed`` gives the same images), ``None`` the whole
    split. Read by torchvision from the data root: missing files raise ``FileNotFoundError`` naming
    them and the fix, corrupt ones ``ValueError``; Fashion-MNIST as :func:`oodlib.data.load_fashion_mnist`.
    """
    spec = IN_DISTRIBUTIONS[check_choice(name, list(IN_DISTRIBUTIONS), "in-distribution set")]
    check_choice(split, SPLITS, f"{spec.title} split")
    x, y = _read_split(spec, split)
    keep = _pick(len(x), n, seed, f"{spec.title} {split}")
    x, y = x[keep], y[keep].long()  # torchvision's arrays are NHWC (or SVHN's own order): read as NCHW
    return standard_layout(x.float() if x.is_floating_point() else x.float().div_(255.0)), y


# ---------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------


def convert(x: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Images ``x`` in [0, 1] converted to ``shape``, :data:`GREY28` or :data:`COLOUR32`, as the papers do.

    * colour 32×32 → grey 28×28: BT.601 luma, then an antialiased bilinear resize
      (``oodlib.data._gray28``). GOOD (Table 1), CCU (§4, "GrCIFAR10") and Hein et al. (Table 1,
      "grayCIFAR-10") test MNIST / Fashion-MNIST models on CIFAR-10 made so; the book's Fashion-MNIST
      chapters need it for every colour set.
    * grey 28×28 → colour 32×32: the channel replicated three times, then a bilinear resize. None of
      the five papers does this in its tables; the book needs it to test SVHN / CIFAR models on its
      grey sets (MNIST, Fashion-MNIST, EMNIST letters, the offline stand-ins) or to train them with a grey
      auxiliary pool.

    Either direction changes the set, so a table built on converted images must say so (e.g.
    "CIFAR-10 gray", "MNIST as 3×32×32"). ``x`` at ``shape`` already is returned as a copy. The
    result is in NCHW layout (:func:`oodlib.runtime.standard_layout`).
    """
    shape = _paper_shape(shape)
    check_images(x, "x")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"expected x with 1 or 3 channels, got shape {tuple(x.shape)}")
    if tuple(x.shape[1:]) == shape:
        return x.clone(memory_format=torch.contiguous_format)
    if shape == GREY28:
        return standard_layout(data._gray28(x.float().mul(255.0)))  # _gray28 takes 0..255 values
    x = x.float().expand(-1, 3, -1, -1) if x.shape[1] == 1 else x.float()
    if tuple(x.shape[-2:]) != shape[1:]:
        x = F.interpolate(x, size=shape[1:], mode="bilinear", antialias=True, align_corners=False)
    return standard_layout(x.clamp(0.0, 1.0))


# ---------------------------------------------------------------------------
# OOD sets outside torchvision, and torchvision's DTD and Places365
# ---------------------------------------------------------------------------

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp"}


def _to_colour32(image: Image.Image) -> Tensor:
    """A PIL image as float ``(3, 32, 32)`` in [0, 1]: RGB; if not 32×32, the shorter side resized to 32
    (antialiased bilinear) and the centre cropped."""
    x = torch.from_numpy(np.array(image.convert("RGB"), dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    h, w = x.shape[1:]
    if (h, w) != (32, 32):
        size = (max(32, round(h * 32 / min(h, w))), max(32, round(w * 32 / min(h, w))))
        x = F.interpolate(x[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        top, left = (size[0] - 32) // 2, (size[1] - 32) // 2
        x = x[:, top:top + 32, left:left + 32]
    return x.clamp_(0.0, 1.0)


def _open(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")  # reads the pixels, so a truncated file fails here


def _read_images(keep: Tensor, get: Callable[[int], Image.Image], where: Callable[[int], object],
                 label: str, fix: str) -> Tensor:
    """Images ``get(i)`` for ``i`` in ``keep`` as ``(len(keep), 3, 32, 32)``; a missing image raises
    ``FileNotFoundError``, an unreadable one ``ValueError``, both naming its file ``where(i)`` and ``fix``."""
    out = torch.empty(len(keep), *COLOUR32)
    for row, i in enumerate(keep.tolist()):
        try:
            out[row] = _to_colour32(get(i))
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{label}: the image {where(i)} is missing; {fix}") from err
        except (OSError, ValueError, SyntaxError) as err:  # PIL: UnidentifiedImageError, truncated files
            raise ValueError(f"{label}: the image {where(i)} is corrupt ({type(err).__name__}: "
                             f"{str(err)[:160]}); {fix}") from err
    return out


def _archive_help(archive: Archive, root: Path) -> str:
    return (f"it is not in torchvision and oodlib does not download it: get {archive.folder}.tar.gz from the "
            f"links in the ODIN authors' README ({ODIN_README}), then `tar -xzf {archive.folder}.tar.gz -C "
            f"{root}` (the data root, ${data.DATA_ENV}), or copy the folder there")


def load_archive(name: str, n: int | None = None, seed: int = 0) -> Tensor:
    """ODIN's image folder ``name`` (a key of :data:`ARCHIVES`) as float ``(N, 3, 32, 32)`` in [0, 1].

    Reads every image file at any depth below ``ROOT/<folder>`` in sorted order of the paths (PIL, RGB;
    an image not 32×32 is resized and centre-cropped like Textures'). ``n`` takes a seeded subset.
    A missing or empty folder raises ``FileNotFoundError`` naming it, the layout and where the archive
    is published; an unreadable image ``ValueError`` naming it.
    """
    archive = ARCHIVES[check_choice(name, list(ARCHIVES), "archive set")]
    root = data.data_root()
    folder = root / archive.folder
    files = sorted((p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()),
                   key=lambda p: p.relative_to(folder).as_posix()) if folder.is_dir() else []
    if not files:
        state = "holds no images" if folder.is_dir() else "not found"
        raise FileNotFoundError(
            f"{archive.name}: the folder {folder}/ {state}; expected its {archive.images} 32×32 images "
            f"(any depth, e.g. {archive.folder}/<subfolder>/*.jpg as the archive unpacks); "
            + _archive_help(archive, root))
    fix = f"delete {folder}/ and unpack {archive.folder}.tar.gz again"
    keep = _pick(len(files), n, seed, archive.name)
    return _read_images(keep, lambda i: _open(files[i]), files.__getitem__, archive.name, fix)


def load_random_300k(n: int | None = None, seed: int = 0) -> Tensor:
    """Outlier Exposure's 300K random images (``ROOT/300K_random_images.npy``) as float ``(N, 3, 32, 32)``.

    The array is ``(300000, 32, 32, 3)`` uint8, read with ``np.load(mmap_mode="r", allow_pickle=False)``
    (never unpickled), so ``n`` (a seeded subset) reads only those rows; all of it is 3.7 GB as float.
    Hendrycks et al. publish it (:data:`OE_README`) for training; the book uses it as the auxiliary
    data of ATOM, in place of the withdrawn 80 Million Tiny Images that ATOM trains with (§5.1, App. B.1),
    which tables must say. A missing file raises ``FileNotFoundError`` naming it and where to get it; a
    wrong or unreadable one ``ValueError``.
    """
    path = data.data_root() / RANDOM_300K
    if not path.is_file():
        raise FileNotFoundError(
            f"300K random images not found: expected {path}, a .npy of 300 000 × 32 × 32 × 3 uint8 (0.9 GB) "
            f"in the data root (${data.DATA_ENV}). oodlib does not download it: get it from the link in "
            f"the Outlier Exposure README ({OE_README}) and copy it there")
    fix = f"delete {path} and copy it again"
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path} is corrupt or not a plain .npy ({type(err).__name__}: {str(err)[:160]}); "
                         f"{fix}") from err
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[1:] != (32, 32, 3):
        raise ValueError(f"expected {path} to hold (N, 32, 32, 3) uint8 images, got {array.shape} "
                         f"{array.dtype}; {fix}")
    keep = _pick(len(array), n, seed, "300K random images").numpy()
    return torch.from_numpy(np.ascontiguousarray(array[keep])).permute(0, 3, 1, 2).float().div_(255.0)


#: the auxiliary training pools of the papers' settings (``profile.train.pool``): the book's offline
#: stand-in (:func:`oodlib.standins.aux_pool`, Fashion-MNIST's chapters), Outlier Exposure's 300K random
#: images (:func:`load_random_300k`), or any folder of images under ``ROOT/aux_pool/`` (:func:`load_pool`)
POOLS = ("standin", "random_300k", "folder")
POOL_FOLDER = "aux_pool"  #: the folder of the ``"folder"`` pool, under the data root


def load_pool(name: str, n: int, seed: int, shape: tuple[int, int, int]) -> Tensor:
    """``n`` images (seeded subset) of auxiliary pool ``name`` (:data:`POOLS`, but ``"standin"``, which
    :mod:`oodlib.standins` builds) at ``shape``, float in [0, 1].

    80 Million Tiny Images, the pool of Hein et al. 2019, Meinke & Hein 2020, Bitterwolf et al. 2020 and
    Chen et al. 2021, has been withdrawn by its authors; ``"random_300k"`` is the subset that Outlier
    Exposure's authors publish for training (:func:`load_random_300k`), ``"folder"`` any ImageFolder-like
    tree of images under ``ROOT/aux_pool/`` (read as :func:`load_archive` reads ODIN's folders: every
    image at any depth, resized and centre-cropped to 32×32). Grey 28×28 models get them converted as
    the papers convert (:func:`convert`). A missing pool raises ``FileNotFoundError`` naming the file
    and where to get it.
    """
    check_choice(name, [p for p in POOLS if p != "standin"], "auxiliary pool read from files")
    n = check_positive_int(n, "n")
    if name == "random_300k":
        return convert(load_random_300k(n, seed), _paper_shape(shape))
    folder = data.data_root() / POOL_FOLDER
    files = sorted((p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()),
                   key=lambda p: p.relative_to(folder).as_posix()) if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(
            f"auxiliary pool: the folder {folder}/ {'holds no images' if folder.is_dir() else 'not found'}; "
            f"expected images at any depth below it (e.g. a TinyImageNet split: "
            f"{POOL_FOLDER}/<class>/*.JPEG), "
            f"or set train.pool to 'random_300k' ({RANDOM_300K}, from {OE_README})")
    keep = _pick(len(files), n, seed, "auxiliary pool folder")
    x = _read_images(keep, lambda i: _open(files[i]), files.__getitem__, "auxiliary pool",
                     f"replace or delete that file under {folder}/")
    return convert(x, _paper_shape(shape))


def _subset_of_datasets(parts: list[Any], n: int | None, seed: int, label: str, fix: str) -> Tensor:
    """A seeded subset of the images of torchvision datasets ``parts`` (in order), at 3×32×32."""
    index = [(part, i) for part in parts for i in range(len(part))]
    keep = _pick(len(index), n, seed, label)

    def where(k: int) -> object:  # the file: Places365 lists it publicly, DTD privately
        part, i = index[k]
        files = getattr(part, "imgs", None) or [(f,) for f in getattr(part, "_image_files", [])]
        return files[i][0] if i < len(files) else f"number {k}"

    return _read_images(keep, lambda k: index[k][0][index[k][1]][0], where, label, fix)


def load_textures(n: int | None = None, seed: int = 0) -> Tensor:
    """Textures, ATOM's DTD: all 5 640 images (partition 1's train, val and test lists together, ATOM
    App. B.1) through torchvision's ``DTD`` (``ROOT/dtd/dtd/``), at 3×32×32.

    ATOM App. B.1 says only that its OOD test images are 32×32; here each is resized (shorter side
    to 32, antialiased bilinear) and centre-cropped, the usual choice. ``n`` takes a seeded subset.
    """
    parts = [data._torchvision_dataset(
        "Textures", (f"dtd/dtd/labels/{split}1.txt",),
        lambda root, dl, _, split=split: DTD(root, split=split, partition=1, download=dl))
        for split in ("train", "val", "test")]
    fix = "delete dtd/ under the data root and copy it again"
    return _subset_of_datasets(parts, n, seed, "Textures", fix)


def load_places365(n: int | None = None, seed: int = 0) -> Tensor:
    """Places365's test split (small, 256×256 images; 328 500 of them) through torchvision's ``Places365``,
    at 3×32×32 (resized and centre-cropped as :func:`load_textures`). ATOM samples ``n=10000`` of them
    (App. B.1); ``n=None`` reads all, 4 GB as float.
    """
    ds = data._torchvision_dataset(
        "Places365", ("categories_places365.txt", "places365_test.txt", PLACES365_FIRST),
        lambda root, dl, verify: (Places365 if verify else _UnverifiedPlaces365)(
            root, split="test", small=True, download=dl))
    fix = "copy test_256/ (torchvision's test_256.tar) under the data root again"
    return _subset_of_datasets([ds], n, seed, "Places365", fix)


def load_ood(name: str, shape: tuple[int, int, int], n: int | None = None, seed: int = 0) -> Tensor:
    """OOD test set ``name`` (a key of :data:`OOD_SETS`) at ``shape``, float in [0, 1].

    The sets read here come at their own shape and are converted by :func:`convert` when ``shape``
    differs ("CIFAR-10 gray" is CIFAR-10's test split at :data:`GREY28`). The noises are drawn at
    ``shape``, 10 000 images unless ``n`` says (ODIN §4.2, ATOM App. B.1). Sets without a reader
    here raise ``ValueError`` saying where they are.
    """
    check_choice(name, list(OOD_SETS), "OOD set")
    shape = _paper_shape(shape)
    titles = {spec.title: spec.name for spec in IN_DISTRIBUTIONS.values()}
    if name in ("uniform noise", "gaussian noise"):
        make = noise.uniform_noise if name == "uniform noise" else noise.gaussian_noise
        return make(10000 if n is None else check_positive_int(n, "n"), seed, shape=shape)
    if name in ARCHIVES:
        x = load_archive(name, n, seed)
    elif name in ("Textures", "Places365"):
        x = (load_textures if name == "Textures" else load_places365)(n, seed)
    elif name in titles:
        x = load(titles[name], "test", n, seed)[0]
    elif name == "CIFAR-10 gray":
        x = convert(load("cifar10", "test", n, seed)[0], GREY28)
    elif name == "EMNIST letters":
        x = data._emnist_letters_test(10**9 if n is None else check_positive_int(n, "n"), seed)
    else:
        raise ValueError(f"no reader for OOD set {name!r} in oodlib.datasets: {OOD_SETS[name]}")
    return convert(x, shape)


def _paper_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """``shape`` checked to be one of the papers' shapes, :data:`GREY28` or :data:`COLOUR32`."""
    shape = tuple(int(s) for s in shape)
    if shape not in (GREY28, COLOUR32):
        raise ValueError(f"expected shape {GREY28} or {COLOUR32}, got {shape}")
    return shape  # type: ignore[return-value]


def in_distribution(name: str, profile: Profile) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_test, y_test)`` of in-distribution set ``name`` sized by ``profile``.

    Fashion-MNIST is :func:`oodlib.data.in_distribution` (unchanged). For the others the training
    set is a seeded subset of ``profile.train.train_size`` images, or the whole split when that is
    smaller (CIFAR's 50 000 against ``full``'s 60 000), and the test set the first
    ``profile.eval.test_size`` test images (all of them when there are fewer).
    """
    spec = IN_DISTRIBUTIONS[check_choice(name, list(IN_DISTRIBUTIONS), "in-distribution set")]
    if spec.name == "fashion_mnist":
        return data.in_distribution(profile)
    x, y = load(spec.name, "train")
    n_train = min(check_positive_int(profile.train.train_size, "profile.train.train_size"), len(x))
    keep = _pick(len(x), n_train, derive_seed(profile.seed, f"{spec.name} train subset"),
                 f"{spec.title} train")
    x_test, y_test = load(spec.name, "test")
    n_test = min(check_positive_int(profile.eval.test_size, "profile.eval.test_size"), len(x_test))
    return x[keep], y[keep], x_test[:n_test], y_test[:n_test]

