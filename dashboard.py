"""What the dashboard shares: the list of pages, the sidebar, the job store handle, the job
section (estimate, Run button, progress and result), the Run button and bounded inputs.
app.py and the pages import them by name."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pandas  # noqa: F401  (whole before any session draws: plotly reads a half-imported one as broken)
import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

from metricflow.errors import MetricflowError, StoreError, available_memory_bytes
from metricflow.figures.partial import partial_figures
from metricflow.jobs import (
    ACTIVE, DONE, FAILED, QUEUED, RUNNING, FairQueue, JobStore, cache_directory, default_executor, job_key,
    scheduler_address,
)
from metricflow.jobs import estimate as job_estimate

__all__ = ["PageInfo", "HOME", "PAGES", "scheduler_sidebar", "job_store", "submit_jobs", "job_progress", "show_job",
           "show_jobs", "job_section", "bounded_input", "count_input", "run_button", "app_pages", "enter_page", "linked",
           "keep_address"]

# How often a page polls a job it waits for (``poll_seconds``): the quickest period, and the
# slowest that many watching sessions stretch it to.
POLL_SECONDS = (0.3, 1.0)  # a running job of this session alone: progress and partial results
WAIT_POLL_SECONDS = (2.0, 5.0)  # a job waiting in the queue: its place and expected start
SHARED_POLL_SECONDS = (1.0, 5.0)  # a running job that several sessions wait for (a class's shared link)
LIVE_POLL_SECONDS = (1.0, 5.0)  # a running job whose page draws a live view (``job_section``'s live)
POLLS_PER_SECOND = 10.0  # the polls of all sessions together that a busy server aims at
PERIODS = (0.3, 0.5, 1.0, 2.0, 3.0, 5.0)  # the periods a poll takes (one fragment each)
SETTLE_SECONDS = 1.2  # after Run, a job estimated at most SETTLE_BELOW s is waited for this long (``settle``)
SETTLE_BELOW = 4.0


# ---- the pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PageInfo:
    """One page of the dashboard: app.py's navigation and the home page's list both read it.

    Attributes:
      path: the page's script, relative to the repository root (where app.py is).
      title: its name in the navigation and on the home page.
      group: the navigation section it is listed under.
      url: its address under the app's root (``/Points``).
      description: one line for the home page.
    """

    path: str
    title: str
    group: str
    url: str
    description: str


HOME = PageInfo("pages/0_Home.py", "Home", "Overview", "Home",
                "What the dashboard does, the paper's flow, the cached results.")

# The navigation, in order: a new page is one line here. The app opens on the first (the page
# a teacher opens first: every method on one axis); the home page follows it.
PAGES = [
    PageInfo("pages/9_Methods_compared.py", "Methods compared", "Overview", "Methods_compared",
             "Every method on one σ axis: Donaldson, the kernel flows, the trained kernel and the networks."),
    PageInfo("pages/1_Points.py", "Points", "Geometry", "Points",
             "Sample points on the quintic, quartic or cubic at any ψ; Monte-Carlo weights, η and σ of g_FS."),
    PageInfo("pages/2_Kernel_flow.py", "Kernel flow", "Kernel flows", "Kernel_flow",
             "The flow of eq. 3.5 with a chosen kernel and loss; σ on train and test points, runs overlaid."),
    PageInfo("pages/4_Clustering.py", "Clustering", "Kernel flows", "Clustering",
             "Fig. 2: points clustered by FS distance (eq. 3.3), against the full clustering and two baselines."),
    PageInfo("pages/6_Generalisation.py", "Generalisation", "Kernel flows", "Generalisation",
             "Fig. 3: test gain against distance from the train points, distance against N (eq. 3.7)."),
    PageInfo("pages/7_Hyperparameter_search.py", "Hyperparameter search", "Kernel flows", "Hyperparameter_search",
             "Bayesian optimisation of a kernel flow, a new point set for every evaluation."),
    PageInfo("pages/3_Theory_lab.py", "Theory lab", "Networks", "Theory_lab",
             "The cos-net's finite-width NTK against its infinite-width limit; Ricci flow as a local NN flow."),
    PageInfo("pages/5_NTK_evolution.py", "NTK evolution", "Networks", "NTK_evolution",
             "Fig. 4: a finite network trained on the metric, its metric-NTK spectrum moving, the trained kernel."),
    PageInfo("pages/8_Donaldson.py", "Donaldson", "Classical", "Donaldson",
             "Balanced metrics of degree k (T-operator) and σ-optimised ones; σ_k against k and along ψ."),
    PageInfo("pages/10_Classical_flows.py", "Classical flows", "Classical", "Classical_flows",
             "Kähler–Ricci, Calabi and the two-derivative flow (appendix B) in a space of Kähler potentials; "
             "σ and the functional per step."),
]


# ---- the sidebar -------------------------------------------------------------------------

def scheduler_sidebar() -> None:
    """The sidebar's Dask scheduler field, read-only: every page draws it first.

    Where jobs run is the operator's choice, never a visitor's (docs/SERVING.md): the
    scheduler is ``$METRICFLOW_SCHEDULER`` as the server was started with, else this
    machine's warm workers. The field only shows it; whatever a browser sends for it is
    ignored (its value is never read).
    """
    try:
        address = scheduler_address() or ""
    except MetricflowError as err:
        address = ""
        st.sidebar.error(str(err))
    st.sidebar.text_input("Dask scheduler", value=address, disabled=True, placeholder="none: this machine's workers")
    st.sidebar.caption("Set by whoever runs the server ($METRICFLOW_SCHEDULER), not from the browser.")


# ---- the job store -----------------------------------------------------------------------


def _session() -> str:
    """This browser session's id: the owner of the jobs it asks for."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def _session_alive(session: str) -> bool:
    """Whether a session still has its browser tab connected (True where no runtime can tell)."""
    if not Runtime.exists():
        return True
    return Runtime.instance().is_active_session(session)


