"""ODIN's analysis (Liang, Li & Srikant 2018, §4.5, §5, App. D–H).

:func:`u1_u2` (eq. 4), :func:`taylor_softmax_score` (eq. 3 / App. D), :func:`prop1_statistic`
(App. E), :func:`~oodlib.odin.grad_norm` (``‖∇ₓ log S‖₁``, §5.3), :func:`binned_mean` (the conditional
expectations of Fig. 5), :func:`mmd2` (§4.5) and :func:`energy_distance` (App. G).

Same-manifold split (§4.5)
--------------------------
The CIFAR-80 / CIFAR-20 experiment has a Fashion-MNIST analogue: train on 8 classes and treat
the other 2 as OOD. Importing this module registers the training plug-in ``"plain_subset"``
(cross-entropy on the kept classes only), so the zoo can cache such models
(:func:`~oodlib.experiments.load_subset_model`).

"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import beside, metrics, train
from .data import label
from .intervals import Estimate, bootstrap, per_set_interval, percentile_interval
from .odin import IN, Study, _choose, check_logits, check_temperature, fpr_grid, softmax_score
from .runtime import progress, torch_generator
from .validation import check_positive_int, describe


def transfer_gap_interval(study: Study, n_boot: int = 200, seed: int = 0, level: float = 0.95) -> Estimate:
    """Bootstrap interval of the largest transfer gap of App. H, tuning included.

    The gap is ``max_{i,j} |FPR_j(θ_i) − FPR_j(θ_j)|``: the FPR95 on test set j's evaluation split
    with the (T, ε) tuned on set i, minus that with j's own. Each replicate resamples the tuning
    images (so the search may pick other parameters — the noise that makes a single run's gap
    flip between machines) and the evaluation images, and re-runs the search. Returns an
    :class:`oodlib.intervals.Estimate`.
    """
    sets = study.sets
    ev = {k: study.scorer.grid(k, study.temperatures, study.epsilons).double().numpy() for k in [IN, *sets]}
    tune = {IN: study.tune_in.double().numpy(), **{k: v.double().numpy() for k, v in study.tune_out.items()}}

    def gap(tn: Mapping[str, np.ndarray], evl: Mapping[str, np.ndarray]) -> float:
        chosen = {k: _choose(tn[IN], tn[k]) for k in sets}
        fpr = {k: fpr_grid(evl[IN], evl[k]) for k in sets}
        return max(abs(fpr[j][chosen[i]] - fpr[j][chosen[j]]) for i in sets for j in sets)

    value = gap(tune, ev)
    rng = np.random.default_rng(seed)

    def resample(d: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v[..., rng.integers(0, v.shape[-1], v.shape[-1])] for k, v in d.items()}

    reps = np.array([gap(resample(tune), resample(ev))
                     for _ in progress(range(n_boot), desc="transfer bootstrap")])
    return percentile_interval(value, reps, level, "bootstrap over tuning and evaluation images")


# --------------------------------------------------------------------------- temperature analysis (§5.2)


def logit_gaps(logits: torch.Tensor) -> torch.Tensor:
    """``Δ_i = f_ŷ(x) − f_i(x)`` for the ``K − 1`` classes ``i ≠ ŷ`` (App. F), ``(N, K−1)`` float64."""
    z = check_logits(logits).double()
    top = z.argmax(dim=1, keepdim=True)
    gaps = z.gather(1, top) - z
    keep = torch.ones_like(z, dtype=torch.bool).scatter_(1, top, False)
    return gaps[keep].view(len(z), z.shape[1] - 1)


def u1_u2(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(U1, U2)`` of eq. 4: the mean and the mean square of the logit gaps ``Δ_i``, i ≠ ŷ.

    ``U1 = 1/(N−1) Σ_{i≠ŷ} [f_ŷ − f_i]``, ``U2 = 1/(N−1) Σ_{i≠ŷ} [f_ŷ − f_i]²``; App. F shows
    ``U2 = Var(Δ) + U1²``. Both float64 ``(N,)``.
    """
    d = logit_gaps(logits)
    return d.mean(dim=1), d.pow(2).mean(dim=1)


