"""GOOD: guaranteed OOD detection by interval bound propagation (Bitterwolf, Meinke & Hein 2020).

* **GOOD and quantile GOOD (eq. 9 / 10).** The training plug-in ``"good"``: cross-entropy on the
  in-distribution plus ``κ`` times the CUB loss (eq. 8, :func:`oodlib.ibp.cub_loss`) at radius ε
  on the fraction ``q`` of each out-batch with the *lowest* bound loss and the CUB loss at ε = 0
  on the rest; ``q = 1`` is GOOD_100 (eq. 9), ``q = 0`` is GOOD_0 (an OE/CEDA-like model). ε and
  κ ramp up linearly (:func:`ramp`; §4.1, the paper's exact schedule is in its Appendix D).
* **Evaluation (§5).** The AUC, the adversarial AUC (AAUC: the worst confidence an APGD attack
  finds in the ε-ball) and the guaranteed AUC (GAUC: IBP's certified upper bound, eq. 6) of
  Table 1 are the threats :data:`oodlib.evaluate.GOOD_THREATS` of the book's one evaluation,
  :func:`oodlib.evaluate.threat_table`, with :func:`oodlib.detectors.good_detector`.

The bounds themselves (eq. 3–8) are in :mod:`oodlib.ibp`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import beside, train
from .data import label
from .ibp import certified_confidence, cub_loss, cub_loss_clean, logit_diff_upper
from .metrics import auroc_conservative
from .profiles import Profile
from .runtime import progress
from .validation import check_number, describe

# --------------------------------------------------------------------------- GOOD training (eq. 9 / 10)


def ramp(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear ramp-up factor in [0, 1]: 0 before ``start``, 1 after ``end`` (fractions of training)."""
    if total_steps <= 0:
        raise ValueError(f"expected total_steps > 0, got {total_steps!r}")
    frac = step / total_steps
    if end <= start:
        return 1.0 if frac >= start else 0.0
    return float(min(1.0, max(0.0, (frac - start) / (end - start))))


