"""Command line: ``python -m oodlib {train,evaluate,list,export,zoo,synthetic-data} ...``.

Examples::

    python -m oodlib train acet --profile ci
    python -m oodlib evaluate plain --profile ci
    python -m oodlib list
    python -m oodlib export benchmark.md           # chapter 07's table (--train: train what is missing)
    python -m oodlib export zoo.csv --zoo          # the cache listing
    python -m oodlib export claims.md --claims     # every chapter's verdicts (after the chapters ran)
    python -m oodlib export claims.md --claims --readme README.md   # ... also into the README's table
    python -m oodlib export deviations.md --deviations --readme README.md   # every difference from the papers
    OODLIB_CLAIMS=DIR python -m oodlib export seeds.md --claims --seeds 0 1 2   # verdicts by run seed
    python -m oodlib zoo plan --profile full       # every model the book needs, chapter by chapter
    python -m oodlib zoo train --profile full      # train the missing ones (resumes an interrupted run)
    python -m oodlib zoo train --profile full --only 1a2b3c4d5e6f   # one model (a job of an array)
    python -m oodlib zoo export zoo.tar --profile full   # a trained zoo in one archive (hashes listed)
    python -m oodlib zoo import zoo.tar            # check every file, then add the models to the zoo
    python -m oodlib synthetic-data DIR            # smoke: small synthetic MNIST/EMNIST/CIFAR/SVHN files

Unknown method, profile or device names exit with status 2 and a message that
lists the valid choices.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from . import benchmark, claims, data, deviations, evaluate, profiles, synthetic_files, zoo, zoo_plan
from .profiles import Profile
from .runtime import cache_dir, default_device


def _parse_hparams(items: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"expected a hyper-parameter as KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _profile(name: str | None) -> Profile:
    return profiles.current() if name is None else profiles.get(name)


def _trainer() -> None:
    """This process trains on request (``train``, ``zoo train``, ``export --train``), whatever
    ``OODLIB_ZOO_TRAIN`` or the profile say about the book's cells."""
    os.environ["OODLIB_ZOO_TRAIN"] = "cells"


def cmd_train(args: argparse.Namespace) -> None:
    _trainer()
    entry = zoo.load_or_train(args.method, profile=_profile(args.profile), device=args.device,
                              retrain=args.retrain, **_parse_hparams(args.hparam))
    rec = entry.record
    print(f"{args.method}: test error {rec['test_error']:.2%}, trained in {rec['train_time_s']:.0f} s "
          f"on {rec['device']}; checkpoint {entry.path}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    profile = _profile(args.profile)
    entry = zoo.load_or_train(args.method, profile=profile, device=args.device, **_parse_hparams(args.hparam))
    _, _, x_test, _ = data.in_distribution(profile)
    ood = data.ood_sets(profile, skip_missing=True)
    table = evaluate.ood_table({args.method: entry.model}, x_test, ood)
    wide = evaluate.wide(table[table.ood_set != "(in-distribution)"])
    entry.cached("clean_msp", lambda: {k[1]: v for k, v in wide.to_dict("index").items()})
    print(wide.round(4).to_string())


def cmd_list(args: argparse.Namespace) -> None:
    rows = zoo.list_cache()
    if not rows:
        print(f"the zoo at {zoo.cache_dir()} is empty")
        return
    df = pd.DataFrame(rows)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def _write(df: pd.DataFrame, out: Path, index: bool) -> None:
    if out.suffix == ".csv":
        df.to_csv(out, index=index)
    elif out.suffix == ".md":
        out.write_text(df.to_markdown(index=index, floatfmt=".2f") + "\n")
    else:
        raise ValueError(f"expected an output file ending in .csv or .md, got {out.name!r}")


def _benchmark_table(profile: Profile, device: str | None, train: bool = False) -> pd.DataFrame:
    """Chapter 07's summary (mean over OOD sets, percent); missing models are trained only if ``train``."""
    if device is not None:  # validated here; the zoo and the attacks read $OODLIB_DEVICE
        os.environ["OODLIB_DEVICE"] = str(default_device(device))
    todo = [n.name for n in zoo_plan.missing(profile, ["07"])]
    if train:
        _trainer()
    elif todo:
        raise FileNotFoundError(
            f"the zoo at {cache_dir()} lacks {len(todo)} of the benchmark's models ({', '.join(todo)}); "
            f"run the chapters (make book) or pass --train to train them now")
    entries = benchmark.zoo_entries(profile)
    s = benchmark.setup(profile)
    dets = benchmark.make_detectors(entries, s, profile)
    table = benchmark.run(dets, entries, s, profile)
    summ = benchmark.summary(table, dets, entries)
    summ.columns = [" ".join(str(p) for p in c if p) for c in summ.columns]
    return summ


README_BEGIN, README_END = "<!-- claims:begin -->", "<!-- claims:end -->"
SEEDS_BEGIN, SEEDS_END = "<!-- seeds:begin -->", "<!-- seeds:end -->"
DEVIATIONS_BEGIN, DEVIATIONS_END = "<!-- deviations:begin -->", "<!-- deviations:end -->"
DEVIATIONS_COMMAND = "python -m oodlib export deviations.md --deviations --readme README.md"


def update_readme(path: Path, table: str, markers: tuple[str, str] = (README_BEGIN, README_END),
                  command: str = "python -m oodlib export claims.md --claims --readme README.md") -> None:
    """Replace the text between a pair of the README's markers by ``table`` (generated, never hand-edited)."""
    begin, end = markers
    text = path.read_text()
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"expected one {begin} ... {end} block in {path}")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    note = f"<!-- generated by `{command}`; do not edit -->"
    path.write_text(f"{head}{begin}\n{note}\n\n{table}\n{end}{tail}")


