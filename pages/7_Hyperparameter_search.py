"""Hyperparameter search: Bayesian optimisation of a kernel flow's hyperparameters (section 3.2)."""

from __future__ import annotations

import json

import streamlit as st

from dashboard import bounded_input, count_input, enter_page, job_section, keep_address, linked, scheduler_sidebar
from metricflow.errors import MetricflowError
from metricflow.figures import figure_png, figures_html, tuning_figures
from metricflow.kernels import KERNELS, START_KERNEL
from metricflow.flows.flow import DEFAULT_LOSS, UPDATES
from metricflow.flows.losses import LOSSES
from metricflow.studies.tuning import TuneConfig, evaluations_csv, search_space, table1_comparison

enter_page()  # a deep link on a fresh server: hands over to app.py's navigation
scheduler_sidebar()  # the sidebar of every page, also when this file runs on its own


# Labels of the searched fields every kernel shares; a kernel's own options are labelled by its spec.
_LABELS = {"n_train": "Train points", "lr": "Learning rate Δt"}


def tune_controls() -> TuneConfig:
    """The search widgets, as a TuneConfig (raises MetricflowError on bad input).

    Bound widgets are keyed by kernel, so another kernel shows its own default ranges
    (``search_space``, from the kernel registry); equal low and high fix a parameter.
    """
    c = st.columns(4)
    kernel = c[0].selectbox("Kernel", list(KERNELS), key=linked("tune_kernel", START_KERNEL, KERNELS))
    init = count_input(c[1], "Random settings first", 1, 1000, key=linked("tune_init", 5))
    iterations = count_input(c[2], "Optimiser iterations", 0, 1000, key=linked("tune_iterations", 10))
    steps = count_input(c[3], "Flow steps per evaluation", 1, 10_000, key=linked("tune_steps", 20))
    c = st.columns(4)
    n_test = count_input(c[0], "Test points", 10, 1_000_000, step=100, key=linked("tune_n_test", 1000))
    spread = count_input(c[1], "Fresh point sets for the best", 0, 100, key=linked("tune_spread", 3),
                         help="rerun the best setting on this many new point sets: mean ± std of the objective")
    seed = count_input(c[2], "Seed", 0, 2**31 - 1, key=linked("tune_seed", 0))
    c = st.columns(4)
    update = c[0].selectbox("Update", UPDATES, key=linked("tune_update", UPDATES[0], UPDATES),
                            help="the flows' update rule: covariant (default, the kernel in each metric's frame) or "
                            "euclidean (the literal coordinate update of eq. 3.5)")
    loss = c[1].selectbox("Loss", list(LOSSES), key=linked(f"tune_loss_{update}", DEFAULT_LOSS[update], LOSSES))
    c = st.columns(4)
    diverged = c[0].selectbox("A diverged flow scores", ["last", "floor"],
                              key=linked("tune_diverged", "last", ["last", "floor"]),
                              format_func=lambda v: {"last": "its gain at the last good step", "floor": "the floor (gain 0.01)"}[v])
    weighted = c[1].checkbox("Weighted loss", key=linked("tune_weighted", True))
    bounds = []
    space = search_space(kernel)
    linear = [KERNELS[kernel].labels.get(n, n) for n, rule in space.items() if rule.scale == "linear"]
    st.markdown("**Search ranges** (log scale" + (f" except {', '.join(linear)}" if linear else "")
                + "; equal ends fix a parameter)")
    names = [n for n, rule in space.items() if rule.scale != "bool"]
    cols = st.columns(len(names) + ("normalise" in space))
    for col, name in zip(cols, names):
        label, rule = _LABELS.get(name) or KERNELS[kernel].labels.get(name, name), space[name]
        low, high = rule.low, rule.high
        key = f"tune_{name}_{kernel}"
        if rule.scale == "int":
            lo = count_input(col, f"{label} from", 1, 1_000_000, step=50, key=linked(f"{key}_low", int(low)))
            hi = count_input(col, f"{label} to", 1, 1_000_000, step=50, key=linked(f"{key}_high", int(high)))
        else:
            lo = bounded_input(col, f"{label} from", 0.0, 1e6, format="%g", key=linked(f"{key}_low", float(low)))
            hi = bounded_input(col, f"{label} to", 0.0, 1e6, format="%g", key=linked(f"{key}_high", float(high)))
        bounds.append((name, lo, hi))
    if "normalise" in space:
        choice = cols[-1].radio("Normalise updates", ["search", "on", "off"],
                                key=linked(f"tune_normalise_{kernel}", "search", ["search", "on", "off"]),
                                help="covariant: the kernel normalised against the CY measure; euclidean: divide each "
                                "update by its kernel row sum (section 3.2.2)")
        bounds.append(("normalise", *{"search": (0, 1), "on": (1, 1), "off": (0, 0)}[choice]))
    return TuneConfig(
        kernel=kernel, iterations=int(iterations), init_points=int(init), steps=int(steps), seed=int(seed),
        bounds=tuple(bounds), n_test=int(n_test), loss=loss, weighted=weighted, diverged=diverged,
        spread_seeds=int(spread), update=update,
    )


