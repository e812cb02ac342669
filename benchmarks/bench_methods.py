"""Methods-compared benchmark: wall time and peak memory of the quick preset (issue 17: at
most 5 minutes on 2 cores).

Serial (default): every method in this process, one after another (``serial_map``), so the
wall time is the sum of the methods' and the peak resident memory (ru_maxrss) is the largest
of them, with JAX and TensorFlow loaded. ``--jobs``: as the dashboard runs it, each method a
cached job on the local worker pool of a fresh job store (in parallel; peak memory is then
per worker and not reported).

Run from the repository root: ``nice -n 10 python benchmarks/bench_methods.py [--preset quick]
[--jobs] [--json]``.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metricflow.progress import serial_map  # noqa: E402
from metricflow.studies.methods import MethodsConfig, estimate_methods, run_methods  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--jobs", action="store_true", help="run each method as a job on the local pool")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = MethodsConfig.preset(args.preset)
    cost = estimate_methods(config)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if args.jobs:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["METRICFLOW_CACHE"] = tmp
            from metricflow.jobs import JobStore, StoreMap

            store = JobStore(tmp)
            try:
                result = run_methods(config, map_configs=StoreMap(store))
            finally:
                store.close()
    else:
        result = run_methods(config, map_configs=serial_map)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "preset": args.preset, "mode": "jobs" if args.jobs else "serial", "wall_seconds": wall,
        "sum_of_job_seconds": result.seconds, "estimate_seconds": cost.seconds,
        "estimate_peak_mib": cost.bytes / 2**20, "peak_rss_mib": None if args.jobs else peak,
        "rss_before_mib": base, "load_average": os.getloadavg()[0],
        "table": result.table(),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"preset {args.preset} ({out['mode']}): {wall:.0f} s wall, jobs {result.seconds:.0f} s, "
          f"estimate {cost.seconds:.0f} s; peak RSS {peak:,.0f} MiB (estimate {cost.bytes / 2**20:,.0f} MiB); "
          f"load {out['load_average']:.1f}")
    print("| method | best σ | ± | at | seconds | points | parameters | memory estimate (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in out["table"]:
        print(f"| {r['method']} | {r['best_sigma']:.4f} | {r['best_sigma_se']:.4f} | {r['at']} | {r['seconds']:.1f} | "
              f"{r['points']:,} | {r['parameters']:,} | {r['memory_mib']:,.0f} |")


if __name__ == "__main__":
    main()
