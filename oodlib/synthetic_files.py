"""Small synthetic files in torchvision's on-disk formats, so ``full``'s loaders run offline.

The ``smoke`` profile runs ``full``'s code paths on CPU without network. Its OOD test sets are
read by the real torchvision classes (MNIST, EMNIST, CIFAR-10/100, SVHN) from files this
module writes, each in the format torchvision reads after a download:

* MNIST, EMNIST-letters: uncompressed idx files in ``<root>/<Class>/raw/`` (torchvision
  unpacks the ``.gz`` downloads there and reads only the unpacked files);
* CIFAR-10/100: the python pickles (a dict with ``data`` ``(N, 3072)`` uint8 and labels) and
  their meta file in ``cifar-10-batches-py/`` / ``cifar-100-python/``;
* SVHN: ``test_32x32.mat`` (MATLAB v5, ``X`` ``(32, 32, 3, N)`` uint8, ``y`` ``(N, 1)`` in 1..10).

Asked for, :func:`write` also writes what :mod:`oodlib.datasets` reads, so each of its readers is
tested offline:

* ``n_train``: the **train** splits of the in-distribution sets in :data:`TRAIN_SETS` (MNIST's
  ``train-*`` idx files, SVHN's ``train_32x32.mat``, CIFAR-10's ``data_batch_1..5``, CIFAR-100's
  ``train``), beside the test splits above. Fashion-MNIST is never written: ``data.in_distribution``
  reads it from the same root and would not know it was synthetic;
* ``extra``: the OOD sets of :data:`EXTRA_SETS`: ODIN's image folders (``Imagenet/test/``,
  ``Imagenet_resize/Imagenet_resize/``, ``LSUN/test/``, ``LSUN_resize/LSUN_resize/``,
  ``iSUN/iSUN_patches/``: 32×32 PNGs), Outlier Exposure's ``300K_random_images.npy`` (``(n, 32, 32,
  3)`` uint8), DTD for Textures (``dtd/dtd/images/<class>/*.jpg`` and the lists
  ``dtd/dtd/labels/{train,val,test}1.txt``) and Places365's small test split
  (``categories_places365.txt``, ``places365_test.txt``, ``test_256/*.jpg``), the last two larger
  than 32×32 and not square, so the resize-and-crop path runs.

The images are seeded random blobs, **not** the real sets: every number computed on them is a
test of the code path, not a result. :data:`MARKER` records in the data root which sets are
synthetic; :func:`oodlib.data.get_ood_set` then says so in the set's description, and reads
CIFAR/SVHN without torchvision's MD5 check (synthetic files cannot match the published sums).
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat  # scipy comes with scikit-learn; torchvision's SVHN reads it back

from .runtime import derive_seed, numpy_generator
from .validation import check_positive_int

MARKER = "SYNTHETIC-FILES.json"  #: in the data root: {"sets": [...], "images": n}
#: the sets written in their torchvision formats
SETS = ("MNIST", "EMNIST", "CIFAR-10", "CIFAR-100", "SVHN")
#: the in-distribution sets whose train split ``write(..., n_train=...)`` adds
TRAIN_SETS = ("MNIST", "SVHN", "CIFAR-10", "CIFAR-100")
#: ODIN's archives as they unpack: (folder under the root, the folder inside holding the images)
ODIN_FOLDERS = (("Imagenet", "test"), ("Imagenet_resize", "Imagenet_resize"), ("LSUN", "test"),
                ("LSUN_resize", "LSUN_resize"), ("iSUN", "iSUN_patches"))
RANDOM_300K = "300K_random_images.npy"  #: Outlier Exposure's array, in the root
#: the sets ``write(..., extra=True)`` adds (names as :data:`MARKER` records them)
EXTRA_SETS = (*(folder for folder, _ in ODIN_FOLDERS), "300K_random_images", "Textures", "Places365")


def _blobs(n: int, side: int, channels: int, seed: int) -> np.ndarray:
    """``n`` uint8 images ``(n, side, side, channels)``: a few random Gaussian blobs on a dark field."""
    rng = numpy_generator(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    img = np.zeros((n, side, side, channels), np.float32)
    for _ in range(3):
        cy, cx = rng.uniform(4, side - 4, (2, n, 1, 1)).astype(np.float32)
        width = rng.uniform(1.5, side / 5, (n, 1, 1)).astype(np.float32)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
        img += blob[..., None] * rng.uniform(0.3, 1.0, (n, 1, 1, channels)).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _idx(array: np.ndarray) -> bytes:
    """``array`` (uint8, 1-D labels or 3-D images) as an idx file (big-endian dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _write(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(blob)
    tmp.replace(path)


def _mnist_like(root: Path, n: int, seed: int, n_train: int) -> list[Path]:
    raw = root / "MNIST" / "raw"
    files = []
    for split, m in (("train", n_train), ("t10k", n)):  # torchvision checks all four files, even for test
        x = _blobs(m, 28, 1, derive_seed(seed, f"MNIST {split}"))[..., 0]
        y = (np.arange(m) % 10).astype(np.uint8)
        files += [raw / f"{split}-images-idx3-ubyte", raw / f"{split}-labels-idx1-ubyte"]
        _write(files[-2], _idx(x))
        _write(files[-1], _idx(y))
    return files


def _emnist_letters(root: Path, n: int, seed: int) -> list[Path]:
    raw = root / "EMNIST" / "raw"
    x = _blobs(n, 28, 1, derive_seed(seed, "EMNIST"))[..., 0]
    y = (np.arange(n) % 26 + 1).astype(np.uint8)  # letters are labelled 1..26
    files = [raw / "emnist-letters-test-images-idx3-ubyte", raw / "emnist-letters-test-labels-idx1-ubyte"]
    _write(files[0], _idx(x))
    _write(files[1], _idx(y))
    return files


def _cifar_batch(x: np.ndarray, classes: int) -> dict:
    """A CIFAR pickle's dict for images ``(n, 32, 32, 3)``: rows of 3072 bytes (R, G, B planes), labels."""
    labels = [int(i % classes) for i in range(len(x))]
    data = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    if classes == 10:
        return {"data": data, "labels": labels}
    return {"data": data, "fine_labels": labels, "coarse_labels": [i % 20 for i in labels]}


def _cifar(root: Path, n: int, seed: int, classes: int, n_train: int = 0) -> list[Path]:
    x = _blobs(n, 32, 3, derive_seed(seed, f"CIFAR-{classes}"))
    if classes == 10:
        folder, test, meta = root / "cifar-10-batches-py", "test_batch", "batches.meta"
        names = {"label_names": [f"class{i}" for i in range(10)]}
        train = [f"data_batch_{i}" for i in range(1, 6)]
    else:
        folder, test, meta = root / "cifar-100-python", "test", "meta"
        names = {"fine_label_names": [f"class{i}" for i in range(100)]}
        train = ["train"]
    _write(folder / test, pickle.dumps(_cifar_batch(x, classes)))  # the format torchvision reads (our data)
    _write(folder / meta, pickle.dumps(names))
    files = [folder / test, folder / meta]
    if n_train:
        x = _blobs(n_train, 32, 3, derive_seed(seed, f"CIFAR-{classes} train"))
        for name, part in zip(train, np.array_split(x, len(train)), strict=True):
            _write(folder / name, pickle.dumps(_cifar_batch(part, classes)))
            files.append(folder / name)
    return files


def _svhn(root: Path, n: int, seed: int, split: str = "test") -> list[Path]:
    name = "SVHN" if split == "test" else f"SVHN {split}"
    x = _blobs(n, 32, 3, derive_seed(seed, name)).transpose(1, 2, 3, 0)  # (32, 32, 3, N)
    y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(-1, 1)  # SVHN labels 0 as 10
    path = root / f"{split}_32x32.mat"
    tmp = path.with_name(path.name + ".partial.mat")
    root.mkdir(parents=True, exist_ok=True)
    savemat(tmp, {"X": x, "y": y})
    tmp.replace(path)
    return [path]


def _image(array: np.ndarray, fmt: str) -> bytes:
    """One uint8 image ``(H, W, 3)`` as ``fmt`` bytes (``"PNG"``: lossless; ``"JPEG"``: as the real sets)."""
    out = io.BytesIO()
    Image.fromarray(array).save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def _odin_folders(root: Path, n: int, seed: int) -> list[Path]:
    files = []
    for folder, inner in ODIN_FOLDERS:
        for i, img in enumerate(_blobs(n, 32, 3, derive_seed(seed, folder))):
            files.append(root / folder / inner / f"{i:05d}.png")
            _write(files[-1], _image(img, "PNG"))
    return files


def _random_300k(root: Path, n: int, seed: int) -> list[Path]:
    buffer = io.BytesIO()
    np.save(buffer, _blobs(n, 32, 3, derive_seed(seed, "300K_random_images")), allow_pickle=False)
    _write(root / RANDOM_300K, buffer.getvalue())
    return [root / RANDOM_300K]


def _textures(root: Path, n: int, seed: int) -> list[Path]:
    """DTD's layout: images by class, and partition 1's train / val / test lists (every image in one)."""
    base = root / "dtd" / "dtd"
    images = _blobs(n, 48, 3, derive_seed(seed, "Textures"))[:, :, 4:44]  # 48 x 40, not square
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    files = []
    for i, img in enumerate(images):
        cls = f"class{i % 3}"
        files.append(base / "images" / cls / f"{cls}_{i:04d}.jpg")
        _write(files[-1], _image(img, "JPEG"))
        lines[("train", "val", "test")[i % 3]].append(f"{cls}/{files[-1].name}")
    for split, rows in lines.items():
        files.append(base / "labels" / f"{split}1.txt")
        _write(files[-1], "".join(f"{row}\n" for row in rows).encode())
    return files


def _places365(root: Path, n: int, seed: int) -> list[Path]:
    """Places365's small test split: its category and file lists, and ``test_256/`` (here 40 x 56)."""
    files = [root / "categories_places365.txt", root / "places365_test.txt"]
    _write(files[0], "".join(f"/c/class{i} {i}\n" for i in range(3)).encode())
    names = [f"Places365_test_{i:08d}.jpg" for i in range(1, n + 1)]
    _write(files[1], "".join(f"{name}\n" for name in names).encode())  # the test list has no labels
    for name, img in zip(names, _blobs(n, 56, 3, derive_seed(seed, "Places365"))[:, 8:48], strict=True):
        files.append(root / "test_256" / name)
        _write(files[-1], _image(img, "JPEG"))
    return files


def write(root: str | Path, n: int = 300, seed: int = 0, n_train: int = 0, extra: bool = False) -> list[Path]:
    """Write ``n`` synthetic test images of every set in :data:`SETS` under ``root``; return the files.

    ``n_train > 0`` also writes ``n_train`` training images of each set in :data:`TRAIN_SETS` (MNIST's
    training idx files hold ``n`` images otherwise); ``extra`` also writes ``n`` images of each set in
    :data:`EXTRA_SETS`. Also writes :data:`MARKER`, keeping the sets an earlier call recorded there.
    Existing real files of these sets are overwritten, so point ``root`` at a folder of its own (e.g. the
    test cache), never at a real data root.
    """
    check_positive_int(n, "n")
    if n_train:
        check_positive_int(n_train, "n_train")
    root = Path(root).expanduser()
    try:
        earlier = synthetic_sets(root)
    except ValueError:  # an unreadable marker is overwritten, as before
        earlier = frozenset()
    files = (_mnist_like(root, n, seed, n_train or n) + _emnist_letters(root, n, seed)
             + _cifar(root, n, seed, 10, n_train) + _cifar(root, n, seed, 100, n_train)
             + _svhn(root, n, seed))
    if n_train:
        files += _svhn(root, n_train, seed, "train")
    if extra:
        files += (_odin_folders(root, n, seed) + _random_300k(root, n, seed) + _textures(root, n, seed)
                  + _places365(root, n, seed))
    written = [*SETS, *(EXTRA_SETS if extra else ())]
    marker = {"sets": written + sorted(earlier - set(written)), "images": n, "seed": seed}
    if n_train:
        marker["train_images"] = n_train
    _write(root / MARKER, json.dumps(marker).encode())
    return files


def synthetic_sets(root: str | Path) -> frozenset[str]:
    """The sets :func:`write` left synthetic under ``root`` (empty when there is no marker)."""
    path = Path(root) / MARKER
    if not path.is_file():
        return frozenset()
    try:
        return frozenset(json.loads(path.read_text())["sets"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"expected {path} to be the JSON written by oodlib.synthetic_files.write, "
                         f"got unreadable content ({err})") from err
