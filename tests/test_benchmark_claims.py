"""chapter 07's claims (oodlib.benchmark.claims_of) on a small synthetic table with known answers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from oodlib import atom, benchmark, claims, evaluate, models, profiles, zoo

SETS = {"uniform noise": None, "MNIST": None}


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
                vacuous = d == "CCU" and o == "MNIST"  # CCU certifies nothing near the data
                cert = np.full(40, 5.0) if vacuous else att + 0.05
                per["certified"] = att - 0.01 if unsound else cert
            for t, v in per.items():
                scores[f"{d}|{t}|{o}"] = v
                rows.append({"model": d, "ood_set": o, "stand_in_for": SETS[o], "threat": t,
                             "metric": "AUROC",
                             "value": 0.0})
    table = pd.DataFrame(rows)
    table.attrs["scores"] = scores
    source = {"MSP": "plain"}  # the post-hoc score of the plain model
    dets = [SimpleNamespace(name=n, certify=(object() if n in certify else None), note="",
                            source=source.get(n, n)) for n in names]
    net = models.build("small_cnn", num_classes=10, seed=0, width=4).eval()
    method = {"plain": "plain", "CCU": "ccu", "GOOD_100": "good", "ATOM": "atom"}
    entries = {n: SimpleNamespace(model=net, record={"config": {"method": method[n]}}) for n in method}
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
    key = "ATOM has the highest conservative AUC under the compositional threat (ATOM Table 1's detectors)"
    assert v[key] == claims.HOLDS
    beyond = next(c for c in cs if c.statement.startswith("... and above the detectors"))
    assert beyond.expected is None and "GOOD_100" in beyond.quantity
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


def _cnn(k: int = 10) -> torch.nn.Module:
    return models.build("small_cnn", num_classes=k, seed=0, width=4).eval()


def test_make_detectors_maps_each_zoo_method_to_its_detector():
    # a tiny fake zoo: the benchmark picks detectors by training method, not by display name
    g = torch.Generator().manual_seed(0)
    ccu_model = zoo.make_method("ccu").wrap(models.build("mlp", hidden=8))
    method = {"plain": "plain", "CEDA": "ceda", "OE": "oe", "ACET": "acet", "CCU": "ccu", "GOOD_100": "good",
              "NTOM": "ntom", "ATOM": "atom"}
    nets = {"CCU": ccu_model, "NTOM": _cnn(11), "ATOM": _cnn(11)}
    entries = {n: SimpleNamespace(model=nets.get(n) or _cnn(), record={"config": {"method": m}})
               for n, m in method.items()}
    x = torch.rand(60, 1, 28, 28, generator=g)
    y = torch.arange(60) % 10
    s = benchmark.Setup(x, y, x[:20], x[20:40], {}, torch.rand(20, 1, 28, 28, generator=g) * 0.3)
    dets = benchmark.make_detectors(entries, s, profiles.CI.replace(odin={"num_eps": 2}))
    kind = {d.name: d for d in dets}
    assert list(kind) == ["MSP", "ODIN", "energy", "Mahalanobis", "CEDA", "OE", "ACET", "CCU", "GOOD_100",
                          "NTOM", "ATOM"]
    assert {d.name for d in dets if d.source == "plain"} == {"MSP", "ODIN", "energy", "Mahalanobis"}
    assert all(benchmark.entry_of(d, entries) is entries[d.source] for d in dets)
    assert {d.name for d in dets if d.certify is not None} == {"CCU", "GOOD_100"}
    assert kind["CCU"].confidence_model is ccu_model and kind["ODIN"].confidence_model is None
    assert set(kind["ODIN"].extra) == {"temperature", "eps"} and set(kind["Mahalanobis"].extra) == {"eps"}
    z = torch.rand(3, 1, 28, 28, generator=g)
    assert torch.allclose(kind["ATOM"].score(z), atom.ood_score(entries["ATOM"].model, z))


def test_accuracy_costs_beside_the_papers():
    entries = {name: SimpleNamespace(record={"test_error": err})
               for name, err in (("plain", 0.09), ("CEDA", 0.1), ("CCU", 0.0905), ("energy?", 0.2))}
    t = benchmark.accuracy_costs(entries)
    assert t.loc["CEDA", "cost (points) ours"] == pytest.approx(1.0)
    assert t.loc["CEDA", "cost (points) paper"] == 0.23
    assert t.loc["CEDA", "within paper's cost (+0.5)"] == "no"
    assert t.loc["CCU", "within paper's cost (+0.5)"] == "yes"
    assert t.loc["plain", "within paper's cost (+0.5)"] == "—" and t.loc["energy?", "paper source"] == "—"
    with pytest.raises(ValueError, match="base model"):
        benchmark.accuracy_costs(entries, base="MSP")
