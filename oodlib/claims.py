"""Claims with their uncertainty: a scope, a three-way verdict, and a record.

Every chapter ends with a *claims check*: a paper's statement, the number it rests on
(ours beside the paper's), and a verdict. A verdict decided from one point estimate flips
with the machine (CPU kernels sum in different orders, so training ends in slightly
different weights) whenever the comparison is closer than its noise. Here each
comparison carries an interval, and the verdict has three values:

* ``holds`` — the whole interval lies on the claim's side of the threshold;
* ``does not hold here`` — the whole interval lies on the other side;
* ``inconclusive at this budget`` — the interval contains the threshold.

The intervals come from :mod:`oodlib.intervals` (a bootstrap over images, exact binomial,
Student-t over training seeds, exact values with a dtype tolerance); this module re-exports
them, so a chapter writes ``ol.claims.bootstrap`` beside ``ol.claims.Claim``.

Every claim has a *scope*: what its interval covers, and so whether a chapter may fail on it.

* ``every model`` (:data:`THEOREM`) — a property that holds for every trained network by a
  theorem (a certificate is sound, a network is affine on its linear region) or by
  construction (a sanity check): a contradiction is a bug;
* ``training seeds`` (:data:`SEEDS`) — an interval over independently trained models
  (:func:`~oodlib.intervals.seed_interval`), so it includes the training variance: a claim about a *method*;
* ``one trained model`` (:data:`MODEL`) — an interval over the test images (or rays) of one
  trained network. Another training seed is another model, so such a verdict is *reported*,
  never asserted: a bootstrap over images cannot say what the next training run will do.

A :class:`Claim` says what the chapter *expects* (``expected``): :func:`check` fails only
when a claim of scope ``every model`` or ``training seeds`` that is expected to hold is
contradicted beyond its interval (or one expected to fail is supported beyond it) — never
because of noise, never on one trained model. Inconclusive verdicts are shown, not hidden.
:func:`record` stores a chapter's claims as JSON beside
the model zoo, so :func:`markdown` (``python -m oodlib export claims.md``) builds the
README's table from the same objects the chapters print.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .intervals import (
    LEVEL,
    N_BOOT,
    Estimate,
    bootstrap,
    bootstrap_table,
    difference_interval,
    exact,
    float_tolerance,
    mean_interval,
    metric_interval,
    paired_mean_difference,
    per_set_interval,
    proportion_interval,
    rank_correlation_interval,
    seed_interval,
    sorted_metric,
)
from .runtime import atomic_write, cache_dir
from .validation import check_number

HOLDS = "holds"
FAILS = "does not hold here"
INCONCLUSIVE = "inconclusive at this budget"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)
# what a claim's interval covers (see the module docstring); only the last two are asserted
MODEL = "one trained model"  #: scope: an interval over the test images of one network (reported)
SEEDS = "training seeds"  #: scope: an interval over independently trained networks (asserted)
THEOREM = "every model"  #: scope: a theorem or a sanity check, true of every model (asserted)
SCOPES = (MODEL, SEEDS, THEOREM)
ASSERTED = (SEEDS, THEOREM)
DIRECTIONS = (">", "<")
LABEL = re.compile(r"[a-z][a-z0-9-]*")  #: a statement label (``Claim.tests``): ``hein-thm-3-1``
OURS = "ours [95 % CI] vs threshold"  #: the table column: estimate, interval, test

__all__ = [
    "LEVEL", "N_BOOT", "ASSERTED", "SCOPES", "VERDICTS", "OURS",
    "HOLDS", "FAILS", "INCONCLUSIVE", "MODEL", "SEEDS", "THEOREM", "Estimate", "Claim", "bootstrap",
    "metric_interval",
    "rank_correlation_interval",
    "difference_interval", "per_set_interval", "mean_interval",
    "paired_mean_difference",
    "proportion_interval", "report", "seed_interval", "exact",
    "float_tolerance", "sorted_metric", "bootstrap_table", "decide", "contradicted", "check",
    "table", "record", "load",
    "markdown", "verdict_table", "verdicts_by_seed",
]


# --------------------------------------------------------------------------- verdicts


def decide(estimate: Estimate, threshold: float, direction: str = ">") -> str:
    """The three-way verdict for the claim ``quantity > threshold`` (or ``<``).

    ``holds`` when the whole interval is on the claim's side, ``does not hold here`` when the
    whole interval is on the other side (or touches the threshold from there), otherwise
    ``inconclusive at this budget``.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"expected direction in {DIRECTIONS}, got {direction!r}")
    check_number(threshold, "threshold", allow_inf=True)
    lo, hi = (estimate.lo, estimate.hi) if direction == ">" else (-estimate.hi, -estimate.lo)
    t = threshold if direction == ">" else -threshold
    if lo > t:
        return HOLDS
    if hi <= t:
        return FAILS
    return INCONCLUSIVE


