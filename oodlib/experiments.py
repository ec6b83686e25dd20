"""Chapter experiments that combine the zoo, detectors and the evaluation.

Kept apart from the method modules so those stay free of training-cache and evaluation code
(imports only go one way: method modules → zoo → detectors → evaluate → here).

* The max-softmax baseline over training seeds (chapter 00): :func:`baseline_by_seed`.
* ODIN against the baseline over training seeds (Liang et al. 2018, Tables 2-3): :func:`odin_by_seed`.
* ODIN's same-manifold split (Liang et al. 2018, §4.5): :func:`load_subset_model` (the model
  trained on 8 of the 10 classes) and :func:`same_manifold_by_seed` (the claims of Fig. 2c–d and
  Tables 3/5/7/9, once per class split).
* ATOM's q ablation (Chen et al. 2021, Table 2, App. B.7): :func:`ablation_models`,
  :func:`ablation_seed_models`, :func:`validation_table` and :func:`validated_q` (App. B.7's rule
  itself is :func:`oodlib.atom.choose_q`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from . import atom, data, metrics, runtime, scores, standins, zoo
from .detectors import k1_detector
from .evaluate import AttackSettings, attack_key, cached_table, threat_table
from .odin import Study, fpr_grid, run_study
from .odin_analysis import HELD_OUT, check_classes, class_split, subset
from .profiles import Profile
from .runtime import progress
from .validation import check_seed


def baseline_by_seed(
    profile: Profile,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    ood: Mapping[str, data.OODSet],
    seeds: Sequence[int],
) -> pd.DataFrame:
    """Chapter 00's claims about the plain model, once per training seed (Hendrycks & Gimpel 2017).

    For each seed, the plain zoo model of ``profile.replace(seed=seed)`` (trained if missing; chapter
    01 uses the same three) is scored with the max-softmax probability on the test images and on the
    same ``ood`` images. One row per seed: ``test error``, ``min natural AUROC`` (over the sets whose
    name has no "noise"), ``uniform AUROC`` and ``share > 0.99`` (the share of all OOD images with
    MSP above 0.99). A claim about a plain *network* is decided over these rows
    (:func:`oodlib.intervals.seed_interval`), so it includes the training variance.
    """
    rows = {}
    for seed in progress([check_seed(s) for s in seeds], desc="plain models"):
        model = zoo.load_or_train("plain", profile=profile.replace(seed=seed)).model
        s_in = scores.msp(model, x_test)
        s_out = {name: scores.msp(model, s.x) for name, s in ood.items()}
        conf = torch.cat(list(s_out.values()))
        rows[seed] = {
            "test error": float((runtime.predict_proba(model, x_test).argmax(1) != y_test).double().mean()),
            "min natural AUROC": min(metrics.auroc(s_in, v) for k, v in s_out.items() if "noise" not in k),
            "uniform AUROC": metrics.auroc(s_in, s_out["uniform noise"]),
            "share > 0.99": float((conf > 0.99).double().mean()),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "training seed"
    return out


def odin_by_seed(
    profile: Profile,
    x_test: torch.Tensor,
    ood: Mapping[str, data.OODSet],
    seeds: Sequence[int],
    arch: str | None = None,
    headline: str = "photo crops",
    studies: Mapping[int, Study] | None = None,
) -> pd.DataFrame:
    """ODIN's Tables 2-3 comparison (baseline vs tuned ODIN) once per training seed of the plain model.

    For each seed, the plain zoo model of ``profile.replace(seed=seed)`` (architecture ``arch``,
    default the profile's; trained if missing) gets its own ODIN study (:func:`~oodlib.odin.run_study`:
    its own
    tuning split, (T, ε) search and evaluation split). One row per seed, gains in fractions over the
    natural sets (names without "noise"): ``min FPR95 gain`` (baseline − ODIN), ``min AUROC gain``
    (ODIN − baseline), ``min DetErr gain`` (baseline − ODIN), and ``FPR95 ratio ({headline})``, ODIN's
    FPR95 over the baseline's on the set beside the paper's headline row (TinyImageNet crop: 34.7 →
    4.3). A claim about the *method* is decided over these rows (:func:`oodlib.intervals.seed_interval`).
    ``studies`` maps a seed to a study already run on that seed's model with the same ``profile``
    (e.g. chapter 03's own, tag ``""``): it is reused instead of searched again.
    """
    natural = [k for k in ood if "noise" not in k]
    if headline not in natural:
        raise ValueError(f"expected headline to be one of the natural sets {natural}, got {headline!r}")
    rows = {}
    for seed in progress([check_seed(s) for s in seeds], desc=f"ODIN per seed ({arch or profile.model})"):
        p = profile.replace(seed=seed)
        st = (studies or {}).get(seed)
        if st is None:
            model = zoo.load_or_train("plain", profile=p, arch=arch).model
            st = run_study(model, x_test, {k: ood[k] for k in natural}, p, tag=arch or "")
        base = {k: st.evaluate(k, 1.0, 0.0) for k in natural}
        tuned = {k: st.evaluate(k, *st.chosen(k)) for k in natural}
        rows[seed] = {
            "min FPR95 gain": min(base[k]["FPR95"] - tuned[k]["FPR95"] for k in natural),
            "min AUROC gain": min(tuned[k]["AUROC"] - base[k]["AUROC"] for k in natural),
            "min DetErr gain": min(base[k]["DetErr"] - tuned[k]["DetErr"] for k in natural),
            f"FPR95 ratio ({headline})": tuned[headline]["FPR95"] / max(base[headline]["FPR95"], 1e-12),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "training seed"
    return out


def load_subset_model(profile: Profile, classes: Sequence[int], **kwargs: object) -> zoo.Entry:
    """The zoo model trained on ``classes`` only (method ``"plain_subset"``), trained if needed.

    Its ``record["test_error"]`` is measured on the test images of the kept classes, relabelled
    (the plug-in's :meth:`~oodlib.train.Method.test_split`).
    """
    cls = check_classes(classes)
    return zoo.load_or_train("plain_subset", profile=profile, num_classes=len(cls), classes=list(cls),
                             **kwargs)


def same_manifold_by_seed(
    profile: Profile,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    natural: Mapping[str, torch.Tensor] | Mapping[str, object],
    seeds: Sequence[int],
) -> pd.DataFrame:
    """The same-manifold claims (Fig. 2c-d, Tables 3, 5, 7, 9) once per seed: split, model and search.

    For each seed: the classes held out (:func:`~oodlib.odin_analysis.class_split`), the model trained on
    the others
    (:func:`load_subset_model`, seconds in ``ci``) and the ODIN study on the held-out classes and the
    ``natural`` sets (:func:`~oodlib.odin.run_study`, tag ``"8/2"``, so the profile's own seed reproduces the
    chapter's study). One row per seed: ``hardest`` = the held-out FPR95 minus the largest other
    (ODIN, tuned; > 0: the same-manifold split is the hardest), ``T=1 preferred`` = the tuning FPR95
    of the best T > 1 minus that of the best T = 1 (> 0: the search falls back to T = 1), and
    ``least gain`` = the smallest FPR95 gain of ODIN over the baseline on the other sets minus the
    gain on the held-out classes (> 0: ODIN helps least there). Whether these hold depends on
    *which* classes are held out, so :mod:`oodlib.claims` decides them over seeds.
    """
    rows = []
    for seed in progress(list(seeds), desc="same-manifold seeds"):
        p = profile.replace(seed=int(seed))
        kept, held = class_split(p.odin.held_out_classes, seed=p.seed)
        model = load_subset_model(p, kept).model
        x_in8, _ = subset(x_test, y_test, kept)
        x_held = x_test[torch.isin(y_test, torch.tensor(held))]
        st = run_study(model, x_in8, {HELD_OUT: x_held, **natural}, p, tag="8/2")
        tuned = {k: st.evaluate(k, *st.chosen(k))["FPR95"] for k in st.sets}
        gain = {k: st.evaluate(k, 1.0, 0.0)["FPR95"] - tuned[k] for k in st.sets}
        others = [k for k in st.sets if k != HELD_OUT]
        f = fpr_grid(st.tune_in.double().numpy(), st.tune_out[HELD_OUT].double().numpy())
        one = st.temperatures == 1.0
        rows.append({"seed": p.seed, "held out": ", ".join(data.FASHION_CLASSES[c] for c in held),
                     "hardest": tuned[HELD_OUT] - max(tuned[k] for k in others),
                     "T=1 preferred": float(f[~one].min() - f[one].min()),
                     "least gain": min(gain[k] for k in others) - gain[HELD_OUT]})
    return pd.DataFrame(rows).set_index("seed")


def ablation_models(profile: Profile) -> dict[str, zoo.Entry]:
    """Table 2's models: ATOM with random sampling and with each q of ``profile.atom.q_grid``
    (reduced training in ``ci``, see :func:`~oodlib.atom.ablation_profile`), trained or loaded from the
    zoo."""
    abl = atom.ablation_profile(profile)
    out = {"ATOM (rand. sample)": zoo.load_or_train("atom", profile=abl, sampling="random")}
    for q in progress(profile.atom.q_grid, desc="ablation models"):
        out[f"ATOM (q={q})"] = zoo.load_or_train("atom", profile=abl, q=q)
    return out


def ablation_seed_models(
    profile: Profile, seeds: Sequence[int], qs: Sequence[float]
) -> dict[int, dict[str, zoo.Entry]]:
    """Table 2's random-sampling model and the model for each q in ``qs``, once per training seed.

    The spread of a Table 2 comparison over training seeds is what decides a claim about training
    (mining vs random sampling): one run is too noisy in ``ci``. ``seed == profile.seed`` gives
    :func:`ablation_models`' own entries (the zoo hash includes the seed).
    """
    out: dict[int, dict[str, zoo.Entry]] = {}
    for seed in progress(list(seeds), desc="ablation seeds"):
        check_seed(seed, "each of seeds")
        abl = atom.ablation_profile(profile).replace(seed=seed)
        models_ = {"ATOM (rand. sample)": zoo.load_or_train("atom", profile=abl, sampling="random")}
        models_.update({f"ATOM (q={q})": zoo.load_or_train("atom", profile=abl, q=q) for q in qs})
        out[seed] = models_
    return out


def validation_table(profile: Profile, models_: Mapping[str, zoo.Entry] | None = None) -> pd.DataFrame:
    """The four threats on the validation split (App. B.7) for the ablation models, cached in the zoo.

    In-distribution: the last 1 000 test images (never evaluated on in Tables 1–2); OOD: the
    first 1 000 held-out pool images (never trained on); ``2 · atom.attack_size`` of them attacked.
    """
    models_ = models_ if models_ is not None else ablation_models(profile)
    x_val_in = data.in_distribution(profile)[2][-1000:]
    pool_val = atom.validation_split(standins.aux_pool_for(profile), profile.atom.holdout)[1][:1000]
    attack = AttackSettings.from_profile(profile)
    size = 2 * profile.atom.attack_size
    key = {"models": {n: e.weights_hash for n, e in models_.items()}, "attack": attack_key(attack),
           "size": size, "seed": profile.seed, "profile": profile.name, "n_in": len(x_val_in), "version": 2}
    return cached_table("atom-validation", key, lambda: threat_table(
        [k1_detector(n, e.model) for n, e in models_.items()], x_val_in, {"aux validation": pool_val},
        attack_size=size, attack=attack, seed=profile.seed, desc="validation"))


def q_candidates(models_: Mapping[str, zoo.Entry]) -> dict[str, float]:
    """Model name -> q for the mining models among ``models_`` (random sampling has none)."""
    return {n: e.record["config"]["hparams"]["q"] for n, e in models_.items() if "rand" not in n}


def validated_q(profile: Profile) -> float:
    """The q chosen on the validation split (App. B.7): what chapter 06 picks and chapter 07 reuses."""
    models_ = ablation_models(profile)
    return atom.choose_q(validation_table(profile, models_), q_candidates(models_))[0]
