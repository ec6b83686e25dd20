"""Each chapter in its paper's own setting: the setting's models on the paper's OOD test sets, the
paper's numbers beside ours.

A :class:`oodlib.paper_settings.PaperSetting` names a paper's in-distribution set, network, recipe and
methods; ``python -m oodlib zoo train --settings`` trains its models (``full``: the papers' sizes on a
GPU; ``smoke``: toy sizes on synthetic files). This module reads them back and evaluates them as the
paper's headline table does, one function per kind of table:

* :func:`detection_table` — every method's detector (:func:`oodlib.detectors.for_entry`: MSP, CCU's
  density, GOOD's, the (K+1)-th class) on each OOD test set the paper reports for this in-distribution
  (:meth:`oodlib.datasets.InDistribution.ood_sets`), under the chapter's threats: clean (Hein et al.
  2019 Table 1, Meinke & Hein 2020 Table 2), clean / APGD / certified at the setting's ε (Bitterwolf
  et al. 2020 Table 1: AUC, AAUC, GAUC), clean and ℓ∞ at 8/255 (Chen et al. 2021 Table 1);
* :func:`alpha_table` — Hein et al. 2019 Table 2: the median α at which αx reaches 99.9 % confidence,
  and the share of α-scaled noise still over 95 % confident once projected back to the image box;
* :func:`odin_table` — Liang et al. 2018 Table 2: baseline and ODIN, (T, ε) tuned per set (§4.4);
* :func:`training_time` — each model's training hours and device, from its zoo record, beside the
  paper's hours where the paper states them (Chen et al. 2021 Table 3);
* :func:`pool_audit` — the auxiliary pool the setting's OE, CCU, GOOD and ATOM models trained on,
  against its test sets: near-duplicates of sampled test images (a real pool has no source list).

Every table carries the paper's value beside ours where ``oodlib`` holds it (one table per paper,
checked in ``tests/test_paper_numbers.py``) and ``—`` where it does not; it names the pool the models
trained on, and :func:`skipped` lists the sets that were not evaluated and why (a set with no reader,
a file not in the data root). Under ``smoke`` every number is a test of the code path on synthetic
files, not a result. ``ci`` has no paper settings: :func:`plan` shows what ``full`` runs instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from . import (
    acet,
    atom,
    beside,
    ccu,
    datasets,
    detectors,
    evaluate,
    good,
    noise,
    odin,
    odin_analysis,
    paper_settings,
    provenance,
    relu_theory,
    zoo,
    zoo_plan,
)
from .paper_settings import PaperSetting
from .profiles import Profile
from .runtime import default_device, derive_seed, progress

#: the papers' short names, as :attr:`oodlib.datasets.PaperUse.paper` writes them
PAPER_KEYS = {"Hein et al. 2019": "Hein", "Liang et al. 2018": "ODIN", "Meinke & Hein 2020": "CCU",
              "Bitterwolf et al. 2020": "GOOD", "Chen et al. 2021": "ATOM"}
#: the methods as the papers' tables name them
METHOD_NAMES = {"plain": "plain", "ceda": "CEDA", "acet": "ACET", "oe": "OE", "ccu": "CCU",
                "good": "GOOD_100", "ntom": "NTOM", "atom": "ATOM"}
#: the networks as ODIN's Table 2 names them
ODIN_NETWORKS = {"densenet_bc": "DenseNet-BC", "wrn_28_10": "WRN-28-10"}
#: the threats of each chapter's headline table (:func:`oodlib.evaluate.threat_table`)
CHAPTER_THREATS = {"01": ("natural",), "02": ("natural",), "04": ("natural",), "05": evaluate.GOOD_THREATS,
                   "06": ("natural", "linf")}


@dataclass(frozen=True)
class SettingData:
    """A setting's evaluation data: its test split and the OOD sets that could be read."""

    setting: PaperSetting
    profile: Profile
    x_test: torch.Tensor
    y_test: torch.Tensor
    ood: dict[str, torch.Tensor]
    skipped: dict[str, str]  # OOD set -> why it was not evaluated


