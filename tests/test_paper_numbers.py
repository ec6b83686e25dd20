"""Paper numbers live in oodlib, one table per paper; the notebooks read them, never type them.

A number the book prints beside ours is checked once, where it is written down (the ``PAPER_*``
tables of :mod:`oodlib.acet`, :mod:`oodlib.atom`, :mod:`oodlib.benchmark`, :mod:`oodlib.ccu`,
:mod:`oodlib.good`, :mod:`oodlib.odin_analysis`). Two rules make a notebook that types one fail:

* a claim's ``paper_value=`` is never a string literal with a digit in it (it is built from a table);
* no markdown or code cell holds a decimal number (three or more significant digits) that is a value
  of those tables, unless it names a theorem, section or table (``Theorem 3.1``, ``§4.3``), or is
  one of the settings listed in :data:`SETTINGS` (a threshold or radius the method is defined by).

What this cannot catch: a paper number that is in no table (add the table first, then the rule
sees it) or one with fewer than three significant digits.
"""

from __future__ import annotations

import importlib
import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MODULES = ("acet", "atom", "benchmark", "ccu", "good", "odin_analysis")
# numbers that are part of a method's definition, not a result: Hein et al.'s 99.9 % confidence
# threshold (and 0.999), ODIN's T = 1000.0 and 1.0, CCU's 1.1/M level
SETTINGS = {"99.9", "0.999", "1000.0", "100.0", "1.0", "1.1"}
NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+)(?![\w.])")
REFERENCE = re.compile(r"(Theorem|Thm\.?|Corollary|Cor\.|Lemma|Prop\.|Proposition|§|App\.|Appendix|Section|"
                       r"eq\.|Table|Fig\.|Figure)\s*-?$")


def _flatten(x: object, out: set[float]) -> None:
    if isinstance(x, bool):
        return
    if isinstance(x, int | float):
        if math.isfinite(x):
            out.add(round(float(x), 4))
    elif isinstance(x, dict):
        for v in x.values():
            _flatten(v, out)
    elif isinstance(x, list | tuple):
        for v in x:
            _flatten(v, out)


def paper_values() -> set[float]:
    """Every number of oodlib's paper tables (module attributes whose name contains ``PAPER``)."""
    out: set[float] = set()
    for name in MODULES:
        module = importlib.import_module(f"oodlib.{name}")
        for attr in dir(module):
            if "PAPER" in attr:
                _flatten(getattr(module, attr), out)
    return out


def _significant(text: str) -> int:
    return len(text.replace(".", "").lstrip("0"))


def typed_paper_numbers(text: str, values: set[float]) -> list[str]:
    """The decimal numbers of ``text`` that are values of a paper table and not a reference or setting."""
    hits = []
    for m in NUMBER.finditer(text):
        s = m.group(1)
        if s in SETTINGS or _significant(s) < 3 or round(float(s), 4) not in values:
            continue
        if REFERENCE.search(text[max(0, m.start() - 14):m.start()]):
            continue
        hits.append(s)
    return hits


def test_the_rule_catches_a_typed_number_and_spares_references():
    values = {96.7, 3.1, 0.102}
    assert typed_paper_numbers("the paper's AUROC is 96.7 %", values) == ["96.7"]
    assert typed_paper_numbers("MMC 0.102 in Table 1", values) == ["0.102"]
    assert typed_paper_numbers("Theorem 3.1 and Corollary 3.1; §4.3", values | {4.3}) == []
    assert typed_paper_numbers("threshold 99.9 %, figsize=(5, 3.4)", values | {99.9, 3.4}) == []
    assert len(paper_values()) > 100  # the tables are there


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_read_paper_numbers_from_oodlib(path):
    values = paper_values()
    bad = []
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        src = "".join(cell["source"])
        for line in src.splitlines():
            if cell["cell_type"] == "code" and re.search(r"paper_value\s*=\s*\"[^\"{]*\d", line):
                bad.append(f"cell {i}: paper_value typed as a literal: {line.strip()}")
            hits = typed_paper_numbers(line, values)
            if hits:
                bad.append(f"cell {i}: {hits} typed (read it from oodlib's paper table): {line.strip()[:90]}")
    assert not bad, f"{path.name}:\n" + "\n".join(bad)
