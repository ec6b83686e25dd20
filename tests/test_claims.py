from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from oodlib import claims, metrics
from oodlib.claims import FAILS, HOLDS, INCONCLUSIVE, Claim, Estimate


def test_bootstrap_interval_covers_a_known_auroc():
    """Coverage on a synthetic case with a known answer: N(1, 1) vs N(0, 1) has AUROC = Phi(1/sqrt 2)."""
    truth = stats.norm.cdf(1 / math.sqrt(2))
    rng = np.random.default_rng(0)
    hits = 0
    trials = 60
    for t in range(trials):
        s_in, s_out = rng.normal(1, 1, 150), rng.normal(0, 1, 100)
        est = claims.metric_interval("AUROC", s_in, s_out, n_boot=200, seed=t)
        assert est.lo <= est.value <= est.hi
        hits += est.lo <= truth <= est.hi
    # nominal 95 %: 60 trials give 57 on average; a binomial(60, 0.95) is >= 51 with prob. > 0.999
    assert hits >= 51, hits


def test_bootstrap_interval_of_a_mean_matches_the_normal_interval():
    x = np.random.default_rng(1).normal(0, 1, 2000)
    est = claims.bootstrap(lambda d: d["x"][0].mean(), {"x": (x,)}, n_boot=500)
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    assert est.value == pytest.approx(x.mean())
    assert est.hi - est.lo == pytest.approx(2 * half, rel=0.2)


def test_paired_difference_is_tighter_than_the_spread_of_either_detector():
    rng = np.random.default_rng(2)
    hard_in, hard_out = rng.normal(0, 1, 500), rng.normal(0, 1, 300)  # shared image difficulty
    a = (hard_in + 1.0, hard_out)
    b = (hard_in + 1.0 + rng.normal(0, 0.05, 500), hard_out + rng.normal(0, 0.05, 300))
    diff = claims.difference_interval("AUROC", a, b, n_boot=300)
    single = claims.metric_interval("AUROC", *a, n_boot=300)
    assert diff.hi - diff.lo < 0.5 * (single.hi - single.lo)
    assert diff.value == pytest.approx(metrics.auroc(*a) - metrics.auroc(*b))


def test_per_set_interval_pairs_sets_and_checks_keys():
    rng = np.random.default_rng(3)
    s_in = rng.normal(1, 1, 300)
    outs = {"a": rng.normal(0, 1, 100), "b": rng.normal(-1, 1, 100)}
    est = claims.per_set_interval("FPR95", s_in, outs, s_in, outs, n_boot=100)
    assert est.value == 0 and est.lo == 0 and est.hi == 0  # identical detectors: every replicate is 0
    single = claims.per_set_interval("AUROC", s_in, outs, n_boot=100)
    assert single.value == pytest.approx(np.mean([metrics.auroc(s_in, o) for o in outs.values()]))
    with pytest.raises(ValueError, match="same keys"):
        claims.per_set_interval("AUROC", s_in, outs, s_in, {"a": outs["a"]})


def test_bootstrap_validates_its_inputs():
    with pytest.raises(ValueError, match="equal lengths"):
        claims.bootstrap(lambda d: 0.0, {"x": (np.ones(3), np.ones(4))})
    with pytest.raises(ValueError, match="n_boot"):
        claims.bootstrap(lambda d: 0.0, {"x": (np.ones(3),)}, n_boot=5)
    with pytest.raises(ValueError, match="level"):
        claims.bootstrap(lambda d: 0.0, {"x": (np.ones(3),)}, level=1.5)
    with pytest.raises(ValueError, match="metric"):
        claims.metric_interval("accuracy", [1.0], [0.0])
    with pytest.raises(ValueError, match="finite"):
        claims.metric_interval("AUROC", [1.0, float("nan")], [0.0])


@pytest.mark.parametrize(("lo", "hi", "direction", "verdict"), [
    (0.6, 0.8, ">", HOLDS), (0.2, 0.4, ">", FAILS), (0.4, 0.6, ">", INCONCLUSIVE),
    (0.5, 0.7, ">", INCONCLUSIVE),
    (0.2, 0.5, ">", FAILS), (0.2, 0.4, "<", HOLDS), (0.6, 0.8, "<", FAILS), (0.4, 0.6, "<", INCONCLUSIVE),
    (0.5, 0.5, "<", FAILS), (0.5, 0.5, ">", FAILS),
])
def test_verdict_rule(lo, hi, direction, verdict):
    est = Estimate((lo + hi) / 2, lo, hi)
    assert claims.decide(est, 0.5, direction) == verdict


def test_verdict_rule_rejects_bad_direction():
    with pytest.raises(ValueError, match="direction"):
        claims.decide(claims.exact(1.0), 0.5, ">=")


