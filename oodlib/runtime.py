"""Seeds, devices and batched inference: the plumbing every chapter's setup cell uses.

Also the two pieces of file plumbing every cache shares: :func:`atomic_write` (a file is written
whole or not at all) and :func:`stable_hash` (the short hash that names a cached model or table).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .validation import check_positive_int, check_seed


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run is repeatable on one machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def derive_seed(base: int, name: str) -> int:
    """A seed for the stream called ``name`` (a data set, a split, an attack), derived from ``base``.

    Different names give unrelated seeds, so no two sets (nor the auxiliary pool) share a
    random stream.
    """
    base = check_seed(base, "base")
    sequence = np.random.SeedSequence([base, zlib.crc32(name.encode("utf-8"))])
    return int(sequence.generate_state(1)[0])


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], None]) -> Path:
    """Write ``path`` whole or not at all: into a temporary file beside it, then one rename.

    ``content`` is text, bytes, or a function that writes a given path (e.g.
    ``lambda p: torch.save(state, p)``). The temporary name carries the process id, so two
    processes writing the same file never share it; a reader sees the old file or the new one,
    never a half-written one (``os.replace`` is atomic on POSIX).
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        if callable(content):
            content(tmp)
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        elif isinstance(content, str):
            tmp.write_text(content)
        else:
            raise ValueError(f"expected content as str, bytes or a function of a path, "
                             f"got {type(content).__name__}")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def stable_hash(obj: object, strict: bool = False) -> str:
    """A short stable hash of a JSON-able object: SHA-256 of its sorted JSON, 12 hex digits.

    ``strict``: plain JSON only (``ValueError`` on anything else, NaN included); otherwise values
    JSON cannot hold are written as ``str(value)``.
    """
    try:
        blob = (json.dumps(obj, sort_keys=True, allow_nan=False) if strict
                else json.dumps(obj, sort_keys=True, default=str))
    except (TypeError, ValueError) as err:
        raise ValueError(f"expected a plain-JSON object (str, numbers, lists, dicts; no NaN): {err}") from err
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def torch_generator(seed: int) -> torch.Generator:
    """A local CPU ``torch.Generator`` seeded with ``seed`` (no global state is touched)."""
    return torch.Generator().manual_seed(check_seed(seed))


def numpy_generator(seed: int) -> np.random.Generator:
    """A local ``numpy.random.Generator`` seeded with ``seed``."""
    return np.random.default_rng(check_seed(seed))


