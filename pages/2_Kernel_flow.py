"""Kernel flow: run the discrete metric flow (3.5) with a chosen kernel and loss, compare runs."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import job_progress, job_store, count_input, run_button
from metricflow.errors import MetricflowError, available_memory_bytes
from metricflow.experiments import flow_csv
from metricflow.figures import figure_png, figures_html, flow_figures, flow_label
from metricflow.flow import TABLE1, FlowConfig
from metricflow.jobs import ACTIVE, DONE, FAILED, job_key
from metricflow.jobs import estimate as job_estimate
from metricflow.kernels import KERNELS
from metricflow.losses import LOSSES

JOB = "flow_job"  # session_state: key of the job this session launched last
CONFIG = "flow_config"  # session_state: its config, for a retry
RUNS = "flow_runs"  # session_state: keys of finished runs overlaid for comparison
MAX_RUNS = 8


def flow_controls() -> FlowConfig:
    """The flow widgets, as a FlowConfig (raises MetricflowError on bad input).

    Kernel-specific widgets are keyed by kernel, so choosing another kernel shows that
    kernel's table 1 defaults (TABLE1) for points, learning rate and options.
    """
    c = st.columns(4)
    kernel = c[0].selectbox("Kernel", KERNELS, index=KERNELS.index("delta"), key="flow_kernel")
    loss = c[1].selectbox("Loss", LOSSES, key="flow_loss")
    table = TABLE1[kernel]
    key = lambda name: f"flow_{name}_{kernel}"  # noqa: E731
    n_train = count_input(c[2], "Train points", 10, 1_000_000, table["n_train"], step=100, key=key("n_train"))
    n_test = count_input(c[3], "Test points", 10, 1_000_000, table["n_train"], step=100, key=key("n_test"))
    c = st.columns(4)
    steps = count_input(c[0], "Steps", 1, 10_000, 50, key=key("steps"))
    lr = c[1].number_input("Learning rate Δt", 1e-12, 1e6, float(table["lr"]), format="%g", key=key("lr"))
    clip = c[2].number_input(
        "Clip (0 = off)", 0.0, 1e6, 0.0, format="%g", key=key("clip"),
        help="scale down each point's update so |Δt U| ≤ clip |g| (Frobenius norms)",
    )
    seed = count_input(c[3], "Seed", 0, 2**31 - 1, 0, key=key("seed"))
    options: dict = {}
    c = st.columns(4)
    if kernel == "relu-ntk":
        options["depth"] = int(count_input(c[0], "Depth", 1, 20, table["depth"], key=key("depth")))
        options["sigma_w"] = c[1].number_input("σ_w", 1e-6, 1e6, float(table["sigma_w"]), format="%g", key=key("sigma_w"))
        options["sigma_b"] = c[2].number_input("σ_b", 0.0, 1e6, float(table["sigma_b"]), format="%g", key=key("sigma_b"))
    elif kernel == "gaussian":
        options["sigma"] = c[0].number_input("σ (eq. 3.6)", 1e-6, 1e6, float(table["sigma"]), format="%g", key=key("sigma"))
        options["squared"] = c[1].checkbox("exp(−d²/2σ²)", False, key=key("squared"))
        radius = c[2].number_input("Cutoff radius (0 = dense)", 0.0, 1.5, 0.0, format="%g", key=key("radius"))
        options["radius"] = radius or None
    elif kernel == "cosnet":
        options["sigma_w"] = c[0].number_input("σ_w", 1e-6, 1e6, float(table["sigma_w"]), format="%g", key=key("sigma_w"))
        width = count_input(c[1], "Width N (0 = infinite)", 0, 10**7, 0, step=256, key=key("width"))
        options["width"] = int(width) or None
    normalise = c[3].checkbox("Normalise by row sums", False, key=key("normalise"))
    weighted = c[3].checkbox("Weighted loss", True, key=key("weighted"))
    return FlowConfig(
        kernel=kernel, loss=loss, n_train=int(n_train), n_test=int(n_test), steps=int(steps), lr=float(lr),
        clip=float(clip) or None, seed=int(seed), normalise=normalise, weighted=weighted, **options,
    )


def show_runs(keys: list[str], current: str) -> None:
    """Figures overlaying the finished runs ``keys``, the current run's metrics and downloads."""
    store = job_store()
    pairs = [(k, store.result(k)) for k in keys]
    pairs = [(k, r) for k, r in pairs if r is not None]
    if not pairs:
        return
    result = dict(pairs).get(current, pairs[-1][1])
    m = st.columns(5)
    m[0].metric("train gain σ₀/σ", f"{result.train_gain:.3g}")
    m[1].metric("test gain σ₀/σ", f"{result.test_gain:.3g}")
    m[2].metric("steps done", f"{result.steps_done} of {result.config.steps}")
    m[3].metric("points drawn", f"{result.points_drawn:,}")
    m[4].metric("compute time", f"{result.seconds:.2f} s")
    if result.stopped_reason:
        st.warning(result.stopped_reason)
    if result.isolated_test:
        st.caption(f"{result.isolated_test:,} test points have no train point within the cutoff and do not move.")
    results = [r for _, r in pairs]
    labels = [flow_label(r.config) for r in results]
    figs = flow_figures(results, labels)
    st.plotly_chart(figs["sigma"], key="fig_flow_sigma")
    left, right = st.columns(2)
    left.plotly_chart(figs["gain"], key="fig_flow_gain")
    right.plotly_chart(figs["nonpd"], key="fig_flow_nonpd")
    if len(pairs) > 1:
        st.dataframe([
            {"run": label, "train gain": r.train_gain, "test gain": r.test_gain, "steps": r.steps_done,
             "stopped": r.stopped_reason or ""}
            for label, r in zip(labels, results)
        ], hide_index=True)
    c = result.config
    stem = f"flow_{c.kernel}_{c.loss}_N{c.n_train}_M{c.n_test}_seed{c.seed}"
    d = st.columns(5)
    d[0].download_button("Run data (JSON)", json.dumps(result.to_dict(), indent=1), f"{stem}.json", "application/json")
    d[1].download_button("Per step (CSV)", flow_csv(result), f"{stem}.csv", "text/csv")
    d[2].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html")
    d[3].download_button("σ figure (PNG)", lambda: figure_png(figs["sigma"]), f"{stem}_sigma.png", "image/png")
    if d[4].button("Clear comparison", help="forget the earlier runs overlaid here (they stay cached)"):
        st.session_state[RUNS] = [current] if current in keys else []
        st.rerun()


