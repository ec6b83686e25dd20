"""Every profile field the notebooks, benchmarks and package read exists on the profile.

The unit tests never run the notebooks (a chapter takes minutes), so a renamed profile field would
only surface in ``make smoke``. This test reads the code statically instead: in every code cell
of every notebook (the cells in order, as one program), every benchmark script and every oodlib
module, it finds the names bound to a :class:`oodlib.profiles.Profile` and checks that each
attribute chain on them (``profile.atom.candidates``, ``p.train.epochs``) resolves on
:data:`oodlib.profiles.CI`, and that each ``replace(...)`` names existing fields and groups.
Markdown cells are checked too: an inline ``profile.x.y`` or ``group.field`` in backticks must
resolve.

A name holds a profile when it is assigned one: ``ol.setup()``'s first value,
``profiles.current()``, ``profiles.get(...)``, ``profiles.CI`` / ``FULL`` / ``SMOKE``,
``PROFILES[...]``, ``atom.ablation_profile(...)``, or ``.replace(...)`` of a profile; a function
parameter holds one when annotated ``Profile`` or called ``profile`` / ``prof`` / ``abl``. Any
other assignment unbinds the name (``p = torch.softmax(...)`` is not a profile).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import oodlib
from oodlib import profiles

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "oodlib").glob("*.py"))
PARAM_NAMES = {"profile", "prof", "abl"}  # unannotated parameters taken to hold a profile
FIELDS = {f.name for f in dataclasses.fields(profiles.Profile)}


def resolve(chain: list[str]) -> str | None:
    """``None`` if ``CI.<chain>`` resolves (stopping at a method), else what went wrong."""
    obj: object = profiles.CI
    for i, name in enumerate(chain):
        if not hasattr(obj, name):
            where = "Profile" if i == 0 else f"profile.{'.'.join(chain[:i])}"
            known = sorted(f.name for f in dataclasses.fields(obj)) if dataclasses.is_dataclass(obj) else []
            return f"{where} has no {name!r}" + (f"; expected one of {known}" if known else "")
        obj = getattr(obj, name)
        if callable(obj):
            return None
    return None


def check_replace(call: ast.Call, method: str) -> list[str]:
    """Problems with the keywords of ``profile.replace(...)`` / the keys of ``replace_leaves({...})``."""
    out = []
    if method == "replace":
        for kw in call.keywords:
            if kw.arg is None:  # **changes: not known statically
                continue
            if kw.arg not in FIELDS:
                out.append(f"replace({kw.arg}=...): no such profile field; expected one of {sorted(FIELDS)}")
            elif kw.arg in profiles.GROUPS and isinstance(kw.value, ast.Dict):
                for key in kw.value.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        problem = resolve([kw.arg, key.value])
                        if problem:
                            out.append(f"replace({kw.arg}={{{key.value!r}: ...}}): {problem}")
    elif call.args and isinstance(call.args[0], ast.Dict):
        for key in call.args[0].keys:
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                problem = resolve(key.value.split("."))
                if problem:
                    out.append(f"replace_leaves({{{key.value!r}: ...}}): {problem}")
    return out


def _chain_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_chain_name(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


class ProfileReads(ast.NodeVisitor):
    """Walks a module in source order, tracking which names hold a profile in each scope."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, bool]] = [{}]
        self.problems: list[tuple[int, str]] = []
        self.checked: list[str] = []

    # --- which expressions are profiles --------------------------------------------------------
    def bound(self, name: str) -> bool:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return False

    def is_profile(self, node: ast.expr | None) -> bool:
        if isinstance(node, ast.Name):
            return self.bound(node.id)
        if isinstance(node, ast.Attribute):
            return node.attr in ("CI", "FULL", "SMOKE") and _chain_name(node.value).endswith("profiles")
        if isinstance(node, ast.Subscript):
            return _chain_name(node.value).endswith("PROFILES")
        if isinstance(node, ast.IfExp):
            return self.is_profile(node.body) or self.is_profile(node.orelse)
        if isinstance(node, ast.Call):
            func = node.func
            name = _chain_name(func).split(".")[-1]
            if name in ("replace", "replace_leaves") and isinstance(func, ast.Attribute):
                return self.is_profile(func.value)
            if name in ("current", "get") and isinstance(func, ast.Attribute):
                return _chain_name(func.value).endswith("profiles")
            return name == "ablation_profile"
        return False

    def bind(self, target: ast.expr, value: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self.scopes[-1][target.id] = self.is_profile(value)
        elif isinstance(target, ast.Tuple | ast.List):
            setup = (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute | ast.Name)
                     and _chain_name(value.func).split(".")[-1] == "setup")
            for i, elt in enumerate(target.elts):
                if isinstance(elt, ast.Name):
                    self.scopes[-1][elt.id] = setup and i == 0  # profile, device = ol.setup()
                elif isinstance(elt, ast.Starred) and isinstance(elt.value, ast.Name):
                    self.scopes[-1][elt.value.id] = False

    # --- statements that bind ------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for t in node.targets:
            self.visit(t)
            self.bind(t, node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self.scopes[-1][node.target.id] = "Profile" in ast.unparse(node.annotation) or self.is_profile(
                node.value)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.bind(node.target, node.value)

    def _unbind(self, target: ast.expr) -> None:
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                self.scopes[-1][n.id] = False

    def visit_For(self, node: ast.For) -> None:
        self.visit(node.iter)
        self._unbind(node.target)
        for stmt in [*node.body, *node.orelse]:
            self.visit(stmt)

    def visit_withitem(self, node: ast.withitem) -> None:
        self.visit(node.context_expr)
        if node.optional_vars is not None:
            self._unbind(node.optional_vars)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            self.scopes[-1][(alias.asname or alias.name).split(".")[0]] = False

    visit_ImportFrom = visit_Import

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        for d in [*args.defaults, *[d for d in args.kw_defaults if d is not None]]:
            self.visit(d)
        if not isinstance(node, ast.Lambda):
            for d in node.decorator_list:
                self.visit(d)
        scope = {}
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None:
                note = ast.unparse(a.annotation) if a.annotation is not None else ""
                scope[a.arg] = "Profile" in note or (not note and a.arg in PARAM_NAMES)
        self.scopes.append(scope)
        for stmt in node.body if isinstance(node.body, list) else [node.body]:
            self.visit(stmt)
        self.scopes.pop()
        if not isinstance(node, ast.Lambda):
            self.scopes[-1][node.name] = False

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        self.scopes.append({})
        for gen in node.generators:
            self.visit(gen.iter)
            self._unbind(gen.target)
            for cond in gen.ifs:
                self.visit(cond)
        for part in (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,):
            self.visit(part)
        self.scopes.pop()

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    # --- reads -------------------------------------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        attrs: list[ast.Attribute] = []
        cur: ast.expr = node
        while isinstance(cur, ast.Attribute):
            attrs.append(cur)
            cur = cur.value
        attrs.reverse()  # innermost first: root.a, root.a.b, ...
        exprs: list[ast.expr] = [cur, *attrs]
        for k, expr in enumerate(exprs[:-1]):
            if self.is_profile(expr):
                chain = [a.attr for a in attrs[k:]]
                self.checked.append(".".join([ast.unparse(expr), *chain]))
                problem = resolve(chain)
                if problem:
                    self.problems.append((node.lineno, f"{ast.unparse(node)}: {problem}"))
                break
        self.visit(cur)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("replace", "replace_leaves") and self.is_profile(
                func.value):
            self.problems += [(node.lineno, p) for p in check_replace(node, func.attr)]
        if (isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2
                and self.is_profile(node.args[0]) and isinstance(node.args[1], ast.Constant)):
            problem = resolve([str(node.args[1].value)])
            if problem:
                self.problems.append((node.lineno, f"{ast.unparse(node)}: {problem}"))
        self.generic_visit(node)


def check_source(source: str) -> ProfileReads:
    reads = ProfileReads()
    reads.visit(ast.parse(source))
    return reads


def _notebook_program(path: Path) -> tuple[str, list[int]]:
    """The notebook's code cells as one program (IPython magics blanked), and each line's cell index."""
    lines: list[str] = []
    cell_of: list[int] = []
    for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] != "code":
            continue
        for line in "".join(cell["source"]).split("\n"):
            lines.append("" if line.lstrip().startswith(("%", "!")) else line)
            cell_of.append(i)
    return "\n".join(lines), cell_of