def plan(chapter: str) -> pd.DataFrame:
    """The paper settings of ``chapter`` as ``full`` runs them: what each reproduces, its data, network,
    methods and pool, and the OOD sets the paper reports (what ``ci`` shows in their place)."""
    rows = []
    for s in paper_settings.for_chapter(chapter):
        spec = datasets.IN_DISTRIBUTIONS[s.dataset]
        rows.append({"setting": s.key, "reproduces": f"{s.paper}, {s.reproduces}", "data set": spec.title,
                     "network": s.arch, "methods": ", ".join(METHOD_NAMES[m] for m in s.methods),
                     "pool": s.leaves["train.pool"].value if s.pool else "none (noise only)",
                     "OOD test sets": ", ".join(spec.ood_sets(PAPER_KEYS[s.paper]))})
    if not rows:
        raise ValueError(f"expected a chapter with paper settings, got {chapter!r} (none)")
    return pd.DataFrame(rows).set_index("setting")


def load_data(setting: PaperSetting, base: Profile) -> SettingData:
    """The test split and the paper's OOD test sets of ``setting`` at ``base``'s sizes
    (``eval.test_size``, ``eval.ood_size`` per set). A set that cannot be read is skipped, with why."""
    profile = setting.profile(base)
    spec = datasets.IN_DISTRIBUTIONS[setting.dataset]
    x_train, _, x_test, y_test = datasets.in_distribution(setting.dataset, profile)
    ood, skipped = {}, {}
    for name in spec.ood_sets(PAPER_KEYS[setting.paper]):
        seed = derive_seed(profile.seed, f"{setting.key} {name}")
        if name == "smooth noise":  # Hein et al.'s: permuted training images or uniform noise, blurred
            ood[name] = noise.smooth_noise(profile.eval.ood_size, x_train, seed)
            continue
        try:
            try:
                ood[name] = datasets.load_ood(name, spec.shape, n=profile.eval.ood_size, seed=seed)
            except ValueError as err:  # a set smaller than ood_size (iSUN: 8 925) is read whole
                if not str(err).startswith("expected n <="):
                    raise
                ood[name] = datasets.load_ood(name, spec.shape, n=None, seed=seed)
        except (ValueError, FileNotFoundError) as err:  # no reader, or not in the data root
            skipped[name] = str(err).split(";")[0][:200]
    if not ood:
        raise FileNotFoundError(f"{setting.key}: none of its OOD test sets could be read: {skipped}")
    return SettingData(setting, profile, x_test, y_test, ood, skipped)


def skipped(data: SettingData) -> pd.DataFrame:
    """The OOD sets of the paper that ``data`` lacks, with the reason (empty when every set was read)."""
    return pd.DataFrame({"OOD set": list(data.skipped), "not evaluated because": list(data.skipped.values())}
                        ).set_index("OOD set")


def load_models(setting: PaperSetting, base: Profile) -> dict[str, zoo.Entry]:
    """The setting's zoo models by the papers' method names (trained first by ``zoo train --settings``;
    a missing one raises :class:`oodlib.zoo.MissingModelError` naming the command, where the profile
    may not train in a cell)."""
    needs = [n for n in zoo_plan.setting_needs(base) if n.name.startswith(f"{setting.key}: ")]
    return {METHOD_NAMES[n.method]: n.load() for n in needs}


def _pool(data: SettingData) -> str:
    return data.profile.train.pool if data.setting.pool else "none (noise only)"


def _attack(data: SettingData) -> evaluate.AttackSettings:
    if data.setting.chapter == "05":
        return evaluate.AttackSettings.good(data.profile)
    return evaluate.AttackSettings.from_profile(data.profile)


