"""Every model the book needs, chapter by chapter: what ``python -m oodlib zoo plan`` lists and
``zoo train`` trains before the book is built.

Under ``full`` a chapter never trains in a cell (``profile.train.in_cells``): its models come from
the zoo, trained first by ``zoo train`` (one GPU), by one ``zoo train --only HASH`` per job (a
Slurm job array, ``scripts/zoo_array.sbatch``), or imported with ``zoo import``. :func:`needs` is
that list. The chapters ask the zoo for the same configurations; ``make smoke`` proves the list
complete — it trains the smoke zoo with ``zoo train`` and then runs every chapter with
``OODLIB_ZOO_TRAIN=never``, where a model missing from this list stops the chapter.

The papers' own settings (:mod:`oodlib.paper_settings`: MNIST, SVHN, CIFAR with the papers' networks
and recipes) are a second list, :func:`setting_needs` (``zoo plan --settings``, ``zoo train
--settings``): their models train ahead of the chapters that will read them.

One choice depends on trained models: NTOM and ATOM train at the q that chapter 06 picks on the
validation split from its q-ablation models (Chen et al. 2021, App. B.7;
:func:`oodlib.experiments.validated_q`). Until those are in the zoo, the two are listed as
*waiting* (``Need.waits_for``); ``zoo train`` trains the rest, then picks q and trains them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import atom, datasets, experiments, good, odin_analysis, paper_settings, zoo
from .profiles import Profile
from .runtime import progress
from .validation import check_choice

#: the chapters with zoo models, as their notebooks are numbered
CHAPTERS = ("00", "01", "02", "03", "04", "05", "05b", "06", "07")
#: class splits (seeds) behind chapter 03's same-manifold claims (Fig. 2c-d); ~70 would decide them
SAME_MANIFOLD_SPLITS = 3
#: training seeds of OE and GOOD_100 behind chapter 05b's claim on the letters
LETTERS_SEEDS = 3
#: the q values chapter 06 retrains over seeds for the mining-vs-random claim (q = 0: the paper's
#: choice for a pool disjoint from the in-distribution; 0.75: what validation picked at some seeds)
MINING_CLAIM_QS = (0.0, 0.75)
#: the second architecture of chapter 03's "across architectures" claim (ODIN App. A's MNIST network)
ODIN_SECOND_ARCH = "mlp"


@dataclass(frozen=True)
class Need:
    """One model a chapter needs: ``zoo.load_or_train(method, profile=profile, arch=arch, **hparams)``."""

    chapter: str
    name: str
    method: str
    profile: Profile
    arch: str | None = None
    hparams: tuple[tuple[str, Any], ...] = ()
    #: what the configuration waits for (NTOM/ATOM: the q-ablation models), or "" when it is known
    waits_for: str = ""
    dataset: str = field(default="fashion_mnist")

    @property
    def config(self) -> dict[str, Any]:
        return zoo.make_config(self.method, self.dataset, self.profile, self.arch, **dict(self.hparams))

    @property
    def hash(self) -> str:
        return "" if self.waits_for else zoo.config_hash(self.config)

    @property
    def path(self) -> Path | None:
        if self.waits_for:
            return None
        return zoo.checkpoint_path(self.method, self.dataset, self.profile, self.arch, **dict(self.hparams))

    def load(self, **kwargs: Any) -> zoo.Entry:
        """``zoo.load_or_train`` of this configuration (``kwargs``: ``device``, ``may_train``)."""
        if self.waits_for:
            raise ValueError(f"{self.name} (chapter {self.chapter}) waits for {self.waits_for}: "
                             "train those first")
        return zoo.load_or_train(self.method, self.dataset, self.profile, self.arch, **kwargs,
                                 **dict(self.hparams))

    @property
    def cached(self) -> bool:
        p = self.path
        return p is not None and p.exists() and p.with_suffix(".json").exists()

    @property
    def steps(self) -> int:
        """Optimiser steps of its training (epochs × batches per epoch)."""
        t = self.profile.train
        return t.epochs * math.ceil(t.train_size / t.batch_size)


def _need(chapter: str, name: str, method: str, profile: Profile, arch: str | None = None,
          **hparams: Any) -> Need:
    return Need(chapter, name, method, profile, arch, tuple(sorted(hparams.items())))


def _seeds(profile: Profile, n: int) -> list[int]:
    return [profile.seed + i for i in range(n)]


def _subset(chapter: str, p: Profile) -> Need:
    kept, _ = odin_analysis.class_split(p.odin.held_out_classes, seed=p.seed)
    return _need(chapter, f"plain on classes {kept} (seed {p.seed})", "plain_subset", p,
                 num_classes=len(kept), classes=list(kept))


def _atom_at_q(chapter: str, profile: Profile, q_star: float | None) -> list[Need]:
    if q_star is None:
        wait = "chapter 06's q-ablation models (q is chosen on their validation split)"
        return [Need(chapter, name, method, profile, waits_for=wait) for name, method in
                (("NTOM", "ntom"), ("ATOM", "atom"))]
    return [_need(chapter, name, method, profile, q=q_star)
            for name, method in (("NTOM", "ntom"), ("ATOM", "atom"))]


def _ablation(chapter: str, profile: Profile) -> list[Need]:
    abl = atom.ablation_profile(profile)
    return [_need(chapter, "ATOM (rand. sample)", "atom", abl, sampling="random"),
            *[_need(chapter, f"ATOM (q={q})", "atom", abl, q=q) for q in profile.atom.q_grid]]


def validated_q(profile: Profile) -> float | None:
    """Chapter 06's q (:func:`oodlib.experiments.validated_q`) once its q-ablation models are in the
    zoo, else ``None`` (the validation table is cached in the zoo, so this is cheap the second time)."""
    if not all(n.cached for n in _ablation("06", profile)):
        return None
    return float(experiments.validated_q(profile))


def chapter_needs(chapter: str, profile: Profile, q_star: float | None = None) -> list[Need]:
    """The models ``chapter`` asks the zoo for under ``profile`` (``q_star``: chapter 06's q, if known)."""
    check_choice(chapter, list(CHAPTERS), "chapter")
    p, ibp = profile, profile.ibp_model
    plains = [_need(chapter, f"plain (seed {s})", "plain", p.replace(seed=s))
              for s in _seeds(p, p.plain_seeds)]
    if chapter == "00":
        return plains
    if chapter == "01":
        return [*plains, _need(chapter, "ACET", "acet", p)]
    if chapter == "02":
        return [_need(chapter, n, m, p) for n, m in (("plain", "plain"), ("CEDA", "ceda"), ("ACET", "acet"),
                                                    ("OE", "oe"))]
    if chapter == "03":
        mlps = [_need(chapter, f"plain {ODIN_SECOND_ARCH} (seed {s})", "plain", p.replace(seed=s),
                      ODIN_SECOND_ARCH) for s in _seeds(p, p.plain_seeds)]
        splits = [_subset(chapter, p.replace(seed=s)) for s in _seeds(p, SAME_MANIFOLD_SPLITS)]
        return [*plains, *mlps, *splits]
    if chapter == "04":
        return [_need(chapter, n, m, p) for n, m in (("Base", "plain"), ("ACET2", "acet"), ("OE", "oe"),
                                                    ("CCU", "ccu"))]
    if chapter == "05":
        base = [_need(chapter, n, m, p, ibp) for n, m in (("plain", "plain"), ("CEDA", "ceda"), ("OE", "oe"),
                                                         ("ACET", "acet"), ("CCU", "ccu"))]
        return base + [_need(chapter, good.quantile_name(q / 100), "good", p, ibp, quantile=q / 100)
                       for q in p.good.quantiles]
    if chapter == "05b":
        out = [_need(chapter, f"GOOD_100 trained at eps {r}", "good", p, ibp, eps=r, quantile=1.0)
               for r in sorted({p.good.eps, 0.3})]
        out += [_need(chapter, n, m, p, ibp) for n, m in (("plain", "plain"), ("ACET", "acet"))]
        for s in _seeds(p, LETTERS_SEEDS):
            out += [_need(chapter, f"OE (seed {s})", "oe", p.replace(seed=s), ibp),
                    _need(chapter, f"GOOD_100 (seed {s})", "good", p.replace(seed=s), ibp, quantile=1.0)]
        return out
    if chapter == "06":
        out = _ablation(chapter, p) + _atom_at_q(chapter, p, q_star)
        out += [_need(chapter, n, m, p) for n, m in (("plain", "plain"), ("OE", "oe"), ("ACET", "acet"),
                                                    ("CCU", "ccu"))]
        out.append(_need(chapter, "GOOD", "good", p, ibp, quantile=1.0))
        out.append(_need(chapter, "NTOM without mining (Figure 2/5)", "ntom_trajectory",
                         atom.trajectory_profile(p)))
        for s in _seeds(p, p.atom.claim_seeds):
            abl = atom.ablation_profile(p).replace(seed=s)
            out.append(_need(chapter, f"ATOM (rand. sample, seed {s})", "atom", abl, sampling="random"))
            out += [_need(chapter, f"ATOM (q={q}, seed {s})", "atom", abl, q=q) for q in MINING_CLAIM_QS]
            out.append(_need(chapter, f"plain (ablation training, seed {s})", "plain", abl))
        return out
    # chapter 07: the benchmark's models (oodlib.benchmark), NTOM and ATOM at chapter 06's q
    out = _ablation(chapter, p) + [_need(chapter, n, m, p) for n, m in (
        ("plain", "plain"), ("CEDA", "ceda"), ("OE", "oe"), ("ACET", "acet"), ("CCU", "ccu"))]
    out += [_need(chapter, good.quantile_name(q / 100), "good", p, ibp, quantile=q / 100)
            for q in p.bench.good_quantiles]
    return out + _atom_at_q(chapter, p, q_star)


def setting_needs(profile: Profile, chapters: Iterable[str] | None = None) -> list[Need]:
    """The models of the papers' own settings (:data:`oodlib.paper_settings.SETTINGS`) of ``chapters``
    (default: all): every method of each setting, at the setting's data set, network and recipe on
    top of ``profile`` (``full``, or ``smoke`` at toy sizes; ``ci`` has none: ``ValueError``)."""
    chapters = list(CHAPTERS if chapters is None else chapters)
    for c in chapters:
        check_choice(c, list(CHAPTERS), "chapter")
    return [Need(s.chapter, f"{s.key}: {m}", m, s.profile(profile), s.arch, dataset=s.dataset)
            for c in chapters for s in paper_settings.for_chapter(c) for m in s.methods]


def needs(profile: Profile, chapters: Iterable[str] | None = None, resolve: bool = True,
          settings: bool = False) -> list[Need]:
    """Every model of ``chapters`` (default: all) under ``profile``, chapter by chapter.

    ``resolve``: pick chapter 06's q where its q-ablation models are in the zoo (else NTOM and ATOM
    wait for them). A model several chapters share is listed under each; :func:`unique` keeps one.
    ``settings``: the papers' own settings instead (:func:`setting_needs`).
    """
    if settings:
        return setting_needs(profile, chapters)
    chapters = list(CHAPTERS if chapters is None else chapters)
    for c in chapters:
        check_choice(c, list(CHAPTERS), "chapter")
    q_star = validated_q(profile) if resolve and {"06", "07"} & set(chapters) else None
    return [n for c in chapters for n in chapter_needs(c, profile, q_star)]


def unique(items: Sequence[Need]) -> list[Need]:
    """One :class:`Need` per zoo model (the first chapter that needs it), waiting ones kept (once:
    chapters 06 and 07 wait for the same NTOM and ATOM)."""
    seen, out = set(), []
    for n in items:
        key = n.hash or (n.method, n.name, n.waits_for)
        if key not in seen:
            seen.add(key)
            out.append(n)
    return out


def missing(profile: Profile, chapters: Iterable[str] | None = None, settings: bool = False) -> list[Need]:
    """The models of ``chapters`` the zoo does not hold yet (waiting ones included; ``settings``: of the
    papers' own settings)."""
    return [n for n in unique(needs(profile, chapters, settings=settings)) if not n.cached]


#: methods timed as another (``benchmarks/gpu_check.py``): a class-subset model trains as plain, Figure
#: 2/5's run as NTOM
TIMED_AS = {"plain_subset": "plain", "ntom_trajectory": "ntom"}


def timing_key(n: Need) -> tuple[str, str, str]:
    """What a training step's cost depends on: (method timed as, architecture, input shape ``"CxHxW"``)."""
    shape = datasets.IN_DISTRIBUTIONS[n.dataset].shape
    return TIMED_AS.get(n.method, n.method), n.arch or n.profile.model, "x".join(map(str, shape))


def step_seconds(path: Path | None = None) -> dict[tuple[str, str, str], float]:
    """Measured seconds per training image by :func:`timing_key` (a step's time over its batch size),
    from ``benchmarks/gpu_check.py``'s ``gpu_check.json`` (its ``training`` rows), or ``{}`` where no
    such file exists."""
    path = path or Path("benchmarks/results/gpu_check.json")
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text()).get("training", [])
    return {(r["method"], r["arch"], r["input"]): float(r["ms/step"]) / 1000 / int(r["batch"]) for r in rows}


