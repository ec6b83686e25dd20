"""Every figure function runs on tiny inputs; the histogram's threshold is metrics.tpr_threshold."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from oodlib import data, metrics, models, plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_score_histograms_draw_the_metrics_threshold():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(1, 1, 203), rng.normal(0, 1, 101)
    fig = plots.score_histograms(s_in, s_out, tpr=0.95)
    ax = fig.axes[0]
    line = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"][0]
    assert line.get_xdata()[0] == metrics.tpr_threshold(s_in, 0.95)
    assert f"{metrics.fpr_at_tpr(s_in, s_out):.1%}" in ax.get_title()


def test_every_figure_function_runs_on_tiny_inputs():
    rng = np.random.default_rng(1)
    s_in, s_out = rng.random(20), rng.random(15)
    plots.set_style()
    plots.roc_curves(s_in, {"noise": s_out})
    plots.confidence_histograms({"in": s_in, "out": s_out})
    plots.image_grid(torch.rand(4, 1, 28, 28), ncols=2)
    toy = models.build("toy_mlp", num_classes=3, seed=0)
    plots.confidence_map(toy, 2.0, n=8, points=torch.randn(5, 2), labels=torch.tensor([0, 1, 2, 0, 1]))
    plots.linear_regions_map(toy, 2.0, n=8)
    table = pd.DataFrame({"a": [0.1, 0.2], "b": [0.3, 0.4]}, index=["m1", "m2"])
    plots.heatmap(table, title="t")
    sets = {"digits": data.OODSet("digits", torch.rand(3, 1, 28, 28), "MNIST", "a stand-in"),
            "x": torch.rand(2, 1, 28, 28)}
    plots.plot_samples(sets, n=3)
    plots.plot_selection(rng.random(40), torch.rand(40, 1, 28, 28), 0.25, 10, show=4)
    assert len(plt.get_fignums()) >= 8


def test_certified_ball_draws_the_ellipse_and_the_mixture_centres():
    from oodlib import ccu

    method = ccu.CCUMethod(dim=2, n_in=2, n_out=2, em_in=40, em_out=40, pad=0)
    model = method.wrap(models.build("toy_mlp", num_classes=2, seed=0))
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    method.init_from_data(model, x, 3 * torch.randn(40, 2, generator=torch.Generator().manual_seed(1)))
    _, ax = plt.subplots()
    plots.certified_ball(model, torch.tensor([[0.5, 0.5]]), 1.0, 3.0, ax, points=x)
    assert len(ax.get_lines()) == 1 and len(ax.collections) >= 3  # ellipse; map points, two centre sets
    assert ax.get_xlim() == (-3.0, 3.0)
