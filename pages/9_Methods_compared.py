"""Methods compared: Donaldson, the kernel flows and the networks on one sigma-time axis.

The app opens here. On a session's first visit, if the quick comparison
(``MethodsConfig.preset("quick")``, whatever the widgets say) is neither stored nor running,
the page submits it by itself, through the same job store as the Run button, so that a
second visitor sees the same running job. The operator turns this off with the environment
variable ``METRICFLOW_AUTOSTART=0`` (also "false", "no", "off"; the test suite sets it).
Nothing a visitor sends other than opening the page starts it. While a comparison runs, its
finished methods are drawn from their stored piece results (and the running pieces' own partial series), marked
as partial; the stored result replaces them when it ends.
"""

from __future__ import annotations

import json
import os

import streamlit as st

from dashboard import (
    count_input, enter_page, job_section, job_store, keep_address, linked, scheduler_sidebar, submit_jobs,
)
from metricflow.errors import MetricflowError
from metricflow.figures import figures_html
from metricflow.figures.methods import methods_figures, methods_sentences, methods_table_rows, running_curve
from metricflow.flows.donaldson import MAX_K
from metricflow.geometry.manifolds import Manifold
from metricflow.jobs import ACTIVE, DONE, job_key
from metricflow.studies.methods import PRESETS, MethodsConfig, methods_so_far

AUTOSTART = "METRICFLOW_AUTOSTART"  # environment: 0 / false / no / off turns the autostart off
STARTED = "methods_autostart_done"  # session_state: this session's first visit has been handled

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own


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
    preset = c[0].selectbox("Preset", list(PRESETS), key=linked("methods_preset", next(iter(PRESETS)), PRESETS),
                            help="quick: under a minute on 2 idle cores; full: tens of minutes")
    psi = c[1].text_input("ψ (quintic)", key=linked("methods_psi", "0"),
                          help="e.g. 0 (Fermat), 0.5 or 10+3i; ψ^5 = 1 is singular")
    seed = count_input(c[2], "Seed", 0, 2**31 - 1, key=linked("methods_seed", 0))
    p = PRESETS[preset]
    n_test = count_input(c[3], "Test points", 100, 1_000_000, key=linked(f"methods_n_test_{preset}", p["n_test"]))
    sizes = {}
    with st.expander("Sizes per method"):
        for row in (SIZE_INPUTS[:5], SIZE_INPUTS[5:]):
            for column, (name, label, low, high) in zip(st.columns(5), row):
                sizes[name] = int(count_input(column, label, low, high, key=linked(f"methods_{name}_{preset}", p[name])))
        o = st.columns(3)
        optimise = o[0].checkbox("σ-optimised h", key=linked(f"methods_optimise_{preset}", True))
        phi = o[1].checkbox("φ network", key=linked(f"methods_phi_{preset}", True))
        trained = o[2].checkbox("trained kernel", key=linked(f"methods_trained_kernel_{preset}", bool(p["trained_kernel"])))
    changes = dict(n_test=int(n_test), optimise=optimise, phi=phi, trained_kernel=trained, **sizes)
    return MethodsConfig.preset(preset, manifold=Manifold(5, parse_psi(psi)), seed=int(seed), **changes)


def autostart_enabled() -> bool:
    """Whether the page may start the quick comparison by itself: $METRICFLOW_AUTOSTART, on
    unless set to 0, false, no or off (tests/conftest.py sets it to 0 for the test suite)."""
    return os.environ.get(AUTOSTART, "1").strip().lower() not in ("0", "false", "no", "off")


def autostart() -> None:
    """On this session's first visit: submit the quick comparison unless it is stored or
    running (then show it: a running one, someone else's too, becomes this session's job).

    It is the Run button's path (``submit_jobs``, the job keys in session_state); its config
    is the preset's, never the widgets' (which the address bar may set), so only opening the
    page starts it. A failed or cancelled one is not retried here: the page shows why.
    """
    if st.session_state.get(STARTED) or not autostart_enabled():
        return
    st.session_state[STARTED] = True
    config = MethodsConfig.preset("quick")
    store = job_store()
    key = job_key(config)
    status = store.status(key)
    if status is not None and status.state == DONE:
        return  # stored: job_section shows it for the default settings
    if status is not None and status.state not in ACTIVE:
        return
    try:
        key = submit_jobs(store, [config])[0]  # or joins the one running, someone else's too
    except MetricflowError as err:
        st.error(f"The quick comparison could not start by itself: {err}")
        return
    st.session_state["methods_job"], st.session_state["methods_config"] = key, config


