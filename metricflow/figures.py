"""Figure builders: result -> plotly Figure. Pure functions, no Streamlit.

Histograms are binned here with NumPy and drawn as bars, so a figure of a million points
sends a few hundred numbers to the browser, not a million.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from metricflow.experiments import SampleResult

__all__ = [
    "histogram",
    "weights_histogram",
    "eta_histogram",
    "chart_bar",
    "points_scatter",
    "points_figures",
    "figures_html",
]

BINS = 60


def histogram(values: np.ndarray, title: str, x_title: str, bins: int = BINS, log_x: bool = False) -> go.Figure:
    """Bar chart of a histogram of ``values``, shape (N,); bins equal in x (or in log x).

    The bars' y values are the counts per bin (they sum to N) and x values the bin centres.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if log_x:
        values = values[values > 0]
        edges = np.geomspace(values.min(), values.max(), bins + 1) if len(values) else np.array([1.0, 10.0])
    else:
        edges = np.histogram_bin_edges(values, bins=bins) if len(values) else np.array([0.0, 1.0])
    counts, edges = np.histogram(values, bins=edges)
    centres = np.sqrt(edges[:-1] * edges[1:]) if log_x else 0.5 * (edges[:-1] + edges[1:])
    fig = go.Figure(go.Bar(x=centres, y=counts, width=np.diff(edges), marker_line_width=0, name=x_title))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title="points", bargap=0, showlegend=False)
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def weights_histogram(result: SampleResult) -> go.Figure:
    """Histogram of the Monte-Carlo weights |Omega|^2 / det g_FS, log-spaced bins."""
    return histogram(result.weights, "Monte-Carlo weights", "weight |Ω|² / det g_FS", log_x=True)


def eta_histogram(result: SampleResult) -> go.Figure:
    """Histogram of eta = det g_FS / (kappa |Omega|^2) (eq. B.11), with a line at eta = 1."""
    fig = histogram(result.eta, f"η of the FS metric (σ = {result.sigma_fs:.4f})", "η")
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


def figures_html(figures: dict[str, go.Figure], title: str = "metricflow", offline: bool = True) -> str:
    """One HTML page holding ``figures``; with ``offline`` it embeds plotly.js (about 4 MB)."""
    parts = []
    for i, fig in enumerate(figures.values()):
        js = (True if offline else "cdn") if i == 0 else False
        parts.append(fig.to_html(full_html=False, include_plotlyjs=js))
    body = "\n".join(parts)
    return f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head><body>\n{body}\n</body></html>\n"
