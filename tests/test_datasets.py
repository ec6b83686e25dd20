"""oodlib.datasets: the papers' in-distribution sets, conversions and archive readers, read offline.

Not mocked: :mod:`oodlib.synthetic_files` writes every layout (torchvision's files, ODIN's image
folders, OE's .npy, DTD, Places365) under a temporary ``OODLIB_DATA`` and the real readers read it.
"""

from __future__ import annotations

import gzip
import json
import math
import pickle
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from oodlib import data, datasets, synthetic_files, zoo

N_TEST, N_TRAIN = 12, 20
TORCHVISION_FILES = {  # in-distribution set -> a file its reader needs, per split
    ("mnist", "train"): "MNIST/raw/train-images-idx3-ubyte",
    ("mnist", "test"): "MNIST/raw/t10k-labels-idx1-ubyte",
    ("svhn", "train"): "train_32x32.mat",
    ("svhn", "test"): "test_32x32.mat",
    ("cifar10", "train"): "cifar-10-batches-py/data_batch_3",
    ("cifar10", "test"): "cifar-10-batches-py/test_batch",
    ("cifar100", "train"): "cifar-100-python/train",
    ("cifar100", "test"): "cifar-100-python/test",
}
PAPERS = {  # the seed papers' in-distribution sets (the brief, checked in the papers' texts)
    "ODIN": {"cifar10", "cifar100"},
    "ATOM": {"svhn", "cifar10", "cifar100"},
    "GOOD": {"mnist", "svhn", "cifar10"},
    "CCU": {"mnist", "fashion_mnist", "svhn", "cifar10", "cifar100"},
    "Hein": {"mnist", "svhn", "cifar10", "cifar100"},
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One synthetic data root with every layout (written once; tests that break files copy it)."""
    root = tmp_path_factory.mktemp("datasets_root")
    synthetic_files.write(root, n=N_TEST, seed=5, n_train=N_TRAIN, extra=True)
    return root


@pytest.fixture
def root(written, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(written))
    monkeypatch.delenv(data.DOWNLOAD_ENV, raising=False)
    return written


@pytest.fixture
def own_root(written, tmp_path, monkeypatch):
    """A private copy of the synthetic root, for tests that delete or break files."""
    copy = tmp_path / "data"
    shutil.copytree(written, copy)
    monkeypatch.setenv(data.DATA_ENV, str(copy))
    monkeypatch.delenv(data.DOWNLOAD_ENV, raising=False)
    return copy


# --- the registry ------------------------------------------------------------


def test_registry_is_consistent():
    assert set(datasets.IN_DISTRIBUTIONS) == {"mnist", "fashion_mnist", "svhn", "cifar10", "cifar100"}
    for name, spec in datasets.IN_DISTRIBUTIONS.items():
        assert spec.name == name and spec.shape in (datasets.GREY28, datasets.COLOUR32)
        assert len(spec.mean) == len(spec.std) == spec.shape[0]
        assert all(0 < m < 1 for m in spec.mean) and all(0 < s < 0.5 for s in spec.std)
        assert spec.classes is None or len(spec.classes) == spec.num_classes
        for use in spec.papers:
            assert use.ood_sets and set(use.ood_sets) <= set(datasets.OOD_SETS), (name, use.paper)
            assert spec.title not in use.ood_sets and use.where
    used = {paper: {n for n, s in datasets.IN_DISTRIBUTIONS.items()
                    if any(u.paper == paper for u in s.papers)} for paper in PAPERS}
    assert used == PAPERS
    assert datasets.IN_DISTRIBUTIONS["cifar100"].num_classes == 100
    named = {o for s in datasets.IN_DISTRIBUTIONS.values() for u in s.papers for o in u.ood_sets}
    assert named == set(datasets.OOD_SETS)  # every described set is some paper's


def test_papers_ood_sets():
    cifar10 = datasets.IN_DISTRIBUTIONS["cifar10"]
    assert cifar10.ood_sets("ODIN")[:5] == tuple(datasets.ARCHIVES)
    assert cifar10.ood_sets("ATOM")[:6] == ("SVHN", "Textures", "Places365", "LSUN (crop)", "LSUN (resize)",
                                            "iSUN")
    assert datasets.IN_DISTRIBUTIONS["svhn"].ood_sets("ATOM")[0] == "CIFAR-10"
    assert datasets.IN_DISTRIBUTIONS["mnist"].ood_sets("GOOD") == (
        "Fashion-MNIST", "EMNIST letters", "CIFAR-10 gray", "uniform noise")
    with pytest.raises(ValueError, match="unknown paper using CIFAR-10 'GOOD2'"):
        cifar10.ood_sets("GOOD2")


# --- in-distribution sets ----------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "svhn", "cifar10", "cifar100"])
@pytest.mark.parametrize("split", datasets.SPLITS)
def test_each_set_loads_at_its_shape_with_its_classes(root, name, split):
    spec = datasets.IN_DISTRIBUTIONS[name]
    x, y = datasets.load(name, split)
    assert x.shape == (N_TRAIN if split == "train" else N_TEST, *spec.shape) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.std()) > 0.05
    assert x.stride() == torch.empty(x.shape).stride()  # NCHW, whatever order torchvision's array has
    assert y.dtype == torch.int64 and 0 <= int(y.min()) and int(y.max()) < spec.num_classes
    assert len(datasets.class_names(name)) == spec.num_classes


def test_labels_and_pixels_are_the_written_ones(root):
    with open(root / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        batch = pickle.load(f)  # our own synthetic file
    x, y = datasets.load("cifar10", "train")
    first = torch.as_tensor(batch["data"]).view(-1, 3, 32, 32)
    assert torch.equal(x[: len(first)].mul(255).round().to(torch.uint8), first)
    assert y[: len(first)].tolist() == batch["labels"]
    assert datasets.load("svhn", "test")[1][:10].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]  # 10 -> 0
    assert datasets.class_names("cifar100")[:2] == ("class0", "class1")  # read from the meta file
    assert datasets.class_names("mnist")[0] == "0 - zero" and datasets.class_names("svhn")[0] == "0"


def test_fashion_mnist_keeps_its_reader(tmp_path, monkeypatch):
    debian = tmp_path / "debian"  # synthetic gzipped idx files where Debian's package puts them
    debian.mkdir()
    for stem, m in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = np.random.default_rng(0).integers(0, 256, (m, 28, 28), dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", np.arange(m, dtype=np.uint8) % 10)):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
            (debian / f"{stem}-{kind}-ubyte.gz").write_bytes(gzip.compress(header + array.tobytes()))
    monkeypatch.setattr(data, "DEBIAN_FMNIST", debian)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "root"))
    for split, m in (("train", N_TRAIN), ("test", N_TEST)):
        x, y = datasets.load("fashion_mnist", split)
        assert x.shape == (m, 1, 28, 28) and y.dtype == torch.int64
        assert torch.equal(x, data.load_fashion_mnist(split)[0])
    assert datasets.class_names("fashion_mnist")[0] == "T-shirt/top"


def test_subsets_are_seeded_and_reproducible(root):
    x, y = datasets.load("cifar100", "train")
    a, ya = datasets.load("cifar100", "train", n=7, seed=3)
    b, yb = datasets.load("cifar100", "train", n=7, seed=3)
    assert torch.equal(a, b) and torch.equal(ya, yb) and a.shape == (7, 3, 32, 32)
    assert not torch.equal(a, datasets.load("cifar100", "train", n=7, seed=4)[0])
    rows = [next(i for i in range(len(x)) if torch.equal(x[i], img)) for img in a]
    assert rows == sorted(rows) and torch.equal(y[rows], ya)  # a subset, in the file's order
    with pytest.raises(ValueError, match=f"expected n <= {N_TRAIN}"):
        datasets.load("cifar100", "train", n=N_TRAIN + 1)
    with pytest.raises(ValueError, match="unknown in-distribution set 'cifar'"):
        datasets.load("cifar", "train")
    with pytest.raises(ValueError, match="unknown SVHN split 'extra'"):
        datasets.load("svhn", "extra")


@pytest.mark.parametrize(("name", "split"), list(TORCHVISION_FILES))
def test_a_missing_file_names_itself_and_the_fix(own_root, name, split):
    (own_root / TORCHVISION_FILES[name, split]).unlink()
    message = re.escape(TORCHVISION_FILES[name, split]) + ".*OODLIB_DOWNLOAD=1"
    with pytest.raises(FileNotFoundError, match=message):
        datasets.load(name, split)


@pytest.mark.parametrize(("name", "split"), list(TORCHVISION_FILES))
def test_a_truncated_file_is_called_corrupt(own_root, name, split):
    path = own_root / TORCHVISION_FILES[name, split]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(ValueError, match="corrupt or incomplete.*delete"):
        datasets.load(name, split)


def test_real_files_are_md5_checked(own_root):
    (own_root / synthetic_files.MARKER).unlink()
    for name in ("svhn", "cifar10"):
        with pytest.raises(ValueError, match="corrupt or incomplete"):
            datasets.load(name, "train")
    with pytest.raises(ValueError, match="corrupt or incomplete"):
        datasets.load_places365(n=2)


# --- conversions -------------------------------------------------------------


def _smooth(n: int, channels: int, side: int) -> torch.Tensor:
    """Plane waves of at most two periods per image, in [0.1, 0.9]."""
    f = torch.rand(n, channels, 3, 1, 1, generator=torch.Generator().manual_seed(0)) * 2
    yy, xx = torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="ij")
    return 0.5 + 0.4 * torch.sin(2 * math.pi * (f[:, :, 0] * yy + f[:, :, 1] * xx) + 6 * f[:, :, 2])


def test_convert_both_directions():
    colour, grey = _smooth(5, 3, 32), _smooth(5, 1, 28)
    g = datasets.convert(colour, datasets.GREY28)
    assert g.shape == (5, 1, 28, 28) and 0 <= float(g.min()) and float(g.max()) <= 1
    assert torch.allclose(g, data._gray28(colour.mul(255)), atol=1e-6)  # the existing conversion
    c = datasets.convert(grey, datasets.COLOUR32)
    assert c.shape == (5, 3, 32, 32) and 0 <= float(c.min()) and float(c.max()) <= 1
    assert torch.equal(c[:, 0], c[:, 1]) and torch.equal(c[:, 1], c[:, 2])
    back = datasets.convert(c, datasets.GREY28)
    error = (back - grey).abs()  # grey -> colour -> grey: nearly the identity on smooth images
    assert float(error.mean()) < 0.01 and float(error.max()) < 0.05
    same = datasets.convert(grey, (1, 28, 28))
    assert torch.equal(same, grey) and same is not grey
    with pytest.raises(ValueError, match=r"expected shape \(1, 28, 28\) or \(3, 32, 32\)"):
        datasets.convert(grey, (3, 28, 28))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        datasets.convert(grey * 2, datasets.COLOUR32)


# --- the OOD sets outside torchvision, DTD and Places365 ------------------------------------------


@pytest.mark.parametrize("name", list(datasets.ARCHIVES))
def test_each_archive_folder_is_read(root, name):
    folder = datasets.ARCHIVES[name].folder
    inner = root / folder / dict(synthetic_files.ODIN_FOLDERS)[folder]  # as the archive unpacks
    x = datasets.load_archive(name)
    assert x.shape == (N_TEST, 3, 32, 32) and x.dtype == torch.float32
    first = np.array(Image.open(sorted(inner.iterdir())[0]))
    assert torch.equal(x[0].mul(255).round().to(torch.uint8), torch.from_numpy(first).permute(2, 0, 1))
    assert torch.equal(datasets.load_archive(name, n=4, seed=1), datasets.load_archive(name, n=4, seed=1))


def test_random_300k(root):
    written = np.load(root / datasets.RANDOM_300K)
    x = datasets.load_random_300k()
    assert x.shape == (N_TEST, 3, 32, 32)
    assert torch.equal(x.mul(255).round().to(torch.uint8), torch.from_numpy(written).permute(0, 3, 1, 2))
    assert torch.equal(datasets.load_random_300k(n=5, seed=2), datasets.load_random_300k(n=5, seed=2))


def test_textures_and_places365(root):
    x = datasets.load_textures()
    assert x.shape == (N_TEST, 3, 32, 32) and float(x.std()) > 0.05  # all three lists, 48x40 -> 32x32
    p = datasets.load_places365(n=5, seed=1)
    assert p.shape == (5, 3, 32, 32) and torch.equal(p, datasets.load_places365(n=5, seed=1))


def test_every_ood_set_is_read_or_says_where_it_is(root):
    for name in datasets.OOD_SETS:
        if name in ("smooth noise", "LSUN classroom", "ImageNet-"):
            with pytest.raises(ValueError, match="no reader"):
                datasets.load_ood(name, datasets.COLOUR32, n=3)
            continue
        for shape in (datasets.GREY28, datasets.COLOUR32):
            x = datasets.load_ood(name, shape, n=3, seed=1)
            assert x.shape == (3, *shape) and 0 <= float(x.min()) and float(x.max()) <= 1, name
            assert x.stride() == torch.empty(x.shape).stride(), name  # NCHW
    assert torch.equal(datasets.load_ood("CIFAR-10 gray", datasets.GREY28, n=3),
                       datasets.convert(datasets.load("cifar10", "test", n=3)[0], datasets.GREY28))


@pytest.mark.parametrize("name", list(datasets.ARCHIVES))
def test_a_missing_archive_folder_names_the_layout_and_the_source(own_root, name):
    folder = datasets.ARCHIVES[name].folder
    shutil.rmtree(own_root / folder)
    message = (f"{re.escape(str(own_root / folder))}/ not found.*{folder}/<subfolder>/.*"
               f"{re.escape(datasets.ODIN_README)}.*tar -xzf {folder}.tar.gz")
    with pytest.raises(FileNotFoundError, match=message):
        datasets.load_archive(name)
    (own_root / folder).mkdir()
    with pytest.raises(FileNotFoundError, match="holds no images"):
        datasets.load_archive(name)


def test_a_corrupt_archive_image_is_named(own_root):
    path = sorted((own_root / "iSUN" / "iSUN_patches").iterdir())[0]
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=f"iSUN: the image {re.escape(str(path))} is corrupt.*unpack iSUN"):
        datasets.load_archive("iSUN")
    path = sorted((own_root / "test_256").iterdir())[1]
    path.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=f"Places365: the image {re.escape(str(path))} is corrupt"):
        datasets.load_places365()


def test_random_300k_errors(own_root):
    path = own_root / datasets.RANDOM_300K
    good = path.read_bytes()
    path.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(path)) + ".*" + re.escape(datasets.OE_README)):
        datasets.load_random_300k()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt or not a plain .npy"):
        datasets.load_random_300k()
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)  # a pickle is never loaded
    with pytest.raises(ValueError, match="corrupt or not a plain .npy"):
        datasets.load_random_300k()
    np.save(path, np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"expected .* to hold \(N, 32, 32, 3\) uint8"):
        datasets.load_random_300k()


def test_textures_and_places365_errors(own_root):
    path = next((own_root / "dtd" / "dtd" / "images" / "class1").iterdir())
    path.unlink()
    with pytest.raises(FileNotFoundError, match=f"Textures: the image {re.escape(str(path))} is missing"):
        datasets.load_ood("Textures", datasets.COLOUR32)  # the lists still name it
    (own_root / "dtd" / "dtd" / "labels" / "val1.txt").unlink()
    with pytest.raises(FileNotFoundError, match="Textures not found.*labels/val1.txt.*OODLIB_DOWNLOAD"):
        datasets.load_textures()
    (own_root / datasets.PLACES365_FIRST).unlink()
    with pytest.raises(FileNotFoundError, match="Places365 not found.*Places365_test_00000001.jpg"):
        datasets.load_places365(n=2)


# --- the synthetic files ---------------------------------------------------------------------------


def test_write_keeps_its_default_and_records_what_it_adds(tmp_path):
    files = synthetic_files.write(tmp_path, n=6)
    assert not (tmp_path / "train_32x32.mat").exists() and not (tmp_path / "Imagenet").exists()
    assert json.loads((tmp_path / synthetic_files.MARKER).read_text()) == {
        "sets": list(synthetic_files.SETS), "images": 6, "seed": 0}
    more = synthetic_files.write(tmp_path, n=6, n_train=8, extra=True)
    assert set(files) < set(more)
    assert synthetic_files.synthetic_sets(tmp_path) == set(synthetic_files.SETS + synthetic_files.EXTRA_SETS)
    synthetic_files.write(tmp_path, n=6)  # a later plain call keeps the sets an earlier one recorded
    assert synthetic_files.synthetic_sets(tmp_path) == set(synthetic_files.SETS + synthetic_files.EXTRA_SETS)
    with pytest.raises(ValueError, match="n_train as a positive integer"):
        synthetic_files.write(tmp_path, n=6, n_train=-1)


# --- the zoo on the papers' sets ----------------------------------------------


@pytest.mark.parametrize("name, arch", [("cifar10", "small_cnn"), ("svhn", "mlp"), ("mnist", "lenet")])
def test_the_zoo_trains_on_a_papers_set_at_its_own_shape(root, zoo_cache, tiny_profile, name, arch):
    spec = datasets.IN_DISTRIBUTIONS[name]
    entry = zoo.load_or_train("plain", dataset=name, arch=arch,
                              profile=tiny_profile.replace(train={"train_size": N_TRAIN}))
    x, _, x_test, _ = datasets.in_distribution(name, tiny_profile)
    assert x.shape[1:] == spec.shape and len(x) == N_TRAIN  # the whole (synthetic) split: fewer than asked
    assert len(x_test) == min(tiny_profile.eval.test_size, N_TEST)
    assert entry.model(x_test[:2].to(next(entry.model.parameters()).device)).shape == (2, spec.num_classes)
    assert entry.record["config"]["dataset"] == name and 0.0 <= entry.record["test_error"] <= 1.0


def test_outlier_methods_name_the_missing_pool(root, zoo_cache, tiny_profile):
    with pytest.raises(ValueError, match="train.pool 'random_300k' or 'folder' for 'cifar10'"):
        zoo.load_or_train("oe", dataset="cifar10", profile=tiny_profile)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        zoo.make_config("plain", "imagenet", tiny_profile)
