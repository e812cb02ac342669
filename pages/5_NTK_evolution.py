"""NTK evolution: train finite metric networks and watch the metric-NTK move (section 3.3, fig. 4);
beside them, the kernel of a classical flow of appendix B (fixed for a fixed basis, moving with H
in Donaldson's algebraic family)."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import bounded_input, count_input, enter_page, job_section, keep_address, linked, scheduler_sidebar
from metricflow.errors import MetricflowError
from metricflow.figures.classical import classical_kernel_movement_figure, classical_kernel_spectrum_figure
from metricflow.figures import (
    figures_html,
    ntk_spectrum_figure,
    ntk_wasserstein_figure,
    trained_kernel_figure,
    training_sigma_figure,
    width_sweep_figure,
)
from metricflow.flows.classical import FLOW_LABELS, FLOWS, KERNEL_PROBE, ClassicalFlowConfig
from metricflow.flows.classical_spaces import SPACES
from metricflow.studies.feature_learning import TrainedKernelConfig, WidthSweepConfig
from metricflow.networks.models import ACTIVATIONS, MODELS, TrainConfig
from metricflow.networks.saved import model_bytes

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own


def train_controls() -> TrainConfig:
    """The training widgets, as a TrainConfig (raises MetricflowError on bad input)."""
    c = st.columns(5)
    model = c[0].selectbox("Model", MODELS, key=linked("ntk_model", MODELS[0], MODELS),
                           help="metric: g_FS ∘ (1 + NN); phi: g_FS + ∂∂̄φ (Kähler)")
    n_points = count_input(c[1], "Points", min_value=100, max_value=1_000_000, step=1000, key=linked("ntk_points", 20_000))
    epochs = count_input(c[2], "Epochs", min_value=1, max_value=500, step=1, key=linked("ntk_epochs", 20))
    width = count_input(c[3], "Width", min_value=1, max_value=4096, step=8, key=linked("ntk_width", 64))
    depth = count_input(c[4], "Depth", min_value=1, max_value=10, step=1, key=linked("ntk_depth", 3))
    c = st.columns(5)
    default_act = "relu" if model == "metric" else "gelu"  # keyed by model: each model has its own default
    activation = c[0].selectbox("Activation", ACTIVATIONS,
                                key=linked(f"ntk_activation_{model}", default_act, ACTIVATIONS))
    probe = count_input(c[1], "NTK probe points", min_value=0, max_value=500, step=10, key=linked("ntk_probe", 30))
    every = count_input(c[2], "NTK every (epochs)", min_value=0, max_value=100, step=1, key=linked("ntk_every", 5))
    lr = bounded_input(c[3], "Learning rate", min_value=1e-5, max_value=1.0, format="%.4f", key=linked("ntk_lr", 1e-2))
    seed = count_input(c[4], "Seed", min_value=0, max_value=2**31 - 1, step=1, key=linked("ntk_seed", 0))
    return TrainConfig(
        model=model, n_points=int(n_points), epochs=int(epochs), width=int(width), depth=int(depth),
        activation=activation, lr=float(lr), ntk_probe=int(probe), ntk_every=int(every), seed=int(seed),
    )


def sweep_controls() -> WidthSweepConfig:
    c = st.columns(4)
    widths = c[0].text_input("Widths", key=linked("ntk_sweep_widths", "32, 128, 512"))
    n_points = count_input(c[1], "Points ", min_value=100, max_value=100_000, step=1000,
                           key=linked("ntk_sweep_points", 10_000))
    epochs = count_input(c[2], "Epochs ", min_value=1, max_value=50, key=linked("ntk_sweep_epochs", 5))
    lr = bounded_input(c[3], "GD learning rate", min_value=1e-4, max_value=100.0, key=linked("ntk_sweep_lr", 1.0))
    try:
        parsed = tuple(int(w) for w in widths.replace(",", " ").split())
    except ValueError:
        raise MetricflowError(f"widths must be integers separated by commas, got {widths!r}") from None
    return WidthSweepConfig(widths=parsed, n_points=int(n_points), epochs=int(epochs), lr=float(lr))


def kernel_controls(train: TrainConfig) -> TrainedKernelConfig:
    c = st.columns(3)
    n = count_input(c[0], "Flow train points", min_value=5, max_value=1000, step=50, key=linked("ntk_kernel_train", 300))
    m = count_input(c[1], "Flow test points", min_value=5, max_value=1000, step=50, key=linked("ntk_kernel_test", 300))
    steps = count_input(c[2], "Flow steps", min_value=1, max_value=500, key=linked("ntk_kernel_steps", 50))
    return TrainedKernelConfig(train=train, n_train=int(n), n_test=int(m), steps=int(steps))


# The classical flow's sizes here: small, so that its kernel is drawn within seconds.
CLASSICAL_SIZES = dict(n_points=2000, n_test=2000, n_steps=10, seed=0)


def classical_controls() -> ClassicalFlowConfig:
    """The classical flow whose kernel is drawn: flow, space and degree (invariant matrices,
    the Fermat quintic, CLASSICAL_SIZES)."""
    c = st.columns(3)
    flow = c[0].selectbox("Classical flow", list(FLOWS), format_func=FLOW_LABELS.get,
                          key=linked("ntk_classical_flow", "ricci", FLOWS))
    space = c[1].selectbox("Space", list(SPACES), key=linked("ntk_classical_space", "algebraic", SPACES),
                           help="algebraic: (1/k) log s†Hs, the kernel moves with H; basis: s†Cs / |z|^2k, a fixed basis")
    k = count_input(c[2], "Degree k", min_value=1, max_value=4, key=linked("ntk_classical_k", 3))
    return ClassicalFlowConfig(space=space, k=int(k), flow=flow, **CLASSICAL_SIZES)


def show_classical_kernel(result) -> None:
    r = result
    last = r.steps_done
    c = st.columns(3)
    c[0].metric("σ, step 0 → last", f"{r.sigma[0]:.4f} → {r.sigma[last]:.4f}",
                help=f"± {r.sigma_se[last]:.4f} on {r.n_test:,} fresh test points, reference κ")
    c[1].metric("W1 of the spectrum to step 0", f"{r.kernel_wasserstein[last]:.3g}",
                help=f"log10 eigenvalues: {r.kernel_wasserstein_log[last]:.3g}")
    c[2].metric("sin ∠ of its range to step 0", f"{r.kernel_range_sine[last]:.2g}",
                help="0 for the fixed basis: f never moves, K changes only through A (the volume form)")
    if r.stopped_reason:
        st.warning(r.stopped_reason)
    left, right = st.columns(2)
    left.plotly_chart(classical_kernel_spectrum_figure(r), key="ntk_fig_classical_spectrum")
    right.plotly_chart(classical_kernel_movement_figure(r), key="ntk_fig_classical_movement")


def show_training(result) -> None:
    f = result.final
    c = st.columns(3)  # three to a row: a σ with its ± fits the column
    c[0].metric("validation σ before", f"{result.val_sigma[0]:.4f}")
    c[1].metric("validation σ after", f"{f.sigma:.5f} ± {f.sigma_se:.5f}", help="reference κ (exact at the Fermat point)")
    c[2].metric("self-normalised σ after", f"{f.sigma_self:.5f} ± {f.sigma_self_se:.5f}", help="κ from the model's own metric (cymetric's convention)")
    c = st.columns(3)
    c[0].metric("gain", f"{result.gain:.3g}")
    c[1].metric("time", f"{result.seconds:.0f} s")
    kappa = f"{result.kappa.value:.7f} (exact)" if result.kappa.exact else f"{result.kappa.value:.7f} ± {result.kappa.se:.1e}"
    st.caption(
        f"σ on {result.config.n_val:,} validation points against the reference κ = {kappa}; "
        f"g_FS: {result.sigma_fs:.4f} ± {result.sigma_fs_se:.4f}. Training {result.train_seconds[-1]:.0f} s "
        f"at load {result.load_average[0]:.1f} → {result.load_average[1]:.1f}."
    )
    if result.ricci_final is not None:
        st.caption(
            f"Weighted mean |R| (eq. B.3): g_FS {result.ricci_fs:.3g}, initial {result.ricci_initial:.3g}, "
            f"trained {result.ricci_final:.3g} ± {result.ricci_final_se:.2g}."
        )
    figs = {"sigma": training_sigma_figure(result), "sigma_time": training_sigma_figure(result, "time")}
    left, right = st.columns(2)
    left.plotly_chart(figs["sigma"], key="ntk_fig_sigma")
    right.plotly_chart(figs["sigma_time"], key="ntk_fig_sigma_time")
    epochs = [int(e) for e in result.ntk_epochs]
    if epochs:
        a, b = st.select_slider("Spectra at epochs", options=epochs, value=(epochs[0], epochs[-1]), key="ntk_epochs_pick")
        figs["spectrum"] = ntk_spectrum_figure(result, sorted({a, b}))
        figs["wasserstein"] = ntk_wasserstein_figure(result)
        left, right = st.columns(2)
        left.plotly_chart(figs["spectrum"], key="ntk_fig_spectrum")
        right.plotly_chart(figs["wasserstein"], key="ntk_fig_wasserstein")
    stem = f"train_{result.config.model}_N{result.config.n_points}_E{result.config.epochs}"
    d = st.columns(3)
    d[0].download_button("Summary (JSON)", json.dumps(result.summary(), indent=2), f"{stem}.json", "application/json")
    d[1].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html")
    d[2].download_button("Trained model (.npz)", model_bytes(result), f"{stem}.npz", "application/octet-stream",
                         help="load with metricflow.load_model(path), or: python -m metricflow evaluate --model path")


def show_sweep(result) -> None:
    st.plotly_chart(width_sweep_figure(result), key="ntk_fig_sweep")
    st.dataframe({k: v for k, v in result.summary().items()})


def show_kernel(result) -> None:
    c = st.columns(3)
    c[0].metric("test gain, initial Θ", f"{result.initial_test_gain:.3g}")
    c[1].metric("test gain, trained Θ", f"{result.trained_test_gain:.3g}")
    c[2].metric("network's own gain", f"{result.network_gain:.3g}")
    st.plotly_chart(trained_kernel_figure(result), key="ntk_fig_kernel")


def main() -> None:
    st.title("NTK evolution")
    st.markdown(
        "A finite network learns the metric with the σ loss (eq. B.11); its metric-NTK "
        "$\\Theta_{ijkl}(x,x')$ (eq. 2.7) is recorded on a fixed probe set as it trains (fig. 4)."
    )
    st.header("Training")
    try:
        train = train_controls()
        job_section("ntk_train", train, show_training)
    except MetricflowError as err:
        st.error(str(err))
        return
    st.header("Width sweep (NTK parameterisation, gradient descent)")
    try:
        job_section("ntk_sweep", sweep_controls(), show_sweep)
    except MetricflowError as err:
        st.error(str(err))
    st.header("Trained kernel in the flow (3.5)")
    st.caption("Uses the network configured under Training.")
    try:
        job_section("ntk_kernel", kernel_controls(train), show_kernel)
    except MetricflowError as err:
        st.error(str(err))
    st.header("The kernel of a classical flow (appendix B)")
    st.caption(
        f"A classical flow projected on a space of potentials is a kernel flow (2.8) with "
        f"K(x, x′) = f(x) A⁺ f(x′), f = ∂φ/∂c and A the Gram matrix of the flow's metric (docs/FLOWS.md). "
        f"Its eigenvalues on the first {KERNEL_PROBE} flow points at the first and last step, beside the "
        "metric-NTK's: in a fixed basis only the volume form in A moves it; in the algebraic family f moves with H."
    )
    try:
        job_section("ntk_classical", classical_controls(), show_classical_kernel)
    except MetricflowError as err:
        st.error(str(err))


main()
keep_address()