@st.cache_resource
def _open_store(directory: str) -> JobStore:
    try:
        executor = default_executor()  # $METRICFLOW_SCHEDULER, else the local pool of warm workers
    except MetricflowError:
        return JobStore(directory)  # a scheduler that cannot be reached: each Run says so
    queue = FairQueue(executor, alive=_session_alive)  # the sessions take turns (docs/SERVING.md)
    queue.warm()  # the local pool's workers import JAX now, before the first Run
    return JobStore(directory, executor=queue)


def job_store() -> JobStore:
    """The server's JobStore on ``$METRICFLOW_CACHE`` (default ``cache/``), running jobs on the
    operator's Dask scheduler (``$METRICFLOW_SCHEDULER``), else on this machine's workers.

    A store that cannot be used (a broken cache.db, a read-only folder, a file in the way)
    is shown as an error and the page stops there; the server stays up, and the next rerun
    tries to open it again.
    """
    try:
        store = _open_store(str(cache_directory()))
        store.check()
        return store
    except StoreError as err:
        _open_store.clear()
        st.error(f"The result store cannot be used. {str(err)[0].upper()}{str(err)[1:]}.")
        st.stop()


_LEFT = "_jobs_left"  # session_state: keys of jobs this session stopped waiting for, which others still want


def _queue(store: JobStore) -> FairQueue | None:
    return store._executor if isinstance(store._executor, FairQueue) else None


def submit_jobs(store: JobStore, configs: list) -> list[str]:
    """Submit ``configs`` as this session's jobs; their keys, in order.

    Raises QueueFull (a MetricflowError that says when a slot frees) if the session would
    have more jobs waiting than one session may. A config another session already asked for
    is not computed again: this session joins its job.
    """
    queue, owner = _queue(store), _session()
    if queue is not None:
        queue.admit(configs, owner)
    keys = [store.submit(c, owner=owner) for c in configs]
    for key in keys:
        if queue is not None:
            queue.join(key, owner)
        st.session_state.setdefault(_LEFT, set()).discard(key)
    return keys


def _leave(store: JobStore, key: str) -> None:
    """Cancel: this session stops waiting for ``key``; the job itself is cancelled unless
    other sessions still wait for it."""
    queue = _queue(store)
    if queue is None or queue.release(key, _session()):
        store.cancel(key)
    else:
        st.session_state.setdefault(_LEFT, set()).add(key)


# ---- inputs that cannot diverge from the config ------------------------------------------

_BAD_INPUTS = "_bad_inputs"  # session_state: {label: reason} of out-of-range inputs before the next Run


def _number(v) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:g}"


