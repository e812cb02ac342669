"""Kernel flow: run the discrete metric flow (3.5) with a chosen kernel and loss, compare runs."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import bounded_input, count_input, enter_page, job_section, job_store, keep_address, linked, scheduler_sidebar
from metricflow.errors import MetricflowError
from metricflow.flows.flow import flow_csv
from metricflow.figures import figure_png, figures_html, flow_figures, flow_label
from metricflow.flows.flow import DEFAULT_LOSS, UPDATES, FlowConfig
from metricflow.jobs import job_key
from metricflow.kernels import KERNELS, START_KERNEL, kernel_options, kernel_spec
from metricflow.flows.losses import LOSSES

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own

RUNS = "flow_runs"  # session_state: keys of finished runs overlaid for comparison
MAX_RUNS = 8

# Why table 1 as printed diverges with the coordinate update (measured: docs/FLOWS.md).
PRESET_REASON = (
    "With the literal coordinate update the step is Δt·Σ Θ ∂ℓ/∂g in chart units: its size relative to g "
    "varies from point to point with g⁻¹ (the 1/π of g_FS, the chart), and the near-flat kernels of table 1 "
    "(Gaussian σ = 30: exp(−d/60) ∈ [0.97, 1]; ReLU NTK σ_b = 80.5: entries ~2·10⁵) add up ~N equal terms. "
    "At Δt = 0.1583 or 0.1 the Gaussian and ReLU flows diverge within 5–8 steps; the delta kernel runs "
    "but gains only ~6 (the σ-loss gradient has a constant size)."
)


def apply_preset(kernel: str) -> None:
    """Table 1 as printed, with the coordinate update and the sigma loss (a button callback)."""
    table = KERNELS[kernel].table1
    st.session_state["flow_update"] = "euclidean"
    st.session_state["flow_loss_euclidean"] = "sigma"
    for name, value in table.items():
        st.session_state[f"flow_{name}_{kernel}"] = value
    st.session_state[f"flow_n_test_{kernel}"] = table["n_train"]
    st.session_state[f"flow_steps_{kernel}"] = 50
    st.session_state[f"flow_clip_{kernel}"] = 0.0
    st.session_state[f"flow_normalise_euclidean_{kernel}"] = False
    st.session_state[f"flow_weighted_{kernel}"] = True
    for option in kernel_options(kernel):
        if option["optional"] or option["type"] == "bool":  # the variant of table 1: off
            st.session_state[f"flow_{option['name']}_{kernel}"] = 0 if option["optional"] else option["default"]


def kernel_widgets(kernel: str, columns, key) -> dict:
    """One widget per option of ``kernel``, generated from the registry (kernel_options): its
    label, bounds and table 1 default. An optional option (a cutoff radius, a finite width)
    is off at 0. Returns the options for ``kernel_spec``."""
    options = {}
    for i, option in enumerate(kernel_options(kernel)):
        col, name, bounds = columns[i % len(columns)], option["name"], option["bounds"]
        label = option["label"] + (" (0 = off)" if option["optional"] else "")
        default = option["table1"] if option["table1"] is not None else option["default"]
        if option["type"] == "bool":
            options[name] = col.checkbox(label, key=key(name, bool(default)), help=option["help"])
        elif option["type"] == "int":
            low = 0 if option["optional"] else bounds.get("minimum", 0)
            value = count_input(col, label, low, min(bounds.get("maximum", 10**7), 10**7), key=key(name, default or 0),
                                help=option["help"])
            options[name] = int(value) if value or not option["optional"] else None
        else:
            low = bounds.get("low")
            low = (0.0 if option["optional"] or bounds["kind"] == "Real" else 1e-6) if low is None else low
            high = bounds.get("below") or bounds.get("high") or 1e6
            value = bounded_input(col, label, low, high, format="%g", key=key(name, float(default or 0.0)),
                                  help=option["help"])
            options[name] = (value or None) if option["optional"] else value
    return options


def flow_controls() -> FlowConfig:
    """The flow widgets, as a FlowConfig (raises MetricflowError on bad input).

    Kernel-specific widgets are keyed by kernel, so choosing another kernel shows that
    kernel's table 1 defaults (its spec's table1) for points, learning rate and options. The loss and
    the normalisation are keyed by update rule and default to that rule's (log loss and the
    normalised kernel for the covariant update; sigma loss, unnormalised, for euclidean).
    """
    c = st.columns(4)
    kernel = c[0].selectbox("Kernel", list(KERNELS), key=linked("flow_kernel", START_KERNEL, KERNELS))
    update = c[1].selectbox(
        "Update", UPDATES, key=linked("flow_update", UPDATES[0], UPDATES),
        help="covariant: the kernel acts in each metric's own frame, g ← g·exp(−Δt c/n) (default); "
        "euclidean: the literal coordinate update of eq. (3.5)",
    )
    # set before the widget (not as its default) so that the preset may set it first
    loss = c[2].selectbox("Loss", list(LOSSES), key=linked(f"flow_loss_{update}", DEFAULT_LOSS[update], LOSSES))
    c[3].button("Table 1 as printed, coordinate update", on_click=apply_preset, args=(kernel,), key="flow_preset",
                help=PRESET_REASON)
    table = KERNELS[kernel].table1

    def key(name: str, default) -> str:
        # the value goes into session_state before the widget exists (not as the widget's
        # default), so that the preset can set it without a conflict; the address holds it
        return linked(f"flow_{name}_{kernel}", default)

    c = st.columns(4)
    n_train = count_input(c[0], "Train points", 10, 1_000_000, step=100, key=key("n_train", table["n_train"]))
    n_test = count_input(c[1], "Test points", 10, 1_000_000, step=100, key=key("n_test", table["n_train"]))
    steps = count_input(c[2], "Steps", 1, 10_000, key=key("steps", 50))
    lr = bounded_input(c[3], "Learning rate Δt", 1e-12, 1e6, format="%g", key=key("lr", float(table["lr"])))
    c = st.columns(4)
    clip = bounded_input(
        c[0], "Clip (0 = off)", 0.0, 1e6, format="%g", key=key("clip", 0.0),
        help="euclidean: scale down each point's update so |Δt U| ≤ clip |g| (Frobenius norms); "
        "covariant: bound the log-rescaling |Δt c/n| ≤ clip",
    )
    seed = count_input(c[1], "Seed", 0, 2**31 - 1, key=key("seed", 0))
    c = st.columns(4)
    options = kernel_widgets(kernel, c[:3], key)
    normalise = c[3].checkbox(
        "Normalise the kernel", key=key(f"normalise_{update}", update == "covariant"),
        help="covariant: Θ(x,x′)w′/Σ Θ(x,x″)w″ (a delta kernel stays a delta); euclidean: divide by row sums",
    )
    weighted = c[3].checkbox("Weighted loss", key=key("weighted", True))
    return FlowConfig(
        kernel=kernel_spec(kernel, **options), loss=loss, n_train=int(n_train), n_test=int(n_test), steps=int(steps), lr=float(lr),
        clip=float(clip) or None, seed=int(seed), normalise=normalise, weighted=weighted, update=update,
    )


def gain_text(gain, se) -> str:
    """'1.8e+08 ± 2.7e+06', or 'diverged' for a null gain."""
    return "diverged" if gain is None else (f"{gain:.3g}" if se is None else f"{gain:.3g} ± {se:.2g}")


def sigma_table(result) -> list[dict]:
    """σ at step 0 and at the last completed step, in both conventions and over the PD points."""
    rows = []
    for part in ("train", "test"):
        n = result.config.n_train if part == "train" else result.config.n_test
        for step in (0, result.steps_done):
            get = lambda name: getattr(result, f"{part}_{name}")  # noqa: E731
            rows.append({
                "set": part, "step": step,
                "σ (reference κ)": f"{get('sigma')[step]:.4g} ± {get('sigma_se')[step]:.2g}",
                "σ self-normalised": f"{get('sigma_self')[step]:.4g} ± {get('sigma_self_se')[step]:.2g}",
                "σ over PD points": f"{get('sigma_pd')[step]:.4g}",
                "non-PD points": f"{int(get('nonpd_count')[step]):,} of {n:,}",
            })
    return rows


def show_runs(keys: list[str], current: str) -> None:
    """Figures overlaying the finished runs ``keys``, the current run's metrics and downloads."""
    store = job_store()
    pairs = [(k, store.result(k)) for k in keys]
    pairs = [(k, r) for k, r in pairs if r is not None]
    if not pairs:
        return
    result = dict(pairs).get(current, pairs[-1][1])
    m = st.columns(3)  # three to a row: a gain with its ± fits the column
    m[0].metric("train gain σ₀/σ", gain_text(result.train_gain, result.train_gain_se))
    m[1].metric("test gain σ₀/σ", gain_text(result.test_gain, result.test_gain_se))
    m[2].metric("steps done", f"{result.steps_done} of {result.config.steps}")
    m = st.columns(3)
    m[0].metric("points drawn", f"{result.points_drawn:,}")
    m[1].metric("compute time", f"{result.seconds:.2f} s")
    if result.stopped_reason:
        st.warning(result.stopped_reason)
    st.dataframe(sigma_table(result), hide_index=True)
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
            {"run": label, "train gain": gain_text(r.train_gain, r.train_gain_se),
             "test gain": gain_text(r.test_gain, r.test_gain_se), "steps": r.steps_done, "stopped": r.stopped_reason or ""}
            for label, r in zip(labels, results)
        ], hide_index=True)
    c = result.config
    stem = f"flow_{c.kernel}_{c.update}_{c.loss}_N{c.n_train}_M{c.n_test}_seed{c.seed}"
    d = st.columns(5)
    d[0].download_button("Run data (JSON)", json.dumps(result.to_dict(), indent=1), f"{stem}.json", "application/json")
    d[1].download_button("Per step (CSV)", flow_csv(result), f"{stem}.csv", "text/csv")
    d[2].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html")
    d[3].download_button("σ figure (PNG)", lambda: figure_png(figs["sigma"]), f"{stem}_sigma.png", "image/png")
    if d[4].button("Clear comparison", help="forget the earlier runs overlaid here (they stay cached)"):
        st.session_state[RUNS] = [current] if current in keys else []
        st.rerun()


