"""Interactive explorations: live sliders in JupyterLab, precomputed frames behind sliders in the book.

A chapter calls ``explore(fn, **controls)`` once. With a kernel (JupyterLab, ``$OODLIB_WIDGETS``
unset or ``on``) the controls are live ``ipywidgets`` and every move redraws ``fn``. The published
book has no kernel (``make book`` and ``make test`` set ``$OODLIB_WIDGETS=off``), so there the cell
draws ``fn`` at a grid of control positions ahead of time and shows the frames behind HTML sliders:
a reader of the static page moves a slider and sees the figure the kernel would have drawn there.

Why hand-written and not a plotting library: the chapters draw with matplotlib (their figures are
the papers'), and the only thing the static page needs is to swap pictures -- about twenty lines of
plain JavaScript inside the cell's own output. That works offline, needs no widget manager or
plotting bundle from a CDN, and has nothing to keep up to date. Plotly sliders would mean redrawing
every exploration in Plotly and shipping its 3.5 MB script with the book; embedding the ipywidgets
state cannot replay ``fn`` without a kernel.

The number of frames is a budget (``Profile.explore_frames``): each control gets evenly spaced
positions (always including its initial value), as many as the budget allows for the grid of all
controls, fewest-option controls (drop-downs) first.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import itertools
import json
import math
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, display

from .profiles import current
from .runtime import progress
from .validation import check_positive_int

WIDGETS_VAR = "OODLIB_WIDGETS"
#: frames are small pictures inside the page: this resolution keeps a 12-frame exploration under ~1 MB
FRAME_DPI = 72


@dataclass(frozen=True)
class Axis:
    """One control's positions on the static page: labels shown, values passed to ``fn``."""

    name: str
    description: str
    labels: tuple[str, ...]
    values: tuple[object, ...]
    initial: int  # index of the control's initial value
    kind: str  # "select" (drop-down), "range" (slider) or "fixed" (widgets.fixed: one hidden position)


def _float_positions(lo: float, hi: float, step: float) -> np.ndarray:
    n = int(math.floor((hi - lo) / step + 1e-9)) + 1
    return lo + step * np.arange(n)


def _fmt(value: object) -> str:
    return format(value, ".3g") if isinstance(value, float) else str(value)


def axis(name: str, control: object) -> Axis:
    """All positions of one ipywidgets control.

    Drop-downs and selection sliders give their options; integer, float and log sliders give
    every step between ``min`` and ``max``; ``widgets.fixed(v)`` gives one position.
    """
    if isinstance(control, (widgets.Dropdown, widgets.SelectionSlider, widgets.ToggleButtons,
                            widgets.RadioButtons)):
        labels = tuple(str(lab) for lab in control._options_labels)  # ipywidgets' normalised options
        values = tuple(control._options_values)
        initial = values.index(control.value)
        kind = "range" if isinstance(control, widgets.SelectionSlider) else "select"
    elif isinstance(control, widgets.IntSlider):
        values = tuple(range(control.min, control.max + 1, control.step))
        labels = tuple(str(v) for v in values)
        initial = values.index(control.value)
        kind = "range"
    elif isinstance(control, (widgets.FloatLogSlider, widgets.FloatSlider)):
        exps = _float_positions(control.min, control.max, control.step)
        grid = control.base ** exps if isinstance(control, widgets.FloatLogSlider) else exps
        # the initial value is kept exactly (a float grid would round it)
        initial = int(np.argmin(np.abs(grid - control.value)))
        values = tuple(float(v) for v in grid)
        values = values[:initial] + (float(control.value),) + values[initial + 1:]
        labels = tuple(format(v, control.readout_format) if not isinstance(control, widgets.FloatLogSlider)
                       else f"{v:.3g}" for v in values)
        kind = "range"
    elif isinstance(control, widgets.fixed):
        return Axis(name, name, (_fmt(control.value),), (control.value,), 0, "fixed")
    else:
        raise ValueError(f"expected an ipywidgets Dropdown, SelectionSlider, IntSlider, FloatSlider, "
                         f"FloatLogSlider or widgets.fixed for {name!r}, got {type(control).__name__}")
    description = getattr(control, "description", "") or name
    return Axis(name, description, labels, values, initial, kind)


def thin(ax: Axis, n: int) -> Axis:
    """``ax`` with at most ``n`` evenly spaced positions, its initial value always among them."""
    check_positive_int(n, "n")
    m = len(ax.values)
    if m <= n:
        return ax
    idx = sorted(set(np.round(np.linspace(0, m - 1, n)).astype(int).tolist()))
    if ax.initial not in idx:  # swap the nearest position for the initial one
        idx[int(np.argmin([abs(i - ax.initial) for i in idx]))] = ax.initial
        idx = sorted(set(idx))
    return Axis(ax.name, ax.description, tuple(ax.labels[i] for i in idx), tuple(ax.values[i] for i in idx),
                idx.index(ax.initial), ax.kind)


