"""Detectors under attack: a model, its score, the objective an attacker raises, and a certificate.

Every method of the book ends up as a :class:`Detector`, so one evaluation
(:func:`oodlib.evaluate.threat_table`) can put all of them under the same threat
models (chapters 06 and 07):

* ``score(x) -> Tensor[N]`` — higher = more in-distribution (the book's convention);
* ``objective(model(u))`` — what the white-box ℓ∞ attack raises to make an OOD input
  look in-distribution (Chen et al. 2021, App. B.4: eq. 115 for softmax detectors,
  eq. 116 for Mahalanobis, eq. 118 for (K+1)-way models);
* ``certify(x, eps)`` (optional) — a guaranteed upper bound on the score over the
  ℓ∞ ball ``B_∞(x, eps) ∩ [0, 1]^d``: GOOD's IBP bound (Bitterwolf et al. 2020,
  eq. 6) or CCU's Corollary 3.1 (Meinke & Hein 2020, eq. 11) on a metric ball that
  contains the ℓ∞ ball (:func:`oodlib.ccu.linf_certified_confidence`).

The tuning helpers choose ODIN's and Mahalanobis' input-noise magnitude on a
validation OOD set, so every chapter tunes them the same way. For ODIN this is ATOM
App. B.3; for Mahalanobis, App. B.3 (after Lee et al. 2018) tunes on FGSM-perturbed
in-distribution images instead — we use the same auxiliary validation split as for
ODIN, a simplification.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import attacks, metrics
from .atom import atom_objective, ood_score
from .ccu import CCU, ccu_log_excess, linf_certified_confidence
from .ibp import certified_confidence, supports
from .mahalanobis import mahalanobis, max_score_objective
from .odin import Search, epsilon_grid, odin, odin_grid, search
from .profiles import Profile
from .scores import energy, msp

Certificate = Callable[[torch.Tensor, float], torch.Tensor]


@dataclass
class Detector:
    """A detector under attack: the module PGD differentiates, the score, the objective, a certificate.

    ``score(images) -> Tensor[N]`` (higher = in-distribution) decides; ``objective(model(u))``
    is what the white-box attack raises. ``certify(images, eps)``, when given, returns an
    upper bound on ``score`` over each image's ℓ∞ ball of radius ``eps``. ``note`` is shown
    in tables; ``extra`` records tuned parameters.
    """

    name: str
    model: nn.Module
    score: Callable[[torch.Tensor], torch.Tensor]
    objective: attacks.Objective
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    certify: Certificate | None = None


def log_max_confidence_at(temperature: float = 1.0) -> attacks.Objective:
    """``max_k log softmax_k(z / T)``: the white-box objective for MSP (T = 1) and ODIN's scaled score."""
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not temperature > 0:
        raise ValueError(f"expected temperature as a number > 0, got {temperature!r}")
    t = float(temperature)
    return lambda z, y=None: torch.log_softmax(z / t, dim=1).max(dim=1).values


def msp_detector(name: str, model: nn.Module, note: str = "", certify: Certificate | None = None) -> Detector:
    """Max-softmax score; attacked with ``max_k log softmax_k`` (the score itself; cf. eq. 115)."""
    return Detector(name, model, lambda z: msp(model, z), log_max_confidence_at(1.0), note, certify=certify)


def good_detector(name: str, model: nn.Module, note: str = "") -> Detector:
    """MSP of an IBP-trained model, certified by GOOD's eq. 6 (:func:`oodlib.ibp.certified_confidence`)."""
    if not supports(model):
        raise ValueError(f"expected a model IBP can pass (Linear/Conv2d/ReLU/Flatten/pool), got {name!r}")
    return msp_detector(name, model, note, certify=lambda x, eps: certified_confidence(model, x, eps))


class _CCUExcess(nn.Module):
    """``x -> log(max_y p̂(y|x) − 1/M)`` as a one-column output, for PGD (see :func:`ccu_detector`)."""

    def __init__(self, ccu: nn.Module) -> None:
        super().__init__()
        self.ccu = ccu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ccu_log_excess(self.ccu, x)[:, None]


