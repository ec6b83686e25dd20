"""GPU check of the paper-scale path: speed of every ``full`` method and kernel, CUDA against CPU.

On a lent GPU (``make gpu-check``, or ``python benchmarks/gpu_check.py --device cuda``):

1. **Training**: every (method, architecture, input shape) of the ``full`` zoo plan
   (:mod:`oodlib.zoo_plan`: ResNet-18 for the Fashion-MNIST methods, GOOD's "L" CNN for chapter 05,
   the MLP of chapter 03; the paper's hyper-parameters: ACET's 40 PGD steps, ATOM's out-ratio 2 and
   5-step PGD, CCU's 100 centroids per mixture) and of the papers' own settings
   (:mod:`oodlib.paper_settings`: LeNet and GOOD's L on MNIST; ResNet-18, DenseNet-BC-100, WRN-28-10
   and GOOD's XL on 3×32×32 SVHN / CIFAR, each at its setting's recipe and batch size) trains for
   ``--steps`` and for ``2 * --steps`` batches after a 2-step warm-up. The difference is the
   per-step time (ms/step, images/s); what is left of the shorter run is the one-time cost of a
   training (CCU's EM fit, a mining pass at this pool size), reported apart and never multiplied by
   the steps.
2. **Evaluation kernels**, a few batches each: PGD (adversarial noise), APGD (GOOD's AAUC), IBP
   bounds (GAUC), ODIN's (T, ε) grid, CCU's ball attack; and the mining pass (:func:`mining_speed`)
   on every NTOM and ATOM network at its own input shape.
3. **CUDA against CPU** on a small batch, same weights: logits, IBP bounds and ODIN scores,
   with TF32 off (tolerance below); skipped when ``--device cpu``.
4. **Projection** of the ``full`` book's wall time per chapter: each model of the zoo plan counted
   once, under the first chapter that needs it (:func:`plan`), its own steps (the q-ablation and
   Figure 2/5 runs have their own training sizes) times the measured step time, ATOM's and NTOM's
   mining passes (candidates x epochs at the mining rate of the model's network), plus each chapter's dominant
   evaluation attacks (:func:`evaluation`) at the measured kernel rates. An estimate, not a run.
   The papers' settings get a table of their own (:func:`setting_projection`): each of their 48
   models once at its own steps and measured step time, ATOM's mining, and the attacked threats of
   chapters 05 and 06.
5. **Beside the paper's GPU time**: ATOM's App. B.2 (Table 3) states how long one DenseNet model
   trained on one RTX 2080 Ti per method, the only GPU time any of the five papers states;
   :func:`paper_runtime` puts this device's projection of the same models beside it.

Writes ``gpu_check.json`` and ``gpu_check.md`` to ``--out``. Data are generated (uniform and
blob images, random labels: speed does not depend on content), so no download is needed; only
torch, torchvision, scikit-learn, scikit-image, scipy, pandas and tqdm are imported (no Jupyter,
no matplotlib). ``python benchmarks/gpu_check.py --device cpu --steps 2`` is the dry run CI uses:
on the CPU the script runs the ``smoke`` profile (``full``'s architectures and code at toy
sizes, an eighth of their width) with batch 16.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from oodlib import (
    apgd,
    atom,
    attacks,
    ball_attack,
    ccu,
    data,
    datasets,
    ibp,
    odin,
    paper_settings,
    profiles,
    reproduction,
    train,
    zoo,
)
from oodlib.runtime import default_device
from oodlib.zoo_plan import CHAPTERS, Need, needs, timing_key, unique

METHODS = ("plain", "oe", "ceda", "acet", "ccu", "good", "ntom", "atom")
# CUDA vs CPU: float32 with TF32 off, different reduction orders through ~20 layers.
RTOL, ATOL = 1e-3, 1e-4


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed(fn: Callable[[], object], dev: torch.device) -> tuple[object, float]:
    _sync(dev)
    t0 = time.perf_counter()
    out = fn()
    _sync(dev)
    return out, time.perf_counter() - t0


def _images(n: int, seed: int, shape: tuple[int, ...] = (1, 28, 28)) -> torch.Tensor:
    """Uniform noise, blurred half of the time: generated, no data set needed."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *shape, generator=g)
    smooth = torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2)
    return torch.where(torch.rand(n, 1, 1, 1, generator=g) < 0.5, x, smooth).clamp(0, 1)


