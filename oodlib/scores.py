"""Detector scores with one signature and one convention.

Every score is a function ``score(model, x, **params) -> Tensor[N]`` on the CPU,
and **higher = more in-distribution**. Metrics in :mod:`oodlib.metrics` treat
the in-distribution as the positive class, so a score can be passed straight
to them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .mahalanobis import mahalanobis
from .odin import odin
from .runtime import logits
from .validation import check_images

ScoreFn = Callable[..., torch.Tensor]


def msp(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Maximum softmax probability (Hendrycks & Gimpel 2017): ``max_k softmax(f(x))_k``.

    The baseline detector of every paper in the book; Hein et al. 2019 call its
    mean over a data set the MMC (mean maximal confidence).
    """
    check_images(x)
    return torch.softmax(logits(model, x, batch_size), dim=1).max(dim=1).values


def energy(
    model: nn.Module, x: torch.Tensor, temperature: float = 1.0, batch_size: int = 1000
) -> torch.Tensor:
    """Negative free energy ``T · logsumexp(f(x) / T)`` (Liu et al. 2020), higher = in-distribution.

    A logit-based relative of ODIN's temperature-scaled softmax (Liang et al. 2018, eq. 1):
    ``log S_ŷ(x; T) = f_ŷ(x)/T − logsumexp(f(x)/T)``.
    """
    check_images(x)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not temperature > 0:
        raise ValueError(f"expected temperature as a number > 0, got {temperature!r}")
    z = logits(model, x, batch_size) / temperature
    return temperature * torch.logsumexp(z, dim=1)


SCORES: dict[str, ScoreFn] = {"msp": msp, "odin": odin, "energy": energy, "mahalanobis": mahalanobis}


def get(name: str) -> ScoreFn:
    """The score function registered as ``name``."""
    if name not in SCORES:
        raise ValueError(f"unknown score {name!r}; expected one of {sorted(SCORES)}")
    return SCORES[name]
