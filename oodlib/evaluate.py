"""Tidy result tables: one evaluation produces every number the chapters print.

Tables are long-format pandas DataFrames (one row per model × OOD set × threat model ×
metric), so chapter tables and the benchmark of chapter 07 come from the same code and agree:

* :func:`threat_table` — the one entry point — puts a list of
  :class:`oodlib.detectors.Detector` under threat models: natural, corruption, L∞ and
  compositional (Chen et al. 2021 §5.1; :data:`ATOM_THREATS`), APGD's worst confidence
  (GOOD's AAUC) and certified (a guaranteed upper bound on the score in the L∞ ball, GOOD
  eq. 6 / CCU Corollary 3.1; :data:`GOOD_THREATS`). Chapters 02, 05, 06 and 07 call it;
  :func:`ood_table` is its natural threat for max-softmax models (chapters 00, 04);
* :func:`ood_rows` turns a detector's in-distribution and OOD scores into rows —
  every metric in every chapter passes through it;
* :func:`cached_table` stores a finished table in the zoo, keyed by the models'
  hashes and the settings, so re-running a chapter does not re-run its attacks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import attacks, beside, corruptions, metrics
from .apgd import max_confidence_attack
from .data import OODSet, label
from .detectors import Detector, msp_detector
from .profiles import Profile
from .runtime import atomic_write, cache_dir, derive_seed, numerics, progress, stable_hash, torch_generator
from .validation import check_choice, check_images, check_number, check_positive_int, describe

VERSION = 2  #: enters every cached_table key: bump when the evaluation code changes numbers
ATOM_THREATS = ("natural", "corruption", "linf", "compositional")  #: Chen et al. 2021, §5.1
THREATS = (*ATOM_THREATS, "certified")  #: the benchmark's (chapter 07)
GOOD_THREATS = ("natural", "apgd", "certified")  #: Bitterwolf et al. 2020, Table 1: AUC, AAUC, GAUC
#: the AUC each threat's column reports: clean (AUC), adversarial (AAUC) or guaranteed (GAUC)
AUC_NAMES = {"natural": "AUC", "corruption": "AUC", "linf": "AAUC", "compositional": "AAUC", "apgd": "AAUC",
             "certified": "GAUC"}  # what GOOD calls the conservative AUROC under each threat


def ood_rows(
    model_name: str,
    s_in: torch.Tensor | np.ndarray,
    s_out: Mapping[str, torch.Tensor | np.ndarray],
    *,
    threat: str = "clean",
    stand_in: Mapping[str, str | None] | None = None,
    confidences_out: Mapping[str, torch.Tensor | np.ndarray] | None = None,
) -> list[dict]:
    """Rows ``(model, ood_set, stand_in_for, threat, metric, value)`` for one model.

    ``s_in``/``s_out`` are detector scores (higher = in-distribution). Metrics are
    those of :func:`oodlib.metrics.ood_metrics` plus the MMC on each OOD set when
    ``confidences_out`` (max softmax) is given (Hein et al. 2019, Table 1).
    """
    rows = []
    for name, so in s_out.items():
        vals = metrics.ood_metrics(s_in, so)
        if confidences_out is not None and name in confidences_out:
            vals["MMC"] = metrics.mmc(confidences_out[name])
        for metric, value in vals.items():
            rows.append({
                "model": model_name, "ood_set": name,
                "stand_in_for": (stand_in or {}).get(name), "threat": threat,
                "metric": metric, "value": float(value),
            })
    return rows


def ood_table(models: Mapping[str, torch.nn.Module], x_in: torch.Tensor, ood_sets: Mapping[str, OODSet]
              ) -> pd.DataFrame:
    """Each model's max-softmax score on ``x_in`` vs every OOD set: :func:`threat_table`'s natural
    threat with every metric and the MMC, plus the in-distribution MMC as an extra row per model
    (``ood_set='(in-distribution)'``, metric ``MMC``; Hein et al. 2019, Table 1)."""
    metrics_ = (*metrics.ood_metrics([1.0, 0.0], [0.5]), "MMC")
    stand_in = {k: s.stand_in_for for k, s in ood_sets.items()}
    rows: list[dict] = []
    for name, model in models.items():
        t = threat_table([msp_detector(name, model)], x_in, {k: s.x for k, s in ood_sets.items()},
                         threats=("natural",), stand_in=stand_in, desc=None, metrics_=metrics_)
        rows.append({"model": name, "ood_set": "(in-distribution)", "stand_in_for": None, "threat": "natural",
                     "metric": "MMC", "value": metrics.mmc(scores_of(t, name))})
        rows += t.to_dict("records")
    return pd.DataFrame(rows)


def wide(table: pd.DataFrame, metrics_: list[str] | None = None) -> pd.DataFrame:
    """Pivot a long table to one row per (model, OOD set) and one column per metric."""
    t = table if metrics_ is None else table[table.metric.isin(metrics_)]
    t = t.assign(ood_set=[label(n, s) for n, s in zip(t.ood_set, t.stand_in_for, strict=True)])
    out = t.pivot_table(index=["model", "ood_set"], columns="metric", values="value", sort=False)
    out.columns.name = None
    return out


def paper_vs_ours(rows: list[tuple[str, str, float | None, float]]) -> pd.DataFrame:
    """A comparison table from ``(quantity, setting, paper value, our value)`` tuples.

    ``setting`` says how the two differ (e.g. "paper: MNIST, LeNet, 100 epochs;
    ours: Fashion-MNIST, small CNN, ci"). Numbers show 4 significant digits, a missing paper value
    :data:`oodlib.beside.MISSING` (the layout is :func:`oodlib.beside.table`'s).
    """
    bad = [r for r in rows if not (isinstance(r, tuple) and len(r) == 4)]
    if bad:
        raise ValueError(f"expected (quantity, setting, paper, ours) tuples, got {describe(bad[0])}")

    def fmt(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float | int | np.floating) else str(v)

    return beside.table([{"quantity": q, "setting": s, "": beside.Pair(p, o)} for q, s, p, o in rows],
                        fmt=fmt)


# --------------------------------------------------------------------------- threat models (ch. 06, 07)


@dataclass(frozen=True)
class AttackSettings:
    """ℓ∞ radius and PGD budget of the L∞, compositional and certified threats.

    Defaults are ATOM's App. B.4 (ε = 8/255, 40 steps of 1/255, random start, 1 restart);
    :meth:`from_profile` gives chapters 06 and 07's settings, :meth:`weak` a cheap attack at
    the same radius (to show how weak attacks overestimate robustness).
    """

    eps: float = 8 / 255
    steps: int = 40
    step_size: float = 1 / 255
    restarts: int = 1
    severities: tuple[int, ...] = corruptions.SEVERITIES  # of the corruption / compositional threats

    def __post_init__(self) -> None:
        if not self.severities or any(s not in corruptions.SEVERITIES for s in self.severities):
            raise ValueError(f"expected severities from {corruptions.SEVERITIES}, got {self.severities!r}")
        check_number(self.eps, "eps", low=0, low_open=True, high=1)
        check_positive_int(self.steps, "steps")
        check_positive_int(self.restarts, "restarts")
        check_number(self.step_size, "step_size", low=0, low_open=True, high=1)

    @classmethod
    def from_profile(cls, profile: Profile) -> AttackSettings:
        """Chapter 06 (ATOM's evaluation attack)."""
        a = profile.atom
        return cls(a.eval_eps, a.eval_steps, a.eval_step_size, a.eval_restarts,
                   tuple(a.corruption_severities))

    @classmethod
    def good(cls, profile: Profile) -> AttackSettings:
        """Chapter 05 (GOOD's Table 1): the ``apgd`` threat's radius, APGD steps per start and extra
        uniform starts; ``step_size`` is unused (APGD adapts its own) and set to ε."""
        g = profile.good
        return cls(g.eps, g.attack_steps, g.eps, g.attack_restarts)

    def weak(self, steps: int) -> AttackSettings:
        """The same radius with a weak budget: ``steps`` PGD steps of ε/2, one start (chapter 07)."""
        return AttackSettings(self.eps, steps, self.eps / 2, 1, self.severities)


def threat_images(
    detector: Detector,
    x: torch.Tensor,
    threat: str,
    stack: corruptions.CorruptedStack | None = None,
    attack: AttackSettings | None = None,
    generator: torch.Generator | None = None,
    worst: torch.Tensor | None = None,
) -> torch.Tensor:
    """The OOD inputs of one attack threat model (Chen et al. 2021, §5.1) built from clean OOD images ``x``.

    ``natural``: ``x``. ``corruption``: per image, the corrupted version (from ``stack``,
    see :func:`oodlib.corruptions.corrupt_all`) with the highest score (black box).
    ``linf``: PGD on the detector's objective in the ε-ball around ``x``. ``compositional``:
    the worst corruption, then PGD around it. ``worst`` may pass the detector's worst
    corruptions of ``x`` if already computed (then ``stack`` is not needed). The
    ``certified`` threat has no images (it is a bound): see :func:`threat_table`.
    """
    check_choice(threat, ATOM_THREATS, "threat")
    check_images(x)
    attack = attack or AttackSettings()
    if threat == "natural":
        return x
    if threat in ("corruption", "compositional"):
        if worst is None:
            if stack is None or stack.images.shape[1:] != x.shape:
                raise ValueError("expected stack = oodlib.corruptions.corrupt_all(x) for corruption threats")
            worst = stack.worst(detector.score).images
        elif worst.shape != x.shape:
            raise ValueError(f"expected worst of shape {tuple(x.shape)}, got {describe(worst)}")
        x = worst
        if threat == "corruption":
            return x
    return attacks.pgd(detector.model, x, detector.objective, eps=attack.eps, steps=attack.steps,
                       step_size=attack.step_size, restarts=attack.restarts, random_start=True,
                       generator=generator).cpu()


def threat_table(
    detectors: Sequence[Detector],
    x_in: torch.Tensor,
    ood: Mapping[str, torch.Tensor],
    threats: Sequence[str] = ATOM_THREATS,
    attack_size: int = 100,
    attack: AttackSettings | None = None,
    stand_in: Mapping[str, str | None] | None = None,
    seed: int = 0,
    stacks: Mapping[str, corruptions.CorruptedStack] | None = None,
    desc: str | None = "threats",
    metrics_: Sequence[str] = ("FPR95", "AUROC"),
) -> pd.DataFrame:
    """Each detector under each threat model: the long table of :func:`ood_rows`.

    In-distribution scores are clean (``x_in``); natural OOD uses every image of each set,
    the other threats its first ``attack_size`` images (corruption stacks are computed once
    and shared by all detectors unless given). ``certified`` scores each OOD image by the
    detector's certificate — an upper bound on its score anywhere in the ℓ∞ ball of radius
    ``attack.eps`` — and is skipped for detectors without one. ``apgd`` (GOOD's AAUC, Bitterwolf
    et al. 2020 §5) scores each OOD image by the highest confidence APGD finds in its ball
    (:func:`oodlib.apgd.max_confidence_attack`: clean, low-contrast and ``attack.restarts`` uniform
    starts of ``attack.steps`` steps, the clean point included) on the detector's
    ``confidence_model`` — the network whose max softmax is the score (MSP, GOOD, CCU) — and is
    skipped for the others; with :data:`GOOD_THREATS` this is chapter 05's Table 1. ``metrics_`` picks keys of
    :func:`oodlib.metrics.ood_metrics` (``FPR95`` = FPR at 95 % TPR = the paper's FPR at 5 %
    FNR; ``AUROC_cons`` = GOOD's conservative AUC, see :data:`AUC_NAMES`), or ``MMC`` (the mean
    OOD score, Hein et al. 2019's mean maximal confidence; only for detectors whose score is a
    confidence, i.e. with a ``confidence_model``).

    Each (detector, threat, set) draws its PGD random starts from its own seed (derived from
    ``seed`` and the three names), so a detector's rows are the same whichever other
    detectors share the table: chapter 06's Table 1 and chapter 07's benchmark agree.
    The table's ``attrs["seconds"]`` holds each detector's evaluation wall time and
    ``attrs["scores"]`` every score behind it (float64 arrays keyed ``"detector|in"`` and
    ``"detector|threat|set"``) — what :mod:`oodlib.claims` bootstraps.
    """
    for t in threats:
        check_choice(t, (*THREATS, "apgd"), "threat")
    check_positive_int(attack_size, "attack_size")
    if not detectors or not all(isinstance(d, Detector) for d in detectors):
        raise ValueError("expected a non-empty list of oodlib.detectors.Detector")
    names = [d.name for d in detectors]
    if len(set(names)) != len(names):
        raise ValueError(f"expected unique detector names (they label the rows), got {names}")
    check_images(x_in, "x_in")
    if not ood:
        raise ValueError("expected at least one OOD set")
    for k, v in ood.items():
        check_images(v, f"ood[{k!r}]")
    known = {*metrics.ood_metrics([1.0, 0.0], [0.5]), "MMC"}
    for m in metrics_:
        check_choice(m, sorted(known), "metric")
    attack = attack or AttackSettings()
    subsets = {k: v[:attack_size] for k, v in ood.items()}
    stacks = dict(stacks or {})
    if any(t in ("corruption", "compositional") for t in threats):
        for k, v in subsets.items():
            if k not in stacks:
                stacks[k] = corruptions.corrupt_all(v, severities=attack.severities, seed=seed)
    rows: list[dict] = []
    seconds: dict[str, float] = {}
    scores = Scores()
    jobs = [(d, t) for d in detectors for t in threats if (t != "certified" or d.certify is not None)
            and (t != "apgd" or d.confidence_model is not None)]
    s_in_of: dict[int, torch.Tensor] = {}
    worst_of: dict[tuple[int, str], torch.Tensor] = {}  # shared by the corruption and compositional threats
    for det, threat in progress(jobs, desc=desc, disable=desc is None):
        t0 = time.perf_counter()
        if id(det) not in s_in_of:
            s_in_of[id(det)] = det.score(x_in)
        s_in = s_in_of[id(det)]
        s_out = {}
        for k, v in (ood.items() if threat == "natural" else subsets.items()):
            # one random stream per (detector, threat, set): a row does not depend on the other rows
            gen = torch_generator(derive_seed(seed, f"{det.name}|{threat}|{k}"))
            if threat == "certified":
                s_out[k] = det.certify(v, attack.eps)
                continue
            if threat == "apgd":  # the worst point APGD finds, the clean point included (GOOD §5)
                res = max_confidence_attack(det.confidence_model, v, attack.eps, steps=attack.steps,
                                            restarts=attack.restarts, generator=gen)
                s_out[k] = det.score(res.x_adv)  # scored like every other image: ties compare like with like
                continue
            worst = None
            if threat in ("corruption", "compositional"):
                if (id(det), k) not in worst_of:
                    worst_of[(id(det), k)] = stacks[k].worst(det.score).images
                worst = worst_of[(id(det), k)]
            imgs = threat_images(det, v, threat, stacks.get(k), attack, gen, worst=worst)
            s_out[k] = det.score(imgs)
        mmc = "MMC" in metrics_ and det.confidence_model is not None  # the score is a confidence
        rows += [r for r in ood_rows(det.name, s_in, s_out, threat=threat, stand_in=stand_in,
                                     confidences_out=s_out if mmc else None) if r["metric"] in metrics_]
        scores[f"{det.name}|in"] = _as_array(s_in)
        scores.update({f"{det.name}|{threat}|{k}": _as_array(v) for k, v in s_out.items()})
        seconds[det.name] = seconds.get(det.name, 0.0) + time.perf_counter() - t0
    table = pd.DataFrame(rows)
    table.attrs["seconds"] = seconds
    table.attrs["scores"] = scores
    return table


class Scores(dict):
    """The scores behind a table (name -> float64 array), kept in ``DataFrame.attrs["scores"]``.

    Compares by identity: pandas compares ``attrs`` when it combines frames, and a dict of
    arrays cannot be compared with ``==``.
    """

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    __hash__ = object.__hash__


def _as_array(v: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().double().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def scores_of(
    table: pd.DataFrame, detector: str, threat: str | None = None
) -> np.ndarray | dict[str, np.ndarray]:
    """The scores behind a :func:`threat_table`: a detector's in-distribution scores (``threat=None``)
    or ``{set: OOD scores}`` under one threat."""
    scores = table.attrs.get("scores")
    if not scores:
        raise ValueError("expected a table from threat_table (or cached_table) with attrs['scores'], "
                         "got none")
    if threat is None:
        key = f"{detector}|in"
        if key not in scores:
            known = sorted({k.split("|")[0] for k in scores})
            raise ValueError(f"unknown detector {detector!r}; the table has {known}")
        return scores[key]
    prefix = f"{detector}|{threat}|"
    out = {k[len(prefix):]: v for k, v in scores.items() if k.startswith(prefix)}
    if not out:
        raise ValueError(f"no scores for detector {detector!r} under threat {threat!r} in this table")
    return out


def summarise(table: pd.DataFrame, percent: bool = True, threats: Sequence[str] = THREATS,
              metrics_: Sequence[str] = ("FPR95", "AUROC", "AUROC_cons")) -> pd.DataFrame:
    """Chen et al.'s Table 1 layout: one row per model, (threat, metric) columns in the order of
    ``threats`` and ``metrics_`` (those present), mean over OOD sets; percent unless ``percent=False``."""
    t = table.groupby(["model", "threat", "metric"], sort=False)["value"].mean().unstack(["threat", "metric"])
    order = [(th, m) for th in threats for m in metrics_ if (th, m) in t.columns]
    t = t[order] * (100 if percent else 1)
    return t.reindex(list(dict.fromkeys(table.model)))


def _cache_key(name: str, key: Mapping[str, object]) -> tuple[str, Path]:
    """The key as sorted JSON (with :data:`VERSION` and :func:`oodlib.runtime.numerics`: a table
    computed on another device or thread count is recomputed, not mixed with this machine's numbers)
    and the path stem of its files in the zoo's tables."""
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"expected a table name of letters, digits, '-' or '_', got {name!r}")
    try:
        full = {**key, "evaluate_version": VERSION, "numerics": numerics()}
        blob = json.dumps(full, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"expected a plain-JSON key (str, numbers, lists, dicts; no NaN): {err}") from err
    digest = stable_hash(full, strict=True)
    folder = cache_dir() / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    return blob, folder / f"{name}-{digest}"


def cached_tensors(name: str, key: Mapping[str, object],
                   compute: Callable[[], Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``compute()`` once per ``key``, for results that are tensors rather than a table (attacked
    points and their scores: chapter 04's certified-ball attacks, chapter 02's adversarial noise).

    Same contract as :func:`cached_table` (``key`` names everything the result depends on, plain
    JSON); the tensors are stored beside the zoo's checkpoints and read with
    ``torch.load(..., weights_only=True)``, so a rebuild of the book does not attack again.
    """
    blob, stem = _cache_key(name, key)
    pt, meta = stem.with_suffix(".pt"), stem.with_suffix(".json")
    if pt.exists() and meta.exists():
        try:
            if json.loads(meta.read_text()).get("key") == json.loads(blob):
                out = torch.load(pt, map_location="cpu", weights_only=True)
                if isinstance(out, dict) and all(isinstance(v, torch.Tensor) for v in out.values()):
                    return out
        except (json.JSONDecodeError, OSError, RuntimeError, ValueError):
            pass  # recompute below
    out = dict(compute())
    bad = [k for k, v in out.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"expected compute() to return a dict of tensors, got non-tensors under {bad}")
    out = {k: v.detach().cpu() for k, v in out.items()}
    atomic_write(pt, lambda p: torch.save(out, p))
    atomic_write(meta, json.dumps({"key": json.loads(blob)}, indent=1))  # last: marks a complete entry
    return out


def cached_table(name: str, key: Mapping[str, object], compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """``compute()`` once per ``key``: the table is stored as CSV beside the zoo's checkpoints.

    ``key`` must name everything the numbers depend on (the models' weights — e.g.
    :attr:`oodlib.zoo.Entry.weights_hash` — sizes, attack settings, seeds); it must be plain
    JSON (no tensors), is hashed into the file name and stored in a JSON sidecar.
    ``attrs["seconds"]`` (evaluation wall times) survives the round trip. :data:`VERSION` enters
    every key, so a change of the evaluation code that moves numbers invalidates old tables.
    """
    blob, stem = _cache_key(name, key)
    csv, meta = stem.with_suffix(".csv"), stem.with_suffix(".json")
    npz = stem.with_suffix(".npz")  # the scores behind the table (attrs["scores"]), for the claims
    def read() -> pd.DataFrame:
        info = json.loads(meta.read_text())
        if info.get("key") != json.loads(blob):
            raise KeyError("key mismatch")
        table = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""]).astype(object)
        table["value"] = table["value"].astype(float)
        table = table.where(table.notna(), None)
        table.attrs["seconds"] = info.get("seconds", {})
        names = info.get("scores", [])
        if names:
            with np.load(npz, allow_pickle=False) as arrays:
                table.attrs["scores"] = Scores({k: arrays[f"a{i}"] for i, k in enumerate(names)})
        return table

    if csv.exists() and meta.exists():
        try:
            return read()
        except (json.JSONDecodeError, pd.errors.ParserError, KeyError, OSError, ValueError):
            pass  # recompute below
    table = compute()
    if table.empty or "value" not in table.columns:
        return table  # nothing worth caching
    atomic_write(csv, lambda p: table.to_csv(p, index=False))
    scores = table.attrs.get("scores", {})

    def save_npz(p: Path) -> None:  # through a handle: np.savez_compressed would append ".npz" to the name
        with open(p, "wb") as f:
            np.savez_compressed(f, **{f"a{i}": v for i, v in enumerate(scores.values())})

    if scores:
        atomic_write(npz, save_npz)
    info = {"key": json.loads(blob), "seconds": table.attrs.get("seconds", {}), "scores": list(scores)}
    atomic_write(meta, json.dumps(info, indent=1))  # the sidecar last: its presence marks a complete entry
    return read()  # the same table (dtypes included) whether it was computed now or cached


def attack_key(attack: AttackSettings) -> dict[str, object]:
    """The attack settings as a plain dict (for :func:`cached_table` keys)."""
    return asdict(attack)
