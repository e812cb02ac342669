"""Figures of the kernel flow (eq. 3.5): sigma along the flow, gains, non-PD fractions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import plotly.graph_objects as go

from metricflow.figures.common import COLOURS, readable_log_axes

if TYPE_CHECKING:
    from metricflow.flows.flow import FlowConfig, FlowResult

__all__ = ["flow_label", "flow_sigma_figure", "flow_gain_figure", "flow_nonpd_figure", "flow_figures"]


def flow_label(config: "FlowConfig") -> str:
    """A short legend label naming what differs between runs: kernel, loss, sizes, lr, options."""
    c = config
    options = c.kernel.legend()  # the kernel's options, as its spec writes them
    extra = [options] if options else []
    extra += ["euclidean"] if c.update == "euclidean" else []
    if c.normalise != (c.update == "covariant"):  # say so only where it is not the update's default
        extra += ["normalised"] if c.normalise else ["unnormalised"]
    extra += [f"clip {c.clip:g}"] if c.clip else []
    extra += [] if c.weighted else ["unweighted"]
    tail = f" ({', '.join(extra)})" if extra else ""
    return f"{c.kernel.name}/{c.loss} {c.n_train}+{c.n_test} lr {c.lr:g} seed {c.seed}{tail}"


def _labels(results: Sequence["FlowResult"], labels: Sequence[str] | None) -> list[str]:
    return list(labels) if labels is not None else [flow_label(r.config) for r in results]


def flow_sigma_figure(results: Sequence["FlowResult"], labels: Sequence[str] | None = None) -> go.Figure:
    """sigma (B.11) against flow step, log y: per run a solid train and a dashed test line.

    Trace 2i is run i's train_sigma, trace 2i+1 its test_sigma (NaN after a stop is a gap).
    """
    fig = go.Figure()
    for i, (r, label) in enumerate(zip(results, _labels(results, labels))):
        colour = COLOURS[i % len(COLOURS)]
        steps = np.arange(len(r.train_sigma))
        fig.add_trace(go.Scatter(x=steps, y=r.train_sigma, mode="lines+markers", name=f"train · {label}",
                                 line=dict(color=colour), marker=dict(size=4), legendgroup=str(i)))
        fig.add_trace(go.Scatter(x=steps, y=r.test_sigma, mode="lines+markers", name=f"test · {label}",
                                 line=dict(color=colour, dash="dash"), marker=dict(size=4, symbol="circle-open"),
                                 legendgroup=str(i)))
    fig.update_layout(title="σ-measure along the flow (3.5): train solid, test dashed",
                      xaxis_title="step", yaxis_title="σ", legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(type="log", exponentformat="power")
    return readable_log_axes(fig)


def flow_gain_figure(results: Sequence["FlowResult"], labels: Sequence[str] | None = None) -> go.Figure:
    """Gain sigma_0 / sigma_last per run, train and test bars, log y (1 = no gain)."""
    names = _labels(results, labels)
    fig = go.Figure([
        go.Bar(x=names, y=[r.train_gain for r in results], name="train gain"),
        go.Bar(x=names, y=[r.test_gain for r in results], name="test gain"),
    ])
    fig.add_hline(y=1.0, line_dash="dot", annotation_text="no gain")
    fig.update_layout(title="Gain σ₀ / σ_last", yaxis_title="gain", barmode="group",
                      xaxis=dict(showticklabels=len(names) <= 3))
    fig.update_yaxes(type="log", exponentformat="power")
    return readable_log_axes(fig)


def flow_nonpd_figure(results: Sequence["FlowResult"], labels: Sequence[str] | None = None) -> go.Figure:
    """Fraction of points (train and test together) whose metric is not positive definite."""
    fig = go.Figure()
    for i, (r, label) in enumerate(zip(results, _labels(results, labels))):
        frac = r.nonpd_fraction
        fig.add_trace(go.Scatter(x=np.arange(len(frac)), y=frac, mode="lines+markers", name=label,
                                 line=dict(color=COLOURS[i % len(COLOURS)]), marker=dict(size=4)))
    fig.update_layout(title="Non-positive-definite metrics along the flow", xaxis_title="step",
                      yaxis_title="fraction of points", yaxis_range=[-0.02, 1.02], showlegend=len(results) > 1,
                      legend=dict(orientation="h", y=-0.2))
    return fig


def flow_figures(results: Sequence["FlowResult"], labels: Sequence[str] | None = None) -> dict[str, go.Figure]:
    """All figures of the kernel flow page, by file-friendly name."""
    return {
        "sigma": flow_sigma_figure(results, labels),
        "gain": flow_gain_figure(results, labels),
        "nonpd": flow_nonpd_figure(results, labels),
    }
