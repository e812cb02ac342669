"""Figures of generalisation (fig. 3, eq. 3.7): test gain against distance, nearest distances against N."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import plotly.graph_objects as go

from metricflow.figures.common import COLOURS, readable_log_axes
from metricflow.studies.generalisation import PAPER_FIT

if TYPE_CHECKING:
    from metricflow.studies.generalisation import NoiseResult, ScalingResult

__all__ = ["noise_gain_figure", "scaling_figure", "generalisation_figures"]


def noise_gain_figure(results: Sequence["NoiseResult"], log_x: bool = False) -> go.Figure:
    """Fig. 3 (left): test gain against mean FS distance of the noised test points, log y.

    One curve per NoiseResult (kernel, update), with standard-error bars; levels whose flow
    diverged are left out (their gain is null). The fraction of test points whose metric is
    not positive definite at the end is drawn against the right axis where it is nonzero.
    With ``log_x`` the zero-distance level (the train gain) is drawn as a horizontal dotted
    line instead of a point.
    """
    fig = go.Figure()
    any_nonpd = False
    for i, r in enumerate(results):
        colour = COLOURS[i % len(COLOURS)]
        name = f"{r.config.kernel} ({r.config.update})"
        keep = (r.distance > 0 if log_x else np.ones(len(r.distance), bool)) & np.isfinite(r.gain)
        fig.add_trace(go.Scatter(
            x=r.distance[keep], y=r.gain[keep], mode="lines+markers", name=name,
            line=dict(color=colour), error_y=dict(type="data", array=r.gain_se[keep], visible=True),
            customdata=np.c_[r.noise[keep], r.gain_se[keep], r.nonpd_fraction[keep]],
            hovertemplate="distance %{x:.3g}<br>gain %{y:.3g} ± %{customdata[1]:.2g}<br>noise v %{customdata[0]:.1e}"
                          "<br>non-PD %{customdata[2]:.3f}<extra>" + name + "</extra>",
        ))
        if np.any(r.nonpd_fraction > 0):
            any_nonpd = True
            fig.add_trace(go.Scatter(
                x=r.distance[r.distance > 0] if log_x else r.distance, yaxis="y2", mode="lines",
                y=r.nonpd_fraction[r.distance > 0] if log_x else r.nonpd_fraction,
                line=dict(color=colour, dash="dot"), name=f"{name}: non-PD fraction",
            ))
        diverged = r.diverged_step >= 0
        if np.any(diverged):
            fig.add_trace(go.Scatter(
                x=r.distance[diverged], y=np.ones(int(diverged.sum())), mode="markers", name=f"{name}: diverged",
                marker=dict(color=colour, symbol="x", size=10),
            ))
        if log_x and np.isfinite(r.train_gain):
            fig.add_hline(y=r.train_gain, line=dict(color=colour, dash="dot"),
                          annotation_text=f"{name} train gain {r.train_gain:.3g}")
    fig.add_hline(y=1.0, line=dict(color="grey", dash="dash"))
    fig.update_layout(title="Test gain against distance to the train points (fig. 3 left)",
                      xaxis_title="mean FS distance, train point to noised test point", yaxis_title="gain σ₀ / σ₅₀")
    if any_nonpd:
        fig.update_layout(yaxis2=dict(title="non-PD fraction", overlaying="y", side="right", range=[0, 1]))
    fig.update_layout(yaxis=dict(type="log", exponentformat="power"))
    if log_x:
        fig.update_xaxes(type="log", exponentformat="power")
    return readable_log_axes(fig)


def scaling_figure(result: "ScalingResult") -> go.Figure:
    """Fig. 3 (right): mean, min and max nearest-neighbour FS distance against N, log-log,
    with the fit (mean) and the paper's eq. (3.7)."""
    n = result.points.astype(float)
    fit = result.fit
    grid = np.geomspace(n.min(), n.max(), 50)
    err = f" ± {fit.exponent_err:.3f}" if np.isfinite(fit.exponent_err) else ""
    fig = go.Figure([
        go.Scatter(x=n, y=result.max, mode="markers+lines", name="max", line=dict(color=COLOURS[1])),
        go.Scatter(x=n, y=result.mean, mode="markers", name="mean", marker=dict(color=COLOURS[0], size=9)),
        go.Scatter(x=n, y=result.min, mode="markers+lines", name="min", line=dict(color=COLOURS[2])),
        go.Scatter(x=grid, y=fit(grid), mode="lines", line=dict(color=COLOURS[0], dash="dash"),
                   name=f"fit {fit.prefactor:.3f} N^({fit.exponent:.3f}{err})"),
        go.Scatter(x=grid, y=PAPER_FIT["prefactor"] * grid ** PAPER_FIT["exponent"], mode="lines",
                   line=dict(color="black", dash="dot"),
                   name=f"paper (3.7) {PAPER_FIT['prefactor']} N^({PAPER_FIT['exponent']})"),
    ])
    where = "all charts" if result.config.chart == "all" else "one chart"
    fig.update_layout(title=f"Nearest-neighbour FS distance against N, points in {where} (fig. 3 right)",
                      xaxis_title="number of points N", yaxis_title="FS distance to the nearest point")
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(type="log", exponentformat="power")
    return readable_log_axes(fig)


def generalisation_figures(noise: Sequence["NoiseResult"], scaling: "ScalingResult | None" = None,
                           log_x: bool = False) -> dict[str, go.Figure]:
    """The figures of the generalisation page, by file-friendly name."""
    out = {"noise_gain": noise_gain_figure(noise, log_x=log_x)}
    if scaling is not None:
        out["scaling"] = scaling_figure(scaling)
    return out
