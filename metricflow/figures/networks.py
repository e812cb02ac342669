"""Figures of finite networks and the metric-NTK (issue 7, section 3.3, fig. 4)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from metricflow.figures.common import BINS, readable_log_axes
from metricflow.networks.metric_ntk import _log_spectrum

__all__ = [
    "training_sigma_figure",
    "ntk_spectrum_figure",
    "ntk_wasserstein_figure",
    "width_sweep_figure",
    "trained_kernel_figure",
    "training_figures",
]


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
    return readable_log_axes(fig)


def ntk_spectrum_figure(result, epochs: Sequence[int] | None = None, bins: int = BINS) -> go.Figure:
    """Histograms of log10 metric-NTK eigenvalues at chosen snapshot epochs (fig. 4, left).

    ``epochs`` defaults to the first and last snapshot; bins are shared so the bars compare.
    """
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
    return readable_log_axes(fig)


def trained_kernel_figure(result) -> go.Figure:
    """Test (solid) and train (dotted) sigma of flow (3.5) with the initial and the trained metric-NTK."""
    fig = go.Figure()
    steps = np.arange(len(result.initial_test_sigma))
    for name in ("initial", "trained"):
        gain = getattr(result, f"{name}_test_gain")
        fig.add_trace(go.Scatter(x=steps, y=getattr(result, f"{name}_test_sigma"), mode="lines", name=f"{name} Θ, test (gain {gain:.3g})"))
        fig.add_trace(go.Scatter(x=steps, y=getattr(result, f"{name}_train_sigma"), mode="lines", line=dict(dash="dot"), name=f"{name} Θ, train"))
    fig.update_layout(title="Flow (3.5) with a frozen metric-NTK", xaxis_title="step", yaxis_title="σ", yaxis_type="log")
    return readable_log_axes(fig)


def training_figures(result) -> dict[str, go.Figure]:
    """The figures of a TrainResult, by file-friendly name (NTK figures only with snapshots)."""
    figs = {"sigma": training_sigma_figure(result), "sigma_time": training_sigma_figure(result, "time")}
    if len(result.ntk_epochs):
        figs["spectrum"] = ntk_spectrum_figure(result)
        figs["wasserstein"] = ntk_wasserstein_figure(result)
    return figs