def _markdown_problems(path: Path) -> Iterator[str]:
    """Inline code in markdown cells naming a profile field: `profile.x.y`, or `group.field` (unless
    it names a function of the oodlib module of the same name, as `odin.perturb` does); and old flat
    names (`atom_candidates` for `atom.candidates`)."""
    for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for token in re.findall(r"`([A-Za-z_][\w.]*)`", "".join(cell["source"])):
            parts = token.split(".")
            group, _, leaf = token.partition("_")
            if group in profiles.GROUPS and leaf and resolve([group, leaf]) is None:
                yield f"markdown cell {i}: `{token}` is the old flat name of `{group}.{leaf}`"
                continue
            if parts[0] == "profile" and len(parts) > 1:
                chain = parts[1:]
            elif parts[0] in profiles.GROUPS and len(parts) > 1:
                module = importlib.import_module(f"oodlib.{parts[0]}") if parts[0] in oodlib.__all__ else None
                if module is not None and hasattr(module, parts[1]):
                    continue
                chain = parts
            else:
                continue
            problem = resolve(chain)
            if problem:
                yield f"markdown cell {i}: `{token}`: {problem}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_profile_reads_resolve(path):
    program, cell_of = _notebook_program(path)
    reads = check_source(program)
    problems = [f"cell {cell_of[line - 1]}: {msg}" for line, msg in reads.problems]
    problems += list(_markdown_problems(path))
    assert not problems, f"{path.name} reads profile fields that do not exist:\n" + "\n".join(problems)
    assert reads.checked, f"{path.name}: no profile read found -- does the chapter still call ol.setup()?"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_script_profile_reads_resolve(path):
    reads = check_source(path.read_text(encoding="utf-8"))
    assert not reads.problems, f"{path.name}:\n" + "\n".join(f"line {n}: {m}" for n, m in reads.problems)


