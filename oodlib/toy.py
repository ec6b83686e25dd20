"""2-D toy problems: the data, the trainer and the confidence grid of the toy figures.

Hein et al. 2019 Fig. 2 (chapter 01) and Meinke & Hein 2020 Fig. 1 (chapter 04) show a model's
confidence far beyond a small 2-D in-distribution. :func:`toy_blobs` draws the data,
:func:`fit_toy` trains any :class:`oodlib.train.Method` on points (the image loop
:func:`oodlib.train.fit` expects images) and :func:`confidence_grid` evaluates the map.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from . import train
from .runtime import eval_mode, model_device, torch_generator
from .validation import check_number, check_positive_int, describe


def toy_blobs(n: int = 300, k: int = 3, seed: int = 0, spread: float = 0.35) -> tuple[Tensor, Tensor]:
    """``n`` 2-D points in ``k`` Gaussian blobs on the unit circle, and their labels.

    The toy in-distribution of the confidence-map figures (Hein et al. 2019 Fig. 2,
    Meinke & Hein 2020 Fig. 1): data live in a small region, so the maps can be
    zoomed out far beyond it.
    """
    n = check_positive_int(n, "n")
    k = check_positive_int(k, "k")
    g = torch_generator(seed)
    y = torch.arange(n) % k
    angles = 2 * math.pi * y.double() / k + math.pi / 2
    centres = torch.stack([angles.cos(), angles.sin()], 1).float()
    x = centres + spread * torch.randn(n, 2, generator=g)
    return x, y


def fit_toy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    method: train.Method | None = None,
    x_out: torch.Tensor | None = None,
    *,
    steps: int = 300,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    batch_size: int | None = None,
    seed: int = 0,
) -> list[float]:
    """Train on points ``(N, d)`` (the toy problems) with the hooks of a :class:`oodlib.train.Method`.

    :func:`oodlib.train.fit` expects images; this is the same loop for points:
    ``method.init_from_data``, Adam on ``method.param_groups``, ``method.loss``
    on a batch (full batch by default) plus an out-batch of ``ceil(lam·B)``
    points drawn from ``x_out`` when the method trains on one, then
    ``method.after_step``. Returns the loss per step.
    """
    method = method or train.Plain()
    if (not isinstance(x, Tensor) or x.ndim != 2 or len(x) == 0 or not torch.is_floating_point(x)
            or not bool(torch.isfinite(x).all())):
        raise ValueError(f"expected x as finite float points of shape (N, d), got {describe(x)}")
    check_positive_int(steps, "steps")
    if len(x) != len(y):
        raise ValueError(f"expected x and y of equal length, got {len(x)} and {len(y)}")
    if method.out_source == "aux" and x_out is None:
        raise ValueError(f"method {method.name!r} trains on an out-distribution: pass x_out")
    gen = torch_generator(seed)
    method.init_from_data(model, x, x_out)
    opt = torch.optim.Adam(method.param_groups(model, lr, weight_decay))
    bs = len(x) if batch_size is None else check_positive_int(batch_size, "batch_size")
    n_out = math.ceil(method.out_ratio * bs)
    model.train()
    losses = []
    for step in range(steps):
        idx = torch.randint(len(x), (bs,), generator=gen) if bs < len(x) else torch.arange(len(x))
        xo = None
        if method.out_source == "aux":
            xo = x_out[torch.randint(len(x_out), (n_out,), generator=gen)]
        loss, _ = method.loss(model, train.Batch(x[idx], y[idx], xo, step, steps, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        method.after_step(model)
        losses.append(loss.item())
    model.eval()
    return losses


def grid_points(lim: float, n: int = 200, center: tuple[float, float] = (0.0, 0.0)
                ) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """An ``n × n`` grid over ``center ± lim``: ``(xs, ys, points)`` with ``points`` ``(n², 2)`` float32,
    row-major (``points[i * n + j] = (xs[j], ys[i])``)."""
    lim = check_number(lim, "lim", low=0, low_open=True)
    n = check_positive_int(n, "n")
    xs = np.linspace(center[0] - lim, center[0] + lim, n)
    ys = np.linspace(center[1] - lim, center[1] + lim, n)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)


@torch.no_grad()
def confidence_grid(model: nn.Module, lim: float, n: int = 200, center: tuple[float, float] = (0.0, 0.0)
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Max confidence and prediction of a 2-D model on an ``n × n`` grid over ``center ± lim``.

    Returns ``(xs, ys, confidence, prediction)`` with ``confidence[i, j]`` at ``(xs[j], ys[i])``;
    the model runs in eval mode on its own device (its mode is restored).
    """
    xs, ys, pts = grid_points(lim, n, center)
    with eval_mode(model):
        p = torch.softmax(model(pts.to(model_device(model))).double(), dim=1).cpu()
    conf, pred = p.max(1)
    return xs, ys, conf.reshape(n, n).numpy(), pred.reshape(n, n).numpy()
