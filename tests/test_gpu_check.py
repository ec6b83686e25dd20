"""The GPU check script, dry-run on the CPU (issue 16): the same code a lent GPU runs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def test_dry_run_on_cpu_writes_every_table(tmp_path, capsys):
    gpu_check = _load()
    assert gpu_check.main(["--device", "cpu", "--steps", "1", "--batches", "1", "--batch", "4",
                           "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    trained = {(r["method"], r["arch"]) for r in report["training"]}
    assert {m for m, _ in trained} == set(gpu_check.METHODS)  # every method, on each architecture it needs
    assert ("good", "good_l") in trained and ("acet", "resnet18") in trained and ("acet", "good_l") in trained
    assert all(r["ms/step"] > 0 for r in report["training"])
    assert {r["kernel"] for r in report["kernels"]} >= {"PGD (adversarial noise)", "IBP bounds (GAUC)",
                                                        "ODIN (T, eps) grid"}
    # the mining pass timed on every NTOM / ATOM network at its own input, not the Fashion-MNIST one's
    mined = {(r["method"], r["arch"], r["input"]) for r in report["mining"]}
    assert {("atom", "densenet_bc", "3x32x32"), ("ntom", "densenet_bc", "3x32x32")} <= mined
    trained_keys = {(r["method"], r["arch"], r["input"]) for r in report["training"]}
    assert mined == {k for k in trained_keys if k[0] in ("ntom", "atom")} and all(
        r["mined images/s"] > 0 for r in report["mining"])
    assert report["cuda_vs_cpu"][0]["result"].startswith("skipped")
    proj = report["projection"]
    assert [r["chapter"] for r in proj] == ["00", "01", "02", "03", "04", "05", "05b", "06", "07", "08"]
    # each model of the plan once, with its own steps (the q-ablation models train on fewer images)
    from oodlib import profiles, zoo_plan
    plan = gpu_check.plan(profiles.SMOKE.replace(train={"batch_size": 4}))  # the run above: --batch 4
    assert sum(r["models trained"] for r in proj) == len(plan) == len({n.hash or n.name for n in plan})
    assert sum(r["steps"] for r in proj) == sum(n.steps for n in plan)
    assert ("plain", "mlp") in trained  # chapter 03's second architecture is timed too
    assert all(r["one-time (s)"] >= 0 for r in report["training"])
    assert zoo_plan.CHAPTERS[-1] == "07"
    assert report["meta"]["profile"] == "smoke"
    # the papers' own settings: each of their models once, on its own network and input shape
    timed = {(r["method"], r["arch"], r["input"]) for r in report["training"]}
    assert {("plain", "densenet_bc", "3x32x32"), ("good", "good_xl", "3x32x32"), ("acet", "lenet", "1x28x28"),
            ("plain", "wrn_28_10", "3x32x32")} <= timed
    settings = gpu_check.setting_plan(profiles.SMOKE, batch=4)
    by_chapter = report["projection (papers' settings)"]
    assert [r["chapter"] for r in by_chapter] == ["01", "03", "04", "05", "06"]
    assert sum(r["models trained"] for r in by_chapter) == len(settings) == len({n.hash for n in settings})
    assert sum(r["steps"] for r in by_chapter) == sum(n.steps for n in settings)
    assert all(r["evaluation (h, attacks)"] > 0 for r in by_chapter if r["chapter"] in ("05", "06"))
    # ATOM's Table 3 beside our projection of the same DenseNet models, per method it times
    beside = {r["method"]: r for r in report["beside ATOM's Table 3"]}
    assert set(beside) == {"plain", "oe", "atom"} and all(r["models"] == 3 for r in beside.values())
    assert beside["atom"]["Chen et al. 2021 Table 3 (h, RTX 2080 Ti)"] == 21.0
    assert all(r["ours (h per model, projected)"] > 0 for r in beside.values())
    assert "dry run on the CPU" in capsys.readouterr().out
    assert (tmp_path / "gpu_check.md").read_text().startswith("# GPU check")


def test_cuda_asked_for_and_missing_is_an_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(SystemExit, match="CUDA"):
        _load().main(["--device", "cuda", "--out", str(tmp_path)])
