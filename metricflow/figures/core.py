"""Figure builders: result -> plotly Figure. Pure functions, no Streamlit.

Histograms are binned here with NumPy and drawn as bars, so a figure of a million points
sends a few hundred numbers to the browser, not a million.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from metricflow.studies.sample import SampleResult

if TYPE_CHECKING:
    from metricflow.flows.flow import FlowConfig, FlowResult
    from metricflow.studies.theory import TheoryResult
    from metricflow.studies.generalisation import NoiseResult, ScalingResult

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


# ---- feature clustering (section 3.1, fig. 2) ------------------------------------------

__all__ += ["cluster_heatmap_figure", "silhouette_figure", "cluster_figures", "cluster_flow_figure"]

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
    from plotly.subplots import make_subplots

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
    from metricflow.studies.clustering import PAPER_SILHOUETTE

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


# ---- generalisation (fig. 3, eq. 3.7) ----------------------------------------------------


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
    return fig


def scaling_figure(result: "ScalingResult") -> go.Figure:
    """Fig. 3 (right): mean, min and max nearest-neighbour FS distance against N, log-log,
    with the fit (mean) and the paper's eq. (3.7)."""
    from metricflow.studies.generalisation import PAPER_FIT

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
    return fig


def generalisation_figures(noise: Sequence["NoiseResult"], scaling: "ScalingResult | None" = None,
                           log_x: bool = False) -> dict[str, go.Figure]:
    """The figures of the generalisation page, by file-friendly name."""
    out = {"noise_gain": noise_gain_figure(noise, log_x=log_x)}
    if scaling is not None:
        out["scaling"] = scaling_figure(scaling)
    return out


__all__ += ["noise_gain_figure", "scaling_figure", "generalisation_figures"]


# ---- hyperparameter search (section 3.2, issue 8) --------------------------------------

if TYPE_CHECKING:
    from metricflow.studies.tuning import TuneResult


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
    from plotly.subplots import make_subplots

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
    return fig


def tuning_figures(result: "TuneResult") -> dict[str, go.Figure]:
    """The figures of the hyperparameter search page, by file-friendly name."""
    return {"convergence": tuning_convergence_figure(result), "params": tuning_params_figure(result)}


__all__ += ["tuning_convergence_figure", "tuning_params_figure", "tuning_figures"]


# ---- finite networks and the metric-NTK (issue 7, section 3.3, fig. 4) -------------------


def training_sigma_figure(result, against: str = "epoch") -> go.Figure:
    """Validation sigma (B.11) of a TrainResult with its standard error, log y.

    Args:
      result: a TrainResult; entry 0 is the initial model.
      against: "epoch", or "time" for the training seconds before each record.
    """
    x = np.arange(len(result.val_sigma)) if against == "epoch" else result.train_seconds
    fig = go.Figure(go.Scatter(x=x, y=result.val_sigma, mode="lines+markers", name="validation σ (reference κ)",
                               error_y=dict(type="data", array=result.val_sigma_se)))
    fig.add_trace(go.Scatter(x=x, y=result.val_sigma_self, mode="lines", line=dict(dash="dash"),
                             name="validation σ (self-normalised)"))
    if len(result.train_loss) and against == "epoch":
        fig.add_trace(go.Scatter(x=x[1:], y=result.train_loss, mode="lines", name="train loss (batches)", line=dict(dash="dot")))
    fig.add_hline(y=result.sigma_fs, line_dash="dash", annotation_text="g_FS")
    fig.update_layout(title=f"{result.config.model} model: validation σ, gain {result.gain:.3g}",
                      xaxis_title="epoch" if against == "epoch" else "training time (s)", yaxis_title="σ", yaxis_type="log")
    return fig


def ntk_spectrum_figure(result, epochs: Sequence[int] | None = None, bins: int = BINS) -> go.Figure:
    """Histograms of log10 metric-NTK eigenvalues at chosen snapshot epochs (fig. 4, left).

    ``epochs`` defaults to the first and last snapshot; bins are shared so the bars compare.
    """
    from metricflow.networks.metric_ntk import _log_spectrum

    have = [int(e) for e in result.ntk_epochs]
    epochs = [have[0], have[-1]] if epochs is None else [int(e) for e in epochs]
    logs = {e: _log_spectrum(result.ntk_spectra[have.index(e)]) for e in epochs}
    lo = min(v.min() for v in logs.values())
    hi = max(v.max() for v in logs.values())
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig = go.Figure()
    for e, v in logs.items():
        counts, _ = np.histogram(v, edges)
        fig.add_trace(go.Bar(x=centres, y=counts, name=f"epoch {e}", opacity=0.6))
    fig.update_layout(barmode="overlay", title="Metric-NTK spectrum", xaxis_title="log10 eigenvalue", yaxis_title="count")
    return fig


def ntk_wasserstein_figure(result) -> go.Figure:
    """Wasserstein distance of each snapshot's spectrum to epoch 0's (fig. 4, right)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=result.ntk_epochs, y=result.ntk_wasserstein, mode="lines+markers", name="eigenvalues"))
    fig.add_trace(go.Scatter(x=result.ntk_epochs, y=result.ntk_wasserstein_log, mode="lines+markers", name="log10 eigenvalues"),
                  secondary_y=True)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="W1 (eigenvalues)", secondary_y=False)
    fig.update_yaxes(title_text="W1 (log10 eigenvalues)", secondary_y=True)
    fig.update_layout(title="Wasserstein distance to the epoch-0 metric-NTK spectrum")
    return fig


def width_sweep_figure(result) -> go.Figure:
    """Relative kernel change and validation gain against width (log-log), NTK parameterisation."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=result.widths, y=result.kernel_change, mode="lines+markers", name="|Θ_T − Θ_0| / |Θ_0|"))
    fig.add_trace(go.Scatter(x=result.widths, y=result.gain, mode="lines+markers", name="validation σ gain"))
    fig.update_layout(title="Lazy learning: the metric-NTK moves less as the width grows",
                      xaxis_title="width", xaxis_type="log", yaxis_type="log")
    return fig


def trained_kernel_figure(result) -> go.Figure:
    """Test (solid) and train (dotted) sigma of flow (3.5) with the initial and the trained metric-NTK."""
    fig = go.Figure()
    steps = np.arange(len(result.initial_test_sigma))
    for name in ("initial", "trained"):
        gain = getattr(result, f"{name}_test_gain")
        fig.add_trace(go.Scatter(x=steps, y=getattr(result, f"{name}_test_sigma"), mode="lines", name=f"{name} Θ, test (gain {gain:.3g})"))
        fig.add_trace(go.Scatter(x=steps, y=getattr(result, f"{name}_train_sigma"), mode="lines", line=dict(dash="dot"), name=f"{name} Θ, train"))
    fig.update_layout(title="Flow (3.5) with a frozen metric-NTK", xaxis_title="step", yaxis_title="σ", yaxis_type="log")
    return fig


def training_figures(result) -> dict[str, go.Figure]:
    """The figures of a TrainResult, by file-friendly name (NTK figures only with snapshots)."""
    figs = {"sigma": training_sigma_figure(result), "sigma_time": training_sigma_figure(result, "time")}
    if len(result.ntk_epochs):
        figs["spectrum"] = ntk_spectrum_figure(result)
        figs["wasserstein"] = ntk_wasserstein_figure(result)
    return figs


__all__ += [
    "training_sigma_figure",
    "ntk_spectrum_figure",
    "ntk_wasserstein_figure",
    "width_sweep_figure",
    "trained_kernel_figure",
    "training_figures",
]
