"""Chapter 07: every method of the book under every threat model, one table.

No seed paper compares all of these methods under the same threat models; this
module assembles the comparison from pieces the chapters already use, so the
numbers agree with theirs:

* :func:`zoo_entries` — the trained models, exactly the configurations chapters
  02 (plain, CEDA, OE, ACET), 04 (CCU), 05 (GOOD_Q) and 06 (NTOM, ATOM with the q
  chosen on the validation split) train, loaded from (or trained into) the zoo;
* :func:`make_detectors` — each method as an :class:`oodlib.detectors.Detector`:
  MSP, ODIN, energy and Mahalanobis on the plain model (ODIN and Mahalanobis tuned
  on the validation split as in chapter 06), MSP for CEDA/OE/ACET, CCU's confidence
  with its Corollary 3.1 certificate, GOOD_Q's MSP with its IBP certificate, and
  the (K+1)-class score of NTOM/ATOM;
* :func:`run` — :func:`oodlib.evaluate.threat_table` over all detectors and
  :data:`oodlib.evaluate.THREATS` with chapter 06's attack (ATOM App. B.4), plus the
  same L∞ threat under a deliberately weak attack, cached in the zoo;
* :func:`summary` — Table-1 layout (mean over OOD sets) with test error, training
  and evaluation wall time from the zoo's records; :func:`ranks` — the ranking per
  threat model.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from . import data, detectors, evaluate, ibp, mahalanobis, mining, zoo
from .profiles import Profile

METRICS = ("FPR95", "AUROC", "AUROC_cons")
VERSION = 2  # enters the cache key: bump when the evaluation code changes numbers
SUBSET = "natural (attacked images)"  # the natural threat on the images the attacks start from
ORDER = ("natural", "corruption", "linf (weak)", "linf", "linf (strong)", "compositional", "certified")


@dataclass
class Setup:
    """What the benchmark evaluates on: in-distribution test images, OOD sets, validation split."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_eval_in: torch.Tensor  # first 5 000 test images (as chapter 06)
    x_val_in: torch.Tensor  # last 1 000 test images: tuning only
    ood: dict[str, data.OODSet]
    val_ood: torch.Tensor  # 1 000 held-out auxiliary-pool images: tuning only


def setup(profile: Profile) -> Setup:
    """The data split chapter 06 uses: evaluation, tuning and OOD images."""
    x_train, y_train, x_test, _ = data.in_distribution(profile)
    n_eval = min(5000, len(x_test) - 1000)
    if n_eval <= 0:
        raise ValueError(f"expected more than 1000 test images, the profile has {len(x_test)}")
    pool_val = mining.validation_split(data.aux_pool_for(profile), profile.atom_holdout)[1]
    ood = data.ood_sets(profile, in_train_x=x_train)
    return Setup(x_train, y_train, x_test[:n_eval], x_test[-1000:], ood, pool_val[:1000])


def _configs(profile: Profile) -> list[tuple[str, str, Profile, dict[str, object]]]:
    """(name, method, profile, hyper-parameters) of every model the benchmark needs, except
    NTOM/ATOM (their q is chosen on the validation split); the q-ablation models come first."""
    abl = mining.ablation_profile(profile)
    out: list[tuple[str, str, Profile, dict[str, object]]] = [("ATOM (rand. sample)", "atom", abl,
                                                               {"sampling": "random"})]
    out += [(f"ATOM (q={q})", "atom", abl, {"q": q}) for q in profile.atom_q_grid]
    out += [(name, method, profile, {}) for name, method in
            [("plain", "plain"), ("CEDA", "ceda"), ("OE", "oe"), ("ACET", "acet"), ("CCU", "ccu")]]
    out += [(ibp.quantile_name(q / 100), "good", profile, {"arch": profile.ibp_model, "quantile": q / 100})
            for q in profile.bench_good_quantiles]
    return out


def missing(profile: Profile) -> list[str]:
    """Names of the models :func:`zoo_entries` would have to train (not in the zoo yet)."""
    out = []
    for name, method, prof, hp in _configs(profile):
        if not zoo.checkpoint_path(method, "fashion_mnist", prof, **hp).exists():
            out.append(name)
    return out


def zoo_entries(profile: Profile) -> dict[str, zoo.Entry]:
    """Method name -> zoo entry, the configurations the chapters train (so nothing new is trained
    when chapters 02-06 ran first); NTOM and ATOM use :func:`oodlib.mining.validated_q`."""
    out = {name: zoo.load_or_train(method, profile=prof, **hp)
           for name, method, prof, hp in _configs(profile) if prof is profile}
    q_star = mining.validated_q(profile)
    out["NTOM"] = zoo.load_or_train("ntom", profile=profile, q=q_star)
    out["ATOM"] = zoo.load_or_train("atom", profile=profile, q=q_star)
    return out


def make_detectors(entries: dict[str, zoo.Entry], s: Setup, profile: Profile) -> list[detectors.Detector]:
    """One detector per method (see the module docstring); tuned parameters are in ``Detector.extra``."""
    plain = entries["plain"].model
    odin_pick = detectors.tune_odin(plain, s.x_val_in, s.val_ood, profile)
    head = mahalanobis.fit(plain, s.x_train, s.y_train)
    maha_eps = detectors.tune_mahalanobis(head, s.x_val_in, s.val_ood)
    dets = [
        detectors.msp_detector("MSP", plain, note="plain"),
        detectors.odin_detector("ODIN", plain, odin_pick.temperature, odin_pick.eps, note="plain"),
        detectors.energy_detector("energy", plain, note="plain"),
        detectors.mahalanobis_detector("Mahalanobis", head, maha_eps, note="plain"),
    ]
    for name, e in entries.items():
        if name in ("CEDA", "OE", "ACET"):
            dets.append(detectors.msp_detector(name, e.model))
        elif name == "CCU":
            dets.append(detectors.ccu_detector(name, e.model))
        elif name.startswith("GOOD_"):
            dets.append(detectors.good_detector(name, e.model))
        elif name in ("NTOM", "ATOM"):
            dets.append(detectors.k1_detector(name, e.model))
    return dets


