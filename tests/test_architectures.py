"""The seed papers' architectures (issue 26, item 2): sizes against the published ones, shapes, features.

Each big model is built once per module at the papers' input size (3×32×32, 10 classes) and run
on batches of 2, so the whole file stays fast on 2 CPU cores.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from oodlib import ibp, models

# name -> (published count, half the last published digit, exact count measured here at 3×32×32, K=10)
PUBLISHED = {
    # Huang et al. 2017, Table 2: DenseNet-BC (L=100, k=12) 0.8M
    "densenet_bc": (0.8e6, 0.05e6, 769_162),
    # Zagoruyko & Komodakis 2016, Tables 4-5: WRN-28-10 36.5M, WRN-40-4 8.9M, WRN-40-2 2.2M
    "wrn_28_10": (36.5e6, 0.05e6, 36_479_194),
    "wrn_40_4": (8.9e6, 0.05e6, 8_949_210),
    "wrn_40_2": (2.2e6, 0.05e6, 2_243_546),
    # He et al. 2016 ResNet-18 with the CIFAR stem: 11.2M (torchvision's 11,689,512 - 513,000 (1000-class
    # head) - 9,408 (7x7 RGB stem) + 5,130 (10-class head) + 1,728 (3x3 RGB stem))
    "resnet18": (11.2e6, 0.05e6, 11_173_962),
    # GOOD's XL model: the paper gives no count; summed by hand from the layer list in good_xl's docstring
    # (3,584 + 147,584 + 295,168 + 2 * 590,080 + 33,554,944 + 262,656 + 5,130)
    "good_xl": (35_449_226, 0, 35_449_226),
}
BATCH_NORM = {"densenet_bc", "wrn_28_10", "wrn_40_4", "wrn_40_2", "resnet18"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Batches of 2 through ~300 small ops: one thread is ~100x faster than two on a shared 2-core box
    (each op's parallel region waits for a core the other job holds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def paper_models() -> dict[str, nn.Sequential]:
    """Every architecture of PUBLISHED at 3×32×32 with 10 classes, in eval mode (built once)."""
    return {name: models.build(name, in_channels=3, image_size=32).eval() for name in PUBLISHED}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_is_the_published_one(paper_models, name):
    published, tol, measured = PUBLISHED[name]
    n = models.num_parameters(paper_models[name])
    assert n == measured, n
    assert abs(n - published) <= tol, (n, published)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_cifar_shapes_and_penultimate_features(paper_models, name):
    """(2, 3, 32, 32) -> (2, 10); ``model[:-1]`` is the 2-D input of the last Linear."""
    m = paper_models[name]
    assert isinstance(m, nn.Sequential) and isinstance(m[-1], nn.Linear)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        feats = m[:-1](x)
        out = m(x)
    assert feats.shape == (2, m[-1].in_features)
    assert out.shape == (2, 10)
    assert torch.allclose(m[-1](feats), out, atol=1e-5)
    has_bn = any(isinstance(layer, nn.BatchNorm2d) for layer in m.modules())
    assert has_bn == (name in BATCH_NORM)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_mnist_size_and_k_plus_one_head(name):
    """The defaults are the book's 1×28×28 images; ``num_classes=11`` gives ATOM's (K+1) head."""
    m = models.build(name, num_classes=11).eval()
    with torch.no_grad():
        assert m(torch.rand(2, 1, 28, 28)).shape == (2, 11)
    assert m[-1].out_features == 11


def test_penultimate_widths(paper_models):
    """342 = 150 + 16 * 12 (DenseNet-BC's last block), 64k for WRN-depth-k, 512 for ResNet-18 and GOOD."""
    widths = {
        "densenet_bc": 342,
        "wrn_28_10": 640,
        "wrn_40_4": 256,
        "wrn_40_2": 128,
        "resnet18": 512,
        "good_xl": 512,
    }
    for name, width in widths.items():
        assert paper_models[name][-1].in_features == width, name


def test_wide_resnet_family_and_dropout():
    m = models.build("wide_resnet", depth=16, widen_factor=2, dropout=0.3, in_channels=3, image_size=32)
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert sum(isinstance(layer, nn.Dropout) for layer in m.modules()) == 3 * 2  # (16 - 4) / 6 blocks x 3
    a = models.build("wrn_40_2", seed=1)
    b = models.build("wide_resnet", seed=1, depth=40, widen_factor=2)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_densenet_bc_other_sizes():
    """L=40 k=12: 3 blocks of 6 bottleneck layers; compression 1 keeps every channel (DenseNet-B)."""
    m = models.build("densenet_bc", depth=40, in_channels=3, image_size=32)
    assert m[-1].in_features == int((int((24 + 72) / 2) + 72) / 2) + 72
    assert models.build("densenet_bc", depth=40, compression=1.0)[-1].in_features == 24 + 3 * 72


def test_old_builders_take_cifar_inputs_and_keep_their_28x28_sizes():
    """small_cnn, lenet and good_l size their first Linear from ``image_size`` (default 28: unchanged)."""
    sizes = {
        "small_cnn": 320_938,
        "lenet": 3_274_634,
        "good_l": 13_257_290,
        "good_xl": 27_582_602,
        "resnet18": 11_172_810,
    }
    for name, n in sizes.items():
        assert models.num_parameters(models.build(name, seed=None)) == n, name
    for name in ("small_cnn", "lenet", "good_l"):
        m = models.build(name, in_channels=3, image_size=32)
        assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10), name
    assert models.build("lenet", image_size=32)[-3].in_features == 64 * 8 * 8


