"""What the dashboard pages share: the job store handle, the Run button and bounded count
inputs. Pages import them by name."""

from __future__ import annotations

import streamlit as st

from metricflow.errors import MetricflowError, StoreError, available_memory_bytes
from metricflow.jobs import ACTIVE, DONE, FAILED, JobStore, cache_directory, job_key
from metricflow.jobs import estimate as job_estimate

__all__ = ["job_store", "job_progress", "show_job", "job_section", "count_input", "run_button"]

POLL_SECONDS = 0.5


SCHEDULER = "scheduler"  # session_state key: a Dask scheduler address, set in app.py's sidebar


@st.cache_resource
def _open_store(directory: str, scheduler: str = "") -> JobStore:
    if not scheduler:
        return JobStore(directory)  # $METRICFLOW_SCHEDULER, else the local process pool
    from metricflow.jobs import executor_for

    return JobStore(directory, executor=executor_for(scheduler))


def job_store() -> JobStore:
    """The server's JobStore on ``$METRICFLOW_CACHE`` (default ``cache/``), running jobs on the
    Dask scheduler of this session's sidebar setting, if any (raises MetricflowError if it
    cannot be reached).

    A store that cannot be used (a broken cache.db, a read-only folder, a file in the way)
    is shown as an error and the page stops there; the server stays up, and the next rerun
    tries to open it again.
    """
    try:
        store = _open_store(str(cache_directory()), st.session_state.get(SCHEDULER, "").strip())
        store.check()
        return store
    except StoreError as err:
        _open_store.clear()
        st.error(f"The result store cannot be used. {str(err)[0].upper()}{str(err)[1:]}.")
        st.stop()


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


@st.fragment(run_every=POLL_SECONDS)
def job_progress(key: str, cancel_key: str) -> None:
    """Progress bar and Cancel button of a queued or running job, polled every POLL_SECONDS.

    Once the job has finished, the whole page reruns (which shows the result and, since
    the page no longer calls this fragment, stops the polling).
    """
    store = job_store()
    status = store.status(key)
    if status is None or status.state not in ACTIVE:
        st.rerun()
    text = f"{status.state}: {status.message}"
    if status.total:
        text += f" (step {status.step} of {status.total})"
    st.progress(status.fraction, text=f"{text}, {status.seconds:.0f} s")
    if st.button("Cancel", key=cancel_key):
        store.cancel(key)
        st.rerun()


def show_job(key: str, config, show_result, name: str) -> None:
    """Whatever there is to show for the job ``key``: progress, result or error.

    Args:
      key: the job's key.
      config: its config if known (to recompute or retry), else None.
      show_result: draws a finished result, show_result(result).
      name: the page's prefix for widget keys.
    """
    store = job_store()
    status = store.status(key)
    if status is None:
        return
    if status.state in ACTIVE:
        job_progress(key, f"{name}_cancel")
    elif status.state == DONE:
        result = store.result(key)
        if result is None:  # unreadable: the store has reset it, so compute it again
            if config is not None:
                store.submit(config)
            st.rerun()
        show_result(result)
    else:
        (st.error if status.state == FAILED else st.warning)(f"Job {status.state}: {status.error}")
        trace = store.traceback(key)
        if trace:
            with st.expander("Traceback"):
                st.code(trace)
        if config is not None and st.button("Retry", key=f"{name}_retry"):
            store.submit(config)
            st.rerun()


def job_section(name: str, config, show_result, hint: str = "", cost_text: str = "") -> None:
    """Estimate, Run button, then progress, result or error of the job for ``config``.

    A finished result for the current settings shows at once; otherwise the job this
    session launched last (kept in session_state under ``name``) is shown.

    Args:
      name: the page's prefix for session_state and widget keys.
      config: a registered job config.
      show_result: draws a finished result, show_result(result).
      hint: shown before anything has run.
      cost_text: what the estimate covers (default: nothing more).
    """
    store = job_store()
    cost = job_estimate(config)
    free = available_memory_bytes()
    too_big = cost.bytes > free
    st.caption(
        f"Estimate{cost_text}: about {cost.seconds:.0f} s and {cost.bytes / 2**20:,.0f} MiB "
        f"({free / 2**30:.1f} GiB free)."
    )
    key = job_key(config)
    if run_button(key=f"{name}_run", disabled=too_big):
        try:
            st.session_state[f"{name}_job"] = store.submit(config)
            st.session_state[f"{name}_config"] = config
        except MetricflowError as err:
            st.error(str(err))
    if too_big:
        st.error("This needs more memory than is free; choose smaller sizes.")
    status = store.status(key)
    shown = key if status is not None and status.state == DONE else st.session_state.get(f"{name}_job")
    if shown is None:
        if hint:
            st.info(hint)
        return
    if shown != key:
        st.caption("Showing the job launched with earlier settings.")
    st.caption(f"Job {shown[:12]}")
    show_job(shown, config if shown == key else st.session_state.get(f"{name}_config"), show_result, name)
