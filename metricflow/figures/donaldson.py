"""Figure builders for Donaldson's balanced metrics: result -> plotly Figure, pure functions."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from metricflow.figures.common import readable_log_axes

__all__ = [
    "donaldson_sigma_figure",
    "donaldson_time_figure",
    "donaldson_convergence_figure",
    "donaldson_figures",
    "donaldson_sweep_figure",
    "psi_label",
]

BALANCED, OPTIMISED, FS, PHI, FAMILY = "#1f77b4", "#d62728", "#7f7f7f", "#2ca02c", "#9467bd"


def _finite(a) -> bool:
    return bool(np.any(np.isfinite(np.asarray(a, dtype=float))))


def donaldson_sigma_figure(result, self_normalised: bool = False) -> go.Figure:
    """sigma_k against k, balanced (and optimised) H, with standard errors; g_FS as a line.

    Args:
      result: a DonaldsonResult.
      self_normalised: plot the self-normalised sigma instead of the reference-kappa one.
    """
    r = result
    suffix = "_self" if self_normalised else ""
    ks = r.ks.tolist()
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=ks, y=getattr(r, f"sigma{suffix}").tolist(), mode="lines+markers", name="balanced h",
        error_y=dict(type="data", array=getattr(r, f"sigma{suffix}_se").tolist()), line=dict(color=BALANCED),
    ))
    if _finite(r.opt_sigma):
        fig.add_trace(go.Scatter(
            x=ks, y=getattr(r, f"opt_sigma{suffix}").tolist(), mode="lines+markers", name="σ-optimised h",
            error_y=dict(type="data", array=getattr(r, f"opt_sigma{suffix}_se").tolist()), line=dict(color=OPTIMISED),
        ))
    fs = r.sigma_fs_self if self_normalised else r.sigma_fs
    fig.add_trace(go.Scatter(x=[min(ks), max(ks)], y=[fs, fs], mode="lines", name="g_FS",
                             line=dict(color=FS, dash="dash")))
    conv = "self-normalised κ" if self_normalised else "reference κ"
    fig.update_layout(title=f"σ_k on {r.n_test:,} fresh points ({conv})", xaxis_title="degree k",
                      yaxis_title="σ", yaxis_type="log", xaxis=dict(tickmode="array", tickvals=ks))
    return readable_log_axes(fig)


def donaldson_time_figure(result) -> go.Figure:
    """sigma_k against the seconds spent on h (balancing, plus optimising), log-log."""
    r = result
    fig = go.Figure()
    text = [f"k = {k}" for k in r.ks.tolist()]
    fig.add_trace(go.Scatter(x=r.seconds.tolist(), y=r.sigma.tolist(), mode="lines+markers+text", text=text,
                             textposition="top right", name="balanced h", line=dict(color=BALANCED),
                             error_y=dict(type="data", array=r.sigma_se.tolist())))
    if _finite(r.opt_sigma):
        fig.add_trace(go.Scatter(x=(r.seconds + r.opt_seconds).tolist(), y=r.opt_sigma.tolist(),
                                 mode="lines+markers+text", text=text, textposition="bottom left",
                                 name="σ-optimised h", line=dict(color=OPTIMISED),
                                 error_y=dict(type="data", array=r.opt_sigma_se.tolist())))
    fig.update_layout(title=f"σ_k against time ({r.n_points:,} points for h)", xaxis_title="seconds",
                      yaxis_title="σ", xaxis_type="log", yaxis_type="log")
    return readable_log_axes(fig)


def donaldson_convergence_figure(result) -> go.Figure:
    """The T-operator's relative change per iteration, one line per k, and the tolerance."""
    r = result
    fig = go.Figure()
    longest = 1
    for k, hist in zip(r.ks.tolist(), r.residual_history):
        steps = np.arange(1, len(hist) + 1)
        longest = max(longest, len(hist))
        fig.add_trace(go.Scatter(x=steps.tolist(), y=np.asarray(hist).tolist(), mode="lines+markers", name=f"k = {k}"))
    tol = r.config.tol
    fig.add_trace(go.Scatter(x=[1, longest], y=[tol, tol], mode="lines", name="tolerance",
                             line=dict(color=FS, dash="dot")))
    fig.update_layout(title="T-operator iteration: ‖T(h)⁻¹ − h‖ / ‖h‖", xaxis_title="iteration",
                      yaxis_title="relative change", yaxis_type="log")
    return readable_log_axes(fig)


def donaldson_figures(result) -> dict[str, go.Figure]:
    """The figures of a DonaldsonResult, by name."""
    return {
        "sigma": donaldson_sigma_figure(result),
        "time": donaldson_time_figure(result),
        "convergence": donaldson_convergence_figure(result),
    }


def psi_label(psi: complex) -> str:
    """'0', '0.5' or '10+3i'."""
    psi = complex(psi)
    if psi.imag == 0:
        return f"{psi.real:g}"
    return f"{psi.real:g}{psi.imag:+g}i"


def donaldson_sweep_figure(result) -> go.Figure:
    """sigma_FS(psi), the balanced sigma_k(psi) and, when the sweep trained them, the per-psi
    phi networks' sigma(psi) and the psi-conditioned network's after their epochs, along the
    Dwork family, with errors."""
    r = result
    labels = [psi_label(p) for p in r.psis]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=labels, y=r.sigma_fs.tolist(), mode="lines+markers", name="g_FS",
                             error_y=dict(type="data", array=r.sigma_fs_se.tolist()), line=dict(color=FS)))
    fig.add_trace(go.Scatter(x=labels, y=r.sigma.tolist(), mode="lines+markers", name=f"balanced, k = {r.config.k}",
                             error_y=dict(type="data", array=r.sigma_se.tolist()), line=dict(color=BALANCED)))
    if _finite(r.phi_sigma):
        fig.add_trace(go.Scatter(x=labels, y=r.phi_sigma.tolist(), mode="lines+markers",
                                 name=f"φ network, {r.config.phi_epochs} epochs",
                                 error_y=dict(type="data", array=r.phi_sigma_se.tolist()), line=dict(color=PHI)))
    if _finite(r.family_sigma):
        fig.add_trace(go.Scatter(x=labels, y=r.family_sigma.tolist(), mode="lines+markers",
                                 name=f"ψ-conditioned φ network, {r.config.phi_epochs} epochs",
                                 error_y=dict(type="data", array=r.family_sigma_se.tolist()),
                                 line=dict(color=FAMILY, dash="dash")))
    fig.update_layout(title="σ along the Dwork family", xaxis_title="ψ", yaxis_title="σ",
                      xaxis=dict(type="category"))
    return fig
