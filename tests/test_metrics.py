"""Tests for oodlib.metrics, checked against scikit-learn and brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from oodlib import metrics as M

# --------------------------------------------------------------------------- references


def _labels(s_in: np.ndarray, s_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-distribution labelled 1, scores concatenated."""
    y = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    return y, np.r_[s_in, s_out]


def _brute_fpr(s_in: np.ndarray, s_out: np.ndarray, tpr: float) -> float:
    """FPR at the largest candidate threshold whose TPR (score >= t) reaches ``tpr``."""
    thresholds = np.unique(np.r_[s_in, s_out])[::-1]  # descending
    for t in thresholds:
        if np.mean(s_in >= t) >= tpr:
            return float(np.mean(s_out >= t))
    raise AssertionError("unreachable: the smallest threshold has TPR 1")


def _brute_min_deterr(s_in: np.ndarray, s_out: np.ndarray) -> float:
    thresholds = np.r_[np.inf, np.unique(np.r_[s_in, s_out])]
    return min(0.5 * (1 - np.mean(s_in >= t)) + 0.5 * np.mean(s_out >= t) for t in thresholds)


def _brute_deterr(s_in: np.ndarray, s_out: np.ndarray, tpr: float = 0.95) -> float:
    """P_e at the largest candidate threshold whose TPR reaches ``tpr`` (ODIN §4.3)."""
    for t in np.unique(np.r_[s_in, s_out])[::-1]:
        if np.mean(s_in >= t) >= tpr:
            return 0.5 * (1 - np.mean(s_in >= t)) + 0.5 * np.mean(s_out >= t)
    raise AssertionError("unreachable: the smallest threshold has TPR 1")


def _brute_auc(s_in: np.ndarray, s_out: np.ndarray) -> tuple[float, float]:
    d = s_in[:, None] - s_out[None, :]
    return float(np.mean(d > 0) + 0.5 * np.mean(d == 0)), float(np.mean(d > 0))


def _random_cases(n_cases: int = 30, *, decimals: int | None = None):
    rng = np.random.default_rng(1234 if decimals is None else 99 + decimals)
    for _ in range(n_cases):
        n_in, n_out = rng.integers(1, 300, size=2)
        shift = rng.uniform(-1, 3)
        s_in = rng.normal(shift, 1.0, n_in)
        s_out = rng.normal(0.0, rng.uniform(0.5, 2), n_out)
        if decimals is not None:
            s_in, s_out = np.round(s_in, decimals), np.round(s_out, decimals)
        yield s_in, s_out


CASES = [
    pytest.param(None, id="continuous"),
    pytest.param(1, id="ties-1-decimal"),
    pytest.param(0, id="ties-integers"),
]


# --------------------------------------------------------------------------- vs scikit-learn


@pytest.mark.parametrize("decimals", CASES)
def test_auroc_matches_sklearn(decimals):
    for s_in, s_out in _random_cases(decimals=decimals):
        y, s = _labels(s_in, s_out)
        assert M.auroc(s_in, s_out) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("decimals", CASES)
def test_auroc_both_versions_match_pairwise_definition(decimals):
    for s_in, s_out in _random_cases(10, decimals=decimals):
        std, cons = _brute_auc(s_in, s_out)
        assert M.auroc(s_in, s_out) == pytest.approx(std, abs=1e-12)
        assert M.auroc_conservative(s_in, s_out) == pytest.approx(cons, abs=1e-12)


@pytest.mark.parametrize("decimals", CASES)
def test_aupr_matches_sklearn_average_precision(decimals):
    for s_in, s_out in _random_cases(decimals=decimals):
        y, s = _labels(s_in, s_out)
        assert M.aupr_in(s_in, s_out) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
        assert M.aupr_out(s_in, s_out) == pytest.approx(skm.average_precision_score(1 - y, -s), abs=1e-12)


@pytest.mark.parametrize("decimals", CASES)
def test_roc_curve_matches_sklearn(decimals):
    for s_in, s_out in _random_cases(10, decimals=decimals):
        y, s = _labels(s_in, s_out)
        fpr, tpr, thr = M.roc_curve(s_in, s_out)
        sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, s, drop_intermediate=False)
        np.testing.assert_allclose(fpr, sk_fpr, atol=1e-12)
        np.testing.assert_allclose(tpr, sk_tpr, atol=1e-12)
        assert thr[0] == np.inf
        np.testing.assert_array_equal(thr[1:], sk_thr[1:])
        assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
        assert np.all(np.diff(thr) < 0)
        assert np.trapezoid(tpr, fpr) == pytest.approx(M.auroc(s_in, s_out), abs=1e-12)


