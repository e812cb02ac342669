"""Generalisation: test gain against distance, distance against N, and the N a kernel needs (fig. 3, eq. 3.7)."""

from __future__ import annotations

import json
import math

import numpy as np
import streamlit as st

from dashboard import count_input, enter_page, job_section, keep_address, linked, scheduler_sidebar
from metricflow.errors import MetricflowError
from metricflow.parse import float_list
from metricflow.figures import figures_html, generalisation_figures
from metricflow.studies.generalisation import DEFAULT_NOISE, PAPER_FIT, UPDATES, NoiseConfig, ScalingConfig, extrapolate
from metricflow.studies.generalisation import KERNELS as NOISE_KERNELS

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own

KERNELS = list(NOISE_KERNELS)  # the kernels the noise study runs
LARGEST = [1_000, 10_000, 100_000, 1_000_000]
NOISE = ", ".join(f"{v:g}" for v in DEFAULT_NOISE)


def parse_numbers(text: str, name: str) -> tuple[float, ...]:
    """'0, 1e-6, 1e-4' -> (0.0, 1e-06, 0.0001); raises MetricflowError otherwise."""
    return float_list(text, name, example="0, 1e-6, 1e-4", sep=",;")


def generalisation_controls():
    """The widgets, as (noise configs, scaling config, target gains, log x); raises MetricflowError."""
    st.subheader("Noise study (fig. 3 left)")
    c = st.columns([2, 1, 3, 1, 1])
    kernels = c[0].multiselect("Kernels", KERNELS, key=linked("gen_kernels", list(KERNELS), KERNELS))
    n_train = count_input(c[1], "Train points", 10, 100_000, step=100, key=linked("gen_train", 1000))
    noise = c[2].text_input("Noise variances v", key=linked("gen_noise", NOISE),
                            help="complex Gaussian noise of variance v per real feature")
    steps = count_input(c[3], "Steps", 0, 10_000, key=linked("gen_steps", 50))
    seed = count_input(c[4], "Seed", 0, 2**31 - 1, key=linked("gen_seed", 0))
    c = st.columns([2, 2, 2])
    update = c[0].radio("Update", UPDATES, horizontal=True, key=linked("gen_update", UPDATES[0], UPDATES),
                        help="covariant: the kernel acts in each metric's own frame (default); euclidean: the literal "
                             "coordinate update of eq. (3.5)")
    in_chart = c[1].checkbox("Keep test points in the train chart", key=linked("gen_in_chart", True),
                             help="redraw the noise of a point that leaves the train chart's region, as the flow's own "
                                  "test points lie in it; off, far points near the chart's singular set break the "
                                  "coordinate update")
    single = c[2].checkbox("Single precision (float32)", key=linked("gen_float32", False),
                           help="round the metrics to float32 after every step: the floor of a single-precision flow "
                                "(the delta kernel's train gain falls from 1.8e8 to 1.4e6)")
    st.caption(
        "Covariant: log loss, table 1's step (delta 0.3162, gaussian 0.1583), kernel normalised against the CY measure. "
        "Euclidean: ultralocal loss (B.14), unweighted, lr = 3e-4 × train points, row-normalised gaussian "
        "(docs/FLOWS.md). Gaussian width 1/30 in both. σ is measured against the exact κ of the Fermat quintic."
    )
    st.subheader("Distance scaling (fig. 3 right)")
    c = st.columns([1, 1, 1, 2, 1])
    largest = c[0].selectbox("Largest N", LARGEST, key=linked("gen_largest", 100_000, LARGEST))
    chart = c[1].radio("Points in", ["all", "one"], format_func=lambda v: f"{v} chart{'s' if v == 'all' else ''}",
                       horizontal=True, key=linked("gen_chart", "all", ["all", "one"]))
    seeds = count_input(c[2], "Seeds per N", 1, 20, key=linked("gen_seeds", 1))
    targets = parse_numbers(c[3].text_input("Target test gains", key=linked("gen_targets", "100, 1e6")), "target gains")
    log_x = c[4].checkbox("log distance axis", key=linked("gen_log_x", True))
    if not kernels:
        raise MetricflowError("choose at least one kernel")
    variances = parse_numbers(noise, "noise variances")
    noise_configs = [
        NoiseConfig(kernel=k, noise=variances, n_train=int(n_train), steps=int(steps), update=update,
                    in_chart=bool(in_chart), precision="float32" if single else "float64", seed=int(seed))
        for k in kernels
    ]
    sizes = tuple(sorted({int(round(n)) for n in 10 ** np.arange(2.0, math.log10(largest) + 0.01, 0.5)}))
    scaling = ScalingConfig(points=sizes, chart=chart, seeds=int(seeds), seed=int(seed))
    return noise_configs, scaling, targets, log_x


def fmt(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.3g}"


def pm(value: float, err: float) -> str:
    return "diverged" if not math.isfinite(value) else f"{value:.3g} ± {err:.2g}"


