"""A class in chromium against one server: sessions take turns, a shared job runs once, a
session that cancels or closes its tab frees its slot (benchmarks/bench_class.py measures 30).
"""

import math
import os
import re

import pytest

from chromium import ARTIFACTS, CHROMIUM, chromium, fill, serve
from classroom import Student, run_class, server_errors, students

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is absent; install it with apt-get install -y --no-install-recommends chromium fonts-liberation",
)

VISIT = "Points?points_n=500&points_seed=0"


def _runs(cache):
    from metricflow.jobs import JobStore

    store = JobStore(cache)
    try:
        return {job.key: (job.kind, job.state, store.runs(job.key)) for job in store.jobs()}
    finally:
        store.close()


def test_six_sessions_one_shared_job(tmp_path):
    from metricflow.geometry.manifolds import manifold
    from metricflow.geometry.points import SampleConfig
    from metricflow.jobs import JobStore, LocalProcessExecutor, job_key, run_job

    store = JobStore(tmp_path / "cache", executor=LocalProcessExecutor(max_workers=1))
    run_job(SampleConfig(manifold("quintic"), n_points=500, seed=0), store=store)  # the visitor's stored result
    store.close()
    shared = Student("Kernel_flow", "flow_n_train_delta=500&flow_n_test_delta=500&flow_steps_delta=20&flow_seed_delta=7")
    roster = students(points=2, flows=1, theory=1, landing=0) + [shared, shared]
    with serve(tmp_path, METRICFLOW_AUTOSTART="0") as (url, _):
        outcomes, opens, _ = run_class(url, roster, visit=VISIT, timeout=100, stagger=0.2)
    for o in outcomes:
        assert not o.failure, f"{o.student}: {o.failure}"
        assert math.isfinite(o.seconds) and o.errors == [], o
    assert opens and all(math.isfinite(t) for t in opens)  # the stored page opened every time meanwhile
    runs = _runs(tmp_path / "cache")
    assert len(runs) == 6  # 2 Points, 2 flows, 1 theory, and the visitor's
    assert all(state == "done" and count == 1 for _, state, count in runs.values()), runs
    flows = [k for k, (kind, _, _) in runs.items() if kind == "FlowConfig"]
    assert len(flows) == 2  # the two sessions of the shared one asked for one job
    assert server_errors((tmp_path / "streamlit.log").read_text()) == []
    assert job_key(SampleConfig(manifold("quintic"), n_points=500, seed=0)) in runs


LONG = {"Train points": 5000, "Test points": 5000, "Steps": 5000}


def test_cancel_and_closing_the_tab_free_the_slot(tmp_path):
    """One worker: A and B wait for one long flow, C's Points job waits behind it. A cancels:
    the flow goes on for B. B closes its tab: the flow is cancelled and C's job runs."""
    from playwright.sync_api import expect

    with serve(tmp_path, METRICFLOW_AUTOSTART="0", METRICFLOW_WORKERS="1") as (url, _), chromium() as browser:
        pages = {}
        for name in "ABC":
            pages[name] = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        for name in "AB":
            page = pages[name]
            page.goto(f"{url}/Kernel_flow")
            page.get_by_role("button", name="Run", exact=True).wait_for(timeout=60_000)  # the whole form drawn
            fill(page, LONG)
            page.wait_for_timeout(500)
            page.get_by_role("button", name="Run", exact=True).click()
            expect(page.get_by_text("running:")).to_be_visible(timeout=60_000)
        expect(pages["B"].get_by_text("2 sessions wait for this job")).to_be_visible(timeout=10_000)
        c = pages["C"]
        c.goto(f"{url}/Points?points_n=500&points_seed=3")
        c.get_by_role("button", name="Run", exact=True).click()
        expect(c.get_by_text(re.compile(r"queued: number 1 of 1 waiting, expected to start in about \d+"))).to_be_visible(
            timeout=10_000)
        c.screenshot(path=str(ARTIFACTS / "queued.png"))

        pages["A"].get_by_role("button", name="Cancel").click()
        expect(pages["A"].get_by_text("You stopped waiting for this job")).to_be_visible(timeout=10_000)
        expect(pages["B"].get_by_text("running:")).to_be_visible()  # B still waits: it goes on
        pages["B"].wait_for_timeout(1000)
        expect(c.get_by_text("queued: number 1 of 1")).to_be_visible()

        pages["B"].context.close()  # the last session waiting for the flow leaves
        expect(c.get_by_text("σ of g_FS")).to_be_visible(timeout=60_000)  # C's job ran
        runs = _runs(tmp_path / "cache")
        assert sorted((kind, state) for kind, state, _ in runs.values()) == [
            ("FlowConfig", "cancelled"), ("SampleConfig", "done")]
