"""A chapter's first cell (:func:`setup`), what a chapter calls (:func:`calls`, for the API reference) and
the numbered statements it gives (:func:`statements`, for the links of the claims tables)."""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from . import paper_settings, plots, profiles, runtime, zoo, zoo_plan
from .profiles import Profile
from .validation import describe


def setup(chapter: str | None = None) -> tuple[Profile, torch.device]:
    """Read the profile (``OODLIB_PROFILE``, ``OODLIB_SEED``), seed everything with its seed, pick the
    device (``OODLIB_DEVICE``, else CUDA when present) and set the book's plot style.

    Prints the setting and returns ``(profile, device)``, so a chapter starts with
    ``profile, device = ol.setup("03")``. Where the profile does not train in cells (``full``:
    :func:`oodlib.zoo.training_allowed`), the chapter's models (:func:`oodlib.zoo_plan.chapter_needs`)
    must be in the zoo already: a missing one stops the chapter here, with the command that trains it.
    """
    profile = profiles.current()
    if chapter is not None and not zoo.training_allowed(profile):
        todo = zoo_plan.missing(profile, [chapter])
        command = f"'python -m oodlib zoo train --profile {profile.name} --chapter {chapter}'"
        # the papers' own settings of the chapter's last section (chapter 02 reads chapter 01's)
        own = "01" if chapter == "02" else chapter
        if profile.name in ("full", "smoke") and paper_settings.for_chapter(own):
            settings = zoo_plan.missing(profile, [own], settings=True)
            if settings:
                command += (f" and 'python -m oodlib zoo train --profile {profile.name} --settings "
                            f"--chapter {own}'")
            todo += settings
        if todo:
            names = "; ".join(f"{n.name} ({n.hash or 'waits for ' + n.waits_for})" for n in todo)
            raise zoo.MissingModelError(
                f"chapter {chapter} needs {len(todo)} models the zoo at {runtime.cache_dir()} lacks "
                f"(profile {profile.name!r}, which does not train in cells): {names}. Train them first with "
                f"{command}, or import a trained zoo with 'python -m oodlib zoo import ARCHIVE'")
    runtime.seed_everything(profile.seed)
    device = runtime.default_device()
    plots.set_style()
    print(f"profile: {profile.name} | device: {device} | torch {torch.__version__}")
    return profile, device


def calls(notebook: str | Path) -> list[str]:
    """The oodlib functions and classes a chapter's code cells call, by where they are defined.

    Reads the notebook's code (``ol.<module>.<name>``, and ``<module>.<name>`` for modules imported
    with ``from oodlib import ...``) and returns sorted dotted paths such as
    ``"oodlib.ccu.theorem31"`` — a name re-exported by another module is given at its definition
    (``ol.claims.bootstrap`` → ``"oodlib.intervals.bootstrap"``), which is where the API reference
    documents it. ``ol.setup`` counts as :func:`setup`. Constants are left out. The book appends
    these as links to each chapter page (``book/_ext/chapter_api.py``).
    """
    path = Path(notebook)
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"expected a readable .ipynb notebook, got {describe(notebook)} ({err})") from err
    code = "\n".join("".join(c["source"]) for c in cells if c.get("cell_type") == "code")
    imported = {name for m in re.finditer(r"from oodlib import ([\w, ]+)", code)
                for name in re.split(r"[,\s]+", m.group(1)) if name}
    pairs = set(re.findall(r"\bol\.([a-z_]+)\.([A-Za-z_]\w*)", code))
    pairs |= {(m, a) for m in imported for a in re.findall(rf"(?<![\w.]){m}\.([A-Za-z_]\w*)", code)}
    found = {"oodlib.chapter.setup"} if re.search(r"\bol\.setup\(", code) else set()
    for module, attr in pairs:
        try:
            obj = getattr(importlib.import_module(f"oodlib.{module}"), attr)
        except (ImportError, AttributeError):
            continue  # a name that is not oodlib's (a local variable that shadows a module name)
        where = getattr(obj, "__module__", None) or ""
        if callable(obj) and where.startswith("oodlib.") and hasattr(obj, "__qualname__"):
            found.add(f"{where}.{obj.__qualname__}")
    return sorted(found)


# a sphinx-proof directive in a markdown cell: ```{prf:theorem} Title, then its options (":label: x")
_STATEMENT = re.compile(r"^(`{3,}|:{3,})\{prf:(\w+)\}[ \t]*(.*)\n((?::\w+:.*\n)*)", re.M)


@dataclass(frozen=True)
class Statement:
    """A numbered statement of the book: where it is (``page``: the chapter's file stem), its ``kind``
    (theorem, proposition, corollary, lemma, definition) and ``title`` (the paper's own number)."""

    label: str
    page: str
    kind: str
    title: str

    def link(self, from_page: str | None = None) -> str:
        """An HTML link to the statement from a page in the same folder (the chapters are siblings)."""
        target = f"#{self.label}" if from_page == self.page else f"{self.page}.html#{self.label}"
        return f'<a href="{target}">{self.title or self.label}</a>'


def statements(folder: str | Path) -> dict[str, Statement]:
    """Every labelled ``{prf:...}`` statement in the chapters (``*.ipynb``) of ``folder``, by label.

    The claims tables link a claim to the statement it tests (:attr:`oodlib.claims.Claim.tests`).
    Raises ``ValueError`` when ``folder`` holds no notebook or a label is given twice.
    """
    paths = sorted(Path(folder).glob("*.ipynb"))
    if not paths:
        raise ValueError(f"expected a folder of chapter notebooks, got {describe(folder)} (no .ipynb in it)")
    out: dict[str, Statement] = {}
    for path in paths:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell.get("cell_type") != "markdown":
                continue
            for m in _STATEMENT.finditer("".join(cell["source"]) + "\n"):
                label = re.search(r"^:label:\s*(\S+)", m.group(4), re.M)
                if not label:
                    continue
                key = label.group(1)
                if key in out:
                    raise ValueError(f"expected each statement label once, got {key!r} in {out[key].page} "
                                     f"and {path.stem}")
                out[key] = Statement(key, path.stem, m.group(2), m.group(3).strip())
    return out
