"""Each chapter teaches by exercises with tested solutions and states the papers' results as statements.

Read statically from the notebooks (``make test`` executes them: a code solution that fails its
``assert`` fails its chapter). For chapters 00–07:

* 3 or more ``{exercise}`` directives, each followed by its ``{solution}`` (folded: ``:class: dropdown``);
* a code solution is the code cell right after a solution, hidden in the book and in JupyterLab
  (tag ``hide-cell``, ``source_hidden``), and it asserts its answer; each chapter has two or more;
* one or more labelled ``{prf:...}`` statements (theorem, proposition, corollary, lemma,
  definition); a paper's statement carries the paper's own number in its title;
* every ``tests="label"`` of a claim names a statement of the book.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from oodlib import chapter

ROOT = Path(__file__).resolve().parents[1]
TOC = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
CHAPTERS = [ROOT / f"{c['file']}.ipynb" for p in TOC["parts"] for c in p["chapters"]
            if re.match(r"notebooks/0[0-7]", c["file"])]
EXERCISE = re.compile(r"^(`{3,}|:{3,})\{exercise\}.*\n(?::\w+:.*\n)*?:label:\s*(\S+)", re.M)
SOLUTION = re.compile(r"^(`{3,}|:{3,})\{solution\}\s*(\S+)[ \t]*\n((?::\w+:.*\n)*)", re.M)
PAPERS = ("hein", "odin", "ccu", "good", "atom")
NUMBERED = re.compile(r"\b(Theorem|Proposition|Corollary|Lemma|Definition|[Ee]qs?\.|Equations?) [A-Z]?\.?\d")


def _cells(path: Path) -> list[dict]:
    return [c | {"text": "".join(c["source"])} for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]


def _hidden(cell: dict) -> bool:
    meta = cell.get("metadata", {})
    return "hide-cell" in meta.get("tags", []) and meta.get("jupyter", {}).get("source_hidden") is True


def test_chapters_00_to_07_are_checked():
    assert len(CHAPTERS) == 9, [p.name for p in CHAPTERS]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_exercises_with_solutions(path):
    cells = _cells(path)
    exercises, solved, code = [], {}, 0
    for i, c in enumerate(cells):
        if c["cell_type"] != "markdown":
            continue
        exercises += [m.group(2) for m in EXERCISE.finditer(c["text"] + "\n")]
        for m in SOLUTION.finditer(c["text"] + "\n"):
            assert m.group(2) in exercises, f"{path.stem}: a solution of {m.group(2)!r} before its exercise"
            assert ":class: dropdown" in m.group(3), f"{path.stem}: solution of {m.group(2)} is not folded"
            solved[m.group(2)] = i
            nxt = cells[i + 1] if i + 1 < len(cells) else None
            if nxt is not None and nxt["cell_type"] == "code" and _hidden(nxt):
                code += 1
                assert re.search(r"^\s*assert\b", nxt["text"], re.M), \
                    f"{path.stem}: the code solution of {m.group(2)} asserts nothing"
    assert len(exercises) >= 3, f"{path.stem}: {len(exercises)} exercises, expected 3 or more"
    assert len(set(exercises)) == len(exercises), f"{path.stem}: an exercise label given twice"
    unsolved = sorted(set(exercises) - set(solved))
    assert not unsolved, f"{path.stem}: no solution for {unsolved}"
    assert code >= 2, f"{path.stem}: {code} code solutions, expected 2 or more"
    stray = [c["id"] for c in cells if c["cell_type"] == "code"
             and "hide-cell" in c["metadata"].get("tags", []) and not _hidden(c)]
    assert not stray, f"{path.stem}: solution cells {stray} are not hidden in JupyterLab (source_hidden)"


def test_statements_are_numbered_labelled_and_claims_link_to_them():
    found = chapter.statements(ROOT / "notebooks")  # raises on a label given twice
    for path in CHAPTERS:
        assert any(s.page == path.stem for s in found.values()), f"{path.stem} states no numbered statement"
    for s in found.values():
        if s.label.split("-")[0] in PAPERS:
            assert NUMBERED.search(s.title), f"{s.label}: title {s.title!r} lacks the paper's number"
    exercise_labels = [m.group(2) for p in CHAPTERS for c in _cells(p) if c["cell_type"] == "markdown"
                       for m in EXERCISE.finditer(c["text"] + "\n")]
    assert len(set(exercise_labels)) == len(exercise_labels), "an exercise label is used in two chapters"
    assert not set(exercise_labels) & set(found), "an exercise and a statement share a label"
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join(c["text"] for c in _cells(path) if c["cell_type"] == "code")
        for label in re.findall(r"\btests=[\"']([^\"']+)[\"']", code):
            assert label in found, f"{path.stem}: a claim tests {label!r}, which no chapter states"
