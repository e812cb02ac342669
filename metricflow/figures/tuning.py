"""Figures of the hyperparameter search (section 3.2, issue 8): convergence, objective per parameter."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from metricflow.figures.common import COLOURS, readable_log_axes

if TYPE_CHECKING:
    from metricflow.studies.tuning import TuneResult

__all__ = ["tuning_convergence_figure", "tuning_params_figure", "tuning_figures"]


def tuning_convergence_figure(result: "TuneResult") -> go.Figure:
    """Objective (log10 test gain) of every evaluation and the best so far, against the
    evaluation number; the band is the best setting's mean ± std on fresh point sets."""
    r = result
    index = np.arange(len(r.evaluations))
    init = r.config.init_points
    fig = go.Figure([
        go.Scatter(x=index[:init], y=r.objectives[:init], mode="markers", name="random setting",
                   marker=dict(color=COLOURS[1], size=8)),
        go.Scatter(x=index[init:], y=r.objectives[init:], mode="markers", name="optimiser's setting",
                   marker=dict(color=COLOURS[0], size=8)),
        go.Scatter(x=index, y=r.best_so_far, mode="lines", name="best so far", line=dict(color="black", shape="hv")),
    ])
    if r.spread:
        std = r.spread_std if np.isfinite(r.spread_std) else 0.0
        fig.add_hrect(y0=r.spread_mean - std, y1=r.spread_mean + std, fillcolor=COLOURS[2], opacity=0.2, line_width=0)
        fig.add_hline(y=r.spread_mean, line=dict(color=COLOURS[2], dash="dash"),
                      annotation_text=f"best setting on {len(r.spread)} fresh point sets")
    fig.update_layout(title=f"Bayesian optimisation of the {r.config.kernel} flow ({r.config.steps} steps)",
                      xaxis_title="evaluation", yaxis_title="log10 test gain σ₀/σ")
    return fig


def tuning_params_figure(result: "TuneResult") -> go.Figure:
    """Objective against each searched parameter (log axes for log-scale ones), one panel each."""
    dims = result.config.dimensions()
    fig = make_subplots(rows=1, cols=max(len(dims), 1), shared_yaxes=True, subplot_titles=[d.name for d in dims])
    y = result.objectives
    for col, d in enumerate(dims, start=1):
        x = [float(e.params[d.name]) for e in result.evaluations]
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", marker=dict(color=np.arange(len(x)), colorscale="Viridis", size=8),
                                 name=d.name, showlegend=False, text=[f"evaluation {e.index}" for e in result.evaluations]),
                      row=1, col=col)
        best = result.best_params[d.name]
        fig.add_trace(go.Scatter(x=[float(best)], y=[result.best_objective], mode="markers", showlegend=False,
                                 marker=dict(symbol="star", size=14, color="red"), name="best"), row=1, col=col)
        if d.scale in ("log", "int"):
            fig.update_xaxes(type="log", row=1, col=col)
    fig.update_yaxes(title_text="log10 test gain", row=1, col=1)
    fig.update_layout(title="Objective against each searched parameter (colour: evaluation order, star: best)")
    return readable_log_axes(fig)


def tuning_figures(result: "TuneResult") -> dict[str, go.Figure]:
    """The figures of the hyperparameter search page, by file-friendly name."""
    return {"convergence": tuning_convergence_figure(result), "params": tuning_params_figure(result)}
