"""Model architectures used in the book.

All image models take inputs ``(N, 1, 28, 28)`` in [0, 1] and return logits.
All but ``resnet18`` have no batch norm, so they can be certified with interval
bound propagation (Bitterwolf et al. 2020, docs/design.md, pitfall 5) and behave
the same in train and eval mode during attacks.

* ``small_cnn`` — ~0.33M parameters, the ``ci`` workhorse (a 60k Fashion-MNIST
  epoch in ~9 s on 2 CPU cores).
* ``lenet`` — the LeNet of Madry et al. (2018) used by Hein et al. 2019 and
  Meinke & Hein 2020 for MNIST-size inputs (~3.3M parameters).
* ``good_l`` — the "large" IBP CNN of Gowal et al. (2018) used by Bitterwolf et
  al. 2020 for MNIST (~13.3M parameters).
* ``resnet18`` — torchvision's ResNet-18 for 28×28 grayscale inputs (a 3×3 stride-1
  stem without max-pooling, as for CIFAR-size images; ~11.2M parameters): CCU's
  architecture for Fashion-MNIST ("LeNet on MNIST and a ResNet18 otherwise", Meinke &
  Hein 2020 §4). It has batch norm: not for IBP, and attack it in eval mode.
* ``mlp`` — 784-256-256-K.
* ``toy_mlp`` — a ReLU MLP on 2-D inputs for the toy figures of chapters 01 and 04.

``num_classes`` is a parameter so the (K+1)-output heads of ATOM use the same
builders.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models as torchvision_models

from .validation import check_choice, check_positive_int


def small_cnn(num_classes: int = 10, in_channels: int = 1, width: int = 32) -> nn.Sequential:
    """Conv3x3/2(32)-Conv3x3/2(64)-FC(96)-FC(K): ~0.32M parameters at ``width=32``.

    Strided convolutions instead of max-pooling: on 2 CPU cores this trains at
    ~6 900 img/s versus ~1 600 img/s for the same layout with pooling.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * width * 7 * 7, 3 * width),
        nn.ReLU(),
        nn.Linear(3 * width, num_classes),
    )


def lenet(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """Madry et al. LeNet: Conv5x5(32)-pool-Conv5x5(64)-pool-FC(1024)-FC(K)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 1024),
        nn.ReLU(),
        nn.Linear(1024, num_classes),
    )


def good_l(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """The "large" IBP CNN (Gowal et al. 2018; GOOD's MNIST model, App. Table 2)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(128, 128, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(128 * 14 * 14, 512),
        nn.ReLU(),
        nn.Linear(512, num_classes),
    )


def resnet18(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """torchvision's ResNet-18 with a 3×3 stride-1 stem and no max-pool, as an ``nn.Sequential``.

    The blocks are torchvision's (a maintained implementation, not a copy); only the stem is
    changed for 28×28 inputs (spatial sizes 28 → 28 → 14 → 7 → 4). Laid out as a Sequential so
    ``model[:-1]`` gives the penultimate features (Mahalanobis, ATOM's (K+1) head).
    """
    net = torchvision_models.resnet18(num_classes=num_classes)
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False),
        net.bn1,
        net.relu,
        net.layer1,
        net.layer2,
        net.layer3,
        net.layer4,
        net.avgpool,
        nn.Flatten(),
        net.fc,
    )


def mlp(num_classes: int = 10, in_features: int = 784, hidden: int = 256) -> nn.Sequential:
    """A 784-256-256-K ReLU MLP (flattens its input)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def toy_mlp(num_classes: int = 2, hidden: int = 32, depth: int = 2) -> nn.Sequential:
    """A ReLU MLP on 2-D points, for the toy confidence maps."""
    check_positive_int(depth, "depth")
    layers: list[nn.Module] = []
    width = 2
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


ARCHITECTURES = {
    "small_cnn": small_cnn,
    "lenet": lenet,
    "good_l": good_l,
    "resnet18": resnet18,
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
