"""Model architectures used in the book and in its five seed papers.

Every image builder takes ``in_channels`` and ``image_size`` (a square side). The defaults,
``in_channels=1, image_size=28``, are the book's (Fashion-)MNIST images in [0, 1]; the papers'
SVHN / CIFAR models take ``in_channels=3, image_size=32``. Every builder returns an
``nn.Sequential`` whose last module is the final ``nn.Linear``, so ``model[:-1]`` gives the
penultimate features (the Mahalanobis detector, ATOM's (K+1) head), and ``num_classes`` is a
parameter so the (K+1)-output heads of ATOM use the same builders. Every builder also takes
``width_scale`` in (0, 1]: every channel count (and hidden width) times it, at least 1; ``1`` is the
published network, the ``smoke`` profile builds each with all its layers and an eighth of its width.

Without batch norm: these can be certified with interval bound propagation (Bitterwolf et al.
2020, :mod:`oodlib.ibp`, docs/design.md, pitfall 5) and behave the same in train and eval mode
during attacks.

* ``small_cnn`` — ~0.33M parameters, the ``ci`` workhorse (a 60k Fashion-MNIST epoch in ~9 s on
  2 CPU cores).
* ``lenet`` — the LeNet of Madry et al. (2018) used by Hein et al. 2019 (App. F) and Meinke &
  Hein 2020 (§4) on MNIST (~3.3M parameters).
* ``good_l`` — the "large" IBP CNN of Gowal et al. (2018): GOOD's MNIST model (Bitterwolf et al.
  2020, §4.1 and App. Table 2; ~13.3M parameters at 1×28×28).
* ``good_xl`` — GOOD's "similar but deeper and wider model" for SVHN and CIFAR-10 (Bitterwolf et
  al. 2020, §4.1 and App. Table 2; ``XL`` in the authors' scripts): 35,449,226 parameters at
  3×32×32 with 10 classes. The paper gives no count; this one is summed from the layer list.
* ``mlp`` — 784-256-256-K.
* ``toy_mlp`` — a ReLU MLP on 2-D inputs for the toy figures of chapters 01 and 04.

With batch norm (not for IBP; attack them in eval mode). Published sizes are for 3×32×32 inputs
and 10 classes:

* ``resnet18`` — ResNet-18 (He et al. 2016; torchvision's blocks) with the CIFAR stem, a 3×3
  stride-1 convolution without max-pooling: CCU's network for Fashion-MNIST, SVHN, CIFAR-10 and
  CIFAR-100 ("LeNet on MNIST and a Resnet18 otherwise", Meinke & Hein 2020 §4) and Hein et al.
  2019's "ResNet architecture" for SVHN, CIFAR-10 and CIFAR-100 (App. F; the depth is not named
  there). 11,173,962 parameters (11.2M).
* ``densenet_bc`` — DenseNet-BC (Huang et al. 2017, §3), L=100, k=12 by default: ODIN's main
  network on CIFAR-10 / CIFAR-100 (Liang et al. 2018, §4.1) and ATOM's on SVHN, CIFAR-10 and
  CIFAR-100 (Chen et al. 2021, §4 and App. B.1). Published size 0.8M (Huang et al. 2017, Table 2);
  769,162 here.
* ``wide_resnet`` — WRN-depth-k (Zagoruyko & Komodakis 2016, Table 1), and three named sizes:

  * ``wrn_28_10`` — ODIN's second network on CIFAR-10 / CIFAR-100 (Liang et al. 2018, §4.1).
    36.5M published, 36,479,194 here.
  * ``wrn_40_4`` — ATOM's second network on SVHN, CIFAR-10 and CIFAR-100 (Chen et al. 2021, App.
    B.1 and B.9, Table 7) and ODIN's third on CIFAR-10 / CIFAR-100 (Liang et al. 2018, App. A.1,
    "the same architecture used by Hendrycks & Gimpel (2017)"). 8.9M published, 8,949,210 here.
  * ``wrn_40_2`` — used by none of the five seed papers (CCU, GOOD and ATOM retrain their Outlier
    Exposure baseline on their own networks); it is the network of Outlier Exposure itself
    (Hendrycks et al. 2019, not among the seed texts). 2.2M published, 2,243,546 here.

  The published sizes are Zagoruyko & Komodakis 2016, Tables 4-5.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from .validation import check_choice, check_int, check_number, check_positive_int


def _check_image_args(num_classes: int, in_channels: int, image_size: int, min_size: int = 1) -> None:
    """Validate the arguments every image builder shares."""
    check_positive_int(num_classes, "num_classes")
    check_positive_int(in_channels, "in_channels")
    check_int(image_size, "image_size", low=min_size)


def _scaler(width_scale: float) -> Callable[[int], int]:
    """Channel counts times ``width_scale`` (in (0, 1]), rounded, at least 1.

    ``1`` is the published network; ``smoke`` builds every architecture at its real depth and layout
    but a fraction of its width (``train.width_scale``), so every code path runs in seconds on CPU.
    """
    scale = check_number(width_scale, "width_scale", low=0, high=1, low_open=True)
    return lambda channels: max(1, round(channels * scale))


def _half(size: int) -> int:
    """Side after a 3×3 convolution with stride 2 and padding 1: ``ceil(size / 2)``."""
    return (size + 1) // 2


def _check_depth_6n_plus_4(depth: int, what: str) -> int:
    """``n`` for ``depth = 6n + 4`` (n >= 1), the depths of WRN and of DenseNet-BC with 3 blocks."""
    check_positive_int(depth, "depth")
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(
            f"expected depth as 6n + 4 with n >= 1 for {what} (10, 16, 22, 28, 34, 40, ...: "
            f"(depth - 4) divisible by 6), got {depth!r}"
        )
    return (depth - 4) // 6


# --------------------------------------------------------------------------- without batch norm


def small_cnn(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 28, *, width: int = 32,
    width_scale: float = 1.0,
) -> nn.Sequential:
    """Conv3x3/2(32)-Conv3x3/2(64)-FC(96)-FC(K): ~0.32M parameters at ``width=32`` and 28×28.

    Strided convolutions instead of max-pooling: on 2 CPU cores this trains at
    ~6 900 img/s versus ~1 600 img/s for the same layout with pooling.
    """
    _check_image_args(num_classes, in_channels, image_size)
    width = _scaler(width_scale)(check_positive_int(width, "width"))
    side = _half(_half(image_size))
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * width * side * side, 3 * width),
        nn.ReLU(),
        nn.Linear(3 * width, num_classes),
    )


def lenet(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 28, *, width_scale: float = 1.0
) -> nn.Sequential:
    """Madry et al. LeNet: Conv5x5(32)-pool-Conv5x5(64)-pool-FC(1024)-FC(K).

    Hein et al. 2019 (App. F) and Meinke & Hein 2020 (§4) use it on MNIST.
    """
    _check_image_args(num_classes, in_channels, image_size, min_size=4)
    side = image_size // 2 // 2
    c1, c2, fc = map(_scaler(width_scale), (32, 64, 1024))
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * side * side, fc),
        nn.ReLU(),
        nn.Linear(fc, num_classes),
    )


def _ibp_cnn(num_classes: int, in_channels: int, image_size: int, width: int, hidden: int,
             width_scale: float) -> nn.Sequential:
    """GOOD's IBP CNNs: conv 3×3 (w, w, 2w stride 2, 2w, 2w), ``hidden`` affine layers of 512, the head.

    ``good_l`` is ``width=64, hidden=1``, ``good_xl`` ``width=128, hidden=2`` (one layout, two sizes).
    """
    _check_image_args(num_classes, in_channels, image_size)
    scaled = _scaler(width_scale)
    width, affine = scaled(width), scaled(512)
    side = _half(image_size)
    layers: list[nn.Module] = []
    for c_in, c_out, stride in [(in_channels, width, 1), (width, width, 1), (width, 2 * width, 2),
                                (2 * width, 2 * width, 1), (2 * width, 2 * width, 1)]:
        layers += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.ReLU()]
    layers.append(nn.Flatten())
    features = 2 * width * side * side
    for _ in range(hidden):
        layers += [nn.Linear(features, affine), nn.ReLU()]
        features = affine
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


def good_l(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 28, *, width_scale: float = 1.0
) -> nn.Sequential:
    """The "large" IBP CNN (Gowal et al. 2018; GOOD's MNIST model, App. Table 2)."""
    return _ibp_cnn(num_classes, in_channels, image_size, width=64, hidden=1, width_scale=width_scale)


def good_xl(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 28, *, width_scale: float = 1.0
) -> nn.Sequential:
    """GOOD's deeper and wider IBP CNN for SVHN and CIFAR-10 (Bitterwolf et al. 2020, §4.1, App. Table 2).

    ``good_l`` with every convolution twice as wide and one more hidden affine layer; all 3×3
    convolutions have padding 1, only the third has stride 2; ReLU after every layer but the last;
    no batch norm, so :mod:`oodlib.ibp` certifies it. The copy of the paper this book reads ends
    before its appendix, so this layer list follows the authors' published "XL" configuration (a
    fact, not their code) and still has to be checked against App. Table 2. Parameters (weights +
    biases) at ``in_channels=3, image_size=32``, 10 classes (the paper gives no count):

    ====================================  ==========
    Conv2d(3 → 128, 3×3)                       3,584
    Conv2d(128 → 128, 3×3)                   147,584
    Conv2d(128 → 256, 3×3, stride 2)         295,168
    Conv2d(256 → 256, 3×3)                   590,080
    Conv2d(256 → 256, 3×3)                   590,080
    Linear(256·16·16 → 512)               33,554,944
    Linear(512 → 512)                        262,656
    Linear(512 → 10)                           5,130
    total                                 35,449,226
    ====================================  ==========

    At 1×28×28 the first convolution has 1,280 parameters and the first affine layer is
    Linear(256·14·14 → 512), 25,690,624: 27,582,602 in all.
    """
    return _ibp_cnn(num_classes, in_channels, image_size, width=128, hidden=2, width_scale=width_scale)


def mlp(num_classes: int = 10, in_features: int = 784, hidden: int = 256, *,
        width_scale: float = 1.0) -> nn.Sequential:
    """A 784-256-256-K ReLU MLP (flattens its input)."""
    hidden = _scaler(width_scale)(check_positive_int(hidden, "hidden"))
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def toy_mlp(
    num_classes: int = 2, hidden: int = 32, depth: int = 2, *, width_scale: float = 1.0
) -> nn.Sequential:
    """A ReLU MLP on 2-D points, for the toy confidence maps."""
    check_positive_int(depth, "depth")
    hidden = _scaler(width_scale)(check_positive_int(hidden, "hidden"))
    layers: list[nn.Module] = []
    width = 2
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- with batch norm


def resnet18(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 28, *, width_scale: float = 1.0
) -> nn.Sequential:
    """ResNet-18 (He et al. 2016, Table 1) with torchvision's blocks, a 3×3 stride-1 stem and no max-pool.

    The residual blocks are torchvision's ``BasicBlock`` (a maintained implementation, not a copy);
    the network around them is assembled here because torchvision's ``ResNet`` fixes the stem (7×7,
    stride 2, max-pool: ImageNet's) and the widths (64-128-256-512, which ``width_scale`` shrinks for
    ``smoke``). The stem is He et al.'s for CIFAR-size inputs (§4.2: a 3×3 first convolution and no
    max-pooling; they do not train an 18-layer one there); four stages of two blocks, the last three
    starting with stride 2 and a 1×1-convolution shortcut (option B, §3.3); initialised as
    torchvision initialises its ResNets (He normal, fan-out, on every convolution; batch norm to the
    identity). Spatial sizes 28 → 28 → 14 → 7 → 4 at 28×28, 32 → 32 → 16 → 8 → 4 at 32×32; the global
    average pool takes any side, so ``image_size`` is only checked. Laid out as a Sequential so
    ``model[:-1]`` gives the penultimate 512 features. 11,173,962 parameters at ``in_channels=3``
    with 10 classes, 11,172,810 at ``in_channels=1``.
    """
    _check_image_args(num_classes, in_channels, image_size)
    widths = list(map(_scaler(width_scale), (64, 128, 256, 512)))
    layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False),
                               nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
    channels = widths[0]
    for stage, width in enumerate(widths):
        stride = 1 if stage == 0 else 2
        shortcut = None
        if stride != 1 or channels != width:
            shortcut = nn.Sequential(nn.Conv2d(channels, width, 1, stride=stride, bias=False),
                                     nn.BatchNorm2d(width))
        layers.append(nn.Sequential(BasicBlock(channels, width, stride, shortcut), BasicBlock(width, width)))
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    for module in layers:
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


