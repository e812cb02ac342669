"""Donaldson: balanced metrics at degree k, the classical discrete flow, and sigma_k against k."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import bounded_input, count_input, enter_page, job_section, keep_address, linked, scheduler_sidebar
from metricflow.flows.donaldson import MAX_K, SWEEP_PSIS, DonaldsonConfig, hilbert_dimension
from metricflow.studies.moduli import DonaldsonSweepConfig
from metricflow.errors import MetricflowError
from metricflow.parse import complex_number
from metricflow.figures import figures_html
from metricflow.figures.donaldson import donaldson_figures, donaldson_sigma_figure, donaldson_sweep_figure, psi_label
from metricflow.geometry.manifolds import Manifold

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own


def parse_psi(text: str) -> complex:
    """'0.5', '1+0.2j' or '10+3i' -> complex; raises MetricflowError otherwise."""
    return complex_number(text if text.strip() else "0", example="0.5 or 10+3i")


def parse_psis(text: str) -> tuple:
    """'0, 0.5, 10+3i' -> (0, 0.5, 10+3j); raises MetricflowError otherwise."""
    values = tuple(parse_psi(t) for t in text.split(",") if t.strip())
    if not values:
        raise MetricflowError("give at least one psi")
    return values


def donaldson_controls() -> DonaldsonConfig:
    """The widgets, as a DonaldsonConfig (raises MetricflowError on bad input)."""
    c = st.columns(6)
    psi = c[0].text_input("ψ (quintic)", key=linked("donaldson_psi", "0"),
                          help="e.g. 0 (Fermat), 0.5 or 10+3i; ψ^5 = 1 is singular")
    k_max = c[1].slider("k max", 1, MAX_K, key=linked("donaldson_k_max", 4, range(1, MAX_K + 1)),
                        help="degrees 1 … k max")
    n_points = count_input(c[2], "Points for h", min_value=100, max_value=1_000_000, step=1000,
                           key=linked("donaldson_points", 20_000))
    n_test = count_input(c[3], "Test points", min_value=100, max_value=1_000_000, step=1000,
                         key=linked("donaldson_test", 20_000))
    seed = count_input(c[4], "Seed", min_value=0, max_value=2**31 - 1, step=1, key=linked("donaldson_seed", 0))
    optimise = c[5].checkbox("σ-optimised h", key=linked("donaldson_optimise", False),
                             help="also minimise σ over h with Adam (Headrick–Nassar)")
    with st.expander("Iteration and optimiser settings"):
        o = st.columns(4)
        tol = bounded_input(o[0], "Tolerance", min_value=1e-12, max_value=1e-2, format="%.0e",
                            key=linked("donaldson_tol", 1e-6))
        max_iterations = count_input(o[1], "Max iterations", 1, 10_000, key=linked("donaldson_iterations", 200))
        opt_steps = count_input(o[2], "Adam steps", 1, 10_000, key=linked("donaldson_opt_steps", 300))
        opt_lr = bounded_input(o[3], "Adam learning rate", min_value=1e-5, max_value=1.0, format="%.0e",
                               key=linked("donaldson_opt_lr", 5e-3))
    return DonaldsonConfig(
        Manifold(5, parse_psi(psi)), int(k_max), int(n_points), int(n_test), int(seed), optimise=optimise,
        tol=float(tol), max_iterations=int(max_iterations), opt_steps=int(opt_steps), opt_lr=float(opt_lr),
    )


def show_result(result) -> None:
    """Metrics, figures, table and downloads of a DonaldsonResult."""
    r = result
    k = int(r.ks[-1])
    cells = [(f"σ of g_FS (± {r.sigma_fs_se:.4f})", f"{r.sigma_fs:.4f}"),
             (f"σ at k = {k} (± {r.sigma_se[-1]:.4f})", f"{r.sigma[-1]:.4f}")]
    if r.config.optimise:
        cells.append((f"optimised σ at k = {k} (± {r.opt_sigma_se[-1]:.4f})", f"{r.opt_sigma[-1]:.4f}"))
    cells.append(("κ (reference, exact)" if r.kappa_exact else f"κ (reference, ± {r.kappa_se:.1e})", f"{r.kappa:.6f}"))
    cells.append(("compute time", f"{r.total_seconds:.1f} s"))
    for row in range(0, len(cells), 3):  # three to a row: the label's ± and the value fit the column
        for column, (label, value) in zip(st.columns(3), cells[row:row + 3]):
            column.metric(label, value)
    if not r.converged.all():
        st.warning(f"Not converged within {r.config.max_iterations} iterations at k = "
                   f"{', '.join(str(k) for k, ok in zip(r.ks, r.converged) if not ok)}.")
    figs = donaldson_figures(r)
    figs["sigma_self"] = donaldson_sigma_figure(r, self_normalised=True)
    left, right = st.columns(2)
    left.plotly_chart(figs["sigma"], key="fig_donaldson_sigma")
    right.plotly_chart(figs["time"], key="fig_donaldson_time")
    left.plotly_chart(figs["convergence"], key="fig_donaldson_convergence")
    right.plotly_chart(figs["sigma_self"], key="fig_donaldson_sigma_self")
    st.dataframe(r.per_k(), hide_index=True)
    m = r.config.manifold
    stem = f"donaldson_psi{psi_label(m.psi)}_k{int(r.ks[-1])}_N{r.n_points}_seed{r.config.seed}"
    d = st.columns(2)
    d[0].download_button("Summary (JSON)", json.dumps(r.summary(), indent=2), f"{stem}.json", "application/json")
    d[1].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html")


def sweep_controls() -> DonaldsonSweepConfig:
    """The sweep's widgets, as a DonaldsonSweepConfig (raises MetricflowError on bad input)."""
    c = st.columns([3, 1, 1, 1, 1, 1])
    psis = c[0].text_input("ψ values", key=linked("sweep_psis", ", ".join(psi_label(p) for p in SWEEP_PSIS)))
    k = c[1].slider("k", 1, MAX_K, key=linked("sweep_k", 3, range(1, MAX_K + 1)))
    n_points = count_input(c[2], "Points per ψ", 100, 1_000_000, step=1000, key=linked("sweep_points", 10_000))
    seed = count_input(c[3], "Seed", 0, 2**31 - 1, key=linked("sweep_seed", 0))
    phi_epochs = count_input(c[4], "φ network epochs", 0, 10_000, key=linked("sweep_phi_epochs", 0),
                             help=f"also train the φ network at each ψ ({DonaldsonSweepConfig.phi_points:,} points); 0 = off")
    family = c[5].checkbox("ψ-conditioned φ network", key=linked("sweep_family", False),
                           help="also train one φ network with ψ as an input across all ψ, on the per-ψ networks' "
                                "points, for the same epochs (needs φ network epochs > 0)")
    return DonaldsonSweepConfig(psis=parse_psis(psis), k=int(k), n_points=int(n_points), n_test=int(n_points),
                                seed=int(seed), phi_epochs=int(phi_epochs), family=bool(family))


