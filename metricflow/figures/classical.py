"""Figure builders for the classical flows of appendix B: result -> plotly Figure, pure functions."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from metricflow.figures.common import readable_log_axes

__all__ = ["classical_sigma_figure", "classical_functional_figure", "classical_kernel_spectrum_figure",
           "classical_kernel_movement_figure", "classical_figures", "classical_label"]

TEST, TRAIN, FS, FUNCTIONAL = "#1f77b4", "#ff7f0e", "#7f7f7f", "#2ca02c"
FIRST, LAST = "#1f77b4", "#d62728"
FUNCTIONAL_NAMES = {"ricci": "∫ (η ln η − η + 1) dμ", "calabi": "∫ (η ln η − η + 1) dμ",
                    "two-derivative": "∫ (1 − √η)² dμ"}


def classical_label(result) -> str:
    """One line naming the flow, space, degree and sizes of a ClassicalFlowResult."""
    c = result.config
    return (f"{c.label}, {c.symmetry}, {result.n_params} parameters, dt {result.dt:.3g}, "
            f"{result.n_points:,} points, {result.n_test:,} test points")


def _steps(result) -> list[int]:
    return list(range(result.steps_done + 1))


def classical_sigma_figure(result, self_normalised: bool = False) -> go.Figure:
    """sigma per step on the test points with standard errors (and on the flow's points), log y.

    Args:
      result: a ClassicalFlowResult.
      self_normalised: plot the self-normalised sigma of the test points instead.
    """
    r, xs = result, _steps(result)
    n = len(xs)
    suffix = "_self" if self_normalised else ""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=getattr(r, f"sigma{suffix}")[:n].tolist(), mode="lines+markers",
                             name=f"test ({r.n_test:,} points)", line=dict(color=TEST),
                             error_y=dict(type="data", array=getattr(r, f"sigma{suffix}_se")[:n].tolist())))
    if not self_normalised:
        fig.add_trace(go.Scatter(x=xs, y=r.train_sigma[:n].tolist(), mode="lines", name="flow's points",
                                 line=dict(color=TRAIN, dash="dot")))
    fig.add_trace(go.Scatter(x=[0, max(xs[-1], 1)], y=[float(r.sigma[0])] * 2, mode="lines", name="g_FS",
                             line=dict(color=FS, dash="dash")))
    conv = "self-normalised κ" if self_normalised else "reference κ"
    fig.update_layout(title=f"σ per step ({conv})", xaxis_title=f"step (t = step × {r.dt:.3g})",
                      yaxis_title="σ", yaxis_type="log")
    return readable_log_axes(fig)


def classical_functional_figure(result) -> go.Figure:
    """The flow's functional E per step on the flow's points (it falls at every step), and on the
    test points; log y."""
    r, xs = result, _steps(result)
    n = len(xs)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=r.functional[:n].tolist(), mode="lines+markers", name="flow's points",
                             line=dict(color=FUNCTIONAL)))
    fig.add_trace(go.Scatter(x=xs, y=r.functional_test[:n].tolist(), mode="lines", name="test points",
                             line=dict(color=TEST, dash="dot")))
    fig.update_layout(title=f"E = {FUNCTIONAL_NAMES[r.config.flow]} per step", xaxis_title="step",
                      yaxis_title="E", yaxis_type="log")
    return readable_log_axes(fig)


def classical_kernel_spectrum_figure(result) -> go.Figure:
    """The eigenvalues of the flow's kernel K = f A^+ f on its probe points at the first and the
    last step, largest first (rank on x, eigenvalue on a log y): the classical counterpart of
    the metric-NTK spectra (fig. 4). K has rank at most P, so there are at most P of them.

    Args:
      result: a ClassicalFlowResult (``kernel_spectra``: (S+1, R), ascending per step).
    """
    r = result
    fig = go.Figure()
    last = r.steps_done
    for step, colour in ((0, FIRST), (last, LAST)) if last > 0 else ((0, FIRST),):
        eig = np.asarray(r.kernel_spectra[step], dtype=float)[::-1]
        keep = np.isfinite(eig) & (eig > 0)  # log axis: rounding-size zeros are not drawn
        fig.add_trace(go.Scatter(x=(np.arange(1, eig.size + 1)[keep]).tolist(), y=eig[keep].tolist(),
                                 mode="lines+markers", name=f"step {step} (t = {step * r.dt:.3g})",
                                 line=dict(color=colour)))
    space = "fixed basis" if r.config.space == "basis" else "algebraic family"
    fig.update_layout(title=f"Kernel K = f A⁺ f on {r.kernel_probe} probe points ({space})",
                      xaxis_title="eigenvalue rank", yaxis_title="eigenvalue", yaxis_type="log")
    return readable_log_axes(fig)


def classical_kernel_movement_figure(result) -> go.Figure:
    """How far the kernel moved from step 0, per step: the Wasserstein-1 distance of its
    spectrum (eigenvalues and log10 eigenvalues, as for the metric-NTK) and the sine of the
    largest angle between its range and step 0's (0 for the fixed basis)."""
    r, xs = result, _steps(result)
    n = len(xs)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=xs, y=r.kernel_wasserstein[:n].tolist(), mode="lines+markers", name="W1, eigenvalues"))
    fig.add_trace(go.Scatter(x=xs, y=r.kernel_wasserstein_log[:n].tolist(), mode="lines+markers",
                             name="W1, log10 eigenvalues"), secondary_y=True)
    fig.add_trace(go.Scatter(x=xs, y=r.kernel_range_sine[:n].tolist(), mode="lines",
                             name="sin ∠(range, range at step 0)", line=dict(dash="dot")), secondary_y=True)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="W1 (eigenvalues)", secondary_y=False)
    fig.update_yaxes(title_text="W1 (log10) · sine", secondary_y=True)
    fig.update_layout(title="How far the kernel moved from step 0")
    return fig


def classical_figures(result) -> dict:
    """All figures of a ClassicalFlowResult by name."""
    return {"sigma": classical_sigma_figure(result), "functional": classical_functional_figure(result),
            "kernel_spectrum": classical_kernel_spectrum_figure(result),
            "kernel_movement": classical_kernel_movement_figure(result)}

