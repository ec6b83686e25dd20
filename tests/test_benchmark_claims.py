"""chapter 07's claims (oodlib.benchmark.claims_of) on a small synthetic table with known answers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from oodlib import benchmark, claims, evaluate, models, profiles

SETS = {"uniform noise": None, "sklearn digits": "MNIST"}


def _fake(unsound: bool = False):
    rng = np.random.default_rng(0)
    names = ["MSP", "CCU", "GOOD_100", "ATOM"]
    certify = {"CCU", "GOOD_100"}
    scores, rows = evaluate.Scores(), []
    for d in names:
        scores[f"{d}|in"] = rng.normal(1.0, 0.3, 300)
        for o in SETS:
            clean = rng.normal(-1.0, 0.3, 40)
            loss = 1.5 if d == "MSP" else 0.2  # the post-hoc score loses much more under attack
            att = clean + loss
            per = {"natural (attacked images)": clean, "linf": att, "linf (strong)": att + 0.001,
                   "linf (weak)": att - 0.001, "compositional": att + (0.0 if d == "ATOM" else 1.0)}
            if d in certify:
                vacuous = d == "CCU" and o == "sklearn digits"  # CCU certifies nothing near the data
                cert = np.full(40, 5.0) if vacuous else att + 0.05
                per["certified"] = att - 0.01 if unsound else cert
            for t, v in per.items():
                scores[f"{d}|{t}|{o}"] = v
                rows.append({"model": d, "ood_set": o, "stand_in_for": SETS[o], "threat": t,
                             "metric": "AUROC",
                             "value": 0.0})
    table = pd.DataFrame(rows)
    table.attrs["scores"] = scores
    dets = [SimpleNamespace(name=n, certify=(object() if n in certify else None), note="") for n in names]
    net = models.build("small_cnn", num_classes=10, seed=0, width=4).eval()
    entries = {n: SimpleNamespace(model=net) for n in ["plain", *names]}
    x = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return table, dets, entries, x, torch.randint(0, 10, (50,), generator=torch.Generator().manual_seed(2))


def _verdicts(cs: list[claims.Claim]) -> dict[str, str]:
    return {c.statement: c.verdict for c in cs}


def test_benchmark_claims_decide_known_cases(monkeypatch):
    monkeypatch.setattr(benchmark, "N_BOOT", 50)
    table, dets, entries, x, y = _fake()
    cs = benchmark.claims_of(table, dets, entries, profiles.CI, {"06": (10, 0.0)}, x, y)
    v = _verdicts(cs)
    assert v["certificates are sound: no attacked image scores above its bound"] == claims.HOLDS
    lose = next(c for c in cs if c.statement.startswith("every post-hoc score"))
    assert lose.verdict == claims.HOLDS and lose.estimate.lo > 0.05
    assert v["... but not around digits or letters"] == claims.HOLDS  # the vacuous CCU bound on digits
    assert v["ATOM has the highest conservative AUC under the compositional threat"] == claims.HOLDS
    assert v["chapter 06's table and this benchmark agree (same functions)"] == claims.HOLDS
    # the synthetic table contradicts no expectation (the accuracy claims use one random net for all)
    claims.check([c for c in cs if "test error" not in c.quantity])


def test_an_unsound_certificate_is_caught(monkeypatch):
    monkeypatch.setattr(benchmark, "N_BOOT", 50)
    table, dets, entries, x, y = _fake(unsound=True)
    cs = benchmark.claims_of(table, dets, entries, profiles.CI, {}, x, y)
    sound = next(c for c in cs if c.statement.startswith("certificates are sound"))
    assert sound.verdict == claims.FAILS
    with pytest.raises(AssertionError, match="certificates are sound"):
        claims.check(cs)


def test_benchmark_claims_need_the_scores():
    table, dets, entries, x, y = _fake()
    table.attrs.pop("scores")
    with pytest.raises(ValueError, match="scores"):
        benchmark.claims_of(table, dets, entries, profiles.CI, {}, x, y)
