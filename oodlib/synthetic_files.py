"""Small synthetic files in torchvision's on-disk formats, so ``full``'s loaders run offline.

The ``smoke`` profile runs ``full``'s code paths on CPU without network. Its OOD test sets are
read by the real torchvision classes (MNIST, EMNIST, CIFAR-10/100, SVHN) from files this
module writes, each in the format torchvision reads after a download:

* MNIST, EMNIST-letters: uncompressed idx files in ``<root>/<Class>/raw/`` (torchvision
  unpacks the ``.gz`` downloads there and reads only the unpacked files);
* CIFAR-10/100: the python pickles (a dict with ``data`` ``(N, 3072)`` uint8 and labels) and
  their meta file in ``cifar-10-batches-py/`` / ``cifar-100-python/``;
* SVHN: ``test_32x32.mat`` (MATLAB v5, ``X`` ``(32, 32, 3, N)`` uint8, ``y`` ``(N, 1)`` in 1..10).

The images are seeded random blobs, **not** the real sets: every number computed on them is a
test of the code path, not a result. :data:`MARKER` records in the data root which sets are
synthetic; :func:`oodlib.data.get_ood_set` then says so in the set's description, and reads
CIFAR/SVHN without torchvision's MD5 check (synthetic files cannot match the published sums).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from scipy.io import savemat  # scipy comes with scikit-learn; torchvision's SVHN reads it back

from .runtime import derive_seed, numpy_generator
from .validation import check_positive_int

MARKER = "SYNTHETIC-FILES.json"  #: in the data root: {"sets": [...], "images": n}
#: the sets written in their torchvision formats
SETS = ("MNIST", "EMNIST", "CIFAR-10", "CIFAR-100", "SVHN")


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


def _mnist_like(root: Path, n: int, seed: int) -> list[Path]:
    raw = root / "MNIST" / "raw"
    files = []
    for split in ("train", "t10k"):  # torchvision checks all four files, even for the test split
        x = _blobs(n, 28, 1, derive_seed(seed, f"MNIST {split}"))[..., 0]
        y = (np.arange(n) % 10).astype(np.uint8)
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


def _cifar(root: Path, n: int, seed: int, classes: int) -> list[Path]:
    x = _blobs(n, 32, 3, derive_seed(seed, f"CIFAR-{classes}")).transpose(0, 3, 1, 2).reshape(n, -1)
    labels = [int(i % classes) for i in range(n)]
    if classes == 10:
        folder, test, meta = root / "cifar-10-batches-py", "test_batch", "batches.meta"
        batch, names = {"data": x, "labels": labels}, {"label_names": [f"class{i}" for i in range(10)]}
    else:
        folder, test, meta = root / "cifar-100-python", "test", "meta"
        batch = {"data": x, "fine_labels": labels, "coarse_labels": [i % 20 for i in labels]}
        names = {"fine_label_names": [f"class{i}" for i in range(100)]}
    _write(folder / test, pickle.dumps(batch))  # the format torchvision reads (our own data)
    _write(folder / meta, pickle.dumps(names))
    return [folder / test, folder / meta]


def _svhn(root: Path, n: int, seed: int) -> list[Path]:
    x = _blobs(n, 32, 3, derive_seed(seed, "SVHN")).transpose(1, 2, 3, 0)  # (32, 32, 3, N)
    y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(-1, 1)  # SVHN labels 0 as 10
    path = root / "test_32x32.mat"
    tmp = path.with_name(path.name + ".partial.mat")
    root.mkdir(parents=True, exist_ok=True)
    savemat(tmp, {"X": x, "y": y})
    tmp.replace(path)
    return [path]


def write(root: str | Path, n: int = 300, seed: int = 0) -> list[Path]:
    """Write ``n`` synthetic test images of every set in :data:`SETS` under ``root``; return the files.

    Also writes :data:`MARKER`. Existing real files of these sets are overwritten, so point
    ``root`` at a folder of its own (e.g. the test cache), never at a real data root.
    """
    check_positive_int(n, "n")
    root = Path(root).expanduser()
    files = (_mnist_like(root, n, seed) + _emnist_letters(root, n, seed) + _cifar(root, n, seed, 10)
             + _cifar(root, n, seed, 100) + _svhn(root, n, seed))
    _write(root / MARKER, json.dumps({"sets": list(SETS), "images": n, "seed": seed}).encode())
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
