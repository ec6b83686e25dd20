"""ATOM: adversarial training with informative outlier mining (Chen et al. 2021, §4–5).

The (K+1)-way classifier
------------------------
The network has ``K + 1`` outputs; class ``K + 1`` (index ``K`` here) means "out of
distribution". With softmax output ``F(x)``, the paper's **OOD score** is ``F(x)_{K+1}``
and the detector is (eq. 5–6)

    G(x) = −1 (OOD) if F(x)_{K+1} ≥ γ, else +1;     f̂(x) = argmax_{y ≤ K} F(x)_y.

The book's score convention is *higher = more in-distribution*, so :func:`ood_score`
returns ``1 − F(x)_{K+1}`` and :func:`ood_probability` the paper's ``F(x)_{K+1}``;
:func:`oodlib.metrics.tpr_threshold` picks γ so that 95 % of in-distribution inputs are kept (TPR 95 %,
i.e. FNR 5 %, the paper's "FPR at 5 % FNR"). The zoo builds the (K+1) head when
``num_classes=11`` is among the hyper-parameters (the defaults registered here set it);
the zoo's test error only looks at the first K outputs.

Training (the plug-ins ``ntom`` and ``atom`` of :data:`oodlib.zoo.PLUGINS`)
---------------------------------------------------------------------------
* ``"ntom"`` — eq. 7: ``CE(f(x), y) + λ · CE(f(x̃), K+1)`` on in-distribution ``(x, y)``
  and auxiliary outliers ``x̃`` labelled as the extra class.
* ``"atom"`` — eq. 4: the same, with the inner maximum ``max_{‖δ‖_∞ ≤ ε} CE(f(x̃ + δ), K+1)``
  solved by :func:`oodlib.attacks.pgd` (objective :func:`atom_objective`, ε = 8/255, 5
  steps of 2/255, random start) on **half** of each OOD batch, the other half clean (§4).

Both take the outliers of each epoch from **informative outlier mining** (Algorithm 1),
run in the :meth:`~oodlib.train.Method.epoch_pool` hook: sample ``N`` candidates from
the auxiliary pool, score them with the current model, sort by OOD score ascending
(hardest = lowest OOD score first), skip the ``q·N`` hardest and keep the next ``n``
(:func:`select_slice`). ``sampling="random"`` keeps ``n`` random pool images instead
(the "rand. sample" rows of Table 2). ``holdout`` reserves the last images of the pool
as the validation OOD set used to choose q (App. B.7); they are never trained on.

Hyper-parameters: ``lam`` (λ, loss weight, 1), ``out_ratio`` (out-batch size relative
to the in-batch; paper 128/64 = 2), ``n_candidates`` (N), ``n_keep`` (n), ``q``,
``sampling`` (``"mine"``/``"random"``), ``holdout``; ATOM adds ``eps``, ``steps``,
``step_size``. Defaults come from the profile's chapter-06 fields.

Evaluation (§5.1, App. B.4)
---------------------------
The four threat models (natural, corruption = worst of the 75 common corruptions by the
detector's own score, L∞ = PGD, compositional = corruption then PGD) are built by
:func:`oodlib.evaluate.threat_images` and tabulated by :func:`oodlib.evaluate.threat_table`
for :class:`oodlib.detectors.Detector` objects (:func:`oodlib.detectors.k1_detector` for
NTOM/ATOM), shared with chapter 07. App. B.7's rule for q is :func:`choose_q`; the validation
table it reads is :func:`oodlib.experiments.validation_table`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import attacks, train
from .profiles import Profile
from .runtime import logits as _logits
from .validation import (
    check_choice,
    check_images,
    check_int,
    check_number,
    check_positive_int,
    check_scores,
    describe,
)

SAMPLING = ("mine", "random")

# --------------------------------------------------------------------------- the (K+1) detector (eq. 5-6)


def _check_k1(z: torch.Tensor) -> torch.Tensor:
    if z.ndim != 2 or z.shape[1] < 3:
        raise ValueError(f"expected (K+1)-way logits of shape (N, K+1) with K >= 2, got {describe(z)}")
    return z


def ood_probability(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The paper's OOD score ``F(x)_{K+1}`` (eq. 5): softmax probability of the extra class, CPU."""
    check_images(x)
    z = _check_k1(_logits(model, x, batch_size))
    return torch.softmax(z, dim=1)[:, -1]


