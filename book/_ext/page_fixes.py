"""Two fixes to the pages Jupyter Book 1 writes, so a reader's browser console stays clean.

* sphinx-thebe 0.3.1 registers its inline configuration script once per reading pass, and
  Jupyter Book reads twice, so every page declared ``const THEBE_JS_URL`` twice (a script
  error in the console). Here each page keeps one copy of every script.
* pydata-sphinx-theme reads the colour mode from ``html_context["default_mode"]``; unset, it
  logs "Got invalid theme mode" on every page (``_config.yml`` sets it to ``light``).

``tests/test_site.py`` opens every page in Chromium and fails on any console error.
"""

from __future__ import annotations

from typing import Any


def _one_copy_of_each_script(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # file name ('' and None both mean inline) and attributes (an inline script's body among them)
        key = (getattr(js, "filename", None) or "", repr(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _one_copy_of_each_script, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