def cache_dir() -> Path:
    """The model zoo and result cache: ``$OODLIB_CACHE`` or ``~/.cache/oodlib/zoo`` (created on demand)."""
    root = Path(os.environ.get("OODLIB_CACHE") or Path.home() / ".cache" / "oodlib" / "zoo")
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``with eval_mode(model):`` — the model in eval mode inside the block, its mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def input_gradient(
    objective: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(objective(x), ∇ₓ Σ objective(x))`` with respect to the input only (parameters get no ``.grad``).

    The one input gradient of oodlib: every attack, ODIN's and Mahalanobis' preprocessing step
    take it. ``objective`` maps a batch ``(N, ...)`` to one value per sample ``(N,)`` (checked);
    ``x`` is detached first. Returns the detached values and the gradient (shape and device of ``x``).
    """
    with torch.enable_grad():
        u = x.detach().requires_grad_(True)
        val = objective(u)
        if not isinstance(val, torch.Tensor) or val.shape != (len(u),):
            got = tuple(val.shape) if isinstance(val, torch.Tensor) else type(val).__name__
            raise ValueError(f"expected the objective to return shape ({len(u)},), got {got}")
        (grad,) = torch.autograd.grad(val.sum(), u)
    return val.detach(), grad


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else ``$OODLIB_DEVICE``, else CUDA when present, else CPU."""
    if device is None:
        device = os.environ.get("OODLIB_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"expected a device such as 'cpu' or 'cuda', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(dev)!r} requested but CUDA is not available; use 'cpu'")
    return dev


def numerics() -> str:
    """Where numbers are computed, as far as it moves their last digits: ``"cuda"`` or ``"cpu, N threads"``.

    The CPU's kernels split a sum over ``N`` threads, so another thread count (or the GPU) gives
    results that differ in the last float digits. Cached evaluations (:func:`oodlib.evaluate.cached_table`)
    carry it in their key, so a table computed elsewhere is recomputed here rather than compared
    with fresh numbers of this machine.
    """
    dev = default_device()
    return dev.type if dev.type != "cpu" else f"cpu, {torch.get_num_threads()} threads"


def standard_layout(x: torch.Tensor) -> torch.Tensor:
    """``x`` with the strides of a new row-major tensor of its shape (NCHW for images): ``x`` itself
    when it has them, else a copy.

    Why not ``x.contiguous()``: a one-channel image batch cropped through a permute has channels-last
    strides ``(HW, 1, W, 1)``, which ``contiguous()`` accepts (a size-1 dimension's stride is ignored)
    and which convolutions then run in channels-last layout. Measured on an AMD EPYC machine,
    torch 2.14.1's CPU backward of a 1×1 stride-2 convolution on 4 or 8 channels-last channels
    corrupts the heap at every odd batch size (the downsampling shortcut of ResNet-18 at ``smoke``'s
    eighth width). The data readers, the crops and :func:`oodlib.train.fit` hand the networks this
    layout; CUDA training asks for channels-last itself.
    """
    expected, step = [], 1
    for size in reversed(x.shape):
        expected.append(step)
        step *= size
    if x.stride() == tuple(reversed(expected)):
        return x
    return x.clone(memory_format=torch.contiguous_format)


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free model)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def input_step(
    objective: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, eps: float
) -> torch.Tensor:
    """``x + eps · sign(∇ₓ objective(x))``: the input preprocessing of ODIN (Liang et al. 2018, eq. 2)
    and of the Mahalanobis score (Lee et al. 2018, eq. 4), one batch, not clipped.

    ``objective`` is per sample, as for :func:`input_gradient`; ``eps == 0`` returns a detached copy.
    """
    if eps == 0:
        return x.detach().clone()
    return x.detach() + eps * input_gradient(objective, x)[1].sign()


@torch.no_grad()
def batched(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    batch_size: int = 1000,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Apply ``fn`` to ``x`` in batches (on ``device``) and concatenate the results on the CPU."""
    check_positive_int(batch_size, "batch_size")
    outs = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        if device is not None:
            xb = xb.to(device)
        outs.append(fn(xb).cpu())
    return torch.cat(outs)


def logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, batched, returned on the CPU."""
    with eval_mode(model):
        return batched(model, x, batch_size, model_device(model))


def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Softmax probabilities ``(N, K)`` of ``model`` on ``x``."""
    return torch.softmax(logits(model, x, batch_size), dim=1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``."""
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"expected x and y of equal non-zero length, got {len(x)} and {len(y)}")
    pred = logits(model, x, batch_size).argmax(1)
    return (pred == y.cpu()).float().mean().item()


def progress(iterable: Iterable | None = None, **kwargs: Any) -> Any:  # a tqdm bar
    """A progress bar: ``tqdm.auto`` in JupyterLab, text in a terminal or book build.

    ``$OODLIB_PROGRESS`` selects: ``auto`` (default), ``text`` (plain tqdm, used by
    ``make book`` so the HTML shows no widget placeholders) or ``off``.
    """
    mode = os.environ.get("OODLIB_PROGRESS", "auto").lower()
    if mode == "off":
        kwargs["disable"] = True
    if mode == "text":
        from tqdm import tqdm  # noqa: PLC0415 - the bar is chosen by $OODLIB_PROGRESS at call time
    else:
        from tqdm.auto import tqdm  # noqa: PLC0415 - tqdm.auto loads IPython; only when a bar is shown
    kwargs.setdefault("mininterval", 1.0)
    return tqdm(iterable, **kwargs)