def test_ibp_certifies_good_xl(paper_models):
    """GOOD's XL model is an nn.Sequential of Conv2d / ReLU / Flatten / Linear: oodlib.ibp bounds it."""
    m = paper_models["good_xl"]
    assert ibp.supports(m)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        conf = torch.softmax(m(x), 1).max(1).values
    assert torch.allclose(ibp.certified_confidence(m, x, 0.0), conf, atol=1e-5)  # eps = 0: exact
    assert (ibp.certified_confidence(m, x, 0.01) >= conf - 1e-6).all()
    for name in sorted(BATCH_NORM):  # batch norm and residual blocks: not certifiable here
        assert not ibp.supports(paper_models[name]), name


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("wide_resnet", {"depth": 27, "widen_factor": 2}, r"expected depth as 6n \+ 4.*got 27"),
        ("wide_resnet", {"depth": 4, "widen_factor": 2}, r"expected depth as 6n \+ 4.*got 4"),
        ("wide_resnet", {"depth": 16, "widen_factor": 0}, "expected widen_factor as a positive int.*got 0"),
        ("wide_resnet", {"depth": 16, "widen_factor": 2.0}, "expected widen_factor as a positive integer"),
        ("wrn_40_2", {"dropout": 1.0}, r"expected dropout as a finite number in \[0, 1\), got 1.0"),
        ("densenet_bc", {"depth": 99}, r"expected depth as 6n \+ 4.*DenseNet-BC.*got 99"),
        ("densenet_bc", {"growth_rate": 0}, "expected growth_rate as a positive integer, got 0"),
        ("densenet_bc", {"compression": 0.0}, r"expected compression as a finite number in \(0, 1\], got 0"),
        ("densenet_bc", {"compression": 1.5}, r"expected compression .* got 1.5"),
        ("densenet_bc", {"image_size": 3}, "expected image_size as an integer >= 4, got 3"),
        ("good_xl", {"in_channels": 0}, "expected in_channels as a positive integer, got 0"),
        ("good_xl", {"image_size": 0}, "expected image_size as an integer >= 1, got 0"),
        ("wrn_28_10", {"image_size": 32.0}, "expected image_size as an integer >= 1, got 32.0"),
        ("resnet18", {"in_channels": -3}, "expected in_channels as a positive integer, got -3"),
        ("small_cnn", {"image_size": 0}, "expected image_size as an integer >= 1, got 0"),
        ("lenet", {"image_size": 2}, "expected image_size as an integer >= 4, got 2"),
        ("resnet18", {"width_scale": 0.0}, r"expected width_scale as a finite number in \(0, 1\], got 0.0"),
        ("wrn_40_2", {"width_scale": 2}, r"expected width_scale .* got 2"),
    ],
)
def test_bad_arguments_name_what_was_expected(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.build(name, **kwargs)


def test_registry_and_missing_family_arguments():
    for name in ("densenet_bc", "wide_resnet", "wrn_28_10", "wrn_40_4", "wrn_40_2", "good_xl", "resnet18"):
        assert name in models.ARCHITECTURES
    with pytest.raises(ValueError, match="num_classes"):
        models.build("densenet_bc", num_classes=0)
    with pytest.raises(TypeError, match="depth"):  # the WRN family has no default size
        models.build("wide_resnet")


@pytest.mark.parametrize("name", sorted(models.ARCHITECTURES))
def test_width_scale_keeps_every_layer_and_shrinks_the_channels(name):
    """smoke's networks (``train.width_scale``): the same layers in the same order, fewer parameters;
    at 1 the published network, identical weights under the same seed."""
    image = {"in_channels": 3, "image_size": 32}
    kwargs = {"toy_mlp": {}, "mlp": {"in_features": 3 * 32 * 32}}.get(name, image)
    if name == "wide_resnet":
        kwargs.update(depth=10, widen_factor=2)
    full, default = (models.build(name, **kwargs, width_scale=1.0), models.build(name, **kwargs))
    small = models.build(name, **kwargs, width_scale=0.125)
    assert [type(m) for m in small.modules()] == [type(m) for m in full.modules()]
    assert models.num_parameters(small) < models.num_parameters(full) / 8
    assert all(torch.equal(a, b) for a, b in zip(full.state_dict().values(), default.state_dict().values(),
                                                  strict=True))
    x = torch.rand(2, 2) if name == "toy_mlp" else torch.rand(2, 3, 32, 32)
    assert small.eval()(x).shape == (2, 10)
