"""Dashboard benchmarks in Debian's chromium: how soon a result is drawn after Run.

Starts ``streamlit run app.py`` on a loopback port with a fresh store in a temporary folder
and drives the pages with Playwright, as a visitor would:

  points     Run to first drawn result, Points with 2,000 points (distinct seeds)
  flow       Run to first drawn result, delta flow, 1,000 + 1,000 points, 50 steps
  landing    a fresh server and cold store: the landing page's first curve, and its whole
             quick comparison (a new server per run)
  growth     distinct lengths of the sigma curve drawn during a flow of 10,000 + 2,500
             points and 200 steps, before its result

The server is warm for points, flow and growth: one run of each first, not timed. Each case
reports the median of ``--runs`` runs (default 5), and the machine's load average before.

  python benchmarks/bench_dashboard.py [--runs 5] [--cases points,flow,growth,landing]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/device.py, however the script is started
from device import print_device  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from chromium import chromium, fill, peak_memory, serve  # noqa: E402  (the chromium tests' server and browser)

# A signature of the figures on the page: every plot's title and its first trace's first values.
FIGURES = """Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => {
  const t = d._fullData && d._fullData[0];
  const title = d.layout && d.layout.title ? String(d.layout.title.text || '').replace(/<\\/?b>/g, '') : '';
  return [title, t ? t.name || '' : '', t && t.y ? Array.from(t.y).slice(0, 3).map(String).join(',') : '',
          t && t.x ? Array.from(t.x).slice(0, 3).map(String).join(',') : '',
          d.data ? d.data.map(u => u.name || '').join('|') : ''].join('~');
})"""


PEAKS: list[float] = []  # peak resident memory (MiB) of each server with its workers


@contextmanager
def server(folder: Path, **env):
    """A dashboard server on ``folder``/cache (``chromium.serve``); yields its URL. Its peak
    memory, with its workers', goes to PEAKS when it stops."""
    with serve(folder, **env) as (url, proc):
        peaks = {"total": 0.0}
        try:
            with peak_memory(proc) as peaks:
                yield url
        finally:
            PEAKS.append(peaks["total"])


