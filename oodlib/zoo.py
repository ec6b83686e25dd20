"""Train-or-load: a cache of trained models keyed by their full configuration.

A model is identified by (method, dataset, architecture, the profile's
training fields, hyper-parameters). Its checkpoint (a ``state_dict`` only)
and a JSON record (config, wall time, training history, cached evaluation
results) live under ``$OODLIB_CACHE`` (default ``~/.cache/oodlib/zoo``) with
a hash of the config in the file name, so changing any setting trains a new
model and chapters share the ones that match. Checkpoints are loaded with
``torch.load(..., weights_only=True)``: no pickle runs. A corrupt, truncated
or mismatched file is retrained with a warning.

Training in a chapter's cell is the ``ci`` and ``smoke`` default; under ``full`` (hours per model)
the zoo is trained before the book (``python -m oodlib zoo train``) and a missing model raises
:class:`MissingModelError` instead (:func:`training_allowed`). Several processes may share one zoo
directory: every file is written whole (:func:`oodlib.runtime.atomic_write`), a model is trained
under a lock of its own (the second process waits, then loads it), and an interrupted training
resumes after its last finished epoch (:func:`oodlib.train.fit`'s ``state_path``).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import io
import json
import math
import os
import tarfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import acet, atom, ccu, datasets, good, models, odin_analysis, profiles, standins, train
from .augment import Augmentation
from .profiles import Profile
from .runtime import atomic_write, cache_dir, default_device, derive_seed, logits, stable_hash
from .validation import check_choice

#: 2: a class-subset model's test error is on its own classes; 3: the aux pool draws its symbols
#: from the STIX fonts only (no font shared with the letters test set)
FORMAT_VERSION = 3
#: The profile's training fields: their key in a config's ``"train"`` part (the flat names the hashes
#: have always used, so grouping the profile changed no hash) -> the profile leaf they are read from.
TRAIN_FIELDS: dict[str, str] = {
    "train_size": "train.train_size", "epochs": "train.epochs", "batch_size": "train.batch_size",
    "lr": "train.lr", "weight_decay": "train.weight_decay", "lr_milestones": "train.lr_milestones",
    "aux_size": "train.aux_size", "pgd_train_steps": "attack.pgd_train_steps",
    "pgd_train_step_size": "attack.pgd_train_step_size", "eps": "attack.eps", "seed": "seed",
}
#: The training recipe's leaves (optimiser and augmentation): in the hash only where they differ from
#: ``ci``'s default (Adam, no augmentation), so models trained before the recipe existed keep theirs.
RECIPE_FIELDS: dict[str, str] = {
    "optimizer": "train.optimizer", "momentum": "train.momentum", "nesterov": "train.nesterov",
    "crop_pad": "train.crop_pad", "crop_mode": "train.crop_mode", "hflip": "train.hflip",
    "autoaugment": "train.autoaugment", "augment_out": "train.augment_out", "bf16": "train.bf16",
    "pool": "train.pool", "width_scale": "train.width_scale",
}

RECIPE_DEFAULTS: dict[str, Any] = {
    k: getattr(profiles.Training, leaf.split(".")[1]) for k, leaf in RECIPE_FIELDS.items()}


@dataclass(frozen=True)
class Plugin:
    """A training method the zoo can train and rebuild.

    ``factory(**hparams)`` builds the :class:`oodlib.train.Method`; ``hparams`` names the keyword
    arguments it accepts (checked once, in :func:`make_method`); ``defaults(profile)`` gives the
    hyper-parameters the profile sets (they enter the hash). ``num_classes`` is the zoo's own
    keyword (the width of the model's last layer), never passed to the factory.
    """

    factory: Callable[..., train.Method]
    hparams: tuple[str, ...] = ()
    defaults: Callable[[Profile], dict[str, Any]] | None = None


#: Every training method of the book, filled here explicitly (not by import side effects).
PLUGINS: dict[str, Plugin] = {
    "plain": Plugin(train.Plain),
    "plain_subset": Plugin(odin_analysis.ClassSubset, ("classes",)),  # Liang et al. §4.5
    "ceda": Plugin(acet.CEDA, acet.CEDA_HPARAMS),  # Hein et al. 2019, eq. 1-2
    "acet": Plugin(acet.ACET, acet.ACET_HPARAMS, acet.acet_zoo_defaults),  # Hein et al. 2019, eq. 3-4
    "oe": Plugin(acet.OutlierExposure, acet.OE_HPARAMS),  # Hendrycks et al. 2019
    "ccu": Plugin(ccu.CCUMethod, ccu.HPARAMS, ccu.zoo_defaults),  # Meinke & Hein 2020, eq. 6
    "good": Plugin(good.GOOD, good.HPARAMS, good.zoo_defaults),  # Bitterwolf et al. 2020, eq. 9-10
    "ntom": Plugin(atom.NTOM, atom.NTOM_HPARAMS, functools.partial(atom.zoo_defaults, method="ntom")),
    "atom": Plugin(atom.ATOM, atom.ATOM_HPARAMS, functools.partial(atom.zoo_defaults, method="atom")),
    # Chen et al. 2021, Fig. 2 / 5: NTOM without mining, its probe's OOD scores kept every epoch
    "ntom_trajectory": Plugin(atom.Trajectory, atom.TRAJECTORY_HPARAMS, atom.trajectory_defaults),
}
ZOO_HPARAMS = ("num_classes",)


def _plugin(method: object) -> Plugin:
    if not isinstance(method, str) or method not in PLUGINS:
        raise ValueError(f"unknown training method {method!r}; expected one of {sorted(PLUGINS)}")
    return PLUGINS[method]


def check_hparams(method: str, hparams: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the valid keywords if ``hparams`` has one ``method`` does not take."""
    allowed = (*_plugin(method).hparams, *ZOO_HPARAMS)
    unknown = sorted(set(hparams) - set(allowed))
    if unknown:
        raise ValueError(f"unknown hyper-parameter(s) {unknown} for method {method!r}; "
                         f"expected some of {list(allowed)}")


def make_method(method: str, **hparams: Any) -> train.Method:
    """The training plug-in ``method`` with its hyper-parameters (checked: ``ValueError`` on unknown ones)."""
    check_hparams(method, hparams)
    return _plugin(method).factory(**{k: v for k, v in hparams.items() if k not in ZOO_HPARAMS})


def method_hparams(method: str, profile: Profile, **hparams: Any) -> dict[str, Any]:
    """The method's hyper-parameters: profile defaults overridden by explicit ones."""
    defaults = _plugin(method).defaults
    return {**(defaults(profile) if defaults else {}), **hparams}


def make_config(
    method: str, dataset: str, profile: Profile, arch: str | None = None, **hparams: Any
) -> dict[str, Any]:
    """The full configuration that identifies a zoo entry."""
    check_hparams(method, hparams)
    if dataset not in datasets.IN_DISTRIBUTIONS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(datasets.IN_DISTRIBUTIONS)}")
    arch = arch or profile.model
    if arch not in models.ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {sorted(models.ARCHITECTURES)}")
    leaves = profile.leaves()
    explicit = hparams
    hparams = method_hparams(method, profile, **hparams)
    k = datasets.IN_DISTRIBUTIONS[dataset].num_classes
    if method in ("ntom", "atom") and "num_classes" not in explicit:  # the (K+1) head of atom.zoo_defaults
        hparams["num_classes"] = k + 1
    return {
        "format": FORMAT_VERSION,
        "method": method,
        "dataset": dataset,
        "arch": arch,
        "profile": profile.name,
        "train": {**{k: leaves[leaf] for k, leaf in TRAIN_FIELDS.items()},
                  **{k: leaves[leaf] for k, leaf in RECIPE_FIELDS.items()
                     if leaves[leaf] != RECIPE_DEFAULTS[k]}},
        "hparams": dict(sorted(hparams.items())),
    }


