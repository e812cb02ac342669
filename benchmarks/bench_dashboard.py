"""Dashboard benchmarks: a cached page render, and how fast launching a job returns.

Runs the Points page under AppTest with a fresh store in a temporary folder: the first run
computes a 2,000-point job in the background; later runs find it cached. Run from the
repository root: ``python benchmarks/bench_dashboard.py``.
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    os.environ["METRICFLOW_CACHE"] = tempfile.mkdtemp()
    from streamlit.testing.v1 import AppTest

    from metricflow import SampleConfig, manifold
    from metricflow.studies.sample import run_sample  # noqa: F401  (registers the job kind)
    from metricflow.jobs import JobStore

    store = JobStore()
    config = SampleConfig(manifold("quintic"), 2000, seed=0)
    t = time.perf_counter()
    key = store.submit(config)
    submit = time.perf_counter() - t
    while store.status(key).state != "done":
        time.sleep(0.1)

    at = AppTest.from_file(str(ROOT / "pages" / "1_Points.py"), default_timeout=120)
    t = time.perf_counter()
    at.run()  # first load: imports JAX, plotly
    first = time.perf_counter() - t
    at.number_input[0].set_value(2000)
    at.button[0].click().run()
    times = []
    for _ in range(5):
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t)
    assert at.metric, "the cached result did not show"
    print("| case | seconds |\n| --- | ---: |")
    print(f"| submit a job (returns to the page) | {submit:.3f} |")
    print(f"| first load of the Points page (imports) | {first:.2f} |")
    print(f"| cached Points page render, 2,000 points, median of 5 | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