def bounded_input(where, label: str, min_value, max_value, value=None, **kwargs):
    """A number_input in [min_value, max_value] whose value is always the one shown.

    Streamlit's own bounds keep the previous value when a typed one is out of range, so the
    config would differ from the box. Here the typed value is returned as it is; out of
    range, it is marked with the bound and the next ``run_button`` is disabled, saying why.

    Args:
      where: the container (``st`` or a column).
      label, value, **kwargs: as for ``st.number_input``; without ``value``, the widget's
        ``key`` in session_state holds it.
      min_value, max_value: the allowed range, inclusive.
    """
    if value is not None:
        kwargs["value"] = value
    got = where.number_input(label, **kwargs)
    bad = st.session_state.setdefault(_BAD_INPUTS, {})
    if got < min_value or got > max_value:
        side = f"below the minimum {_number(min_value)}" if got < min_value else f"above the maximum {_number(max_value)}"
        bad[label] = f"{label} {_number(got)} is {side}"
        where.error(f"{label}: at most {_number(max_value)}" if got > max_value else f"{label}: at least {_number(min_value)}")
    else:
        bad.pop(label, None)
    return got


def count_input(where, label: str, min_value: int, max_value: int, value: int | None = None, **kwargs) -> int:
    """``bounded_input`` for an integer count."""
    kwargs.setdefault("step", 1)  # an integer widget
    return bounded_input(where, label, min_value, max_value, value, **kwargs)


def run_button(label: str = "Run", key: str | None = None, disabled: bool = False) -> bool:
    """The primary Run button; disabled, with the reason, while a count_input above is out of range."""
    bad = st.session_state.get(_BAD_INPUTS) or {}
    st.session_state[_BAD_INPUTS] = {}  # each input above sets its entry again on every run
    if bad:
        st.error("Run is disabled: " + "; ".join(bad.values()) + ". Change the value to run.")
    return st.button(label, type="primary", disabled=disabled or bool(bad), key=key)


def poll_seconds(base: tuple[float, float], sessions: int) -> float:
    """Seconds between a page's polls of a job, when ``sessions`` sessions poll the server.

    Each session polls every base[0] s while few do; past POLLS_PER_SECOND polls a second in
    all, every session's period stretches alike, up to base[1]. The period is rounded up to
    one of PERIODS. Every poll is a fragment rerun, which costs the server a script run and
    the browser a redraw: thirty sessions polling every second kept a 2-core server and its
    browsers busy (benchmarks/README.md, a class on one server).

    Args:
      base: (quickest, slowest) period in seconds, such as POLL_SECONDS.
      sessions: the sessions that wait for a job now (``FairQueue.sessions``), at least this one.
    """
    quick, slow = base
    wanted = min(slow, max(quick, max(1, sessions) / POLLS_PER_SECOND))
    return next((p for p in PERIODS if p >= wanted - 1e-9), PERIODS[-1])


def _progress(key: str, cancel_key: str, waiting: bool, live) -> None:
    """The body of every polling fragment (``_POLLS``, drawn by ``job_progress``)."""
    store = job_store()
    status = store.status(key)
    if status is None or status.state not in ACTIVE or (waiting and status.state == RUNNING):
        st.rerun()  # ended: show it; started: poll at the running rate
    queue = _queue(store)
    place = queue.place(key) if queue is not None else None
    if status.state == QUEUED and place is not None and place.position:
        text = (f"queued: number {place.position} of {place.waiting} waiting, expected to start in about "
                f"{_duration(place.start_in)}")
    elif status.state == QUEUED and place is not None:
        text = "starting"  # handed to a worker, which has not taken it yet
    else:
        text = f"{status.state}: {status.message}"
        if status.total:
            text += f" (step {status.step} of {status.total})"
    if status.state == RUNNING:
        text += f", {status.seconds:.0f} s"
    st.progress(status.fraction, text=text)
    if place is not None:
        notes = [f"{place.owners} sessions wait for this job: it is computed once, for all of them"] * (place.owners > 1)
        notes += [place.reason] * bool(place.reason)
        if notes:
            st.caption(". ".join(n[0].upper() + n[1:] for n in notes) + ".")
    if st.button("Cancel", key=cancel_key):
        _leave(store, key)
        st.rerun()
    if live is not None:
        live(key)
    else:
        show_partial(store.partial(key), status, cancel_key)


# One fragment per period: a fragment's period is fixed when it is drawn, so a page picks the
# one it needs in each full run (a job that starts or ends reruns the page).
_POLLS = {period: st.fragment(_progress, run_every=period) for period in PERIODS}


