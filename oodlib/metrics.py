"""OOD-detection metrics: AUROC (standard and conservative), AUPR-in/out, FPR@TPR, detection
error and mean maximum confidence (MMC).

Conventions (used throughout oodlib)
------------------------------------
* Scores are **higher = more in-distribution**.
* **In-distribution is the positive class.** TPR is the fraction of in-distribution samples
  accepted (score >= threshold), FPR the fraction of OOD samples accepted.
* Every metric is returned as a fraction in [0, 1] (multiply by 100 for the papers' tables).

The metrics are those of Liang, Li & Srikant (2018, "ODIN", §4.3): FPR at 95% TPR, detection
error, AUROC, AUPR-In and AUPR-Out; the conservative AUC of Bitterwolf, Meinke & Hein (2020,
"GOOD", §2 and Appendix C), in which ties between an in- and an out-distribution score count as
failures; and the mean maximum confidence (MMC) of Hein, Andriushchenko & Bitterwolf (2019, §4).

Everything is implemented with numpy by sorting (O(N log N), no Python loops over samples) and
is checked against scikit-learn in ``tests/test_metrics.py``. Inputs may be torch tensors, numpy
arrays or sequences; each score vector must be 1-D, non-empty and finite.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .validation import check_number, check_scores, describe

__all__ = [
    "auroc",
    "auroc_conservative",
    "aupr_in",
    "aupr_out",
    "fpr_at_tpr",
    "detection_error",
    "mmc",
    "roc_curve",
    "ood_metrics",
]


# --------------------------------------------------------------------------- helpers


def _check_pair(s_in: object, s_out: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert the in- and out-distribution score vectors to float64 arrays."""
    return check_scores(s_in, "s_in (in-distribution scores)"), check_scores(
        s_out, "s_out (out-of-distribution scores)"
    )


def _pair_counts(s_in: np.ndarray, s_out: np.ndarray) -> tuple[int, int]:
    """Return (#pairs with s_in > s_out, #pairs with s_in == s_out) over all in/out pairs."""
    out_sorted = np.sort(s_out)
    below = np.searchsorted(out_sorted, s_in, side="left")  # #out strictly below each in-score
    below_or_equal = np.searchsorted(out_sorted, s_in, side="right")
    wins = int(below.sum(dtype=np.int64))
    ties = int((below_or_equal - below).sum(dtype=np.int64))
    return wins, ties


def _curve_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true/false positive counts at each distinct threshold, thresholds descending.

    For the k-th distinct score value ``t_k`` (descending), ``tps[k]`` = #positives with score
    >= t_k and ``fps[k]`` = #negatives with score >= t_k.
    """
    scores = np.concatenate([pos, neg])
    labels = np.concatenate([np.ones(pos.size, dtype=np.int64), np.zeros(neg.size, np.int64)])
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    # last index of each run of equal scores: a threshold includes the whole run
    last = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])
    tps = np.cumsum(labels)[last]
    fps = (last + 1) - tps
    return tps, fps, scores[last]


def _average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision AP = sum_k (R_k - R_{k-1}) P_k over distinct thresholds (descending).

    This is scikit-learn's ``average_precision_score`` (step-wise, no interpolation).
    """
    tps, fps, _ = _curve_counts(pos, neg)
    precision = tps / (tps + fps)
    recall = tps / pos.size
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


# --------------------------------------------------------------------------- AUROC


def auroc(s_in: object, s_out: object) -> float:
    """Area under the ROC curve, in-distribution positive; ties count half.

    AUROC = P(s_in > s_out) + 0.5 * P(s_in == s_out) over independent in/out pairs, i.e. the
    Mann-Whitney statistic, which is the probabilistic reading of the AUROC used by Liang et al.
    (2018, §4.3, metric 3). Identical to ``sklearn.metrics.roc_auc_score`` with in-distribution
    labelled 1. Constant scores give 0.5. See :func:`auroc_conservative` for the tie-averse
    variant used in GOOD's tables.

    Args:
        s_in: in-distribution scores, shape (N_in,), higher = more in-distribution.
        s_out: out-of-distribution scores, shape (N_out,).

    Returns:
        AUROC in [0, 1].
    """
    a, b = _check_pair(s_in, s_out)
    wins, ties = _pair_counts(a, b)
    return (2 * wins + ties) / (2 * a.size * b.size)


