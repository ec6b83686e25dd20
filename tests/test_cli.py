from __future__ import annotations

import subprocess
import sys

import pytest

from oodlib import cli, data, zoo


def test_unknown_method_exits_2_with_choices(capsys):
    assert cli.main(["train", "magic"]) == 2
    err = capsys.readouterr().err
    assert "unknown training method 'magic'" in err and "plain" in err


def test_unknown_profile_exits_2(capsys):
    assert cli.main(["train", "plain", "--profile", "huge"]) == 2
    assert "unknown profile" in capsys.readouterr().err


def test_bad_hparam_and_export_suffix(capsys, zoo_cache, tmp_path):
    assert cli.main(["train", "plain", "--hparam", "novalue"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "x.txt")]) == 2


def test_list_empty(zoo_cache, capsys):
    assert cli.main(["list"]) == 0
    assert "empty" in capsys.readouterr().out


@pytest.mark.skipif(not data.DEBIAN_FMNIST.exists(), reason="needs Debian's dataset-fashion-mnist")
def test_train_list_export_roundtrip(zoo_cache, tiny_profile, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(cli.__dict__, "_profile", lambda name: tiny_profile)
    assert cli.main(["train", "plain"]) == 0
    assert "test error" in capsys.readouterr().out
    assert cli.main(["list"]) == 0
    assert "plain" in capsys.readouterr().out
    assert cli.main(["evaluate", "plain"]) == 0
    assert "AUROC" in capsys.readouterr().out
    (row,) = zoo.list_cache()
    assert 0.0 <= row["mean_auroc_msp"] <= 1.0  # `list` shows the evaluation once it ran
    assert cli.main(["export", str(tmp_path / "zoo.csv"), "--zoo"]) == 0
    assert (tmp_path / "zoo.csv").read_text().startswith("method,")


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "oodlib", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "train" in out.stdout and "export" in out.stdout


def test_bad_device_is_a_clear_error(capsys):
    assert cli.main(["train", "plain", "--device", "gpu9000"]) == 2
    assert "device" in capsys.readouterr().err


def test_export_writes_the_benchmark_summary(monkeypatch, tmp_path, capsys):
    import pandas as pd

    cols = pd.MultiIndex.from_tuples([("natural", "AUROC"), ("linf", "FPR95"), ("test error", "")])
    summ = pd.DataFrame([[90.0, 50.0, 12.0], [80.0, 99.0, 11.0]], index=["MSP", "ATOM"], columns=cols)

    def fake(profile, device, train=False):  # noqa: ANN001, ANN202 - the real one needs the whole zoo
        out = summ.copy()
        out.columns = [" ".join(p for p in c if p) for c in out.columns]
        return out

    monkeypatch.setitem(cli.__dict__, "_benchmark_table", fake)
    assert cli.main(["export", str(tmp_path / "b.md")]) == 0
    text = (tmp_path / "b.md").read_text()
    assert "natural AUROC" in text and "ATOM" in text and "90.00" in text
    assert cli.main(["export", str(tmp_path / "b.csv")]) == 0
    assert pd.read_csv(tmp_path / "b.csv", index_col=0).loc["MSP", "linf FPR95"] == 50.0
    assert "wrote 2 rows" in capsys.readouterr().out


def test_export_without_models_names_them_and_exits_2(zoo_cache, capsys):
    assert cli.main(["export", "b.md"]) == 2
    err = capsys.readouterr().err
    assert "lacks" in err and "GOOD_100" in err and "--train" in err


def test_export_claims_and_readme(tmp_path, monkeypatch, capsys):
    from oodlib import claims

    monkeypatch.setenv("OODLIB_CLAIMS", str(tmp_path / "claims"))
    monkeypatch.setenv("OODLIB_SEED", "0")
    monkeypatch.delenv("OODLIB_PROFILE", raising=False)
    assert cli.main(["export", str(tmp_path / "c.md"), "--claims"]) == 2  # nothing recorded yet
    assert "run the chapters" in capsys.readouterr().err
    c = claims.Claim("x beats y", "Paper, Table 1", "AUROC x - y", claims.Estimate(0.1, 0.05, 0.2), 0.0)
    claims.record("00_basics", [c], "ci", 0)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{cli.README_BEGIN}\nold table\n{cli.README_END}\nrest\n")
    assert cli.main(["export", str(tmp_path / "c.md"), "--claims", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "x beats y" in text and "old table" not in text and text.endswith("rest\n")
    assert "1 holds" in (tmp_path / "c.md").read_text()
    readme.write_text("no markers")
    assert cli.main(["export", str(tmp_path / "c.md"), "--claims", "--readme", str(readme)]) == 2


def test_export_verdicts_by_seed(tmp_path, monkeypatch, capsys):
    from oodlib import claims

    monkeypatch.setenv("OODLIB_CLAIMS", str(tmp_path / "claims"))
    monkeypatch.delenv("OODLIB_PROFILE", raising=False)
    for seed, lo in ((0, 0.05), (1, -0.05), (2, -0.3)):
        c = claims.Claim("x beats y", "Paper", "AUROC x - y", claims.Estimate(lo + 0.05, lo, lo + 0.1), 0.0)
        claims.record("00_basics", [c], "ci", seed)
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{cli.SEEDS_BEGIN}\nstale table\n{cli.SEEDS_END}\nb\n"
                      f"{cli.README_BEGIN}\nkeep\n{cli.README_END}\n")
    assert cli.main(["export", str(tmp_path / "s.md"), "--claims", "--seeds", "0", "1", "2",
                     "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "1 verdicts moved (1 between holds and does not hold here)" in text and "keep" in text
    assert "stale table" not in text and "| yes" in text


def test_zoo_export_and_import_commands(zoo_cache, tmp_path, capsys):
    archive = tmp_path / "zoo.tar"
    assert cli.main(["zoo", "export", str(archive)]) == 2  # an empty zoo: a clear error, no traceback
    assert "found none" in capsys.readouterr().err
    assert cli.main(["zoo", "import", str(archive)]) == 2
    assert "zoo export" in capsys.readouterr().err


def test_zoo_plan_and_train_at_smoke_size(zoo_cache, tmp_path, monkeypatch, capsys):
    """`zoo plan` lists a chapter's models with their hashes; `zoo train --only HASH` trains that one
    (as one job of an array would) and the plan then shows it in the zoo. Smoke sizes, on the MLP so
    that the test takes seconds."""
    from oodlib import synthetic_files, zoo_plan
    from oodlib.profiles import SMOKE

    tiny = SMOKE.replace(model="mlp")
    monkeypatch.setattr(cli, "_profile", lambda name: tiny)
    synthetic_files.write(tmp_path / "data", n=64)
    monkeypatch.setenv("OODLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("OODLIB_ZOO_TRAIN", "never")  # the trainer ignores it; the book would not
    assert cli.main(["zoo", "plan", "--profile", "smoke", "--chapter", "00", "--chapter", "01"]) == 0
    out = capsys.readouterr().out
    first = zoo_plan.chapter_needs("00", tiny)[0]
    assert first.hash in out and "plain (seed 0)" in out and "| ACET" in out
    assert f"{tiny.plain_seeds + 1} models for profile 'smoke'" in out  # 01's plain seeds are 00's
    assert cli.main(["zoo", "plan", "--profile", "smoke", "--chapter", "00", "--hashes"]) == 0
    assert capsys.readouterr().out.split() == [n.hash for n in zoo_plan.chapter_needs("00", tiny)]
    assert cli.main(["zoo", "train", "--profile", "smoke", "--chapter", "00", "--only", first.hash]) == 0
    assert "1 still missing (plain (seed 1))" in capsys.readouterr().out and first.cached
    assert cli.main(["zoo", "train", "--profile", "smoke", "--chapter", "00"]) == 0
    assert "the zoo holds every model of the plan" in capsys.readouterr().out
    assert cli.main(["zoo", "train", "--profile", "smoke", "--only", "0123456789ab"]) == 2
    assert "--only to name the hash" in capsys.readouterr().err
    # `train` trains one model on request too, although full and smoke do not train in the book's cells
    monkeypatch.setenv("OODLIB_ZOO_TRAIN", "never")
    assert cli.main(["train", "oe", "--profile", "smoke"]) == 0
    assert "oe: test error" in capsys.readouterr().out
