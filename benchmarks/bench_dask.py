"""Fan-out of N independent small flow jobs on a 2-worker Dask LocalCluster vs one process.

    python benchmarks/bench_dask.py [--jobs 8] [--points 1000] [--steps 50]

Reports where the time goes: cluster start-up, each worker's first job (JAX import and JIT
compilation), and the warm compute of a second batch with new seeds, against the same flows
run one after another in this process (cold: first JAX/JIT use here; warm: a second batch).
The ideal speedup on 2 workers is 2x for the warm compute; start-up and first-job costs are
paid once per worker. ``benchmarks/bench_reproduce.py`` times ``reproduce --quick`` the same way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/device.py, however the script is started
from device import print_device  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, as a script


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    print_device()

    t = time.perf_counter()
    from distributed import Client, LocalCluster

    from metricflow.jobs import DaskExecutor, run_many
    from metricflow.flows.flow import FlowConfig
    from metricflow.jobs import JobStore, run_job

    imports = time.perf_counter() - t
    flows = lambda base: [  # noqa: E731
        FlowConfig(kernel="delta", n_train=args.points, n_test=args.points, steps=args.steps, seed=base + s)
        for s in range(args.jobs)
    ]

    def serial(configs):
        t = time.perf_counter()
        for c in configs:
            run_job(c, cache=False)
        return time.perf_counter() - t

    serial_cold, serial_warm = serial(flows(0)), serial(flows(100))

    t = time.perf_counter()
    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
    client = Client(cluster, set_as_default=False)
    startup = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as directory:
        store = JobStore(directory, executor=DaskExecutor(client))
        t = time.perf_counter()
        run_many(flows(0), store)
        dask_cold = time.perf_counter() - t
        t = time.perf_counter()
        run_many(flows(100), store)
        dask_warm = time.perf_counter() - t
        t = time.perf_counter()
        run_many(flows(100), store)
        cached = time.perf_counter() - t
        per_job = [s.seconds for s in store.jobs()]
        store.close()
    client.close()
    cluster.close()

    n = args.jobs
    print(f"{n} delta flows, {args.points} train + {args.points} test points, {args.steps} steps; 2 workers vs 1 process")
    print(f"imports here (metricflow, dask):         {imports:6.2f} s")
    print(f"one process, cold (JAX import/JIT here):  {serial_cold:6.2f} s")
    print(f"one process, warm:                        {serial_warm:6.2f} s  ({serial_warm / n:.2f} s per flow)")
    print(f"cluster start-up (2 worker processes):    {startup:6.2f} s")
    print(f"dask, cold (JAX import/JIT per worker):   {dask_cold:6.2f} s")
    print(f"dask, warm:                               {dask_warm:6.2f} s  -> speedup {serial_warm / dask_warm:.2f}x (ideal 2x)")
    print(f"dask, all cached (a rerun):               {cached:6.2f} s")
    print(f"job wall times as recorded in the store: median {sorted(per_job)[len(per_job) // 2]:.2f} s "
          f"(includes waiting for the client's poll)")


if __name__ == "__main__":
    main()
