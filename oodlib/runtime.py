"""Seeds, devices and batched inference: the plumbing every chapter's setup cell uses."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .validation import check_positive_int


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run is repeatable on one machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


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


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free model)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


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
    was_training = model.training
    model.eval()
    try:
        return batched(model, x, batch_size, model_device(model))
    finally:
        model.train(was_training)


def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Softmax probabilities ``(N, K)`` of ``model`` on ``x``."""
    return torch.softmax(logits(model, x, batch_size), dim=1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``."""
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"expected x and y of equal non-zero length, got {len(x)} and {len(y)}")
    pred = logits(model, x, batch_size).argmax(1)
    return (pred == y.cpu()).float().mean().item()


def progress(iterable=None, **kwargs):  # noqa: ANN001, ANN201 - thin tqdm wrapper
    """A progress bar: ``tqdm.auto`` in JupyterLab, text in a terminal or book build.

    ``$OODLIB_PROGRESS`` selects: ``auto`` (default), ``text`` (plain tqdm, used by
    ``make book`` so the HTML shows no widget placeholders) or ``off``.
    """
    mode = os.environ.get("OODLIB_PROGRESS", "auto").lower()
    if mode == "off":
        kwargs["disable"] = True
    if mode == "text":
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    kwargs.setdefault("mininterval", 1.0)
    return tqdm(iterable, **kwargs)
