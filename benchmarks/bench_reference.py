"""The reference kappa off the Fermat point: 10^6 points, time and peak memory.

Each case runs in a fresh process, so its peak resident memory (ru_maxrss) is its own.
Run from the repository root: ``python benchmarks/bench_reference.py``.
"""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/device.py, however the script is started
from device import print_device  # noqa: E402

CASES = {
    "reference kappa, quintic psi = 0.5, 10^6 points": "0.5",
    "reference kappa, quintic psi = 10+3i, 10^6 points": "10+3j",
}

RUNNER = """
import json, resource, time
from metricflow import manifold
from metricflow.geometry.reference import REFERENCE_POINTS, REFERENCE_SEED, estimate_kappa
estimate_kappa(manifold("quintic", psi=complex("{psi}")), 2000, 1)  # warm-up
t = time.perf_counter()
k = estimate_kappa(manifold("quintic", psi=complex("{psi}")), REFERENCE_POINTS, REFERENCE_SEED)
seconds = time.perf_counter() - t
print(json.dumps({{"seconds": seconds, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "kappa": k.value, "se": k.se}}))
"""


def main() -> None:
    print_device()
    print("| case | kappa | seconds | peak RSS (MiB) |")
    print("| --- | ---: | ---: | ---: |")
    for name, psi in CASES.items():
        out = subprocess.run([sys.executable, "-c", RUNNER.format(psi=psi)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {name} | {r['kappa']:.6f} ± {r['se']:.6f} | {r['seconds']:.1f} | {r['peak_mib']:.0f} |")


if __name__ == "__main__":
    main()