def entry_of(detector: detectors.Detector, entries: dict[str, zoo.Entry]) -> zoo.Entry:
    """The zoo entry behind a detector (the plain model for the post-hoc scores)."""
    return entries["plain"] if detector.note == "plain" else entries[detector.name]


def run(
    dets: list[detectors.Detector],
    entries: dict[str, zoo.Entry],
    s: Setup,
    profile: Profile,
    desc: str | None = "benchmark",
) -> pd.DataFrame:
    """The long benchmark table (every detector × OOD set × threat × metric), cached in the zoo.

    Threats: :data:`oodlib.evaluate.THREATS` with chapter 06's attack
    (:meth:`AttackSettings.from_profile`, ``profile.atom_attack_size`` images per set),
    ``"linf (weak)"``: the same ball under ``profile.bench_weak_steps`` PGD steps of ε/2, and
    ``"linf (strong)"``: ``bench_strong_steps`` steps with ``bench_strong_restarts`` restarts,
    and :data:`SUBSET`: the clean images those attacks start from (not in :data:`ORDER`).
    ``attrs["seconds"]`` holds each detector's evaluation wall time (all three runs).
    """
    attack = evaluate.AttackSettings.from_profile(profile)
    weak = attack.weak(profile.bench_weak_steps)
    strong = evaluate.AttackSettings(attack.eps, profile.bench_strong_steps, attack.step_size,
                                     profile.bench_strong_restarts)
    ood_x = {k: v.x for k, v in s.ood.items()}
    stand_in = {k: v.stand_in_for for k, v in s.ood.items()}
    base = {"detectors": {d.name: [entry_of(d, entries).weights_hash, d.note, d.extra] for d in dets},
            "sets": {k: len(v) for k, v in ood_x.items()}, "n_in": len(s.x_eval_in), "seed": profile.seed,
            "size": profile.atom_attack_size, "profile": profile.name, "metrics": list(METRICS),
            "version": VERSION}

    def table(threats: tuple[str, ...], att: evaluate.AttackSettings, label: str | None = None
              ) -> pd.DataFrame:
        def compute() -> pd.DataFrame:
            t = evaluate.threat_table(dets, s.x_eval_in, ood_x, threats=threats,
                                      attack_size=profile.atom_attack_size, attack=att, stand_in=stand_in,
                                      seed=profile.seed, desc=desc, metrics_=METRICS)
            if label:
                t["threat"] = label
            return t

        key = base | {"threats": list(threats), "attack": evaluate.attack_key(att), "label": label}
        return evaluate.cached_table("benchmark", key, compute)

    parts = [table(evaluate.THREATS, attack), table(("linf",), weak, "linf (weak)"),
             table(("linf",), strong, "linf (strong)")]
    # the clean images the attacks start from: the like-for-like baseline of AAUC and GAUC
    subset = {k: v[: profile.atom_attack_size] for k, v in ood_x.items()}
    parts.append(evaluate.cached_table("benchmark", base | {"subset": True}, lambda: evaluate.threat_table(
        dets, s.x_eval_in, subset, threats=("natural",), attack_size=profile.atom_attack_size,
        stand_in=stand_in, seed=profile.seed, desc=None, metrics_=METRICS).assign(threat=SUBSET)))
    out = pd.concat(parts, ignore_index=True)
    out.attrs["seconds"] = {d.name: sum(p.attrs["seconds"].get(d.name, 0.0) for p in parts) for d in dets}
    out.attrs["attacks"] = {"linf": attack, "linf (weak)": weak, "linf (strong)": strong}
    return out


def summary(table: pd.DataFrame, dets: list[detectors.Detector], entries: dict[str, zoo.Entry],
            percent: bool = True) -> pd.DataFrame:
    """One row per detector: (threat, metric) means over the OOD sets, test error, wall times."""
    t = table.groupby(["model", "threat", "metric"], sort=False)["value"].mean().unstack(["threat", "metric"])
    cols = [(th, m) for th in ORDER for m in METRICS if (th, m) in t.columns]
    t = t[cols] * (100 if percent else 1)
    t = t.reindex([d.name for d in dets])
    scale = 100 if percent else 1
    t[("test error", "")] = [scale * entry_of(d, entries).record["test_error"] for d in dets]
    t[("train time (s)", "")] = [entry_of(d, entries).record["train_time_s"] for d in dets]
    t[("eval time (s)", "")] = [table.attrs.get("seconds", {}).get(d.name, float("nan")) for d in dets]
    return t


def ranks(summary_: pd.DataFrame, metric: str = "AUROC_cons") -> pd.DataFrame:
    """Rank of each detector per threat (1 = best) by the mean of ``metric`` over the OOD sets.

    Higher is better for AUROC-type metrics, lower for FPR95; detectors without a value
    (no certificate) are left unranked. Ties share the better rank.
    """
    cols = [c for c in summary_.columns if c[1] == metric]
    if not cols:
        found = sorted({c[1] for c in summary_.columns})
        raise ValueError(f"expected columns with metric {metric!r}, got {found}")
    vals = summary_[cols]
    vals.columns = [c[0] for c in cols]
    return vals.rank(ascending=(metric == "FPR95"), method="min").astype("Int64")