def _method(name: str, p: profiles.Profile, pool: int, batch: int, dim: int) -> train.Method:
    hp = zoo.method_hparams(name, p)
    if name == "ccu":  # EM on what we generated (the full fit is a one-time cost per model), in input space
        hp.update(em_in=min(hp["em_in"], pool), em_out=min(hp["em_out"], pool), dim=dim)
    if name in ("ntom", "atom"):  # the pool is small here; the full mining pass is timed on its own
        hp.update(holdout=batch, n_candidates=pool - batch, n_keep=(pool - batch) // 4)
    return zoo.make_method(name, **hp)


def plan(p: profiles.Profile) -> list[Need]:
    """Every model of ``p``'s zoo plan once, under the first chapter that needs it (NTOM and ATOM
    included before chapter 06 picks their q: the q does not change their cost)."""
    return unique(needs(p, resolve=False))


def setting_plan(p: profiles.Profile, batch: int | None = None) -> list[Need]:
    """Every model of the papers' own settings (:func:`oodlib.zoo_plan.setting_needs`) once, each at its
    setting's recipe on top of ``p``; ``batch`` (the dry run's) replaces the settings' batch sizes."""
    items = unique(needs(p, settings=True))
    if batch is None:
        return items
    return [dataclasses.replace(n, profile=n.profile.replace(train={"batch_size": batch})) for n in items]


def _shape(n: Need) -> tuple[int, ...]:
    return datasets.IN_DISTRIBUTIONS[n.dataset].shape


def train_speed(items: list[Need], dev: torch.device, steps: int, warmup: int
                ) -> tuple[list[dict], dict[tuple[str, str, str], torch.nn.Module]]:
    """ms per training step, and the one-time cost of a training, of each :func:`timing_key` of
    ``items`` (at the recipe and batch size of the first model with that key): each trains for
    ``steps`` and ``2 * steps`` batches (after ``warmup`` steps); the difference is ``steps`` steps, the
    rest of the shorter run its one-time cost. Also returns the trained networks by key."""
    first: dict[tuple[str, str, str], Need] = {}
    for n in items:
        first.setdefault(timing_key(n), n)
    order = sorted(first, key=lambda k: (k[2], k[1] != first[k].profile.model, METHODS.index(k[0]), k[1]))
    rows, trained = [], {}
    for key in order:
        name, arch, _ = key
        p, shape = first[key].profile, _shape(first[key])
        B, K = p.train.batch_size, datasets.IN_DISTRIBUTIONS[first[key].dataset].num_classes
        n = max(steps * B, 2 * p.ccu.centroids)  # CCU's EM needs more images than centroids
        k_steps = math.ceil(n / B)
        x, x_out = _images(2 * n, 1, shape), _images(max(8 * n, 8 * B), 2, shape)
        y = torch.randint(0, K, (len(x),), generator=torch.Generator().manual_seed(3))
        kw = dict(batch_size=B, lr=p.train.lr, weight_decay=p.train.weight_decay,
                  lr_milestones=p.train.lr_milestones, x_out=x_out, device=dev, desc=name,
                  optimizer=p.train.optimizer, momentum=p.train.momentum, nesterov=p.train.nesterov,
                  augment=zoo.recipe_augmentation(p), augment_out=p.train.augment_out,
                  # the zoo's recipe; bf16 autocast is a GPU speed-up only: on a CPU it runs in fp32 (torch
                  # 2.14's oneDNN bf16 matmul stops the process with SIGFPE on GOOD XL's 65 536-wide layer at
                  # batch 24 on this machine's CPU)
                  bf16=p.train.bf16 and dev.type == "cuda")
        secs = []
        for k in (1, 2):
            plug = _method(name, p, len(x_out), B, math.prod(shape))
            classes = K + 1 if name in ("ntom", "atom") else K
            model = plug.wrap(zoo.build_network(arch, first[key].dataset, classes, p))
            if warmup:  # allocation, cuDNN autotuning
                train.fit(model, x[: warmup * B], y[: warmup * B], plug, **kw)
            secs.append(_timed(lambda: train.fit(model, x[: k * n], y[: k * n], plug, **kw), dev)[1])  # noqa: B023
        per_step = max(secs[1] - secs[0], 1e-9) / k_steps
        rows.append({"method": name, "arch": arch, "input": key[2], "batch": B, "steps": k_steps,
                     "ms/step": 1000 * per_step, "images/s": B / per_step,
                     "one-time (s)": max(secs[0] - k_steps * per_step, 0.0)})
        trained[key] = model.eval()
    return rows, trained


def kernel_speed(p: profiles.Profile, dev: torch.device, nets: dict, batches: int) -> list[dict]:
    """Images/s of each chapter's evaluation kernel, on ``batches`` batches of generated images."""
    B = p.train.batch_size
    n = B * batches
    x = _images(n, 4).to(dev)
    g = torch.Generator().manual_seed(5)
    plain, good, ccu_net = nets["plain"], nets["good"], nets["ccu"]
    steps = 5  # per attack: the per-step cost is what scales
    kernels: dict[str, tuple[Callable[[], object], float]] = {  # name -> (run, image-steps it does)
        "PGD (adversarial noise)": (lambda: attacks.pgd(
            plain, x, attacks.log_max_confidence, eps=p.attack.eps, steps=steps,
            step_size=p.attack.pgd_eval_step_size, generator=g), n * steps),
        "APGD (GOOD's AAUC)": (lambda: apgd.max_confidence_attack(
            good, x, p.good.eps, steps=steps, starts=("uniform",), generator=g, batch_size=B),
            n * steps),
        "IBP bounds (GAUC)": (lambda: ibp.certified_confidence(good, x, p.good.eps, batch_size=B),
                              n),
        "ODIN (T, eps) grid": (lambda: odin.odin_grid(
            plain, x, p.odin.temperatures, odin.epsilon_grid(p.odin.num_eps, p.odin.max_eps),
            batch_size=B),
            n * len(p.odin.temperatures)),
        "CCU ball attack": (lambda: ball_attack.attack_in_ball(
            ccu.LogExcess(ccu_net), ccu_net.metric, x, 1.0, ccu.excess_objective, steps=steps, restarts=2,
            proj_rounds=p.ccu.attack_proj_rounds, generator=g, show_progress=False), n * steps * 2),
    }
    rows = []
    for name, (run, work) in kernels.items():
        run()  # warm-up
        _, secs = _timed(run, dev)
        rows.append({"kernel": name, "image-steps/s": work / secs, "seconds": secs})
    return rows


def cuda_vs_cpu(nets: dict, p: profiles.Profile, dev: torch.device) -> list[dict]:
    """Largest |CUDA - CPU| of logits, IBP bounds and ODIN scores on 16 images, TF32 off."""
    if dev.type != "cuda":
        return [{"check": "CUDA vs CPU", "result": f"skipped: device is {dev.type}"}]
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    x = _images(16, 6)
    rows = []
    for what, fn, net in [
        ("logits (ResNet-18)", lambda m, z: m(z), nets["plain"]),
        ("IBP confidence bound (GOOD L)", lambda m, z: ibp.certified_confidence(m, z, p.good.eps),
         nets["good"]),
        ("ODIN score T=1000, eps=0.002", lambda m, z: odin.odin(m, z, 1000.0, 0.002), nets["plain"]),
    ]:
        with torch.no_grad() if "ODIN" not in what else torch.enable_grad():
            on_gpu = torch.as_tensor(fn(net.to(dev), x.to(dev))).detach().cpu()
            on_cpu = torch.as_tensor(fn(net.cpu(), x)).detach()
        diff = float((on_gpu - on_cpu).abs().max())
        ok = bool(torch.allclose(on_gpu, on_cpu, rtol=RTOL, atol=ATOL))
        rows.append({"check": what, "max |cuda - cpu|": diff, "tolerance": f"rtol {RTOL}, atol {ATOL}",
                     "result": "agree" if ok else "DIFFER"})
        net.to(dev)
    return rows


def evaluation(p: profiles.Profile) -> dict[str, list[tuple[str, float]]]:
    """Each chapter's dominant evaluation work, as (kernel of :func:`kernel_speed`, units of that kernel).

    A rough count from the profile (attacked images x steps x restarts x models x OOD sets), for the
    projection only: the chapters also score clean sets, draw figures and bootstrap, which is cheap
    beside these attacks at paper scale. Keys are :data:`oodlib.zoo_plan.CHAPTERS`.
    """
    sets = sum(1 for s in data.DATASETS.values()
               if not s.optional and (p.torchvision_sets or not s.full_only))
    n_good = len([n for n in needs(p, ["05"], resolve=False)])  # chapter 05's models (baselines, Q grid)
    linf = p.atom.attack_size * p.atom.eval_steps * p.atom.eval_restarts * 2  # L-inf and compositional
    noise = p.eval.attack_size * p.attack.pgd_eval_steps * p.attack.pgd_eval_restarts  # adv. noise, per model
    samples = p.attack.adv_samples_size * p.attack.adv_samples_steps  # adversarial samples, per model
    grid = (p.eval.test_size + sets * p.eval.ood_size) * len(p.odin.temperatures)  # ODIN's main study
    return {
        # 01: the alpha search is forward passes only (cheap beside training)
        "02": [("PGD (adversarial noise)", 4 * (noise + samples))],
        # 03: + ~30 % for the three same-manifold studies (2 of 10 classes)
        "03": [("ODIN (T, eps) grid", 1.3 * grid)],
        "04": [("CCU ball attack", 6 * p.ccu.attack_seeds * p.ccu.attack_steps * p.ccu.attack_restarts)],
        "05": [("APGD (GOOD's AAUC)", n_good * sets * p.good.eval_size * p.good.attack_steps
                * (2 + p.good.attack_restarts)),
               ("IBP bounds (GAUC)", n_good * sets * p.good.eval_size * (len(p.good.radii) + 1))],
        "06": [("PGD (adversarial noise)", 9 * sets * linf)],
        "07": [("PGD (adversarial noise)", 12 * sets * (linf + p.atom.attack_size * (
            p.bench.weak_steps + p.bench.strong_steps * p.bench.strong_restarts)))],
    }


def mining_speed(trained: dict[tuple[str, str, str], torch.nn.Module], dev: torch.device, batches: int,
                 batch: int) -> pd.DataFrame:
    """Images/s of the mining pass (:func:`oodlib.atom.ood_probability` over candidate outliers) on each
    NTOM and ATOM network :func:`train_speed` trained, at its own input shape: the settings' DenseNet
    on 3×32×32 mines at its own rate, not at the Fashion-MNIST network's."""
    rows = []
    for key, net in trained.items():
        if key[0] not in ("ntom", "atom"):
            continue
        x = _images(batches * batch, 6, tuple(int(s) for s in key[2].split("x"))).to(dev)
        atom.ood_probability(net, x[:batch], batch_size=batch)  # warm-up
        _, secs = _timed(lambda: atom.ood_probability(net, x, batch_size=batch), dev)  # noqa: B023
        rows.append({"method": key[0], "arch": key[1], "input": key[2], "mined images/s": len(x) / secs})
    return pd.DataFrame(rows)


def _mining_hours(items: list[Need], mining: pd.DataFrame) -> float:
    """Hours of the mining passes of ``items`` (:func:`_mining_images`) at their network's measured rate."""
    rate = mining.set_index(["method", "arch", "input"])["mined images/s"]
    return sum(_mining_images(n) / rate[timing_key(n)] for n in items if _mining_images(n)) / 3600


def _mining_images(n: Need) -> int:
    """Images ATOM / NTOM score to mine over a training: ``n_candidates`` per epoch (0 for random
    sampling and the other methods)."""
    cfg = n.config["hparams"] if not n.waits_for else zoo.method_hparams(n.method, n.profile)
    if n.method not in ("ntom", "atom") or cfg.get("sampling") != "mine":
        return 0
    return n.profile.train.epochs * int(cfg["n_candidates"])


def _training_hours(items: list[Need], speed: pd.DataFrame) -> float:
    """Hours to train ``items``: each its own steps at its key's measured ms/step (scaled by its batch
    size where it differs from the timed one), plus the key's one-time cost."""
    rows = speed.set_index(["method", "arch", "input"])
    hours = 0.0
    for n in items:
        r = rows.loc[timing_key(n)]
        per_step = r["ms/step"] / 1000 * n.profile.train.batch_size / r["batch"]
        hours += (n.steps * per_step + r["one-time (s)"]) / 3600
    return hours


def projection(p: profiles.Profile, speed: pd.DataFrame, kernels: pd.DataFrame, mining: pd.DataFrame
               ) -> pd.DataFrame:
    """Hours per chapter: its models of :func:`plan` (each once, its own steps) at the measured step
    time, their one-time costs as measured, their mining passes, and :func:`evaluation`'s attacks."""
    rate = kernels.set_index("kernel")["image-steps/s"]
    work = evaluation(p)
    models_ = plan(p)
    rows = []
    for chapter in (*CHAPTERS, "08"):
        mine = [n for n in models_ if n.chapter == chapter]
        train_h = _training_hours(mine, speed)
        mining_h = _mining_hours(mine, mining)
        eval_h = sum(units / rate[k] / 3600 for k, units in work.get(chapter, []))
        rows.append({"chapter": chapter, "models trained": len(mine), "steps": sum(n.steps for n in mine),
                     "training (h)": train_h, "mining (h)": mining_h,
                     "evaluation (h, dominant kernels)": eval_h,
                     "total (h, projected)": train_h + mining_h + eval_h})
    return pd.DataFrame(rows)


def setting_evaluation(setting: paper_settings.PaperSetting, p: profiles.Profile) -> float:
    """Image-steps of a setting's attacked evaluation (:func:`oodlib.reproduction.detection_table`):
    chapter 05 APGD with its extra starts plus the IBP bound on ``eval.attack_size`` images per OOD
    set and model, chapter 06 the L-inf PGD with restarts; the clean scoring of the other chapters is
    forward passes only (not counted)."""
    q = setting.profile(p)
    sets = len(datasets.IN_DISTRIBUTIONS[setting.dataset].ood_sets(reproduction.PAPER_KEYS[setting.paper]))
    per_image = {"05": q.good.attack_steps * (2 + q.good.attack_restarts) + 1,
                 "06": q.atom.eval_steps * q.atom.eval_restarts}.get(setting.chapter, 0)
    return len(setting.methods) * sets * q.eval.attack_size * per_image


def setting_projection(p: profiles.Profile, items: list[Need], speed: pd.DataFrame,
                       mining: pd.DataFrame) -> pd.DataFrame:
    """Hours per chapter of the papers' own settings: training (each model once, its steps at its
    network's and input's measured step time), ATOM/NTOM mining, and the attacked evaluation
    (:func:`setting_evaluation`), one image-step costed as a training step's per-image time of the
    setting's plain network (a forward and a backward pass either way)."""
    rows = speed.set_index(["method", "arch", "input"])
    out = []
    for chapter in CHAPTERS:
        mine = [n for n in items if n.chapter == chapter]
        if not mine:
            continue
        train_h = _training_hours(mine, speed)
        mining_h = _mining_hours(mine, mining)
        eval_h = 0.0
        for setting in paper_settings.for_chapter(chapter):
            plain = next(n for n in mine if n.name.startswith(f"{setting.key}: "))
            r = rows.loc[("plain", setting.arch, timing_key(plain)[2])]
            eval_h += setting_evaluation(setting, p) * r["ms/step"] / r["batch"] / 1000 / 3600
        out.append({"chapter": chapter, "settings": len(paper_settings.for_chapter(chapter)),
                    "models trained": len(mine), "steps": sum(n.steps for n in mine), "training (h)": train_h,
                    "mining (h)": mining_h, "evaluation (h, attacks)": eval_h,
                    "total (h, projected)": train_h + mining_h + eval_h})
    return pd.DataFrame(out)


def paper_runtime(items: list[Need], speed: pd.DataFrame, mining: pd.DataFrame) -> pd.DataFrame:
    """Our projected training hours of one model of ATOM's settings (DenseNet-BC-100; the mean over
    SVHN, CIFAR-10 and CIFAR-100, as Table 3 gives "the estimated average runtime for each result"),
    beside Table 3's hours on one RTX 2080 Ti (:data:`oodlib.atom.PAPER_TABLE3_HOURS`), for each
    method both time: the one measured GPU time the papers state, to set this device's projection
    against."""
    keys = {s.key for s in paper_settings.for_chapter("06")}
    rows = []
    for method in ("plain", "oe", "atom"):
        mine = [n for n in items if n.method == method and n.name.split(": ")[0] in keys]
        if not mine:
            continue
        hours = _training_hours(mine, speed) + _mining_hours(mine, mining)
        ours, paper = hours / len(mine), atom.paper_training_hours(method)
        rows.append({"method": method, "models": len(mine), "ours (h per model, projected)": ours,
                     "Chen et al. 2021 Table 3 (h, RTX 2080 Ti)": paper, "ours / paper": ours / paper})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per method (default 20)")
    ap.add_argument("--batches", type=int, default=4, help="batches of images per kernel (default 4)")
    ap.add_argument("--profile", choices=("full", "smoke"), default=None,
                    help="full (default on cuda) or smoke (default on cpu: a dry run of the same code)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the profile's; 16 on cpu)")
    ap.add_argument("--out", default="_build/gpu_check", help="folder for gpu_check.json / .md")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.batches < 1:
        raise SystemExit(f"expected --steps and --batches >= 1, got {args.steps} and {args.batches}")
    try:
        dev = default_device(args.device)
    except ValueError as err:  # cuda asked for and missing: say so, never fall back to the CPU
        raise SystemExit(f"error: {err}") from err
    dry = dev.type == "cpu"
    batch = args.batch or (16 if dry else None)
    p = profiles.get(args.profile or ("smoke" if dry else "full"))
    p = p.replace(train={"batch_size": batch or p.train.batch_size})
    if dry:
        print(f"dry run on the CPU: profile {p.name}, batch {p.train.batch_size} -- a test of this script, "
              "not a measurement of the full book")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    t0 = time.perf_counter()
    settings = setting_plan(p, batch)
    speed, trained = train_speed(plan(p) + settings, dev, args.steps, warmup=0 if dry else 2)
    speed = pd.DataFrame(speed)
    fmnist = "x".join(map(str, datasets.IN_DISTRIBUTIONS["fashion_mnist"].shape))
    nets = {m: trained[(m, p.ibp_model if m == "good" else p.model, fmnist)]
            for m in ("plain", "good", "ccu")}
    kernels = pd.DataFrame(kernel_speed(p, dev, nets, args.batches))
    checks = pd.DataFrame(cuda_vs_cpu(nets, p, dev))
    mining = mining_speed(trained, dev, args.batches, p.train.batch_size)
    proj = projection(p, speed, kernels, mining)
    proj_settings = setting_projection(p, settings, speed, mining)
    runtime = paper_runtime(settings, speed, mining)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"device": name, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "profile": p.name,
            "batch": p.train.batch_size, "steps": args.steps, "seconds": time.perf_counter() - t0}
    (out / "gpu_check.json").write_text(json.dumps({
        "meta": meta, "training": speed.to_dict("records"), "kernels": kernels.to_dict("records"),
        "mining": mining.to_dict("records"),
        "cuda_vs_cpu": checks.to_dict("records"), "projection": proj.to_dict("records"),
        "projection (papers' settings)": proj_settings.to_dict("records"),
        "beside ATOM's Table 3": runtime.to_dict("records")}, indent=1))
    md = (f"# GPU check: {name}, torch {torch.__version__}, {meta['date']}\n\n"
          f"## Training, `{p.name}` settings (batch {p.train.batch_size}, timed steps per row)\n\n"
          f"{speed.to_markdown(index=False, floatfmt='.1f')}\n\n## Evaluation kernels\n\n"
          f"{kernels.to_markdown(index=False, floatfmt='.1f')}\n\n## Mining passes (NTOM, ATOM)\n\n"
          f"{mining.to_markdown(index=False, floatfmt='.1f')}\n\n## CUDA against CPU\n\n"
          f"{checks.to_markdown(index=False)}\n\n## Projected time of the `{p.name}` book\n\n"
          f"{proj.to_markdown(index=False, floatfmt='.1f')}\n\n"
          f"Projection: every model of the zoo plan once (`python -m oodlib zoo plan --profile {p.name}`), "
          f"its own steps at the measured ms/step plus its one-time cost as measured here (CCU's EM on "
          f"this run's small sample: the full fit costs more); mining = ATOM/NTOM's candidates x epochs "
          f"at the mining rate measured on the model's own network; evaluation = each chapter's dominant "
          f"attacks (`evaluation()`: images x steps x restarts x models x sets) at the measured kernel "
          f"rates. Not included: "
          f"clean scoring, figures. An estimate, not a run.\n\n"
          f"## Projected time of the papers' own settings (`zoo train --settings`)\n\n"
          f"{proj_settings.to_markdown(index=False, floatfmt='.1f')}\n\n"
          f"Each model of `python -m oodlib zoo plan --profile {p.name} --settings` once, its own steps "
          f"at the "
          f"step time measured for its (method, network, input shape) above; evaluation = the attacked "
          f"threats of chapters 05 and 06 (`setting_evaluation()`), an image-step costed as a training "
          f"step's per-image time of the setting's plain network. An estimate, not a run.\n\n"
          f"## Beside the paper's GPU time (Chen et al. 2021, App. B.2, Table 3)\n\n"
          f"{runtime.to_markdown(index=False, floatfmt='.2f')}\n\n"
          f"One model of ATOM's DenseNet settings, training (ATOM: with its mining), ours projected on "
          f"this device and averaged over SVHN (20 epochs), CIFAR-10 and CIFAR-100 (100 each); the "
          f"paper's on one RTX 2080 Ti, its \"estimated average runtime for each result\" (its "
          f"standard training is the row of ODIN and Mahalanobis; MSP's is illegible in our copy).\n")
    (out / "gpu_check.md").write_text(md)
    print(md)
    print(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'} in {meta['seconds']:.0f} s")
    return 1 if (checks["result"] == "DIFFER").any() else 0


if __name__ == "__main__":
    raise SystemExit(main())