@dataclass(frozen=True)
class Claim:
    """One claim of a paper, tested here: ``quantity <direction> threshold`` with an interval.

    ``expected`` is what the chapter's text says happens here (``HOLDS`` or ``FAILS``; ``None``
    for claims that are only reported). ``paper`` cites where the paper makes the claim,
    ``paper_value`` is its number (a string, "—" if none), ``quantity`` names what ``estimate``
    measures (with units). ``sanity`` marks checks that hold by construction (kept as a
    guard against bugs, not counted as evidence). ``scope`` (:data:`MODEL`, :data:`SEEDS`,
    :data:`THEOREM`) says what the interval covers; left out, it is :data:`THEOREM` for a sanity
    check, :data:`SEEDS` for an interval over seeds (:func:`~oodlib.intervals.seed_interval`) and
    :data:`MODEL`
    otherwise. :data:`SEEDS` needs an interval over seeds; only :data:`SEEDS` and :data:`THEOREM`
    claims are asserted (:func:`contradicted`). ``tests`` is the label of the book's numbered
    statement (a ``prf:`` theorem, proposition, corollary or definition of a chapter) that the claim
    tests, ``""`` for an empirical result of a paper's table or figure.
    """

    statement: str
    paper: str
    quantity: str
    estimate: Estimate
    threshold: float
    direction: str = ">"
    expected: str | None = HOLDS
    paper_value: str = "—"
    note: str = ""
    sanity: bool = False
    fmt: str = ".3g"
    meta: dict = field(default_factory=dict)
    scope: str | None = None
    tests: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.estimate, Estimate):
            raise ValueError(f"expected estimate as an oodlib.claims.Estimate, "
                             f"got {type(self.estimate).__name__}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"expected direction in {DIRECTIONS}, got {self.direction!r}")
        if self.expected not in (HOLDS, FAILS, None):
            raise ValueError(f"expected 'expected' in {(HOLDS, FAILS, None)}, got {self.expected!r}")
        for name in ("statement", "paper", "quantity"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"expected {name} as a non-empty string, got {getattr(self, name)!r}")
        over_seeds = self.estimate.method.startswith(("t-interval over", "1 of"))  # claims.seed_interval
        if self.scope is None:  # frozen dataclass: the inferred default is set once, here
            object.__setattr__(self, "scope", THEOREM if self.sanity else SEEDS if over_seeds else MODEL)
        if not isinstance(self.tests, str) or (self.tests and not LABEL.fullmatch(self.tests)):
            raise ValueError(f"expected tests as a statement label of lowercase letters, digits and '-' "
                             f"(e.g. 'hein-thm-3-1'), or '', got {self.tests!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"expected scope in {SCOPES}, got {self.scope!r}")
        if self.scope == SEEDS and not over_seeds:
            raise ValueError(f"expected an interval over training seeds (claims.seed_interval) for a claim "
                             f"of scope {SEEDS!r}, got one from {self.estimate.method!r}")

    @property
    def verdict(self) -> str:
        return decide(self.estimate, self.threshold, self.direction)

    @property
    def asserted(self) -> bool:
        """Whether a chapter may fail on this claim: its scope covers the training variance or every model."""
        return self.expected is not None and self.scope in ASSERTED

    @property
    def contradicted(self) -> bool:
        """True when an asserted claim's evidence contradicts what the chapter expects, beyond the interval.

        A claim about one trained model is never contradicted here: its verdict is reported.
        """
        return self.asserted and ((self.expected == HOLDS and self.verdict == FAILS) or (
            self.expected == FAILS and self.verdict == HOLDS))

    @property
    def scope_label(self) -> str:
        """The scope as tables show it: ``3 training seeds``, ``one trained model``, ``every model (…)``."""
        if self.scope == SEEDS:
            return self.estimate.method.removeprefix("t-interval over ")
        if self.scope == THEOREM:
            return "every model (sanity check)" if self.sanity else "every model (theorem)"
        return MODEL

    def ours(self) -> str:
        """Our value with its interval and the test, e.g. ``2.4 [0.9, 3.8] > 0``."""
        return f"{self.estimate:{self.fmt}} {self.direction} {self.threshold:{self.fmt}}"

    def as_row(self) -> dict[str, str]:
        return {"claim": self.statement + (" (sanity check)" if self.sanity else ""), "paper": self.paper,
                "paper value": self.paper_value, "measured": self.quantity, OURS: self.ours(),
                "interval from": self.estimate.method, "scope": self.scope_label, "verdict": self.verdict,
                "expected here": self.expected or "—", "asserted": "yes" if self.asserted else "no",
                "note": self.note, "tests": self.tests or "—"}


def contradicted(claims: Sequence[Claim], profile: object | None = None) -> list[str]:
    """One line per claim whose verdict contradicts the chapter's expectation beyond its interval.

    A chapter ends with ``assert not ol.claims.contradicted(claims, profile)``; inconclusive verdicts
    never count. A profile with ``assert_claims`` false (``smoke``: the paper's code paths at toy
    sizes, where no verdict means anything) gets an empty list, and a printed count instead.
    """
    lines = [f"- {c.statement}: expected '{c.expected}', evidence says '{c.verdict}' "
             f"({c.quantity} = {c.ours()})" for c in claims if c.contradicted]
    if profile is not None and not getattr(profile, "assert_claims", True):
        print(f"profile {getattr(profile, 'name', '?')}: claims reported, not asserted (toy sizes); "
              f"{len(lines)} of {len(claims)} would be contradicted here")
        return []
    return lines


def check(claims: Sequence[Claim]) -> None:
    """Raise ``AssertionError`` listing every claim whose verdict contradicts the chapter's expectation.

    Inconclusive verdicts never fail; they are shown in the table.
    """
    bad = [c for c in claims if c.contradicted]
    if bad:
        lines = [f"- {c.statement}: expected '{c.expected}', evidence says '{c.verdict}' "
                 f"({c.quantity} = {c.ours()})" for c in bad]
        raise AssertionError("claims contradicted beyond their intervals (update the chapter's text, "
                             "or find the bug):\n" + "\n".join(lines))


def table(claims: Sequence[Claim], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The claims as the chapter's table (one row per claim); a ``tests`` column (the label of the statement
    a claim tests) when any claim tests one."""
    df = pd.DataFrame([c.as_row() for c in claims])
    cols = list(columns) if columns is not None else [
        "claim", "paper", "paper value", "measured", OURS, "interval from", "scope", "verdict"] + (
        ["tests"] if any(c.tests for c in claims) else [])
    return df[cols]


# --------------------------------------------------------------------------- record and export


def report(chapter: str, claims: Sequence[Claim], profile: object) -> pd.DataFrame:
    """Record a chapter's claims (:func:`record`) and return its table for display.

    ``profile`` is the chapter's :class:`oodlib.profiles.Profile` (its name and seed key the record).
    """
    name, seed = getattr(profile, "name", None), getattr(profile, "seed", None)
    if not isinstance(name, str) or not isinstance(seed, int):
        raise ValueError(f"expected an oodlib.profiles.Profile, got {type(profile).__name__}")
    record(chapter, claims, name, seed)
    return table(claims)


def claims_dir() -> Path:
    """Where chapters record their claims: ``$OODLIB_CLAIMS`` or ``<zoo cache>/claims``."""
    env = os.environ.get("OODLIB_CLAIMS", "").strip()
    if env:
        return Path(env).expanduser()
    return cache_dir() / "claims"


def record(chapter: str, claims: Sequence[Claim], profile_name: str, seed: int, folder: Path | None = None
           ) -> Path:
    """Store a chapter's claims as JSON (a file per chapter, profile and seed; default
    :func:`~oodlib.claims.claims_dir`)."""
    if not isinstance(chapter, str) or not chapter.replace("_", "").isalnum():
        raise ValueError(f"expected chapter as letters, digits and '_' (e.g. '06_atom'), got {chapter!r}")
    folder = folder or claims_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{chapter}-{profile_name}-seed{seed}.json"
    rows = []
    for c in claims:
        d = asdict(c)
        d["estimate"] = {k: (str(v) if isinstance(v, float) and math.isinf(v) else v)  # "inf" / "-inf"
                         for k, v in asdict(c.estimate).items()}
        d["verdict"] = c.verdict
        rows.append(d)
    atomic_write(path, json.dumps({"chapter": chapter, "profile": profile_name, "seed": seed, "claims": rows},
                                  indent=1, default=float))
    return path


def load(profile_name: str = "ci", seed: int = 0, folder: Path | None = None) -> list[tuple[str, Claim]]:
    """Every recorded ``(chapter, claim)`` for a profile and seed, in chapter order."""
    folder = folder or claims_dir()
    out = []
    for path in sorted(folder.glob(f"*-{profile_name}-seed{seed}.json")):
        blob = json.loads(path.read_text())
        for d in blob["claims"]:
            d = dict(d)
            d.pop("verdict", None)
            e = d.pop("estimate")
            for key, unbounded in (("value", None), ("lo", -math.inf), ("hi", math.inf)):  # None: old files
                v = e[key]
                e[key] = float(v) if isinstance(v, str) else (unbounded if v is None else v)
            out.append((blob["chapter"], Claim(estimate=Estimate(**e), **d)))
    return out


def verdict_table(profile_name: str = "ci", seed: int = 0, folder: Path | None = None) -> pd.DataFrame:
    """Every recorded claim of every chapter, one row each: the book's verdict page and the README's table.

    Columns: chapter, claim, paper, paper value, ours with its interval and threshold, the claim's
    scope (what the interval covers), verdict, what the chapter expects here, and the label of the
    statement the claim tests (``tests``, "—" for an empirical result). Raises
    ``FileNotFoundError`` naming the fix when nothing
    was recorded for this profile and seed.
    """
    rows = load(profile_name, seed, folder)
    if not rows:
        raise FileNotFoundError(f"no recorded claims for profile {profile_name!r}, seed {seed} in "
                                f"{folder or claims_dir()}: run the chapters first (make test or make book)")
    keep = ("claim", "paper", "paper value", OURS, "scope", "verdict", "expected here", "tests")
    return pd.DataFrame([{"chapter": ch, **{k: v for k, v in c.as_row().items() if k in keep}}
                         for ch, c in rows])


def markdown(profile_name: str = "ci", seed: int = 0, folder: Path | None = None) -> str:
    """The verdict table of every recorded claim as Markdown (the README's "What reproduces")."""
    df = verdict_table(profile_name, seed, folder).drop(columns="expected here")
    counts = df.verdict.value_counts()
    head = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
    n_asserted = sum(c.asserted for _, c in load(profile_name, seed, folder))
    intro = (f"{len(df)} claims ({head}); profile `{profile_name}`, seed {seed}. {n_asserted} are asserted "
             f"(over training seeds, or for every model); the others describe one trained model and are "
             f"reported.")
    return intro + "\n\n" + df.to_markdown(index=False)


def verdicts_by_seed(profile_name: str, seeds: Sequence[int], folders: Mapping[int, Path] | None = None
                     ) -> pd.DataFrame:
    """Every claim's verdict at each run seed, one row per claim, and whether it moved.

    ``folders`` maps a seed to the claims folder of its run (default: :func:`~oodlib.claims.claims_dir`
    for all).
    Claims are matched by chapter and position in the chapter (a statement may print a number of its
    run); the row shows the first seed's statement and scope. Raises ``ValueError`` when two runs
    recorded different claims for a chapter (not the same code).
    """
    if len(seeds) < 2:
        raise ValueError(f"expected at least two seeds to compare, got {list(seeds)}")
    runs: dict[int, dict[tuple[str, int], Claim]] = {}
    for s in seeds:
        rows = load(profile_name, s, (folders or {}).get(s))
        if not rows:
            raise FileNotFoundError(f"no recorded claims for profile {profile_name!r}, seed {s}")
        pos: dict[str, int] = {}
        runs[s] = {}
        for ch, c in rows:
            runs[s][(ch, pos.setdefault(ch, 0))] = c
            pos[ch] += 1
    keys = list(runs[seeds[0]])
    for s in seeds[1:]:
        if list(runs[s]) != keys:
            raise ValueError(f"expected the same claims at every seed, got {len(keys)} at seed {seeds[0]} "
                             f"and {len(runs[s])} at seed {s} (runs of different code?)")
    out = []
    for k in keys:
        first = runs[seeds[0]][k]
        verdicts = [runs[s][k].verdict for s in seeds]
        out.append({"chapter": k[0], "claim": first.statement + (" (sanity check)" if first.sanity else ""),
                    "scope": first.scope_label,
                    **{f"seed {s}": v for s, v in zip(seeds, verdicts, strict=True)},
                    "moved": "yes" if len(set(verdicts)) > 1 else ""})
    return pd.DataFrame(out)
