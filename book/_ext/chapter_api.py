"""Each chapter page ends with links to the API reference of every oodlib function it calls.

The list is read from the chapter's code at build time (:func:`oodlib.chapter.calls`), so it can
not drift from the code; each entry is a cross-reference into ``book/api``, resolved (and checked:
the book builds with ``-n -W``) like any ``{py:obj}`` role.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx import addnodes

from oodlib.chapter import calls

TITLE = "Functions this chapter calls"


def _xref(docname: str, kind: str, target: str, label: str) -> addnodes.pending_xref:
    ref = addnodes.pending_xref("", refdomain="py", reftype=kind, reftarget=target, refexplicit=True,
                                refwarn=True, refdoc=docname)
    ref += nodes.literal(label, label)
    return ref


def _append_calls(app: Any, doctree: nodes.document) -> None:
    docname = app.env.docname
    if not docname.startswith("notebooks/"):
        return
    targets = calls(app.env.doc2path(docname))
    top = next(iter(doctree.findall(nodes.section)), None)
    if not targets or top is None:
        return
    section = nodes.section(ids=["functions-this-chapter-calls"], names=[TITLE.lower()])
    section += nodes.title(TITLE, TITLE)
    section += nodes.paragraph(text="Grouped by module; each name links to its entry in the API reference "
                                    "(generated from the docstrings).")
    by_module: dict[str, list[str]] = {}
    for target in targets:  # "oodlib.<module>.<name>"
        by_module.setdefault(target.split(".")[1], []).append(target)
    items = nodes.bullet_list()
    for module, names in by_module.items():
        para = nodes.paragraph()
        para += _xref(docname, "mod", f"oodlib.{module}", module)
        para += nodes.Text(": ")
        for i, target in enumerate(names):
            para += nodes.Text(", " if i else "")
            para += _xref(docname, "obj", target, target.split(".", 2)[2])
        items += nodes.list_item("", para)
    section += items
    top += section


def setup(app: Any) -> dict[str, Any]:
    # before the TOC collector (priority 500) reads the page's sections
    app.connect("doctree-read", _append_calls, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
