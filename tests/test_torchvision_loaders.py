"""The ``full`` profile's torchvision loaders, read offline from files in each set's on-disk format.

Not mocked: :mod:`oodlib.synthetic_files` writes idx files, CIFAR pickles and SVHN's ``.mat``
under a temporary ``OODLIB_DATA``, and the real torchvision classes read them.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from oodlib import data, profiles, synthetic_files

TORCHVISION_SETS = {  # registry name -> a file its reader needs
    "MNIST": "MNIST/raw/t10k-images-idx3-ubyte",
    "EMNIST letters": "EMNIST/raw/emnist-letters-test-images-idx3-ubyte",
    "CIFAR-10 gray": "cifar-10-batches-py/test_batch",
    "CIFAR-100 gray": "cifar-100-python/test",
    "SVHN gray": "test_32x32.mat",
}
PROFILE = profiles.SMOKE.replace(eval={"ood_size": 20})


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    monkeypatch.delenv(data.DOWNLOAD_ENV, raising=False)
    synthetic_files.write(tmp_path, n=40, seed=3)
    return tmp_path


@pytest.mark.parametrize("name", list(TORCHVISION_SETS))
def test_each_set_is_read_by_torchvision_from_its_files(root, name):
    s = data.get_ood_set(name, PROFILE)
    assert s.x.shape == (20, 1, 28, 28) and s.x.dtype == torch.float32
    assert 0.0 <= float(s.x.min()) and float(s.x.max()) <= 1.0 and float(s.x.std()) > 0.05
    assert "SYNTHETIC" in s.description and "torchvision" in s.description


def test_the_images_are_the_written_ones(root):
    from torchvision.datasets import MNIST

    written = MNIST(str(root), train=False).data  # the file as torchvision parses it
    got = data.get_ood_set("MNIST", PROFILE.replace(eval={"ood_size": 40})).x
    assert torch.equal(got.mul(255).round().to(torch.uint8).flatten(1).sort(0).values,
                       written.flatten(1).sort(0).values)


def test_emnist_letters_are_shown_upright(root):
    from torchvision.datasets import EMNIST

    stored = EMNIST(str(root), split="letters", train=False).data  # torchvision: transposed images
    got = data.get_ood_set("EMNIST letters", PROFILE.replace(eval={"ood_size": 40})).x[:, 0]
    as_bytes = got.mul(255).round().to(torch.uint8)
    assert any(torch.equal(as_bytes[0], img.T) for img in stored)
    assert not any(torch.equal(as_bytes[0], img) for img in stored)


@pytest.mark.parametrize("name", list(TORCHVISION_SETS))
def test_a_removed_file_names_the_fix(root, name):
    (root / TORCHVISION_SETS[name]).unlink()
    with pytest.raises(FileNotFoundError, match="OODLIB_DOWNLOAD=1.*copy the files"):
        data.get_ood_set(name, PROFILE)


@pytest.mark.parametrize("name", list(TORCHVISION_SETS))
def test_a_truncated_file_is_called_corrupt(root, name):
    path = root / TORCHVISION_SETS[name]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(ValueError, match="corrupt or incomplete"):
        data.get_ood_set(name, PROFILE)


def test_real_files_are_md5_checked(root):
    # Without the synthetic marker the files must match torchvision's published MD5 sums.
    (root / synthetic_files.MARKER).unlink()
    with pytest.raises(ValueError, match="corrupt or incomplete"):
        data.get_ood_set("CIFAR-10 gray", PROFILE)
    with pytest.raises(ValueError, match="corrupt or incomplete"):
        data.get_ood_set("SVHN gray", PROFILE)
    assert "SYNTHETIC" not in data.get_ood_set("MNIST", PROFILE).description  # idx: no sums to check


def test_smoke_and_full_list_the_torchvision_sets(root):
    x_in = torch.rand(50, 1, 28, 28)
    sets = data.ood_sets(PROFILE, in_train_x=x_in)
    assert set(TORCHVISION_SETS) <= set(sets)
    ci_sets = data.ood_sets(profiles.CI.replace(eval={"ood_size": 20}), in_train_x=x_in)
    assert not set(TORCHVISION_SETS) - {"MNIST"} & set(ci_sets)
    assert "SYNTHETIC" not in ci_sets["MNIST"].description


def test_missing_sets_can_be_skipped(root):
    shutil.rmtree(root / "cifar-100-python")
    sets = data.ood_sets(PROFILE, in_train_x=torch.rand(50, 1, 28, 28), skip_missing=True)
    assert "CIFAR-100 gray" not in sets and "CIFAR-10 gray" in sets
    with pytest.raises(FileNotFoundError, match="CIFAR-100"):
        data.ood_sets(PROFILE, in_train_x=torch.rand(50, 1, 28, 28))


def test_marker_must_be_readable(tmp_path):
    (tmp_path / synthetic_files.MARKER).write_text("not json")
    with pytest.raises(ValueError, match="JSON written by"):
        synthetic_files.synthetic_sets(tmp_path)
    assert synthetic_files.synthetic_sets(tmp_path / "nowhere") == frozenset()
