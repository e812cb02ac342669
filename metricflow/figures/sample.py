"""Figures of a sample of points (the points page): eta and weight histograms, charts, 3D scatter."""

from __future__ import annotations

import plotly.graph_objects as go

from metricflow.figures.common import histogram
from metricflow.studies.sample import SampleResult

__all__ = ["weights_histogram", "eta_histogram", "chart_bar", "points_scatter", "points_figures"]


def weights_histogram(result: SampleResult) -> go.Figure:
    """Histogram of the Monte-Carlo weights |Omega|^2 / det g_FS, log-spaced bins."""
    return histogram(result.weights, "Monte-Carlo weights", "weight |Ω|² / det g_FS", log_x=True)


def eta_histogram(result: SampleResult) -> go.Figure:
    """Histogram of eta = det g_FS / (kappa |Omega|^2) (eq. B.11), with a line at eta = 1."""
    fig = histogram(result.eta, f"η of the FS metric (σ = {result.sigma.sigma:.4f} ± {result.sigma.sigma_se:.4f})", "η")
    fig.add_vline(x=1.0, line_dash="dash", annotation_text="Ricci-flat: η = 1")
    return fig


def chart_bar(result: SampleResult) -> go.Figure:
    """Points per chart (scale index, eliminated index), shape (C,) bars."""
    labels = [f"({a},{e})" for a, e in result.charts]
    fig = go.Figure(go.Bar(x=labels, y=result.chart_counts, name="points"))
    fig.update_layout(
        title=f"Points per chart ({len(labels)} charts in use)",
        xaxis_title="chart (scale index, eliminated index)", yaxis_title="points", showlegend=False,
    )
    return fig


def points_scatter(result: SampleResult) -> go.Figure:
    """3D scatter of (|z_0|, |z_1|, |z_2|) of up to PLOT_POINTS points, coloured by eta."""
    a = result.abs_z
    colour = result.eta[result.plot_index]
    fig = go.Figure(go.Scatter3d(
        x=a[:, 0], y=a[:, 1], z=a[:, 2], mode="markers",
        marker=dict(size=3, color=colour, colorscale="Viridis", colorbar=dict(title="η")),
        name="points",
    ))
    fig.update_layout(
        title=f"{len(a)} of {result.n_points} points, |z_i| in their patch",
        scene=dict(xaxis_title="|z₀|", yaxis_title="|z₁|", zaxis_title="|z₂|"),
    )
    return fig


def points_figures(result: SampleResult) -> dict[str, go.Figure]:
    """All figures of the points page, by file-friendly name."""
    return {
        "eta": eta_histogram(result),
        "weights": weights_histogram(result),
        "charts": chart_bar(result),
        "scatter": points_scatter(result),
    }
