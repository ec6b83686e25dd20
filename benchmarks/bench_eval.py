"""Speed benchmark: what chapter 07's full evaluation costs, per model and per threat.

The benchmark puts every detector under seven threat models (natural, corruption,
L∞ under a weak, chapter 06's and a strong attack, compositional, certified). This script times
:func:`oodlib.evaluate.threat_table` for one detector and one threat at a time,
with the profile's sizes (``atom.attack_size`` attacked images per OOD set,
chapter 06's attack), so you can see where the time goes and what a `full` run
will cost. Scoring the in-distribution images is timed once (column ``in-dist``)
and subtracted from each threat; the corruption threats each include picking the
worst corruption (the benchmark shares that pick between them). The corruption
stacks are built once (timed separately) and shared, as in the benchmark.

Models come from the zoo (``$OODLIB_CACHE``): run the chapters or
``python -m oodlib export benchmark.md`` first; a missing model is trained,
which takes minutes. Run ``python benchmarks/bench_eval.py [--only ATOM,CCU]
[--out results.csv]``. A benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from oodlib import benchmark, corruptions, evaluate, profiles


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated detector names (default: all)")
    p.add_argument("--out", default="", help="also write the table as .csv")
    args = p.parse_args()
    profile = profiles.current()
    entries = benchmark.zoo_entries(profile)
    s = benchmark.setup(profile)
    dets = benchmark.make_detectors(entries, s, profile)
    if args.only:
        keep = set(args.only.split(","))
        unknown = keep - {d.name for d in dets}
        if unknown:
            p.error(f"unknown detector(s) {sorted(unknown)}; expected some of {[d.name for d in dets]}")
        dets = [d for d in dets if d.name in keep]
    attack = evaluate.AttackSettings.from_profile(profile)
    weak = attack.weak(profile.bench.weak_steps)
    strong = evaluate.AttackSettings(attack.eps, profile.bench.strong_steps, attack.step_size,
                                     profile.bench.strong_restarts)
    ood = {k: v.x for k, v in s.ood.items()}
    t0 = time.perf_counter()
    n = profile.atom.attack_size
    stacks = {k: corruptions.corrupt_all(v[:n], seed=profile.seed) for k, v in ood.items()}
    t_stacks = time.perf_counter() - t0
    print(f"profile {profile.name}: {len(ood)} OOD sets, {profile.atom.attack_size} attacked images per set, "
          f"{len(s.x_eval_in)} in-distribution images; corruption stacks built once in {t_stacks:.1f} s")
    rows = []
    for det in dets:
        n_params = sum(p.numel() for p in det.model.parameters())
        row: dict[str, object] = {"detector": det.name, "params": n_params}
        threats = [(t, attack) for t in evaluate.THREATS if t != "certified" or det.certify is not None]
        threats += [("linf (weak)", weak), ("linf (strong)", strong)]
        t0 = time.perf_counter()
        det.score(s.x_eval_in)  # every threat_table call scores the in-distribution once
        row["in-dist"] = t_in = time.perf_counter() - t0
        for threat, att in threats:
            t0 = time.perf_counter()
            evaluate.threat_table([det], s.x_eval_in, ood, threats=(threat.split(" ")[0],),
                                  attack_size=profile.atom.attack_size, attack=att, seed=profile.seed,
                                  stacks=stacks, desc=None, metrics_=benchmark.METRICS)
            row[threat] = max(time.perf_counter() - t0 - t_in, 0.0)  # the threat's own cost
        row["total (s)"] = sum(v for k, v in row.items() if k not in ("detector", "params"))
        rows.append(row)
        print(f"{det.name:12s} {row['total (s)']:7.1f} s", flush=True)
    df = pd.DataFrame(rows).set_index("detector")
    df = df[["params", "in-dist", *[t for t in benchmark.ORDER if t in df.columns], "total (s)"]]
    print(df.round(2).to_string())
    print(f"all detectors: {df['total (s)'].sum():.0f} s (+ {t_stacks:.0f} s corruption stacks)")
    if args.out:
        df.to_csv(args.out)


if __name__ == "__main__":
    main()
