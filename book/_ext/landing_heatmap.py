"""The landing page shows the benchmark heat-map that chapter 07 drew in this very build.

Sphinx reads the landing page before it executes chapter 07, so ``book/intro.md`` points at a
committed copy (``book/images/benchmark_ci.png``) that always exists. Chapter 07 saves its
figure as ``_build/figures/benchmark_<profile>.png``; once every page is written this extension
copies that file over the landing page's image in the built site, so the reader sees the
numbers of the build in front of them. Without it (execution off, or chapter 07 never ran) the
committed copy stays, and the build log says so.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from sphinx.util import logging

logger = logging.getLogger(__name__)
SHOWN = "benchmark_ci.png"  # the landing page's image, as Sphinx names it under _images/


def drawn_by_chapter_07(srcdir: Path) -> Path:
    profile = os.environ.get("OODLIB_PROFILE", "ci").strip().lower() or "ci"
    return srcdir / "_build" / "figures" / f"benchmark_{profile}.png"


def _copy_fresh_heatmap(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    fresh = drawn_by_chapter_07(Path(app.srcdir))
    target = Path(app.outdir) / "_images" / SHOWN
    if not target.exists():
        return
    if fresh.exists():
        shutil.copyfile(fresh, target)
        logger.info(f"landing page: the benchmark heat-map of this build ({fresh.name})")
    else:
        logger.info(f"landing page: {fresh} not found (chapter 07 did not run); the committed copy stays")


def setup(app: Any) -> dict[str, Any]:
    app.connect("build-finished", _copy_fresh_heatmap)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