def test_check_fails_only_on_contradictions():
    def claim(lo, hi, expected):
        return Claim("x > 0", "paper", "x", Estimate((lo + hi) / 2, lo, hi), 0.0, expected=expected,
                     scope=claims.THEOREM)

    assert claims.contradicted([claim(-1, 1, HOLDS)]) == []
    claims.check([claim(-1, 1, HOLDS), claim(-1, 1, FAILS), claim(1, 2, HOLDS), claim(-2, -1, FAILS),
                  claim(-2, -1, None)])
    with pytest.raises(AssertionError, match="expected 'holds'"):
        claims.check([claim(-2, -1, HOLDS)])
    with pytest.raises(AssertionError, match="expected 'does not hold here'"):
        claims.check([claim(1, 2, FAILS)])


def test_proportion_and_seed_intervals():
    p = claims.proportion_interval(1000, 1000)
    assert p.value == 1.0 and p.hi == 1.0 and 0.99 < p.lo < 0.999
    q = claims.proportion_interval(3, 10)
    ref = stats.binomtest(3, 10).proportion_ci(method="exact")
    assert (q.lo, q.hi) == pytest.approx((ref.low, ref.high))
    with pytest.raises(ValueError, match="successes"):
        claims.proportion_interval(11, 10)
    one = claims.seed_interval([1.5])
    assert math.isinf(one.lo) and claims.decide(one, 0.0) == INCONCLUSIVE
    three = claims.seed_interval([1.0, 2.0, 3.0])
    assert three.value == 2.0 and three.lo == pytest.approx(2 - stats.t.ppf(0.975, 2) / math.sqrt(3))


def test_float_tolerance_is_tied_to_the_dtype():
    t32 = claims.float_tolerance(torch.float32)
    t64 = claims.float_tolerance("float64")
    assert 1e-6 < t32 < 1e-5 and 1e-15 < t64 < 1e-14
    assert claims.float_tolerance(np.float32, magnitude=100.0) == pytest.approx(100 * t32)
    # a float32 sum in two orders differs by far less than the tolerance, far more than 1e-12
    x = np.random.default_rng(0).random(10_000).astype(np.float32)
    a, b = np.float32(x.sum()), np.float32(np.sort(x)[::-1].sum())
    assert abs(float(a) - float(b)) <= claims.float_tolerance(np.float32, magnitude=float(a))
    with pytest.raises(ValueError, match="floating dtype"):
        claims.float_tolerance("int32")


def test_estimate_validation_and_format():
    with pytest.raises(ValueError, match="lo <= hi"):
        Estimate(0.5, 0.6, 0.4)
    with pytest.raises(ValueError, match="real number"):
        Estimate(float("nan"), 0, 1)
    e = Estimate(0.5, 0.25, 0.75)
    assert format(e, ".2f") == "0.50 [0.25, 0.75]" and format(claims.exact(2.0), ".1f") == "2.0"
    assert e.scaled(-2).lo == -1.5 and e.shifted(1).hi == 1.75
    with pytest.raises(ValueError, match="expected"):
        Claim("s", "p", "q", e, 0.0, expected="maybe")


def test_record_load_and_markdown_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("OODLIB_CLAIMS", str(tmp_path))
    est = Estimate(0.1, 0.05, 0.2, method="boot")
    cs = [Claim("a beats b", "Paper 2020, Table 1", "AUROC a - b", est, 0.0,
                paper_value="0.2"),
          Claim("unbounded", "Paper", "x", claims.seed_interval([1.0]), 0.0, expected=None),
          Claim("infinite value", "Paper", "x", Estimate(-math.inf, -math.inf, math.inf), 0.0, expected=None)]
    path = claims.record("06_atom", cs, "ci", 0)
    assert path.exists()
    back = claims.load("ci", 0)
    assert [c for _, c in back] == cs
    md = claims.markdown("ci", 0)
    assert "1 holds" in md and "2 inconclusive at this budget" in md and "a beats b" in md
    with pytest.raises(FileNotFoundError, match="run the chapters"):
        claims.markdown("ci", 7)
    with pytest.raises(ValueError, match="chapter"):
        claims.record("../x", cs, "ci", 0)


