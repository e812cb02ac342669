"""Dashboard pages under streamlit.testing.v1.AppTest, with a fresh result store each test."""

import base64
import json
import time

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

TIMEOUT = 60  # the first run imports JAX
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("METRICFLOW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def points_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "1_Points.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def run_until_done(at: AppTest, timeout: float = 60.0) -> AppTest:
    """Rerun the page (as the polling fragment would) until the metrics appear."""
    end = time.monotonic() + timeout
    while not at.metric:
        assert not at.exception, at.exception
        assert not at.error, [e.value for e in at.error]
        assert time.monotonic() < end, "the job did not finish"
        time.sleep(0.25)
        at.run()
    return at


def figure(at: AppTest, index: int) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def values(array) -> np.ndarray:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata"}."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
    return np.asarray(array)


def test_home_page_renders_and_lists_cached_results():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "metric-NTK" in text and "Points" in text and "Kernel flow" in text
    assert any("No results yet" in i.value for i in at.info)


def test_points_page_runs_a_small_job_end_to_end(cache_dir):
    at = points_page()
    assert any("Estimate" in c.value for c in at.caption)
    at.number_input[0].set_value(200)
    at.button[0].click().run()  # Run: submits and returns at once
    assert "points_job" in at.session_state
    run_until_done(at)
    metrics = {m.label: m.value for m in at.metric}
    assert 0 < float(metrics["σ of g_FS"]) < 1
    assert metrics["κ exact"] == "0.017619"
    assert metrics["points"] == "200"
    eta = figure(at, 0)
    assert eta["data"][0]["type"] == "bar" and values(eta["data"][0]["y"]).sum() == 200
    charts = figure(at, 2)
    assert values(charts["data"][0]["y"]).sum() == 200
    assert len(at.get("download_button")) == 3

    # another session with the same settings: the cached result shows at once
    again = points_page()
    again.number_input[0].set_value(200).run()
    assert {m.label: m.value for m in again.metric} == metrics

    home = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    home.run()
    rows = home.dataframe[0].value
    assert list(rows["state"]) == ["done"] and "n_points: 200" in rows["settings"][0]


@pytest.mark.parametrize("psi, message", [("abc", "psi must be a complex number"), ("1", "singular locus")])
def test_points_page_shows_bad_input_as_an_error(psi, message):
    at = points_page()
    at.text_input[0].set_value(psi).run()
    assert not at.exception
    assert any(message in e.value for e in at.error)
    assert not at.button  # nothing to run


def test_points_page_cancels_a_running_job():
    at = points_page()
    at.number_input[0].set_value(300_000)
    at.button[0].click().run()
    end = time.monotonic() + TIMEOUT
    while not at.get("progress"):
        assert time.monotonic() < end, "no progress bar"
        time.sleep(0.2)
        at.run()
    cancel = next(b for b in at.button if b.label == "Cancel")
    cancel.click().run()
    assert not at.exception
    assert any("cancelled" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not at.get("progress") and not at.metric
