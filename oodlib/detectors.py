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

* ``confidence_model`` (optional) — the network whose max softmax *is* the score (MSP, GOOD,
  CCU): GOOD's APGD threat (``"apgd"`` in :func:`oodlib.evaluate.threat_table`) attacks it.

Detectors with parameters tuned on validation data (ODIN's ``(T, ε)``, Mahalanobis' ``ε``) are
built untuned and fitted with :meth:`Detector.fit` on validation in-distribution and OOD images,
so every chapter tunes them the same way. For ODIN this is ATOM App. B.3; for Mahalanobis,
App. B.3 (after Lee et al. 2018) tunes on FGSM-perturbed in-distribution images instead — we use
the same auxiliary validation split as for ODIN, a simplification.

Every score of the book is reachable by method name from :data:`FACTORIES` (:func:`make`), and
every zoo method maps to its detector in :data:`ZOO_DETECTORS` (:func:`for_entry`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import attacks, metrics, zoo
from .atom import atom_objective, ood_score
from .ccu import CCU, LogExcess, excess_objective, linf_certified_confidence
from .ibp import certified_confidence, supports
from .mahalanobis import mahalanobis, max_score_objective
from .odin import Search, epsilon_grid, odin, odin_grid, search
from .profiles import Profile
from .scores import energy, msp
from .validation import check_choice, check_images, check_number

Certificate = Callable[[torch.Tensor, float], torch.Tensor]
Tuner = Callable[["Detector", torch.Tensor, torch.Tensor], None]


def _unfitted(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    def score(x: torch.Tensor) -> torch.Tensor:
        raise ValueError(f"detector {name!r} has parameters to tune: call .fit(x_val_in, y, x_val_out) first")

    return score


@dataclass
class Detector:
    """A detector under attack: the module PGD differentiates, the score, the objective, a certificate.

    ``score(images) -> Tensor[N]`` (higher = in-distribution) decides; ``objective(model(u))``
    is what the white-box attack raises. ``certify(images, eps)``, when given, returns an
    upper bound on ``score`` over each image's ℓ∞ ball of radius ``eps``. ``note`` is shown
    in tables; ``extra`` records tuned parameters; ``source`` names the zoo entry behind it;
    ``confidence_model`` is the network whose max softmax is the score, when there is one.
    """

    name: str
    model: nn.Module
    score: Callable[[torch.Tensor], torch.Tensor]
    objective: attacks.Objective
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    certify: Certificate | None = None
    confidence_model: nn.Module | None = None
    source: str = ""
    tune: Tuner | None = field(default=None, repr=False)

    def fit(self, x_in: torch.Tensor, y: torch.Tensor | None = None,
            x_val_out: torch.Tensor | None = None) -> Detector:
        """Tune the detector's parameters on validation data; returns ``self``.

        ``x_in`` are validation in-distribution images (``y`` their labels, which no detector of
        the book needs), ``x_val_out`` validation OOD images; neither is ever evaluated on. A
        detector without parameters to tune (MSP, energy, CCU, GOOD, (K+1)) returns unchanged.
        """
        if self.tune is None:
            return self
        if x_val_out is None:
            raise ValueError(f"expected x_val_out (validation OOD images) to tune {self.name!r} on, got None")
        self.tune(self, check_images(x_in, "x_in"), check_images(x_val_out, "x_val_out"))
        return self


def msp_detector(name: str, model: nn.Module, note: str = "", certify: Certificate | None = None) -> Detector:
    """Max-softmax score; attacked with ``max_k log softmax_k`` (the score itself; cf. eq. 115)."""
    return Detector(name, model, lambda z: msp(model, z), attacks.log_max_confidence, note, certify=certify,
                    confidence_model=model)


def good_detector(name: str, model: nn.Module, note: str = "") -> Detector:
    """MSP certified by GOOD's eq. 6 (:func:`oodlib.ibp.certified_confidence`): GOOD's models, and any
    ReLU network IBP can pass (chapter 05 certifies its baselines the same way)."""
    if not supports(model):
        raise ValueError(f"expected a model IBP can pass (Linear/Conv2d/ReLU/Flatten/pool), got {name!r}")
    return msp_detector(name, model, note, certify=lambda x, eps: certified_confidence(model, x, eps))


def ccu_detector(name: str, model: nn.Module, note: str = "") -> Detector:
    """CCU's confidence ``max_y p̂(y|x)``, certified by Corollary 3.1 on a ball containing the ℓ∞ ball.

    Attacked through :func:`oodlib.ccu.ccu_log_excess` (same maximiser as the confidence), not
    ``log max p̂``: the latter's gradient rounds to zero where ``p̂`` is within float precision of
    uniform — far from the data, exactly where CCU is built to be unconfident (chapter 04).
    """
    if not isinstance(model, CCU):
        raise ValueError(f"expected a CCU model for {name!r}, got {type(model).__name__}")
    return Detector(name, LogExcess(model), lambda z: msp(model, z), excess_objective, note,
                    certify=lambda x, eps: linf_certified_confidence(model, x, eps), confidence_model=model)


def odin_detector(name: str, model: nn.Module, temperature: float | None = None, eps: float | None = None,
                  note: str = "", *, profile: Profile | None = None,
                  temperatures: Sequence[float] = (1000.0,)) -> Detector:
    """ODIN's score ``S(x̃; T)``; attacked white-box through ``log S(u; T)`` (the preprocessing
    step is part of the score, not of the attack objective, as in App. B.4).

    With ``temperature`` and ``eps`` given the detector is ready; without them :meth:`Detector.fit`
    picks ``(T, ε)`` on validation images (:func:`tune_odin`: ``temperatures`` × the profile's ε grid).
    """
    if (temperature is None) != (eps is None):
        raise ValueError(f"expected both temperature and eps (a fixed ODIN) or neither (tuned by fit), "
                         f"got temperature={temperature!r}, eps={eps!r}")
    if temperature is None:
        if profile is None:
            raise ValueError(f"expected profile= (its ε grid) to tune {name!r}, or temperature and eps")

        def tune(det: Detector, x_in: torch.Tensor, x_out: torch.Tensor) -> None:
            pick = tune_odin(model, x_in, x_out, profile, temperatures)
            fixed = odin_detector(det.name, model, pick.temperature, pick.eps, det.note)
            det.score, det.objective, det.extra = fixed.score, fixed.objective, fixed.extra

        return Detector(name, model, _unfitted(name), attacks.log_max_confidence, note, tune=tune)
    t = check_number(temperature, "temperature", low=0, low_open=True)
    e = check_number(eps, "eps", low=0)
    return Detector(name, model, lambda z: odin(model, z, temperature=t, eps=e),
                    attacks.log_max_confidence_at(t), note, {"temperature": temperature, "eps": eps})


def energy_detector(name: str, model: nn.Module, temperature: float = 1.0, note: str = "") -> Detector:
    """Energy score ``T · logsumexp(f(x)/T)`` (Liu et al. 2020); attacked through the score itself."""
    t = check_number(temperature, "temperature", low=0, low_open=True)
    return Detector(name, model, lambda z: energy(model, z, temperature=t),
                    lambda z, y=None: t * torch.logsumexp(z / t, dim=1), note, {"temperature": t})


def mahalanobis_detector(name: str, head: nn.Module, eps: float | None = None, note: str = "", *,
                         grid: Sequence[float] | None = None) -> Detector:
    """Single-layer Mahalanobis score of a fitted head (:func:`oodlib.mahalanobis.fit`); attacked through
    ``M(u)`` itself (eq. 116 without the regression). Without ``eps``, :meth:`Detector.fit` picks it
    from ``grid`` (Lee et al. 2018's, :data:`MAHALANOBIS_EPS`) on validation images."""
    if eps is None:
        def tune(det: Detector, x_in: torch.Tensor, x_out: torch.Tensor) -> None:
            best = tune_mahalanobis(head, x_in, x_out, grid or MAHALANOBIS_EPS)
            fixed = mahalanobis_detector(det.name, head, best, det.note)
            det.score, det.extra = fixed.score, fixed.extra

        return Detector(name, head, _unfitted(name), max_score_objective, note, tune=tune)
    e = check_number(eps, "eps", low=0)
    return Detector(name, head, lambda z: mahalanobis(head, z, eps=e), max_score_objective, note,
                    {"eps": eps})


def k1_detector(name: str, model: nn.Module, note: str = "") -> Detector:
    """A (K+1)-way model scored by ``1 − F(x)_{K+1}``; attacked through ``−log F(u)_{K+1}`` (eq. 118)."""
    return Detector(name, model, lambda z: ood_score(model, z), atom_objective, note)


# --------------------------------------------------------------------------- the registry

#: every score of the book by method name; each factory is ``factory(name, model, **params)``
FACTORIES: dict[str, Callable[..., Detector]] = {
    "msp": msp_detector,  # Hendrycks & Gimpel 2017; Hein et al. 2019's MMC
    "odin": odin_detector,  # Liang et al. 2018, eq. 1-2
    "energy": energy_detector,  # Liu et al. 2020
    "mahalanobis": mahalanobis_detector,  # Lee et al. 2018
    "ccu": ccu_detector,  # Meinke & Hein 2020, eq. 7 (Corollary 3.1)
    "good": good_detector,  # Bitterwolf et al. 2020, eq. 6
    "k1": k1_detector,  # Chen et al. 2021, eq. 5-6
}
#: the detector of each zoo method (oodlib.zoo.PLUGINS)
ZOO_DETECTORS = {"plain": "msp", "plain_subset": "msp", "ceda": "msp", "oe": "msp", "acet": "msp",
                 "ccu": "ccu", "good": "good", "ntom": "k1", "atom": "k1", "ntom_trajectory": "k1"}


def make(method: str, name: str, model: nn.Module, **params: object) -> Detector:
    """The detector ``method`` of :data:`FACTORIES`; ``ValueError`` naming the valid parameters otherwise."""
    check_choice(method, list(FACTORIES), "detector")
    factory = FACTORIES[method]
    allowed = [p for p in inspect.signature(factory).parameters if p not in ("name", "model", "head")]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for detector {method!r}; "
                         f"expected some of {allowed}")
    return factory(name, model, **params)


def for_entry(name: str, entry: zoo.Entry, **params: object) -> Detector:
    """The detector of a zoo model (by its training method, :data:`ZOO_DETECTORS`), named ``name``."""
    method = entry.record["config"]["method"]
    det = make(ZOO_DETECTORS[method], name, entry.model, **params)
    det.source = name
    return det


# --------------------------------------------------------------------------- tuning on a validation OOD set

MAHALANOBIS_EPS = (0.0, 0.0005, 0.001, 0.0014, 0.002, 0.005, 0.01)  #: Lee et al. 2018's grid


def tune_odin(model: nn.Module, x_in: torch.Tensor, x_out: torch.Tensor, profile: Profile,
              temperatures: Sequence[float] = (1000.0,)) -> Search:
    """ODIN's (T, ε) with the lowest FPR at 95 % TPR on validation images (ATOM App. B.3: T = 1000).

    ``x_in``/``x_out`` are validation in-distribution and OOD images, never evaluated on.
    """
    grid = epsilon_grid(profile.odin.num_eps, profile.odin.max_eps)
    return search(odin_grid(model, x_in, list(temperatures), grid),
                  odin_grid(model, x_out, list(temperatures), grid), list(temperatures), grid)


def tune_mahalanobis(head: nn.Module, x_in: torch.Tensor, x_out: torch.Tensor,
                     grid: Sequence[float] = MAHALANOBIS_EPS) -> float:
    """The input-noise magnitude of the Mahalanobis score with the lowest validation FPR at 95 % TPR."""
    if not len(grid):
        raise ValueError("expected a non-empty grid of eps values")
    fprs = [metrics.fpr_at_tpr(mahalanobis(head, x_in, eps=e), mahalanobis(head, x_out, eps=e)) for e in grid]
    return float(grid[int(np.argmin(fprs))])
