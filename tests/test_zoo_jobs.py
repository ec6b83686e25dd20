"""The zoo as the target of training jobs (issue 27): an interrupted training resumes to the weights
of an uninterrupted one, two processes that need one model train it once, and a profile that does not
train in the book's cells names the command that does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from oodlib import models, profiles, train, zoo

# a CEDA run: its noise batches draw from the training generator, so resuming must restore it
FIT = """
import sys, time, torch
from oodlib import models, train, zoo
g = torch.Generator().manual_seed(0)
x, y = torch.rand(256, 1, 28, 28, generator=g), torch.randint(0, 10, (256,), generator=g)
method = zoo.make_method("ceda")
slow = method.after_step
method.after_step = lambda m: (time.sleep(0.02), slow(m))  # an epoch of ~0.2 s: time to be killed
train.fit(models.build("small_cnn", width=4, seed=0), x, y, method, epochs=6, batch_size=32,
          state_path=sys.argv[1])
"""


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(256, 1, 28, 28, generator=g), torch.randint(0, 10, (256,), generator=g)


def test_a_killed_training_resumes_to_the_uninterrupted_weights(tmp_path):
    state = tmp_path / "run.state.pt"
    env = {**os.environ, "OODLIB_PROGRESS": "off"}
    proc = subprocess.Popen([sys.executable, "-c", FIT, str(state)], env=env)
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the training ended before it could be killed"
    saved = torch.load(state, weights_only=True)
    done, before = saved["epoch"], saved["wall_time_s"]
    assert 1 <= done < 6  # killed mid-training, after at least one epoch was saved
    assert before > 0.1  # each epoch sleeps 0.16 s

    x, y = _data()
    resumed, whole = (models.build("small_cnn", width=4, seed=0) for _ in range(2))
    t0 = time.perf_counter()
    h = train.fit(resumed, x, y, zoo.make_method("ceda"), epochs=6, batch_size=32, state_path=state)
    elapsed = time.perf_counter() - t0
    train.fit(whole, x, y, zoo.make_method("ceda"), epochs=6, batch_size=32)
    assert all(torch.equal(p, q) for p, q in zip(resumed.state_dict().values(), whole.state_dict().values(),
                                                 strict=True))
    assert len(h.logs["ce"]) == 6  # the history of the epochs before the kill came back too
    # the training time of the killed run is counted: the resumed run's own, plus what the state held
    assert h.wall_time_s - before <= elapsed < h.wall_time_s


def test_a_state_from_another_run_is_refused(tmp_path):
    x, y = _data()
    state = tmp_path / "run.state.pt"
    train.fit(models.build("mlp", hidden=8), x, y, epochs=2, batch_size=64, state_path=state)
    assert state.exists()
    with pytest.raises(ValueError, match=r"another run .* delete it"):
        train.fit(models.build("mlp", hidden=8), x, y, epochs=3, batch_size=64, state_path=state)


# two processes ask for one model at once: the first trains it under the model's lock (slowly, so
# that the second is waiting), the second finds it trained and loads it
TWO = """
import sys, time, pathlib
from oodlib import profiles, zoo
prof = profiles.CI.replace(name="tiny", train={"train_size": 256, "epochs": 1, "batch_size": 64})
real = zoo._train
def slow(*args, **kwargs):
    print("TRAINED", flush=True)
    time.sleep(1.5)
    return real(*args, **kwargs)
zoo._train = slow
pathlib.Path(sys.argv[2]).touch()
while not pathlib.Path(sys.argv[1]).exists():
    time.sleep(0.01)
