"""oodlib — the helper package behind oodbook.

Import it as ``import oodlib as ol``. One module per idea:
``profiles`` (ci/full sizes), ``data`` (Fashion-MNIST, offline OOD sets,
auxiliary pool), ``models``, ``train`` (one loop, method plug-ins), ``zoo``
(train-or-load cache), ``scores`` (higher = in-distribution), ``metrics``,
``detectors`` (score + attack objective + certificate), ``evaluate`` (tidy
result tables, the threat models), ``claims`` (verdicts with their
uncertainty) and ``plots``.
"""

from . import (
    apgd,  # chapter 05: APGD confidence attack for the adversarial AUC
    attacks,
    benchmark,  # chapter 07: every method under every threat model
    claims,  # every chapter: claims with bootstrap / seed intervals and a three-way verdict
    corruptions,  # chapter 06: the 15 common corruptions x 5 severities
    data,
    detectors,  # chapters 06-07: every method as a detector under attack (score, objective, certificate)
    evaluate,
    gmm,  # chapter 04: CCU (registers the training plug-in ccu)
    ibp,  # chapter 05: interval bounds, GOOD (registers the training plug-in good)
    losses,  # registers the training plug-ins ceda, acet, oe
    mahalanobis,  # chapter 06: Mahalanobis detector (Lee et al. 2018)
    metrics,
    mining,  # chapter 06: ATOM (registers the training plug-ins ntom, atom)
    models,
    odin,  # registers the training plug-in plain_subset (same-manifold split)
    plots,
    profiles,
    runtime,
    scores,
    theory,
    train,
    zoo,
)
from .runtime import default_device, seed_everything

__version__ = "0.1.0"

__all__ = [
    "apgd", "attacks", "benchmark", "claims", "corruptions", "data", "detectors", "evaluate", "gmm", "ibp",
    "losses",
    "mahalanobis", "metrics", "mining", "models", "odin", "plots", "profiles", "runtime", "scores", "theory",
    "train", "zoo", "default_device", "seed_everything",
]