def test_per_set_interval_reductions_and_per_set_in_scores():
    rng = np.random.default_rng(4)
    s_in = rng.normal(1, 1, 200)
    outs = {"a": rng.normal(0, 1, 80), "b": rng.normal(2, 1, 80)}
    aucs = [metrics.auroc(s_in, o) for o in outs.values()]
    low = claims.per_set_interval("AUROC", s_in, outs, reduce="min", n_boot=50)
    assert low.value == pytest.approx(min(aucs))
    assert claims.per_set_interval("AUROC", s_in, outs, reduce="count > 0", n_boot=50).value == 2
    shifted = {k: v - 0.5 for k, v in outs.items()}
    per_in = {"a": s_in, "b": s_in + 0.1}
    est = claims.per_set_interval("FPR95", per_in, outs, s_in, shifted, reduce="max", absolute=True,
                                  n_boot=50)
    fpr = metrics.fpr_at_tpr
    ref = max(abs(fpr(per_in[k], outs[k]) - fpr(s_in, shifted[k])) for k in outs)
    assert est.value == pytest.approx(ref) and est.lo >= 0
    with pytest.raises(ValueError, match="reduce"):
        claims.per_set_interval("AUROC", s_in, outs, reduce="median")
    with pytest.raises(ValueError, match="per-set"):
        claims.per_set_interval("AUROC", {"x": s_in}, outs)


@pytest.mark.parametrize("metric", ["AUROC", "AUROC_cons", "FPR95"])
def test_sorted_metric_equals_the_metrics_module(metric):
    rng = np.random.default_rng(5)
    s_in = np.round(rng.normal(1, 1, 301), 1)  # ties on purpose
    s_out = np.round(rng.normal(0, 1, 77), 1)
    ref = {"AUROC": metrics.auroc, "AUROC_cons": metrics.auroc_conservative,
           "FPR95": metrics.fpr_at_tpr}[metric]
    assert claims.sorted_metric(metric, np.sort(s_in), s_out) == pytest.approx(ref(s_in, s_out), abs=1e-12)
    with pytest.raises(ValueError, match="metric"):
        claims.sorted_metric("MMC", np.sort(s_in), s_out)


def test_bootstrap_table_pairs_detectors_on_the_same_images():
    rng = np.random.default_rng(6)
    s_in = {"a": rng.normal(1, 1, 200), "b": rng.normal(1.2, 1, 200)}
    s_out = {(d, "t", s): rng.normal(0, 1, 40) for d in s_in for s in ("x", "y")}

    def stat(sin, sout):
        return np.mean([claims.sorted_metric("AUROC", sin[d], sout[(d, "t", s)])
                        for d in sin for s in ("x", "y")])

    est = claims.bootstrap_table(stat, s_in, s_out, n_boot=100)
    ref = np.mean([metrics.auroc(s_in[d], s_out[(d, "t", s)]) for d in s_in for s in ("x", "y")])
    assert est.value == pytest.approx(ref) and est.lo < est.value < est.hi
    with pytest.raises(ValueError, match="paired"):
        claims.bootstrap_table(stat, s_in, {**s_out, ("a", "u", "x"): np.zeros(3)}, n_boot=50)


def test_contradicted_lists_what_check_raises_for():
    bad = Claim("x > 0", "paper", "x", claims.seed_interval([-1.0, -1.5, -2.0]), 0.0)
    ok = Claim("y > 0", "paper", "y", Estimate(0.0, -1, 1), 0.0, scope=claims.THEOREM)
    lines = claims.contradicted([ok, bad])
    assert len(lines) == 1 and lines[0].startswith("- x > 0")


def test_scope_decides_what_is_asserted():
    """A claim about one trained model is reported, never asserted; over seeds or for every model it is."""
    boot = Estimate(-1.5, -2, -1, method="bootstrap over images (1000×)")
    one_model = Claim("x > 0", "paper", "x", boot, 0.0)
    assert one_model.scope == claims.MODEL and one_model.verdict == FAILS
    assert not one_model.asserted and not one_model.contradicted and claims.contradicted([one_model]) == []
    seeds = Claim("x > 0", "paper", "x", claims.seed_interval([-1.0, -1.5, -2.0]), 0.0)
    assert seeds.scope == claims.SEEDS and seeds.scope_label == "3 training seeds" and seeds.contradicted
    sanity = Claim("x > 0", "paper", "x", claims.exact(-1.0), 0.0, sanity=True)
    assert sanity.scope == claims.THEOREM and sanity.contradicted and "sanity" in sanity.scope_label
    theorem = Claim("x > 0", "paper", "x", boot, 0.0, scope=claims.THEOREM)
    assert theorem.contradicted and theorem.as_row()["asserted"] == "yes"
    assert not Claim("x > 0", "p", "x", claims.seed_interval([-1.0, -2.0, -1.5]), 0.0, expected=None).asserted
    with pytest.raises(ValueError, match="interval over training seeds"):
        Claim("x > 0", "paper", "x", boot, 0.0, scope=claims.SEEDS)
    with pytest.raises(ValueError, match="scope"):
        Claim("x > 0", "paper", "x", boot, 0.0, scope="some models")


