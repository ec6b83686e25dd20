"""The paper's number beside ours: the one builder of every such table in the book.

Each chapter prints its paper's numbers beside ours (chapter 02: Hein et al.'s Table 1; 03: ODIN's
Tables 2-3; 04: CCU's Tables 2 and 6; 05: GOOD's Table 1; the single quantities of chapters 00, 01,
03 and 06; chapter 07's accuracy costs). The paper's values live in the method modules (one place
per paper, ``tests/test_paper_numbers.py``); the modules gather ``(paper, ours)`` pairs and this
module lays them out, so every such table marks a missing value the same way and names its
columns the same way: ``"<quantity> paper"`` beside ``"<quantity> ours"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import pandas as pd

from .validation import describe

#: what a table shows where the paper (or our run) has no value
MISSING = "—"


class Pair(NamedTuple):
    """A paper's value beside ours; either may be missing (``None`` or NaN)."""

    paper: object
    ours: object


def is_missing(value: object) -> bool:
    """``None`` or a float NaN: a value the paper (or our run) does not have."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def table(records: Sequence[Mapping[str, object]], index: Sequence[str] = (),
          fmt: Callable[[object], object] | None = None) -> pd.DataFrame:
    """One row per record: the ``index`` labels, then each quantity's paper value beside ours.

    Every key of a record that is not in ``index`` is a column: a :class:`Pair` under key ``q``
    becomes the columns ``"q paper"`` and ``"q ours"`` (``"paper"`` and ``"ours"`` when ``q`` is
    ``""``); any other value is one column ``q`` (a note, the setting, a source). Columns keep the
    order in which they first appear. A missing value (:func:`is_missing`, or a key a record lacks)
    shows :data:`MISSING`; ``fmt`` formats each present value of a pair (default: unchanged).
    """
    if isinstance(records, str | bytes) or not isinstance(records, Sequence) or not records:
        raise ValueError(f"expected a non-empty sequence of records (dicts), got {describe(records)}")
    index = list(index)
    rows, columns = [], {}
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise ValueError(f"expected each record to be a dict, got {describe(rec)} at position {i}")
        lacking = [k for k in index if k not in rec]
        if lacking:
            raise ValueError(f"expected every record to hold the index keys {index}, "
                             f"record {i} lacks {lacking}")
        row = {k: rec[k] for k in index}
        for key, value in rec.items():
            if key in index:
                continue
            if isinstance(value, Pair):
                for side in ("paper", "ours"):
                    name = f"{key} {side}".strip()
                    v = getattr(value, side)
                    row[name] = MISSING if is_missing(v) else (fmt(v) if fmt else v)
                    columns[name] = None
            else:
                row[key] = MISSING if is_missing(value) else value
                columns[key] = None
        rows.append(row)
    out = pd.DataFrame(rows, columns=[*index, *columns]).astype(object).fillna(MISSING)
    return out.set_index(index) if index else out
