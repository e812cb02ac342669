"""Shared pieces of the figure builders: colours, histogram bins, a generic histogram, and
writing figures out (one HTML page, PNG bytes).

Histograms are binned here with NumPy and drawn as bars, so a figure of a million points
sends a few hundred numbers to the browser, not a million.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["COLOURS", "BINS", "histogram", "figures_html", "figure_png"]

# One colour per run, so train (solid) and test (dashed) of a run match.
COLOURS = pio.templates["plotly"].layout.colorway

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


def figures_html(figures: dict[str, go.Figure], title: str = "metricflow", offline: bool = True) -> str:
    """One HTML page holding ``figures``; with ``offline`` it embeds plotly.js (about 4 MB)."""
    parts = []
    for i, fig in enumerate(figures.values()):
        js = (True if offline else "cdn") if i == 0 else False
        parts.append(fig.to_html(full_html=False, include_plotlyjs=js))
    body = "\n".join(parts)
    return f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head><body>\n{body}\n</body></html>\n"


def figure_png(fig: go.Figure, width: int = 1000, height: int = 600) -> bytes:
    """The figure as PNG bytes (needs kaleido and a Chromium; a few seconds)."""
    return fig.to_image(format="png", width=width, height=height)