# --------------------------------------------------------------------------- FPR / DetErr


@pytest.mark.parametrize("decimals", CASES)
@pytest.mark.parametrize("tpr", [0.95, 0.9, 0.5, 0.07, 1.0])
def test_fpr_at_tpr_matches_brute_force(decimals, tpr):
    for s_in, s_out in _random_cases(15, decimals=decimals):
        assert M.fpr_at_tpr(s_in, s_out, tpr) == pytest.approx(_brute_fpr(s_in, s_out, tpr), abs=1e-15)


@pytest.mark.parametrize("decimals", CASES)
def test_fpr95_matches_sklearn_roc_lookup(decimals):
    # FPR at the first point of the full ROC curve whose TPR reaches 95%
    for s_in, s_out in _random_cases(decimals=decimals):
        y, s = _labels(s_in, s_out)
        fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
        expected = fpr[np.argmax(tpr >= 0.95)]
        assert M.fpr_at_tpr(s_in, s_out) == pytest.approx(expected, abs=1e-15)


def test_fpr_at_tpr_exact_threshold_convention():
    s_in = np.arange(1.0, 21.0)  # 20 in-scores 1..20: 95% TPR keeps 19 -> threshold 2
    s_out = np.array([0.0, 1.0, 1.5, 2.0, 2.5, 30.0])
    # accepted OOD: scores >= 2 -> {2, 2.5, 30}
    assert M.fpr_at_tpr(s_in, s_out) == pytest.approx(3 / 6)
    # TPR 1.0 needs threshold 1 -> OOD >= 1: {1, 1.5, 2, 2.5, 30}
    assert M.fpr_at_tpr(s_in, s_out, tpr=1.0) == pytest.approx(5 / 6)
    # tpr 0.93 -> need 18.6 -> 19 in-scores -> same threshold 2
    assert M.fpr_at_tpr(s_in, s_out, tpr=0.93) == pytest.approx(3 / 6)


def test_fpr_at_tpr_float_rounding_of_tpr_times_n():
    # 0.07 * 100 == 7.000000000000001 in floating point, yet 7 of 100 already gives TPR 0.07:
    # the threshold must be the 7th largest in-score (93), not the 8th (92).
    s_in = np.arange(100.0)
    s_out = np.array([92.0, 93.0, 99.0])
    assert 0.07 * 100 > 7
    assert M.fpr_at_tpr(s_in, s_out, tpr=0.07) == pytest.approx(2 / 3)
    assert M.fpr_at_tpr(s_in, s_out, tpr=0.07) == _brute_fpr(s_in, s_out, 0.07)


@pytest.mark.parametrize("decimals", CASES)
def test_detection_error_matches_brute_force(decimals):
    for s_in, s_out in _random_cases(15, decimals=decimals):
        d = M.detection_error(s_in, s_out)
        assert d == pytest.approx(_brute_deterr(s_in, s_out), abs=1e-12)
        expected = _brute_deterr(s_in, s_out, 0.8)
        assert M.detection_error(s_in, s_out, tpr=0.8) == pytest.approx(expected, abs=1e-12)
        low = M.min_detection_error(s_in, s_out)
        assert low == pytest.approx(_brute_min_deterr(s_in, s_out), abs=1e-12)
        assert 0.0 <= low <= 0.5 and low <= d + 1e-12


def test_detection_error_is_odins_table2_identity():
    """Without ties at the threshold every ODIN Table 2 entry is 2.5 % + FPR95 / 2 (§4.3)."""
    rng = np.random.default_rng(5)
    s_in, s_out = rng.normal(1, 1, 1000), rng.normal(0, 1, 700)  # 950 = 0.95 * 1000 exactly
    assert M.detection_error(s_in, s_out) == pytest.approx(0.025 + M.fpr_at_tpr(s_in, s_out) / 2, abs=1e-15)


# --------------------------------------------------------------------------- edge cases


def test_conservative_never_exceeds_standard():
    rng = np.random.default_rng(7)
    for i in range(200):
        decimals = i % 4  # 0..3 decimals: many ties, some ties, ...
        s_in = np.round(rng.normal(rng.uniform(-1, 2), 1, rng.integers(1, 60)), decimals)
        s_out = np.round(rng.normal(0, 1, rng.integers(1, 60)), decimals)
        std, cons = M.auroc(s_in, s_out), M.auroc_conservative(s_in, s_out)
        assert cons <= std
        # equal exactly when there is no tie across the two sets
        if not np.intersect1d(s_in, s_out).size:
            assert cons == std