class DenseBottleneck(nn.Module):
    """One DenseNet-B layer (Huang et al. 2017, §3 "Bottleneck layers"), returning ``[x, H(x)]``.

    ``H`` is BN-ReLU-Conv(1×1, 4k)-BN-ReLU-Conv(3×3, k). Returning the input concatenated with
    the k new maps makes a plain ``nn.Sequential`` of these layers a dense block: layer ℓ sees
    ``[x_0, x_1, ..., x_{ℓ-1}]`` (eq. 2).
    """

    def __init__(self, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        inner = 4 * growth_rate
        self.h = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, inner, 1, bias=False),
            nn.BatchNorm2d(inner),
            nn.ReLU(),
            nn.Conv2d(inner, growth_rate, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.h(x)], dim=1)


def _preact_head(channels: int, num_classes: int) -> list[nn.Module]:
    """The head of the pre-activation networks (DenseNet-BC, WRN): BN-ReLU, global average pool, linear."""
    return [nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(channels, num_classes)]


def densenet_bc(
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
    *,
    depth: int = 100,
    growth_rate: int = 12,
    compression: float = 0.5,
    width_scale: float = 1.0,
) -> nn.Sequential:
    """DenseNet-BC for CIFAR-size inputs (Huang et al. 2017, §3 and "Implementation Details").

    * a 3×3 convolution with ``2k`` output channels;
    * three dense blocks of ``n = (depth - 4) / 6`` bottleneck layers (:class:`DenseBottleneck`,
      two convolutions each; ``depth`` counts them, the first convolution, the two transitions
      and the classifier), each adding ``k = growth_rate`` feature maps;
    * between blocks a transition: BN-ReLU-Conv(1×1) to ``floor(θ m)`` channels (compression
      ``θ``), then 2×2 average pooling (the text names BN, the 1×1 convolution and the pooling;
      the ReLU follows the BN-ReLU-Conv order of every other composite function and adds no
      parameters);
    * after the last block BN-ReLU, global average pooling and the linear classifier.

    Convolutions have no bias (each feeds a batch norm). Spatial sides 32 → 16 → 8 (28 → 14 → 7).
    The defaults are the L=100, k=12 network of ODIN (Liang et al. 2018, §4.1) and ATOM (Chen et
    al. 2021, App. B.1), with dropout rate 0 as both use. Published size 0.8M (Huang et al. 2017,
    Table 2, DenseNet-BC L=100 k=12); 769,162 here at 3×32×32 with 10 classes.
    """
    _check_image_args(num_classes, in_channels, image_size, min_size=4)
    n = _check_depth_6n_plus_4(depth, "DenseNet-BC (n bottleneck layers per dense block)")
    k = _scaler(width_scale)(check_positive_int(growth_rate, "growth_rate"))
    theta = check_number(compression, "compression", low=0, high=1, low_open=True)
    channels = 2 * k
    layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)]
    for block in range(3):
        dense = []
        for _ in range(n):
            dense.append(DenseBottleneck(channels, k))
            channels += k
        layers.append(nn.Sequential(*dense))
        if block < 2:
            out = max(1, int(theta * channels))
            layers.append(
                nn.Sequential(
                    nn.BatchNorm2d(channels),
                    nn.ReLU(),
                    nn.Conv2d(channels, out, 1, bias=False),
                    nn.AvgPool2d(2),
                )
            )
            channels = out
    return nn.Sequential(*layers, *_preact_head(channels, num_classes))


