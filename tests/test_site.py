"""The published book: build it with every chapter executed and read the HTML a reader gets.

Runs only with ``pytest --site`` (``make test`` passes it) and after every other test,
so the chapters' models are already in the (fresh) zoo that ``make test`` points
``OODLIB_CACHE`` at. For each chapter page it checks that all figures the executed
notebook produced are on the page and that no cell shows an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
JB = Path(sys.executable).with_name("jupyter-book")
ERROR_MARKS = ("Traceback (most recent call last)", "output traceback", "ipythontb", "AssertionError",
               "Error executing notebook", "CellExecutionError")

pytestmark = pytest.mark.site


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not JB.exists():
        pytest.fail("jupyter-book is not installed (pip install -e '.[book]')")
    out = Path(os.environ.get("OODLIB_SITE_DIR") or tmp_path_factory.mktemp("site"))
    env = os.environ | {"OODLIB_PROGRESS": "text", "OODLIB_WIDGETS": "off"}
    proc = subprocess.run(
        [str(JB), "build", str(ROOT), "--toc", str(ROOT / "book" / "_toc.yml"), "--config",
         str(ROOT / "_config.yml"), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=3000, env=env,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, "book build failed or warned:\n" + log[-6000:]
    yield out / "_build"
    if not os.environ.get("OODLIB_SITE_DIR"):
        shutil.rmtree(out, ignore_errors=True)


def _chapters() -> list[str]:
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    return [c["file"] for p in toc["parts"] for c in p["chapters"] if c["file"].startswith("notebooks/")]


def _png_outputs(nb_path: Path) -> int:
    nb = json.loads(nb_path.read_text())
    return sum("image/png" in o.get("data", {}) for c in nb["cells"] if c["cell_type"] == "code"
               for o in c.get("outputs", []))


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_page_has_its_figures_and_no_errors(site, chapter):
    page = site / "html" / f"{chapter}.html"
    assert page.exists(), f"{page} was not built"
    html = page.read_text(encoding="utf-8")
    for mark in ERROR_MARKS:
        assert mark not in html, f"{chapter}: the page shows an error ({mark!r})"
    executed = site / "jupyter_execute" / f"{chapter}.ipynb"
    assert executed.exists(), f"{chapter} was not executed"
    nb = json.loads(executed.read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{chapter}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    n_png = _png_outputs(executed)
    imgs = re.findall(r'<img[^>]+src="(\.\./_images/[^"]+\.png)"', html)
    assert n_png >= 1, f"{chapter} produced no figure"
    assert len(imgs) >= n_png, f"{chapter}: {n_png} figures executed, {len(imgs)} on the page"
    for src in imgs:
        assert (page.parent / src).resolve().exists(), f"{chapter}: missing image {src}"
    assert re.search(r"<h2>[^<]*claims check", html), f"{chapter}: no claims-check section on the page"


def _pages(site: Path) -> list[Path]:
    return [site / "html" / "book" / "intro.html", site / "html" / "book" / "notation.html",
            *[site / "html" / f"{c}.html" for c in _chapters()]]


def test_pages_load_nothing_from_the_network(site):
    """The book reads offline: no script, stylesheet or image comes from another host, MathJax included."""
    for page in _pages(site):
        html = page.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link|img)\b[^>]*(?:src|href)="((?:https?:)?//[^"]+)"', html)
        assert not remote, f"{page.name} loads {remote[:3]} from the network"
        for src in re.findall(r'<script\b[^>]*src="([^"]*mathjax[^"]*)"', html):
            path = src.split("?")[0]
            assert (page.parent / path).resolve().exists(), f"{page.name}: MathJax script {src} missing"


def test_formulas_are_typeset_by_the_bundled_mathjax(site):
    page = site / "html" / "book" / "notation.html"
    html = page.read_text(encoding="utf-8")
    assert re.search(r'<script\b[^>]*src="[^"]*_static/mathjax/tex-chtml\.js', html), "no local MathJax"
    assert (site / "html" / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert 'class="math' in html  # formulas are marked up for MathJax
