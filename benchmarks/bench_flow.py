"""Time per step and peak memory of the kernel flow (3.5) for each kernel and size.

Each case runs in its own subprocess so that ru_maxrss is that case's peak. Prints a
markdown table. Usage:

  python benchmarks/bench_flow.py                      # all cases, covariant update (several minutes)
  python benchmarks/bench_flow.py --quick              # 2500-point cases only
  python benchmarks/bench_flow.py --large              # the 10^5-point cases only
  python benchmarks/bench_flow.py --update euclidean   # the coordinate update (lr 1e-4)

The covariant update runs at the table 1 learning rate with the log loss; the euclidean one at
lr 1e-4 with normalised updates, so that every case runs all its steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/device.py, however the script is started
from device import print_device  # noqa: E402

# (kernel, n_train, n_test, options): dense kernels stop at 10^4 points (a 10^5 x 10^5
# float64 matrix is 75 GiB); the local kernels run at 10^5.
CASES = [
    ("relu-ntk", 2500, 2500, {}),
    ("gaussian", 2500, 2500, {}),
    ("gaussian", 2500, 2500, {"radius": 0.4}),
    ("delta", 2500, 2500, {}),
    ("cosnet", 2500, 2500, {"width": 4096}),
    ("relu-ntk", 10_000, 2500, {}),
    ("gaussian", 10_000, 2500, {}),
    ("gaussian", 10_000, 2500, {"radius": 0.3}),
    ("delta", 10_000, 2500, {}),
    ("gaussian", 100_000, 10_000, {"radius": 0.2}),
    ("delta", 100_000, 10_000, {}),
]

CHILD = """
import json, resource, sys, time
from metricflow.flows.flow import flow_from_options, run_flow
kernel, n_train, n_test, steps, options, update = json.loads(sys.argv[1])
lr = 1e-4 if update == "euclidean" else None  # euclidean: small, with normalised updates, so every case runs all its steps
stamps = {}
start = time.perf_counter()
r = run_flow(flow_from_options(kernel=kernel, n_train=n_train, n_test=n_test, steps=steps, lr=lr, normalise=True, weighted=False,
                        update=update, **options),
             progress=lambda step, total, message: stamps.__setitem__(step, time.perf_counter()))
print(json.dumps({
    "total_s": time.perf_counter() - start, "kernel_s": r.kernel_seconds, "drawn": r.points_drawn,
    "step_s": (stamps[r.steps_done] - stamps[1]) / (r.steps_done - 1) if r.steps_done > 1 else None, "stopped": r.stopped_reason,
    "steps_done": r.steps_done, "train_gain": r.train_gain, "test_gain": r.test_gain,
    "isolated": r.isolated_test, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def run_case(kernel, n_train, n_test, options, steps, update="covariant"):
    """Run one flow in a fresh interpreter; time per step from the progress callback."""
    p = subprocess.run([sys.executable, "-c", CHILD, json.dumps([kernel, n_train, n_test, steps, options, update])],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--large", action="store_true", help="only the 10^5-point cases")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--update", default="covariant", choices=["covariant", "euclidean"])
    args = parser.parse_args()
    print_device()
    print(f"{args.update} update")
    print("| kernel | options | train | test | total 50 steps (s) | kernel (s) | per step (ms) | peak RSS (MiB) | drawn |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kernel, n_train, n_test, options in CASES:
        if (args.quick and n_train > 2500) or (args.large and n_train < 100_000):
            continue
        r = run_case(kernel, n_train, n_test, options, args.steps, args.update)
        opts = ", ".join(f"{k}={v}" for k, v in options.items()) or "-"
        if "error" in r:
            print(f"| {kernel} | {opts} | {n_train:,} | {n_test:,} | failed: {r['error']} |||||")
        else:
            step = "-" if r["step_s"] is None else f"{1000 * r['step_s']:.1f}"
            note = f" ({r['stopped']})" if r["stopped"] else ""
            print(f"| {kernel} | {opts} | {n_train:,} | {n_test:,} | {r['total_s']:.1f} | {r['kernel_s']:.1f} | "
                  f"{step} | {r['peak_mib']:.0f} | {r['drawn']:,}{note} |", flush=True)


if __name__ == "__main__":
    main()
