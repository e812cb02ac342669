"""Figure builders: result -> plotly Figure. Pure functions, no Streamlit.

Histograms are binned here with NumPy and drawn as bars, so a figure of a million points
sends a few hundred numbers to the browser, not a million.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from metricflow.experiments import SampleResult

if TYPE_CHECKING:
    from metricflow.flow import FlowConfig, FlowResult
    from metricflow.theory import TheoryResult

__all__ = [
    "histogram",
    "weights_histogram",
    "eta_histogram",
    "chart_bar",
    "points_scatter",
    "points_figures",
    "figures_html",
    "figure_png",
    "flow_label",
    "flow_sigma_figure",
    "flow_gain_figure",
    "flow_nonpd_figure",
    "flow_figures",
    "kernel_curves_figure",
    "width_error_figure",
    "locality_profiles_figure",
    "locality_width_figure",
    "theory_figures",
]

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


def figure_png(fig: go.Figure, width: int = 1000, height: int = 600) -> bytes:
    """The figure as PNG bytes (needs kaleido and a Chromium; a few seconds)."""
    return fig.to_image(format="png", width=width, height=height)


# ---- kernel flow (eq. 3.5) -------------------------------------------------------------


def flow_label(config: "FlowConfig") -> str:
    """A short legend label naming what differs between runs: kernel, loss, sizes, lr, options."""
    c = config
    if c.kernel == "relu-ntk":
        options = f"depth {c.depth}, σ_w {c.sigma_w:g}, σ_b {c.sigma_b:g}"
    elif c.kernel == "gaussian":
        options = f"σ {c.sigma:g}" + (" squared" if c.squared else "") + (f", r {c.radius:g}" if c.radius else "")
    elif c.kernel == "cosnet":
        options = f"σ_w {c.sigma_w:g}" + (f", N {c.width}" if c.width else ", ∞ width")
    else:
        options = ""
    extra = [options] if options else []
    extra += ["normalised"] if c.normalise else []
    extra += [f"clip {c.clip:g}"] if c.clip else []
    extra += [] if c.weighted else ["unweighted"]
    tail = f" ({', '.join(extra)})" if extra else ""
    return f"{c.kernel}/{c.loss} {c.n_train}+{c.n_test} lr {c.lr:g} seed {c.seed}{tail}"


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
    return fig


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
    return fig


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


# ---- theory lab (section 2.3.2) --------------------------------------------------------


def kernel_curves_figure(result: "TheoryResult") -> go.Figure:
    """Theta(x(t), 0) on the line: the empirical kernel (2.33) at each width and the analytic (2.35).

    Traces 0..W-1 are the widths in order; the last trace is the analytic kernel.
    """
    fig = go.Figure()
    for n, curve in zip(result.widths, result.empirical):
        fig.add_trace(go.Scatter(x=result.t, y=curve, mode="lines", name=f"N = {int(n):,}", opacity=0.8))
    fig.add_trace(go.Scatter(x=result.t, y=result.analytic, mode="lines", name="N → ∞ (2.35)",
                             line=dict(color="black", width=3, dash="dash")))
    fig.update_layout(title=f"cos-net NTK Θ(x, 0) along a line, σ_w = {result.config.sigma_w:g}, d = {result.config.d}",
                      xaxis_title="t, with x = t u (|u| = 1)", yaxis_title="Θ(x, 0)")
    return fig


def width_error_figure(result: "TheoryResult") -> go.Figure:
    """Relative RMS error of the empirical kernel against width, log-log, with c / sqrt(N).

    Trace 0 is the measured error (error bars: std over draws), trace 1 the reference line.
    """
    n = result.widths.astype(float)
    fig = go.Figure([
        go.Scatter(x=n, y=result.error, mode="lines+markers", name=f"measured (slope {result.slope:.2f})",
                   error_y=dict(type="data", array=result.error_std, visible=True)),
        go.Scatter(x=n, y=result.reference / np.sqrt(n), mode="lines", name=f"{result.reference:.2g} / √N",
                   line=dict(color="black", dash="dash")),
    ])
    fig.update_layout(title=f"Finite-width error, mean of {result.config.trials} draws",
                      xaxis_title="width N", yaxis_title="RMS |Θ_N − Θ| / Θ(x, x)")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def locality_profiles_figure(result: "TheoryResult") -> go.Figure:
    """Normalised kernel profiles Theta(x(r), 0) / Theta(0, 0) for each sigma_w: narrowing to a delta."""
    fig = go.Figure()
    for s, profile, peak in zip(result.sigma_w, result.profiles, result.peak):
        fig.add_trace(go.Scatter(x=result.r, y=profile / peak, mode="lines",
                                 name=f"σ_w = {s:g} (peak {peak:.3g})"))
    fig.update_layout(title="Kernel profile, scaled to peak 1: width √d / σ_w (2.37)",
                      xaxis_title="r, with x = r u (|u| = 1)", yaxis_title="Θ(x, 0) / Θ(0, 0)")
    return fig


def locality_width_figure(result: "TheoryResult") -> go.Figure:
    """Measured kernel width against sigma_w, log-log, with sqrt(d) / sigma_w (eq. 2.37)."""
    fig = go.Figure([
        go.Scatter(x=result.sigma_w, y=result.width_measured, mode="markers", name="measured (2nd moment)",
                   marker=dict(size=10)),
        go.Scatter(x=result.sigma_w, y=result.width_eq237, mode="lines", name="√d / σ_w (2.37)",
                   line=dict(color="black", dash="dash")),
    ])
    fig.update_layout(title="Width of the normalised kernel", xaxis_title="σ_w", yaxis_title="σ")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def theory_figures(result: "TheoryResult") -> dict[str, go.Figure]:
    """All figures of the theory lab, by file-friendly name."""
    return {
        "kernel_curves": kernel_curves_figure(result),
        "width_error": width_error_figure(result),
        "locality_profiles": locality_profiles_figure(result),
        "locality_width": locality_width_figure(result),
    }