def recipe_augmentation(profile: Profile) -> Augmentation:
    """The :class:`oodlib.augment.Augmentation` of ``profile``'s training recipe (checked here)."""
    t = profile.train
    return Augmentation(t.crop_pad, t.crop_mode, t.hflip, t.autoaugment)


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a config (sorted JSON, SHA-256, 12 hex digits:
    :func:`oodlib.runtime.stable_hash`)."""
    return stable_hash(config)


@dataclass
class Entry:
    """A trained model and its record; ``record['eval']`` caches evaluation results."""

    model: nn.Module
    record: dict[str, Any]
    path: Path
    _hash: str = field(default="", init=False, repr=False, compare=False)
    _hash_stamp: tuple[int, int] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.record["config"]["method"]

    @property
    def weights_hash(self) -> str:
        """SHA-256 (12 hex digits) of the checkpoint file: changes when the model is retrained,
        even with the same config (e.g. non-deterministic GPU training). Keys cached tables.
        Hashed again only when the file's size or modification time changes."""
        st = self.path.stat()
        stamp = (st.st_size, st.st_mtime_ns)
        if self._hash_stamp != stamp:
            self._hash = hashlib.sha256(self.path.read_bytes()).hexdigest()[:12]
            self._hash_stamp = stamp
        return self._hash

    def save_record(self) -> None:
        """Write the JSON record next to the checkpoint."""
        atomic_write(self.path.with_suffix(".json"), json.dumps(self.record, indent=1, default=float))

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """Return ``record['eval'][key]``, computing and storing it (JSON) if absent."""
        evals = self.record.setdefault("eval", {})
        if key not in evals:
            evals[key] = compute()
            self.save_record()
        return evals[key]