class GOOD(train.Method):
    """Guaranteed OOD detection training (eq. 9) and quantile GOOD_Q (eq. 10).

    ``loss = CE(f(x_in), y) + κ_t/M [ Σ_{j <= ⌊qM⌋} L_CUB(x_πj; ε_t) + Σ_{j > ⌊qM⌋} L_CUB(x_πj; 0) ]``

    where ``π`` sorts the out-batch (``M = ceil(lam·B)`` auxiliary images) by
    ``L_CUB(x; ε_t)`` ascending, so the bound loss goes to the *easiest* q-fraction.
    ``ε_t = r_t ε`` and ``κ_t = r_t κ`` with the linear ramp ``r_t`` =
    :func:`ramp` ``(step, total_steps, ramp_start, ramp_end)``.

    Hyper-parameters: ``quantile`` q in [0, 1] (GOOD_Q with Q = 100 q), ``eps``,
    ``kappa`` (paper, MNIST: ε = 0.3, κ = 0.3), ``ramp_start`` / ``ramp_end``
    (fractions of training), ``lam`` (out-batch size relative to B; the paper uses
    128 + 128, i.e. 1).
    """

    name = "good"
    bf16_safe = False  # the IBP bounds in the loss (eq. 3-8) stay float32, like every certificate
    out_source = "aux"

    def __init__(
        self,
        quantile: float = 1.0,
        eps: float = 0.3,
        kappa: float = 0.3,
        ramp_start: float = 0.0,
        ramp_end: float = 0.5,
        lam: float = 1.0,
    ) -> None:
        self.quantile = check_number(quantile, "quantile", low=0, high=1)
        self.eps = check_number(eps, "eps", low=0)
        self.kappa = check_number(kappa, "kappa", low=0)
        self.ramp_start = check_number(ramp_start, "ramp_start", low=0, high=1)
        self.ramp_end = check_number(ramp_end, "ramp_end", low=0, high=1)
        if self.ramp_end < self.ramp_start:
            raise ValueError(f"expected ramp_start <= ramp_end, got {ramp_start} and {ramp_end}")
        # GOOD's loss weight is kappa; its hyper-parameter lam is only the out-batch ratio
        self.out_ratio = check_number(lam, "lam", low=0, low_open=True)

    def schedule(self, step: int, total_steps: int) -> tuple[float, float]:
        """``(ε_t, κ_t)`` at ``step`` (linear ramp-up, §4.1)."""
        r = ramp(step, total_steps, self.ramp_start, self.ramp_end)
        return r * self.eps, r * self.kappa

    def out_loss(self, model: nn.Module, x_out: torch.Tensor, logits_out: torch.Tensor,
                 eps: float) -> tuple[torch.Tensor, dict[str, float]]:
        """The bracket of eq. 10 divided by M (eq. 9 when ``quantile == 1``)."""
        m = len(x_out)
        clean = cub_loss_clean(logits_out)
        n_bound = math.floor(self.quantile * m + 1e-9)
        logs = {"cub0": clean.mean().item()}
        if n_bound == 0:
            return clean.mean(), logs
        if eps == 0.0:  # the bound at radius 0 is the clean loss (up to rounding)
            return clean.mean(), {**logs, "cub_eps": logs["cub0"], "bound_frac": n_bound / m}
        bound = cub_loss(logit_diff_upper(model, x_out, eps))
        order = torch.argsort(bound.detach())
        use_bound = torch.zeros(m, dtype=torch.bool, device=x_out.device)
        use_bound[order[:n_bound]] = True
        per = torch.where(use_bound, bound, clean)
        logs.update(cub_eps=bound.mean().item(), bound_frac=n_bound / m)
        return per.mean(), logs

    def loss(self, model: nn.Module, batch: train.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 10 (eq. 9 for ``quantile = 1``) with the ramped ε_t and κ_t."""
        if batch.x_out is None:
            raise ValueError("method 'good' needs an auxiliary batch (pass x_out to train.fit)")
        eps, kappa = self.schedule(batch.step, batch.total_steps)
        if self.quantile == 1.0:  # eq. 9: the clean out-logits are not needed (saves ~1/4 of a step)
            ce = F.cross_entropy(model(batch.x_in), batch.y_in)
            out = cub_loss(logit_diff_upper(model, batch.x_out, eps)).mean()
            loss = ce + kappa * out
            return loss, {"ce": ce.item(), "out": out.item(), "cub_eps": out.item(), "eps": eps,
                          "kappa": kappa, "loss": loss.item(), "bound_frac": 1.0}
        z_in, z_out = train.in_out_logits(model, batch.x_in, batch.x_out)
        ce = F.cross_entropy(z_in, batch.y_in)
        out, logs = self.out_loss(model, batch.x_out, z_out, eps)
        loss = ce + kappa * out
        with torch.no_grad():
            mmc_out = torch.softmax(z_out, dim=1).max(dim=1).values.mean()
        return loss, {"ce": ce.item(), "out": out.item(), "mmc_out": mmc_out.item(), "eps": eps,
                      "kappa": kappa, "loss": loss.item(), **logs}


HPARAMS = ("quantile", "eps", "kappa", "ramp_start", "ramp_end", "lam")


def zoo_defaults(profile: Profile) -> dict[str, object]:
    """GOOD's hyper-parameters from the profile's ``good`` part (they enter the zoo hash)."""
    return {
        "quantile": 1.0,
        "eps": profile.good.eps,
        "kappa": profile.good.kappa,
        "ramp_start": profile.good.ramp[0],
        "ramp_end": profile.good.ramp[1],
    }




# --------------------------------------------------------------------------- helpers for chapters


def quantile_name(q: float) -> str:
    """``GOOD_Q`` with ``Q = 100 q`` (e.g. ``GOOD_80``)."""
    return f"GOOD_{round(100 * q)}"


# --------------------------------------------------------------------------- the paper's Table 1 and App. I

#: Bitterwolf et al. 2020, Table 1 (in-distribution MNIST, eps = 0.3, their L CNN): test accuracy (%), then
#: (AUC, AAUC, GAUC) in % on its four OOD sets. Our in-distribution is Fashion-MNIST, so their
#: "FashionMNIST" column sits beside our MNIST column with the roles swapped.
PAPER_TABLE1: dict[str, tuple[float, dict[str, tuple[float, float, float]]]] = {
    "plain": (99.4, {
        "FashionMNIST": (98.0, 34.2, 0.0),
        "EMNIST letters": (88.0, 31.4, 0.0),
        "CIFAR-10": (98.8, 36.6, 0.0),
        "uniform noise": (99.1, 36.5, 0.0),
    }),
    "CEDA": (99.4, {
        "FashionMNIST": (99.9, 82.1, 0.0),
        "EMNIST letters": (92.6, 52.8, 0.0),
        "CIFAR-10": (100.0, 95.1, 0.0),
        "uniform noise": (100.0, 100.0, 0.0),
    }),
    "OE": (99.4, {
        "FashionMNIST": (99.9, 76.8, 0.0),
        "EMNIST letters": (92.7, 50.9, 0.0),
        "CIFAR-10": (100.0, 92.4, 0.0),
        "uniform noise": (100.0, 100.0, 0.0),
    }),
    "ACET": (99.4, {
        "FashionMNIST": (100.0, 98.4, 0.0),
        "EMNIST letters": (95.9, 61.5, 0.0),
        "CIFAR-10": (100.0, 99.3, 0.0),
        "uniform noise": (100.0, 100.0, 0.0),
    }),
    "CCU": (99.5, {
        "FashionMNIST": (100.0, 76.6, 0.0),
        "EMNIST letters": (92.9, 3.1, 0.0),
        "CIFAR-10": (100.0, 98.9, 0.0),
        "uniform noise": (100.0, 100.0, 0.0),
    }),
    "GOOD_0": (99.5, {
        "FashionMNIST": (99.9, 82.3, 0.0),
        "EMNIST letters": (92.9, 55.0, 0.0),
        "CIFAR-10": (100.0, 94.7, 0.0),
        "uniform noise": (100.0, 100.0, 0.0),
    }),
    "GOOD_20": (99.0, {
        "FashionMNIST": (99.8, 88.2, 9.7),
        "EMNIST letters": (95.3, 54.3, 0.0),
        "CIFAR-10": (100.0, 97.6, 28.3),
        "uniform noise": (100.0, 100.0, 100.0),
    }),
    "GOOD_40": (99.0, {
        "FashionMNIST": (99.8, 88.0, 29.1),
        "EMNIST letters": (95.7, 56.6, 0.0),
        "CIFAR-10": (100.0, 97.7, 65.2),
        "uniform noise": (100.0, 100.0, 100.0),
    }),
    "GOOD_60": (99.0, {
        "FashionMNIST": (99.9, 88.8, 42.0),
        "EMNIST letters": (96.6, 57.9, 0.1),
        "CIFAR-10": (100.0, 97.9, 85.3),
        "uniform noise": (100.0, 100.0, 100.0),
    }),
    "GOOD_80": (99.1, {
        "FashionMNIST": (99.8, 90.3, 55.5),
        "EMNIST letters": (97.9, 63.1, 3.4),
        "CIFAR-10": (100.0, 98.4, 94.7),
        "uniform noise": (100.0, 100.0, 100.0),
    }),
    "GOOD_90": (98.8, {
        "FashionMNIST": (99.9, 91.4, 66.9),
        "EMNIST letters": (98.0, 59.4, 5.1),
        "CIFAR-10": (100.0, 99.0, 97.8),
        "uniform noise": (100.0, 100.0, 100.0),
    }),
    "GOOD_95": (98.8, {
        "FashionMNIST": (99.9, 93.1, 73.9),
        "EMNIST letters": (98.7, 59.2, 5.6),
        "CIFAR-10": (100.0, 99.4, 98.8),
        "uniform noise": (100.0, 100.0, 100.0),
    }),
    "GOOD_100": (98.7, {
        "FashionMNIST": (100.0, 96.5, 78.0),
        "EMNIST letters": (99.0, 53.8, 3.3),
        "CIFAR-10": (100.0, 99.9, 99.4),
        "uniform noise": (100.0, 100.0, 100.0),
    }),
}

#: Bitterwolf et al. 2020, Table 1, every block: MNIST (:data:`PAPER_TABLE1`, ε = 0.3, the L CNN), SVHN
#: (ε = 0.03) and CIFAR-10 (ε = 0.01, the XL CNN): test accuracy (%), then (AUC, AAUC, GAUC) in % per OOD
#: set, the paper's set names ("LSUN classroom" and "uniform noise" as the MNIST block writes them)
PAPER_TABLE1_BY_SET: dict[str, dict[str, tuple[float, dict[str, tuple[float, float, float]]]]] = {
    "MNIST": PAPER_TABLE1,
    "SVHN": {
        "plain": (95.5, {"CIFAR-100": (94.9, 11.3, 0.0), "CIFAR-10": (95.2, 11.1, 0.0),
            "LSUN classroom": (95.7, 14.1, 0.0), "uniform noise": (99.4, 57.9, 0.0)}),
        "CEDA": (95.3, {"CIFAR-100": (99.9, 63.9, 0.0), "CIFAR-10": (99.9, 68.7, 0.0),
            "LSUN classroom": (99.9, 80.7, 0.0), "uniform noise": (99.9, 99.3, 0.0)}),
        "OE": (95.5, {"CIFAR-100": (100.0, 60.2, 0.0), "CIFAR-10": (100.0, 62.5, 0.0),
            "LSUN classroom": (100.0, 77.3, 0.0), "uniform noise": (100.0, 98.2, 0.0)}),
        "ACET": (96.0, {"CIFAR-100": (100.0, 99.4, 0.0), "CIFAR-10": (100.0, 99.5, 0.0),
            "LSUN classroom": (100.0, 99.8, 0.0), "uniform noise": (99.9, 96.3, 0.0)}),
        "CCU": (95.7, {"CIFAR-100": (100.0, 52.5, 0.0), "CIFAR-10": (100.0, 56.8, 0.0),
            "LSUN classroom": (100.0, 72.1, 0.0), "uniform noise": (100.0, 100.0, 0.0)}),
        "GOOD_0": (97.0, {"CIFAR-100": (100.0, 61.0, 0.0), "CIFAR-10": (100.0, 60.0, 0.0),
            "LSUN classroom": (100.0, 60.8, 0.0), "uniform noise": (100.0, 82.5, 0.0)}),
        "GOOD_20": (95.9, {"CIFAR-100": (99.8, 78.2, 24.4), "CIFAR-10": (99.9, 81.8, 20.3),
            "LSUN classroom": (99.9, 91.2, 21.6), "uniform noise": (99.7, 99.5, 99.5)}),
        "GOOD_40": (96.3, {"CIFAR-100": (99.5, 81.6, 46.0), "CIFAR-10": (99.5, 85.0, 50.6),
            "LSUN classroom": (99.5, 95.1, 55.7), "uniform noise": (99.5, 99.5, 99.4)}),
        "GOOD_60": (96.1, {"CIFAR-100": (99.4, 83.9, 67.4), "CIFAR-10": (99.4, 87.4, 72.9),
            "LSUN classroom": (99.4, 96.5, 82.3), "uniform noise": (99.4, 99.4, 99.4)}),
        "GOOD_80": (96.3, {"CIFAR-100": (100.0, 93.5, 87.7), "CIFAR-10": (100.0, 95.3, 91.3),
            "LSUN classroom": (100.0, 98.8, 96.7), "uniform noise": (100.0, 100.0, 99.7)}),
        "GOOD_90": (96.2, {"CIFAR-100": (99.8, 96.0, 93.9), "CIFAR-10": (99.8, 97.3, 96.1),
            "LSUN classroom": (99.8, 98.9, 98.3), "uniform noise": (99.8, 99.8, 99.8)}),
        "GOOD_95": (96.4, {"CIFAR-100": (99.8, 97.2, 96.1), "CIFAR-10": (99.8, 98.0, 97.3),
            "LSUN classroom": (99.8, 99.3, 98.9), "uniform noise": (99.9, 99.9, 99.8)}),
        "GOOD_100": (96.3, {"CIFAR-100": (99.6, 97.7, 97.3), "CIFAR-10": (99.7, 98.4, 98.1),
            "LSUN classroom": (99.9, 99.2, 98.9), "uniform noise": (100.0, 99.9, 99.8)}),
    },
    "CIFAR-10": {
        "plain": (90.1, {"CIFAR-100": (84.3, 13.0, 0.0), "SVHN": (87.7, 10.6, 0.0),
            "LSUN classroom": (88.9, 13.6, 0.0), "uniform noise": (90.8, 56.4, 0.0)}),
        "CEDA": (88.6, {"CIFAR-100": (91.8, 31.9, 0.0), "SVHN": (97.9, 25.7, 0.0),
            "LSUN classroom": (98.9, 53.9, 0.0), "uniform noise": (97.3, 70.5, 0.0)}),
        "OE": (90.7, {"CIFAR-100": (92.4, 11.0, 0.0), "SVHN": (97.6, 3.7, 0.0),
            "LSUN classroom": (98.9, 20.0, 0.0), "uniform noise": (98.7, 75.7, 0.0)}),
        "ACET": (89.3, {"CIFAR-100": (90.7, 74.5, 0.0), "SVHN": (96.6, 88.0, 0.0),
            "LSUN classroom": (98.3, 91.2, 0.0), "uniform noise": (99.7, 98.9, 0.0)}),
        "CCU": (91.6, {"CIFAR-100": (93.0, 23.3, 0.0), "SVHN": (97.1, 14.8, 0.0),
            "LSUN classroom": (99.3, 38.2, 0.0), "uniform noise": (100.0, 100.0, 0.0)}),
        "GOOD_0": (89.8, {"CIFAR-100": (92.9, 22.5, 0.0), "SVHN": (97.0, 12.8, 0.0),
            "LSUN classroom": (98.3, 48.4, 0.0), "uniform noise": (96.3, 95.6, 0.0)}),
        "GOOD_20": (88.5, {"CIFAR-100": (90.3, 32.4, 11.8), "SVHN": (95.9, 28.3, 15.8),
            "LSUN classroom": (98.2, 48.2, 3.4), "uniform noise": (99.4, 97.6, 87.5)}),
        "GOOD_40": (89.5, {"CIFAR-100": (89.6, 38.2, 24.8), "SVHN": (95.4, 38.0, 24.9),
            "LSUN classroom": (96.0, 62.0, 27.4), "uniform noise": (92.1, 89.9, 89.8)}),
        "GOOD_60": (90.2, {"CIFAR-100": (88.6, 42.6, 34.9), "SVHN": (95.6, 44.4, 39.0),
            "LSUN classroom": (97.0, 67.6, 49.1), "uniform noise": (91.8, 91.3, 91.2)}),
        "GOOD_80": (90.1, {"CIFAR-100": (85.6, 48.2, 42.3), "SVHN": (94.0, 41.4, 38.0),
            "LSUN classroom": (93.3, 66.9, 55.2), "uniform noise": (95.8, 95.4, 95.3)}),
        "GOOD_90": (90.2, {"CIFAR-100": (81.7, 51.5, 49.6), "SVHN": (91.4, 48.7, 46.9),
            "LSUN classroom": (90.2, 63.5, 57.7), "uniform noise": (89.3, 87.7, 87.7)}),
        "GOOD_95": (90.4, {"CIFAR-100": (80.3, 52.0, 50.8), "SVHN": (90.2, 44.4, 43.3),
            "LSUN classroom": (88.3, 62.6, 60.3), "uniform noise": (96.6, 95.9, 95.8)}),
        "GOOD_100": (90.1, {"CIFAR-100": (70.0, 54.7, 54.2), "SVHN": (75.5, 58.9, 56.9),
            "LSUN classroom": (75.2, 61.5, 61.0), "uniform noise": (99.5, 99.2, 99.0)}),
    },
}

#: Bitterwolf et al. 2020, Table 4 (and Figure 2): mean confidence (%) of the MNIST models on EMNIST letters
PAPER_LETTERS_MMC: dict[str, float] = {"plain": 91.5, "OE": 87.9, "ACET": 75.0, "GOOD_100": 27.1}
#: ... and §4.2's text: GOOD_100's mean confidence (%) on the MNIST test set (the only in-distribution one
#: the paper quotes)
PAPER_MNIST_MMC: dict[str, float] = {"GOOD_100": 98.4}


def paper_mean_auc(model: str, column: int = 0) -> float:
    """Mean over :data:`PAPER_TABLE1`'s four MNIST OOD sets of ``model``'s AUC (``column`` 0), AAUC (1)
    or GAUC (2)."""
    if model not in PAPER_TABLE1 or column not in (0, 1, 2):
        raise ValueError(f"expected a model in {sorted(PAPER_TABLE1)} and a column in (0, 1, 2), "
                         f"got {model!r}, {column!r}")
    sets = PAPER_TABLE1[model][1]
    return sum(v[column] for v in sets.values()) / len(sets)


def table1_beside_paper(table: pd.DataFrame, pairs: Mapping[str, str]) -> pd.DataFrame:
    """Our Table 1 beside the paper's: one row per model, accuracy and ``AUC / AAUC / GAUC`` (%) per set.

    Columns ``"acc paper"``, ``"acc ours"``, then per paper set ``"<paper set> / <our set> paper"``
    and ``"… ours"`` (:func:`oodlib.beside.table`). ``table`` has rows ``model, ood_set, metric,
    value`` (fractions) with metrics ``accuracy`` (on ``ood_set="(in-distribution)"``), ``AUC``,
    ``AAUC``, ``GAUC``; ``pairs`` maps each paper set of :data:`PAPER_TABLE1` to ours (shown by
    :func:`oodlib.data.label`: MNIST's offline subset says so). Models or sets the paper lacks show ``—``.
    """
    need = {"model", "ood_set", "metric", "value"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ValueError(f"expected a long table with columns {sorted(need)}, got {describe(table)}")
    vals = table.set_index(["model", "ood_set", "metric"]).value

    def fmt(triple: Sequence[float]) -> str:
        return " / ".join(f"{v:.1f}" for v in triple)

    rows = []
    for model in dict.fromkeys(table.model):
        paper_acc, paper_sets = PAPER_TABLE1.get(model, (None, {}))
        acc = round(100 * vals[(model, "(in-distribution)", "accuracy")], 1)
        row = {"model": model, "acc": beside.Pair(paper_acc, acc)}
        for theirs, ours in pairs.items():
            aucs = [100 * vals[(model, ours, m)] for m in ("AUC", "AAUC", "GAUC")]
            name = label(ours, None)
            row[theirs if name == theirs else f"{theirs} / {name}"] = beside.Pair(
                fmt(paper_sets[theirs]) if theirs in paper_sets else None, fmt(aucs))
        rows.append(row)
    return beside.table(rows, index=["model"])


def gauc_by_radius(models: Mapping[str, nn.Module], s_in: Mapping[str, torch.Tensor],
                   ood: Mapping[str, torch.Tensor], radii: Sequence[float]) -> pd.DataFrame:
    """GAUC (conservative AUC of the IBP bound, eq. 6) of each model on each set at each radius (App. I).

    ``s_in`` holds each model's in-distribution scores; rows ``model, radius, ood_set, GAUC``.
    """
    missing = sorted(set(models) - set(s_in))
    if missing:
        raise ValueError(f"expected in-distribution scores for every model, missing {missing}")
    rows = []
    for name, model in models.items():
        for r in progress(list(radii), desc=f"GAUC vs radius {name}", leave=False):
            for set_name, x in ood.items():
                cert = certified_confidence(model, x, r)
                rows.append({"model": name, "radius": r, "ood_set": set_name,
                             "GAUC": auroc_conservative(s_in[name], cert)})
    return pd.DataFrame(rows)