def _metric_cells(r, provisional: bool = False) -> None:
    """The headline numbers, short enough for their column; their errors in the help."""
    best = min((s for s in r.series if s.best >= 0), key=lambda s: s.sigma[s.best], default=None)
    kappa_help = ("exact (Fermat point)" if r.kappa_exact else f"± {r.kappa_se:.1e} (Monte-Carlo estimate)")
    cells = [("σ of g_FS", f"{r.sigma_fs:.4f}", f"± {r.sigma_fs_se:.4f} (standard error) on the "
              f"{r.config.n_test:,} shared test points"),
             ("κ (reference)", f"{r.kappa:.5g}", f"the one reference κ of every method: {r.kappa:.6f}, {kappa_help}")]
    if best is not None:
        cells.append(("best σ", f"{best.sigma[best.best]:.4f}",
                      f"{best.name}, ± {best.sigma_se[best.best]:.4f}" + (" (so far)" if provisional else "")))
    cells.append(("job time (sum)", f"{r.seconds:.0f} s", f"{len(r.series)} series; the sum of the pieces' job times "
                  "(they run in parallel)"))
    for column, (label, value, help_text) in zip(st.columns(len(cells)), cells):
        column.metric(label, value, help=help_text)


def show_result(result) -> None:
    """The two sentences, both figures, the table and the downloads of a MethodsResult."""
    r = result
    for sentence in methods_sentences(r):
        st.markdown(sentence)
    _metric_cells(r)
    figs = methods_figures(r)
    left, right = st.columns(2)
    left.plotly_chart(figs["time"], key="fig_methods_time")
    right.plotly_chart(figs["points"], key="fig_methods_points")
    st.dataframe(methods_table_rows(r), hide_index=True)
    st.caption(f"σ on the same {r.config.n_test:,} fresh test points for every method, against the manifold's one "
               "reference κ; memory is each job's estimated peak.")
    stem = f"methods_psi{r.config.manifold.psi}_seed{r.config.seed}".replace(" ", "")
    d = st.columns(2)
    d[0].download_button("Summary (JSON)", json.dumps(r.summary(), indent=2), f"{stem}.json", "application/json",
                         key="methods_download_json")
    d[1].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html",
                         key="methods_download_html")


def _live_signature(store, pieces) -> tuple:
    """What the live view draws from: each piece's (key, state, partial series as JSON)."""
    signature = []
    for piece in pieces:
        key = job_key(piece)
        status = store.status(key)
        state = status.state if status is not None else ""
        partial = store.partial(key) if state in ACTIVE else None
        signature.append((key, state, json.dumps(partial, sort_keys=True) if partial else ""))
    return tuple(signature)


@st.cache_resource(max_entries=32, show_spinner=False)
def _live_drawing(_store, _config: MethodsConfig, config_key: str, signature: tuple):
    """(comparison so far or None, running curves, methods finished, figures or None) for one
    state of a running comparison: built once per state for every session that watches it."""
    results, running = [], []
    for piece, (key, state, partial) in zip(_config.configs(), signature):
        results.append(_store.result(key) if state == DONE else None)
        if state in ACTIVE:
            curve = running_curve(piece, json.loads(partial) if partial else None)
            if curve is not None:
                running.append(curve)
    so_far = methods_so_far(_config, results)
    figs = methods_figures(so_far, running) if so_far is not None else None
    return so_far, running, sum(r is not None for r in results), figs


def live_view(key: str) -> None:
    """The comparison so far while its job ``key`` runs, drawn inside the job's polling
    fragment (``job_section``'s live): the finished pieces' curves (read from the store), the
    running pieces' partial curves, provisional sentences. Never stored; the page reruns with
    the result when the job ends."""
    config = st.session_state.get("methods_config")
    if config is None or st.session_state.get("methods_job") != key:
        return
    store = job_store()
    pieces = config.configs()
    so_far, running, done, figs = _live_drawing(store, config, key, _live_signature(store, pieces))
    st.caption(f"Partial results: {done} of {len(pieces)} methods finished, still computing. The figures grow as "
               "each method ends; the final result replaces them (and only it is stored)."
               + (" Dotted curves: running methods, on the points axis only (their seconds are not known yet)."
                  if running else ""))
    if so_far is None:
        st.caption("The first curve appears when the first method ends (the delta flow, a few seconds).")
        return
    for sentence in methods_sentences(so_far, provisional=True):
        st.markdown(sentence)
    _metric_cells(so_far, provisional=True)
    left, right = st.columns(2)
    left.plotly_chart(figs["time"], key="fig_methods_live_time")
    right.plotly_chart(figs["points"], key="fig_methods_live_points")


def main() -> None:
    st.title("Methods compared")
    st.markdown(
        "Every method on one axis: the same manifold, one reference κ, and σ always on one shared set of "
        "fresh test points that none of the methods trains on: Donaldson's balanced metrics (k = 1 … k max, balanced and σ-optimised h), "
        "the fixed-kernel flows (delta, Gaussian with a cutoff, ReLU NTK) and the trained kernel, and the metric "
        "and φ networks per epoch. This is fig. 3's argument in one picture: fixed kernels saturate, networks "
        "keep learning. Each method is an ordinary cached job, run in parallel."
    )
    autostart()
    try:
        config = methods_controls()
        job_section("methods", config, show_result, hint="Choose a preset and press Run.",
                    cost_text=f" for {len(config.configs())} jobs on 2 workers", live=live_view)
    except MetricflowError as err:
        st.error(str(err))


main()
keep_address()