def load_checkpoint(path: str | Path, model: nn.Module) -> nn.Module:
    """Load a ``state_dict`` saved by the zoo into ``model`` (weights only, no pickle).

    Raises ``FileNotFoundError`` if the file is missing and ``ValueError`` if it
    is corrupt, truncated or does not fit the architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train it with oodlib.zoo.load_or_train")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad files
        raise ValueError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: "
                         f"{str(err)[:120]}); delete it to retrain") from err
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} holds {type(state).__name__}, expected a state_dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"checkpoint {path} does not match the architecture: {str(err)[:200]}") from err
    return model


def _training_data(dataset: str, profile: Profile, method: train.Method):
    x, y, x_test, y_test = datasets.in_distribution(dataset, profile)
    x_out = None
    if method.out_source == "aux":
        x_out = training_pool(dataset, profile)
    return x, y, x_test, y_test, x_out


def training_pool(dataset: str, profile: Profile) -> torch.Tensor:
    """The auxiliary pool ``profile.train.pool`` (:data:`oodlib.datasets.POOLS`) at ``dataset``'s shape:
    ``profile.train.aux_size`` images. The offline stand-in is Fashion-MNIST's (grey 28 px photo crops
    and symbols); the papers' settings read a pool from files (:func:`oodlib.datasets.load_pool`)."""
    pool = check_choice(profile.train.pool, list(datasets.POOLS), "train.pool")
    if pool == "standin":
        if dataset != "fashion_mnist":
            raise ValueError(f"expected train.pool 'random_300k' or 'folder' for {dataset!r}: the stand-in "
                             "pool is built for the Fashion-MNIST chapters (oodlib.datasets.load_pool reads "
                             "the papers' kind of pool from files)")
        return standins.aux_pool_for(profile)
    shape = datasets.IN_DISTRIBUTIONS[dataset].shape
    return datasets.load_pool(pool, profile.train.aux_size, derive_seed(profile.seed, "aux pool"), shape)


#: ``OODLIB_ZOO_TRAIN``: ``cells`` lets a chapter train a missing model, ``never`` raises
#: :class:`MissingModelError`; unset, the profile decides (``profile.train.in_cells``)
TRAIN_POLICIES = ("cells", "never")


class MissingModelError(LookupError):
    """A model the book needs is not in the zoo, and this run may not train it (:func:`training_allowed`)."""