def job_progress(key: str, cancel_key: str, status, live=None) -> None:
    """Progress bar, Cancel button and partial results of a queued or running job, polled
    (as a fragment) every ``poll_seconds``: its place in the queue while it waits, its
    progress and partial results while it runs.

    Once the job has started or ended, the whole page reruns: it shows the result and, since
    the page no longer calls this fragment, the polling stops.

    Args:
      key: the job's key.
      cancel_key: the Cancel button's widget key.
      status: the job's status (queued or running), as this run of the page read it.
      live: draws the job's partial results instead of ``show_partial``, live(key); None for
        the job's own partial series.
    """
    queue = _queue(job_store())
    sessions = queue.sessions() if queue is not None else 1
    waiting = status.state == QUEUED
    if waiting:
        base = WAIT_POLL_SECONDS
    elif queue is not None and len(queue.owners(key)) > 1:
        base = SHARED_POLL_SECONDS
    elif live is not None:
        base = LIVE_POLL_SECONDS
    else:
        base = POLL_SECONDS
    _POLLS[poll_seconds(base, sessions)](key, cancel_key, waiting, live)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def show_partial(partial: dict | None, status, name: str) -> None:
    """The figures of a running job's partial series, marked as such (never a result)."""
    if not partial:
        return
    figures = partial_figures(partial)
    where = f" at step {status.step:,} of {status.total:,}" if status.total else ""
    st.caption(f"Partial results{where}: still computing. The final result replaces them.")
    if partial.get("note"):
        st.caption(partial["note"])
    columns = st.columns(2) if len(figures) > 1 else [st]
    for i, fig in enumerate(figures):
        columns[i % len(columns)].plotly_chart(fig, key=f"{name}_partial_{i}")


