"""Time and peak memory of the clusterings of section 3.1 at 10^5 points.

Each case runs in its own subprocess so that ru_maxrss is that case's peak. Prints a markdown
table and the machine's load (``uptime``), since other work inflates the timings. Usage:

  python benchmarks/bench_clustering.py            # 10^5 points: batched (M = 10^4) and graph
  python benchmarks/bench_clustering.py --quick    # 2 x 10^4 points
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/device.py, however the script is started
from device import print_device  # noqa: E402

CHILD = """
import json, resource, sys, time
import numpy as np
from metricflow.studies.clustering import cluster_labels, fs_silhouette, _sample
from metricflow.geometry.distance import fs_distance_matrix
from metricflow.geometry.points import SampleConfig, sample_points
method, n, clusters, batches, k = json.loads(sys.argv[1])
pts = sample_points(SampleConfig(n_points=n, seed=0))
start = time.perf_counter()
labels = cluster_labels(method, pts.z, clusters, n_batches=batches, seed=0, neighbours=k, features=pts.features)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
idx = _sample(n, 5000, 0, 2)
score = fs_silhouette(fs_distance_matrix(pts.z[idx]), labels[idx])
sizes = np.bincount(labels, minlength=clusters)
print(json.dumps({"seconds": seconds, "peak_mib": peak, "silhouette": score,
                  "smallest": int(sizes.min()), "largest": int(sizes.max())}))
"""


def run_case(method: str, n: int, clusters: int, batches: int, k: int) -> dict:
    p = subprocess.run([sys.executable, "-c", CHILD, json.dumps([method, n, clusters, batches, k])],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print_device()
    n = 20_000 if args.quick else 100_000
    # the paper: M = 10^4 points a batch, about 5000 points a cluster (C = N / 5000)
    clusters, batches = max(2, n // 5000), max(1, n // 10_000)
    cases = [("batched", n, clusters, batches, 6), ("graph", n, clusters, 1, 6), ("birch", n, clusters, 1, 6)]
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print("| method | points | clusters | batches | seconds | peak RSS (MiB) | silhouette (5000-point sample) | smallest / largest cluster |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for method, n_, c, b, k in cases:
        r = run_case(method, n_, c, b, k)
        if "error" in r:
            print(f"| {method} | {n_:,} | {c} | {b} | error: {r['error']} | | | |")
            continue
        print(f"| {method} | {n_:,} | {c} | {b if method == 'batched' else '–'} | {r['seconds']:.1f} | {r['peak_mib']:.0f} | "
              f"{r['silhouette']:+.4f} | {r['smallest']:,} / {r['largest']:,} |", flush=True)
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
