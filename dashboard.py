"""What the dashboard pages share: the job store handle. Pages import it by name."""

from __future__ import annotations

import streamlit as st

from metricflow.jobs import ACTIVE, JobStore, cache_directory

__all__ = ["job_store", "job_progress"]

POLL_SECONDS = 0.5


SCHEDULER = "scheduler"  # session_state key: a Dask scheduler address, set in app.py's sidebar


@st.cache_resource
def _open_store(directory: str, scheduler: str = "") -> JobStore:
    if not scheduler:
        return JobStore(directory)  # $METRICFLOW_SCHEDULER, else the local process pool
    from metricflow.dask_executor import executor_for

    return JobStore(directory, executor=executor_for(scheduler))


def job_store() -> JobStore:
    """The server's JobStore on ``$METRICFLOW_CACHE`` (default ``cache/``), running jobs on the
    Dask scheduler of this session's sidebar setting, if any (raises MetricflowError if it
    cannot be reached)."""
    return _open_store(str(cache_directory()), st.session_state.get(SCHEDULER, "").strip())


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