def auroc_conservative(s_in: object, s_out: object) -> float:
    """Conservative AUROC: ties count as failures, AUC = P(s_in > s_out) strictly.

    Bitterwolf, Meinke & Hein (2020, §2 and Appendix C) argue that when an in- and an
    out-distribution sample get indistinguishable confidences (e.g. both saturate at 1.0 in
    float precision) the detector has *not* separated them, so such pairs must not receive the
    half credit of the standard AUROC. Their AUC / AAUC / GAUC tables use this version (known
    docs/design.md, pitfall 2). Always ``auroc_conservative <= auroc``, with equality iff no in/out
    pair is tied; constant scores give 0.0.

    Args:
        s_in: in-distribution scores, shape (N_in,), higher = more in-distribution.
        s_out: out-of-distribution scores, shape (N_out,).

    Returns:
        Conservative AUROC in [0, 1].
    """
    a, b = _check_pair(s_in, s_out)
    wins, _ = _pair_counts(a, b)
    return wins / (a.size * b.size)


# --------------------------------------------------------------------------- AUPR


def aupr_in(s_in: object, s_out: object) -> float:
    """Area under the precision-recall curve with in-distribution as positive (AUPR-In).

    Liang et al. (2018, §4.3, metric 4): precision = TP/(TP+FP), recall = TP/(TP+FN), with
    in-distribution samples as positives and the scores as given. Computed as average precision
    AP = sum_k (R_k - R_{k-1}) P_k over the distinct thresholds, which equals
    ``sklearn.metrics.average_precision_score(labels, scores)`` with in-distribution labelled 1.
    Note that AUPR depends on the in/out ratio; a random detector scores N_in / (N_in + N_out).

    Args:
        s_in: in-distribution scores, shape (N_in,), higher = more in-distribution.
        s_out: out-of-distribution scores, shape (N_out,).

    Returns:
        AUPR-In in (0, 1].
    """
    a, b = _check_pair(s_in, s_out)
    return _average_precision(a, b)


def aupr_out(s_in: object, s_out: object) -> float:
    """Area under the precision-recall curve with out-of-distribution as positive (AUPR-Out).

    Liang et al. (2018, §4.3, metric 4): as :func:`aupr_in` but OOD samples are the positives and
    the scores are negated (so that higher = more OOD). Equals
    ``sklearn.metrics.average_precision_score(labels_out, -scores)`` with OOD labelled 1.

    Args:
        s_in: in-distribution scores, shape (N_in,), higher = more in-distribution.
        s_out: out-of-distribution scores, shape (N_out,).

    Returns:
        AUPR-Out in (0, 1].
    """
    a, b = _check_pair(s_in, s_out)
    return _average_precision(-b, -a)


# --------------------------------------------------------------------------- thresholded metrics


def tpr_rank(n: int, tpr: float) -> int:
    """The smallest k with ``k / n >= tpr`` (compared in float exactly as a brute force would).

    The 95 %-TPR threshold is the k-th largest of ``n`` in-distribution scores.
    """
    k = max(1, min(n, math.ceil(tpr * n)))
    while k > 1 and (k - 1) / n >= tpr:
        k -= 1
    while k < n and k / n < tpr:
        k += 1
    return k


def tpr_threshold(s_in: object, tpr: float = 0.95) -> float:
    """The largest threshold t such that a fraction of at least ``tpr`` of ``s_in`` scores >= t.

    The one threshold of the book: "accept as in-distribution iff score >= t" at ``tpr`` true
    positive rate (FPR95's threshold, ATOM's γ of eq. 5, the histograms' dashed line). With
    ``k = ceil(tpr · n)`` it is the k-th largest in-distribution score.
    """
    s_in = check_scores(s_in, "s_in")
    tpr = check_number(tpr, "tpr", low=0, low_open=True, high=1)
    n = s_in.size
    k = tpr_rank(n, tpr)
    # the k-th largest in-score: at least k in-scores are >= it, and any larger t accepts < k
    return float(np.partition(s_in, n - k)[n - k])