def test_verdicts_by_seed_lists_what_moved(tmp_path):
    def run(seed, lo):
        cs = [Claim(f"a at seed {seed}", "P", "a", Estimate(lo + 0.5, lo, lo + 1), 0.0),
              Claim("b", "P", "b", claims.seed_interval([1.0, 1.1, 1.2]), 0.0)]
        claims.record("01_x", cs, "ci", seed, folder=tmp_path / str(seed))
    run(0, 1.0)
    run(1, -0.5)
    df = claims.verdicts_by_seed("ci", [0, 1], {0: tmp_path / "0", 1: tmp_path / "1"})
    assert list(df["seed 0"]) == [HOLDS, HOLDS] and list(df["seed 1"]) == [INCONCLUSIVE, HOLDS]
    assert list(df.moved) == ["yes", ""] and df.claim[0] == "a at seed 0"
    assert list(df.scope) == [claims.MODEL, "3 training seeds"]
    claims.record("02_y", [Claim("c", "P", "c", claims.exact(1.0), 0.0)], "ci", 1, folder=tmp_path / "1")
    with pytest.raises(ValueError, match="same claims"):
        claims.verdicts_by_seed("ci", [0, 1], {0: tmp_path / "0", 1: tmp_path / "1"})
    with pytest.raises(ValueError, match="two seeds"):
        claims.verdicts_by_seed("ci", [0])


def test_rank_correlation_interval():
    x = np.arange(10.0)
    perfect = claims.rank_correlation_interval(x, 2 * x + 1)
    assert perfect.value == pytest.approx(1.0) and perfect.lo > 0.5 and perfect.hi == pytest.approx(1.0)
    few = claims.rank_correlation_interval([1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0])
    assert few.value == pytest.approx(0.6) and few.lo < 0 < few.hi  # four points cannot decide
    anti = claims.rank_correlation_interval(x, -x)
    assert anti.value == pytest.approx(-1.0) and anti.hi < -0.5
    assert claims.decide(anti, 0.0, "<") == claims.HOLDS
    assert claims.decide(few, 0.0, "<") == claims.INCONCLUSIVE
    with pytest.raises(ValueError, match="at least 4"):
        claims.rank_correlation_interval([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="equal length"):
        claims.rank_correlation_interval(x, x[:5])


def test_contradicted_is_not_asserted_at_toy_sizes(capsys):
    from oodlib import profiles

    bad = claims.Claim("x > 1", "paper", "x", claims.exact(0.0), 1.0, scope=claims.THEOREM)
    assert claims.contradicted([bad]) and claims.contradicted([bad], profiles.CI)
    assert claims.contradicted([bad], profiles.SMOKE) == []
    assert "1 of 1 would be contradicted" in capsys.readouterr().out


def test_bootstrap_drops_and_counts_undefined_resamples():
    # a statistic that is undefined (NaN) when a resample holds too few distinct values
    x = np.array([0.0, 0.0, 1.0, 1.0])
    stat = lambda d: d["x"][0].mean() if len(set(d["x"][0])) > 1 else float("nan")  # noqa: E731
    est = claims.bootstrap(stat, {"x": (x,)}, n_boot=400)
    assert math.isfinite(est.lo) and math.isfinite(est.hi) and est.lo < 0.5 < est.hi
    assert "undefined resamples dropped" in est.method  # all-equal resamples: 1/8 of 400 expected
    with pytest.raises(ValueError, match="defined on most resamples"):
        claims.bootstrap(lambda d: float("nan") if d["x"][0][0] >= 0 else 1.0, {"x": (x,)}, n_boot=50)


def test_a_claim_names_the_statement_it_tests(tmp_path, monkeypatch):
    monkeypatch.setenv("OODLIB_CLAIMS", str(tmp_path))
    est = Estimate(0.1, 0.05, 0.2, method="boot")
    linked = Claim("bound is sound", "Paper, Theorem 3.1", "x", est, 0.0, tests="hein-thm-3-1")
    plain = Claim("a beats b", "Paper, Table 1", "x", est, 0.0)
    assert linked.as_row()["tests"] == "hein-thm-3-1" and plain.as_row()["tests"] == "—"
    assert "tests" in claims.table([plain, linked]).columns and "tests" not in claims.table([plain]).columns
    claims.record("01_relu", [plain, linked], "ci", 0)
    assert [c for _, c in claims.load("ci", 0)] == [plain, linked]
    assert list(claims.verdict_table("ci", 0)["tests"]) == ["—", "hein-thm-3-1"]
    for bad in ("Theorem 3.1", "thm_3", 3):
        with pytest.raises(ValueError, match="statement label"):
            Claim("s", "p", "q", est, 0.0, tests=bad)
