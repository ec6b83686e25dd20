"""Figures shared by the chapters: ROC curves, confidence histograms, image grids.

The seaborn style is set once by :func:`set_style` (each chapter's setup cell).
Every function returns the matplotlib ``Figure`` it drew on.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure

from . import metrics, toy
from .atom import select_slice
from .ccu import CCU
from .data import OODSet
from .relu_theory import activation_pattern
from .runtime import eval_mode, model_device
from .validation import check_images, check_positive_int, check_scores


def set_style() -> None:
    """The book's plotting style (seaborn whitegrid, readable font sizes) and table display.

    Also lets pandas show whole cells, so claims-check evidence is not cut to ``...``.
    """
    pd.set_option("display.max_colwidth", 200)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 60)

    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "axes.titlesize": "medium"})


def _to_np(s: torch.Tensor | np.ndarray | Sequence[float]) -> np.ndarray:
    return check_scores(s)


def roc_curves(
    s_in: torch.Tensor | np.ndarray,
    s_out: Mapping[str, torch.Tensor | np.ndarray],
    title: str = "ROC (in-distribution positive)",
    ax: plt.Axes | None = None,
) -> Figure:
    """ROC curve per OOD set, AUROC in the legend, the 95 % TPR line marked."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    for name, so in s_out.items():
        fpr, tpr, _ = metrics.roc_curve(s_in, so)
        ax.plot(fpr, tpr, label=f"{name} ({metrics.auroc(s_in, so):.3f})")
    ax.axhline(0.95, color="grey", ls=":", lw=1)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    ax.set(xlabel="FPR (OOD accepted)", ylabel="TPR (in-distribution accepted)", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(fontsize="x-small", title="AUROC", title_fontsize="x-small", loc="lower right")
    return ax.figure


def confidence_histograms(
    conf: Mapping[str, torch.Tensor | np.ndarray],
    bins: int = 30,
    log: bool = True,
    title: str = "max softmax confidence",
    axes: Sequence[plt.Axes] | None = None,
) -> Figure:
    """One small histogram per data set of max-softmax confidences (Hein et al. Fig. 4)."""
    n = len(conf)
    if n == 0:
        raise ValueError("expected at least one set of confidences, got none")
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.2), sharey=True, squeeze=False)
        axes = axes[0]
    for ax, (name, c) in zip(axes, conf.items(), strict=True):
        c = _to_np(c)
        ax.hist(c, bins=np.linspace(0, 1, bins + 1), color="C0", log=log)
        ax.set_title(f"{name}\nMMC {c.mean():.3f}", fontsize="small")
        ax.set_xlim(0, 1)
    axes[0].set_ylabel("count" + (" (log)" if log else ""))
    fig = axes[0].figure
    fig.suptitle(title, fontsize="medium", y=1.05)
    return fig


def score_histograms(
    s_in: torch.Tensor | np.ndarray,
    s_out: torch.Tensor | np.ndarray,
    out_name: str = "OOD",
    tpr: float = 0.95,
    ax: plt.Axes | None = None,
) -> Figure:
    """In/out score histograms with the threshold at ``tpr`` and the FPR it implies."""
    a, b = _to_np(s_in), _to_np(s_out)
    thr = metrics.tpr_threshold(a, tpr)  # the same threshold as the FPR in the title
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    bins = np.linspace(lo, hi + 1e-12, 40)
    ax.hist(a, bins=bins, alpha=0.6, label="in-distribution", density=True)
    ax.hist(b, bins=bins, alpha=0.6, label=out_name, density=True)
    ax.axvline(thr, color="k", ls="--", lw=1)
    fpr = metrics.fpr_at_tpr(a, b, tpr)
    ax.set(xlabel="score (higher = in-distribution)", ylabel="density",
           title=f"threshold at {tpr:.0%} TPR: FPR = {fpr:.1%}")
    ax.legend(fontsize="small")
    return ax.figure


