"""JupyterLab shows a chapter as the book does: MyST markup rendered by jupyterlab-myst, math typeset.

Starts a real JupyterLab server on a copy of chapter 00 (Lab autosaves; the repository's
notebooks stay untouched), opens it in headless Chromium and reads the rendered markdown cells.
A screenshot goes to _build/site-screenshots/lab-00.png. Skips, saying why, without the ``lab``
extra, Playwright or a Chromium (``make test`` installs all three on Debian as root).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.site  # starts JupyterLab and a browser: make test runs it, make unit does not
CHAPTER = "00_ood_detection_basics.ipynb"
SHOTS = ROOT / "_build" / "site-screenshots"
# the text of every rendered markdown cell (jupyterlab-myst renders into ".myst", Lab's own
# renderer into ".jp-RenderedMarkdown") and how many formulas are typeset (KaTeX or MathJax)
MARKDOWN = ".jp-MarkdownCell .myst, .jp-MarkdownCell .jp-RenderedMarkdown"
RENDERED_JS = """() => {
  const cells = [...document.querySelectorAll(MARKDOWN)];
  return {myst: document.querySelectorAll(".jp-MarkdownCell .myst").length,
          text: cells.map(c => c.innerText).join("\\n"),
          math: cells.reduce((n, c) => n + c.querySelectorAll("mjx-container, .katex, math").length, 0),
          sample: cells.length ? cells[0].innerHTML.slice(0, 1500) : "",
          cells: cells.length};
}""".replace("MARKDOWN", repr(MARKDOWN))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    pytest.importorskip("jupyterlab", reason="the lab extra is not installed (pip install -e '.[lab]')")
    pytest.importorskip("jupyterlab_myst", reason="jupyterlab-myst (lab extra) is not installed")
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / CHAPTER, root / CHAPTER)
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
           f"--LabApp.workspaces_dir={root / 'workspaces'}", "--LabApp.news_url=None"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/lab", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            proc.terminate()
            pytest.fail("JupyterLab did not start in 60 s:\n" + proc.communicate(timeout=10)[1][-3000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_lab_renders_the_chapters_myst_markup(lab, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{lab}/lab/tree/{CHAPTER}")
    page.wait_for_selector(MARKDOWN, timeout=120_000)
    for _ in range(60):  # math is typeset after the cells render
        rendered = page.evaluate(RENDERED_JS)
        if rendered["math"]:
            break
        page.wait_for_timeout(500)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "lab-00.png"))
    page.close()
    # Lab draws cells as they scroll into view: the first ones suffice, and the first one cites
    first = next(c for c in json.loads((ROOT / "notebooks" / CHAPTER).read_text())["cells"]
                 if c["cell_type"] == "markdown")
    assert "{cite:" in "".join(first["source"]), "chapter 00's first cell no longer cites: pick another"
    assert rendered["cells"] >= 1, rendered
    assert rendered["myst"] > 0, "Lab's own markdown renderer, not jupyterlab-myst, drew the cells"
    assert rendered["math"] > 0, f"no formula typeset in the chapter's markdown: {rendered['sample']}"
    for raw in ("{cite:t}", "{cite:p}", "```{", ":::{"):
        assert raw not in rendered["text"], f"Lab shows raw MyST markup {raw!r}: is jupyterlab-myst loaded?"