def taylor_softmax_score(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The second-order approximation of eq. 3 (App. D), float64 ``(N,)``::

        S_ŷ(x; T) ≈ 1 / (N − (1/T) Σ_i [f_ŷ − f_i] + (1/(2T²)) Σ_i [f_ŷ − f_i]²)
                  = 1 / (N − (N−1) U1 / T + (N−1) U2 / (2T²)).

    Accurate when ``T`` is large compared with the logit gaps; for small ``T`` it is not a
    probability at all (the denominator can even be negative).
    """
    z = check_logits(logits)
    t = check_temperature(temperature)
    u1, u2 = u1_u2(z)
    k = z.shape[1]
    return 1.0 / (k - (k - 1) * u1 / t + (k - 1) * u2 / (2 * t * t))


def prop1_statistic(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T (N − 1/S_ŷ(x; T))``, which tends to ``(N − 1) U1(x)`` as ``T → ∞`` (App. E), float64.

    Computed stably as ``−T Σ_i expm1(−Δ_i / T)`` (``1/S = Σ_i exp(−Δ_i/T)``), so the limit can be
    checked for T up to 1e12 without cancellation. The statistic is a strictly increasing
    function of ``S``, so thresholding it is thresholding ``S`` (the detector is unchanged).
    """
    t = check_temperature(temperature)
    d = logit_gaps(logits)
    return -t * torch.expm1(-d / t).sum(dim=1)


def binned_mean(
    x: object, y: object, bins: int | Sequence[float] = 20, min_count: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``E[y | x]`` on bins of ``x``: ``(centres, means, counts)``; bins with < ``min_count`` are NaN.

    For Fig. 5b (``E[U2 | U1]``) and Fig. 5d–e (``E[‖∇ₓ log S‖₁ | S]``). ``bins`` is a number of
    equal-width bins over the range of ``x`` or explicit edges (so several sets share bins).
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.size == 0 or a.size != b.size or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"expected x and y as finite 1-D arrays of equal non-zero length, got "
                         f"{describe(x)} and {describe(y)}")
    if np.isscalar(bins):
        edges = np.linspace(a.min(), a.max() + 1e-12, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(f"expected bins as a positive int or increasing edges, got {bins!r}")
    idx = np.digitize(a, edges) - 1
    inside = (idx >= 0) & (idx < edges.size - 1)
    counts = np.bincount(idx[inside], minlength=edges.size - 1).astype(float)
    sums = np.bincount(idx[inside], weights=b[inside], minlength=edges.size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts >= min_count, sums / counts, np.nan)
    return 0.5 * (edges[1:] + edges[:-1]), means, counts


# --------------------------------------------------------------------------- distances (§4.5, App. G)


def _flat(v: object, name: str) -> torch.Tensor:
    if not isinstance(v, torch.Tensor) or v.ndim < 2 or v.shape[0] < 2 or not torch.is_floating_point(v):
        raise ValueError(f"expected {name} as a float tensor of >= 2 samples (N, ...), got {describe(v)}")
    return v.detach().flatten(1).double()


def _pair_distances(v: object, w: object) -> tuple[torch.Tensor, int, int]:
    a, b = _flat(v, "v"), _flat(w, "w")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"expected v and w with equal feature counts, got {a.shape[1]} and {b.shape[1]}")
    z = torch.cat([a, b])
    return torch.cdist(z, z), len(a), len(b)


def _off_diagonal_mean(k: torch.Tensor) -> float:
    n = k.shape[0]
    return float((k.sum() - k.diagonal().sum()) / (n * (n - 1)))


def mmd2(v: torch.Tensor, w: torch.Tensor, sigma: float | None = None) -> float:
    """Unbiased squared maximum mean discrepancy with a Gaussian RBF kernel (§4.5).

    ``MMD² = mean_{i≠j} k(v_i, v_j) + mean_{i≠j} k(w_i, w_j) − 2 mean_{i,j} k(v_i, w_j)``,
    ``k(x, x') = exp(−‖x − x'‖² / (2σ²))`` on flattened images (Gretton et al. 2012, eq. 3; the
    paper's normalisation constants written as means). Bandwidth: by default the median heuristic
    ``2σ² = median of the squared Euclidean distances between all distinct pairs of V ∪ W``. The
    paper's sentence reads "2σ² is set to the median of all Euclidean distances" (not squared);
    in 784 dimensions that kernel is ≈ e⁻¹⁰ for a typical pair and the MMD nearly vanishes, so we
    use the standard squared form (a typical pair then has k ≈ e⁻¹). Pass ``sigma`` to override.
    """
    d, m, n = _pair_distances(v, w)
    d2 = d.pow(2)
    if sigma is None:
        iu = torch.triu_indices(m + n, m + n, offset=1)
        two_s2 = float(d2[iu[0], iu[1]].median())
        if two_s2 <= 0:
            raise ValueError("all images in V ∪ W are identical: the median bandwidth is 0; pass sigma")
    else:
        two_s2 = 2 * check_temperature(sigma, "sigma") ** 2
    k = torch.exp(-d2 / two_s2)
    return _off_diagonal_mean(k[:m, :m]) + _off_diagonal_mean(k[m:, m:]) - 2 * float(k[:m, m:].mean())


def energy_distance(v: torch.Tensor, w: torch.Tensor) -> float:
    """The squared energy distance of App. G with the Euclidean norm::

        D² = 2 mean_{i,j} ‖V_i − W_j‖ − mean_{i≠j} ‖V_i − V_j‖ − mean_{i≠j} ‖W_i − W_j‖.

    The paper writes the within-set sums over i ≠ j with the factor ``1/binom(m, 2)``; we read
    them as means over the distinct pairs (otherwise D² of two samples of one distribution would
    not tend to 0).
    """
    d, m, _ = _pair_distances(v, w)
    return 2 * float(d[:m, m:].mean()) - _off_diagonal_mean(d[:m, :m]) - _off_diagonal_mean(d[m:, m:])


# --------------------------------------------------------------------------- same-manifold split (§4.5)


def check_classes(classes: object, num_classes: int = 10) -> tuple[int, ...]:
    expected = f"expected classes as a non-empty sequence of distinct ints in [0, {num_classes})"
    if isinstance(classes, str | bytes) or not isinstance(classes, Sequence) or len(classes) == 0:
        raise ValueError(f"{expected}, got {classes!r}")
    out = []
    for c in classes:
        if isinstance(c, bool) or not isinstance(c, int | np.integer) or not 0 <= int(c) < num_classes:
            raise ValueError(f"{expected}, got {classes!r}")
        out.append(int(c))
    if len(set(out)) != len(out):
        raise ValueError(f"{expected}, got duplicates in {classes!r}")
    return tuple(out)


class ClassSubset(train.Method):
    """Plain cross-entropy on a subset of the classes, relabelled ``0 … len(classes) − 1``.

    The CIFAR-80 / CIFAR-20 experiment of §4.5 on Fashion-MNIST: train on ``classes`` and keep
    the remaining classes as a same-manifold OOD set. Images of other classes are dropped from
    each batch. Registered as the training method ``"plain_subset"`` (hyper-parameter
    ``classes``); build the model with ``num_classes=len(classes)``.
    """

    name = "plain_subset"

    def __init__(self, classes: Sequence[int], num_classes: int = 10) -> None:
        self.classes = check_classes(classes, num_classes)
        lookup = torch.full((num_classes,), -1, dtype=torch.long)
        lookup[list(self.classes)] = torch.arange(len(self.classes))
        self.lookup = lookup

    def loss(self, model: nn.Module, batch: train.Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy on the batch's images of the kept classes (relabelled)."""
        y = self.lookup.to(batch.y_in.device)[batch.y_in]
        keep = y >= 0
        if not bool(keep.any()):  # a batch of only held-out classes: no signal
            zero = sum(p.sum() for p in model.parameters()) * 0.0
            return zero, {"ce": 0.0}
        ce = F.cross_entropy(model(batch.x_in[keep]), y[keep])
        return ce, {"ce": ce.item()}

    def test_split(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The test images of the kept classes, relabelled (what the model's test error is measured on)."""
        return subset(x, y, self.classes)




def class_split(num_held_out: int = 2, seed: int = 0, num_classes: int = 10) -> tuple[list[int], list[int]]:
    """A seeded random split of the class indices into ``(kept, held_out)``, both sorted.

    §4.5 splits CIFAR-100 at random into 80 and 20 classes; ``num_held_out=2`` is the 8/2
    Fashion-MNIST analogue.
    """
    check_positive_int(num_held_out, "num_held_out")
    check_positive_int(num_classes, "num_classes")
    if num_held_out >= num_classes:
        raise ValueError(f"expected num_held_out < num_classes = {num_classes}, got {num_held_out}")
    perm = torch.randperm(num_classes, generator=torch_generator(int(seed))).tolist()
    return sorted(perm[num_held_out:]), sorted(perm[:num_held_out])


def subset(x: torch.Tensor, y: torch.Tensor, classes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of ``classes`` and their labels relabelled ``0 … len(classes) − 1``."""
    cls = check_classes(classes)
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"expected y as a 1-D label tensor of length {len(x)}, got {describe(y)}")
    lookup = torch.full((10,), -1, dtype=torch.long)
    lookup[list(cls)] = torch.arange(len(cls))
    keep = torch.isin(y, torch.tensor(cls))
    return x[keep], lookup[y[keep]]


HELD_OUT = "held-out classes"  #: the same-manifold OOD set of the 8/2 class split (§4.5)


# --------------------------------------------------------------------------- tables and sweeps

TABLE2_METRICS = ("FPR95", "DetErr", "AUROC", "AUPR_in", "AUPR_out")


def baseline_vs_odin(table: pd.DataFrame, metrics_: Sequence[str] = TABLE2_METRICS) -> pd.DataFrame:
    """Table 2's layout: one row per OOD set, ``"baseline / ODIN"`` in percent per metric, and (T, ε).

    ``table`` is :meth:`oodlib.odin.Study.table`'s long table. Stand-ins are labelled as such.
    """
    need = {"ood_set", "stand_in_for", "detector", "T", "eps", "metric", "value"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ValueError(f"expected the long table of Study.table() with columns {sorted(need)}, "
                         f"got {describe(table)}")
    rows = []
    for name, part in table.groupby("ood_set", sort=False):
        base = part[part.detector == "baseline"].set_index("metric").value
        odin_ = part[part.detector == "ODIN"]
        row = {"OOD set": label(name, part.stand_in_for.iloc[0])}
        for m in metrics_:
            row[m] = f"{100 * base[m]:.1f} / {100 * odin_.set_index('metric').value[m]:.1f}"
        row["T"] = odin_["T"].iloc[0]
        row["eps"] = odin_["eps"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows).set_index("OOD set")


# Liang et al. 2018, Table 2, whole: per (network, in-distribution) and OOD set, five (baseline, ODIN)
# pairs in percent in the order of TABLE2_METRICS (FPR at 95 % TPR, detection error, AUROC, AUPR-in,
# AUPR-out). Transcribed from the paper's text; blocks in print order (the paper writes "Dense-BC").
# Every detection error is 2.5 + FPR / 2 to the printed digit (ODIN §4.3 at 95 % TPR) except
# DenseNet-BC / CIFAR-100 / iSUN's baseline, printed 84.8 / 44.7 (tests/test_odin.py lists it).
#: Liang et al. 2018 Table 2: {(network, in-distribution): {OOD set: ((baseline, ODIN) per metric)}}
PAPER_TABLE2: dict[tuple[str, str], dict[str, tuple[tuple[float, float], ...]]] = {
    ("DenseNet-BC", "CIFAR-10"): {
        "TinyImageNet (crop)": ((34.7, 4.3), (19.9, 4.7), (95.3, 99.1), (96.4, 99.1), (93.8, 99.1)),
        "TinyImageNet (resize)": ((40.8, 7.5), (22.9, 6.3), (94.1, 98.5), (95.1, 98.6), (92.4, 98.5)),
        "LSUN (crop)": ((39.3, 8.7), (22.2, 6.9), (94.8, 98.2), (96.0, 98.5), (93.1, 97.8)),
        "LSUN (resize)": ((33.6, 3.8), (19.3, 4.4), (95.4, 99.2), (96.4, 99.3), (94.0, 99.2)),
        "iSUN": ((37.2, 6.3), (21.1, 5.7), (94.8, 98.8), (95.9, 98.9), (93.1, 98.8)),
        "uniform noise": ((23.5, 0.0), (14.3, 2.5), (96.5, 99.9), (97.8, 100.0), (93.0, 99.9)),
        "gaussian noise": ((12.3, 0.0), (8.7, 2.5), (97.5, 100.0), (98.3, 100.0), (95.9, 100.0)),
    },
    ("DenseNet-BC", "CIFAR-100"): {
        "TinyImageNet (crop)": ((67.8, 17.3), (36.4, 11.2), (83.0, 97.1), (85.3, 97.4), (80.8, 96.8)),
        "TinyImageNet (resize)": ((82.2, 44.3), (43.6, 24.6), (70.4, 90.7), (71.4, 91.4), (68.6, 90.1)),
        "LSUN (crop)": ((69.4, 17.6), (37.2, 11.3), (83.7, 96.8), (86.2, 97.1), (80.9, 96.5)),
        "LSUN (resize)": ((83.3, 44.0), (44.1, 24.5), (70.6, 91.5), (72.5, 92.4), (68.0, 90.6)),
        "iSUN": ((84.8, 49.5), (44.7, 27.2), (69.9, 90.1), (71.9, 91.1), (67.0, 88.9)),
        "uniform noise": ((88.3, 0.5), (46.6, 2.8), (83.2, 99.5), (88.1, 99.6), (73.1, 99.0)),
        "gaussian noise": ((95.4, 0.2), (50.2, 2.6), (81.8, 99.6), (87.6, 99.7), (70.1, 99.1)),
    },
    ("WRN-28-10", "CIFAR-10"): {
        "TinyImageNet (crop)": ((38.9, 23.4), (21.9, 14.2), (92.9, 94.2), (92.5, 92.8), (91.9, 94.7)),
        "TinyImageNet (resize)": ((45.6, 25.5), (25.3, 15.2), (91.0, 92.1), (89.7, 89.0), (89.9, 93.6)),
        "LSUN (crop)": ((35.0, 21.8), (20.0, 13.4), (94.5, 95.9), (95.1, 95.8), (93.1, 95.5)),
        "LSUN (resize)": ((35.0, 17.6), (20.0, 11.3), (93.9, 95.4), (93.8, 93.8), (92.8, 96.1)),
        "iSUN": ((40.6, 21.3), (22.8, 13.2), (92.5, 93.7), (91.7, 91.2), (91.5, 94.9)),
        "uniform noise": ((1.6, 0.0), (3.3, 2.5), (99.2, 100.0), (99.3, 100.0), (98.9, 100.0)),
        "gaussian noise": ((0.3, 0.0), (2.6, 2.5), (99.5, 100.0), (99.6, 100.0), (99.3, 100.0)),
    },
    ("WRN-28-10", "CIFAR-100"): {
        "TinyImageNet (crop)": ((66.6, 43.9), (35.8, 24.4), (82.0, 90.8), (83.3, 91.4), (80.2, 90.0)),
        "TinyImageNet (resize)": ((79.2, 55.9), (42.1, 30.4), (72.2, 84.0), (70.4, 82.8), (70.8, 84.4)),
        "LSUN (crop)": ((74.0, 39.6), (39.5, 22.3), (80.3, 92.0), (83.4, 92.4), (77.0, 91.6)),
        "LSUN (resize)": ((82.2, 56.5), (43.6, 30.8), (73.9, 86.0), (75.7, 86.2), (70.1, 84.9)),
        "iSUN": ((82.7, 57.3), (43.9, 31.1), (72.8, 85.6), (74.2, 85.9), (69.2, 84.8)),
        "uniform noise": ((98.2, 0.1), (51.6, 2.5), (84.1, 99.1), (89.9, 99.4), (71.0, 97.5)),
        "gaussian noise": ((99.2, 1.0), (52.1, 3.0), (84.3, 98.5), (90.2, 99.1), (70.9, 95.9)),
    },
}

# Liang et al. 2018, baseline / ODIN in percent, columns TABLE2_METRICS (FPR95, DetErr, AUROC, AUPR-in,
# AUPR-out). Table 3 (App. A.1): MNIST, 3-layer MLP (the only 28x28 grayscale in-distribution);
# Table 2: DenseNet-BC on CIFAR-10. Keyed by our OOD set, with the paper's set and setting.
_T3 = "Table 3, MLP / MNIST: "
_T2 = "Table 2, Dense-BC / CIFAR-10: "
#: Liang et al. 2018 Tables 2-3, keyed by our OOD set: (paper row, baseline / ODIN pairs per metric)
PAPER_TABLES = {
    "uniform noise": [
        (_T3 + "Uniform", ((0.0, 0.0), (2.5, 2.5), (99.9, 100.0), (99.9, 100.0), (99.9, 100.0))),
        (_T2 + "Uniform", PAPER_TABLE2[("DenseNet-BC", "CIFAR-10")]["uniform noise"])],
    "gaussian noise": [
        (_T3 + "Gaussian", ((0.0, 0.0), (2.5, 2.5), (99.7, 100.0), (99.8, 100.0), (99.7, 100.0))),
        (_T2 + "Gaussian", PAPER_TABLE2[("DenseNet-BC", "CIFAR-10")]["gaussian noise"])],
    "font letters": [
        (_T3 + "notMNIST", ((10.3, 8.7), (7.7, 6.8), (97.2, 98.2), (97.5, 98.4), (97.4, 98.0)))],
    "photo crops": [
        (_T3 + "CIFAR-10bw", ((0.1, 0.0), (2.5, 2.5), (99.7, 100.0), (99.8, 100.0), (99.7, 100.0))),
        (_T2 + "TinyImageNet (crop)", PAPER_TABLE2[("DenseNet-BC", "CIFAR-10")]["TinyImageNet (crop)"])],
}


#: Liang et al. 2018, the same-manifold split (CIFAR-80 in, CIFAR-20 out). Table 3: FPR at 95 % TPR (%),
#: baseline and ODIN, per network; Tables 5, 7, 9: the best temperature on CIFAR-20; App. G: (MMD,
#: energy distance) of each OOD set to CIFAR-80.
PAPER_CIFAR20_FPR: dict[str, tuple[float, float]] = {
    "DenseNet-BC": (84.1, 81.1), "WRN-28-10": (80.4, 78.3), "WRN-40-4": (82.4, 78.4)}
PAPER_CIFAR20_BEST_T = 1
PAPER_CIFAR80_DISTANCES: dict[str, tuple[float, float]] = {
    "Tiny-ImageNet (crop)": (0.4, 2.22), "LSUN (crop)": (0.43, 2.29), "Tiny-ImageNet (resize)": (0.095, 0.57),
    "LSUN (resize)": (0.120, 0.62), "iSUN (resize)": (0.116, 0.61), "CIFAR-20": (0.057, 0.35)}
#: App. H, Table 10 (DenseNet-BC, CIFAR-10): ODIN's FPR at 95 % TPR (%) on each test set (row) with (T, ε)
#: tuned on each set (column, same order as the rows). The fourth column is printed "LSUN (c)" twice in
#: the paper; it is LSUN (r), whose row it matches. (Its Gaussian and Uniform baselines, not kept here,
#: are Table 2's Uniform and Gaussian ones swapped.)
PAPER_TRANSFER_SETS = ("ImgNet (c)", "ImgNet (r)", "LSUN (c)", "LSUN (r)", "iSUN", "Gaussian", "Uniform")
PAPER_TABLE10: dict[str, tuple[float, ...]] = {
    "ImgNet (c)": (4.3, 4.3, 6.6, 4.3, 4.3, 4.3, 4.3), "ImgNet (r)": (7.5, 7.5, 14.9, 7.5, 7.5, 7.5, 7.5),
    "LSUN (c)": (13.8, 13.8, 8.1, 13.8, 13.8, 13.8, 13.8), "LSUN (r)": (4.8, 4.8, 10.4, 4.8, 4.8, 4.8, 4.8),
    "iSUN": (6.3, 6.3, 12.6, 6.3, 6.3, 6.3, 6.3), "Gaussian": (0.0, 0.0, 0.4, 0.0, 0.0, 0.0, 0.0),
    "Uniform": (0.0, 0.0, 4.5, 0.0, 0.0, 0.0, 0.0)}


def paper_noise_fpr() -> float:
    """The largest ODIN FPR at 95 % TPR (%) on uniform or Gaussian noise in :data:`PAPER_TABLES`' rows."""
    noise = ("uniform noise", "gaussian noise")
    return max(values[0][1] for name in noise for _, values in PAPER_TABLES[name])


def paper_headline_fpr() -> tuple[float, float]:
    """The abstract's headline: FPR at 95 % TPR (%) of the baseline and of ODIN on TinyImageNet (crop),
    DenseNet-BC on CIFAR-10 (Table 2's row in :data:`PAPER_TABLES`)."""
    (name, values), = [r for r in PAPER_TABLES["photo crops"] if "TinyImageNet (crop)" in r[0]]
    return values[0]


def paper_headline_ratio() -> float:
    """ODIN's FPR over the baseline's in the abstract's headline row (:func:`paper_headline_fpr`)."""
    base, odin_ = paper_headline_fpr()
    return odin_ / base


def paper_transfer_gap(exclude: tuple[str, ...] = ()) -> float:
    """Table 10's largest ``|FPR tuned elsewhere − FPR tuned on the set|`` (points), leaving out
    ``exclude``."""
    keep = [i for i, k in enumerate(PAPER_TRANSFER_SETS) if k not in exclude]
    rows = [PAPER_TABLE10[PAPER_TRANSFER_SETS[i]] for i in keep]
    return max(abs(row[j] - row[i]) for i, row in zip(keep, rows, strict=True) for j in keep)


def table2_beside_paper(table: pd.DataFrame, setting: str) -> pd.DataFrame:
    """Every metric of ODIN's Tables 2-3 (baseline → ODIN, %) beside ours for the sets with a counterpart.

    ``table`` is :meth:`oodlib.odin.Study.table`'s long table; ``setting`` describes ours (e.g. model and
    profile).
    Rows: OOD set x paper row x metric, with the paper's and our ``"baseline → ODIN"`` pair. DetErr
    is P_e at 95 % TPR on both sides (:func:`oodlib.metrics.detection_error`).
    """
    need = {"ood_set", "stand_in_for", "detector", "metric", "value"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ValueError(f"expected the long table of Study.table() with columns {sorted(need)}, "
                         f"got {describe(table)}")
    rows = []
    for name, part in table.groupby("ood_set", sort=False):
        value = part.set_index(["detector", "metric"]).value
        for paper_row, values in PAPER_TABLES.get(name, []):
            for metric, (p_base, p_odin) in zip(TABLE2_METRICS, values, strict=True):
                rows.append({"OOD set": label(name, part.stand_in_for.iloc[0]), "paper row": paper_row,
                             "metric": metric, "": beside.Pair(
                                 f"{p_base:.1f} → {p_odin:.1f}",
                                 f"{100 * value['baseline', metric]:.1f} → "
                                 f"{100 * value['ODIN', metric]:.1f}"),
                             "setting": setting})
    return beside.table(rows, index=["OOD set", "paper row", "metric"])


def temperature_sweep(
    logits_in: torch.Tensor, logits_out: Mapping[str, torch.Tensor], temperatures: Sequence[float],
    tpr: float = 0.95,
) -> pd.DataFrame:
    """Detection without input preprocessing (ε = 0) as a function of T (Fig. 3a–b, App. E).

    Rows ``ood_set, T, FPR95, DetErr, AUROC``. Scores are ranked through :func:`prop1_statistic`,
    an increasing function of ``S(x; T)`` computed without cancellation, so T may be as large as
    1e12 (in float32, ``S`` itself rounds to ``1/N`` long before). ``T = inf`` rows use the limit
    score ``U1`` (Proposition 1).
    """
    temps = [float(t) for t in temperatures]
    for t in temps:
        if not (t == math.inf or (math.isfinite(t) and t > 0)):
            raise ValueError(f"expected temperatures > 0 (math.inf allowed), got {temperatures!r}")
    rows = []
    for t in temps:
        a = u1_u2(logits_in)[0] if t == math.inf else prop1_statistic(logits_in, t)
        for name, z in logits_out.items():
            b = u1_u2(z)[0] if t == math.inf else prop1_statistic(z, t)
            rows.append({"ood_set": name, "T": t, "FPR95": metrics.fpr_at_tpr(a, b, tpr),
                         "DetErr": metrics.detection_error(a, b), "AUROC": metrics.auroc(a, b)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the chapter's claims


def _mean_u2_gap(d: Mapping[str, tuple[np.ndarray, np.ndarray]], k: str, edges: np.ndarray) -> float:
    """Mean over shared U1 bins of E[U2 | U1] in-distribution minus that of the set ``k`` (Fig. 5b)."""
    _, m_in, _ = binned_mean(*d[IN], bins=edges, min_count=10)
    _, m_out, _ = binned_mean(*d[k], bins=edges, min_count=10)
    both = ~np.isnan(m_in) & ~np.isnan(m_out)
    return float(np.mean(m_in[both] - m_out[both])) if both.any() else -math.inf


def claim_estimates(
    study: Study,
    z_in: torch.Tensor,
    z_out: Mapping[str, torch.Tensor],
    u: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    grad_norms: Mapping[str, torch.Tensor],
    edges: np.ndarray,
    seed: int = 0,
) -> dict[str, Estimate]:
    """The intervals behind chapter 03's claims, each a paired bootstrap over the evaluation images.

    * ``gain_min`` — min over natural sets of FPR95(baseline) − FPR95(ODIN tuned on the set) (Table 2);
    * ``noise_max`` — max FPR95 of tuned ODIN on uniform / Gaussian noise (Table 2);
    * ``eps_gain`` — mean FPR95 gain of the input step at the tuned T (Fig. 4);
    * ``t_help`` / ``t_sat`` — mean FPR95 at T = 1 minus T = 1000, and mean ``|FPR95(100) − FPR95(1000)|``,
      temperature scaling alone on the evaluation logits ``z_in``/``z_out`` (Fig. 3);
    * ``u1`` — min over sets of median U1 in − out (Fig. 5a); ``u2`` — min over sets of the mean
      E[U2 | U1] gap over the shared bins ``edges`` (Fig. 5b); ``u`` maps :data:`~oodlib.odin.IN` and
      each set to
      ``(U1, U2)`` (:func:`u1_u2`);
    * ``grad`` — the number of sets whose median ‖∇ₓ log S(x; 1000)‖₁ is below the in-distribution one
      (Fig. 5c); ``grad_norms`` maps :data:`~oodlib.odin.IN` and each set to the norms
      (:func:`oodlib.odin.grad_norm`).
    """
    names = study.sets
    for key, what in ((u, "u"), (grad_norms, "grad_norms")):
        missing = sorted({IN, *names} - set(key))
        if missing:
            raise ValueError(f"expected {what} for {IN!r} and every set of the study, missing {missing}")
    base = study.scores_at({k: (1.0, 0.0) for k in names})
    tuned = study.scores_at({k: study.chosen(k) for k in names})
    zero_eps = study.scores_at({k: (study.chosen(k)[0], 0.0) for k in names})
    nat = [k for k in names if "noise" not in k]
    noise = [k for k in ("uniform noise", "gaussian noise") if k in names]

    def only(v: Mapping[str, np.ndarray], keep: list[str]) -> dict[str, np.ndarray]:
        return {k: v[k] for k in keep}

    def at_t(t: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return (softmax_score(z_in, t).double().numpy(),
                {k: softmax_score(z, t).double().numpy() for k, z in z_out.items()})

    u_strata = {k: (u[k][0].numpy(), u[k][1].numpy()) for k in [IN, *names]}
    g = {k: (v.double().numpy(),) for k, v in grad_norms.items()}

    def u2_gap(d: Mapping[str, tuple[np.ndarray, ...]]) -> float:
        return min(_mean_u2_gap(d, k, edges) for k in names)

    # Fig. 5b compares E[U2 | U1] on U1 bins that hold >= 10 images of both sides; with too few images
    # (smoke) no bin does, and the claim has no evidence at all: an unbounded interval that says why
    u2 = (bootstrap(u2_gap, u_strata, n_boot=300, seed=seed) if math.isfinite(u2_gap(u_strata))
          else Estimate(-math.inf, -math.inf, math.inf,
                        method="undefined: no U1 bin holds 10 images of both sides"))
    return {
        "gain_min": per_set_interval("FPR95", *(only(v, nat) for v in (*base, *tuned)), reduce="min",
                                     seed=seed),
        "noise_max": per_set_interval("FPR95", only(tuned[0], noise), only(tuned[1], noise), reduce="max",
                                      seed=seed),
        "eps_gain": per_set_interval("FPR95", *zero_eps, *tuned, seed=seed),
        "t_help": per_set_interval("FPR95", *at_t(1.0), *at_t(1000.0), seed=seed),
        "t_sat": per_set_interval("FPR95", *at_t(100.0), *at_t(1000.0), absolute=True, seed=seed),
        "u1": bootstrap(lambda d: min(np.median(d[IN][0]) - np.median(d[k][0]) for k in names), u_strata,
                        seed=seed),
        "u2": u2,
        "grad": bootstrap(lambda d: sum(np.median(d[IN][0]) > np.median(d[k][0]) for k in names), g,
                          seed=seed),
    }
