"""Figures of the theory lab (section 2.3.2): the cos-net NTK against width and its locality."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go

from metricflow.figures.common import readable_log_axes

if TYPE_CHECKING:
    from metricflow.studies.theory import TheoryResult

__all__ = ["kernel_curves_figure", "width_error_figure", "locality_profiles_figure", "locality_width_figure",
           "theory_figures"]


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
    return readable_log_axes(fig)


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
    return readable_log_axes(fig)


def theory_figures(result: "TheoryResult") -> dict[str, go.Figure]:
    """All figures of the theory lab, by file-friendly name."""
    return {
        "kernel_curves": kernel_curves_figure(result),
        "width_error": width_error_figure(result),
        "locality_profiles": locality_profiles_figure(result),
        "locality_width": locality_width_figure(result),
    }