def fpr_at_tpr(s_in: object, s_out: object, tpr: float = 0.95) -> float:
    """False positive rate on OOD at the threshold giving ``tpr`` true positive rate on in-data.

    Liang et al. (2018, §4.3, metric 1), "FPR at 95% TPR", in-distribution positive (other code
    bases use other conventions: docs/design.md, pitfall 1). Exact definition: a sample
    is accepted as in-distribution iff its score is >= t; the threshold is

        t* = max { t : #{i : s_in[i] >= t} / N_in >= tpr },

    i.e. the k-th largest in-distribution score with k = ceil(tpr * N_in) (the largest threshold
    whose TPR reaches ``tpr``; with ties the achieved TPR may exceed ``tpr``), and the result is

        FPR = #{j : s_out[j] >= t*} / N_out.

    No interpolation between ROC points is done. This equals sklearn's full ROC curve read at the
    first point whose TPR is >= ``tpr``.

    Args:
        s_in: in-distribution scores, shape (N_in,), higher = more in-distribution.
        s_out: out-of-distribution scores, shape (N_out,).
        tpr: target true positive rate in (0, 1]; default 0.95.

    Returns:
        FPR in [0, 1] (lower is better).
    """
    a, b = _check_pair(s_in, s_out)
    t = tpr_threshold(a, tpr)
    return float(np.count_nonzero(b >= t) / b.size)


def detection_error(s_in: object, s_out: object, tpr: float = 0.95) -> float:
    """Detection error P_e = 0.5 (1 - TPR) + 0.5 FPR at the ``tpr`` threshold (ODIN's "DetErr").

    Liang et al. (2018, §4.3, metric 2): the misclassification probability when in- and
    out-distribution samples are equally likely, "when TPR is 95%". The threshold is FPR95's
    (:func:`tpr_threshold`, accept iff score >= t*), so without ties at t*

        P_e = 0.5 (1 - 0.95) + 0.5 FPR95 = 2.5 % + FPR95 / 2,

    which every entry of ODIN's Table 2 satisfies. With ties the achieved TPR (which may exceed
    ``tpr``) is used. Perfect separation gives 0.5 (1 - k/N_in) (0.025 for N_in = 100).
    :func:`min_detection_error` is the minimum over all thresholds, which other code bases report.

    Args:
        s_in: in-distribution scores, shape (N_in,), higher = more in-distribution.
        s_out: out-of-distribution scores, shape (N_out,).
        tpr: target true positive rate in (0, 1]; default 0.95.

    Returns:
        P_e in [0, 1].
    """
    a, b = _check_pair(s_in, s_out)
    t = tpr_threshold(a, tpr)
    achieved = np.count_nonzero(a >= t) / a.size
    return float(0.5 * (1.0 - achieved) + 0.5 * np.count_nonzero(b >= t) / b.size)


def min_detection_error(s_in: object, s_out: object) -> float:
    """The minimal detection error min_t [0.5 (1 - TPR(t)) + 0.5 FPR(t)] over all thresholds.

    Not ODIN's Table 2 metric (that is :func:`detection_error`, at 95 % TPR) but the one some
    released evaluation code computes; thresholds include t = +inf (accept nothing, P_e = 0.5),
    so the value is in [0, 0.5]. Perfect separation gives 0; constant scores give 0.5.
    """
    fpr, tpr, _ = roc_curve(s_in, s_out)
    return float(np.min(0.5 * (1.0 - tpr) + 0.5 * fpr))