def show_sweep(result) -> None:
    st.plotly_chart(donaldson_sweep_figure(result), key="fig_donaldson_sweep")
    st.dataframe(result.summary()["per_psi"], hide_index=True)


def main() -> None:
    st.title("Donaldson's balanced metrics")
    st.markdown(
        "The classical discrete flow: a hermitian matrix $h$ on the degree-$k$ sections $s$ gives "
        "$g_k = \\frac{1}{k\\pi}\\partial\\bar\\partial \\log(s^\\dagger h s)$, and Donaldson's T-operator "
        "$T(h) = \\frac{N_k}{\\mathrm{Vol}}\\int_X \\frac{s\\, s^\\dagger}{s^\\dagger h s}\\, d\\mu_\\Omega$ is iterated, "
        "$h \\to T(h)^{-1}$, to its fixed point, the balanced metric. As $k$ grows the balanced metrics approach "
        "the Ricci-flat one, at a cost of $N_k^2$ per point and iteration "
        f"($N_k$ = {', '.join(str(hilbert_dimension(5, k)) for k in range(1, 7))} for k = 1 … 6). "
        "σ is measured on fresh points against the manifold's reference κ."
    )
    try:
        config = donaldson_controls()
        job_section("donaldson", config, show_result, hint="Choose ψ, k max and the points, then press Run.")
    except MetricflowError as err:
        st.error(str(err))
    st.header("Along the Dwork family")
    st.markdown("σ of g_FS and of the balanced metric at one k for several ψ, and optionally of the φ network "
                "after a fixed number of epochs: one cached Donaldson job (and one network job) per ψ. "
                "Optionally also one φ network with ψ as an input, trained on all the ψ together "
                "(the same points, so P times the steps of one per-ψ network).")
    try:
        sweep = sweep_controls()
        job_section("donaldson_sweep", sweep, show_sweep, hint="Choose the ψ values and k, then press Run.",
                    cost_text=f" for {len(sweep.configs())} jobs")
    except MetricflowError as err:
        st.error(str(err))


main()
keep_address()