def test_the_check_sees_the_chapters_reads():
    """Not vacuous: the chapters' group reads are found (chapter 06 reads ATOM's part, 02 the attacks)
    and a stale markdown name is caught."""
    found = {p.name: set(check_source(_notebook_program(p)[0]).checked) for p in NOTEBOOKS}
    assert "profile.atom.candidates" in found["06_atom.ipynb"]
    assert "profile.attack.pgd_eval_steps" in found["02_ceda_acet.ipynb"]
    assert sum(map(len, found.values())) >= 50
    gpu = set(check_source((ROOT / "benchmarks" / "gpu_check.py").read_text()).checked)
    assert {"p.train.batch_size", "p.odin.temperatures", "p.bench.weak_steps"} <= gpu


@pytest.mark.parametrize(("source", "problem"), [
    ("profile, device = ol.setup()\nprofile.atom_q", "Profile has no 'atom_q'"),
    ("profile = ol.profiles.current()\nprofile.epochs", "Profile has no 'epochs'; expected one of"),
    ("p = profiles.CI.replace(seed=1)\np.atom.atom_q", "profile.atom has no 'atom_q'; expected one of"),
    ("abl = ol.atom.ablation_profile(profile)\nabl.atom_candidates", "Profile has no 'atom_candidates'"),
    ("def f(prof: Profile):\n    return prof.odin_tune_size", "Profile has no 'odin_tune_size'"),
    ("def f(profile):\n    return profile.train.epoch", "profile.train has no 'epoch'"),
    ("x = profiles.FULL.good_eps", "Profile has no 'good_eps'"),
    ("profile, dev = ol.setup()\np = profile\np.replace(epochs=3)", "replace(epochs=...): no such profile"),
    ("p = profiles.get('ci')\np.replace(train={'epoch': 3})", "replace(train={'epoch': ...}): profile.train"),
    ("p = profiles.CI\np.replace_leaves({'atom.nope': 1})", "replace_leaves({'atom.nope': ...})"),
    ("p = profiles.CI\nf = lambda: [p.odin_x for _ in range(2)]", "Profile has no 'odin_x'"),
])
def test_the_check_catches_a_stale_field(source, problem):
    reads = check_source(source)
    assert any(problem in msg for _, msg in reads.problems), reads.problems


@pytest.mark.parametrize("source", [
    "p = torch.softmax(z, 1)\np.max(1)",  # p holds a tensor here
    "profile, device = ol.setup()\np = ol.runtime.predict_proba(m, x)\nprofile.seed, p.max",
    "profile, dev = ol.setup()\nprofile.train.epochs, profile.atom.q_grid.index, profile.replace(seed=1)",
    "def f(p):\n    return p.anything\np = profiles.CI\np.seed",  # an unannotated p is not assumed a profile
    "p = profiles.CI\nfor p in range(3):\n    p.bit_length()",
    "profile = profiles.CI\nprofile.replace(train={'epochs': 3}, atom={'candidates': 1}, seed=2)",
    "profile = profiles.SMOKE\nprofile.replace_leaves({'train.epochs': 3, 'seed': 1})",
])
def test_the_check_spares_what_is_not_a_stale_field(source):
    assert not check_source(source).problems


def test_the_markdown_check(tmp_path):
    text = ("`atom_candidates` kept, `profile.epochs` epochs; `profile.train.epochs`, `atom.keep`, "
            "`odin.perturb` (a function), `good.nope`, `eps`")
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": [text]}]}))
    problems = list(_markdown_problems(nb))
    assert len(problems) == 3, problems
    assert "`atom_candidates` is the old flat name of `atom.candidates`" in problems[0]
    assert "`profile.epochs`: Profile has no 'epochs'" in problems[1]
    assert "`good.nope`: profile.good has no 'nope'" in problems[2]
