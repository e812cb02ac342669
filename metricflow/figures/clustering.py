"""Figures of feature clustering (section 3.1, fig. 2): ordered distance matrices, silhouettes."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from metricflow.figures.flow import flow_sigma_figure
from metricflow.studies.clustering import PAPER_SILHOUETTE

__all__ = ["HEATMAP_TITLES", "cluster_heatmap_figure", "silhouette_figure", "cluster_figures", "cluster_flow_figure"]

HEATMAP_TITLES = {None: "no clustering", "batched": "batched clustering (3.3)", "full": "full clustering",
                  "birch": "Birch (Euclidean)", "graph": "kNN-graph clustering"}


def cluster_heatmap_figure(result, methods: Sequence[str] | None = None, max_side: int = 500) -> go.Figure:
    """Fig. 2: the FS distance matrix unordered, then ordered by each method's clusters.

    Args:
      result: a ClusterResult.
      methods: the orderings to show after the unordered panel (those not run are skipped);
        default "batched" and "full" as in fig. 2, or every method run if neither was.
      max_side: at most this many rows and columns per panel: above it every f-th point of
        the (ordered) list is drawn, so the browser gets at most max_side^2 values a panel.
    """
    if methods is None:
        methods = [m for m in ("batched", "full") if m in result.methods] or list(result.methods)
    panels = [None] + [m for m in methods if m in result.methods]
    titles = []
    for m in panels:
        score = "" if m is None else f" (silhouette {result.get(m).silhouette:.3f})"
        titles.append(HEATMAP_TITLES[m] + score)
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, horizontal_spacing=0.03)
    h = len(result.heatmap_index)
    stride = -(-h // max_side)
    for i, m in enumerate(panels, start=1):
        z = result.ordered_heatmap(m)[::stride, ::stride]
        fig.add_trace(go.Heatmap(z=z, coloraxis="coloraxis", name=HEATMAP_TITLES[m],
                                 hovertemplate="%{y}, %{x}: d = %{z:.3f}<extra></extra>"), row=1, col=i)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{i if i > 1 else ''}", showticklabels=False, row=1, col=i)
        fig.update_xaxes(showticklabels=False, row=1, col=i)
    fig.update_layout(
        title=f"FS distances (eq. 3.2) of {h:,} points, {result.config.n_clusters} clusters"
        + (f", 1 point in {stride} drawn" if stride > 1 else ""),
        coloraxis=dict(colorscale="Viridis", colorbar=dict(title="d_FS")),
        height=420, width=max(500, 400 * len(panels)),
    )
    return fig


def silhouette_figure(result) -> go.Figure:
    """Silhouette score on FS distances per method: ours and the paper's (section 3.1)."""
    methods = list(result.methods)
    ours = [result.get(m).silhouette for m in methods]
    paper = [PAPER_SILHOUETTE.get(m, np.nan) for m in methods]
    c = result.config
    fig = go.Figure([
        go.Bar(x=methods, y=ours, name=f"ours ({c.n_points:,} points, {c.n_clusters} clusters, {c.n_batches} batches)"),
        go.Bar(x=methods, y=paper, name="paper (1000 points, 10 clusters, 5 batches)"),
    ])
    fig.update_layout(title="Silhouette score on FS distance", barmode="group", yaxis_title="silhouette")
    return fig


def cluster_figures(result) -> dict[str, go.Figure]:
    """All figures of a ClusterResult, by file-friendly name."""
    return {"heatmaps": cluster_heatmap_figure(result), "silhouette": silhouette_figure(result)}


def cluster_flow_figure(result) -> go.Figure:
    """sigma against step for a cluster-wise flow and, if run, the unclustered flow."""
    runs = [result.clustered] + ([result.unclustered] if result.unclustered is not None else [])
    c = result.config
    labels = [f"{c.n_clusters} {c.method} clusters"] + (["unclustered"] if result.unclustered is not None else [])
    return flow_sigma_figure(runs, labels)
