"""What the dashboard pages share: the job store handle. Pages import it by name."""

from __future__ import annotations

import streamlit as st

from metricflow.jobs import JobStore, cache_directory

__all__ = ["job_store"]


@st.cache_resource
def _open_store(directory: str) -> JobStore:
    return JobStore(directory)


def job_store() -> JobStore:
    """The server's one JobStore on ``$METRICFLOW_CACHE`` (default ``cache/``)."""
    return _open_store(str(cache_directory()))
