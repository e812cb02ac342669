"""Figure builders for the methods compared: MethodsResult -> plotly Figure, pure functions.

While the comparison runs, the same builders draw ``methods_so_far`` (the finished pieces)
and, on the points axis, the running pieces' own partial series (``running_curve``), marked
as still computing."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from metricflow.figures.common import readable_log_axes
from metricflow.flows.classical import ClassicalFlowConfig
from metricflow.flows.flow import FlowConfig
from metricflow.networks.models import TrainConfig
from metricflow.studies.methods import FLOW_NAMES, MethodsResult, classical_name

__all__ = [
    "methods_time_figure",
    "methods_points_figure",
    "methods_table_rows",
    "methods_table_figure",
    "methods_sentences",
    "methods_figures",
    "running_curve",
]

# One colour per family, a dash per series within it.
COLOURS = {"donaldson": "#1f77b4", "kernel": "#7f7f7f", "network": "#d62728", "classical": "#2ca02c",
           "fixed basis": "#8c564b"}
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


def running_curve(piece, partial: dict | None) -> dict | None:
    """The curve of a running piece from its own partial series (``metricflow.progress``).

    Args:
      piece: the piece's config (a FlowConfig, TrainConfig or ClassicalFlowConfig of
        ``MethodsConfig.configs()``).
      partial: the piece's partial series as the job store keeps it, or None.

    Returns:
      {"name", "family", "points", "sigma"} (sigma on the shared test points per step or
      epoch so far, against the training-point visits, as ``Series.points`` counts them), or
      None when the piece publishes no test-point curve. Its seconds are not known per step.
    """
    if not partial or not isinstance(piece, (FlowConfig, TrainConfig, ClassicalFlowConfig)):
        return None
    wanted = "validation" if isinstance(piece, TrainConfig) else "test"
    for panel in partial.get("panels", []):
        curve = panel.get("series", {}).get(wanted)
        if curve is None:
            continue
        steps = np.asarray([np.nan if v is None else v for v in curve.get("x", [])], dtype=float)
        sigma = np.asarray([np.nan if v is None else v for v in curve.get("y", [])], dtype=float)
        n = min(len(steps), len(sigma))
        keep = (steps[:n] >= 1) & np.isfinite(sigma[:n])
        if isinstance(piece, FlowConfig):
            name, family, per = FLOW_NAMES.get(piece.kernel.name, f"{piece.kernel.name} flow"), "kernel", piece.n_train
        elif isinstance(piece, ClassicalFlowConfig):
            family = "fixed basis" if piece.space == "basis" else "classical"
            name, per = classical_name(piece), piece.n_points
        else:
            name, family, per = f"{piece.model} network", "network", piece.n_points - piece.n_val
        return {"name": name, "family": family, "points": (steps[:n][keep] * per).tolist(),
                "sigma": sigma[:n][keep].tolist()}
    return None


def _against(result: MethodsResult, x_name: str, x_title: str, title: str, running=()) -> go.Figure:
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
    for curve in running:
        keep = [i for i, x in enumerate(curve["points"]) if x > 0]
        fig.add_trace(go.Scatter(
            x=[curve["points"][i] for i in keep], y=[curve["sigma"][i] for i in keep], mode="lines+markers",
            name=f"{curve['name']} (running)", line=dict(color=COLOURS.get(curve["family"], "#000000"), dash="dot"),
            marker=dict(symbol="circle-open"), opacity=0.6,
            hovertemplate="σ = %{y:.4f}<br>" + x_title + " = %{x:.3g}<extra>" + curve["name"] + ", running</extra>",
        ))
    xs = [v for t in fig.data for v in t.x]
    if xs:
        fig.add_trace(go.Scatter(x=[min(xs), max(xs)], y=[result.sigma_fs] * 2, mode="lines", name="g_FS",
                                 line=dict(color="#bbbbbb", dash="dot")))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title="σ (reference κ, fresh points)",
                      xaxis_type="log", yaxis_type="log", height=520,
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))  # below: the plot keeps the width
    return readable_log_axes(fig)


def methods_time_figure(result: MethodsResult) -> go.Figure:
    """sigma on fresh points against wall time, log-log, one trace per series (and g_FS)."""
    return _against(result, "seconds", "seconds", "σ against wall time")


def methods_points_figure(result: MethodsResult, running=()) -> go.Figure:
    """sigma on fresh points against training-point visits, log-log (and g_FS); ``running``:
    curves of running pieces (``running_curve``), dotted, named "... (running)"."""
    return _against(result, "points", "training points visited", "σ against the points used", running)


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


def methods_sentences(result: MethodsResult, provisional: bool = False) -> list[str]:
    """Two sentences with the measured numbers: how much the fixed kernels and the networks
    still improved over the second half of their runs, and their best sigma; with classical
    flows, a third: the best classical flow (and the best in a fixed basis) against the best
    network, on the same test points.

    Built from ``MethodsResult.verdict``; the wording follows the numbers (a fixed kernel
    that was still improving, or a network that stopped, is said so). With ``provisional``
    (``result`` is ``methods_so_far`` of a running comparison) they are written only once
    Donaldson, a fixed kernel flow and a network are in (else []), and each starts with
    "So far (provisional, ...)"; the third only once a classical flow is in.
    """
    v = result.verdict()
    if provisional:
        if v["donaldson"] is None or v["kernel_late_change"] is None or v["network_late_change"] is None:
            return []
        total = result.config.n_series
        return [f"So far (provisional, {len(result.series)} of {total} series in): {s[0].lower()}{s[1:]}"
                for s in methods_sentences(result)]
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
    classical = _classical_sentence(v)
    if classical:
        out.append(classical)
    return out


def _pm(sigma: float, se: float) -> str:
    """'sigma ± se' with at least 4 decimals and enough that se shows a digit (the full
    preset's errors are a few 10^-5)."""
    digits = 4 if not se > 0 else max(4, -math.floor(math.log10(se)))
    return f"{sigma:.{digits}f} ± {se:.{digits}f}"


def _times(a: dict, b: dict) -> str:
    """'n times below' / 'n times above' of a's sigma against b's."""
    ratio = a["sigma"] / b["sigma"]
    return f"{1 / ratio:.1f} times below" if ratio < 1 else f"{ratio:.1f} times above"


def _classical_sentence(v: dict) -> str:
    """The paper's claim as a measured row: the classical flows (Kahler-Ricci, Calabi, the
    two-derivative flow) against the best network, on the same test points."""
    nets = v["networks"]
    found = [(v[key], what) for key, what in (("classical", "in Donaldson's algebraic family (a kernel that moves "
                                                "with H)"), ("fixed_basis", "in a fixed basis (a fixed kernel)"))
             if v[key] is not None and v[key]["sigma"] is not None]
    if not found or nets is None or nets["sigma"] is None:
        return ""
    parts = [f"{what} the {best['method']} reaches σ = {_pm(best['sigma'], best['sigma_se'])}, "
             f"{_times(best, nets)} the {nets['method']}" for best, what in found]
    return (f"The classical flows of appendix B, projected on degree-k potentials: {'; '.join(parts)} "
            f"({_pm(nets['sigma'], nets['sigma_se'])}, on the same test points with the same κ).")


def methods_figures(result: MethodsResult, running=()) -> dict[str, go.Figure]:
    """{"time", "points", "table"}: the figures of the methods page and its HTML export;
    ``running``: the running pieces' curves (``running_curve``), on the points axis."""
    return {"time": methods_time_figure(result), "points": methods_points_figure(result, running),
            "table": methods_table_figure(result)}
