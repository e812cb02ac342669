"""Points: sample points on a Dwork hypersurface and measure the FS metric there (eq. B.11)."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import count_input, enter_page, job_section, keep_address, linked, scheduler_sidebar
from metricflow.errors import MetricflowError
from metricflow.parse import complex_number
from metricflow.figures import figures_html, points_figures
from metricflow.geometry.manifolds import MANIFOLDS, manifold
from metricflow.geometry.points import SampleConfig

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own


def parse_psi(text: str) -> complex:
    """'0.5', '1+0.2j' or '1+0.2i' -> complex; raises MetricflowError otherwise."""
    return complex_number(text if text.strip() else "0")


def points_controls() -> SampleConfig:
    """The sampling widgets, as a SampleConfig (raises MetricflowError on bad input)."""
    c1, c2, c3, c4 = st.columns(4)
    name = c1.selectbox("Manifold", list(MANIFOLDS), key=linked("points_manifold", "quintic", MANIFOLDS))
    psi = c2.text_input("psi", key=linked("points_psi", "0"), help="complex structure parameter, e.g. 0, 0.5 or 1+0.2j")
    n_points = count_input(c3, "Points N", min_value=10, max_value=10_000_000, step=1000, key=linked("points_n", 10_000))
    seed = count_input(c4, "Seed", min_value=0, max_value=2**31 - 1, step=1, key=linked("points_seed", 0))
    return SampleConfig(manifold(name, parse_psi(psi)), int(n_points), int(seed))


def show_result(result) -> None:
    """Metrics, figures and downloads of a SampleResult."""
    s = result.sigma
    c = st.columns(3)  # three to a row: a value with its ± fits the column
    c[0].metric("σ of g_FS (reference κ)", f"{s.sigma:.4f} ± {s.sigma_se:.4f}")
    c[1].metric("σ self-normalised", f"{s.sigma_self:.4f} ± {s.sigma_self_se:.4f}")
    source = "exact" if result.kappa_exact is not None else f"± {s.kappa_se:.1e}, 10⁶-point estimate"
    c[2].metric("reference κ", f"{s.kappa:.6f}", help=source)
    c = st.columns([1, 2])  # 10,000,000 points and their time need two thirds
    c[0].metric("κ from these points", f"{s.kappa_self:.5f} ± {s.kappa_self_se:.5f}")
    c[1].metric("points · time", f"{result.n_points:,} · {result.seconds:.2f} s")
    figs = points_figures(result)
    left, right = st.columns(2)
    left.plotly_chart(figs["eta"], key="fig_eta")
    right.plotly_chart(figs["weights"], key="fig_weights")
    left.plotly_chart(figs["charts"], key="fig_charts")
    right.plotly_chart(figs["scatter"], key="fig_scatter")
    stem = f"points_{result.config.manifold.name}_N{result.n_points}_seed{result.config.seed}"
    d = st.columns(3)
    d[0].download_button("Summary (JSON)", json.dumps(result.summary(), indent=2), f"{stem}.json", "application/json")
    d[1].download_button("Weights and η (CSV)", result.points_csv, f"{stem}.csv", "text/csv")
    d[2].download_button(
        "Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html"
    )


def main() -> None:
    st.title("Points")
    st.markdown(
        "Sample points on the hypersurface by intersecting random lines (section 3.1), and "
        "measure how far the Fubini–Study metric is from Ricci-flat: "
        "$\\sigma = \\int_X |1-\\eta|$ with $\\eta = \\det g_{FS} / (\\kappa |\\Omega|^2)$ (eq. B.11)."
    )
    try:
        config = points_controls()
        job_section("points", config, show_result, hint="Choose a manifold and a number of points, then press Run.")
    except MetricflowError as err:
        st.error(str(err))


main()
keep_address()