def detection_table(data: SettingData, entries: dict[str, zoo.Entry], chapter: str | None = None
                    ) -> pd.DataFrame:
    """Each method on each OOD set under the chapter's threats (:data:`CHAPTER_THREATS`), in %: AUROC
    (GOOD: the conservative AUC, AAUC, GAUC) and FPR at 95 % TPR, with the paper's value beside where
    ``oodlib`` holds it (chapter 02: Hein et al.'s Table 1; 04: CCU's Table 2, AUROC; 05: GOOD's Table
    1; chapter 06 compares means over sets, :func:`mean_over_sets`)."""
    chapter = chapter or data.setting.chapter
    threats = CHAPTER_THREATS[chapter]
    auc = "AUROC_cons" if chapter == "05" else "AUROC"
    dets = [detectors.for_entry(name, e) for name, e in entries.items()]
    if chapter == "05":  # GOOD's Table 1: every model's MSP, certified by IBP (eq. 6), as chapter 05's
        dets = [d if d.name == "CCU" else detectors.good_detector(d.name, entries[d.name].model)
                for d in dets]
    long = evaluate.threat_table(dets, data.x_test, data.ood, threats=threats, attack=_attack(data),
                                 attack_size=data.profile.eval.attack_size, metrics_=(auc, "FPR95"),
                                 seed=derive_seed(data.profile.seed, data.setting.key), desc=None)
    records = []
    for (model, threat, ood_set), part in long.groupby(["model", "threat", "ood_set"], sort=False):
        value = part.set_index("metric").value
        paper_auc, paper_fpr = _paper_detection(data, chapter, model, threat, ood_set)
        shown = f"{threat} ({evaluate.AUC_NAMES[threat]})" if chapter == "05" else threat  # GOOD's AUC names
        records.append({"method": model, "threat": shown, "OOD set": ood_set,
                        "AUROC": beside.Pair(paper_auc, round(100 * value[auc], 1)),
                        "FPR95": beside.Pair(paper_fpr, round(100 * value["FPR95"], 1)),
                        "pool": _pool(data)})
    return beside.table(records, index=["method", "threat", "OOD set"])


#: our OOD set names as each paper's table writes them (where they differ); for MNIST, GOOD's "CIFAR-10"
#: and CCU's "GrCIFAR10" are grey CIFAR-10
PAPER_SET_NAMES = {
    "Hein": {"Fashion-MNIST": "FMNIST", "EMNIST letters": "EMNIST", "CIFAR-10 gray": "grayCIFAR-10",
             "smooth noise": "Noise", "LSUN classroom": "LSUN CR", "ImageNet-": "Imagenet-"},
    "CCU": {"Fashion-MNIST": "FMNIST", "EMNIST letters": "EMNIST", "CIFAR-10 gray": "GrCIFAR10",
            "smooth noise": "Noise", "uniform noise": "Uniform", "CIFAR-10": "CIFAR10",
            "CIFAR-100": "CIFAR100", "LSUN classroom": "LSUN_CR"},
    "GOOD": {"Fashion-MNIST": "FashionMNIST", "CIFAR-10 gray": "CIFAR-10"},
}
#: our method names as CCU's Table 2 writes them (its columns: ccu.PAPER_METHODS)
CCU_METHODS = {"plain": "Base", "OE": "OE", "CCU": "CCU"}


def _paper_detection(data: SettingData, chapter: str, model: str, threat: str, ood_set: str
                     ) -> tuple[float | None, float | None]:
    """The paper's (AUROC, FPR95) in % for one row of :func:`detection_table`, or ``None``: Hein et al.'s
    Table 1 (chapter 02), CCU's Table 2 (04, AUROC only), GOOD's Table 1 (05: AUC, AAUC or GAUC)."""
    title = datasets.IN_DISTRIBUTIONS[data.setting.dataset].title
    paper = PAPER_KEYS[data.setting.paper]
    name = PAPER_SET_NAMES.get(paper, {}).get(ood_set, ood_set)
    if chapter == "02" and threat == "natural":
        row = acet.PAPER_TABLE1_BY_SET.get(title, {}).get(model, (None, {}))[1].get(name)
        return (None, None) if row is None else (100 * row[1], 100 * row[2])
    if chapter == "04" and model in CCU_METHODS:
        row = ccu.PAPER_AUROC_BY_SET.get(title.replace("-", ""), {}).get(name)
        return (None if row is None else row[ccu.PAPER_METHODS.index(CCU_METHODS[model])]), None
    if chapter == "05":
        row = good.PAPER_TABLE1_BY_SET.get(title, {}).get(model, (None, {}))[1].get(name)
        column = {"natural": 0, "apgd": 1, "certified": 2}[threat]
        return (None if row is None else row[column]), None
    return None, None