class WideBasicBlock(nn.Module):
    """Pre-activation wide residual block B(3,3) (Zagoruyko & Komodakis 2016, §2, Fig. 1(c)-(d)).

    BN-ReLU-Conv(3×3, stride)-[dropout]-BN-ReLU-Conv(3×3) added to the shortcut: the identity,
    or a 1×1 convolution with the block's stride where the number of channels or the side changes
    (applied, as in He et al. 2016's pre-activation networks, to the input after its BN-ReLU).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu1(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(self.dropout(self.relu2(self.bn2(out))))
        return out + skip


def wide_resnet(
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
    *,
    depth: int,
    widen_factor: int,
    dropout: float = 0.0,
    width_scale: float = 1.0,
) -> nn.Sequential:
    """WRN-``depth``-``widen_factor`` (Zagoruyko & Komodakis 2016, Table 1).

    conv1: 3×3 to 16 channels; conv2, conv3, conv4: ``n = (depth - 4) / 6`` pre-activation blocks
    (:class:`WideBasicBlock`) of ``16k``, ``32k`` and ``64k`` channels, the first block of conv3
    and of conv4 with stride 2 (sides 32 → 16 → 8, or 28 → 14 → 7); then BN-ReLU, global average
    pooling and the linear classifier. Dropout between the two convolutions of each block (§2.4;
    ODIN and ATOM use 0). Convolutions have no bias (each feeds a batch norm). Published sizes
    (Tables 4-5): WRN-40-2 2.2M, WRN-40-4 8.9M, WRN-28-10 36.5M. ``depth`` and ``widen_factor``
    have no default: :func:`wrn_28_10`, :func:`wrn_40_4` and :func:`wrn_40_2` name the papers'
    networks.
    """
    _check_image_args(num_classes, in_channels, image_size)
    n = _check_depth_6n_plus_4(depth, "a wide ResNet ((depth - 4) / 6 blocks per group)")
    k = check_positive_int(widen_factor, "widen_factor")
    p = check_number(dropout, "dropout", low=0, high=1, high_open=True)
    scaled = _scaler(width_scale)
    channels = scaled(16)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)]
    for width, stride in ((scaled(16 * k), 1), (scaled(32 * k), 2), (scaled(64 * k), 2)):
        blocks = []
        for i in range(n):
            blocks.append(WideBasicBlock(channels, width, stride if i == 0 else 1, p))
            channels = width
        layers.append(nn.Sequential(*blocks))
    return nn.Sequential(*layers, *_preact_head(channels, num_classes))


def wrn_28_10(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 28, *, dropout: float = 0.0,
    width_scale: float = 1.0,
) -> nn.Sequential:
    """WRN-28-10: ODIN's Wide ResNet on CIFAR-10 / CIFAR-100 (Liang et al. 2018, §4.1; dropout 0).

    36.5M parameters published (Zagoruyko & Komodakis 2016, Tables 4-5); 36,479,194 here at
    3×32×32 with 10 classes.
    """
    return wide_resnet(num_classes, in_channels, image_size, depth=28, widen_factor=10, dropout=dropout,
                       width_scale=width_scale)


def wrn_40_4(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 28, *, dropout: float = 0.0,
    width_scale: float = 1.0,
) -> nn.Sequential:
    """WRN-40-4: ATOM's WideResNet (Chen et al. 2021, App. B.1, B.9) and ODIN's third network (App. A.1).

    ATOM trains it on SVHN, CIFAR-10 and CIFAR-100; ODIN on CIFAR-10 / CIFAR-100 ("the same
    architecture used by Hendrycks & Gimpel (2017)"). 8.9M parameters published (Zagoruyko &
    Komodakis 2016, Tables 4-5); 8,949,210 here at 3×32×32 with 10 classes.
    """
    return wide_resnet(num_classes, in_channels, image_size, depth=40, widen_factor=4, dropout=dropout,
                       width_scale=width_scale)


def wrn_40_2(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 28, *, dropout: float = 0.0,
    width_scale: float = 1.0,
) -> nn.Sequential:
    """WRN-40-2: Outlier Exposure's network (Hendrycks et al. 2019), not one of the seed papers'.

    None of the five seed papers trains it: CCU, GOOD and ATOM retrain their OE baseline on their
    own architectures (OE's own use of WRN-40-2 is from the OE paper, not among the seed texts).
    2.2M parameters published (Zagoruyko & Komodakis 2016, Tables 4-5); 2,243,546 here at 3×32×32
    with 10 classes.
    """
    return wide_resnet(num_classes, in_channels, image_size, depth=40, widen_factor=2, dropout=dropout,
                       width_scale=width_scale)


ARCHITECTURES = {
    "small_cnn": small_cnn,
    "lenet": lenet,
    "good_l": good_l,
    "good_xl": good_xl,
    "resnet18": resnet18,
    "densenet_bc": densenet_bc,
    "wide_resnet": wide_resnet,
    "wrn_28_10": wrn_28_10,
    "wrn_40_4": wrn_40_4,
    "wrn_40_2": wrn_40_2,
    "mlp": mlp,
    "toy_mlp": toy_mlp,
}


def build(name: str, num_classes: int = 10, seed: int | None = 0, **kwargs: object) -> nn.Sequential:
    """Build architecture ``name`` with a deterministic initialisation under ``seed``.

    ``seed=None`` leaves the global RNG untouched (the init then depends on it).
    """
    check_choice(name, list(ARCHITECTURES), "architecture")
    check_positive_int(num_classes, "num_classes")
    if seed is None:
        return ARCHITECTURES[name](num_classes=num_classes, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ARCHITECTURES[name](num_classes=num_classes, **kwargs)


def num_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
