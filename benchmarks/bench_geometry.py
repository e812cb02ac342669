"""Geometry benchmarks: sampling 10^5 quintic points, and exact nearest-neighbour distances.

Each case runs in a fresh process, so its peak resident memory (ru_maxrss) is its own.
Run from the repository root: ``python benchmarks/bench_geometry.py``.
"""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/device.py, however the script is started
from device import print_device  # noqa: E402

CASES = {
    "sample 10^5 quintic points (z, Omega, pullback, g_FS, weights)": """
from metricflow import SampleConfig, manifold, sample_points
sample_points(SampleConfig(manifold("quintic"), 2000, seed=1))  # warm-up
t = time.perf_counter()
pts = sample_points(SampleConfig(manifold("quintic"), 100_000, seed=0))
seconds = time.perf_counter() - t
""",
    "sample 10^5 points and sigma_FS, kappa": """
from metricflow import SampleConfig, manifold, sample_points, sigma, kappa
pts = sample_points(SampleConfig(manifold("quintic"), 2000, seed=1)); sigma(pts.g_fs, pts.omega_sq, pts.weights)
t = time.perf_counter()
pts = sample_points(SampleConfig(manifold("quintic"), 100_000, seed=0))
float(sigma(pts.g_fs, pts.omega_sq, pts.weights)); float(kappa(pts.g_fs, pts.omega_sq, pts.weights))
seconds = time.perf_counter() - t
""",
    "exact nearest-neighbour FS distances of 10^5 quintic points": """
from metricflow import SampleConfig, manifold, sample_points, nearest_neighbour_stats
pts = sample_points(SampleConfig(manifold("quintic"), 100_000, seed=0))
t = time.perf_counter()
stats = nearest_neighbour_stats(pts.z)
seconds = time.perf_counter() - t
""",
}

RUNNER = """
import json, resource, time
{body}
print(json.dumps({{"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main():
    print_device()
    print("| case | seconds | peak RSS (MiB) |\n| --- | ---: | ---: |")
    for name, body in CASES.items():
        out = subprocess.run([sys.executable, "-c", RUNNER.format(body=body)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['seconds']:.2f} | {r['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