def mean_over_sets(data: SettingData, table: pd.DataFrame) -> pd.DataFrame:
    """ATOM's Table 1 layout: :func:`detection_table`'s AUROC and FPR95 averaged over the natural OOD test
    sets the paper averages (those of :meth:`oodlib.datasets.InDistribution.ood_sets` that were read, the
    noises apart: App. B.11 reports them separately), per
    method and threat, beside the paper's Table 1 where ``oodlib`` holds it (CIFAR-10; MSP is our plain
    model)."""
    sets = [s for s in datasets.IN_DISTRIBUTIONS[data.setting.dataset].ood_sets("ATOM") if "noise" not in s]
    t = table.reset_index()
    t = t[t["OOD set"].isin(list(sets))]
    records = []
    for (method, threat), part in t.groupby(["method", "threat"], sort=False):
        title = datasets.IN_DISTRIBUTIONS[data.setting.dataset].title
        paper = atom.PAPER_TABLE1_BY_SET.get(title, {}).get("MSP" if method == "plain" else method) \
            if threat in atom.PAPER_THREATS else None
        fpr, auroc = paper[atom.PAPER_THREATS.index(threat)] if paper else (None, None)
        mean = {m: round(float(pd.to_numeric(part[f"{m} ours"]).mean()), 1) for m in ("AUROC", "FPR95")}
        records.append({"method": method, "threat": threat, "sets averaged": len(part),
                        "AUROC": beside.Pair(auroc, mean["AUROC"]), "FPR95": beside.Pair(fpr, mean["FPR95"])})
    return beside.table(records, index=["method", "threat"])


def alpha_table(data: SettingData, entries: dict[str, zoo.Entry], trials: int | None = None) -> pd.DataFrame:
    """Hein et al. 2019 Table 2 for the setting's plain and ACET models: median α at which uniform noise
    αx reaches 99.9 % confidence (α up to 1e20, ``trials`` draws; default ``profile.alpha_trials``) and
    the % of α-scaled noise, projected back to [0, 1]^d, with confidence > 95 %, beside the paper's."""
    trials = trials or data.profile.alpha_trials
    shape = datasets.IN_DISTRIBUTIONS[data.setting.dataset].shape
    title = datasets.IN_DISTRIBUTIONS[data.setting.dataset].title
    x = noise.uniform_noise(trials, derive_seed(data.profile.seed, f"{data.setting.key} alpha"), shape=shape)
    records = []
    for name in ("plain", "ACET"):
        if name not in entries:
            continue
        model = entries[name].model
        found = relu_theory.alpha_search(model, x, threshold=0.999, alpha_max=1e20)
        share = relu_theory.overconfident_fraction(model, x, found.alpha, threshold=0.95)
        paper = relu_theory.PAPER_TABLE2.get(name, {}).get(title)
        records.append({"model": name, "median α (99.9 %)": beside.Pair(
                            None if paper is None else f"{paper[0]:.3g}", f"{found.median():.3g}"),
                        "% overconfident in [0,1]^d": beside.Pair(
                            None if paper is None else paper[1], round(100 * share, 1)),
                        "test error (%)": round(100 * entries[name].record["test_error"], 1)})
    return beside.table(records, index=["model"])


def odin_table(data: SettingData, entry: zoo.Entry) -> pd.DataFrame:
    """Liang et al. 2018 Table 2 for the setting's network: baseline → ODIN per OOD set and metric, (T, ε)
    tuned on each set's held-out images (:func:`oodlib.odin.run_study`), beside the paper's block for
    this (network, in-distribution)."""
    study = odin.run_study(entry.model, data.x_test, data.ood, data.profile, tag=data.setting.key)
    long = study.table()
    block = odin_analysis.PAPER_TABLE2.get(
        (ODIN_NETWORKS.get(data.setting.arch, data.setting.arch),
         datasets.IN_DISTRIBUTIONS[data.setting.dataset].title), {})
    records = []
    for name, part in long.groupby("ood_set", sort=False):
        value = part.set_index(["detector", "metric"]).value
        for k, metric in enumerate(odin_analysis.TABLE2_METRICS):
            paper = block.get(name)
            records.append({"OOD set": name, "metric": metric, "": beside.Pair(
                None if paper is None else f"{paper[k][0]:.1f} → {paper[k][1]:.1f}",
                f"{100 * value['baseline', metric]:.1f} → {100 * value['ODIN', metric]:.1f}"),
                "ODIN's (T, ε)": "({:g}, {:.4f})".format(*study.chosen(name))})
    return beside.table(records, index=["OOD set", "metric"])