def roc_curve(s_in: object, s_out: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full ROC curve (for plotting), in-distribution positive, thresholds descending.

    Returns every operating point "accept iff score >= t" for t in ``+inf`` followed by the
    distinct score values in decreasing order; the first point is (FPR, TPR) = (0, 0) and the
    last is (1, 1). Equals ``sklearn.metrics.roc_curve(labels, scores,
    drop_intermediate=False)`` with in-distribution labelled 1 (Liang et al. 2018, §4.3).

    Args:
        s_in: in-distribution scores, shape (N_in,), higher = more in-distribution.
        s_out: out-of-distribution scores, shape (N_out,).

    Returns:
        ``(fpr, tpr, thresholds)``, three float64 arrays of equal length (#distinct scores + 1).
    """
    a, b = _check_pair(s_in, s_out)
    tps, fps, thresholds = _curve_counts(a, b)
    fpr = np.r_[0.0, fps / b.size]
    tpr = np.r_[0.0, tps / a.size]
    return fpr, tpr, np.r_[np.inf, thresholds]


# --------------------------------------------------------------------------- MMC


def mmc(confidences: object) -> float:
    """Mean maximum confidence (MMC) of Hein, Andriushchenko & Bitterwolf (2019, §4).

    MMC = (1/N) sum_i max_k p_k(x_i), the average softmax confidence in the predicted class.
    On OOD data a low MMC (close to 1/K) means the classifier is not overconfident.

    Args:
        confidences: either a 1-D vector (N,) of maximum confidences in [0, 1], or a 2-D
            (N, K) matrix of class probabilities (rows in [0, 1] summing to 1 within 1e-4),
            as a tensor, array or nested sequence.

    Returns:
        MMC in [0, 1].
    """
    expected = (
        "expected confidences as a 1-D vector (N,) of max-confidences in [0, 1] "
        "or a 2-D (N, K) matrix of probabilities whose rows sum to 1"
    )
    if isinstance(confidences, torch.Tensor):
        p = confidences.detach().cpu().double().numpy()
    else:
        try:
            p = np.asarray(confidences, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{expected}, got {describe(confidences)}") from err
    if p.ndim not in (1, 2) or p.shape[0] == 0 or (p.ndim == 2 and p.shape[1] == 0):
        raise ValueError(f"{expected}, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{expected}, got {int((~np.isfinite(p)).sum())} NaN/inf values")
    lo, hi = float(p.min()), float(p.max())
    if lo < 0.0 or hi > 1.0 + 1e-6:
        raise ValueError(f"{expected}, got values in [{lo:.4g}, {hi:.4g}]")
    if p.ndim == 2:
        sums = p.sum(axis=1)
        bad = np.abs(sums - 1.0) > 1e-4
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{expected}, got {int(bad.sum())} of {p.shape[0]} rows not summing to 1 "
                f"(row {i} sums to {sums[i]:.6g}); apply softmax to logits first"
            )
        p = p.max(axis=1)
    return float(np.mean(np.minimum(p, 1.0)))


# --------------------------------------------------------------------------- all at once


def ood_metrics(s_in: object, s_out: object, *, tpr: float = 0.95) -> dict[str, float]:
    """All threshold-free and thresholded OOD metrics in one dict (fractions in [0, 1]).

    Keys: ``"AUROC"`` (:func:`auroc`, ties half), ``"AUROC_cons"`` (:func:`auroc_conservative`,
    ties fail; Bitterwolf et al. 2020), ``"AUPR_in"``, ``"AUPR_out"`` (:func:`aupr_in`,
    :func:`aupr_out`), ``"FPR95"`` (:func:`fpr_at_tpr` at ``tpr``; the key keeps its name for
    any ``tpr``) and ``"DetErr"`` (:func:`detection_error` at the same ``tpr``), following Liang et
    al. (2018, §4.3).

    Args:
        s_in: in-distribution scores, shape (N_in,), higher = more in-distribution.
        s_out: out-of-distribution scores, shape (N_out,).
        tpr: target TPR for the FPR metric, in (0, 1]; default 0.95.
    """
    a, b = _check_pair(s_in, s_out)
    tpr = check_number(tpr, "tpr", low=0, low_open=True, high=1)
    wins, ties = _pair_counts(a, b)
    n_pairs = a.size * b.size
    return {
        "AUROC": (2 * wins + ties) / (2 * n_pairs),
        "AUROC_cons": wins / n_pairs,
        "AUPR_in": _average_precision(a, b),
        "AUPR_out": _average_precision(-b, -a),
        "FPR95": fpr_at_tpr(a, b, tpr),
        "DetErr": detection_error(a, b, tpr),
    }
