"""Input validation shared by every oodlib module.

Errors follow one rule: say what was expected and what was received, e.g.
``expected images of shape (N, 1, 28, 28) in [0, 1], got (28, 28) with max 255``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

IMAGE_SHAPE: tuple[int, int, int] = (1, 28, 28)  #: the book's images: one channel, 28 × 28, in [0, 1]
IMAGE_SIDE = IMAGE_SHAPE[-1]


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


def check_number(
    value: object,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float after checking it is a real number within bounds.

    The one scalar check of oodlib: Python and numpy numbers are accepted (``bool`` is not);
    NaN is always refused and ±inf unless ``allow_inf``; ``low``/``high`` are inclusive unless
    ``low_open``/``high_open``; ``integer`` asks for an integral value (returned as a float —
    use :func:`check_positive_int` or :func:`check_int` for an ``int``). The message names what
    was expected and what was received, e.g. ``expected eps as a finite number in [0, 1], got -0.1``.
    """
    lo_b, hi_b = "(" if low_open else "[", ")" if high_open else "]"
    kind = "an integer" if integer else ("a number" if allow_inf else "a finite number")
    if low is not None and high is not None:
        want = f"{kind} in {lo_b}{low:g}, {high:g}{hi_b}"
    elif low is not None:
        want = f"{kind} {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        want = f"{kind} {'<' if high_open else '<='} {high:g}"
    else:
        want = kind
    ok = not isinstance(value, bool | np.bool_) and isinstance(value, int | float | np.integer | np.floating)
    v = float(value) if ok else math.nan
    ok = ok and not math.isnan(v) and (allow_inf or math.isfinite(v))
    ok = ok and (not integer or (math.isfinite(v) and v == int(v)))
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        raise ValueError(f"expected {name} as {want}, got {value!r}")
    return v


def check_int(value: object, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer (numpy ints too, not bool)
    within the inclusive bounds ``low``/``high``."""
    bounds = ("" if low is None else f" >= {low}") + ("" if high is None else f" <= {high}")
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer) or (
        low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"expected {name} as an integer{bounds}, got {value!r}")
    return int(value)


def check_seed(seed: object, name: str = "seed") -> int:
    """A random seed: a non-negative integer."""
    return check_int(seed, name, low=0)


def check_shape(shape: object, name: str = "shape") -> tuple[int, int, int]:
    """An image shape ``(C, H, W)`` of positive ints."""
    expected = f"expected {name} as (C, H, W) with positive ints, got {shape!r}"
    if not isinstance(shape, Sequence) or len(shape) != 3:
        raise ValueError(expected)
    if any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s <= 0 for s in shape):
        raise ValueError(expected)
    c, h, w = (int(s) for s in shape)
    return c, h, w
