"""Run profiles: every size and budget a chapter uses, in one frozen dataclass.

Two profiles share one code path:

* ``ci`` (the default): CPU, offline, each chapter in a few minutes. Sizes are
  chosen from timings measured on 2-core machines (DESIGN.md, "Measured on
  these machines"): the small CNN trains a 60k Fashion-MNIST epoch in ~9 s.
* ``full``: the papers' settings, meant for a GPU. Each value cites its source.

The profile is chosen by the environment variable ``OODLIB_PROFILE`` and read
once per notebook with :func:`current`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .validation import check_choice

ENV_VAR = "OODLIB_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Sizes and budgets for one run of the book.

    Attributes are grouped by use; the ``full`` values cite the papers
    (Hein et al. 2019 §5 "Training"; Meinke & Hein 2020 App. B; Bitterwolf et
    al. 2020 §4; Chen et al. 2021 App. B).
    """

    name: str
    # --- models -------------------------------------------------------------
    model: str  # architecture for classifiers (oodlib.models.build)
    ibp_model: str  # architecture for IBP-certified models (no batch norm)
    # --- training -----------------------------------------------------------
    train_size: int  # Fashion-MNIST training images used (<= 60000)
    epochs: int
    batch_size: int  # in-distribution batch B; out-distribution adds lambda*B
    lr: float  # Adam learning rate (Hein §5: 1e-3 on MNIST)
    weight_decay: float  # Hein §5: 5e-4 for all models
    lr_milestones: tuple[float, ...]  # fractions of training where lr /= 10 (50, 75, 90 of 100)
    aux_size: int  # auxiliary out-distribution pool (OE, CCU, GOOD, ATOM)
    # --- evaluation ---------------------------------------------------------
    test_size: int  # Fashion-MNIST test images evaluated (<= 10000)
    ood_size: int  # images per OOD test set
    attack_size: int  # OOD seeds per set attacked in worst-case evaluations
    # --- attacks ------------------------------------------------------------
    pgd_train_steps: int  # ACET inner maximisation (Hein: 40)
    pgd_train_step_size: float  # Hein: 0.0075
    pgd_eval_steps: int  # adversarial noise evaluation (Hein Table 1: 200)
    pgd_eval_restarts: int
    eps: float  # l_inf radius for ACET / adversarial noise (Hein: 0.3)
    # --- chapter-specific ---------------------------------------------------
    alpha_trials: int  # Hein Table 2: 10000 uniform-noise trials
    seed: int = 0
    # Chapters 03-07 add their own fields below, each with its `ci` value as the
    # default here and its paper value set in FULL (cite the source there).
    # --- chapter 03 (ODIN) ---
    # --- chapter 04 (CCU) ---
    # --- chapter 05 (GOOD) ---
    # --- chapter 06 (ATOM) ---
    # --- chapter 07 (benchmark) ---

    def replace(self, **changes: object) -> Profile:
        """A copy with some fields changed (the profile itself is frozen)."""
        return dataclasses.replace(self, **changes)

    def asdict(self) -> dict[str, object]:
        """The profile as a plain dict (used in zoo config hashes)."""
        return dataclasses.asdict(self)


CI = Profile(
    name="ci",
    model="small_cnn",
    ibp_model="small_cnn",
    train_size=60000,
    epochs=2,
    batch_size=128,
    lr=1e-3,
    weight_decay=5e-4,
    lr_milestones=(0.5, 0.75, 0.9),
    aux_size=30000,
    test_size=10000,
    ood_size=1000,
    attack_size=200,
    pgd_train_steps=10,
    pgd_train_step_size=0.03,
    pgd_eval_steps=40,
    pgd_eval_restarts=1,
    eps=0.3,
    alpha_trials=1000,
)

FULL = Profile(
    name="full",
    model="lenet",  # Madry et al. LeNet, as in Hein et al. and Meinke & Hein
    ibp_model="good_l",  # Bitterwolf et al. 2020, Table 4 "L"
    train_size=60000,
    epochs=100,  # Hein §5, Meinke & Hein App. B
    batch_size=128,  # Meinke & Hein App. B
    lr=1e-3,  # Adam on MNIST (Hein §5)
    weight_decay=5e-4,  # Hein §5
    lr_milestones=(0.5, 0.75, 0.9),  # epochs 50, 75, 90 of 100
    aux_size=60000,
    test_size=10000,
    ood_size=10000,
    attack_size=1000,
    pgd_train_steps=40,  # Hein §5
    pgd_train_step_size=0.0075,  # Hein §5
    pgd_eval_steps=200,  # Hein Table 1: 200 iterations for adversarial noise
    pgd_eval_restarts=5,
    eps=0.3,  # Hein §5
    alpha_trials=10000,  # Hein Table 2
    # --- chapter 03 (ODIN) ---
    # --- chapter 04 (CCU) ---
    # --- chapter 05 (GOOD) ---
    # --- chapter 06 (ATOM) ---
    # --- chapter 07 (benchmark) ---
)

PROFILES: dict[str, Profile] = {"ci": CI, "full": FULL}


def get(name: str) -> Profile:
    """The profile called ``name`` (``'ci'`` or ``'full'``)."""
    check_choice(name, list(PROFILES), "profile")
    return PROFILES[name]


def current() -> Profile:
    """The profile named by ``$OODLIB_PROFILE`` (default ``ci``)."""
    name = os.environ.get(ENV_VAR, "ci").strip().lower() or "ci"
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} in ${ENV_VAR}; expected one of {sorted(PROFILES)} "
            f"(e.g. export {ENV_VAR}=ci)"
        )
    return PROFILES[name]
