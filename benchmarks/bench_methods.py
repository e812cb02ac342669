"""Methods-compared benchmark: wall time and peak memory of the quick preset (the landing
page's target: the whole comparison within 60 s and its first curve within 10 s, on 2 idle
cores with warm workers).

Serial (default): every method in this process, one after another (``serial_map``), so the
wall time is the sum of the methods' and the peak resident memory (ru_maxrss) is the largest
of them, with JAX and TensorFlow loaded. ``--jobs``: as the dashboard runs it, each method a
cached job on the local worker pool of a fresh job store (2 workers, the pieces in
``RUN_ORDER``; peak memory is then per worker and not reported): it also reports when the
first piece finished (the page's first curve), and per piece its wall time in its worker
(start-up, imports and compute) against its compute time (the result's own seconds).

Run from the repository root: ``nice -n 10 python benchmarks/bench_methods.py [--preset quick]
[--jobs] [--set n_test=5000 ...] [--json]``.
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/device.py, however the script is started
from device import print_device  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metricflow.progress import serial_map  # noqa: E402
from metricflow.studies.methods import (  # noqa: E402
    MethodsConfig, estimate_methods, run_methods, run_order,
)


def _piece_name(config) -> str:
    name = type(config).__name__.replace("Config", "")
    detail = getattr(getattr(config, "kernel", None), "name", None) or getattr(config, "model", "")
    return f"{name} {detail}".strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--jobs", action="store_true", help="run each method as a job on the local pool")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=INT",
                        help="change a size of the preset, e.g. --set n_test=5000 (repeatable)")
    args = parser.parse_args()
    print_device()
    changes = {k: int(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = MethodsConfig.preset(args.preset, **changes)
    cost = estimate_methods(config)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_before = os.getloadavg()[0]
    first, pieces = [None], []
    t0 = time.perf_counter()

    def progress(done, total, message=""):
        if done >= 1 and first[0] is None:
            first[0] = time.perf_counter() - t0

    if args.jobs:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["METRICFLOW_CACHE"] = tmp
            from metricflow.jobs import JobStore, StoreMap, job_key

            store = JobStore(tmp)
            try:
                start = time.time()
                result = run_methods(config, progress=progress, map_configs=StoreMap(store))
                for i in run_order(config.configs()):
                    piece = config.configs()[i]
                    st, r = store.status(job_key(piece)), store.result(job_key(piece))
                    pieces.append({"piece": _piece_name(piece), "done_at": st.finished - start,
                                   "worker_seconds": st.finished - st.started,
                                   "compute_seconds": float(getattr(r, "total_seconds", None) or r.seconds)})
            finally:
                store.close()
    else:
        result = run_methods(config, progress=progress, map_configs=serial_map)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "preset": args.preset, "mode": "jobs" if args.jobs else "serial", "wall_seconds": wall,
        "sum_of_job_seconds": result.seconds, "estimate_seconds": cost.seconds,
        "estimate_peak_mib": cost.bytes / 2**20, "peak_rss_mib": None if args.jobs else peak,
        "rss_before_mib": base, "load_average": os.getloadavg()[0], "load_before": load_before,
        "first_piece_seconds": first[0], "pieces": pieces, "sigma_fs": result.sigma_fs,
        "sigma_fs_se": result.sigma_fs_se, "table": result.table(),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"preset {args.preset} ({out['mode']}): {wall:.0f} s wall, jobs {result.seconds:.0f} s, "
          f"estimate {cost.seconds:.0f} s; peak RSS {peak:,.0f} MiB (estimate {cost.bytes / 2**20:,.0f} MiB); "
          f"first piece done at {first[0]:.1f} s; load {load_before:.1f} before, {out['load_average']:.1f} after; "
          f"σ_FS {result.sigma_fs:.4f} ± {result.sigma_fs_se:.4f}")
    for p in pieces:
        print(f"  {p['piece']:<20} done at {p['done_at']:5.1f} s, {p['worker_seconds']:5.1f} s in its worker, "
              f"{p['compute_seconds']:5.1f} s computing")
    print("| method | best σ | ± | at | seconds | points | parameters | memory estimate (MiB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in out["table"]:
        print(f"| {r['method']} | {r['best_sigma']:.4f} | {r['best_sigma_se']:.4f} | {r['at']} | {r['seconds']:.1f} | "
              f"{r['points']:,} | {r['parameters']:,} | {r['memory_mib']:,.0f} |")


if __name__ == "__main__":
    main()