def training_time(data: SettingData, entries: dict[str, zoo.Entry]) -> pd.DataFrame:
    """What each of the setting's models cost to train, from its zoo record: the device it trained on
    and its training hours (summed over the runs of an interrupted training, :func:`oodlib.train.fit`),
    beside the paper's where the paper states one: only Chen et al. 2021 does (App. B.2, Table 3, one
    RTX 2080 Ti, "the estimated average runtime for each result", :func:`oodlib.atom.paper_training_hours`;
    its standard training stands for the plain model, NTOM has no row)."""
    methods = {v: k for k, v in METHOD_NAMES.items()}
    records = []
    for name, entry in entries.items():
        paper = None
        if data.setting.paper == "Chen et al. 2021" and methods[name] != "ntom":
            paper = atom.paper_training_hours(methods[name])
        hours = entry.record.get("train_time_s")
        records.append({"model": name, "trained on": entry.record.get("device", "?"),
                        "training (h)": beside.Pair(paper, None if hours is None else hours / 3600)})
    return beside.table(records, index=["model"], fmt=lambda v: float(f"{float(v):.3g}"))  # smoke: seconds


def pool_audit(data: SettingData, sample: int = 200) -> pd.DataFrame:
    """The setting's auxiliary training pool (``train.pool``, ``train.aux_size`` images, as the zoo drew
    it) against ``sample`` seeded images of the in-distribution test split and of each OOD test set:
    the RMS distance to the nearest pool image and how many are near-duplicates
    (:func:`oodlib.provenance.near_duplicates`, on the GPU where there is one). An OOD test image with
    a near-copy in the pool was seen in training; in-distribution images with near-copies in the pool
    are why ATOM skips the hardest outliers on CIFAR (Chen et al. 2021, §5.2, Table 2: q = 0 is best on
    SVHN, whose pool is disjoint, q = 0.125 and 0.5 on CIFAR-10 and -100)."""
    pool = zoo.training_pool(data.setting.dataset, data.profile)
    spec = datasets.IN_DISTRIBUTIONS[data.setting.dataset]
    sets = {f"{spec.title} test (in-distribution)": data.x_test, **data.ood}
    seed = derive_seed(data.profile.seed, "pool audit")
    table = provenance.near_duplicates(sets, pool, sample=sample, seed=seed, device=default_device())
    table.insert(0, "pool", f"{data.profile.train.pool}, {len(pool)} images")
    return table


def report(chapter: str, base: Profile) -> list[tuple[str, pd.DataFrame]]:
    """Every table of ``chapter`` in each of its papers' settings under ``base`` (``full`` or ``smoke``):
    ``(title, table)`` pairs in setting order — the sets not evaluated, then the chapter's headline
    tables (chapter 02 reads chapter 01's settings: Hein et al.'s models serve both)."""
    settings = paper_settings.for_chapter("01" if chapter == "02" else chapter)
    out = []
    for s in progress(settings, desc=f"chapter {chapter}'s paper settings"):
        data = load_data(s, base)
        entries = load_models(s, base)
        title = f"{s.key} ({s.paper}, {s.reproduces}; {s.arch})"
        if data.skipped and chapter != "01":  # chapter 01's Table 2 scales noise, not the OOD sets
            out.append((f"{title}: OOD sets not evaluated", skipped(data)))
        if chapter == "01":
            out.append((f"{title}: Table 2, α-scaling", alpha_table(data, entries)))
        elif chapter == "03":
            out.append((f"{title}: Table 2, baseline → ODIN (%)", odin_table(data, entries["plain"])))
        else:
            table = detection_table(data, entries, chapter)
            out.append((f"{title}: per OOD set (%)", table))
            if chapter == "06":
                out.append((f"{title}: mean over the natural sets (%)", mean_over_sets(data, table)))
        if chapter != "02":  # chapter 02 reads chapter 01's settings and models
            out.append((f"{title}: training time", training_time(data, entries)))
        if s.pool and chapter != "02":  # chapter 01's settings train on noise only: no pool
            out.append((f"{title}: the training pool against the test sets", pool_audit(data)))
    return out
