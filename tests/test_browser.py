"""The real app in a real browser: streamlit run + Debian's chromium driven by Playwright.

Runs the Points page end to end (a 200-point job in a background worker), waits for the
plotly figures, checks their traces and saves screenshots to test-artifacts/.
"""

import os
import time
from pathlib import Path

import pytest

from chromium import ARTIFACTS, CHROMIUM, chromium, fill, serve

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is absent; install it with apt-get install -y --no-install-recommends chromium fonts-liberation",
)


@pytest.fixture
def server(tmp_path):
    with serve(tmp_path, METRICFLOW_AUTOSTART="0") as (url, _):
        yield url


@pytest.fixture
def one_worker_server(tmp_path):
    """A server whose local pool has one worker, so a job holds the only slot."""
    with serve(tmp_path, METRICFLOW_AUTOSTART="0", METRICFLOW_WORKERS="1") as (url, _):
        yield url


@pytest.fixture
def page():
    """A page of Debian's chromium, driven by Playwright (no browser download)."""
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1400, "height": 1000})


def test_points_page_in_chromium(server, page):
    from playwright.sync_api import expect

    page.goto(f"{server}/Points")
    n_points = page.get_by_label("Points N")
    n_points.wait_for(timeout=60_000)
    # the server's first visit, to a page's address: the page draws the sidebar itself
    expect(page.get_by_label("Dask scheduler")).to_be_visible()
    n_points.fill("200")
    n_points.press("Enter")
    expect(page.get_by_text("Estimate: about")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot').length >= 4", timeout=90_000
    )
    expect(page.get_by_text("σ of g_FS")).to_be_visible()
    expect(page.get_by_text("0.017619")).to_be_visible()  # exact kappa of the Fermat quintic
    traces = page.evaluate(
        "Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => d.data[0].type)"
    )
    assert sorted(traces) == ["bar", "bar", "bar", "scatter3d"]
    total = page.evaluate(
        "Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".find(d => d.data[0].type === 'bar')._fullData[0].y"
        ".reduce((a, b) => a + Number(b), 0)"
    )
    assert total == 200
    page.set_viewport_size({"width": 1400, "height": 2000})  # Streamlit scrolls inside the page
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "points.png"))

    page.goto(f"{server}/Home")
    expect(page.get_by_text("Cached results")).to_be_visible(timeout=30_000)
    expect(page.get_by_label("Dask scheduler")).to_have_count(1)  # drawn once under the navigation too
    page.screenshot(path=str(ARTIFACTS / "home.png"))


def test_kernel_flow_page_in_chromium(server, page):
    from playwright.sync_api import expect

    page.goto(f"{server}/Kernel_flow")
    page.get_by_label("Train points").wait_for(timeout=60_000)
    for label, value in [("Train points", "100"), ("Test points", "100"), ("Steps", "5"),
                         ("Learning rate Δt", "0.0001")]:
        box = page.get_by_label(label)
        box.fill(value)
        box.press("Enter")
        page.wait_for_timeout(300)
    expect(page.get_by_text("Estimate: about")).to_be_visible(timeout=30_000)
    expect(page.get_by_label("Learning rate Δt")).to_have_value("0.0001")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=90_000
    )
    expect(page.get_by_text("steps done")).to_be_visible()
    expect(page.get_by_text("5 of 5")).to_be_visible()
    sigma = page.evaluate(
        "(() => { const d = Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".find(d => d.data[0].name && d.data[0].name.startsWith('train'));"
        "return {n: d.data.length, type: d._fullLayout.yaxis.type,"
        " names: d.data.map(t => t.name), y: Array.from(d._fullData[0].y).map(Number)}; })()"
    )
    assert sigma["n"] >= 2 and sigma["type"] == "log"
    assert sigma["names"][0].startswith("train · delta/log 100+100")  # the default loss of the covariant update
    assert sigma["names"][1].startswith("test · delta/log 100+100")
    assert len(sigma["y"]) == 6 and all(0 < y < 1 for y in sigma["y"])
    page.set_viewport_size({"width": 1400, "height": 1800})
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "flow.png"))


def test_an_out_of_range_count_disables_run_in_chromium(server, page):
    from playwright.sync_api import expect

    page.goto(f"{server}/Kernel_flow")
    box = page.get_by_label("Train points")
    box.wait_for(timeout=60_000)
    expect(page.get_by_role("button", name="Run")).to_be_enabled(timeout=30_000)
    box.fill("5000000")  # above the maximum 1,000,000: Streamlit's own bounds kept the old value here
    box.press("Enter")
    expect(page.get_by_text("Run is disabled: Train points 5,000,000 is above the maximum 1,000,000")).to_be_visible(
        timeout=30_000)
    expect(page.get_by_role("button", name="Run")).to_be_disabled()
    expect(box).to_have_value("5000000")  # the box shows what the config holds
    page.screenshot(path=str(ARTIFACTS / "out-of-range.png"))
    box.fill("100")
    box.press("Enter")
    expect(page.get_by_text("Run is disabled")).to_have_count(0, timeout=30_000)
    expect(page.get_by_role("button", name="Run")).to_be_enabled()
    # a real-valued input behaves the same
    lr = page.get_by_label("Learning rate Δt")
    lr.fill("2e6")
    lr.press("Enter")
    expect(page.get_by_text("Run is disabled: Learning rate Δt 2e+06 is above the maximum 1e+06")).to_be_visible(
        timeout=30_000)
    expect(page.get_by_role("button", name="Run")).to_be_disabled()
    expect(lr).to_have_value("2000000")
    lr.fill("0.3162")
    lr.press("Enter")
    expect(page.get_by_text("Run is disabled")).to_have_count(0, timeout=30_000)