def noise_table(noise_results) -> list[dict]:
    """One row per kernel and noise level: distance, gain with its error, non-PD fraction."""
    rows = []
    for r in noise_results:
        for i, v in enumerate(r.noise):
            rows.append({
                "kernel": r.config.kernel, "update": r.config.update, "noise v": f"{v:g}",
                "distance": fmt(r.distance[i]), "nearest train point": fmt(r.nearest_distance[i]),
                "test gain": pm(r.gain[i], r.gain_se[i]), "gain over PD points": pm(r.gain_pd[i], r.gain_pd_se[i]),
                "σ start": pm(r.test_sigma_fs[i], r.test_sigma_fs_se[i]), "σ end": pm(r.test_sigma[i], r.test_sigma_se[i]),
                "non-PD fraction": f"{r.nonpd_fraction[i]:.3f}",
                "diverged at step": "" if r.diverged_step[i] < 0 else str(int(r.diverged_step[i])),
            })
    return rows


def extrapolation_table(noise_results, scaling, targets) -> list[dict]:
    """One row per kernel and target gain: the distance and N needed (section 3.2.4)."""
    rows = []
    for r in noise_results:
        for row in extrapolate(r, scaling.fit, targets):
            rows.append({
                "kernel": row.kernel, "target gain": f"{row.target:g}", "train gain": pm(r.train_gain, r.train_gain_se),
                "distance needed": fmt(row.distance), "N needed": fmt(row.points),
                "N range (b ± err)": f"{fmt(row.points_low)} – {fmt(row.points_high)}" if math.isfinite(row.points) else "—",
                "status": row.status, "note": row.reason,
            })
    return rows


def show_results(noise_results, scaling, targets, log_x: bool) -> None:
    """Metrics, both figures, the extrapolation table and downloads."""
    fit = scaling.fit
    err = f" ± {fit.exponent_err:.3f}" if math.isfinite(fit.exponent_err) else ""
    cells = [("fit exponent b (paper −0.184)", f"{fit.exponent:.3f}{err}"),
             ("fit prefactor a (paper 0.968)", f"{fit.prefactor:.3f}")]
    cells += [(f"{r.config.kernel} train gain ({r.config.update})", pm(r.train_gain, r.train_gain_se))
              for r in noise_results]
    for row in range(0, len(cells), 3):  # three to a row: a gain with its ± fits the column
        for column, (label, value) in zip(st.columns(3), cells[row:row + 3]):
            column.metric(label, value)
    figs = generalisation_figures(noise_results, scaling, log_x=log_x)
    left, right = st.columns(2)
    left.plotly_chart(figs["noise_gain"], key="fig_noise_gain")
    right.plotly_chart(figs["scaling"], key="fig_scaling")
    r0 = noise_results[0]
    st.caption(
        f"σ (B.11) against the reference κ = {r0.kappa_ref:.6g}"
        + (" (exact)" if r0.kappa_ref_se == 0 else f" ± {r0.kappa_ref_se:.2g}")
        + "; gains σ₀/σ_end on the same test points, with paired standard errors. Test points outside the train "
          "chart: " + ", ".join(f"{r.config.kernel} up to {np.max(r.outside_chart):.0%}" for r in noise_results) + "."
    )
    for r in noise_results:
        if r.stopped_reason:
            st.warning(f"{r.config.kernel}: {r.stopped_reason}")
    with st.expander("Gain at each noise level"):
        st.dataframe(noise_table(noise_results), hide_index=True)
    st.subheader("Points needed for a target test gain")
    rows = extrapolation_table(noise_results, scaling, targets)
    st.dataframe(rows, hide_index=True)
    st.caption(
        f"Paper (section 3.2.4): gain 100 needs distance 5e-3 and 1e12 points (gaussian), 5e-2 and 1e8 (delta); "
        f"gain 1e6 needs ~1e35 points. The N range pivots the fit about its centroid with b ± its standard error. "
        f"Paper fit (3.7): μ = {PAPER_FIT['prefactor']} N^{PAPER_FIT['exponent']}."
    )
    stem = f"generalisation_{'-'.join(r.config.kernel for r in noise_results)}_N{noise_results[0].config.n_train}"
    data = {
        "noise": [r.to_dict() for r in noise_results],
        "scaling": scaling.to_dict(),
        "extrapolation": [row.to_dict() for r in noise_results for row in extrapolate(r, fit, targets)],
    }
    d = st.columns(2)
    d[0].download_button("Data (JSON)", json.dumps(data), f"{stem}.json", "application/json")
    d[1].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html")


def main() -> None:
    st.title("Generalisation")
    st.markdown(
        "How far does a kernel flow's gain carry from the train points (section 3.2.4, fig. 3)? Test points are the "
        "train points plus complex Gaussian noise of variance $v$ per real feature, projected back onto $X$ and "
        "measured in the train chart; the gain in $\\sigma$ (B.11) falls with their Fubini–Study distance. The mean "
        "distance to the nearest sampled point falls like $\\mu = a N^b$ (eq. 3.7; $b = -1/6$ for a real "
        "6-manifold), which turns a target gain into the number of points it needs."
    )
    try:
        noise_configs, scaling, targets, log_x = generalisation_controls()
        job_section(
            "generalisation", [*noise_configs, scaling],
            lambda results: show_results(results[:-1], results[-1], targets, log_x),
            hint="Choose kernels, noise levels and sizes, then press Run.", fix="use fewer points",
        )
    except MetricflowError as err:
        st.error(str(err))


main()
keep_address()