def training_allowed(profile: Profile) -> bool:
    """Whether :func:`load_or_train` may train a missing model here: ``OODLIB_ZOO_TRAIN`` (one of
    :data:`TRAIN_POLICIES`) or, unset, ``profile.train.in_cells``."""
    policy = os.environ.get("OODLIB_ZOO_TRAIN", "").strip().lower()
    if not policy:
        return bool(profile.train.in_cells)
    if policy not in TRAIN_POLICIES:
        raise ValueError(f"expected OODLIB_ZOO_TRAIN to be one of {list(TRAIN_POLICIES)}, got {policy!r}")
    return policy == "cells"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if absent) for the ``with`` block: one trainer per
    model across processes (``fcntl.flock``: released by the kernel if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_network(arch: str, dataset: str, num_classes: int, profile: Profile) -> nn.Module:
    """Architecture ``arch`` (a name of ``oodlib.models.ARCHITECTURES``) for ``dataset``'s input shape (an
    image network takes the set's channels and side, the MLP its flattened size), ``num_classes``
    outputs, ``profile``'s width (``train.width_scale``), initialised under ``profile.seed``."""
    shape = datasets.IN_DISTRIBUTIONS[dataset].shape
    sized: dict[str, int] = {"in_channels": shape[0], "image_size": shape[1]}  # the set's own shape
    if arch in ("mlp", "toy_mlp"):
        sized = {"in_features": math.prod(shape)} if arch == "mlp" else {}
    return models.build(arch, num_classes=num_classes, seed=profile.seed,
                        width_scale=profile.train.width_scale, **sized)


def checkpoint_path(method: str, dataset: str, profile: Profile, arch: str | None = None,
                    **hparams: Any) -> Path:
    """Where the checkpoint of this configuration lives (it may not exist yet)."""
    key = config_hash(make_config(method, dataset, profile, arch, **hparams))
    return cache_dir() / f"{method}-{dataset}-{profile.name}-{key}.pt"


def load_or_train(
    method: str = "plain",
    dataset: str = "fashion_mnist",
    profile: Profile | None = None,
    arch: str | None = None,
    device: str | torch.device | None = None,
    retrain: bool = False,
    may_train: bool | None = None,
    **hparams: Any,
) -> Entry:
    """Load the zoo model for this configuration, training (and caching) it if needed.

    ``hparams`` go to the method plug-in (e.g. ``eps`` for ACET) and into the hash. A missing model is
    trained where ``may_train`` (default :func:`training_allowed`), else :class:`MissingModelError`.
    The record holds the config, training wall time, per-epoch history and the
    test error on the profile's test split.
    """
    profile = profile or profiles.current()
    config = make_config(method, dataset, profile, arch, **hparams)
    key = config_hash(config)
    ckpt = checkpoint_path(method, dataset, profile, arch, **hparams)
    stem = ckpt.stem
    record_path = ckpt.with_suffix(".json")
    spec = datasets.IN_DISTRIBUTIONS[dataset]
    num_classes = int(config["hparams"].get("num_classes", spec.num_classes))
    # CCU's densities live in input space: their dimension is the set's (784 for Fashion-MNIST, the
    # default; 3072 at 3x32x32), fixed by the dataset in the hash
    in_space = {}
    if method == "ccu" and "dim" not in config["hparams"]:
        in_space = {"dim": math.prod(spec.shape)}
    plug = make_method(method, **config["hparams"], **in_space)

    def fresh() -> nn.Module:
        return plug.wrap(build_network(config["arch"], dataset, num_classes, profile))

    dev = default_device(device)

    def cached() -> Entry | None:
        if retrain or not (ckpt.exists() and record_path.exists()):
            return None
        try:
            model = load_checkpoint(ckpt, fresh())
            record = json.loads(record_path.read_text())
            if record.get("config") != json.loads(json.dumps(config, default=str)):
                raise ValueError(f"record {record_path} was written for another config")
            return Entry(model.to(dev).eval(), record, ckpt)
        except (ValueError, json.JSONDecodeError) as err:
            warnings.warn(f"retraining {stem}: {err}", stacklevel=2)
            return None

    entry = cached()
    if entry is not None:
        return entry
    if not (training_allowed(profile) if may_train is None else may_train):
        raise MissingModelError(
            f"the zoo at {cache_dir()} has no {method!r} model for this configuration ({stem}), and "
            f"profile {profile.name!r} does not train in the book's cells: train it first with "
            f"'python -m oodlib zoo train --profile {profile.name}' (or 'zoo import' a trained zoo; "
            "OODLIB_ZOO_TRAIN=cells trains it here)")
    with _locked(ckpt.with_suffix(".lock")):
        entry = cached()  # another process may have trained it while we waited
        if entry is None:
            entry = _train(config, key, ckpt, fresh(), plug, dataset, profile, dev, method, spec.num_classes)
    return entry


def _train(config: dict[str, Any], key: str, ckpt: Path, model: nn.Module, plug: train.Method, dataset: str,
           profile: Profile, dev: torch.device, method: str, num_classes: int) -> Entry:
    """Train one zoo model (resuming an interrupted run from its ``.state.pt``) and write it."""
    state = ckpt.with_suffix(".state.pt")
    x, y, x_test, y_test, x_out = _training_data(dataset, profile, plug)
    t0 = time.perf_counter()
    hist = train.fit(
        model, x, y, plug, epochs=profile.train.epochs, batch_size=profile.train.batch_size,
        lr=profile.train.lr, weight_decay=profile.train.weight_decay,
        lr_milestones=profile.train.lr_milestones, x_out=x_out,
        seed=profile.seed, device=dev, desc=method, optimizer=profile.train.optimizer,
        momentum=profile.train.momentum, nesterov=profile.train.nesterov,
        augment=recipe_augmentation(profile), augment_out=profile.train.augment_out, state_path=state,
        bf16=profile.train.bf16,
    )
    record = {
        "config": json.loads(json.dumps(config, default=str)),
        "hash": key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "device": str(dev),
        "wall_time_s": time.perf_counter() - t0,
        "train_time_s": hist.wall_time_s,
        "history": hist.logs,
        "test_error": classification_error(model, *plug.test_split(x_test, y_test), num_classes=num_classes),
        "eval": {},
    }
    atomic_write(ckpt, lambda p: torch.save(model.state_dict(), p))
    entry = Entry(model.eval(), record, ckpt)
    entry.save_record()
    state.unlink(missing_ok=True)
    return entry


def classification_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None
                         ) -> float:
    """Top-1 error over the first ``num_classes`` logits (all by default; the zoo passes the data
    set's class count, so ATOM's extra OOD class is ignored)."""
    pred = logits(model, x)[:, :num_classes].argmax(1)
    return float((pred != y).float().mean())


