"""Figure builders for the methods compared: MethodsResult -> plotly Figure, pure functions."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from metricflow.studies.methods import MethodsResult

__all__ = [
    "methods_time_figure",
    "methods_points_figure",
    "methods_table_rows",
    "methods_table_figure",
    "methods_sentences",
    "methods_figures",
]

# One colour per family, a dash per series within it.
COLOURS = {"donaldson": "#1f77b4", "kernel": "#7f7f7f", "network": "#d62728"}
DASHES = ("solid", "dash", "dot", "dashdot")
TABLE_COLUMNS = ("method", "best σ", "± se", "at", "seconds", "points", "train points", "parameters", "memory (MiB)")


def _styles(result: MethodsResult) -> list[dict]:
    seen: dict[str, int] = {}
    out = []
    for s in result.series:
        i = seen.get(s.family, 0)
        seen[s.family] = i + 1
        out.append(dict(color=COLOURS.get(s.family, "#000000"), dash=DASHES[i % len(DASHES)]))
    return out


def _against(result: MethodsResult, x_name: str, x_title: str, title: str) -> go.Figure:
    fig = go.Figure()
    for s, line in zip(result.series, _styles(result)):
        x = np.asarray(getattr(s, x_name), dtype=float)
        keep = np.isfinite(s.sigma) & (x > 0)  # log axes
        step = "k" if s.family == "donaldson" else ("epoch" if s.family == "network" else "step")
        fig.add_trace(go.Scatter(
            x=x[keep].tolist(), y=s.sigma[keep].tolist(), mode="lines+markers", name=s.name, line=line,
            error_y=dict(type="data", array=s.sigma_se[keep].tolist(), thickness=1),
            text=[f"{step} {v}" for v in s.step[keep].tolist()],
            hovertemplate="%{text}<br>σ = %{y:.4f}<br>" + x_title + " = %{x:.3g}<extra>" + s.name + "</extra>",
        ))
    xs = [v for t in fig.data for v in t.x]
    if xs:
        fig.add_trace(go.Scatter(x=[min(xs), max(xs)], y=[result.sigma_fs] * 2, mode="lines", name="g_FS",
                                 line=dict(color="#bbbbbb", dash="dot")))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title="σ (reference κ, fresh points)",
                      xaxis_type="log", yaxis_type="log")
    return fig


def methods_time_figure(result: MethodsResult) -> go.Figure:
    """sigma on fresh points against wall time, log-log, one trace per series (and g_FS)."""
    return _against(result, "seconds", "seconds", "σ against wall time")


def methods_points_figure(result: MethodsResult) -> go.Figure:
    """sigma on fresh points against training-point visits, log-log (and g_FS)."""
    return _against(result, "points", "training points visited", "σ against the points used")


def methods_table_rows(result: MethodsResult) -> list[dict]:
    """The table as rows of display values, keys ``TABLE_COLUMNS`` (numbers rounded)."""
    rows = []
    for r in result.table():
        rows.append({
            "method": r["method"],
            "best σ": None if r["best_sigma"] is None else round(r["best_sigma"], 4),
            "± se": None if r["best_sigma_se"] is None else round(r["best_sigma_se"], 4),
            "at": r["at"], "seconds": None if r["seconds"] is None else round(r["seconds"], 1),
            "points": r["points"], "train points": r["train_points"], "parameters": r["parameters"],
            "memory (MiB)": round(r["memory_mib"]),
        })
    return rows


def methods_table_figure(result: MethodsResult) -> go.Figure:
    """The table as a plotly Table (for the HTML export); memory is the jobs' estimate."""
    rows = methods_table_rows(result)
    cells = [[("" if row[c] is None else row[c]) for row in rows] for c in TABLE_COLUMNS]
    fig = go.Figure(go.Table(header=dict(values=list(TABLE_COLUMNS)), cells=dict(values=cells)))
    fig.update_layout(title="Best σ on fresh points per method (memory: estimated peak)")
    return fig


def _pct(ratio: float) -> str:
    return f"{100 * (1 - ratio):.1f} %"


def methods_sentences(result: MethodsResult) -> list[str]:
    """Two sentences with the measured numbers: how much the fixed kernels and the networks
    still improved over the second half of their runs, and their best sigma.

    Built from ``MethodsResult.verdict``; the wording follows the numbers (a fixed kernel
    that was still improving, or a network that stopped, is said so).
    """
    v = result.verdict()
    out = []
    fixed, change = v["fixed_kernels"], v["kernel_late_change"]
    if fixed is not None and change is not None:
        verb = "saturate" if change["min"] > 0.95 else "are still improving"
        flows = "the delta, Gaussian and ReLU-NTK flows"
        if change["min"] < 1:
            moved = f"{flows} lowered σ by at most {_pct(change['min'])} ({change['min_method']})"
        else:
            moved = f"none of {flows} lowered σ"
        if change["max"] > 1.05:
            moved += f", and the {change['max_method']}'s σ rose {change['max']:.1f}-fold"
        out.append(
            f"The fixed kernels {verb}: over the second half of their steps {moved}; the best σ any of them "
            f"reached is {fixed['sigma']:.4f} ± {fixed['sigma_se']:.4f}, by the {fixed['method']} "
            f"(g_FS: {result.sigma_fs:.4f})."
        )
    nets, nchange = v["networks"], v["network_late_change"]
    if nets is not None and nchange is not None:
        verb = "keep learning" if nchange["max"] < (change["min"] if change else 1.0) else "have slowed down too"
        least, most = _pct(nchange["max"]), _pct(nchange["min"])
        span = most if least == most else f"{least} to {most}"
        compare = ""
        if fixed is not None and nets["sigma"] is not None and fixed["sigma"] is not None:
            ratio = fixed["sigma"] / nets["sigma"]
            compare = (f", {ratio:.1f} times below the best fixed kernel" if ratio > 1
                       else f", {1 / ratio:.1f} times above the best fixed kernel")
        out.append(
            f"The networks {verb}: over the second half of their epochs σ fell by {span}, and the "
            f"{nets['method']} reaches σ = {nets['sigma']:.4f} ± {nets['sigma_se']:.4f}{compare}."
        )
    return out


def methods_figures(result: MethodsResult) -> dict[str, go.Figure]:
    """{"time", "points", "table"}: the figures of the methods page and its HTML export."""
    return {"time": methods_time_figure(result), "points": methods_points_figure(result),
            "table": methods_table_figure(result)}