def wait_for(page, test, timeout: float = 120.0, every: float = 0.02):
    """Poll ``test()`` until it returns a true value; return (value, seconds waited)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        value = test()
        if value:
            return value, time.perf_counter() - start
        page.wait_for_timeout(every * 1000)
    raise SystemExit(f"timed out after {timeout} s")


def run_to_drawn(page, accept, seen: set, count: int = 1) -> float:
    """Click Run; seconds until ``count`` figures never seen before on the page satisfy
    ``accept``. ``seen`` holds the figures of the earlier runs (updated here)."""
    seen.update(page.evaluate(FIGURES))
    page.get_by_role("button", name="Run", exact=True).click()
    start = time.perf_counter()
    wait_for(page, lambda: len([f for f in page.evaluate(FIGURES) if f not in seen and accept(f)]) >= count)
    took = time.perf_counter() - start
    page.wait_for_timeout(3000)  # let the run end before the next
    seen.update(page.evaluate(FIGURES))
    return took


def points_case(page, url: str, runs: int) -> list[float]:
    page.goto(f"{url}/Points")
    page.get_by_label("Points N").wait_for(timeout=60_000)
    times, seen = [], set()
    for seed in range(100, 101 + runs):  # the first (seed 100) warms the server up
        fill(page, {"Points N": 2000, "Seed": seed})
        times.append(run_to_drawn(page, lambda f: True, seen, count=4))  # all four figures of the result
    return times[1:]


def flow_case(page, url: str, runs: int) -> list[float]:
    page.goto(f"{url}/Kernel_flow")
    page.get_by_label("Train points").wait_for(timeout=60_000)
    times, seen = [], set()
    for seed in range(100, 101 + runs):
        fill(page, {"Train points": 1000, "Test points": 1000, "Steps": 50, "Seed": seed})
        # the partial sigma curve, or the result's curve of this seed
        times.append(run_to_drawn(page, lambda f, s=seed: "(computing)" in f or re.search(rf"seed {s}(?!\d)", f), seen))
    return times[1:]


PARTIAL_LENGTH = """Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter(d => d.layout && d.layout.title && String(d.layout.title.text || '').includes('σ per step (computing)'))
  .map(d => d._fullData[0].y.length)"""


def growth_case(page, url: str, runs: int) -> list[int]:
    page.goto(f"{url}/Kernel_flow")
    page.get_by_label("Train points").wait_for(timeout=60_000)
    counts = []
    for seed in range(100, 101 + runs):
        fill(page, {"Train points": 10000, "Test points": 2500, "Steps": 200, "Seed": seed})
        page.get_by_role("button", name="Run", exact=True).click()
        seen, end = set(), time.monotonic() + 300
        while time.monotonic() < end:
            lengths = page.evaluate(PARTIAL_LENGTH)
            seen.update(lengths)
            if any(re.search(rf"seed {seed}(?!\d)", f) for f in page.evaluate(FIGURES)):
                break  # the result's curve of this run
            page.wait_for_timeout(50)
        counts.append(len(seen))
    return counts[1:]


# The landing page: a curve of a method (not the g_FS reference line) with at least one point.
LANDING_CURVES = """Array.from(document.querySelectorAll('.js-plotly-plot'))
  .map(d => (d._fullData || []).filter(t => t.name && !String(t.name).startsWith('g_FS') && t.y && t.y.length > 0).length)
  .reduce((a, b) => a + b, 0)"""


def landing_case(runs: int) -> tuple[list[float], list[float]]:
    first, whole = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as folder, server(Path(folder), METRICFLOW_AUTOSTART="1") as url:
            with chromium() as browser:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                start = time.perf_counter()
                page.goto(url)
                wait_for(page, lambda: page.evaluate(LANDING_CURVES) > 0, timeout=300, every=0.1)
                first.append(time.perf_counter() - start)
                wait_for(page, lambda: page.get_by_text("memory is each job's estimated peak").count() > 0, timeout=600, every=0.2)
                whole.append(time.perf_counter() - start)
                page.screenshot(path=str(Path(tempfile.gettempdir()) / "bench-landing.png"), full_page=True)
    return first, whole


class _Rows(list):
    """The report's lines, each printed as it comes."""

    def append(self, line: str) -> None:
        print(line, flush=True)
        super().append(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", default="points,flow,growth,landing")
    args = parser.parse_args()
    print_device()
    cases = args.cases.split(",")
    rows = _Rows()
    rows.append(f"load average before: {os.getloadavg()[0]:.2f}")
    if {"points", "flow", "growth"} & set(cases):
        with tempfile.TemporaryDirectory() as folder, server(Path(folder), METRICFLOW_AUTOSTART="0") as url:
            with chromium() as browser:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                if "points" in cases:
                    t = points_case(page, url, args.runs)
                    rows.append(f"| Run to first drawn result: Points, 2,000 points | ≤ 1.5 s | "
                                f"{statistics.median(t):.2f} s ({', '.join(f'{x:.2f}' for x in t)}) |")
                if "flow" in cases:
                    t = flow_case(page, url, args.runs)
                    rows.append(f"| Run to first drawn result: delta flow 1,000 + 1,000, 50 steps | ≤ 1.5 s | "
                                f"{statistics.median(t):.2f} s ({', '.join(f'{x:.2f}' for x in t)}) |")
                if "growth" in cases:
                    n = growth_case(page, url, args.runs)
                    rows.append(f"| distinct σ-curve lengths drawn, flow 10,000 + 2,500, 200 steps | ≥ 5 | "
                                f"{statistics.median(n):g} ({', '.join(map(str, n))}) |")
        rows.append(f"peak memory, server and its workers: {PEAKS[-1]:,.0f} MiB")
    if "landing" in cases:
        before = len(PEAKS)
        first, whole = landing_case(args.runs)
        rows.append(f"| landing page, cold store: first curve drawn | ≤ 10 s | {statistics.median(first):.1f} s "
                    f"({', '.join(f'{x:.1f}' for x in first)}) |")
        rows.append(f"| landing page, cold store: whole quick comparison | ≤ 60 s | {statistics.median(whole):.1f} s "
                    f"({', '.join(f'{x:.1f}' for x in whole)}) |")
        rows.append(f"peak memory, server and its workers (landing, largest of the runs): {max(PEAKS[before:]):,.0f} MiB")
    rows.append(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