def show_job(key: str, config: FlowConfig | None) -> None:
    """Progress, error or (once done) the comparison of runs, for the job ``key``."""
    store = job_store()
    status = store.status(key)
    runs = st.session_state.setdefault(RUNS, [])
    if status is not None and status.state in ACTIVE:
        job_progress(key, "flow_cancel")
    elif status is not None and status.state == DONE:
        if store.result(key) is None:  # unreadable: the store has reset it, so compute it again
            if config is not None:
                store.submit(config)
            st.rerun()
        if key not in runs:
            runs.append(key)
            del runs[:-MAX_RUNS]
    elif status is not None:
        (st.error if status.state == FAILED else st.warning)(f"Job {status.state}: {status.error}")
        trace = store.traceback(key)
        if trace:
            with st.expander("Traceback"):
                st.code(trace)
        if config is not None and st.button("Retry"):
            store.submit(config)
            st.rerun()
    show_runs(runs, key)


def main() -> None:
    st.set_page_config(page_title="Kernel flow · metricflow", layout="wide")
    st.title("Kernel flow")
    st.markdown(
        "Flow the Fubini–Study metric with a fixed kernel Θ (eq. 3.5): "
        "$g^{(n+1)}(x) = g^{(n)}(x) - \\Delta t \\sum_{x'} \\Theta(x,x')\\, \\partial\\ell/\\partial g(x')$, "
        "summing over train points only; test points receive updates but feed none. "
        "σ (eq. B.11) is recorded on both sets after each step. Defaults are table 1 of the paper."
    )
    store = job_store()
    try:
        config = flow_controls()
        cost = job_estimate(config)
    except MetricflowError as err:
        st.error(str(err))
        return
    free = available_memory_bytes()
    too_big = cost.bytes > free
    st.caption(f"Estimate: about {cost.seconds:.0f} s and {cost.bytes / 2**20:,.0f} MiB ({free / 2**30:.1f} GiB free).")
    key = job_key(config)
    if run_button(disabled=too_big):
        try:
            st.session_state[JOB] = store.submit(config)
            st.session_state[CONFIG] = config
        except MetricflowError as err:
            st.error(str(err))
    if too_big:
        st.error("This needs more memory than is free; use fewer points, a cutoff radius or the delta kernel.")
    status = store.status(key)
    shown = key if status is not None and status.state == DONE else st.session_state.get(JOB)
    if shown is None:
        if st.session_state.get(RUNS):
            show_runs(st.session_state[RUNS], "")
        else:
            st.info("Choose a kernel, a loss and the sizes, then press Run.")
        return
    if shown != key:
        st.caption("Showing the job launched with earlier settings.")
    st.caption(f"Job {shown[:12]}")
    show_job(shown, config if shown == key else st.session_state.get(CONFIG))


main()