def seeds_markdown(profile_name: str, seeds: list[int]) -> str:
    """Every claim's verdict at each seed (:func:`oodlib.claims.verdicts_by_seed`) with a one-line count."""
    df = claims.verdicts_by_seed(profile_name, seeds)
    moved = df[df.moved == "yes"]
    flips = sum({claims.HOLDS, claims.FAILS} <= set(r) for r in moved[[f"seed {s}" for s in seeds]].values)
    asserted = df.scope != claims.MODEL
    intro = (f"{len(df)} claims, profile `{profile_name}`, seeds {', '.join(map(str, seeds))}: {len(moved)} "
             f"verdicts moved ({flips} between holds and does not hold here); of the "
             f"{int(asserted.sum())} asserted claims (over training seeds, or for every model), "
             f"{int((asserted & (df.moved == 'yes')).sum())} moved.")
    return intro + "\n\n" + df.to_markdown(index=False)


def cmd_export(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if out.suffix not in (".csv", ".md"):
        raise ValueError(f"expected an output file ending in .csv or .md, got {out.name!r}")
    if args.deviations:
        if out.suffix != ".md":
            raise ValueError(f"expected a .md file for --deviations, got {out.name!r}")
        md = deviations.markdown()
        out.write_text(md + "\n")
        if args.readme:
            update_readme(Path(args.readme), md, (DEVIATIONS_BEGIN, DEVIATIONS_END), DEVIATIONS_COMMAND)
        print(f"wrote {len(deviations.DEVIATIONS)} deviations to {out}"
              + (f" and {args.readme}" if args.readme else ""))
        return
    if args.claims:
        profile = _profile(args.profile)
        if out.suffix != ".md":
            raise ValueError(f"expected a .md file for --claims, got {out.name!r}")
        if args.seeds:
            md = seeds_markdown(profile.name, args.seeds)
            markers = (SEEDS_BEGIN, SEEDS_END)
            command = f"python -m oodlib export seeds.md --claims --seeds {' '.join(map(str, args.seeds))} " \
                      "--readme README.md"
        else:
            md = claims.markdown(profile.name, profile.seed)
            markers = (README_BEGIN, README_END)
            command = "python -m oodlib export claims.md --claims --readme README.md"
        out.write_text(md + "\n")
        if args.readme:
            update_readme(Path(args.readme), md, markers, command)
        which = f"seeds {args.seeds}" if args.seeds else f"seed {profile.seed}"
        print(f"wrote the recorded claims ({profile.name}, {which}) to {out}"
              + (f" and {args.readme}" if args.readme else ""))
        return
    if args.zoo:
        rows = []
        for row in zoo.list_cache():
            flat = {k: v for k, v in row.items() if k != "hparams"}
            rows.append(flat | {"hparams": json.dumps(row["hparams"])})
        df = pd.DataFrame(rows)
        _write(df, out, index=False)
    else:
        df = _benchmark_table(_profile(args.profile), args.device, train=args.train)
        _write(df, out, index=True)
    print(f"wrote {len(df)} rows to {out}")


def cmd_zoo_plan(args: argparse.Namespace) -> None:
    profile = _profile(args.profile)
    items = zoo_plan.needs(profile, args.chapter, settings=args.settings)
    rows = zoo_plan.plan_table(items if args.all else zoo_plan.unique(items), zoo_plan.step_seconds())
    table = pd.DataFrame(rows)
    if args.hashes:  # one hash per line, for a job array: the models still to train
        print("\n".join(r["hash"] for r in rows if r["in zoo"] == "no" and not r["hash"].startswith("(")))
        return
    print(table.to_markdown(index=False) if len(table) else "(no models)")
    todo = table[table["in zoo"] == "no"]
    hours = pd.to_numeric(todo["projected h"], errors="coerce")
    print(f"\n{len(table)} models for profile {profile.name!r} in {cache_dir()}: {len(todo)} to train, "
          f"{int(todo.steps.sum())} optimiser steps"
          + (f", {hours.sum():.1f} h projected (benchmarks/results/gpu_check.json)" if hours.notna().any()
             else "; no measured step time (run benchmarks/gpu_check.py on the GPU) for hours"))


def cmd_zoo_train(args: argparse.Namespace) -> None:
    _trainer()
    profile = _profile(args.profile)
    done = zoo_plan.train_missing(profile, args.chapter, only=args.only, device=args.device,
                                  settings=args.settings)
    left = zoo_plan.missing(profile, args.chapter, settings=args.settings)
    names = ", ".join(n.name for n in left[:6]) + (" …" if len(left) > 6 else "")
    print(f"trained or loaded {len(done)} models for profile {profile.name!r} in {cache_dir()}; "
          + (f"{len(left)} still missing ({names})" if left else "the zoo holds every model of the plan"))


def cmd_zoo_export(args: argparse.Namespace) -> None:
    stems = zoo.export_archive(args.archive, profile=args.profile)
    print(f"wrote {len(stems)} models from {cache_dir()} to {args.archive}")


def cmd_zoo_import(args: argparse.Namespace) -> None:
    added = zoo.import_archive(args.archive, overwrite=args.overwrite)
    print(f"checked {args.archive}; added {len(added)} models to {cache_dir()}"
          + (f": {', '.join(added)}" if added else " (the zoo already held them)"))


def cmd_synthetic_data(args: argparse.Namespace) -> None:
    files = synthetic_files.write(args.root, n=args.images, seed=args.seed, n_train=args.train_images,
                                  extra=args.extra)
    sets = [*synthetic_files.SETS, *(synthetic_files.EXTRA_SETS if args.extra else ())]
    train = f", train splits of {', '.join(synthetic_files.TRAIN_SETS)}" if args.train_images else ""
    print(f"wrote {len(files)} synthetic files ({', '.join(sets)}; {args.images} images each{train}) under "
          f"{args.root}: use them with OODLIB_DATA={args.root} OODLIB_PROFILE=smoke")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m oodlib", description="oodbook's model zoo and evaluation")
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, helptext in [("train", cmd_train, "train (or load) a zoo model"),
                               ("evaluate", cmd_evaluate, "MSP evaluation of a zoo model on every OOD set")]:
        s = sub.add_parser(name, help=helptext)
        s.add_argument("method", help="training method, e.g. plain, ceda, acet, oe")
        s.add_argument("--profile", choices=None, help="ci, full or smoke (default: $OODLIB_PROFILE or ci)")
        s.add_argument("--device", help="cpu or cuda (default: CUDA when present)")
        s.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                       help="method hyper-parameter (repeatable), e.g. --hparam eps=0.1")
        if name == "train":
            s.add_argument("--retrain", action="store_true", help="ignore a cached checkpoint")
        s.set_defaults(func=fn)
    s = sub.add_parser("list", help="list the cached models")
    s.set_defaults(func=cmd_list)
    s = sub.add_parser("export", help="export chapter 07's benchmark table (--zoo: the cache listing)")
    s.add_argument("out", help="output file (.csv or .md)")
    s.add_argument("--zoo", action="store_true", help="export the cache listing instead of the benchmark")
    s.add_argument("--claims", action="store_true",
                   help="export every chapter's recorded claims and verdicts")
    s.add_argument("--deviations", action="store_true",
                   help="export every difference from the papers' settings (oodlib.deviations)")
    s.add_argument("--readme", help="with --claims or --deviations: also replace that table in this README")
    s.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="with --claims: every claim's verdict at each of these run seeds (records of each "
                        "run in $OODLIB_CLAIMS), and whether it moved")
    s.add_argument("--train", action="store_true", help="train the benchmark's missing models (slow)")
    s.add_argument("--profile", help="ci, full or smoke (default: $OODLIB_PROFILE or ci)")
    s.add_argument("--device", help="cpu or cuda (default: CUDA when present)")
    s.set_defaults(func=cmd_export)
    s = sub.add_parser("zoo", help="the book's models: plan and train them, move a zoo in one archive")
    zsub = s.add_subparsers(dest="zoo_command", required=True)
    for name, fn, helptext in [("plan", cmd_zoo_plan, "every model the book needs; in the zoo or not"),
                               ("train", cmd_zoo_train, "train the models of the plan the zoo lacks")]:
        z = zsub.add_parser(name, help=helptext)
        z.add_argument("--profile", help="ci, full or smoke (default: $OODLIB_PROFILE or ci)")
        z.add_argument("--chapter", action="append", choices=zoo_plan.CHAPTERS,
                       help="only this chapter's models (repeatable; default: every chapter)")
        z.add_argument("--settings", action="store_true",
                       help="the papers' own settings (MNIST, SVHN, CIFAR: oodlib.paper_settings)")
        if name == "plan":
            z.add_argument("--all", action="store_true", help="list a model under every chapter that uses it")
            z.add_argument("--hashes", action="store_true",
                           help="print only the hashes still to train, one per line (for a job array)")
        else:
            z.add_argument("--only", metavar="HASH", help="train only the model with this config hash")
            z.add_argument("--device", help="cpu or cuda (default: CUDA when present)")
        z.set_defaults(func=fn)
    z = zsub.add_parser("export", help="write the cached models (and their records) to one .tar archive")
    z.add_argument("archive", help="the archive to write")
    z.add_argument("--profile", help="only the models of this profile (default: all)")
    z.set_defaults(func=cmd_zoo_export)
    z = zsub.add_parser("import", help="check every file of an archive, then add its models to the zoo")
    z.add_argument("archive", help="an archive written by `zoo export`")
    z.add_argument("--overwrite", action="store_true", help="replace models the zoo holds with other weights")
    z.set_defaults(func=cmd_zoo_import)
    s = sub.add_parser("synthetic-data",
                       help="write synthetic files in torchvision's formats (smoke profile)")
    s.add_argument("root", help="a data root of its own (never a real one: files are overwritten)")
    s.add_argument("--images", type=int, default=300, help="images per set (default 300)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--train-images", type=int, default=0,
                   help="also write train splits of this many images (the papers' settings train on them)")
    s.add_argument("--extra", action="store_true",
                   help="also write ODIN's folders, the 300K random images, Textures and Places365")
    s.set_defaults(func=cmd_synthetic_data)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, zoo.MissingModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
