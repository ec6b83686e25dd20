"""JupyterLab shows a chapter as the book does: MyST markup rendered by jupyterlab-myst, math typeset.

Starts a real JupyterLab server on a copy of chapter 00 (Lab autosaves; the repository's
notebooks stay untouched), opens it in headless Chromium and reads the rendered markdown cells.
Lab draws every cell at once here (``windowingMode: none`` in a settings folder of the test's own),
so the exercises at the chapter's end are read too. A screenshot goes to
_build/site-screenshots/lab-00.png. Skips, saying why, without the ``lab``
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
          exercises: document.querySelectorAll(".jp-MarkdownCell aside.myst-exercise").length,
          statements: document.querySelectorAll(".jp-MarkdownCell aside.myst-proof").length,
          solutions: [...document.querySelectorAll(".jp-MarkdownCell details.myst-exercise")]
              .map(d => d.open),
          hiddenCode: document.querySelectorAll(".jp-CodeCell .jp-InputPlaceholder").length,
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
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
           f"--LabApp.workspaces_dir={root / 'workspaces'}", "--LabApp.news_url=None"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    env = os.environ | {"JUPYTERLAB_SETTINGS_DIR": str(root / "settings")}  # every cell drawn at once
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
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
    notebook = json.loads((ROOT / "notebooks" / CHAPTER).read_text())
    n_exercises = sum("".join(c["source"]).count("{exercise}") for c in notebook["cells"])
    for _ in range(240):  # math is typeset after the cells render; the last cells (a solution) render last
        rendered = page.evaluate(RENDERED_JS)
        if (rendered["math"] and rendered["exercises"] >= n_exercises
                and len(rendered["solutions"]) >= n_exercises and rendered["hiddenCode"] >= 2):
            break
        page.wait_for_timeout(500)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "lab-00.png"))
    page.close()
    # the first markdown cell cites
    first = next(c for c in json.loads((ROOT / "notebooks" / CHAPTER).read_text())["cells"]
                 if c["cell_type"] == "markdown")
    assert "{cite:" in "".join(first["source"]), "chapter 00's first cell no longer cites: pick another"
    assert rendered["cells"] >= 1, rendered
    assert rendered["myst"] > 0, "Lab's own markdown renderer, not jupyterlab-myst, drew the cells"
    assert rendered["math"] > 0, f"no formula typeset in the chapter's markdown: {rendered['sample']}"
    for raw in ("{cite:t}", "{cite:p}", "```{", ":::{", "{exercise}", "{prf:", "{solution}"):
        assert raw not in rendered["text"], f"Lab shows raw MyST markup {raw!r}: is jupyterlab-myst loaded?"
    # the chapter's exercises, their solutions folded, and its numbered statements (definitions)
    assert n_exercises >= 3 and rendered["exercises"] == n_exercises, (n_exercises, rendered["exercises"])
    assert len(rendered["solutions"]) >= n_exercises and not any(rendered["solutions"]), rendered["solutions"]
    assert rendered["statements"] >= 1, "no numbered statement rendered in Lab"
    assert rendered["hiddenCode"] >= 2, f"{rendered['hiddenCode']} code solutions folded in Lab, not >= 2"
