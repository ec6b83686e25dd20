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


SCORES: dict[str, ScoreFn] = {"msp": msp}


def get(name: str) -> ScoreFn:
    """The score function registered as ``name``."""
    if name not in SCORES:
        raise ValueError(f"unknown score {name!r}; expected one of {sorted(SCORES)}")
    return SCORES[name]
