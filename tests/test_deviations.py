"""The one table of differences from the papers (oodlib.deviations): in the README as generated,
its profile columns read from the profiles, every chapter covered."""

from __future__ import annotations

import re
from pathlib import Path

from oodlib import cli, deviations, profiles

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_holds_the_generated_table():
    text = README.read_text()
    block = text.split(cli.DEVIATIONS_BEGIN)[1].split(cli.DEVIATIONS_END)[0]
    assert deviations.markdown() in block, f"regenerate it: {cli.DEVIATIONS_COMMAND}"


def test_the_profile_columns_come_from_the_profiles():
    t = deviations.table().set_index("topic")
    assert f"{profiles.CI.train.epochs} epochs" in t.loc["training recipe", "ours (ci)"]
    assert f"{profiles.FULL.train.epochs} epochs" in t.loc["training recipe", "ours (full)"]
    assert f"N = {profiles.CI.atom.candidates}" in t.loc["ATOM's mining (Algorithm 1)", "ours (ci)"]
    small = profiles.CI.replace(alpha_trials=7)
    row = deviations.table((small,)).set_index("topic").loc["alpha-scaling trials (Table 2)"]
    assert row["ours (ci)"] == "7 rays"


def test_every_chapter_with_models_is_covered_and_cites_its_paper():
    t = deviations.table()
    named = set()
    for chapters in t.chapters:
        if chapters in ("all",):
            named |= {f"{i:02d}" for i in range(8)}
        for a, b in re.findall(r"(\d\d)(?:-(\d\d))?", chapters):
            named |= {f"{i:02d}" for i in range(int(a), int(b or a) + 1)}
    assert named >= {f"{i:02d}" for i in range(8)}
    cites = r"§|Table|App\.|Algorithm|every paper"
    assert all(re.search(cites, p) for p in t.papers), "cite the paper's section"
    assert t.why.str.len().min() > 5
