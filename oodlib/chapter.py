"""The first cell of every chapter: the profile, the seeds, the device and the plot style."""

from __future__ import annotations

import torch

from . import plots, profiles, runtime
from .profiles import Profile


def setup() -> tuple[Profile, torch.device]:
    """Read the profile (``OODLIB_PROFILE``, ``OODLIB_SEED``), seed everything with its seed, pick the
    device (``OODLIB_DEVICE``, else CUDA when present) and set the book's plot style.

    Prints the setting and returns ``(profile, device)``, so a chapter starts with
    ``profile, device = ol.setup()``.
    """
    profile = profiles.current()
    runtime.seed_everything(profile.seed)
    device = runtime.default_device()
    plots.set_style()
    print(f"profile: {profile.name} | device: {device} | torch {torch.__version__}")
    return profile, device