def test_constant_scores():
    s_in, s_out = np.full(10, 0.3), np.full(7, 0.3)
    assert M.auroc(s_in, s_out) == 0.5
    assert M.auroc_conservative(s_in, s_out) == 0.0
    assert M.fpr_at_tpr(s_in, s_out) == 1.0
    assert M.detection_error(s_in, s_out) == 0.5 == M.min_detection_error(s_in, s_out)
    y, s = _labels(s_in, s_out)
    assert M.aupr_in(s_in, s_out) == pytest.approx(skm.average_precision_score(y, s))
    assert M.aupr_in(s_in, s_out) == pytest.approx(10 / 17)
    assert M.aupr_out(s_in, s_out) == pytest.approx(7 / 17)


def test_saturated_confidences_conservative_auc():
    # GOOD's motivating case: many in- and out-samples saturate at confidence 1.0
    s_in = np.r_[np.ones(8), np.full(2, 0.9)]
    s_out = np.r_[np.ones(5), np.full(5, 0.2)]
    # pairs: (1 vs 1) 8*5 ties, (1 vs .2) 8*5 wins, (.9 vs 1) 2*5 losses, (.9 vs .2) 2*5 wins
    assert M.auroc(s_in, s_out) == pytest.approx((40 + 10 + 0.5 * 40) / 100)
    assert M.auroc_conservative(s_in, s_out) == pytest.approx(50 / 100)


@pytest.mark.parametrize(
    ("s_in", "s_out", "auc", "cons", "fpr", "deterr"),
    [
        ([1.0], [0.0], 1.0, 1.0, 0.0, 0.0),
        ([0.0], [1.0], 0.0, 0.0, 1.0, 0.5),
        ([0.5], [0.5], 0.5, 0.0, 1.0, 0.5),
    ],
)
def test_one_vs_one(s_in, s_out, auc, cons, fpr, deterr):
    assert M.auroc(s_in, s_out) == auc
    assert M.auroc_conservative(s_in, s_out) == cons
    assert M.fpr_at_tpr(s_in, s_out) == fpr
    assert M.detection_error(s_in, s_out) == deterr
    y, s = _labels(np.array(s_in), np.array(s_out))
    assert M.aupr_in(s_in, s_out) == pytest.approx(skm.average_precision_score(y, s))
    assert M.aupr_out(s_in, s_out) == pytest.approx(skm.average_precision_score(1 - y, -s))


def test_perfect_separation():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.uniform(2, 3, 100), rng.uniform(0, 1, 80)
    m = M.ood_metrics(s_in, s_out)
    assert m == {
        "AUROC": 1.0,
        "AUROC_cons": 1.0,
        "AUPR_in": 1.0,
        "AUPR_out": 1.0,
        "FPR95": 0.0,
        "DetErr": pytest.approx(0.025, abs=1e-15),  # 0.5 (1 - 95/100): ODIN's P_e at 95 % TPR
    }
    assert M.min_detection_error(s_in, s_out) == 0.0


def test_reversed_separation():
    rng = np.random.default_rng(1)
    s_in, s_out = rng.uniform(0, 1, 50), rng.uniform(2, 3, 60)
    assert M.auroc(s_in, s_out) == 0.0
    assert M.auroc_conservative(s_in, s_out) == 0.0
    assert M.fpr_at_tpr(s_in, s_out) == 1.0
    assert M.detection_error(s_in, s_out) == pytest.approx(0.52, abs=1e-15)  # 0.5 (1 - 48/50) + 0.5
    assert M.min_detection_error(s_in, s_out) == 0.5


def test_ood_metrics_agrees_with_individual_functions():
    rng = np.random.default_rng(3)
    s_in, s_out = np.round(rng.normal(1, 1, 200), 1), np.round(rng.normal(0, 1, 150), 1)
    m = M.ood_metrics(s_in, s_out, tpr=0.9)
    assert set(m) == {"AUROC", "AUROC_cons", "AUPR_in", "AUPR_out", "FPR95", "DetErr"}
    assert all(type(v) is float for v in m.values())
    assert m["AUROC"] == M.auroc(s_in, s_out)
    assert m["AUROC_cons"] == M.auroc_conservative(s_in, s_out)
    assert m["AUPR_in"] == M.aupr_in(s_in, s_out)
    assert m["AUPR_out"] == M.aupr_out(s_in, s_out)
    assert m["FPR95"] == M.fpr_at_tpr(s_in, s_out, tpr=0.9)
    assert m["DetErr"] == M.detection_error(s_in, s_out, tpr=0.9)