def ccu_detector(name: str, model: nn.Module, note: str = "") -> Detector:
    """CCU's confidence ``max_y p̂(y|x)``, certified by Corollary 3.1 on a ball containing the ℓ∞ ball.

    Attacked through :func:`oodlib.ccu.ccu_log_excess` (same maximiser as the confidence), not
    ``log max p̂``: the latter's gradient rounds to zero where ``p̂`` is within float precision of
    uniform — far from the data, exactly where CCU is built to be unconfident (chapter 04).
    """
    if not isinstance(model, CCU):
        raise ValueError(f"expected a CCU model for {name!r}, got {type(model).__name__}")
    return Detector(name, _CCUExcess(model), lambda z: msp(model, z), lambda z, y=None: z[:, 0], note,
                    certify=lambda x, eps: linf_certified_confidence(model, x, eps))


def odin_detector(name: str, model: nn.Module, temperature: float, eps: float, note: str = "") -> Detector:
    """ODIN's score ``S(x̃; T)``; attacked white-box through ``log S(u; T)`` (the preprocessing
    step is part of the score, not of the attack objective, as in App. B.4)."""
    return Detector(name, model, lambda z: odin(model, z, temperature=temperature, eps=eps),
                    log_max_confidence_at(temperature), note, {"temperature": temperature, "eps": eps})


def energy_detector(name: str, model: nn.Module, temperature: float = 1.0, note: str = "") -> Detector:
    """Energy score ``T · logsumexp(f(x)/T)`` (Liu et al. 2020); attacked through the score itself."""
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not temperature > 0:
        raise ValueError(f"expected temperature as a number > 0, got {temperature!r}")
    t = float(temperature)
    return Detector(name, model, lambda z: energy(model, z, temperature=t),
                    lambda z, y=None: t * torch.logsumexp(z / t, dim=1), note, {"temperature": t})


def mahalanobis_detector(name: str, head: nn.Module, eps: float = 0.0, note: str = "") -> Detector:
    """Single-layer Mahalanobis score; attacked through ``M(u)`` itself (eq. 116 without the regression)."""
    return Detector(name, head, lambda z: mahalanobis(head, z, eps=eps), max_score_objective, note,
                    {"eps": eps})


def k1_detector(name: str, model: nn.Module, note: str = "") -> Detector:
    """A (K+1)-way model scored by ``1 − F(x)_{K+1}``; attacked through ``−log F(u)_{K+1}`` (eq. 118)."""
    return Detector(name, model, lambda z: ood_score(model, z), atom_objective, note)


# --------------------------------------------------------------------------- tuning on a validation OOD set

MAHALANOBIS_EPS = (0.0, 0.0005, 0.001, 0.0014, 0.002, 0.005, 0.01)  # Lee et al. 2018's grid


def tune_odin(model: nn.Module, x_in: torch.Tensor, x_out: torch.Tensor, profile: Profile,
              temperatures: Sequence[float] = (1000.0,)) -> Search:
    """ODIN's (T, ε) with the lowest FPR at 95 % TPR on validation images (ATOM App. B.3: T = 1000).

    ``x_in``/``x_out`` are validation in-distribution and OOD images, never evaluated on.
    """
    grid = epsilon_grid(profile.odin_num_eps, profile.odin_max_eps)
    return search(odin_grid(model, x_in, list(temperatures), grid),
                  odin_grid(model, x_out, list(temperatures), grid), list(temperatures), grid)


def tune_mahalanobis(head: nn.Module, x_in: torch.Tensor, x_out: torch.Tensor,
                     grid: Sequence[float] = MAHALANOBIS_EPS) -> float:
    """The input-noise magnitude of the Mahalanobis score with the lowest validation FPR at 95 % TPR."""
    if not len(grid):
        raise ValueError("expected a non-empty grid of eps values")
    fprs = [metrics.fpr_at_tpr(mahalanobis(head, x_in, eps=e), mahalanobis(head, x_out, eps=e)) for e in grid]
    return float(grid[int(np.argmin(fprs))])
