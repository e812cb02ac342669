"""Helpers for the dashboard's AppTest tests."""

import base64
import json
import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

TIMEOUT = 90  # the first run of a page imports JAX
ROOT = Path(__file__).resolve().parent.parent


def open_page(path: str) -> AppTest:
    """Run the page at ``path`` (relative to the repository root) once, without an exception."""
    at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def open_app(page: str | None = None) -> AppTest:
    """Run app.py (the navigation, the sidebar and its default page, Methods compared) once, then switch to the page
    at ``page`` (a path in dashboard.PAGES) if given; fails on any exception."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def wait_for(at: AppTest, done, timeout: float = 150.0, poll: float = 0.25) -> AppTest:
    """Rerun the page (as its polling fragment would) until done(at), failing on any error."""
    end = time.monotonic() + timeout
    while not done(at):
        assert not at.exception, at.exception
        assert not at.error, [e.value for e in at.error]
        assert time.monotonic() < end, "the job did not finish"
        time.sleep(poll)
        at.run()
    return at


def run_until_done(at: AppTest, timeout: float = 150.0) -> AppTest:
    """Rerun the page until its result metrics appear."""
    return wait_for(at, lambda a: a.metric, timeout)


def figure(at: AppTest, index: int) -> dict:
    """The plotly figure of the index-th chart on the page, as JSON."""
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def values(array) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata"}."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)