def list_cache() -> list[dict[str, Any]]:
    """One row per cached model: method, dataset, profile, arch, hash, wall time, test error and
    the mean clean-MSP AUROC over the OOD sets once ``python -m oodlib evaluate`` has run."""
    rows = []
    for rec_path in sorted(cache_dir().glob("*.json")):
        try:
            rec = json.loads(rec_path.read_text())
            cfg = rec["config"]
        except (json.JSONDecodeError, KeyError):
            continue
        clean = (rec.get("eval") or {}).get("clean_msp") or {}
        aurocs = [v["AUROC"] for v in clean.values() if isinstance(v, dict) and "AUROC" in v]
        rows.append({
            "method": cfg["method"], "dataset": cfg["dataset"], "profile": cfg["profile"],
            "arch": cfg["arch"], "hash": rec.get("hash"), "wall_time_s": rec.get("wall_time_s"),
            "test_error": rec.get("test_error"),
            "mean_auroc_msp": sum(aurocs) / len(aurocs) if aurocs else None,  # from `evaluate`
            "hparams": cfg.get("hparams"),
        })
    return rows


# --------------------------------------------------------------------------- moving a trained zoo

ARCHIVE_MANIFEST = "MANIFEST.json"  #: the archive's table of contents: file -> SHA-256, per entry