def ood_score(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``1 − F(x)_{K+1}``: the (K+1)-model's score in the book's convention (higher = in-distribution)."""
    check_images(x)
    z = _check_k1(_logits(model, x, batch_size))
    return 1.0 - torch.softmax(z, dim=1)[:, -1]


def classify(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Eq. 6: ``argmax_{y ≤ K} F(x)_y``, the semantic label (the extra class excluded)."""
    check_images(x)
    return _check_k1(_logits(model, x, batch_size))[:, :-1].argmax(dim=1)


def detect(scores: object, gamma: float) -> np.ndarray:
    """``G = +1`` (in-distribution) where the score is ≥ γ, else ``−1`` (eq. 5 in our convention)."""
    s = check_scores(scores)
    return np.where(s >= gamma, 1, -1)


def atom_objective(logits: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """``−log F(u)_{K+1}`` per sample: maximised by the inner problem of eq. 4 and by the
    L∞ attack on (K+1)-way detectors (App. B.4, eq. 118). ``y`` is ignored."""
    return -torch.log_softmax(_check_k1(logits), dim=1)[:, -1]


# --------------------------------------------------------------------------- mining (Algorithm 1)


def _check_q(q: object, n_keep: int, n_candidates: int) -> float:
    q = check_number(q, "q (in [0, 1 - n/N])")
    top = 1.0 - n_keep / n_candidates
    if not -1e-12 <= q <= top + 1e-12:
        raise ValueError(f"expected q in [0, 1 - n/N] = [0, {top:.4g}] (Algorithm 1), got {q!r}")
    return float(q)


def select_slice(ood_prob: object, q: float, n_keep: int) -> np.ndarray:
    """Algorithm 1, line 5: indices of ``V[qN : qN + n]`` after sorting the OOD scores ascending.

    ``ood_prob`` are the candidates' OOD scores ``F(x)_{K+1}`` (N values); the lowest are
    the hardest outliers (the model thinks they are in-distribution). Returns ``n_keep``
    candidate indices, hardest first. Ties are broken by candidate order (stable sort).
    """
    s = check_scores(ood_prob, "ood_prob")
    n_keep = check_positive_int(n_keep, "n_keep")
    if n_keep > len(s):
        raise ValueError(f"expected n_keep <= N = {len(s)} candidates, got {n_keep}")
    q = _check_q(q, n_keep, len(s))
    start = min(int(round(q * len(s))), len(s) - n_keep)
    order = np.argsort(s, kind="stable")
    return order[start : start + n_keep]


@dataclass
class Mined:
    """One round of Algorithm 1: the kept pool indices and the scored candidates."""

    kept: torch.Tensor  # pool indices of the n kept outliers (hardest first)
    candidates: torch.Tensor  # pool indices of the N scored candidates
    candidate_scores: torch.Tensor  # their OOD scores F(x)_{K+1}


def mine(
    model: nn.Module,
    pool: torch.Tensor,
    n_candidates: int,
    n_keep: int,
    q: float,
    generator: torch.Generator | None = None,
    batch_size: int = 2000,
) -> Mined:
    """Algorithm 1, lines 3–5: sample N of ``pool``, score them with ``model``, keep slice [qN, qN + n)."""
    check_images(pool, "pool")
    n_candidates = check_positive_int(n_candidates, "n_candidates")
    if n_candidates > len(pool):
        raise ValueError(f"expected n_candidates <= pool size {len(pool)}, got {n_candidates}")
    cand = torch.randperm(len(pool), generator=generator)[:n_candidates]
    scores = ood_probability(model, pool[cand], batch_size)
    keep = select_slice(scores, q, n_keep)
    return Mined(cand[torch.as_tensor(keep)], cand, scores)


def validation_split(pool: torch.Tensor, holdout: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(training part, validation part)`` of the auxiliary pool: the last ``holdout`` images validate."""
    check_images(pool, "pool")
    check_int(holdout, "holdout", low=0, high=len(pool) - 1)
    return pool[: len(pool) - holdout], pool[len(pool) - holdout :]


def test_split(x_test: torch.Tensor, max_val: int = 1000, max_eval: int = 5000
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tuning, evaluation)`` in-distribution test images, disjoint (App. B.3: q, ODIN and Mahalanobis
    are tuned on held-out data): the last ``min(max_val, N // 5)`` tune, the first ``max_eval`` of
    the rest evaluate (``ci`` / ``full``: 1 000 and 5 000 of 10 000)."""
    check_images(x_test, "x_test")
    if len(x_test) < 5:
        raise ValueError(f"expected at least 5 test images to split, got {len(x_test)}")
    n_val = min(max_val, len(x_test) // 5)
    return x_test[len(x_test) - n_val :], x_test[: len(x_test) - n_val][:max_eval]


# --------------------------------------------------------------------------- training plug-ins


class NTOM(train.Method):
    """Natural training with informative outlier mining (eq. 7, Algorithm 1).

    ``loss = CE(f(x), y) + lam · CE(f(x̃), K+1)``; the out-batch has ``ceil(out_ratio · B)``
    images drawn from this epoch's mined outliers. ``self.rounds`` keeps every epoch's
    :class:`Mined` (or the random indices) for inspection.
    """

    name = "ntom"
    out_source = "aux"

    def __init__(
        self,
        lam: float = 1.0,
        out_ratio: float = 1.0,
        n_candidates: int = 4000,
        n_keep: int = 1000,
        q: float = 0.0,
        sampling: str = "mine",
        holdout: int = 0,
    ) -> None:
        self.lam = check_number(lam, "lam", low=0, low_open=True)  # λ of eq. 4 / 7: the loss weight
        self.out_ratio = check_number(out_ratio, "out_ratio", low=0, low_open=True)
        self.n_candidates = check_positive_int(n_candidates, "n_candidates")
        self.n_keep = check_positive_int(n_keep, "n_keep")
        if self.n_keep > self.n_candidates:
            raise ValueError(f"expected n_keep <= n_candidates, got {n_keep} > {n_candidates}")
        self.q = _check_q(q, self.n_keep, self.n_candidates)
        self.sampling = check_choice(sampling, SAMPLING, "sampling")
        check_int(holdout, "holdout", low=0)
        self.holdout = holdout
        self.rounds: list[Mined | torch.Tensor] = []

    def epoch_pool(
        self, model: nn.Module, x_out: torch.Tensor, epoch: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Algorithm 1 for this epoch: the ``n_keep`` outliers to draw out-batches from."""
        usable, _ = validation_split(x_out, self.holdout) if self.holdout else (x_out, None)
        if self.sampling == "random":
            if self.n_keep > len(usable):
                raise ValueError(f"expected n_keep <= usable pool size {len(usable)}, got {self.n_keep}")
            idx = torch.randperm(len(usable), generator=generator)[: self.n_keep]
            self.rounds.append(idx)
            return usable[idx]
        mined = mine(model, usable, self.n_candidates, self.n_keep, self.q, generator)
        self.rounds.append(mined)
        return usable[mined.kept]

    def out_batch(self, model: nn.Module, batch: train.Batch) -> torch.Tensor:
        """The outliers the loss sees (clean for NTOM)."""
        if batch.x_out is None:
            raise ValueError(f"method {self.name!r} needs an auxiliary batch (pass x_out to train.fit)")
        return batch.x_out

    def loss(self, model: nn.Module, batch: train.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 7 (NTOM) / eq. 4 (ATOM, with :meth:`out_batch` perturbing half the outliers)."""
        z_in, z_out = train.in_out_logits(model, batch.x_in, self.out_batch(model, batch))
        k = _check_k1(z_in).shape[1] - 1
        ce_in = F.cross_entropy(z_in, batch.y_in)
        ce_out = F.cross_entropy(z_out, torch.full((len(z_out),), k, dtype=torch.long, device=z_out.device))
        loss = ce_in + self.lam * ce_out
        with torch.no_grad():
            p_in, p_out = (torch.softmax(z, dim=1)[:, -1] for z in (z_in, z_out))
        return loss, {"ce": ce_in.item(), "out": ce_out.item(), "ood_prob_in": p_in.mean().item(),
                      "ood_prob_out": p_out.mean().item(), "loss": loss.item()}


class ATOM(NTOM):
    """Adversarial training with informative outlier mining (eq. 4, Algorithm 1).

    Half of each OOD batch is replaced by ``argmax_{‖u − x̃‖_∞ ≤ eps} −log F(u)_{K+1}``
    (PGD, random start, ``steps`` steps of ``step_size``, best iterate), the other half
    stays clean (§4; App. B.1: ε = 8/255, 5 steps of 2/255).
    """

    name = "atom"

    def __init__(self, eps: float = 8 / 255, steps: int = 5, step_size: float = 2 / 255, **kwargs: object
                 ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.eps = check_number(eps, "eps", low=0, low_open=True)
        self.steps = check_positive_int(steps, "steps")
        self.step_size = check_number(step_size, "step_size", low=0, low_open=True)

    def out_batch(self, model: nn.Module, batch: train.Batch) -> torch.Tensor:
        """Half PGD-perturbed (the first ``⌊M/2⌋``), half clean outliers."""
        x_out = super().out_batch(model, batch)
        half = len(x_out) // 2
        if half == 0:
            return x_out
        adv = attacks.pgd(model, x_out[:half], atom_objective, eps=self.eps, steps=self.steps,
                          step_size=self.step_size, restarts=1, random_start=True, generator=batch.generator)
        return torch.cat([adv, x_out[half:]])


NTOM_HPARAMS = ("lam", "out_ratio", "n_candidates", "n_keep", "q", "sampling", "holdout")
ATOM_HPARAMS = (*NTOM_HPARAMS, "eps", "steps", "step_size")


def zoo_defaults(profile: Profile, method: str = "atom") -> dict[str, object]:
    """The zoo hyper-parameters of ``"ntom"`` / ``"atom"`` taken from the profile's ``atom`` part."""
    check_choice(method, ("ntom", "atom"), "method")
    a = profile.atom
    hp: dict[str, object] = {
        "num_classes": 11, "lam": 1.0, "out_ratio": a.out_ratio, "n_candidates": a.candidates,
        "n_keep": a.keep, "q": a.q, "sampling": "mine", "holdout": a.holdout,
    }
    if method == "atom":
        hp.update(eps=a.eps, steps=a.steps, step_size=a.step_size)
    return hp


def ablation_profile(profile: Profile) -> Profile:
    """The profile the q-ablation models train with: ``atom.ablation_{train_size,epochs,candidates,keep}``
    as ``train.train_size``, ``train.epochs``, ``atom.candidates`` and ``atom.keep``.

    In ``ci`` a reduced training set, and N, n scaled down with it; in ``full`` the main
    training setting (Table 2 ablates the main models).
    """
    a = profile.atom
    return profile.replace(
        train={"train_size": a.ablation_train_size, "epochs": a.ablation_epochs},
        atom={"candidates": a.ablation_candidates, "keep": a.ablation_keep},
    )


# ------------------------------------------------------------------------ OOD-score trajectory (Fig. 2 / 5)


class Tracked(nn.Module):
    """A (K+1)-classifier that carries the OOD scores of a fixed probe, one row per epoch (buffer
    ``trajectory``, ``epochs + 1`` rows: before training and after each epoch), so the scores are
    saved with its checkpoint — and with the training state of an interrupted run."""

    def __init__(self, net: nn.Module, probe_size: int, epochs: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("trajectory", torch.full((epochs + 1, probe_size), math.nan))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Trajectory(NTOM):
    """Figures 2 and 5's run: NTOM's objective (eq. 7) trained without mining (``sampling="random"``)
    while a fixed probe — the first ``probe_size`` images of the pool's training split — is scored with
    ``F(x)_{K+1}`` before the first epoch and after every one (:class:`Tracked`). The zoo trains it
    (method ``"ntom_trajectory"``), so the chapter reads the histograms instead of training in a cell.
    """

    name = "ntom_trajectory"

    def __init__(self, probe_size: int = 3000, epochs: int = 1, **ntom: Any) -> None:
        super().__init__(**ntom)
        self.probe_size = check_positive_int(probe_size, "probe_size")
        self.epochs = check_positive_int(epochs, "epochs")
        self.probe: torch.Tensor | None = None

    def wrap(self, model: nn.Module) -> nn.Module:
        return Tracked(model, self.probe_size, self.epochs)

    def init_from_data(self, model: nn.Module, x: torch.Tensor, x_out: torch.Tensor | None) -> None:
        if x_out is None:
            raise ValueError(f"method {self.name!r} needs the auxiliary pool (pass x_out to train.fit)")
        usable = validation_split(x_out, self.holdout)[0] if self.holdout else x_out
        if len(usable) < self.probe_size:
            raise ValueError(f"expected a pool training split of >= probe_size = {self.probe_size} images, "
                             f"got {len(usable)}")
        self.probe = usable[: self.probe_size]
        self._score(model, 0)

    def after_epoch(self, model: nn.Module, epoch: int) -> None:
        self._score(model, epoch + 1)

    def _score(self, model: nn.Module, row: int) -> None:
        if not isinstance(model, Tracked) or row >= len(model.trajectory) or self.probe is None:
            raise ValueError(f"expected the Tracked model of this method with a row {row} for "
                             f"{self.epochs} epochs, got {describe(model)}")
        model.trajectory[row] = ood_probability(model, self.probe).to(model.trajectory.device)


TRAJECTORY_HPARAMS = (*NTOM_HPARAMS, "probe_size", "epochs")


def trajectory_defaults(profile: Profile) -> dict[str, object]:
    """The zoo hyper-parameters of ``"ntom_trajectory"``: NTOM's, random sampling, a probe of up to
    3 000 pool images, and the profile's epochs (one row of scores per epoch)."""
    a = profile.atom
    return {**zoo_defaults(profile, "ntom"), "sampling": "random", "epochs": profile.train.epochs,
            "probe_size": min(3000, profile.train.aux_size - a.holdout)}


def trajectory_profile(profile: Profile) -> Profile:
    """The profile of the Figure 2/5 run: ``atom.hist_train_size`` images for ``atom.hist_epochs``."""
    return profile.replace(train={"train_size": profile.atom.hist_train_size,
                                  "epochs": profile.atom.hist_epochs})


def choose_q(validation: pd.DataFrame, candidates: Mapping[str, float]) -> tuple[float, pd.Series]:
    """App. B.7: the q whose model has the lowest FPR at 5 % FNR averaged over the threat types.

    ``validation`` is an :func:`oodlib.evaluate.threat_table` table on the validation split; ``candidates``
    maps its model names to their q. Returns ``(q, mean FPR per model)``; ties go to the smaller q.
    """
    fpr = validation[validation.metric == "FPR95"].groupby(["model", "threat"])["value"].mean()
    per_model = fpr.groupby("model").mean()
    ranked = sorted(candidates.items(), key=lambda kv: (per_model.get(kv[0], np.inf), kv[1]))
    if not ranked or ranked[0][0] not in per_model:
        raise ValueError(f"expected validation rows for the models {sorted(candidates)}, "
                         f"got {sorted(per_model.index)}")
    return float(ranked[0][1]), per_model.reindex(list(candidates))


# --------------------------------------------------------------------------- the paper's Table 1

#: Chen et al. 2021, Table 1, in-distribution CIFAR-10 (DenseNet): (FPR95, AUROC) in % per threat, for
#: the detectors this book runs; each value the mean over the six natural OOD test sets (SVHN, Textures,
#: Places365, LSUN crop and resize, iSUN). The MSP row is printed with broken digits in our copy
#: ("-5034", "-100.00-"); its natural FPR is 50.54, as Table 6 prints the same row and as the mean of
#: Table 15's six per-set values is (earlier read here as 50.34), the others 100.00 / 58.35, 100.00 /
#: 13.82, 100.00 / 13.67.
PAPER_THREATS = ("natural", "corruption", "linf", "compositional")
PAPER_TABLE1_CIFAR10: dict[str, tuple[tuple[float, float], ...]] = {
    "MSP": ((50.54, 91.79), (100.00, 58.35), (100.00, 13.82), (100.00, 13.67)),
    "ODIN": ((21.65, 94.66), (99.37, 51.44), (99.99, 0.18), (100.00, 0.01)),
    "Mahalanobis": ((26.95, 90.30), (91.92, 43.94), (95.07, 12.47), (99.88, 1.58)),
    "OE": ((3.66, 98.82), (56.25, 90.66), (99.94, 0.34), (99.99, 0.16)),
    "ACET": ((12.28, 97.67), (66.93, 88.43), (74.45, 78.05), (96.88, 53.71)),
    "CCU": ((3.39, 98.92), (56.76, 89.38), (99.91, 0.35), (99.97, 0.21)),
    "NTOM": ((1.87, 99.28), (30.58, 94.67), (99.90, 1.22), (99.99, 0.45)),
    "ATOM": ((1.69, 99.20), (25.26, 95.29), (20.55, 88.94), (38.89, 86.71)),
}


#: Chen et al. 2021, Table 1, all three in-distribution sets (DenseNet): SVHN (its natural sets have CIFAR-10
#: in SVHN's place), CIFAR-10 (``PAPER_TABLE1_CIFAR10``), and CIFAR-100 (whose MSP row, printed "-7805" and
#: "-10000-", reads 78.05 and 100.00, as Tables 6 and 16 confirm). Every value agrees with the mean of
#: the per-set Tables 14-16 to rounding.
PAPER_TABLE1_BY_SET: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {
    "SVHN": {
        "MSP": ((38.84, 93.57), (99.68, 68.48), (99.89, 1.39), (100.00, 0.19)),
        "ODIN": ((31.45, 93.52), (97.11, 63.21), (99.86, 0.61), (100.00, 0.05)),
        "Mahalanobis": ((22.80, 95.57), (93.14, 60.78), (97.33, 8.89), (99.89, 0.23)),
        "OE": ((0.60, 99.88), (23.44, 96.23), (69.36, 52.19), (99.65, 1.27)),
        "ACET": ((0.49, 99.91), (17.03, 97.23), (29.33, 86.75), (99.85, 5.13)),
        "CCU": ((0.50, 99.90), (24.17, 96.11), (52.17, 62.24), (99.42, 1.60)),
        "NTOM": ((0.04, 99.98), (2.87, 99.16), (60.28, 64.06), (99.78, 1.50)),
        "ATOM": ((0.07, 99.97), (5.47, 98.52), (7.02, 98.00), (96.33, 49.52)),
    },
    "CIFAR-10": PAPER_TABLE1_CIFAR10,
    "CIFAR-100": {
        "MSP": ((78.05, 76.11), (100.00, 30.04), (100.00, 2.25), (100.00, 2.06)),
        "ODIN": ((56.77, 83.62), (100.00, 36.95), (100.00, 0.14), (100.00, 0.00)),
        "Mahalanobis": ((42.63, 87.86), (95.92, 42.96), (95.44, 15.87), (99.86, 2.08)),
        "OE": ((49.21, 88.05), (99.96, 45.01), (100.00, 0.94), (100.00, 0.59)),
        "ACET": ((50.93, 89.29), (99.53, 54.19), (76.27, 59.45), (99.71, 38.63)),
        "CCU": ((43.04, 90.95), (99.90, 48.34), (100.00, 0.75), (100.00, 0.48)),
        "NTOM": ((36.94, 92.61), (98.17, 65.70), (99.97, 0.76), (100.00, 0.16)),
        "ATOM": ((32.30, 93.06), (93.15, 71.96), (38.72, 88.03), (93.44, 69.15)),
    },
}


def paper_fpr(detector: str, threat: str) -> float:
    """FPR95 (%) of ``detector`` under ``threat`` in ATOM's Table 1 (CIFAR-10)."""
    if detector not in PAPER_TABLE1_CIFAR10 or threat not in PAPER_THREATS:
        raise ValueError(f"expected a detector in {sorted(PAPER_TABLE1_CIFAR10)} and a threat in "
                         f"{PAPER_THREATS}, got {detector!r}, {threat!r}")
    return PAPER_TABLE1_CIFAR10[detector][PAPER_THREATS.index(threat)][0]


#: Chen et al. 2021, Table 2 (DenseNet): FPR (5 % FNR, %) of the q ablation per threat of PAPER_THREATS,
#: mean over the natural OOD test sets; None where our copy of the paper prints no legible number
#: (CIFAR-10's random-sampling row: its compositional FPR).
PAPER_TABLE2: dict[str, dict[str, tuple[float | None, ...]]] = {
    "SVHN": {"ATOM (rand. sample)": (0.35, 13.09, 11.72, 98.66), "ATOM (q=0.0)": (0.07, 5.47, 7.02, 96.33),
             "ATOM (q=0.125)": (1.30, 34.97, 39.61, 99.92), "ATOM (q=0.25)": (1.36, 41.98, 52.39, 99.97),
             "ATOM (q=0.5)": (2.11, 44.85, 59.72, 99.97), "ATOM (q=0.75)": (2.91, 51.33, 66.20, 99.96)},
    "CIFAR-10": {"ATOM (rand. sample)": (2.65, 42.28, 44.31, None),
                 "ATOM (q=0.0)": (2.24, 40.46, 36.80, 66.15),
                 "ATOM (q=0.125)": (1.69, 25.26, 20.55, 38.89), "ATOM (q=0.25)": (2.34, 22.71, 24.93, 41.58),
                 "ATOM (q=0.5)": (4.03, 33.93, 22.39, 45.11), "ATOM (q=0.75)": (5.35, 41.02, 21.87, 43.64)},
}


#: Chen et al. 2021, App. B.12, Table 12 (DenseNet): the classifier's test accuracy (%) of the pre-trained
#: network (the MSP row) and of ATOM, per in-distribution
PAPER_TABLE12_ACCURACY: dict[str, tuple[float, float]] = {
    "SVHN": (95.83, 96.09), "CIFAR-10": (94.39, 95.20), "CIFAR-100": (75.05, 75.06)}


#: Chen et al. 2021, App. B.2, Table 3: the estimated average runtime (hours) of one result per method,
#: DenseNet, one NVIDIA GeForce RTX 2080 Ti (App. B.1) on a machine with 4 GPUs and 32 cores:
#: (training, evaluation on the four threats). The paper's only statement of GPU time, the only
#: measured GPU hours this book can print. MSP's training time is illegible in our copy ("-23Σ^^");
#: MSP, ODIN and Mahalanobis share one standard training (the table's note), which ODIN's and
#: Mahalanobis' rows give as 2.5 h; MSP's is None here, and :func:`paper_training_hours` reads ODIN's
#: row for the standard training, saying so.
PAPER_TABLE3_HOURS: dict[str, tuple[float | None, float]] = {
    "MSP": (None, 4.0), "ODIN": (2.5, 4.0), "Mahalanobis": (2.5, 20.0), "SOFL": (14.0, 4.0),
    "OE": (5.0, 4.0), "ACET": (17.0, 4.0), "CCU": (6.7, 4.0), "ROWL": (24.0, 4.0), "ATOM": (21.0, 4.0)}


def paper_training_hours(method: str) -> float:
    """Table 3's training hours of one of this book's training methods (``"plain"``, ``"oe"``,
    ``"acet"``, ``"ccu"``, ``"atom"``): ``"plain"`` is the standard training that Table 3 times under
    ODIN and Mahalanobis (MSP's own entry is illegible in our copy)."""
    rows = {"plain": "ODIN", "oe": "OE", "acet": "ACET", "ccu": "CCU", "atom": "ATOM"}
    if method not in rows:
        raise ValueError(f"expected one of {sorted(rows)} (the methods Table 3 times), got {method!r}")
    return float(PAPER_TABLE3_HOURS[rows[method]][0] or math.nan)  # every row read here is legible


def paper_accuracy_text() -> str:
    """Table 12's ATOM minus pre-trained accuracy per data set, e.g. ``"SVHN +0.26, ... points"``."""
    gaps = ", ".join(f"{k} {b - a:+.2f}" for k, (a, b) in PAPER_TABLE12_ACCURACY.items())
    return gaps + " points (Table 12)"


def paper_mean_fpr_gap(dataset: str, a: str, b: str) -> tuple[float, int]:
    """Table 2's mean FPR of row ``a`` minus row ``b`` (points), over the threats both rows report.

    Returns the gap and the number of threats it averages (4, or 3 where a value is illegible).
    """
    rows = PAPER_TABLE2.get(dataset, {})
    if a not in rows or b not in rows:
        raise ValueError(f"expected dataset in {sorted(PAPER_TABLE2)} and rows in {sorted(rows) or '[]'}, "
                         f"got {dataset!r}, {a!r}, {b!r}")
    pairs = [(x, y) for x, y in zip(rows[a], rows[b], strict=True) if x is not None and y is not None]
    return sum(x - y for x, y in pairs) / len(pairs), len(pairs)


def paper_gap_text(rivals: list[str] | tuple[str, ...], threat: str) -> str:
    """Table 1's best rival FPR minus ATOM's under ``threat`` (CIFAR-10), with both FPRs, for a claims table.

    E.g. the compositional threat over the detectors this book runs: ``"57.99 points (CIFAR-10: ACET
    96.88 vs 38.89)"``.
    """
    if not rivals:
        raise ValueError("expected at least one rival detector, got none")
    best = min(rivals, key=lambda r: paper_fpr(r, threat))
    return (f"{paper_fpr(best, threat) - paper_fpr('ATOM', threat):.2f} points (CIFAR-10: {best} "
            f"{paper_fpr(best, threat):.2f} vs {paper_fpr('ATOM', threat):.2f})")
