"""The figures of a running job's partial series (``metricflow.progress``): one line chart per
panel, drawn while the job computes and replaced by the result's own figures when it ends."""

from __future__ import annotations

import plotly.graph_objects as go

from metricflow.figures.common import COLOURS, readable_log_axes

__all__ = ["partial_figures"]


def partial_figures(partial: dict) -> list[go.Figure]:
    """One figure per panel of ``partial``: a line per series, markers where it is short.

    Args:
      partial: a partial series as ``metricflow.progress.panel`` builds its panels:
        {"panels": [{"title", "x", "y", "log_y", "series": {name: {"x": [...], "y": [...]}}}]}.

    Returns:
      The figures, titled "... (computing)", in the order of the panels.
    """
    figures = []
    for panel in partial.get("panels", []):
        fig = go.Figure()
        for i, (name, curve) in enumerate(panel.get("series", {}).items()):
            xs, ys = list(curve.get("x", [])), list(curve.get("y", []))
            fig.add_trace(go.Scatter(
                x=xs, y=ys, name=name, mode="lines+markers" if len(xs) < 30 else "lines",
                line=dict(color=COLOURS[i % len(COLOURS)]),
            ))
        fig.update_layout(title=f"{panel.get('title', '')} (computing)", xaxis_title=panel.get("x", ""),
                          yaxis_title=panel.get("y", ""), legend=dict(orientation="h", y=-0.2),
                          margin=dict(t=50, b=10))
        if panel.get("log_y"):
            fig.update_yaxes(type="log")
        if panel.get("log_x"):
            fig.update_xaxes(type="log")
        figures.append(readable_log_axes(fig))
    return figures
