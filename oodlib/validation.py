"""Input validation shared by every oodlib module.

Errors follow one rule: say what was expected and what was received, e.g.
``expected images of shape (N, 1, 28, 28) in [0, 1], got (28, 28) with max 255``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def describe(x: object) -> str:
    """A short description of ``x`` for error messages (type, shape, dtype, range)."""
    if isinstance(x, torch.Tensor):
        if x.numel() == 0:
            return f"tensor of shape {tuple(x.shape)} (empty)"
        xf = x.detach().float()
        return (
            f"tensor of shape {tuple(x.shape)}, dtype {x.dtype}, "
            f"min {xf.min().item():.4g}, max {xf.max().item():.4g}"
        )
    if isinstance(x, np.ndarray):
        if x.size == 0:
            return f"array of shape {x.shape} (empty)"
        if np.issubdtype(x.dtype, np.number):
            return f"array of shape {x.shape}, dtype {x.dtype}, min {x.min():.4g}, max {x.max():.4g}"
        return f"array of shape {x.shape}, dtype {x.dtype}"
    return f"{type(x).__name__}"


def check_images(
    x: object,
    name: str = "x",
    channels: int | None = None,
    size: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Check that ``x`` is a float image batch ``(N, C, H, W)`` with values in [0, 1].

    Returns ``x`` unchanged so it can be used inline. ``channels`` and ``size``
    (an int for square images or ``(H, W)``) are checked when given.
    """
    c = "C" if channels is None else str(channels)
    if size is None:
        hw = "H, W"
    elif isinstance(size, int):
        hw = f"{size}, {size}"
    else:
        hw = f"{size[0]}, {size[1]}"
    expected = f"expected {name} as a float tensor of shape (N, {c}, {hw}) in [0, 1]"
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{expected}, got {describe(x)}")
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{expected}, got {describe(x)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"{expected}, got {describe(x)} (convert with x.float() / 255)")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{expected}, got {describe(x)}")
    if size is not None:
        want = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(x.shape[2:]) != want:
            raise ValueError(f"{expected}, got {describe(x)}")
    lo, hi = x.min().item(), x.max().item()
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{expected}, got {describe(x)}")
    return x


def check_scores(s: object, name: str = "scores") -> np.ndarray:
    """Convert a 1-D score vector (tensor, array or sequence) to a float64 numpy array.

    Raises ``ValueError`` for empty input, wrong rank or non-finite values.
    """
    if isinstance(s, torch.Tensor):
        arr = s.detach().cpu().double().numpy()
    else:
        try:
            arr = np.asarray(s, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"expected {name} as a 1-D array of numbers, got {describe(s)}") from err
    if arr.ndim != 1:
        raise ValueError(f"expected {name} as a 1-D array of shape (N,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"expected {name} to contain at least one score, got an empty array")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"expected {name} to be finite, got {int((~np.isfinite(arr)).sum())} NaN/inf")
    return arr


def check_choice(value: str, choices: Sequence[str], what: str) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(choices)}")
    return value


def check_positive_int(value: object, name: str) -> int:
    """Raise ``ValueError`` unless ``value`` is an int > 0."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"expected {name} as a positive integer, got {value!r}")
    return int(value)
