"""One training loop with method plug-ins.

A :class:`Method` says how a batch is turned into a loss. The loop draws an
in-distribution batch of size B and, for methods that train on an
out-distribution (CEDA, OE, ACET, CCU, GOOD, ATOM), an out-distribution batch
of size ``ceil(out_ratio * B)`` (:attr:`Method.out_ratio`; Hein et al. 2019, eq. 1: the
out-batch ratio equals the loss weight λ, so λ = 1 gives 50 % of each batch from each side;
ATOM keeps its λ and its batch composition apart). :func:`in_out_logits` is the one joint
forward pass of an in- and an out-batch. Optimiser: Adam with L2 weight decay and the
learning rate divided by 10 at fixed fractions of training (Hein et al. §5:
epochs 50, 75, 90 of 100).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .augment import Augmentation
from .runtime import atomic_write, default_device, progress, standard_layout, torch_generator
from .validation import check_choice, check_images, check_number, check_positive_int, describe


@dataclass
class Batch:
    """What a method's loss sees at one step."""

    x_in: torch.Tensor
    y_in: torch.Tensor
    x_out: torch.Tensor | None
    step: int  # global step, from 0
    total_steps: int
    generator: torch.Generator  # on the CPU, for any randomness inside the loss


def in_out_logits(
    model: nn.Module, x_in: torch.Tensor, x_out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits on x_in, logits on x_out)`` from one forward pass of the concatenated batch.

    The papers' losses see both halves in one batch (batch-norm statistics included), so every
    plug-in with an out-distribution term takes its logits here.
    """
    if x_out is None or len(x_out) == 0:
        raise ValueError(f"expected a non-empty out-distribution batch, got {describe(x_out)}")
    logits = model(torch.cat([x_in, x_out]))
    return logits[: len(x_in)], logits[len(x_in) :]


class Method:
    """Base plug-in: plain cross-entropy training (no out-distribution)."""

    name = "plain"
    out_source: str | None = None  # None, "aux" (the auxiliary pool) or "noise"
    out_ratio: float = 1.0  # out-distribution batch size relative to B: ceil(out_ratio * B) per step
    bf16_safe: bool = True  # its loss may run under bf16 autocast (False: CCU's densities, GOOD's IBP bounds)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model this method trains, built around the base classifier (structure only).

        Must not depend on data: the zoo calls it before loading a checkpoint.
        CCU wraps the classifier with Gaussian mixtures here.
        """
        return model

    def init_from_data(self, model: nn.Module, x: torch.Tensor, x_out: torch.Tensor | None) -> None:
        """Data-dependent initialisation before training (e.g. EM for CCU's mixtures)."""

    def epoch_pool(
        self, model: nn.Module, x_out: torch.Tensor, epoch: int, generator: torch.Generator
    ) -> torch.Tensor:
        """The auxiliary images this epoch draws its out-batches from (ATOM mines them here)."""
        return x_out

    def make_out(self, x_in: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Generate an out-distribution batch from noise (``out_source == "noise"``)."""
        raise NotImplementedError(f"method {self.name!r} does not generate noise")

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy on the in-distribution batch."""
        ce = F.cross_entropy(model(batch.x_in), batch.y_in)
        return ce, {"ce": ce.item()}

    def test_split(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The test images and labels the model's test error is measured on (all, by default;
        a class-subset model keeps its own classes, relabelled)."""
        return x, y

    def after_step(self, model: nn.Module) -> None:
        """Hook run after every optimiser step (CCU clamps its variances here)."""

    def after_epoch(self, model: nn.Module, epoch: int) -> None:
        """Hook run after every epoch (0-based), before an interrupted run's state is saved (ATOM's
        Figure 2/5 run scores its probe here, :class:`oodlib.atom.Trajectory`)."""

    def param_groups(self, model: nn.Module, lr: float, weight_decay: float) -> list[dict]:
        """Optimiser parameter groups (CCU uses its own lr and no decay for the GMMs)."""
        return [{"params": [p for p in model.parameters() if p.requires_grad],
                 "lr": lr, "weight_decay": weight_decay}]


class Plain(Method):
    """Plain training: cross-entropy only."""


@dataclass
class History:
    """Per-epoch mean of each logged quantity, plus wall time."""

    logs: dict[str, list[float]] = field(default_factory=dict)
    wall_time_s: float = 0.0
    steps: int = 0


OPTIMIZERS = ("adam", "sgd")  #: the papers' optimisers: Adam (MNIST in Hein, CCU) and SGD with momentum


def make_optimizer(
    name: str, param_groups: list[dict], momentum: float = 0.0, nesterov: bool = False
) -> torch.optim.Optimizer:
    """Adam, or SGD with ``momentum`` (Nesterov's with ``nesterov``), over ``param_groups``.

    Each group carries its own ``lr`` and ``weight_decay`` (:meth:`Method.param_groups`: CCU keeps
    its mixtures at a small learning rate without decay). Hein et al. 2019 §5: Adam on MNIST, SGD with
    momentum otherwise; Liang et al. 2018 §4.1 and Chen et al. 2021 App. B: SGD with Nesterov momentum
    0.9; Meinke & Hein 2020 App. B: Adam on MNIST, SGD otherwise.
    """
    check_choice(name, list(OPTIMIZERS), "optimizer")
    momentum = check_number(momentum, "momentum", low=0, high=1)
    if not isinstance(nesterov, bool):
        raise ValueError(f"expected nesterov as a bool, got {describe(nesterov)}")
    if name == "adam":
        if momentum or nesterov:
            raise ValueError(f"expected momentum=0 and nesterov=False with Adam, got {momentum}, {nesterov}")
        return torch.optim.Adam(param_groups)
    if nesterov and momentum == 0:
        raise ValueError("expected momentum > 0 with nesterov=True (PyTorch's SGD requires it)")
    return torch.optim.SGD(param_groups, momentum=momentum, nesterov=nesterov)


def _resume(path: Path, run: dict, model: nn.Module, opt: torch.optim.Optimizer,
            sched: torch.optim.lr_scheduler.LRScheduler, gen: torch.Generator, hist: History) -> int:
    """Restore the state :func:`fit` wrote to ``path`` (weights only, no pickle); return its epoch.
    ``hist.wall_time_s`` gets the training time of the runs before (0 in a state that lacks it)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["run"] != run:
            raise ValueError(f"it was written by another run ({state['run']}, this one is {run})")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        hist.logs.update({k: list(v) for k, v in state["logs"].items()})
        hist.wall_time_s = float(state.get("wall_time_s", 0.0))
        return int(state["epoch"])
    except Exception as err:  # torch raises several types for a bad file
        raise ValueError(f"cannot resume from the training state {path} ({type(err).__name__}: "
                         f"{str(err)[:200]}); delete it to train from the start") from err


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: Method | None = None,
    *,
    epochs: int = 1,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 5e-4,
    lr_milestones: tuple[float, ...] = (0.5, 0.75, 0.9),
    x_out: torch.Tensor | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    desc: str | None = None,
    optimizer: str = "adam",
    momentum: float = 0.0,
    nesterov: bool = False,
    augment: Augmentation | None = None,
    augment_out: bool = False,
    state_path: str | Path | None = None,
    channels_last: bool | None = None,
    bf16: bool = False,
) -> History:
    """Train ``model`` in place on ``(x, y)`` with ``method`` and return its :class:`History`.

    Data stay as in-memory tensors (a DataLoader with ``ToTensor`` is ~100x
    slower on these machines). ``x_out`` is the auxiliary pool for methods with
    ``out_source == "aux"``. The recipe: ``optimizer`` (:func:`make_optimizer`: Adam, or SGD with
    ``momentum`` and optionally ``nesterov``), the learning rate divided by 10 at ``lr_milestones``
    (fractions of training), and ``augment`` applied to every in-batch on the device (and to the
    auxiliary out-batches with ``augment_out``, as GOOD and ATOM do; generated noise never).

    ``state_path``: after every epoch the whole training state (weights, optimiser, schedule, random
    generators, history) is written there at once (:func:`oodlib.runtime.atomic_write`); a call that
    finds the file resumes after its last epoch and ends with the weights an uninterrupted run gets;
    its ``wall_time_s`` is then the sum over the runs (the epoch a killed run did not finish is lost).

    On a GPU the training set is moved to the device once (no data loader, no copy per batch),
    cuDNN picks its fastest kernels for the fixed shapes, and the model runs in ``channels_last``
    memory format (``channels_last``: default on CUDA only; the same numbers up to float rounding,
    ``tests/test_zoo_train.py`` checks it on the CPU). The random draws are the same on every device.
    ``bf16``: the loss's forward pass (and ACET's / ATOM's inner attacks) under bfloat16 autocast,
    for methods whose loss allows it (:attr:`Method.bf16_safe`; never CCU's mixture densities or
    GOOD's interval bounds, which stay float32); the weights and the optimiser stay float32.

    With ``OODLIB_ZOO_TRAIN=never`` no model trains in this process (``RuntimeError``): the book is
    then built from a trained zoo, and ``make smoke`` checks that no chapter trains in a cell.
    """
    if os.environ.get("OODLIB_ZOO_TRAIN", "").strip().lower() == "never":
        raise RuntimeError("train.fit was called where OODLIB_ZOO_TRAIN=never (no training in this process): "
                           "train the book's models first with 'python -m oodlib zoo train'")
    method = method or Plain()
    check_images(x, "x")
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    if len(x) != len(y):
        raise ValueError(f"expected x and y of equal length, got {len(x)} and {len(y)}")
    if method.out_source == "aux":
        if x_out is None:
            raise ValueError(f"method {method.name!r} trains on an auxiliary pool: pass x_out")
        check_images(x_out, "x_out")
    # NCHW strides, so that no CPU convolution runs channels-last by accident (runtime.standard_layout)
    x, x_out = standard_layout(x), None if x_out is None else standard_layout(x_out)
    dev = default_device(device)
    nhwc = dev.type == "cuda" if channels_last is None else bool(channels_last)
    model.to(dev).train()
    if nhwc:  # NHWC convolutions (Tensor Cores on a GPU)
        model.to(memory_format=torch.channels_last)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN times its kernels once, keeps the best
    x_dev, y_dev = x.to(dev), y.to(dev)  # the whole set on the device once
    gen = torch_generator(seed)
    method.init_from_data(model, x, x_out)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total = epochs * steps_per_epoch
    opt = make_optimizer(optimizer, method.param_groups(model, lr, weight_decay), momentum, nesterov)
    augment = augment or Augmentation()
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=sorted({max(1, round(f * total)) for f in lr_milestones}), gamma=0.1
    )
    n_out = math.ceil(method.out_ratio * batch_size)
    hist = History()
    t0 = time.perf_counter()
    step = 0
    run = {"epochs": epochs, "batch_size": batch_size, "n": len(x), "seed": seed, "method": method.name}
    first = 0
    if state_path is not None and Path(state_path).is_file():
        first = _resume(Path(state_path), run, model, opt, sched, gen, hist)
        step = first * steps_per_epoch
    for epoch in range(first, epochs):
        perm = torch.randperm(len(x), generator=gen)
        pool = method.epoch_pool(model, x_out, epoch, gen).to(dev) if method.out_source == "aux" else None
        model.train()
        sums: dict[str, float] = {}
        bar = progress(range(steps_per_epoch), desc=f"{desc or method.name} epoch {epoch + 1}/{epochs}",
                       leave=False)
        for i in bar:
            idx = perm[i * batch_size : (i + 1) * batch_size]
            xb, yb = x_dev[idx.to(dev)], y_dev[idx.to(dev)]
            xo = None
            if method.out_source == "aux":
                xo = pool[torch.randint(len(pool), (n_out,), generator=gen).to(dev)]
            elif method.out_source == "noise":
                xo = method.make_out(x[idx], gen).to(dev)  # drawn on the CPU: the same noise on every device
            xb = augment(xb, gen)
            if xo is not None and augment_out and method.out_source == "aux":
                xo = augment(xo, gen)
            if nhwc:
                xb = xb.contiguous(memory_format=torch.channels_last)
                xo = None if xo is None else xo.contiguous(memory_format=torch.channels_last)
            batch = Batch(xb, yb, xo, step, total, gen)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16 and method.bf16_safe):
                loss, logs = method.loss(model, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            method.after_step(model)
            step += 1
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            if i % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        bar.close()
        for k, v in sums.items():
            hist.logs.setdefault(k, []).append(v / steps_per_epoch)
        method.after_epoch(model, epoch)
        if state_path is not None and epoch + 1 < epochs:
            state = {"run": run, "epoch": epoch + 1, "model": model.state_dict(), "opt": opt.state_dict(),
                     "sched": sched.state_dict(), "gen": gen.get_state(), "torch_rng": torch.get_rng_state(),
                     "logs": hist.logs, "wall_time_s": hist.wall_time_s + time.perf_counter() - t0}
            atomic_write(state_path, lambda p, s=state: torch.save(s, p))
    model.eval()
    hist.wall_time_s += time.perf_counter() - t0  # summed over the runs that resumed it
    hist.steps = step
    return hist