def settle(store: JobStore, keys: list[str], seconds: float) -> None:
    """Wait up to ``seconds`` for the jobs ``keys`` to end, so that a small job's result is
    drawn in the same script run as its Run button instead of at the next poll."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        statuses = [store.status(k) for k in keys]
        if all(s is None or s.state not in ACTIVE for s in statuses):
            return
        time.sleep(0.03)


def show_jobs(keys: list[str], configs: list | None, show_results, name: str, live=None) -> bool:
    """Whatever there is to show for the jobs ``keys``: progress, errors, or all their results.

    Args:
      keys: the jobs' keys.
      configs: their configs, in the same order, if known (to recompute or retry), else None.
      show_results: draws the finished results, show_results(list of results, in the order of keys).
      name: the page's prefix for widget keys.
      live: draws a running job's partial results, live(key) (``job_progress``); None for
        the job's own partial series.

    Returns:
      Whether the results were shown (every job done and readable).
    """
    store = job_store()
    statuses = [store.status(k) for k in keys]
    if any(s is None for s in statuses):
        return False
    left = [k for k, s in zip(keys, statuses) if s.state in ACTIVE and k in st.session_state.get(_LEFT, ())]
    if left:
        st.info("You stopped waiting for this job. It goes on for the other sessions that wait for it; "
                "Run shows it again, or its result once it is stored.")
        return False
    many = len(keys) > 1
    for i, (key, status) in enumerate(zip(keys, statuses)):
        if status.state in ACTIVE:
            if many:
                st.caption(f"{status.kind} {key[:12]}")
            job_progress(key, f"{name}_cancel_{i}" if many else f"{name}_cancel", status, live)
    bad = [(k, s) for k, s in zip(keys, statuses) if s.state not in ACTIVE and s.state != DONE]
    for key, status in bad:
        what = f"{status.kind} job" if many else "Job"
        (st.error if status.state == FAILED else st.warning)(f"{what} {status.state}: {status.error}")
        trace = store.traceback(key)
        if trace:
            with st.expander("Traceback"):
                st.code(trace)
    if bad:
        if configs is not None and st.button("Retry", key=f"{name}_retry"):
            try:
                submit_jobs(store, configs)  # a finished one is not recomputed
            except MetricflowError as err:
                st.error(str(err))
                return False
            st.rerun()
        return False
    if any(s.state in ACTIVE for s in statuses):
        return False
    results = [store.result(k) for k in keys]
    if any(r is None for r in results):  # unreadable: the store has reset it, so compute it again
        if configs is not None:
            submit_jobs(store, configs)
        st.rerun()
    show_results(results)
    return True


def show_job(key: str, config, show_result, name: str) -> bool:
    """``show_jobs`` for one job: show_result(result) draws its result; config may be None."""
    return show_jobs([key], None if config is None else [config], lambda results: show_result(results[0]), name)


def job_section(name: str, config, show_result, hint: str = "", cost_text: str = "",
                fix: str = "choose smaller sizes", live=None) -> bool:
    """Estimate, Run button, then progress, result or error of the job (or jobs) for ``config``.

    A finished result for the current settings shows at once; otherwise the job this
    session launched last (kept in session_state) is shown.

    Args:
      name: the page's prefix for session_state and widget keys. One config keeps its job's
        key in ``{name}_job`` and the config in ``{name}_config``; a list keeps the keys in
        ``{name}_jobs`` and the configs in ``{name}_configs``.
      config: a registered job config, or a list of them (one job each, run together).
      show_result: draws a finished result, show_result(result); for a list of configs,
        show_result(list of results in the order of the configs), once all are done.
      hint: shown before anything has run.
      cost_text: what the estimate covers (default: nothing more).
      fix: how to make a job that needs more memory than is free fit.
      live: draws a running job's partial results in its polling fragment, live(key); None
        for the job's own partial series (``show_partial``).

    Returns:
      Whether a finished result was shown.
    """
    many = isinstance(config, list)
    configs = config if many else [config]
    job, kept = (f"{name}_jobs", f"{name}_configs") if many else (f"{name}_job", f"{name}_config")
    store = job_store()
    costs = [job_estimate(c) for c in configs]
    free = available_memory_bytes()
    need = max(c.bytes for c in costs)
    too_big = need > free
    seconds = sum(c.seconds for c in costs)
    if many:
        size = f"in {len(configs)} jobs, at most {need / 2**20:,.0f} MiB each"
    else:
        size = f"and {need / 2**20:,.0f} MiB"
    st.caption(f"Estimate{cost_text}: about {seconds:.0f} s {size} ({free / 2**30:.1f} GiB free).")
    keys = [job_key(c) for c in configs]
    if run_button(key=f"{name}_run", disabled=too_big):
        try:
            submitted = submit_jobs(store, configs)
            st.session_state[job] = submitted if many else submitted[0]
            st.session_state[kept] = config
            settle(store, submitted, SETTLE_SECONDS if seconds <= SETTLE_BELOW else 0.0)
        except MetricflowError as err:
            st.error(str(err))
    if too_big:
        st.error(f"This needs more memory than is free; {fix}.")
    statuses = [store.status(k) for k in keys]
    if all(s is not None and s.state == DONE for s in statuses):
        shown, shown_configs = keys, configs
    else:
        last = st.session_state.get(job)
        if not last:
            if hint:
                st.info(hint)
            return False
        shown = list(last) if many else [last]
        shown_configs = configs if shown == keys else st.session_state.get(kept)
        if shown_configs is not None and not many:
            shown_configs = [shown_configs]
        if shown != keys:
            st.caption(f"Showing the job{'s' if many else ''} launched with earlier settings.")
    st.caption(f"Job{'s' if many else ''} {', '.join(k[:12] for k in shown)}")
    return show_jobs(shown, shown_configs, show_result if many else (lambda results: show_result(results[0])), name,
                     live)


# ---- the address -------------------------------------------------------------------------
# A page keeps its inputs in the URL's query string (st.query_params), so a link is a view:
# opening it restores the widgets, and job_section then shows a stored result for them at once.
# The query string is untrusted browser input: it only sets widget values, each parsed as the
# widget's type (and among its options), and those values go through the same bounds and
# parsing as typed ones. It never chooses the Dask scheduler, a file or anything loaded.

_LINKED = "_linked_keys"  # session_state: the keys linked in this run of the page, in order
_MAX_TEXT = 500  # a longer query value is not an input: the default instead
_MAX_INT = 2**53 - 1  # the largest integer a browser's number box holds exactly
_BAD = object()


def app_pages() -> dict[str, list]:
    """The pages as st.Page objects by navigation section, for ``st.navigation``: PAGES[0]
    (Methods compared) is the default page, at the app's root, and the home page follows it
    in its section. app.py builds its navigation from it, and so does ``enter_page``."""
    sections: dict[str, list] = {}
    for info in (PAGES[0], HOME, *PAGES[1:]):
        if info is PAGES[0]:
            entry = st.Page(info.path, title=info.title, icon=":material/insights:", default=True)
        elif info is HOME:
            entry = st.Page(info.path, title=info.title, icon=":material/home:", url_path=info.url)
        else:
            entry = st.Page(info.path, title=info.title, url_path=info.url)
        sections.setdefault(info.group, []).append(entry)
    return sections


def enter_page() -> None:
    """The first call of every page: starts the page's list of linked inputs and, where
    Streamlit runs the page file on its own, hands over to app.py's navigation.

    A fresh server that has never run app.py treats pages/ as Streamlit's own page folder: the
    first visit to a page's address runs that file alone, with the folder's navigation (which
    lists "app") and the narrow layout. Calling ``st.navigation`` with the app's pages ends that
    for the whole server (Streamlit ignores pages/ once any session has called it), and the
    rerun then runs app.py on this page, with the same query string (docs/ARCHITECTURE.md).
    """
    st.session_state[_LINKED] = []
    if getattr(PagesManager, "uses_pages_directory", False):  # this run is the folder's navigation
        st.navigation(app_pages(), expanded=True)
        st.rerun()


def _text(value) -> str:
    """A widget value as it stands in the address."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # round-trips: 0.0001, 1e-06
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


