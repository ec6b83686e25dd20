"""Tidy result tables: one function produces every number the chapters print.

Tables are long-format pandas DataFrames (one row per model × OOD set ×
threat model × metric), so chapter tables and the benchmark of chapter 07
come from the same code and agree.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch

from . import metrics
from .data import OODSet


def ood_rows(
    model_name: str,
    s_in: torch.Tensor | np.ndarray,
    s_out: Mapping[str, torch.Tensor | np.ndarray],
    *,
    threat: str = "clean",
    stand_in: Mapping[str, str | None] | None = None,
    confidences_out: Mapping[str, torch.Tensor | np.ndarray] | None = None,
) -> list[dict]:
    """Rows ``(model, ood_set, stand_in_for, threat, metric, value)`` for one model.

    ``s_in``/``s_out`` are detector scores (higher = in-distribution). Metrics are
    those of :func:`oodlib.metrics.ood_metrics` plus the MMC on each OOD set when
    ``confidences_out`` (max softmax) is given (Hein et al. 2019, Table 1).
    """
    rows = []
    for name, so in s_out.items():
        vals = metrics.ood_metrics(s_in, so)
        if confidences_out is not None and name in confidences_out:
            vals["MMC"] = metrics.mmc(confidences_out[name])
        for metric, value in vals.items():
            rows.append({
                "model": model_name, "ood_set": name,
                "stand_in_for": (stand_in or {}).get(name), "threat": threat,
                "metric": metric, "value": float(value),
            })
    return rows


def ood_table(
    models: Mapping[str, torch.nn.Module],
    x_in: torch.Tensor,
    ood_sets: Mapping[str, OODSet],
    score=None,  # noqa: ANN001 - any oodlib.scores function
    **score_params: object,
) -> pd.DataFrame:
    """Evaluate each model's ``score`` (default MSP) on ``x_in`` vs every OOD set.

    Returns the long table of :func:`ood_rows`, with the in-distribution MMC as
    an extra row per model (``ood_set='(in-distribution)'``, metric ``MMC``).
    """
    from . import scores as _scores

    score = score or _scores.msp
    rows: list[dict] = []
    for name, model in models.items():
        s_in = score(model, x_in, **score_params)
        s_out = {k: score(model, s.x, **score_params) for k, s in ood_sets.items()}
        conf = None
        if score is _scores.msp:
            conf = s_out
            rows.append({"model": name, "ood_set": "(in-distribution)", "stand_in_for": None,
                         "threat": "clean", "metric": "MMC", "value": metrics.mmc(s_in)})
        rows += ood_rows(name, s_in, s_out, confidences_out=conf,
                         stand_in={k: s.stand_in_for for k, s in ood_sets.items()})
    return pd.DataFrame(rows)


def label(name: str, stand_in_for: str | None) -> str:
    """A set's display name, marked as a stand-in where it is one."""
    return f"{name} (stand-in for {stand_in_for})" if isinstance(stand_in_for, str) and stand_in_for else name


def wide(table: pd.DataFrame, metrics_: list[str] | None = None) -> pd.DataFrame:
    """Pivot a long table to one row per (model, OOD set) and one column per metric."""
    t = table if metrics_ is None else table[table.metric.isin(metrics_)]
    t = t.assign(ood_set=[label(n, s) for n, s in zip(t.ood_set, t.stand_in_for, strict=True)])
    out = t.pivot_table(index=["model", "ood_set"], columns="metric", values="value", sort=False)
    out.columns.name = None
    return out


def paper_vs_ours(rows: list[tuple[str, str, float | None, float]]) -> pd.DataFrame:
    """A comparison table from ``(quantity, setting, paper value, our value)`` tuples.

    ``setting`` says how the two differ (e.g. "paper: MNIST, LeNet, 100 epochs;
    ours: Fashion-MNIST, small CNN, ci"). A missing paper value is shown as ``—``.
    """
    def fmt(v: object) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "—"
        return f"{v:.4g}" if isinstance(v, float | int | np.floating) else str(v)

    df = pd.DataFrame(rows, columns=["quantity", "setting", "paper", "ours"])
    df["paper"] = df["paper"].map(fmt)
    df["ours"] = df["ours"].map(fmt)
    return df