def show_result(result) -> None:
    """Metrics, figures, the table of evaluations, the comparison with table 1 and downloads."""
    m = st.columns(3)  # three to a row: a mean with its ± fits the column
    m[0].metric("best test gain σ₀/σ", f"{result.best_gain:.4g}", help=f"evaluation {result.best_index}; a maximum of noisy scores, so biased up")
    if result.spread:
        std = f" ± {result.spread_std:.3f}" if len(result.spread) > 1 else ""
        m[1].metric("best setting, fresh points (log10 gain)", f"{result.spread_mean:.3f}{std}")
    m[2].metric("evaluations", f"{len(result.evaluations)}")
    m = st.columns(3)
    m[0].metric("flows reused from the store", f"{result.reused}")
    m[1].metric("search time", f"{result.seconds:.1f} s")
    figs = tuning_figures(result)
    st.plotly_chart(figs["convergence"], key="fig_tune_convergence")
    st.plotly_chart(figs["params"], key="fig_tune_params")
    st.subheader("Best setting against table 1")
    st.dataframe([{k: (str(v) if v is not None else "") for k, v in row.items()} for row in table1_comparison(result)],
                 hide_index=True)
    st.subheader("Evaluations")
    fixed = result.config.fixed()
    st.dataframe([
        {"#": e.index, "phase": "random" if e.index < result.config.init_points else "optimiser",
         **{k: v for k, v in {**fixed, **e.params}.items()}, "log10 gain": e.objective, "test gain": e.test_gain,
         "train gain": e.train_gain, "steps": e.steps_done, "floored": e.floored, "reused": e.reused,
         "stopped": e.stopped_reason or ""}
        for e in result.evaluations
    ], hide_index=True)
    c = result.config
    stem = f"tune_{c.kernel}_S{c.steps}_E{c.evaluations}_seed{c.seed}"
    d = st.columns(4)
    d[0].download_button("Search (JSON)", json.dumps(result.to_dict(), indent=1), f"{stem}.json", "application/json")
    d[1].download_button("Evaluations (CSV)", evaluations_csv(result), f"{stem}.csv", "text/csv")
    d[2].download_button("Figures (HTML)", lambda: figures_html(figs, title=stem), f"{stem}.html", "text/html")
    d[3].download_button("Convergence (PNG)", lambda: figure_png(figs["convergence"]), f"{stem}_convergence.png", "image/png")


def main() -> None:
    st.title("Hyperparameter search")
    st.markdown(
        "Tune a kernel flow (eq. 3.5) by Bayesian optimisation, as in section 3.2: the objective is "
        "log10 of the test gain σ₀/σ after S steps, and **every evaluation draws a new point set** "
        "(otherwise the optimiser tunes to one set). Each evaluation is a cached flow job, so a cancelled "
        "search resumes where it stopped. The best setting is rerun on fresh point sets."
    )
    try:
        config = tune_controls()
        job_section(
            "tune", config, show_result,
            hint="Choose a kernel, the ranges and the number of evaluations, then press Run.",
            cost_text=f" for {config.evaluations + config.spread_seeds} flows",
        )
    except MetricflowError as err:
        st.error(str(err))


main()
keep_address()