def test_methods_page_renders_in_chromium(server, page):
    """The methods comparison page draws its controls, its job's estimate and the sidebar;
    the app opens on it (AppTest runs a comparison: tests/test_methods.py)."""
    import re

    from playwright.sync_api import expect

    page.goto(f"{server}/Methods_compared")
    expect(page.get_by_label("Test points")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"^Estimate for \d+ jobs.*: about"))).to_be_visible(timeout=30_000)
    expect(page.get_by_role("button", name="Run")).to_be_enabled()
    expect(page.get_by_label("Dask scheduler")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "methods.png"))
    page.goto(server)  # the app opens on it, first in the navigation, the home page next
    expect(page.get_by_label("Test points")).to_be_visible(timeout=60_000)
    links = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
    assert links[0].endswith("Methods compared") and links[1].endswith("Home"), links
    page.goto(f"{server}/Home")
    expect(page.get_by_text("Cached results")).to_be_visible(timeout=30_000)


# ---- live results, cancelling and a killed worker ------------------------------------------


LONG_FLOW = {"Train points": 4000, "Test points": 1000, "Steps": 5000, "Learning rate Δt": "0.0001"}
SHORT_FLOW = {"Train points": 100, "Test points": 100, "Steps": 5}

# the lengths of the partial sigma curves drawn on the page (one number per curve)
PARTIAL_SIGMA = (
    "Array.from(document.querySelectorAll('.js-plotly-plot'))"
    ".filter(d => d.layout && d.layout.title && String(d.layout.title.text || '').includes('σ per step (computing)'))"
    ".map(d => d._fullData[0].y.length)"
)


def partial_length(page, longer_than: int = 0, timeout: float = 60) -> int:
    """Wait until the partial sigma curve is longer than ``longer_than``; return its length."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        lengths = page.evaluate(PARTIAL_SIGMA)
        if lengths and lengths[0] > longer_than:
            return lengths[0]
        page.wait_for_timeout(200)
    pytest.fail(f"the partial sigma curve did not grow past {longer_than} points in {timeout} s")


def running_job(folder: Path):
    """The store's running job (its status record), waiting for it to start."""
    from metricflow.jobs import JobStore

    store = JobStore(folder / "cache")
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            running = [j for j in store.jobs() if j.state == "running" and j.kind == "FlowConfig"]
            if running:
                return running[0]
            time.sleep(0.2)
    finally:
        store.close()
    pytest.fail("no flow job started")


def test_a_running_flow_grows_and_cancel_frees_the_slot_in_chromium(one_worker_server, tmp_path, page):
    """The sigma curve of a running flow is drawn as it grows; Cancel frees the one worker
    slot, so the next job runs at once."""
    from playwright.sync_api import expect

    page.goto(f"{one_worker_server}/Kernel_flow")
    page.get_by_label("Train points").wait_for(timeout=60_000)
    fill(page, LONG_FLOW)
    page.get_by_role("button", name="Run", exact=True).click()
    first = partial_length(page, 1)
    page.wait_for_timeout(1500)
    second = partial_length(page, first)
    assert second > first
    expect(page.get_by_text("still computing")).to_be_visible()
    page.set_viewport_size({"width": 1400, "height": 1800})  # Streamlit scrolls inside the page
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "flow-partial.png"))
    job = running_job(tmp_path)
    page.get_by_role("button", name="Cancel").click()
    expect(page.get_by_text("Job cancelled")).to_be_visible(timeout=30_000)
    fill(page, SHORT_FLOW)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text("5 of 5")).to_be_visible(timeout=60_000)  # the one slot was free again
    from metricflow.jobs import JobStore

    store = JobStore(tmp_path / "cache")
    try:
        assert store.status(job.key).state == "cancelled"
        assert store.result(job.key) is None and store.partial(job.key) is None
    finally:
        store.close()


def test_a_killed_worker_fails_its_job_in_chromium(server, tmp_path, page):
    """A worker killed in the middle of a flow: the job is failed, its partial series is not
    stored as a result, and the next job runs on a fresh worker."""
    import re
    import signal

    from playwright.sync_api import expect

    from metricflow.jobs import JobStore

    page.goto(f"{server}/Kernel_flow")
    page.get_by_label("Train points").wait_for(timeout=60_000)
    fill(page, LONG_FLOW)
    page.get_by_role("button", name="Run", exact=True).click()
    partial_length(page, 1)
    job = running_job(tmp_path)
    os.kill(job.pid, signal.SIGKILL)
    expect(page.get_by_text(re.compile(r"Job failed: the worker process (was killed|died)"))).to_be_visible(
        timeout=30_000)
    assert page.evaluate(PARTIAL_SIGMA) == []
    page.screenshot(path=str(ARTIFACTS / "flow-killed.png"))
    store = JobStore(tmp_path / "cache")
    try:
        assert store.status(job.key).state == "failed"
        assert store.result(job.key) is None and store.partial(job.key) is None
        fill(page, SHORT_FLOW)
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.get_by_text("5 of 5")).to_be_visible(timeout=60_000)
        done = [j for j in store.jobs() if j.kind == "FlowConfig" and j.state == "done"]
        assert done and done[0].pid != job.pid  # a fresh worker
    finally:
        store.close()
