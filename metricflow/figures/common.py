"""Shared pieces of the figure builders: colours, histogram bins, a generic histogram, and
writing figures out (one HTML page, PNG bytes).

Histograms are binned here with NumPy and drawn as bars, so a figure of a million points
sends a few hundred numbers to the browser, not a million.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

__all__ = ["COLOURS", "BINS", "histogram", "figures_html", "figure_png", "log_ticks", "readable_log_axes"]

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
        readable_log_axes(fig)
    return fig


def log_ticks(values) -> dict:
    """Tick values and labels of a log axis spanning ``values`` (positive numbers): 1, 2 and 5
    times the powers of ten (also 3, 4 and 7 when the values span less than a factor 3; just
    1 and 3 past four decades, just 1 past ten), labelled as plain numbers (0.05, 0.1, 0.2,
    ...), so that plotly's 2-9 minor labels never show.

    Returns {} when no value is positive; else keyword arguments for ``update_xaxes`` or
    ``update_yaxes``: tickvals and ticktext.
    """
    values = np.asarray([v for v in np.ravel(np.asarray(values, dtype=np.float64)) if np.isfinite(v) and v > 0])
    if not len(values):
        return {}
    low, high = int(np.floor(np.log10(values.min()))), int(np.ceil(np.log10(values.max())))
    high = max(high, low + 1)
    mantissas = (1, 2, 5) if high - low <= 4 else (1, 3) if high - low <= 10 else (1,)
    if values.max() < 3 * values.min():
        mantissas = (1, 2, 3, 4, 5, 7)
    ticks = [float(f"{m}e{e}") for e in range(low, high + 1) for m in mantissas]
    ticks = [t for t in ticks if values.min() / 2.5 <= t <= values.max() * 2.5] or ticks
    return {"tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]}


def _numbers(values) -> list[float]:
    if values is None:
        return []
    out = []
    for v in np.ravel(np.asarray(values, dtype=object)):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            pass  # a category or a missing value: not on a numeric axis
    return out


def readable_log_axes(fig: go.Figure) -> go.Figure:
    """Give every log axis of ``fig`` the ticks of ``log_ticks`` for the data drawn on it.

    Plotly labels a log axis that spans less than a decade with its minor ticks' mantissas
    ("5, 4, 3, 2, 0.1, 9, 8 ..."); this sets 1-2-5 ticks as plain numbers instead, from the
    x (or y) values of the traces on that axis (subplots and overlaid axes included). Call it
    once the traces are in and the axis types are set. Returns ``fig`` (changed in place).
    """
    for letter, select in (("x", fig.select_xaxes), ("y", fig.select_yaxes)):
        for axis in select():
            if axis.type != "log":
                continue
            ref = letter + axis.plotly_name[len(letter) + 4:]  # "yaxis2" -> "y2"
            values = []
            for trace in fig.data:
                if (getattr(trace, f"{letter}axis", None) or letter) == ref:
                    values += _numbers(getattr(trace, letter, None))
            ticks = log_ticks(values)
            if not ticks:
                continue
            tickvals = list(ticks["tickvals"])
            axis.update(tickvals=tickvals, ticktext=[_short(t) for t in tickvals])
            data = [v for v in values if np.isfinite(v) and v > 0]
            if axis.range is None and sum(min(data) <= t <= max(data) for t in tickvals) < 2:
                # A narrow span (0.31 ... 0.39) shows no 1-2-5 tick: widen the axis to the
                # ticks around the data, so that at least two are labelled.
                low = max([t for t in tickvals if t <= min(data)] or [min(tickvals)])
                high = min([t for t in tickvals if t >= max(data)] or [max(tickvals)])
                if high > low:
                    pad = 0.02 * (np.log10(high) - np.log10(low))
                    axis.update(range=[np.log10(low) - pad, np.log10(high) + pad])
    return fig


def _short(t: float) -> str:
    """A tick label: 0.05, 1, 200, 5k, 20k, 1M (thousands and millions shortened)."""
    for factor, suffix in ((1e6, "M"), (1e3, "k")):
        if t >= factor:
            return f"{t / factor:g}{suffix}"
    return f"{t:g}"


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
