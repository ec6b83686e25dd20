"""Intervals for claims: a percentile bootstrap over images, exact binomial, Student-t over seeds.

A verdict decided from one point estimate flips with the machine (CPU kernels sum in
different orders, so training ends in slightly different weights) whenever the comparison is
closer than its noise; :mod:`oodlib.claims` decides on an interval instead. The intervals:

* :func:`bootstrap` — a percentile bootstrap over the evaluation images (Efron &
  Tibshirani 1993, ch. 13), stratified: the in-distribution images and each OOD set are
  resampled separately, and scores of two detectors on the *same* images are resampled
  with the same indices (a paired comparison); :func:`bootstrap_table` does it for a whole
  evaluation table, and :func:`metric_interval`, :func:`difference_interval`,
  :func:`per_set_interval`, :func:`mean_interval`, :func:`paired_mean_difference` for the
  common statistics;
* :func:`proportion_interval` — the exact Clopper–Pearson interval for a fraction of
  independent trials (e.g. rays that reach 99.9 % confidence);
* :func:`rank_correlation_interval` — Spearman's ρ with a Fisher-z interval;
* :func:`seed_interval` — a Student-t interval over training seeds, for claims about
  training (mining vs random sampling, accuracy costs) where one seed is too noisy;
* :func:`exact` — no sampling noise (a bound checked point by point); the threshold then
  carries the float tolerance of the dtype (:func:`float_tolerance`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from . import metrics
from .validation import check_int, check_number, check_scores

N_BOOT = 1000  #: bootstrap replicates: the 2.5/97.5 % quantiles of 1000 draws move by < 0.1 point
LEVEL = 0.95

__all__ = [
    "LEVEL", "N_BOOT", "Estimate", "bootstrap", "bootstrap_table", "sorted_metric", "metric_interval",
    "difference_interval", "per_set_interval", "mean_interval", "paired_mean_difference",
    "proportion_interval", "rank_correlation_interval", "seed_interval", "exact", "float_tolerance",
    "percentile_interval",
]


@dataclass(frozen=True)
class Estimate:
    """A measured value with a two-sided interval at ``level`` and how it was obtained."""

    value: float
    lo: float
    hi: float
    level: float = LEVEL
    method: str = "exact"

    def __post_init__(self) -> None:
        for name in ("value", "lo", "hi"):
            v = getattr(self, name)
            real = isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
            if not real or math.isnan(v):
                raise ValueError(f"expected {name} as a real number, got {v!r}")
        if not self.lo <= self.hi:
            raise ValueError(f"expected lo <= hi, got [{self.lo}, {self.hi}]")
        if not 0 < self.level < 1:
            raise ValueError(f"expected level in (0, 1), got {self.level!r}")

    def scaled(self, factor: float) -> Estimate:
        """The same estimate in other units (e.g. ``100`` for percent); a negative factor swaps the ends."""
        a, b = sorted((self.lo * factor, self.hi * factor))
        return Estimate(self.value * factor, a, b, self.level, self.method)

    def shifted(self, offset: float) -> Estimate:
        """The estimate plus a constant."""
        return Estimate(self.value + offset, self.lo + offset, self.hi + offset, self.level, self.method)

    def __str__(self) -> str:
        return format(self, ".3g")

    def __format__(self, spec: str) -> str:
        spec = spec or ".3g"
        if self.lo == self.hi == self.value:
            return format(self.value, spec)
        return f"{self.value:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"


# --------------------------------------------------------------------------- intervals


def _check_level(level: object) -> float:
    return check_number(level, "level", low=0, high=1, low_open=True, high_open=True)


def bootstrap(
    statistic: Callable[[Mapping[str, tuple[np.ndarray, ...]]], float],
    strata: Mapping[str, Sequence[object]],
    *,
    n_boot: int = N_BOOT,
    level: float = LEVEL,
    seed: int = 0,
) -> Estimate:
    """Stratified, paired percentile bootstrap of ``statistic``.

    ``strata`` maps a name to a tuple of equal-length 1-D arrays; each replicate draws one
    set of indices per stratum (with replacement, same size) and applies it to every array
    of the tuple — so the in-distribution images and each OOD set are resampled separately,
    and two detectors' scores on the same images stay paired. ``statistic`` receives a dict
    with the same keys and the resampled tuples, and returns a float. The point estimate is
    ``statistic`` on the original data; the interval is the ``(1 ± level)/2`` quantiles of
    the replicates (percentile method). Replicates on which the statistic is undefined (NaN, ±inf)
    are dropped and their number is written into ``method``; more than half undefined raises
    ``ValueError`` (the statistic needs more images than it has).
    """
    level, n_boot = _check_level(level), check_int(n_boot, "n_boot", low=20)
    if not strata:
        raise ValueError("expected at least one stratum, got none")
    data: dict[str, tuple[np.ndarray, ...]] = {}
    for name, arrays in strata.items():
        if not isinstance(arrays, tuple | list) or not arrays:
            raise ValueError(f"expected stratum {name!r} as a non-empty tuple of 1-D arrays, "
                             f"got {type(arrays).__name__}")
        arrs = tuple(check_scores(a, f"strata[{name!r}][{i}]") for i, a in enumerate(arrays))
        if len({len(a) for a in arrs}) != 1:
            raise ValueError(f"expected equal lengths within stratum {name!r} (paired samples), "
                             f"got {[len(a) for a in arrs]}")
        data[name] = arrs
    value = float(statistic(data))
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        sample = {}
        for name, arrs in data.items():
            idx = rng.integers(0, len(arrs[0]), len(arrs[0]))
            sample[name] = tuple(a[idx] for a in arrs)
        reps[b] = statistic(sample)
    return percentile_interval(value, reps, level, "bootstrap over images")


def percentile_interval(value: float, reps: np.ndarray, level: float = LEVEL,
                        what: str = "bootstrap over images") -> Estimate:
    """The percentile interval of bootstrap replicates ``reps`` around the point estimate ``value``.

    The interval is the ``(1 ± level)/2`` quantiles of the replicates, widened to contain ``value``.
    Replicates on which the statistic is undefined (NaN, ±inf; e.g. a histogram bin left empty by a
    small resample) are dropped and counted in ``method`` — never turned into an unbounded interval
    (a silent "inconclusive"); more than half undefined raises ``ValueError``.
    """
    reps = np.asarray(reps, dtype=float)
    n_boot = len(reps)
    defined = np.isfinite(reps)
    dropped = int((~defined).sum())
    if dropped > n_boot // 2:
        raise ValueError(f"expected a statistic defined on most resamples, got NaN/inf on {dropped} of "
                         f"{n_boot}: too few images for this statistic (draw more, or change the statistic)")
    lo, hi = np.quantile(reps[defined], [(1 - level) / 2, (1 + level) / 2])
    note = f"; {dropped} undefined resamples dropped" if dropped else ""
    return Estimate(value, float(min(lo, value)), float(max(hi, value)), level, f"{what} ({n_boot}×{note})")


def _metric_fn(metric: str) -> Callable[[np.ndarray, np.ndarray], float]:
    if metric == "MMC":
        return lambda s_in, s_out: float(np.mean(s_out))
    fns = {"AUROC": metrics.auroc, "AUROC_cons": metrics.auroc_conservative, "FPR95": metrics.fpr_at_tpr,
           "AUPR_in": metrics.aupr_in, "AUPR_out": metrics.aupr_out, "DetErr": metrics.detection_error}
    if metric not in fns:
        raise ValueError(f"expected metric in {sorted([*fns, 'MMC'])}, got {metric!r}")
    return fns[metric]


def sorted_metric(metric: str, sorted_in: np.ndarray, s_out: np.ndarray) -> float:
    """``AUROC``, ``AUROC_cons`` or ``FPR95`` from *sorted* in-distribution scores: O(N_out log N_in).

    Equal to :func:`oodlib.metrics.auroc` / ``auroc_conservative`` / ``fpr_at_tpr`` (tested), but a
    bootstrap over many detectors and sets sorts each detector's in-distribution sample once per
    replicate instead of once per metric.
    """
    n = sorted_in.size
    if metric == "FPR95":
        return float(np.count_nonzero(s_out >= sorted_in[n - metrics.tpr_rank(n, 0.95)]) / s_out.size)
    greater = n - np.searchsorted(sorted_in, s_out, side="right")  # in-scores above each OOD score
    if metric == "AUROC_cons":
        return float(greater.sum() / (n * s_out.size))
    if metric == "AUROC":
        right = np.searchsorted(sorted_in, s_out, side="right")
        equal = right - np.searchsorted(sorted_in, s_out, side="left")
        return float((greater.sum() + 0.5 * equal.sum()) / (n * s_out.size))
    raise ValueError(f"expected metric in ['AUROC', 'AUROC_cons', 'FPR95'], got {metric!r}")


def bootstrap_table(
    statistic: Callable[[Mapping[str, np.ndarray], Mapping[tuple[str, ...], np.ndarray]], float],
    s_in: Mapping[str, object],
    s_out: Mapping[tuple[str, ...], object],
    *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
) -> Estimate:
    """Paired bootstrap over a whole evaluation table: many detectors, threats and OOD sets at once.

    ``s_in`` maps a detector to its scores on the (shared) in-distribution images; ``s_out`` maps
    ``(detector, threat, set)`` to OOD scores, the *last* key element naming the set. One replicate
    draws one index vector for the in-distribution images and one per set (shared by every
    detector and threat on that set: they start from the same images). ``statistic`` receives the
    in-distribution scores **sorted** (for :func:`sorted_metric`) and the resampled OOD scores.
    """
    level, n_boot = _check_level(level), check_int(n_boot, "n_boot", low=20)
    ins = {k: check_scores(v, f"s_in[{k!r}]") for k, v in s_in.items()}
    outs = {k: check_scores(v, f"s_out[{k!r}]") for k, v in s_out.items()}
    if len({len(v) for v in ins.values()}) != 1:
        raise ValueError("expected every detector's in-distribution scores on the same images "
                         "(equal lengths)")
    sizes: dict[str, int] = {}
    for k, v in outs.items():
        if sizes.setdefault(k[-1], len(v)) != len(v):
            raise ValueError(f"expected equal lengths for every score array of set {k[-1]!r} (paired)")
    n_in = len(next(iter(ins.values())))
    value = float(statistic({k: np.sort(v) for k, v in ins.items()}, outs))
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        i_in = rng.integers(0, n_in, n_in)
        idx = {name: rng.integers(0, n, n) for name, n in sizes.items()}
        reps[b] = statistic({k: np.sort(v[i_in]) for k, v in ins.items()},
                            {k: v[idx[k[-1]]] for k, v in outs.items()})
    return percentile_interval(value, reps, level, "bootstrap over images")


def metric_interval(metric: str, s_in: object, s_out: object, **kw: object) -> Estimate:
    """Bootstrap interval of one OOD metric (``AUROC``, ``FPR95``, ``AUROC_cons``, ``MMC`` of ``s_out``, …).

    For ``MMC`` pass the in-distribution confidences as ``s_in`` (unused) or the OOD ones twice.
    """
    fn = _metric_fn(metric)
    return bootstrap(lambda d: fn(d["in"][0], d["out"][0]), {"in": (s_in,), "out": (s_out,)}, **kw)


def difference_interval(
    metric: str, a: tuple[object, object], b: tuple[object, object], **kw: object
) -> Estimate:
    """Interval of ``metric(a) - metric(b)`` for two detectors scored on the *same* images.

    ``a`` and ``b`` are ``(s_in, s_out)`` pairs; the bootstrap resamples image indices once
    for both detectors (paired), which removes the images' shared difficulty from the spread.
    """
    fn = _metric_fn(metric)
    return bootstrap(lambda d: fn(d["in"][0], d["out"][0]) - fn(d["in"][1], d["out"][1]),
                     {"in": (a[0], b[0]), "out": (a[1], b[1])}, **kw)


REDUCERS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": np.mean, "min": np.min, "max": np.max,
    "count > 0": lambda v: float(np.sum(v > 0)),  # the number of sets with a positive value
}


def per_set_interval(
    metric: str,
    a_in: object | Mapping[str, object], a_out: Mapping[str, object],
    b_in: object | Mapping[str, object] | None = None, b_out: Mapping[str, object] | None = None,
    *, reduce: str = "mean", absolute: bool = False, **kw: object,
) -> Estimate:
    """Interval of ``reduce`` over OOD sets of ``metric(a) [- metric(b)]`` (paired bootstrap).

    ``a_out`` maps a set (or a "threat | set" label) to OOD scores. ``a_in`` is one array of
    in-distribution scores shared by every set, or a mapping with one array per set (a detector
    tuned per set, e.g. ODIN) — always on the *same* in-distribution images, so all of them are
    resampled with one index draw. With ``b``, each set's value is ``metric(a) - metric(b)`` on
    the same images (``absolute``: its absolute value). ``reduce`` is ``mean``, ``min``, ``max`` or
    ``count > 0`` (the number of sets with a positive value).
    """
    fn = _metric_fn(metric)
    if reduce not in REDUCERS:
        raise ValueError(f"expected reduce in {sorted(REDUCERS)}, got {reduce!r}")
    keys = list(a_out)
    if not keys:
        raise ValueError("expected at least one OOD set in a_out")
    paired = b_out is not None
    if paired and (b_in is None or list(b_out) != keys):
        raise ValueError(f"expected b_in and b_out with the same keys as a_out {keys}, "
                         f"got {list(b_out or {})}")

    def ins(x: object) -> list[object]:
        if isinstance(x, Mapping):
            if list(x) != keys:
                raise ValueError(f"expected per-set in-distribution scores for {keys}, got {list(x)}")
            return [x[k] for k in keys]
        return [x]

    in_a = ins(a_in)
    in_b = ins(b_in) if paired else []
    strata = {"in": tuple(in_a + in_b)}
    for i, k in enumerate(keys):
        strata[f"out{i}"] = (a_out[k], b_out[k]) if paired else (a_out[k],)
    na = len(in_a)

    def stat(d: Mapping[str, tuple[np.ndarray, ...]]) -> float:
        vals = []
        for i in range(len(keys)):
            v = fn(d["in"][i if na > 1 else 0], d[f"out{i}"][0])
            if paired:
                v -= fn(d["in"][na + (i if len(in_b) > 1 else 0)], d[f"out{i}"][1])
            vals.append(abs(v) if absolute else v)
        return float(REDUCERS[reduce](np.asarray(vals)))

    return bootstrap(stat, strata, **kw)


def mean_interval(x: object, **kw: object) -> Estimate:
    """Bootstrap interval of a mean (e.g. a test error from per-image 0/1 errors, an MMC)."""
    return bootstrap(lambda d: float(d["x"][0].mean()), {"x": (x,)}, **kw)


def paired_mean_difference(a: object, b: object, **kw: object) -> Estimate:
    """Bootstrap interval of ``mean(a) - mean(b)`` for per-image values on the same images (paired)."""
    return bootstrap(lambda d: float(d["x"][0].mean() - d["x"][1].mean()), {"x": (a, b)}, **kw)


def proportion_interval(successes: int, trials: int, level: float = LEVEL) -> Estimate:
    """Exact (Clopper–Pearson) interval for a fraction ``successes / trials`` (scipy's ``binomtest``)."""
    level = _check_level(level)
    for name, v in (("successes", successes), ("trials", trials)):
        check_int(v, name, low=0)
    if trials == 0 or successes > trials:
        raise ValueError(f"expected 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    ci = stats.binomtest(int(successes), int(trials)).proportion_ci(confidence_level=level, method="exact")
    return Estimate(successes / trials, float(ci.low), float(ci.high), level,
                    f"Clopper–Pearson over {trials} trials")


def rank_correlation_interval(x: Sequence[float], y: Sequence[float], level: float = LEVEL) -> Estimate:
    """Spearman's rank correlation of paired values with a Fisher-z interval.

    The interval is ``tanh(atanh(ρ) ± z · sqrt(1.06 / (n − 3)))`` (Fieller, Hartley & Pearson
    1957's variance for Spearman's ρ). It needs n ≥ 4 points; with a handful of points it is
    wide, which is the honest answer for a correlation over a few OOD sets (ODIN Fig. 2).
    """
    level = _check_level(level)
    a, b = check_scores(x, "x"), check_scores(y, "y")
    if len(a) != len(b):
        raise ValueError(f"expected paired values of equal length, got {len(a)} and {len(b)}")
    n = len(a)
    if n < 4:
        raise ValueError(f"expected at least 4 paired values for a rank-correlation interval, got {n}")
    rho = float(stats.spearmanr(a, b).statistic)
    if math.isnan(rho):  # a constant input has no ranking
        return Estimate(0.0, -1.0, 1.0, level, f"Spearman over {n} points (a constant input)")
    z = math.atanh(min(max(rho, -1 + 1e-12), 1 - 1e-12))
    half = float(stats.norm.ppf((1 + level) / 2)) * math.sqrt(1.06 / (n - 3))
    return Estimate(rho, math.tanh(z - half), math.tanh(z + half), level, f"Fisher z over {n} points")


def seed_interval(values: Sequence[float], level: float = LEVEL, what: str = "training seeds") -> Estimate:
    """Student-t interval for the mean of per-seed values (training-level claims).

    With one seed the interval is unbounded: one training run cannot decide a claim
    about training noise. ``what`` names the replicates (e.g. "Monte-Carlo training sets").
    """
    level = _check_level(level)
    v = check_scores(values, "values (one per seed)")
    n, mean = len(v), float(v.mean())
    if n < 2:
        return Estimate(mean, -math.inf, math.inf, level, f"1 of {what}")
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return Estimate(mean, mean - half, mean + half, level, f"t-interval over {n} {what}")


def exact(value: float) -> Estimate:
    """A value without sampling noise (a checked bound, a deterministic count)."""
    return Estimate(float(value), float(value), float(value), LEVEL, "exact")


def float_tolerance(dtype: object, magnitude: float = 1.0, ulps: int = 16) -> float:
    """Absolute tolerance for comparing values computed in ``dtype``: ``ulps`` units in the last place.

    ``ulps × eps(dtype) × max(1, |magnitude|)``: two float32 computations of the same quantity
    by different summation orders differ by a few ulps of the result (e.g. 16 × 1.2e-7 ≈ 1.9e-6
    for a float32 probability), so a bound ``score <= certificate`` is checked to that tolerance,
    not to ``1e-12``.
    """
    try:
        np_dtype = np.dtype(str(dtype).removeprefix("torch.")) if "torch." in str(dtype) else np.dtype(dtype)
        eps = float(np.finfo(np_dtype).eps)
    except (TypeError, ValueError) as err:
        raise ValueError(f"expected a floating dtype (e.g. torch.float32, 'float64'), got {dtype!r}") from err
    check_int(ulps, "ulps", low=1)
    return ulps * eps * max(1.0, abs(float(magnitude)))