def test_input_types_agree():
    rng = np.random.default_rng(5)
    s_in, s_out = rng.normal(1, 1, 64).astype(np.float32), rng.normal(0, 1, 48).astype(np.float32)
    ref = M.ood_metrics(s_in, s_out)
    assert M.ood_metrics(torch.from_numpy(s_in), torch.from_numpy(s_out)) == ref
    t_in = torch.from_numpy(s_in).requires_grad_(True)
    assert M.ood_metrics(t_in, torch.from_numpy(s_out)) == ref
    assert M.ood_metrics(s_in.tolist(), s_out.tolist()) == ref
    assert M.ood_metrics(s_in.astype(np.float64), s_out) == ref


def test_large_input_is_fast_and_correct():
    rng = np.random.default_rng(11)
    s_in, s_out = rng.normal(1, 1, 200_000), rng.normal(0, 1, 150_000)
    y, s = _labels(s_in, s_out)
    assert M.auroc(s_in, s_out) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-10)


# --------------------------------------------------------------------------- MMC


def test_mmc_vector_and_matrix():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (50, 10))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = p.max(1).mean()
    assert M.mmc(p) == pytest.approx(expected)
    assert M.mmc(p.max(1)) == pytest.approx(expected)
    assert M.mmc(torch.softmax(torch.from_numpy(logits).float(), dim=1)) == pytest.approx(expected, abs=1e-6)
    assert M.mmc([0.1, 0.5, 1.0]) == pytest.approx(1.6 / 3)
    assert M.mmc(np.full((4, 10), 0.1)) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "bad",
    [
        np.array([[0.5, 0.6], [0.5, 0.5]]),  # row sums to 1.1
        np.array([[0.2, 0.2], [0.5, 0.5]]),  # row sums to 0.4
        np.array([[0.5, 0.5], [0.505, 0.5]]),  # row sums to 1.005
        np.array([[1.5, -0.5]]),  # sums to 1 but out of [0, 1]
        np.array([0.2, 1.3]),  # max-confidence above 1
        np.array([0.2, -0.1]),
        np.array([0.2, np.nan]),
        np.zeros((0,)),
        np.zeros((0, 10)),
        np.zeros((2, 3, 4)),
        np.ones((3, 1, 1)),
        "abc",
    ],
)
def test_mmc_rejects_bad_input(bad):
    with pytest.raises(ValueError, match="expected confidences"):
        M.mmc(bad)


# --------------------------------------------------------------------------- validation

ALL_PAIR_FUNCS = [
    M.auroc,
    M.auroc_conservative,
    M.aupr_in,
    M.aupr_out,
    M.fpr_at_tpr,
    M.detection_error,
    M.min_detection_error,
    M.roc_curve,
    M.ood_metrics,
]


@pytest.mark.parametrize("func", ALL_PAIR_FUNCS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("s_in", "s_out", "msg"),
    [
        (np.ones((3, 2)), np.ones(3), "1-D"),
        (np.ones(3), torch.ones(3, 1), "1-D"),
        (np.ones(0), np.ones(3), "at least one score"),
        (np.ones(3), [], "at least one score"),
        (np.array([1.0, np.nan]), np.ones(3), "finite"),
        (np.ones(3), np.array([np.inf, 0.0]), "finite"),
        (["a", "b"], np.ones(3), "1-D array of numbers"),
    ],
)
def test_bad_scores_raise(func, s_in, s_out, msg):
    with pytest.raises(ValueError, match=msg):
        func(s_in, s_out)


@pytest.mark.parametrize("tpr", [0, 0.0, 1.5, -0.1, float("nan"), True, "0.95", None])
def test_bad_tpr_raises(tpr):
    s = np.linspace(0, 1, 10)
    with pytest.raises(ValueError, match=r"tpr as a finite number in \(0, 1\]"):
        M.fpr_at_tpr(s, s, tpr)
    with pytest.raises(ValueError, match=r"tpr as a finite number in \(0, 1\]"):
        M.ood_metrics(s, s, tpr=tpr)


def test_error_names_which_input():
    with pytest.raises(ValueError, match="s_out"):
        M.auroc(np.ones(3), np.ones((2, 2)))
    with pytest.raises(ValueError, match="s_in"):
        M.auroc(np.ones((2, 2)), np.ones(3))
