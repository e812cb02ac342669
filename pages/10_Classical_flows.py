"""Classical flows: Kähler–Ricci, Calabi and the two-derivative flow (appendix B) in a space of potentials."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import bounded_input, count_input, enter_page, job_section, keep_address, linked, scheduler_sidebar
from metricflow.errors import MetricflowError
from metricflow.figures import classical_figures, classical_label, figures_html
from metricflow.flows.classical import FLOW_LABELS, FLOWS, MAX_K, ClassicalFlowConfig, default_dt
from metricflow.flows.classical_spaces import SPACES, SYMMETRIES
from metricflow.geometry.manifolds import MANIFOLDS, manifold

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own


def classical_controls() -> ClassicalFlowConfig:
    """The widgets, as a ClassicalFlowConfig (raises MetricflowError on bad input)."""
    c = st.columns(4)
    name = c[0].selectbox("Manifold", list(MANIFOLDS), key=linked("classical_manifold", "quintic", MANIFOLDS))
    flow = c[1].selectbox("Flow", list(FLOWS), format_func=FLOW_LABELS.get, key=linked("classical_flow", "ricci", FLOWS))
    space = c[2].selectbox("Space", list(SPACES), key=linked("classical_space", "algebraic", SPACES),
                           help="algebraic: Donaldson's metrics (1/k) log s†Hs; basis: a fixed basis s†Cs / |z|^2k")
    symmetry = c[3].selectbox("Matrices", list(SYMMETRIES), key=linked("classical_symmetry", "invariant", SYMMETRIES),
                              help="invariant: fixed by the Dwork symmetries (needs k < d); full: every Hermitian matrix")
    c = st.columns(5)
    k = count_input(c[0], "Degree k", 1, MAX_K, key=linked("classical_k", 2))
    n_points = count_input(c[1], "Points", 10, 10_000_000, step=1000, key=linked("classical_points", 10_000))
    n_test = count_input(c[2], "Test points", 10, 10_000_000, step=1000, key=linked("classical_test", 10_000))
    steps = count_input(c[3], "Steps", 0, 100_000, key=linked("classical_steps", 40))
    seed = count_input(c[4], "Seed", 0, 2**31 - 1, key=linked("classical_seed", 0))
    m = manifold(name)
    dt = bounded_input(st, f"Step Δt (0 = default, {default_dt(flow, int(k), m.degree):.3g} here)", 0.0, 10.0,
                       format="%g", key=linked("classical_dt", 0.0))
    return ClassicalFlowConfig(m, space=space, k=int(k), flow=flow, dt=float(dt) or None, n_steps=int(steps),
                               n_points=int(n_points), n_test=int(n_test), seed=int(seed), symmetry=symmetry)


def show_result(result) -> None:
    """Metrics, figures and downloads of a ClassicalFlowResult."""
    r, last = result, result.steps_done
    st.caption(classical_label(r))
    c = st.columns(3)
    c[0].metric("σ at the end (reference κ)", f"{r.sigma[last]:.4f} ± {r.sigma_se[last]:.4f}",
                help=f"g_FS: {r.sigma[0]:.4f} ± {r.sigma_se[0]:.4f}")
    c[1].metric("σ self-normalised", f"{r.sigma_self[last]:.4f} ± {r.sigma_self_se[last]:.4f}")
    c[2].metric("steps · time", f"{last} · {r.total_seconds:.1f} s")
    if r.stopped_reason:
        st.warning(r.stopped_reason)
    figs = classical_figures(r)
    left, right = st.columns(2)
    left.plotly_chart(figs["sigma"], key="fig_classical_sigma")
    right.plotly_chart(figs["functional"], key="fig_classical_functional")
    left, right = st.columns(2)
    left.plotly_chart(figs["kernel_spectrum"], key="fig_classical_kernel_spectrum")
    right.plotly_chart(figs["kernel_movement"], key="fig_classical_kernel_movement")
    stem = f"classical_{r.config.flow}_{r.config.space}_k{r.config.k}_seed{r.config.seed}"
    d = st.columns(2)
    d[0].download_button("Summary (JSON)", json.dumps(r.summary(), indent=2), f"{stem}.json", "application/json")
    d[1].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html")


def main() -> None:
    st.title("Classical flows")
    st.markdown(
        "The flows of appendix B as flows of the Kähler potential, $g = g_{FS} + \\frac{1}{\\pi}\\partial\\bar\\partial\\varphi$, "
        "projected on a space of potentials: Kähler–Ricci $\\dot\\varphi = \\ln\\eta$ (B.4), Calabi "
        "$\\dot\\varphi = R$ (B.8) and the two-derivative flow $\\dot\\varphi = -\\eta^{-1/2}$ (B.20). Each is the "
        "gradient flow of $E = \\int F(\\eta)\\,d\\mu$ in its own metric, so $E$ falls at every step "
        "(docs/FLOWS.md). σ is measured on fresh test points after every step."
    )
    try:
        config = classical_controls()
        job_section("classical", config, show_result, hint="Choose a flow, a space and a degree, then press Run.")
    except MetricflowError as err:
        st.error(str(err))


main()
keep_address()