def _parse(text: str, default, options):
    """The widget value that the query value ``text`` stands for, or _BAD if the widget of
    ``default``'s type (and ``options``, if given) cannot hold it."""
    if len(text) > _MAX_TEXT:
        return _BAD
    if options is not None:
        by_text = {_text(o): o for o in options}
        if isinstance(default, (list, tuple)):  # a multiselect: comma-separated options
            values = [by_text.get(t, _BAD) for t in text.split(",")] if text else []
            return _BAD if any(v is _BAD for v in values) else values
        return by_text.get(text, _BAD)
    if isinstance(default, bool):
        return {"true": True, "false": False}.get(text.lower(), _BAD)
    if isinstance(default, int):
        try:
            value = int(text)
        except ValueError:
            return _BAD
        return value if abs(value) <= _MAX_INT else _BAD
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            return _BAD
        return value if math.isfinite(value) else _BAD
    if isinstance(default, str):
        return text
    return _BAD


def linked(key: str, default, options=None) -> str:
    """Links the widget with ``key=key`` to the address; call it for the ``key`` argument.

    On the session's first run of the page (``key`` not yet in session_state) the widget's value
    is the query parameter ``key`` if it is one the widget takes, else ``default``; after that,
    session_state rules. Give the widget no ``value``/``index``/``default`` of its own.

    Args:
      key: the widget's key, also the query parameter's name.
      default: the widget's default value; its type (bool, int, float, str, or a list for a
        multiselect) is what the query value must parse as.
      options: the values the widget allows (a selectbox's, radio's or slider's), if any.

    Returns:
      ``key``.

    Example:
      >>> n = count_input(st, "Points N", 10, 10**7, step=1000, key=linked("points_n", 10_000))
    """
    seen = st.session_state.setdefault(_LINKED, [])
    if key not in st.session_state:
        text = st.query_params.get(key)
        value = _BAD if text is None else _parse(text, default, options)
        st.session_state[key] = default if value is _BAD else value
    elif key not in seen and not _browser_holds(key):
        st.session_state[key] = st.session_state[key]  # sends the value with the widget
    seen.append(key)
    return key


def _browser_holds(key: str) -> bool:
    """Whether the browser sent a value for the widget ``key`` with this run.

    A widget whose value came from session_state reaches the browser with that value only in
    the run that set it. If that run was stopped for a rerun (a user typing elsewhere) after
    the value was set but before the widget was sent, the next run sends the widget without
    its value, and the browser takes the widget's own default (unchecked, the minimum, an
    empty list) and sends that back on the next Run: the config would differ from the
    session's. Setting the value again in such a run makes Streamlit send it with the widget.
    Reads Streamlit's session state (pinned in requirements.txt), and says True if it cannot.
    """
    try:
        from streamlit.runtime.state.session_state_proxy import get_session_state

        state = get_session_state()._state
        widget = state._key_id_mapper.get_id_from_key(key)
        return widget is not None and widget in state._new_widget_state.states
    except (AttributeError, RuntimeError):
        return True


def keep_address() -> None:
    """The last call of every page: writes the current values of this run's linked inputs to
    the query string, and removes every other parameter (a page's link carries only its own
    inputs)."""
    keys = st.session_state.get(_LINKED) or []
    wanted = {k: _text(st.session_state[k]) for k in dict.fromkeys(keys) if k in st.session_state}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)
