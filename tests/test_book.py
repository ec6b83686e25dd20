"""The book builds (execution off) without Sphinx warnings.

`make book` executes the notebooks; here we only check the book's structure:
the table of contents, the bibliography, cross-references and markdown all
build cleanly with ``-W`` (warnings are errors).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from oodlib import chapter

ROOT = Path(__file__).resolve().parents[1]
JB = Path(sys.executable).with_name("jupyter-book")


def test_toc_lists_existing_files():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for p in toc["parts"] for c in p["chapters"]]
    for f in files:
        assert any((ROOT / f).with_suffix(s).exists() for s in (".md", ".ipynb")), f
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert f"notebooks/{nb.stem}" in files, f"{nb.name} is missing from book/_toc.yml"


@pytest.mark.site  # a whole Sphinx build (tens of seconds): make test runs it, make unit does not
@pytest.mark.skipif(not JB.exists(), reason="jupyter-book not installed (pip install -e '.[book]')")
def test_book_builds_without_warnings(tmp_path):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    # local extensions are found relative to the config file, which moves to tmp_path here
    local = config["sphinx"].get("local_extensions", {})
    config["sphinx"]["local_extensions"] = {name: str(ROOT / path) for name, path in local.items()}
    cfg = tmp_path / "_config.yml"
    cfg.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(JB), "build", str(ROOT), "--toc", str(ROOT / "book" / "_toc.yml"), "--config", str(cfg),
         "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    html = out / "_build" / "html"
    assert (html / "book" / "intro.html").exists()
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert (html / "notebooks" / f"{nb.stem}.html").exists(), nb.stem
    shutil.rmtree(out, ignore_errors=True)


API = ROOT / "book" / "api"


def test_api_reference_documents_every_module_once():
    """Each oodlib module has one ``automodule`` on one API page, and every API page is in the TOC."""
    modules = sorted(p.stem for p in (ROOT / "oodlib").glob("*.py") if not p.stem.startswith("_"))
    documented = [m for page in sorted(API.glob("*.md"))
                  for m in re.findall(r"^\.\. automodule:: oodlib\.(\w+)$", page.read_text(), re.M)]
    assert sorted(documented) == modules, (set(modules) ^ set(documented)) or "a module documented twice"
    toc = (ROOT / "book" / "_toc.yml").read_text()
    for page in API.glob("*.md"):
        assert f"book/api/{page.stem}" in toc, f"{page.name} is not in book/_toc.yml"


def test_chapter_to_modules_table_matches_the_chapters_code():
    table = (API / "index.md").read_text()
    rows = dict(re.findall(r"^\| \[(\w+)\]\([^)]*\) \| (.*) \|$", table, re.M))
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(rows) == chapters, "book/api/index.md: one row per chapter"
    for stem in chapters:
        listed = re.findall(r"`(\w+) <oodlib\.\1>`", rows[stem])
        called = sorted({t.split(".")[1] for t in chapter.calls(ROOT / "notebooks" / f"{stem}.ipynb")})
        assert listed == called, f"{stem}: the table lists {listed}, the code calls {called}"


def test_calls_reads_a_chapters_code(tmp_path):
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["ol.ccu.theorem31 in prose is not a call"]},
        {"cell_type": "code", "source": ["import oodlib as ol\n", "from oodlib import odin\n",
                                         "profile, device = ol.setup()\n", "b = ol.claims.bootstrap\n",
                                         "s = odin.odin(m, x)\n", "k = ol.data.FASHION_CLASSES\n",
                                         "ol.nomodule.f()\n", "ol.ccu.not_there\n"]}]}
    path = tmp_path / "c.ipynb"
    path.write_text(json.dumps(nb))
    # re-exports are given where they are defined; constants, unknown names and prose are left out
    assert chapter.calls(path) == ["oodlib.chapter.setup", "oodlib.intervals.bootstrap", "oodlib.odin.odin"]
    with pytest.raises(ValueError, match="notebook"):
        chapter.calls(tmp_path / "missing.ipynb")


def test_statements_reads_the_labelled_prf_directives(tmp_path):
    def notebook(name: str, *markdown: str) -> None:
        cells = [{"cell_type": "markdown", "metadata": {}, "source": m} for m in markdown]
        (tmp_path / f"{name}.ipynb").write_text(json.dumps({"cells": cells}))

    notebook("01_a", "text\n\n```{prf:theorem} Hein et al. (2019), Theorem 3.1\n:label: hein-thm-3-1\n\n"
             "statement\n```\n\n```{prf:proof}\nsketch\n```\n")
    notebook("02_b", "```{prf:definition} AUROC\n:label: def-auroc\n:nonumber:\n\nx\n```",
             "```{exercise} not a statement\n:label: ex-1\n```")
    found = chapter.statements(tmp_path)
    assert set(found) == {"hein-thm-3-1", "def-auroc"}
    thm = found["hein-thm-3-1"]
    assert (thm.page, thm.kind, thm.title) == ("01_a", "theorem", "Hein et al. (2019), Theorem 3.1")
    assert thm.link("02_b") == '<a href="01_a.html#hein-thm-3-1">Hein et al. (2019), Theorem 3.1</a>'
    assert thm.link("01_a") == '<a href="#hein-thm-3-1">Hein et al. (2019), Theorem 3.1</a>'
    notebook("03_c", "```{prf:lemma} again\n:label: def-auroc\n```")
    with pytest.raises(ValueError, match="once"):
        chapter.statements(tmp_path)
    with pytest.raises(ValueError, match="no .ipynb"):
        chapter.statements(tmp_path / "empty")
