"""Explorations: live ipywidgets with a kernel, precomputed frames behind HTML sliders without one."""

from __future__ import annotations

import math
import re

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
import pytest  # noqa: E402

from oodlib import explorer  # noqa: E402


def test_axis_lists_every_position_and_keeps_the_initial_value():
    ax = explorer.axis("eps", widgets.FloatSlider(value=0.3, min=0.0, max=0.5, step=0.05))
    assert len(ax.values) == 11 and ax.values[ax.initial] == 0.3 and ax.labels[ax.initial] == "0.30"
    log = explorer.axis("lam", widgets.FloatLogSlider(value=1.0, base=10, min=-2, max=2, step=0.5))
    assert len(log.values) == 9 and log.values[log.initial] == 1.0
    assert log.values[0] == pytest.approx(0.01)
    ints = explorer.axis("k", widgets.IntSlider(value=6, min=1, max=20))
    assert ints.values == tuple(range(1, 21)) and ints.initial == 5
    drop = explorer.axis("set", widgets.Dropdown(options=[("letters", "a"), ("noise", "b")], value="b"))
    assert drop.labels == ("letters", "noise") and drop.values == ("a", "b") and drop.initial == 1
    assert drop.kind == "select"
    sel = explorer.axis("T", widgets.SelectionSlider(options=[1.0, 10.0, 1000.0], value=1000.0))
    assert sel.kind == "range" and sel.initial == 2
    assert explorer.axis("c", widgets.fixed(3)).kind == "fixed"


def test_axis_rejects_what_it_cannot_enumerate():
    with pytest.raises(ValueError, match="expected an ipywidgets Dropdown.*got float"):
        explorer.axis("eps", 0.3)
    with pytest.raises(ValueError, match="got Text"):
        explorer.axis("name", widgets.Text("x"))


def test_grid_stays_within_the_budget_and_keeps_every_initial_value():
    axes = [explorer.axis("set", widgets.Dropdown(options=["a", "b", "c"], value="b")),
            explorer.axis("T", widgets.IntSlider(value=17, min=0, max=40)),
            explorer.axis("eps", widgets.FloatSlider(value=0.13, min=0.0, max=0.3, step=0.01))]
    for budget in (1, 2, 10, 24, 60, 500):
        thinned = explorer.grid(axes, budget)
        n = 1
        for before, after in zip(axes, thinned, strict=True):
            n *= len(after.values)
            assert after.values[after.initial] == before.values[before.initial]
        assert n <= budget
    wide = explorer.grid(axes, 24)
    assert len(wide[0].values) == 3  # the drop-down keeps all three options
    assert math.prod(len(a.values) for a in wide) == 24


def test_static_exploration_shows_every_frame_behind_its_controls(monkeypatch, capsys):
    monkeypatch.setenv("OODLIB_WIDGETS", "off")
    shown = []
    monkeypatch.setattr(explorer, "display", lambda obj: shown.append(obj.data))
    calls = []

    def draw(eps=0.1, name="a", k=2):
        calls.append((eps, name, k))
        print(f"drawing {eps:.2f} {name}")
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, eps])

    plt.close("all")
    earlier = plt.figure()  # drawn by the same cell before the exploration
    explorer.explore(draw, frames=6, eps=widgets.FloatSlider(value=0.1, min=0.0, max=0.2, step=0.1),
                     name=widgets.Dropdown(options=["a", "b"], value="a"), k=widgets.fixed(2))
    assert len(calls) == 6 and {c[2] for c in calls} == {2}
    page = shown[0]
    keys = re.findall(r'<img data-key="([\d,]+)"', page)
    assert sorted(keys) == sorted(f"{i},{j},0" for i in range(3) for j in range(2))
    visible = re.findall(r'<img data-key="([\d,]+)"[^>]*style="max-width:100%;"', page)
    assert visible == ["1,0,0"]  # the initial frame shows without JavaScript
    assert 'type="range"' in page and "<select" in page and 'type="hidden"' in page
    assert page.count("data:image/png;base64,") == 6
    assert capsys.readouterr().out == "drawing 0.10 a\n"  # only the initial frame's text is printed
    assert plt.get_fignums() == [earlier.number]  # the frames are closed; the cell's own figure is not
    plt.close(earlier)


def test_static_exploration_needs_a_figure(monkeypatch):
    monkeypatch.setenv("OODLIB_WIDGETS", "off")
    plt.close("all")
    with pytest.raises(ValueError, match="expected nothing_drawn to draw a matplotlib figure"):
        explorer.explore(nothing_drawn, frames=2, x=widgets.IntSlider(1, 0, 3))


def nothing_drawn(x=1):
    return None


def test_live_exploration_is_ipywidgets_interact(monkeypatch):
    monkeypatch.setenv("OODLIB_WIDGETS", "on")
    seen = {}
    monkeypatch.setattr(explorer.widgets, "interact", lambda fn, **c: seen.update(c))
    slider = widgets.IntSlider(1, 0, 3)
    explorer.explore(nothing_drawn, x=slider)
    assert seen == {"x": slider}


def test_unknown_widget_mode_is_an_error(monkeypatch):
    monkeypatch.setenv("OODLIB_WIDGETS", "maybe")
    with pytest.raises(ValueError, match=r"expected \$OODLIB_WIDGETS to be 'on' or 'off', got 'maybe'"):
        explorer.explore(nothing_drawn, x=widgets.IntSlider(1, 0, 3))
