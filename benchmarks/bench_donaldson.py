"""Donaldson benchmark: the T-operator iteration at k = 1..6 on 10^5 Fermat quintic points.

For each k, in a fresh process (so that its peak resident memory, ru_maxrss, is its own):
build the sections of the N points, run ``--iterations`` T-operator iterations (h -> T(h)^-1)
and time them, then the metric g_k on 10^4 test points. An iteration costs about 2 N N_k^2
complex multiply-adds; the column "GMAC/s" is that count over the measured time.

Run from the repository root: ``nice -n 10 python benchmarks/bench_donaldson.py [--points N]
[--iterations I] [--ks 1,2,3,4,5,6]``.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/device.py, however the script is started
from device import print_device  # noqa: E402

RUNNER = """
import json, resource, time
import numpy as np
from metricflow.flows.donaldson import balance, initial_h, metric, monomial_exponents, sections, BLOCK
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.points import SampleConfig, sample_points
k, n, iterations = {k}, {n}, {iterations}
pts = sample_points(SampleConfig(Manifold(5, 0), n, seed=0))
test = pts.subset(slice(0, 10_000))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
e = monomial_exponents(5, k)
t = time.perf_counter()
s = np.concatenate([sections(pts.z[a : a + BLOCK], e) for a in range(0, n, BLOCK)])
t_sections = time.perf_counter() - t
t = time.perf_counter()
bal = balance(s, pts.weights, initial_h(e), 1e-300, iterations)
t_iter = (time.perf_counter() - t) / iterations
t = time.perf_counter()
metric(test, bal.h, k, e)
t_metric = time.perf_counter() - t
print(json.dumps({{"n_k": len(e), "sections": t_sections, "iteration": t_iter, "metric_1e4": t_metric,
                  "change": float(bal.residuals[-1]), "base_mib": base,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--ks", default="1,2,3,4,5,6")
    args = parser.parse_args()
    print_device()
    print(f"{args.points:,} points, {args.iterations} iterations per k")
    print("| k | N_k | sections (s) | s per iteration | GMAC/s | metric on 10^4 points (s) | peak RSS (MiB) | after sampling (MiB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for k in (int(v) for v in args.ks.split(",")):
        code = RUNNER.format(k=k, n=args.points, iterations=args.iterations)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rate = 2 * args.points * r["n_k"] ** 2 / r["iteration"] / 1e9
        print(f"| {k} | {r['n_k']} | {r['sections']:.2f} | {r['iteration']:.2f} | {rate:.2f} | "
              f"{r['metric_1e4']:.2f} | {r['peak_mib']:.0f} | {r['base_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
