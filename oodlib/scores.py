"""The logit scores: MSP and energy (ODIN's is :func:`oodlib.odin.odin`, Mahalanobis'
:func:`oodlib.mahalanobis.mahalanobis`, CCU's and (K+1)'s via :mod:`oodlib.detectors`).

Every score is a function ``score(model, x, **params) -> Tensor[N]`` on the CPU,
and **higher = more in-distribution**. Every score of the book is reachable by method name
from :data:`oodlib.detectors.FACTORIES`. Metrics in :mod:`oodlib.metrics` treat
the in-distribution as the positive class, so a score can be passed straight
to them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .runtime import logits
from .validation import check_images, check_number

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
    temperature = check_number(temperature, "temperature", low=0, low_open=True)
    z = logits(model, x, batch_size) / temperature
    return temperature * torch.logsumexp(z, dim=1)