def _sha256(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def export_archive(archive: str | Path, profile: str | None = None) -> list[str]:
    """Write the cached models (of ``profile``, or all) to one ``.tar`` archive; returns their stems.

    Each checkpoint travels with its JSON record; ``MANIFEST.json`` lists every file with its
    SHA-256, so :func:`import_archive` can check each one: a lab trains the zoo once and readers
    import it instead of training. Evaluation caches (``*.table.pkl``) stay behind.
    """
    archive = Path(archive)
    stems = []
    for rec_path in sorted(cache_dir().glob("*.json")):
        ckpt = rec_path.with_suffix(".pt")
        try:
            rec = json.loads(rec_path.read_text())
            cfg = rec["config"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # not a model record (e.g. a cached table's sidecar)
        if ckpt.is_file() and (profile is None or cfg.get("profile") == profile):
            stems.append(rec_path.stem)
    if not stems:
        raise ValueError(f"expected trained models in {cache_dir()} (profile {profile or 'any'}), "
                         "found none")
    manifest: dict[str, Any] = {"format": FORMAT_VERSION, "entries": {}}

    def write(path: Path) -> None:
        with tarfile.open(path, "w") as tar:
            for stem in stems:
                files = {}
                for suffix in (".pt", ".json"):
                    blob = (cache_dir() / f"{stem}{suffix}").read_bytes()  # read once: hashed = archived
                    files[f"{stem}{suffix}"] = _sha256(blob)
                    _add(tar, f"{stem}{suffix}", blob)
                manifest["entries"][stem] = files
            _add(tar, ARCHIVE_MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())

    atomic_write(archive, write)
    return stems


def _add(tar: tarfile.TarFile, name: str, blob: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(blob)
    tar.addfile(info, io.BytesIO(blob))


def import_archive(archive: str | Path, overwrite: bool = False) -> list[str]:
    """Check and unpack an archive of :func:`export_archive` into the zoo; returns the stems added.

    Every file must be listed in the manifest with its SHA-256, every record's configuration must
    hash to the name it carries (:func:`config_hash`), and nothing but plain files with plain
    names is read (no paths, no links). Anything else is a ``ValueError`` naming the file; nothing
    is written until the whole archive has passed. An entry already in the zoo is kept if it is
    byte-identical, and otherwise refused unless ``overwrite``.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"no zoo archive at {archive}; write one with "
                                "`python -m oodlib zoo export ARCHIVE`")
    try:
        with tarfile.open(archive, "r") as tar:
            members = tar.getmembers()
            bad = [m.name for m in members if not m.isfile() or Path(m.name).name != m.name]
            if bad:
                raise ValueError(f"zoo archive {archive} holds entries that are not plain files: {bad[:3]}")
            files = {m.name: tar.extractfile(m).read() for m in members}
    except tarfile.TarError as err:
        raise ValueError(f"{archive} is not a readable tar archive ({err})") from err
    if ARCHIVE_MANIFEST not in files:
        raise ValueError(f"zoo archive {archive} has no {ARCHIVE_MANIFEST}")
    manifest = json.loads(files.pop(ARCHIVE_MANIFEST))
    listed = {name: digest for entry in manifest.get("entries", {}).values()
              for name, digest in entry.items()}
    if set(listed) != set(files):
        raise ValueError(f"zoo archive {archive}: files and manifest differ: "
                         f"{sorted(set(listed) ^ set(files))[:4]}")
    for name, digest in listed.items():
        if _sha256(files[name]) != digest:
            raise ValueError(f"zoo archive {archive}: {name} does not match its SHA-256 "
                             "(corrupt or changed)")
    for stem in manifest["entries"]:
        try:
            record = json.loads(files[f"{stem}.json"])
            key = config_hash(record["config"])
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"zoo archive {archive}: {stem}.json is not a zoo record ({err})") from err
        if record.get("hash") != key or not stem.endswith(key):
            raise ValueError(f"zoo archive {archive}: {stem}'s configuration hashes to {key}, "
                             f"not to the name it carries")
    added = []
    for stem in manifest["entries"]:
        names = [f"{stem}.pt", f"{stem}.json"]
        present = [p for p in (cache_dir() / n for n in names) if p.exists()]
        if len(present) == len(names) and all(p.read_bytes() == files[p.name] for p in present):
            continue
        if present and not overwrite:
            raise ValueError(f"{stem} is already in the zoo ({cache_dir()}) with other weights; "
                             f"pass overwrite=True (--overwrite) to replace it")
        for n in names:
            atomic_write(cache_dir() / n, files[n])
        added.append(stem)
    return added
