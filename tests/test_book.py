"""The book builds (execution off) without Sphinx warnings.

`make book` executes the notebooks; here we only check the book's structure:
the table of contents, the bibliography, cross-references and markdown all
build cleanly with ``-W`` (warnings are errors).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
