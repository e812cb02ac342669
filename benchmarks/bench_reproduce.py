"""``reproduce --quick`` in one process against its pieces fanned out on a 2-worker LocalCluster.

    python benchmarks/bench_reproduce.py

Each mode starts from an empty store in a temporary folder, so both compute every piece.
The single process runs the 13 pieces one after another; the cluster mode submits them all
at once (``reproduce(..., parallel=True)``) to a Dask LocalCluster of 2 worker processes on
this machine. Prints the wall times, the ideal speed-up and the per-piece times.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/device.py, however the script is started
from device import print_device  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, as a script


def main() -> None:
    print_device()
    from distributed import Client, LocalCluster

    from metricflow.jobs import DaskExecutor
    from metricflow.jobs import JobStore
    from metricflow.reproduce import ReproduceConfig, reproduce

    config = ReproduceConfig(quick=True)
    with tempfile.TemporaryDirectory() as directory:
        os.environ["METRICFLOW_CACHE"] = str(Path(directory) / "single")
        t = time.perf_counter()
        single = reproduce(config, Path(directory) / "out1", progress=False)
        single_seconds = time.perf_counter() - t

        t = time.perf_counter()
        cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
        client = Client(cluster, set_as_default=False)
        startup = time.perf_counter() - t
        store = JobStore(Path(directory) / "dask", executor=DaskExecutor(client))
        t = time.perf_counter()
        fanned = reproduce(config, Path(directory) / "out2", store=store, progress=False, parallel=True)
        dask_seconds = time.perf_counter() - t
        store.close()
        client.close()
        cluster.close()

    print(f"reproduce --quick, 13 pieces; load before/after: {os.getloadavg()}")
    print("| mode | wall time (s) |\n| --- | ---: |")
    print(f"| one process, pieces in turn | {single_seconds:.0f} |")
    print(f"| 2-worker LocalCluster start-up | {startup:.1f} |")
    print(f"| 2-worker LocalCluster, pieces at once | {dask_seconds:.0f} |")
    print(f"| speed-up (ideal 2x) | {single_seconds / dask_seconds:.2f}x |")
    print("\n| piece | one process (s) | on a worker (s) |\n| --- | ---: | ---: |")
    for a, b in zip(single.records, fanned.records):
        print(f"| {a.section}: {a.name} | {a.seconds:.1f} | {b.seconds:.1f} |")


if __name__ == "__main__":
    main()
