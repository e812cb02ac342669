"""Theory lab: the cos-net NTK at finite and infinite width, locality, and Ricci flow (section 2.3-2.4)."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from dashboard import bounded_input, count_input, enter_page, job_section, keep_address, linked, scheduler_sidebar
from metricflow.errors import MetricflowError
from metricflow.parse import float_list
from metricflow.figures import figures_html, theory_figures
from metricflow.studies.theory import TheoryConfig

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own

LARGEST = [100, 1_000, 10_000, 100_000]

RICCI = r"""
**How Ricci flow arises as a local NN metric flow (eq. 2.38–2.42).**
Many classical metric flows are *local*: $\frac{dg_{ij}(x)}{dt} = -u_{ij}(x)$ (2.38), where the
update at $x$ depends only on a symmetric tensor $u_{ij}$ at $x$; Ricci flow is
$\frac{dg_{ij}}{dt} = -2R_{ij}$ (2.39). An NN metric flow is instead an integral over the manifold,
$\frac{dg_{ij}(x)}{dt} = -\int dx'\, \Theta(x,x')\, \frac{\delta \ell(x')}{\delta g_{ij}(x')}$, so it
is local only when the NTK is a delta function, $\Theta(x,x') \to \bar\Omega(x)\,\delta(x-x')$ (2.24, 2.29).

The cos-net above gives exactly that: frozen first layer, trained last layer, its infinite-width NTK
is a Gaussian (2.35), normalised to unit mass by $A$ (2.36), of width $\sigma = \sqrt d/\sigma_w$ (2.37).
Sending $\sigma_w \to \infty$ sends $\sigma \to 0$ and the kernel to $\delta_{\mathbb R^d}$, as the
profiles and the measured widths and masses above show. Rescaling the network by $\tilde g(x)^{-1/4}$
turns this into the delta function of the manifold's volume form (2.28), and the flow becomes local:
$\frac{dg_{ij}(x)}{dt} = -\bar\Omega(x)\, \frac{\delta \ell}{\delta g_{ij}(x)}$ (2.31).

Ricci flow itself is not a gradient flow, but Perelman showed it is one up to a time-dependent
diffeomorphism: $\frac{dg_{ij}}{dt} = -2\,[R_{ij} + \nabla_i\nabla_j\phi]$ (2.40) is the gradient flow of
$\mathcal F[\phi, g] = \int_X (R + |\nabla\phi|^2)\, e^{-\phi}\, dV$ (2.41), with the dilaton $\phi$.
Choosing the loss $\ell(x) = -\mathcal F[\phi, g]/\bar\Omega(x)$ (2.42) cancels the factor $\bar\Omega(x)$
of the local flow, so the NN metric flow of this network *is* Perelman's Ricci flow in the limit
$\sigma_w \to \infty$. At finite $\sigma_w$ the same loss gives a non-local generalisation of Ricci
flow, whose non-locality $\sigma = \sqrt d/\sigma_w$ is tuned by the architecture; and the width study
shows how far a finite network's NTK (2.33) is from the infinite-width one, about $1/\sqrt N$.
"""


def parse_list(text: str) -> tuple[float, ...]:
    """'1, 3, 10' -> (1.0, 3.0, 10.0); raises MetricflowError otherwise."""
    return float_list(text, "σ_w values", example="1, 10, 100", sep=",;", empty="give at least one σ_w value, such as 1, 10, 100")


def theory_controls() -> TheoryConfig:
    """The theory lab's widgets, as a TheoryConfig (raises MetricflowError on bad input)."""
    c = st.columns(6)
    d = count_input(c[0], "Input dimension d", 1, 100, key=linked("theory_d", 10),
                    help="10: real and imaginary parts of z in P^4")
    sigma_w = bounded_input(c[1], "σ_w (width study)", 0.01, 1e4, format="%g", key=linked("theory_sigma_w", 10.0))
    largest = c[2].selectbox("Largest width N", LARGEST, key=linked("theory_largest", 10_000, LARGEST))
    trials = count_input(c[3], "Draws per width", 1, 100, key=linked("theory_trials", 4))
    sws = c[4].text_input("σ_w values (locality)", key=linked("theory_locality", "1, 3, 10, 30, 100"))
    seed = count_input(c[5], "Seed", 0, 2**31 - 1, key=linked("theory_seed", 0))
    widths = tuple(int(round(w)) for w in 10 ** np.arange(1.0, np.log10(largest) + 0.01, 0.5))
    return TheoryConfig(d=int(d), sigma_w=float(sigma_w), widths=widths, trials=int(trials),
                        locality_sigma_w=parse_list(sws), seed=int(seed))


def span(values) -> str:
    """'1.0000' if all values agree to 4 decimals, else 'min–max'."""
    lo, hi = f"{np.min(values):.4f}", f"{np.max(values):.4f}"
    return lo if lo == hi else f"{lo}–{hi}"


def show_result(result) -> None:
    """Metrics, the four figures and downloads of a TheoryResult."""
    m = st.columns(3)  # three to a row: a min–max span fits the column
    m[0].metric("error slope (theory −0.5)", f"{result.slope:.3f}")
    m[1].metric(f"error at N = {int(result.widths[-1]):,}", f"{result.error[-1]:.3g}")
    m[2].metric("compute time", f"{result.seconds:.2f} s")
    m = st.columns(3)
    m[0].metric("width / (√d/σ_w)", span(result.width_measured / result.width_eq237))
    m[1].metric("mass ∫Θ dx", span(result.mass))
    figs = theory_figures(result)
    st.subheader("(a) Finite width against infinite width")
    left, right = st.columns(2)
    left.plotly_chart(figs["kernel_curves"], key="fig_kernel_curves")
    right.plotly_chart(figs["width_error"], key="fig_width_error")
    st.subheader("(b) Locality as σ_w → ∞")
    left, right = st.columns(2)
    left.plotly_chart(figs["locality_profiles"], key="fig_locality_profiles")
    right.plotly_chart(figs["locality_width"], key="fig_locality_width")
    c = result.config
    stem = f"theory_d{c.d}_sw{c.sigma_w:g}_seed{c.seed}"
    d = st.columns(4)
    d[0].download_button("Data (JSON)", json.dumps(result.to_dict()), f"{stem}.json", "application/json")
    d[1].download_button("Width errors (CSV)", result.width_csv(), f"{stem}_width.csv", "text/csv")
    d[2].download_button("Locality (CSV)", result.locality_csv(), f"{stem}_locality.csv", "text/csv")
    d[3].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html")


def main() -> None:
    st.title("Theory lab")
    st.markdown(
        "The cosine network of eq. (2.32), $\\phi(x) = \\frac{A}{\\sqrt N}\\sum_k a_k \\cos(w_k\\cdot x + b_k)$ "
        "with $w \\sim \\mathcal N(0, \\sigma_w^2/d)$, $b \\sim \\mathcal U(-\\pi, \\pi)$ frozen and only $a$ trained. "
        "Its NTK at width $N$ (2.33) tends to a normalised Gaussian (2.35–2.36) of width $\\sqrt d/\\sigma_w$ (2.37). "
        "Inputs lie on a line $x = t\\,u$ through the origin of $\\mathbb R^d$; every number below comes from "
        "`metricflow.kernels`."
    )
    try:
        config = theory_controls()
        job_section("theory", config, show_result, hint="Choose the widths and σ_w values, then press Run.")
    except MetricflowError as err:
        st.error(str(err))
    st.divider()
    st.markdown(RICCI)


main()
keep_address()