def plan_table(items: Sequence[Need], seconds: dict[tuple[str, str, str], float] | None = None) -> list[dict]:
    """Rows for ``zoo plan``: chapter, name, method, architecture, data set, hash, in the zoo or not,
    training steps, and projected hours where ``seconds`` (:func:`step_seconds`) has a rate."""
    seconds = seconds or {}
    rows = []
    for n in items:
        arch = n.arch or n.profile.model
        per_image = seconds.get(timing_key(n))
        rate = None if per_image is None else per_image * n.profile.train.batch_size
        rows.append({"chapter": n.chapter, "model": n.name, "method": n.method, "arch": arch,
                     "dataset": n.dataset, "hash": n.hash or f"(waits for {n.waits_for})",
                     "in zoo": "yes" if n.cached else "no", "steps": n.steps,
                     "projected h": "—" if rate is None else round(n.steps * rate / 3600, 2)})
    return rows


def train_missing(profile: Profile, chapters: Iterable[str] | None = None, only: str | None = None,
                  device: str | None = None, settings: bool = False) -> list[Need]:
    """Train every model of ``chapters`` the zoo lacks (``only``: the one with that config hash), the
    q-ablation first, then NTOM/ATOM at the q it picks (``settings``: the papers' own settings'
    models instead, :func:`setting_needs`). Returns what was trained or loaded.

    Safe beside other ``zoo train`` processes on the same zoo: each model trains under its own lock,
    and a run killed mid-training resumes after its last finished epoch (:mod:`oodlib.zoo`).
    """
    chapters = list(CHAPTERS if chapters is None else chapters)
    done: list[Need] = []
    for _ in range(2):  # the second pass: NTOM/ATOM, once the q-ablation models exist
        todo = [n for n in unique(needs(profile, chapters, settings=settings)) if not n.waits_for
                and not n.cached and (only is None or n.hash == only)]
        for n in progress(todo, desc=f"zoo train ({profile.name})"):
            print(f"training {n.name} for chapter {n.chapter}: {n.method}, {n.arch or profile.model}, "
                  f"{n.dataset}, hash {n.hash}", flush=True)
            n.load(device=device, may_train=True)
            done.append(n)
    if only is not None and not done and not any(n.hash == only for n in needs(profile, chapters,
                                                                               settings=settings)):
        raise ValueError(f"expected --only to name the hash of a model of the plan, got {only!r} "
                         "(see 'python -m oodlib zoo plan')")
    return done