def image_grid(
    x: torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    size: float = 1.1,
    row_labels: Sequence[str] | None = None,
) -> Figure:
    """Images ``(N, C, H, W)`` in [0, 1] in a grid, optional title per image."""
    check_images(x)
    n = len(x)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if i >= n:
            ax.axis("off")
            continue
        img = x[i].detach().cpu()
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(img.permute(1, 2, 0).numpy())
        if titles is not None:
            ax.set_title(titles[i], fontsize="x-small")
    if row_labels is not None:
        for r, lab in enumerate(row_labels[:nrows]):
            axes[r, 0].set_ylabel(lab, fontsize="x-small", rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def confidence_map(
    model: torch.nn.Module,
    lim: float,
    n: int = 200,
    points: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Max-softmax confidence of a 2-D model on ``[-lim, lim]²`` (Hein et al. Fig. 2 style).

    The colour scale runs from ``1/K`` (uniform, white) to 1; training points are
    overlaid when given. The model's forward must return logits (or log-probabilities).
    """
    _, _, conf, _ = toy.confidence_grid(model, lim, n)
    with torch.no_grad(), eval_mode(model):
        k = model(torch.zeros(1, 2, device=model_device(model))).shape[1]
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.2))
    im = ax.imshow(conf, origin="lower", extent=(-lim, lim, -lim, lim), cmap="viridis",
                   vmin=1.0 / k, vmax=1.0, interpolation="nearest")
    if points is not None:
        colours = {} if labels is None else {"c": labels.numpy(), "cmap": "tab10"}
        ax.scatter(points[:, 0], points[:, 1], s=4, edgecolors="none", **colours)
    ax.set_title(title or f"confidence on [-{lim:g}, {lim:g}]²", fontsize="small")
    ax.grid(False)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax.figure


def certified_ball(ccu: CCU, x0: torch.Tensor, radius: float, lim: float, ax: plt.Axes,
                   points: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> Figure:
    """A 2-D CCU's confidence map with the certified ball ``d(x, x0) <= radius`` (white ellipse) and the
    centres of the in- (orange) and out-distribution (blue) mixtures (Meinke & Hein 2020, Fig. 1)."""
    confidence_map(ccu, lim, n=150, points=points, labels=labels, ax=ax,
                   title=f"certified ball, R = {radius:.2f}")
    angle = torch.linspace(0, 2 * math.pi, 200, dtype=torch.float64)
    circle = torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    ellipse = x0.double().cpu() + ccu.metric.inverse(radius * circle.to(ccu.metric.eigvals.device)).cpu()
    ax.plot(ellipse[:, 0], ellipse[:, 1], "w-", lw=2)
    for gm, colour in [(ccu.gmm_in, "C1"), (ccu.gmm_out, "C0")]:
        centres = ccu.metric.inverse(gm.mu.detach()).cpu()
        ax.scatter(centres[:, 0], centres[:, 1], marker="X", s=60, c=colour, edgecolors="k")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim))
    return ax.figure


def linear_regions_map(
    model: torch.nn.Module, lim: float, n: int = 300, ax: plt.Axes | None = None, title: str | None = None
) -> Figure:
    """The linear regions of a 2-D ReLU network on ``[-lim, lim]²``, one colour per activation pattern."""
    _, _, pts = toy.grid_points(lim, n)
    pattern = activation_pattern(model, pts).numpy()
    _, ids = np.unique(pattern, axis=0, return_inverse=True)
    rng = np.random.default_rng(0)
    colours = rng.permutation(ids.max() + 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    ax.imshow(colours[ids.reshape(n, n)], origin="lower", extent=(-lim, lim, -lim, lim), cmap="tab20",
              interpolation="nearest")
    ax.set_title(title or f"{ids.max() + 1} linear regions visible", fontsize="small")
    ax.grid(False)
    return ax.figure


def heatmap(
    table: pd.DataFrame,
    title: str = "",
    fmt: str = ".1f",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    ax: plt.Axes | None = None,
    cbar_label: str = "",
    wrap: int = 16,
) -> Figure:
    """A rows × columns heat-map with the value written in each cell (NaN cells shown as "—").

    Used for the benchmark of chapter 07 (detector × threat model). Column labels may be
    tuples (joined with a line break); lines longer than ``wrap`` characters are wrapped.
    """
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise ValueError("expected a non-empty pandas DataFrame")
    vals = table.to_numpy(dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * vals.shape[1] + 2.5, 0.42 * vals.shape[0] + 1.2))
    masked = np.ma.masked_invalid(vals)
    im = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    for (i, j), v in np.ndenumerate(vals):
        if np.isnan(v):
            ax.text(j, i, "—", ha="center", va="center", color="grey", fontsize="small")
            continue
        r, g, b, _ = im.cmap(im.norm(v))
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # perceived brightness of the cell
        ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize="small",
                color="white" if dark else "black")
    ax.set_xticks(range(vals.shape[1]))
    labels = ["\n".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in table.columns]
    ax.set_xticklabels(["\n".join(textwrap.fill(line, wrap) for line in lab.split("\n")) for lab in labels],
                       fontsize="small")
    ax.set_yticks(range(vals.shape[0]))
    ax.set_yticklabels([str(r) for r in table.index], fontsize="small")
    ax.grid(False)
    ax.set_title(title)
    cb = ax.figure.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    cb.set_label(cbar_label)
    return ax.figure


def plot_samples(
    sets: Mapping[str, OODSet] | Mapping[str, torch.Tensor], n: int = 8, fig: Figure | None = None
) -> Figure:
    """A grid with one labelled row of ``n`` images per set; returns the Figure.

    Stand-ins are labelled "(stand-in for X)", subsets of a real set by their note. Draws into
    ``fig`` if given, else into a new pyplot figure (in a notebook, assign the result to avoid
    showing it twice).
    """
    n = check_positive_int(n, "n")
    if not sets:
        raise ValueError("expected at least one set to plot, got an empty mapping")
    if fig is None:
        fig = plt.figure(figsize=(0.9 * n + 2.4, 0.95 * len(sets) + 0.2), layout="constrained")
    axes = fig.subplots(len(sets), n, squeeze=False)
    for row, (key, item) in enumerate(sets.items()):
        if isinstance(item, OODSet):
            images, label = item.x, item.name
            if item.stand_in_for:
                label += f"\n(stand-in for\n{item.stand_in_for})"
            elif item.note:
                label += f"\n({item.note})"
        else:
            images, label = check_images(item, f"sets[{key!r}]"), key
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(images):
                ax.axis("off")
                continue
            image = images[col].detach().cpu().permute(1, 2, 0).numpy()
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return fig



def plot_selection(
    candidate_scores: object, images: torch.Tensor, q: float, n_keep: int, show: int = 16
) -> Figure:
    """Histogram of the candidates' OOD scores with the slice Algorithm 1 keeps at ``q`` shaded,
    and ``show`` kept images (evenly spread over the slice, hardest first) with their scores.
    Returns the matplotlib Figure."""
    s = check_scores(candidate_scores, "candidate_scores")
    check_images(images, "images")
    if len(images) != len(s):
        raise ValueError(f"expected one image per candidate score ({len(s)}), got {len(images)}")
    check_positive_int(show, "show")
    keep = select_slice(s, q, n_keep)
    cols = math.ceil(show / 2)
    fig = plt.figure(figsize=(11, 3.4), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.35])
    ax = left.subplots()
    bins = np.linspace(0, 1, 41)
    ax.hist(s, bins=bins, color="0.7", label=f"N = {len(s)} candidates")
    ax.hist(s[keep], bins=bins, color="tab:red", alpha=0.8, label=f"kept: n = {n_keep}")
    ax.set_yscale("log")
    ax.set(xlabel="OOD score $F(x)_{K+1}$", ylabel="candidates",
           title=f"q = {q:.3f}: skip the {round(q * len(s))} hardest")
    ax.legend(fontsize="small", loc="upper left")
    pick = keep[np.linspace(0, len(keep) - 1, show).round().astype(int)]
    axes = right.subplots(2, cols)
    for a in axes.flat:
        a.axis("off")
    for a, j in zip(axes.flat, pick, strict=False):
        a.imshow(images[j, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        a.set_title(f"{s[j]:.3f}", fontsize=7)
    right.suptitle("kept outliers, hardest to easiest (OOD score)", fontsize="small")
    return fig