print("HASH", zoo.load_or_train("plain", profile=prof).weights_hash, flush=True)
"""


def test_two_processes_train_one_model_once(tmp_path):
    go = tmp_path / "go"
    env = {**os.environ, "OODLIB_CACHE": str(tmp_path / "zoo"), "OODLIB_PROGRESS": "off",
           "OODLIB_ZOO_TRAIN": "cells"}
    procs = [subprocess.Popen([sys.executable, "-c", TWO, str(go), str(tmp_path / f"ready{i}")], env=env,
                              stdout=subprocess.PIPE, text=True) for i in range(2)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sum(o.count("TRAINED") for o in outs) == 1, outs
    hashes = {line for o in outs for line in o.splitlines() if line.startswith("HASH")}
    assert len(hashes) == 1, outs
    left = sorted(p.name for p in (tmp_path / "zoo").iterdir() if p.suffix not in (".pt", ".json", ".lock"))
    assert not left and not list((tmp_path / "zoo").glob("*.state.pt")), left


def test_a_cold_zoo_names_the_command_that_trains_it(zoo_cache, tiny_profile, monkeypatch):
    monkeypatch.delenv("OODLIB_ZOO_TRAIN", raising=False)
    assert zoo.training_allowed(profiles.CI) and zoo.training_allowed(tiny_profile)
    assert not zoo.training_allowed(profiles.FULL) and not zoo.training_allowed(profiles.SMOKE)
    monkeypatch.setenv("OODLIB_ZOO_TRAIN", "never")
    with pytest.raises(zoo.MissingModelError, match=r"'python -m oodlib zoo train --profile tiny'"):
        zoo.load_or_train("plain", profile=tiny_profile)
    assert not list(Path(zoo_cache).glob("*.pt"))
    x, y = torch.rand(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)
    with pytest.raises(RuntimeError, match="OODLIB_ZOO_TRAIN=never"):  # nothing trains, not even directly
        train.fit(models.build("mlp", hidden=8), x, y)
    monkeypatch.setenv("OODLIB_ZOO_TRAIN", "cells")
    assert zoo.training_allowed(profiles.FULL)
    monkeypatch.setenv("OODLIB_ZOO_TRAIN", "sometimes")
    with pytest.raises(ValueError, match=r"OODLIB_ZOO_TRAIN .* 'sometimes'"):
        zoo.training_allowed(profiles.CI)


def test_the_slurm_array_script_runs_one_model_per_task(tmp_path):
    script = Path(__file__).parents[1] / "scripts" / "zoo_array.sbatch"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    hashes = tmp_path / "hashes.txt"
    hashes.write_text("aaaaaaaaaaaa\nbbbbbbbbbbbb\n")
    env = {**os.environ, "ZOO_HASHES": str(hashes), "PYTHON": "echo", "SLURM_ARRAY_TASK_ID": "2"}
    env.pop("OODLIB_PROFILE", None)
    out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.split() == ["-m", "oodlib", "zoo", "train", "--profile", "full",
                                                          "--only", "bbbbbbbbbbbb"]
    env["SLURM_ARRAY_TASK_ID"] = "3"
    out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and "no hash on line 3" in out.stderr


def test_zoo_plan_projects_hours_from_a_gpu_check_per_network_and_input(tmp_path):
    """`zoo plan`'s projected hours: each model's steps at the measured time per image of its (method,
    network, input shape), scaled to its own batch size (a settings model at 3x32x32 is not a 28 px one)."""
    import json

    from oodlib import zoo_plan
    rows = [{"method": "plain", "arch": "resnet18", "input": "1x28x28", "batch": 16, "ms/step": 160.0},
            {"method": "plain", "arch": "resnet18", "input": "3x32x32", "batch": 16, "ms/step": 320.0}]
    path = tmp_path / "gpu_check.json"
    path.write_text(json.dumps({"training": rows}))
    seconds = zoo_plan.step_seconds(path)
    assert seconds == {("plain", "resnet18", "1x28x28"): 0.01, ("plain", "resnet18", "3x32x32"): 0.02}
    fmnist = next(n for n in zoo_plan.needs(profiles.FULL, ["00"], resolve=False) if n.method == "plain")
    cifar = next(n for n in zoo_plan.setting_needs(profiles.FULL, ["04"])
                 if n.method == "plain" and n.dataset == "cifar10")
    assert zoo_plan.timing_key(cifar) == ("plain", "resnet18", "3x32x32")
    table = zoo_plan.plan_table([fmnist, cifar, *zoo_plan.setting_needs(profiles.FULL, ["03"])[:1]], seconds)
    for row, n, per_image in zip(table, (fmnist, cifar), (0.01, 0.02), strict=False):
        assert row["projected h"] == round(n.steps * per_image * n.profile.train.batch_size / 3600, 2) > 0
    assert table[2]["projected h"] == "—"  # DenseNet-BC was not timed
    assert zoo_plan.step_seconds(tmp_path / "absent.json") == {}
