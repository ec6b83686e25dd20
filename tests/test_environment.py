"""environment.yml installs what pyproject.toml declares: the same packages and pins."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return {" ".join(r.split()) for r in project["dependencies"] + [r for g in ("dev", "book", "lab")
                                                                     for r in extras[g]]}


def test_environment_yml_pins_what_pyproject_declares():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {" ".join(str(r).split()) for r in pip if r != "-e ."}
    declared = _pyproject_requirements()
    assert listed == declared, (f"environment.yml lacks {sorted(declared - listed)} and has "
                                f"{sorted(listed - declared)} beyond pyproject.toml")