def show_flow(result) -> None:
    """Add a finished run to the comparison and show it with the earlier runs."""
    runs = st.session_state.setdefault(RUNS, [])
    key = job_key(result.config)
    if key not in runs:
        runs.append(key)
        del runs[:-MAX_RUNS]
    show_runs(runs, key)


def main() -> None:
    st.title("Kernel flow")
    st.markdown(
        "Flow the Fubini–Study metric with a fixed kernel Θ (eq. 3.5), summing over train points only; "
        "test points receive updates but feed none. The default **covariant** update lets Θ act in each "
        "metric's own frame: for a loss of η alone a train point asks for the relative correction "
        "$r = \\ell'(\\eta)\\,\\eta$, and every point is rescaled, "
        "$g(x) \\leftarrow g(x)\\, e^{-\\Delta t\\, c(x)/n}$ with $c(x) = \\sum_{x'} \\tilde\\Theta(x,x')\\, r(x')$: "
        "independent of the chart, and a positive-definite metric stays so. With the log loss "
        "$\\ell = \\tfrac12 (\\log\\eta)^2$ and the delta kernel this is Newton's step, "
        "$\\log\\eta \\leftarrow (1-\\Delta t)\\log\\eta$. The **euclidean** update is the literal "
        "$g^{(n+1)} = g^{(n)} - \\Delta t \\sum_{x'} \\Theta\\, \\partial\\ell/\\partial g(x')$ in coordinates. "
        "σ (eq. B.11) is measured on both sets after each step against the reference κ, with standard errors. "
        "Defaults are table 1 of the paper with the covariant update."
    )
    st.caption("Table 1 as printed, coordinate update: " + PRESET_REASON)
    try:
        config = flow_controls()
        runs = st.session_state.setdefault(RUNS, [])
        hint = "" if runs else "Choose a kernel, a loss and the sizes, then press Run."
        shown = job_section("flow", config, show_flow, hint=hint,
                            fix="use fewer points, a cutoff radius or the delta kernel")
    except MetricflowError as err:
        st.error(str(err))
        return
    if not shown:  # running, failed or nothing launched yet: the earlier runs still show
        show_runs(runs, "")


main()
keep_address()
