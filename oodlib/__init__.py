"""oodlib — the helper package behind oodbook.

Import it as ``import oodlib as ol``. One module per idea:
``profiles`` (ci/full sizes), ``data`` (Fashion-MNIST, offline OOD sets,
auxiliary pool), ``models``, ``train`` (one loop, method plug-ins), ``zoo``
(train-or-load cache), ``scores`` (higher = in-distribution), ``metrics``,
``evaluate`` (tidy result tables) and ``plots``.
"""

from . import (
    attacks,
    data,
    evaluate,
    losses,  # registers the training plug-ins ceda, acet, oe
    metrics,
    models,
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
    "attacks", "losses", "theory", "data", "evaluate", "metrics", "models", "plots", "profiles",
    "runtime", "scores",
    "train", "zoo", "default_device", "seed_everything",
]
