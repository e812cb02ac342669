"""The real app in a real browser: streamlit run + Debian's chromium driven by Playwright.

Runs the Points page end to end (a 200-point job in a background worker), waits for the
plotly figures, checks their traces and saves screenshots to test-artifacts/.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is absent; install it with apt-get install -y --no-install-recommends chromium fonts-liberation",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = dict(os.environ, METRICFLOW_CACHE=str(tmp_path / "cache"))
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"streamlit did not start:\n{(tmp_path / 'streamlit.log').read_text()}")
        time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def page():
    """A page of Debian's chromium, driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


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
    page.get_by_role("button", name="Run").click()
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
    page.get_by_role("button", name="Run").click()
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
