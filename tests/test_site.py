"""The published book: build it with every chapter executed and read the HTML a reader gets.

Runs only with ``pytest --site`` (``make test`` passes it) and after every other test,
so the chapters' models are already in the (fresh) zoo that ``make test`` points
``OODLIB_CACHE`` at. Chapters that nbval already ran in this session are not executed a second
time: their outputs go into the build's jupyter-cache, which the build's ``cache`` mode reads
(``OODLIB_SITE_EXECUTE=1`` makes the build execute every chapter itself). For each chapter page
it checks that all figures the executed notebook produced are on the page and that no cell shows
an error; then a reader's browser (Debian's chromium, headless, through Playwright) opens every
page from disk and checks math, images, console, table of contents and that each exploration's
slider changes its figure (screenshots in _build/site-screenshots); last, a real kernel runs
chapter 00's exploration with widgets on and must make a live widget.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import oodlib

ROOT = Path(__file__).resolve().parents[1]
JB = Path(sys.executable).with_name("jupyter-book")
ERROR_MARKS = ("Traceback (most recent call last)", "output traceback", "ipythontb", "AssertionError",
               "Error executing notebook", "CellExecutionError")

pytestmark = pytest.mark.site


def _executed_by_nbval(session) -> dict[Path, object]:
    """The chapters this pytest session already ran cell by cell under nbval, with their outputs.

    ``make test`` runs every chapter under nbval before the site tests (same profile, same
    environment, same zoo); the book build takes those outputs instead of executing every chapter a
    second time (~5 of its 6 minutes). A chapter counts only if every code cell ran with no error
    and no timeout; any other chapter is executed by the build itself.
    """
    cells: dict[Path, list] = {}
    for item in session.items:
        if type(item).__name__ == "IPyNbCell":
            cells.setdefault(Path(str(item.parent.fspath)).resolve(), []).append(item)
    done = {}
    for path, items in cells.items():
        # nbval's cell items keep what the kernel sent (test_outputs); a version that does not is
        # simply not reused (the build executes the chapter)
        ran = all(getattr(i, "test_outputs", None) is not None and not getattr(i.parent, "timed_out", True)
                  for i in items)
        if not ran or any(o.get("output_type") == "error" for i in items for o in i.test_outputs):
            continue
        nb = items[0].parent.nb  # nbval's copy of the file; its cells are the items' cells
        for i in items:
            i.cell.outputs, i.cell.execution_count = i.test_outputs, i.cell_num + 1
        done[path] = nb
    return done


def _seed_execution_cache(cache_dir: Path, executed: dict[Path, object]) -> list[str]:
    """Put executed chapters into the build's jupyter-cache, where the build's `cache` mode finds them.

    jupyter-cache matches a notebook by a hash of its code cells and kernelspec, so a chapter whose
    source differs from what nbval ran is executed by the build as usual.
    """
    from jupyter_cache import get_cache  # noqa: PLC0415 - a dependency of the book extra only
    from jupyter_cache.base import CacheBundleIn  # noqa: PLC0415

    cache = get_cache(str(cache_dir))
    for path, nb in executed.items():
        cache.cache_notebook_bundle(CacheBundleIn(nb, str(path)), check_validity=False, overwrite=True)
    return sorted(p.stem for p in executed)


@pytest.fixture(scope="module")
def site(request, tmp_path_factory):
    if not JB.exists():
        pytest.fail("jupyter-book is not installed (pip install -e '.[book]')")
    out = Path(os.environ.get("OODLIB_SITE_DIR") or tmp_path_factory.mktemp("site"))
    env = os.environ | {"OODLIB_PROGRESS": "text", "OODLIB_WIDGETS": "off"}
    if not os.environ.get("OODLIB_SITE_EXECUTE"):  # set it to make the build execute every chapter itself
        reused = _seed_execution_cache(out / "_build" / ".jupyter_cache", _executed_by_nbval(request.session))
        print(f"book build: outputs of this session's nbval run reused for {reused or 'no chapter'}")
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


def _executed(site: Path, chapter: str) -> dict:
    """The chapter with the outputs the build rendered, from the build's jupyter-cache.

    (myst-nb writes ``jupyter_execute/*.ipynb`` without outputs when the cache served the chapter.)
    """
    nbformat = pytest.importorskip("nbformat")
    from jupyter_cache import get_cache  # noqa: PLC0415 - a dependency of the book extra only

    source = nbformat.read(ROOT / f"{chapter}.ipynb", as_version=4)
    try:
        _, nb = get_cache(str(site / ".jupyter_cache")).merge_match_into_notebook(source)
    except KeyError:
        pytest.fail(f"{chapter} was not executed (no match in the build's jupyter-cache)")
    return nb


def _png_outputs(nb: dict) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb["cells"] if c["cell_type"] == "code"
               for o in c.get("outputs", []))


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_page_has_its_figures_and_no_errors(site, chapter):
    page = site / "html" / f"{chapter}.html"
    assert page.exists(), f"{page} was not built"
    html = page.read_text(encoding="utf-8")
    for mark in ERROR_MARKS:
        assert mark not in html, f"{chapter}: the page shows an error ({mark!r})"
    nb = _executed(site, chapter)
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{chapter}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    n_png = _png_outputs(nb)
    imgs = re.findall(r'<img[^>]+src="(\.\./_images/[^"]+\.png)"', html)
    assert n_png >= 1, f"{chapter} produced no figure"
    assert len(imgs) >= n_png, f"{chapter}: {n_png} figures executed, {len(imgs)} on the page"
    for src in imgs:
        assert (page.parent / src).resolve().exists(), f"{chapter}: missing image {src}"
    assert re.search(r"<h2>[^<]*claims check", html), f"{chapter}: no claims-check section on the page"
    if re.match(r"notebooks/0[0-7]", chapter):  # issue: exercises and numbered statements, chapters 00-07
        exercises = re.findall(r'<div class="exercise[^"]*" id="([^"]+)"', html)
        kinds = "theorem|proposition|corollary|lemma|definition"
        statements = re.findall(rf'<div class="proof (?:{kinds})\b[^"]*" id="([^"]+)"', html)
        assert len(exercises) >= 3, f"{chapter}: {len(exercises)} exercises on the page"
        assert html.count('class="solution dropdown') >= len(exercises), f"{chapter}: a solution is missing"
        assert statements, f"{chapter}: no numbered theorem or definition on the page"


def _pages(site: Path) -> list[Path]:
    return [site / "html" / "book" / "intro.html", site / "html" / "book" / "notation.html",
            site / "html" / "book" / "api" / "index.html", site / "html" / "book" / "api" / "methods.html",
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


@pytest.mark.parametrize("chapter", _chapters())
def test_chapter_links_the_api_entries_of_what_it_calls(site, chapter):
    """The API reference shows each called function's signature, and the chapter page links to it."""
    html = (site / "html" / f"{chapter}.html").read_text(encoding="utf-8")
    called = oodlib.chapter.calls(ROOT / f"{chapter}.ipynb")
    assert called, f"{chapter} calls no oodlib function?"
    for target in called:
        href = re.search(rf'href="\.\./book/api/(\w+)\.html#{re.escape(target)}"', html)
        assert href, f"{chapter}: no link to the API entry of {target}"
        api = (site / "html" / "book" / "api" / f"{href.group(1)}.html").read_text(encoding="utf-8")
        assert f'id="{target}"' in api, f"{target}: no entry on book/api/{href.group(1)}.html"
    ccu = (site / "html" / "book" / "api" / "methods.html").read_text(encoding="utf-8")
    assert re.search(r'id="oodlib\.ccu\.theorem31".*?<em class="sig-param">.*?model', ccu, re.S), \
        "theorem31's signature is not on the methods page"


def test_verdicts_page_links_claims_to_the_statements_they_test(site):
    """Chapter 08's table links a claim to the numbered statement it tests, on the page that states it."""
    html = (site / "html" / "notebooks" / "08_verdicts.html").read_text(encoding="utf-8")
    links = set(re.findall(r'<a href="(\w+)\.html#([a-z][a-z0-9-]*)">', html))
    stated = oodlib.chapter.statements(ROOT / "notebooks")
    assert links, "chapter 08 links no claim to a statement"
    for page, label in links:
        assert label in stated and stated[label].page == page, (page, label)
        target = (site / "html" / "notebooks" / f"{page}.html").read_text(encoding="utf-8")
        assert f'id="{label}"' in target, f"{page}.html has no anchor {label}"


def test_landing_page_shows_the_heatmap_chapter_07_drew_in_this_build(site):
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from landing_heatmap import SHOWN, drawn_by_chapter_07  # noqa: PLC0415 - the book's own extension

    fresh = drawn_by_chapter_07(ROOT)
    assert fresh.exists(), f"chapter 07 did not save {fresh}"
    assert f"_images/{SHOWN}" in (site / "html" / "book" / "intro.html").read_text(encoding="utf-8")
    assert (site / "html" / "_images" / SHOWN).read_bytes() == fresh.read_bytes()


def test_formulas_are_typeset_by_the_bundled_mathjax(site):
    page = site / "html" / "book" / "notation.html"
    html = page.read_text(encoding="utf-8")
    assert re.search(r'<script\b[^>]*src="[^"]*_static/mathjax/tex-chtml\.js', html), "no local MathJax"
    assert (site / "html" / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert 'class="math' in html  # formulas are marked up for MathJax


# --- a reader's browser: Debian's chromium, headless, driven by Playwright -------------------------

SHOTS = ROOT / "_build" / "site-screenshots"
# typeset math leaves MathJax's elements; raw TeX delimiters in the visible text mean it did not run
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$")
# what the page reports once MathJax has finished and every image (explorer frames included) decoded
PAGE_STATE_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await Promise.all([...document.images].map(img => img.complete ? null
      : new Promise(done => { img.onload = img.onerror = done; })));
  const main = document.querySelector("main") || document.body;
  return {
    mathMarked: document.querySelectorAll(".math, .MathJax, mjx-container").length,
    mathTypeset: document.querySelectorAll("mjx-container").length,
    text: main.innerText,
    broken: [...document.images].filter(img => !(img.naturalWidth > 0)).map(img => img.src.slice(0, 80)),
    images: document.images.length,
    exercises: document.querySelectorAll("div.exercise").length,
    statements: document.querySelectorAll("div.proof.theorem, div.proof.proposition, div.proof.corollary, "
        + "div.proof.lemma, div.proof.definition").length,
    solutions: document.querySelectorAll("div.solution").length,
    solutionsOpen: [...document.querySelectorAll("div.solution")]
        .filter(d => !d.classList.contains("toggle-hidden")).map(d => d.id),
    tocLinks: [...document.querySelectorAll("nav.bd-links a[href], .bd-sidenav a[href]")]
        .map(a => a.href).filter(h => h.startsWith("file:")),
  };
}"""
# moves each exploration's first control with two positions or more; the frames shown before and after
EXPLORE_JS = """() => [...document.querySelectorAll(".oodlib-explorer")].map(root => {
  const shown = () => [...root.querySelectorAll("img[data-key]")].filter(i => i.style.display !== "none")
      .map(i => i.getAttribute("data-key"));
  const before = shown();
  const size = el => el.tagName === "SELECT" ? el.options.length : (+el.max + 1);
  const el = [...root.querySelectorAll("input[type=range][data-axis], select[data-axis]")]
      .find(c => size(c) > 1);
  if (!el) { return {before, after: before, moved: false}; }
  el.value = String((+el.value + 1) % size(el));
  el.dispatchEvent(new Event("input", {bubbles: true}));
  return {before, after: shown(), moved: true};
})"""


def _read_like_a_reader(browser, page_path: Path) -> tuple[dict, list[str], list]:
    """Open one page from disk, as the README tells readers to; what it shows and what went wrong.

    ``browser`` is the Chromium of ``tests/conftest.py``.
    """
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url[:100]} ({r.failure})"))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "blob:"))
            else problems.append(f"network request: {r.url[:100]}"))
    page.goto(page_path.as_uri(), wait_until="load")
    state = page.evaluate(PAGE_STATE_JS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{page_path.stem}.png"))
    explorations = page.evaluate(EXPLORE_JS)
    page.close()
    return state, problems, explorations


@pytest.fixture(scope="module")
def readings(site, browser) -> dict[str, tuple[dict, list[str], list]]:
    """Every page read once in the browser (screenshots written as it goes)."""
    return {path.stem: _read_like_a_reader(browser, path) for path in _pages(site)}


def test_every_page_reads_in_a_real_browser(readings):
    """Headless Chromium opens each page from disk: math typeset, images decoded, no errors, TOC resolves.

    A screenshot of each page is written under _build/site-screenshots (look there when it fails).
    """
    failures = []
    for name, (state, problems, _) in readings.items():
        failures += [f"{name}: {p}" for p in problems]
        if state["mathMarked"] and not state["mathTypeset"]:
            failures.append(f"{name}: {state['mathMarked']} formulas marked up, none typeset by MathJax")
        if raw := RAW_TEX.findall(state["text"]):
            failures.append(f"{name}: raw TeX delimiters left in the text: {raw[:5]}")
        failures += [f"{name}: image did not load: {src}" for src in state["broken"]]
        failures += [f"{name}: the page shows {mark!r}" for mark in ("Traceback", "AssertionError")
                     if mark in state["text"]]
        for href in state["tocLinks"]:
            target = Path(href.removeprefix("file://").split("#")[0].split("?")[0])
            if not target.exists():
                failures.append(f"{name}: table-of-contents link to a missing page: {href}")
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:60])
    assert readings["notation"][0]["mathTypeset"] > 0, "the notation page typeset no formula"
    assert (SHOTS / "notation.png").exists()


def test_chapters_show_exercises_with_folded_solutions_and_numbered_statements(readings):
    """Each chapter 00-07, as a reader sees it: its exercises, their solutions folded until asked for, and the
    papers' statements numbered ("Theorem 2 (Hein et al. (2019), Theorem 3.1)")."""
    chapters = [Path(c).name for c in _chapters() if re.match(r"notebooks/0[0-7]", c)]
    assert len(chapters) == 9, chapters
    for name in chapters:
        state = readings[name][0]
        assert state["exercises"] >= 3 <= state["solutions"], (name, state["exercises"], state["solutions"])
        assert not state["solutionsOpen"], f"{name}: solutions shown unfolded: {state['solutionsOpen']}"
        assert state["statements"] >= 1, f"{name}: no numbered statement"
        assert re.search(r"Exercise \d+", state["text"]), f"{name}: no numbered exercise in the text"


def test_api_reference_shows_a_rendered_signature_in_the_browser(readings):
    """The API reference, opened in Chromium, shows a function's signature as a reader sees it."""
    text = readings["methods"][0]["text"]
    assert re.search(r"oodlib\.ccu\.theorem31\(\s*model,\s*z,\s*x_train\s*\)", text), text[:500]


def test_explorations_move_without_a_kernel(readings):
    """Each chapter's exploration is a slider in the static page: moving it shows another frame."""
    moved = []
    for name, (_, _, explorations) in readings.items():
        for k, e in enumerate(explorations):
            where = f"{name}, exploration {k}"
            assert len(e["before"]) == 1, f"{where}: {len(e['before'])} frames shown at once"
            if e["moved"]:
                assert e["after"] != e["before"] and len(e["after"]) == 1, f"{where}: {e}"
                moved.append(name)
    explored = {Path(c).name for c in _chapters() if "explorer.explore(" in (ROOT / f"{c}.ipynb").read_text()}
    assert explored <= set(moved), f"no moving exploration on {sorted(explored - set(moved))}"


def test_a_chapter_exploration_is_a_live_widget_in_a_kernel(site, monkeypatch):
    """In JupyterLab (widgets on) the same cell makes a live ipywidgets control, not the static frames.

    Runs chapter 00 in a real kernel up to its exploration (the zoo is filled by then).
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(ROOT / "notebooks" / "00_ood_detection_basics.ipynb", as_version=4)
    cut = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "explorer.explore(" in c.source)
    nb.cells = nb.cells[: cut + 1]
    monkeypatch.setenv("OODLIB_WIDGETS", "on")  # the kernel inherits this process's environment
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = nb.cells[cut].outputs
    kinds = {k for o in outputs for k in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in kinds, f"no live widget; outputs: {kinds}"
    assert not any("oodlib-explorer" in o.get("data", {}).get("text/html", "") for o in outputs)
