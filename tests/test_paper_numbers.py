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

from oodlib import acet, atom, ccu, good

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MODULES = ("acet", "atom", "benchmark", "ccu", "good", "odin_analysis")
# numbers that are part of a method's definition, not a result: Hein et al.'s 99.9 % confidence
# threshold (and 0.999), ODIN's T = 1000.0 and 1.0, CCU's 1.1/M level; and the 0.975 quantile of a
# two-sided 95 % interval (Student's t in chapter 05b), which is also a value of Hein et al.'s Table 1
SETTINGS = {"99.9", "0.999", "1000.0", "100.0", "1.0", "1.1", "0.975"}
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


def test_the_papers_tables_of_every_setting_agree_with_themselves():
    """The per-set tables behind the papers' settings (oodlib.reproduction): checks that can fail on a
    mistyped value — the same number printed in two places of a paper, and each table's shape."""
    assert acet.PAPER_TABLE1 is acet.PAPER_TABLE1_BY_SET["MNIST"]
    for ds, block in acet.PAPER_TABLE1_BY_SET.items():
        assert set(block) == {"plain", "CEDA", "ACET"}
        for model, (test_error, sets) in block.items():
            assert 0 < test_error < 40 and sets[f"{ds} (in)"][1:] == (None, None)
            assert all(0 <= v <= 1 for k, row in sets.items() if k != f"{ds} (in)" for v in row), (ds, model)
    # Hein et al. §5: CEDA is fooled by adversarial noise on SVHN and CIFAR, ACET is not (MMC)
    assert all(acet.PAPER_ADV_NOISE_MMC[ds]["CEDA"] > 0.9 > 0.2 > acet.PAPER_ADV_NOISE_MMC[ds]["ACET"]
               for ds in ("SVHN", "CIFAR-10", "CIFAR-100"))
    assert good.PAPER_TABLE1_BY_SET["MNIST"] is good.PAPER_TABLE1
    for ds, block in good.PAPER_TABLE1_BY_SET.items():
        assert list(block) == list(good.PAPER_TABLE1), ds  # the same 13 rows in each block
        assert all(len(sets) == 4 and all(0 <= v <= 100 for row in sets.values() for v in row)
                   for _, sets in block.values())
    # §4.2's prose: "on SVHN, with 96.3% GOOD100 has a better clean accuracy than all competing methods";
    # "on CIFAR-10, GOOD80 achieves 90.1% ... better than ACET and only slightly worse than CCU and OE"
    svhn, cifar = good.PAPER_TABLE1_BY_SET["SVHN"], good.PAPER_TABLE1_BY_SET["CIFAR-10"]
    assert svhn["GOOD_100"][0] == 96.3 > max(svhn[m][0] for m in ("plain", "CEDA", "OE", "ACET", "CCU"))
    assert cifar["ACET"][0] < cifar["GOOD_80"][0] == 90.1 < min(cifar["CCU"][0], cifar["OE"][0])
    # ATOM's Table 1 at its chosen q is Table 2's row of that q (SVHN: q = 0, CIFAR-10: q = 0.125)
    for ds, q in (("SVHN", "0.0"), ("CIFAR-10", "0.125")):
        fprs = tuple(fpr for fpr, _ in atom.PAPER_TABLE1_BY_SET[ds]["ATOM"])
        assert fprs == atom.PAPER_TABLE2[ds][f"ATOM (q={q})"], ds
    assert atom.PAPER_TABLE1_BY_SET["CIFAR-10"] is atom.PAPER_TABLE1_CIFAR10
    for ds, block in ccu.PAPER_AUROC_BY_SET.items():
        assert all(len(row) == len(ccu.PAPER_METHODS) for row in block.values()), ds
        acet2 = ccu.PAPER_METHODS.index("ACET2")
        assert block["Uniform"][acet2] == 100.0, ds  # Table 4: ACET2 separates uniform noise on every set
