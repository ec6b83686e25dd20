"""The repository explains itself: every section of docs/design.md that code cites exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"
SOURCES = sorted(p for d in ("oodlib", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py"))
# "docs/design.md, pitfall 4" or 'docs/design.md, "Measured on these machines"' (a title may wrap lines)
CITATION = re.compile(r'docs/design\.md,\s+(?:pitfall\s+(\d+)|"([^"]+)")', re.IGNORECASE)


def _headings() -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^#{2,4}\s+(.+)$", DESIGN.read_text(), re.MULTILINE)}


def citations() -> list[tuple[str, str]]:
    """Every ``(file, cited section)`` in the code: ``Pitfall N`` or a quoted section title."""
    out = []
    for path in SOURCES:
        text = path.read_text()
        for m in CITATION.finditer(text):
            section = f"Pitfall {m.group(1)}" if m.group(1) else " ".join(m.group(2).split())
            out.append((path.relative_to(ROOT).as_posix(), section))
    return out


def test_every_cited_section_exists():
    heads = _headings()
    cited = citations()
    assert len(cited) >= 10  # the pitfalls and the measurements are cited across the package
    missing = [(f, s) for f, s in cited
               if not any(h == s or h.startswith(f"{s}:") for h in heads)]
    assert not missing, f"docs/design.md lacks the sections cited by {missing}; its sections: {sorted(heads)}"


def test_code_cites_no_document_outside_the_repository():
    founding = "design.md".upper().replace(".MD", ".md")  # the founding design beside the repository
    offenders = [p.relative_to(ROOT).as_posix() for p in SOURCES
                 if p.name != "test_design_doc.py" and founding in p.read_text()]
    assert not offenders, f"{offenders} cite {founding}, which is not in the repository: cite docs/design.md"
