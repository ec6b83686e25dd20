"""The package's layout: one-way imports between layers, light base modules, the plug-in registry."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import oodlib
from oodlib import zoo

PACKAGE = Path(oodlib.__file__).parent

# The layers of oodlib/__init__.py's map: a module may import modules of its own layer or below.
LAYERS = [
    ("validation", "profiles", "runtime", "deviations"),
    ("noise", "standins", "synthetic_files", "metrics", "models", "augment", "beside"),
    ("data", "datasets", "paper_settings", "provenance", "intervals", "claims", "attacks", "apgd",
     "corruptions", "ibp", "gmm", "ball_attack", "train"),
    ("toy", "relu_theory", "acet", "odin", "odin_analysis", "mahalanobis", "ccu", "good", "atom",
     "gaussian_model"),
    ("zoo",),
    ("scores", "detectors"),
    ("evaluate",),
    ("experiments", "zoo_plan", "reproduction"),
    ("benchmark", "plots", "explorer", "chapter", "cli", "__main__"),
]
LAYER = {m: i for i, mods in enumerate(LAYERS) for m in mods}


def _modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _imports(module: str) -> tuple[set[str], list[int]]:
    """The oodlib modules ``module`` imports at top level, and the lines of any nested import."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    top, nested = set(), []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                top.add(node.module.split(".")[0])
            else:
                top.update(a.name for a in node.names)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            nested += [n.lineno for n in ast.walk(node) if isinstance(n, ast.ImportFrom) and n.level == 1]
    return top, nested


def test_every_module_has_a_layer():
    assert set(_modules()) == set(LAYER), "add the new module to LAYERS and to oodlib/__init__.py's map"
    assert set(LAYER) - {"__main__"} == set(oodlib.__all__)


@pytest.mark.parametrize("module", sorted(set(LAYER) - {"__main__"}))
def test_imports_go_one_way(module):
    top, nested = _imports(module)
    assert not nested, f"oodlib.{module} imports oodlib modules inside functions (lines {nested})"
    up = {m for m in top if LAYER[m] > LAYER[module]}
    assert not up, f"oodlib.{module} (layer {LAYER[module]}) imports higher layers: {sorted(up)}"


def test_no_import_cycle():
    graph = {m: _imports(m)[0] for m in LAYER if m != "__main__"}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == 1:
            raise AssertionError(f"import cycle: {' -> '.join([*path, m])}")
        if state.get(m) == 2:
            return
        state[m] = 1
        for d in graph[m]:
            visit(d, [*path, m])
        state[m] = 2

    for m in graph:
        visit(m, [])


@pytest.mark.parametrize("module", sorted(set(LAYER) - {"__main__"}))
def test_modules_stay_small(module):
    lines = len((PACKAGE / f"{module}.py").read_text().splitlines())
    assert lines <= 650, f"oodlib.{module} has {lines} lines; split it by idea (~600 at most)"


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_base_modules_stay_light():
    loaded = _loaded_after("import oodlib.metrics")
    heavy = {"matplotlib", "pandas", "oodlib.train", "oodlib.zoo", "oodlib.data", "sklearn"}
    assert not heavy & loaded, f"import oodlib.metrics loads {sorted(heavy & loaded)}"
    assert "torch" not in _loaded_after("import oodlib"), "import oodlib should load no submodule"


def test_submodules_load_on_first_use():
    assert oodlib.ccu.CCU.__module__ == "oodlib.ccu"
    assert callable(oodlib.setup) and oodlib.seed_everything is oodlib.runtime.seed_everything
    with pytest.raises(AttributeError, match="no attribute"):
        _ = oodlib.mining  # the old name of oodlib.atom is gone


def test_registered_plugins():
    # filled explicitly by oodlib.zoo, not by import order
    assert set(zoo.PLUGINS) == {"plain", "plain_subset", "ceda", "acet", "oe", "ccu", "good", "ntom", "atom",
                                "ntom_trajectory"}
    for name in zoo.PLUGINS:
        method = zoo.make_method(name, **({"classes": [0, 1]} if name == "plain_subset" else {}))
        assert method.name == name


def test_plugin_keywords_are_checked_once():
    with pytest.raises(ValueError, match=r"unknown hyper-parameter\(s\) \['lr'\] for method 'plain'"):
        zoo.make_method("plain", lr=1)
    with pytest.raises(ValueError, match="expected some of .*'lam'.*'variant'"):
        zoo.make_method("ceda", eps=0.3)
    with pytest.raises(ValueError, match="unknown training method 'magic'"):
        zoo.make_method("magic")
