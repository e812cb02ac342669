"""Methods compared: Donaldson, the kernel flows and the networks on one sigma-time axis."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import count_input, job_section, scheduler_sidebar
from metricflow.errors import MetricflowError
from metricflow.figures import figures_html
from metricflow.figures.methods import methods_figures, methods_sentences, methods_table_rows
from metricflow.flows.donaldson import MAX_K
from metricflow.geometry.manifolds import Manifold
from metricflow.studies.methods import PRESETS, MethodsConfig

scheduler_sidebar()  # the sidebar of every page, also when Streamlit runs this file on its own


def parse_psi(text: str) -> complex:
    """'0.5', '1+0.2j' or '10+3i' -> complex; raises MetricflowError otherwise."""
    try:
        return complex(text.replace(" ", "").replace("i", "j") or "0")
    except ValueError:
        raise MetricflowError(f"psi must be a complex number such as 0.5 or 10+3i, got {text!r}") from None


# The per-method sizes the page offers: (MethodsConfig field, label, minimum, maximum).
SIZE_INPUTS = (
    ("k_max", "Donaldson k max", 1, MAX_K),
    ("donaldson_points", "Donaldson points", 100, 1_000_000),
    ("opt_steps", "Adam steps (σ-optimised h)", 1, 10_000),
    ("flow_train", "Flow train points", 10, 100_000),
    ("flow_steps", "Flow steps", 1, 10_000),
    ("network_points", "Metric network points", 100, 1_000_000),
    ("epochs", "Metric network epochs", 1, 10_000),
    ("phi_points", "φ network points", 100, 1_000_000),
    ("phi_epochs", "φ network epochs", 1, 10_000),
    ("trained_kernel_points", "Trained kernel points", 10, 3000),
)


def methods_controls() -> MethodsConfig:
    """The widgets, as a MethodsConfig (raises MetricflowError on bad input)."""
    c = st.columns(4)
    preset = c[0].selectbox("Preset", list(PRESETS), help="quick: a few minutes on 2 cores; full: tens of minutes")
    psi = c[1].text_input("ψ (quintic)", value="0", help="e.g. 0 (Fermat), 0.5 or 10+3i; ψ^5 = 1 is singular")
    seed = count_input(c[2], "Seed", 0, 2**31 - 1, 0)
    p = PRESETS[preset]
    n_test = count_input(c[3], "Test points", 100, 1_000_000, p["n_test"], key=f"methods_n_test_{preset}")
    sizes = {}
    with st.expander("Sizes per method"):
        for row in (SIZE_INPUTS[:5], SIZE_INPUTS[5:]):
            for column, (name, label, low, high) in zip(st.columns(5), row):
                sizes[name] = int(count_input(column, label, low, high, p[name], key=f"methods_{name}_{preset}"))
        o = st.columns(3)
        optimise = o[0].checkbox("σ-optimised h", value=True, key=f"methods_optimise_{preset}")
        phi = o[1].checkbox("φ network", value=True, key=f"methods_phi_{preset}")
        trained = o[2].checkbox("trained kernel", value=p["trained_kernel"], key=f"methods_trained_kernel_{preset}")
    changes = dict(n_test=int(n_test), optimise=optimise, phi=phi, trained_kernel=trained, **sizes)
    return MethodsConfig.preset(preset, manifold=Manifold(5, parse_psi(psi)), seed=int(seed), **changes)


def show_result(result) -> None:
    """The two sentences, both figures, the table and the downloads of a MethodsResult."""
    r = result
    for sentence in methods_sentences(r):
        st.markdown(sentence)
    cells = [(f"σ of g_FS (± {r.sigma_fs_se:.4f})", f"{r.sigma_fs:.4f}"),
             ("κ (reference, exact)" if r.kappa_exact else f"κ (reference, ± {r.kappa_se:.1e})", f"{r.kappa:.6f}"),
             ("methods", str(len(r.series))), ("job time (sum)", f"{r.seconds:.0f} s")]
    for column, (label, value) in zip(st.columns(len(cells)), cells):
        column.metric(label, value)
    figs = methods_figures(r)
    left, right = st.columns(2)
    left.plotly_chart(figs["time"], key="fig_methods_time")
    right.plotly_chart(figs["points"], key="fig_methods_points")
    st.dataframe(methods_table_rows(r), hide_index=True)
    st.caption(f"σ on the same {r.config.n_test:,} fresh test points for every method, against the manifold's one "
               "reference κ; memory is each job's estimated peak.")
    stem = f"methods_psi{r.config.manifold.psi}_seed{r.config.seed}".replace(" ", "")
    d = st.columns(2)
    d[0].download_button("Summary (JSON)", json.dumps(r.summary(), indent=2), f"{stem}.json", "application/json")
    d[1].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html")


def main() -> None:
    st.title("Methods compared")
    st.markdown(
        "Every method on one axis: the same manifold, one reference κ, and σ always on one shared set of "
        "fresh test points that none of the methods trains on: Donaldson's balanced metrics (k = 1 … k max, balanced and σ-optimised h), "
        "the fixed-kernel flows (delta, Gaussian with a cutoff, ReLU NTK) and the trained kernel, and the metric "
        "and φ networks per epoch. This is fig. 3's argument in one picture: fixed kernels saturate, networks "
        "keep learning. Each method is an ordinary cached job, run in parallel."
    )
    try:
        config = methods_controls()
        job_section("methods", config, show_result, hint="Choose a preset and press Run.",
                    cost_text=f" for {len(config.configs())} jobs, one after another")
    except MetricflowError as err:
        st.error(str(err))


main()