def grid(axes: Sequence[Axis], budget: int) -> list[Axis]:
    """Thin each axis so the product of their lengths is at most ``budget``.

    Greedy: every axis starts at its initial value; the axis with the fewest positions so far
    (ties: fewest options, so drop-downs fill first) gains one while the grid fits the budget.
    """
    check_positive_int(budget, "budget")
    counts = [1] * len(axes)
    while True:
        size = math.prod(counts)
        growable = [k for k, a in enumerate(axes)
                    if counts[k] < len(a.values) and size // counts[k] * (counts[k] + 1) <= budget]
        if not growable:
            break
        k = min(growable, key=lambda k: (counts[k], len(axes[k].values)))
        counts[k] += 1
    return [thin(a, n) for a, n in zip(axes, counts, strict=True)]


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FRAME_DPI, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render(fn: Callable[..., object], axes: Sequence[Axis]) -> tuple[dict[str, str], str]:
    """Draw ``fn`` at every grid position: {"i,j,…": base64 PNG} and the initial frame's printed text."""
    frames: dict[str, str] = {}
    printed = ""
    keys = list(itertools.product(*[range(len(a.values)) for a in axes]))
    initial = tuple(a.initial for a in axes)
    for key in progress(keys, desc="precomputing the exploration's frames", leave=False):
        before = set(plt.get_fignums())  # figures the cell drew before the exploration stay open
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            result = fn(**{a.name: a.values[i] for a, i in zip(axes, key, strict=True)})
        new = [n for n in plt.get_fignums() if n not in before]
        fig = result if isinstance(result, plt.Figure) else (plt.figure(new[-1]) if new else None)
        if fig is None:
            raise ValueError(f"expected {getattr(fn, '__name__', 'fn')} to draw a matplotlib figure, "
                             f"got none at {dict(zip([a.name for a in axes], key, strict=True))}")
        frames[",".join(map(str, key))] = _png(fig)
        for n in new:
            plt.close(n)
        if key == initial:
            printed = text.getvalue()
    return frames, printed


_SCRIPT = """
(function () {
  var root = document.getElementById("%(id)s");
  var labels = %(labels)s;
  var inputs = root.querySelectorAll("[data-axis]");
  function show() {
    var key = [];
    inputs.forEach(function (el, k) {
      key.push(el.value);
      var out = root.querySelector('output[data-axis-out="' + k + '"]');
      if (out) { out.textContent = labels[k][+el.value]; }
    });
    key = key.join(",");
    root.querySelectorAll("img[data-key]").forEach(function (img) {
      img.style.display = img.getAttribute("data-key") === key ? "" : "none";
    });
  }
  inputs.forEach(function (el) { el.addEventListener("input", show); el.addEventListener("change", show); });
  show();
})();
"""


def _control_html(k: int, ax: Axis) -> str:
    name = html.escape(ax.description)
    if ax.kind == "fixed":  # keeps its place in the frame key
        return f'<input type="hidden" data-axis="{k}" value="0">'
    if ax.kind == "select":
        opts = "".join(f'<option value="{i}"{" selected" * (i == ax.initial)}>{html.escape(lab)}</option>'
                       for i, lab in enumerate(ax.labels))
        return f'<div><label>{name} <select data-axis="{k}">{opts}</select></label></div>'
    fixed = " disabled" * (len(ax.values) == 1)  # one position in this budget: shown, not movable
    return (f'<div><label>{name} <input type="range" data-axis="{k}" min="0" max="{len(ax.values) - 1}" '
            f'step="1" value="{ax.initial}"{fixed}> <output data-axis-out="{k}">'
            f"{html.escape(ax.labels[ax.initial])}</output></label></div>")


def page(axes: Sequence[Axis], frames: dict[str, str], title: str) -> str:
    """The static exploration: one control per axis and every frame, the initial one shown.

    Without JavaScript (e.g. a notebook viewer that strips scripts) the initial frame still shows.
    """
    uid = f"oodlib-explorer-{uuid.uuid4().hex[:10]}"
    controls = "".join(_control_html(k, a) for k, a in enumerate(axes))
    initial = ",".join(str(a.initial) for a in axes)
    imgs = "".join(
        f'<img data-key="{key}" alt="{html.escape(title)} ({key})" style="max-width:100%;'
        f'{"" if key == initial else "display:none"}" src="data:image/png;base64,{png}">'
        for key, png in frames.items())
    script = _SCRIPT % {"id": uid, "labels": json.dumps([list(a.labels) for a in axes])}
    note = (f'<div style="font-size:small;color:#555">{len(frames)} precomputed frames; open the chapter '
            "in JupyterLab to set any value.</div>")
    return (f'<div class="oodlib-explorer" id="{uid}">{controls}{note}{imgs}</div>'
            f"<script>{script}</script>")


def explore(fn: Callable[..., object], frames: int | None = None, **controls: object) -> None:
    """Interactive exploration of ``fn`` over ``controls`` that also works without a kernel.

    ``controls`` map ``fn``'s parameter names to ipywidgets controls (``widgets.fixed`` for a
    constant). With a kernel (``$OODLIB_WIDGETS`` unset or ``on``) this is ``ipywidgets.interact``. With
    ``$OODLIB_WIDGETS=off`` (the book, the tests) ``fn`` is drawn at up to ``frames`` grid
    positions (default: the current profile's ``explore_frames``) and the cell shows them behind
    HTML sliders (see the module docstring).
    """
    mode = os.environ.get(WIDGETS_VAR, "on").strip().lower()
    if mode not in ("on", "off"):
        raise ValueError(f"expected ${WIDGETS_VAR} to be 'on' or 'off', got {mode!r}")
    if mode == "on":
        widgets.interact(fn, **controls)
        return
    if frames is None:
        frames = current().explore_frames
    axes = grid([axis(name, c) for name, c in controls.items()], frames)
    pictures, printed = render(fn, axes)
    if printed:
        print(printed, end="")
    title = getattr(fn, "__name__", "exploration")
    display(HTML(page(axes, pictures, title)))
