"""Napoleon for the API reference's ``Args:`` sections, without reading doc comments as types.

The API reference (``book/api``) renders the ``Args:`` / ``Returns:`` sections of oodlib's
docstrings with ``sphinx.ext.napoleon``. Napoleon also reads the first line of a data or attribute
docstring as ``type: description``, so a doc comment such as ``#: Hein et al. 2019, Table 2 (per
model): ...`` became the type "Hein et al. 2019, Table 2 (per model)". Our doc comments never start
with a type (autodoc shows the type hint), so this extension hands napoleon those docstrings as
plain text: it replaces napoleon's docstring hook by one that passes data and attributes through
napoleon's section parser only.
"""

from __future__ import annotations

from typing import Any

from sphinx.ext import napoleon

PLAIN = ("data", "attribute", "property")  # docstrings whose first line is a description, not a type


def _process(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    napoleon._process_docstring(app, "" if what in PLAIN else what, name, obj, options, lines)


def setup(app: Any) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.napoleon")
    for listener in list(app.events.listeners.get("autodoc-process-docstring", [])):
        if listener.handler is napoleon._process_docstring:
            app.disconnect(listener.id)
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
