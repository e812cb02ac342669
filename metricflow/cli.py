"""Command line: ``python -m metricflow SUBCOMMAND ...``.

Each subcommand has an ``add_<name>`` function that declares its options and a ``run_<name>``
function that returns a JSON-ready dict; ``--json`` prints that dict, otherwise a summary.
Bad input exits with status 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from metricflow.errors import MetricflowError

__all__ = ["main"]


def _psi(text: str) -> complex:
    try:
        return complex(text.replace(" ", "").replace("i", "j"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"psi must be a complex number such as 0.5 or 1+0.2j, got {text!r}")


def _int(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not np.isfinite(value) or value != int(value):
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(value)


# ---- sample ---------------------------------------------------------------------------


def add_sample(sub) -> None:
    p = sub.add_parser("sample", help="sample points and report sigma and kappa of the FS metric")
    p.add_argument("--points", type=_int, required=True, help="number of points N")
    p.add_argument("--seed", type=_int, default=0)
    p.add_argument("--manifold", default="quintic", help="quintic, quartic or cubic")
    p.add_argument("--psi", type=_psi, default=0j, help="complex structure parameter (default 0)")


def run_sample(args) -> dict:
    from metricflow.manifolds import manifold
    from metricflow.measures import kappa, sigma
    from metricflow.points import SampleConfig, sample_points

    config = SampleConfig(manifold(args.manifold, args.psi), args.points, args.seed)
    start = time.perf_counter()
    pts = sample_points(config)
    k = float(kappa(pts.g_fs, pts.omega_sq, pts.weights))
    s = float(sigma(pts.g_fs, pts.omega_sq, pts.weights))
    seconds = time.perf_counter() - start
    charts, counts = np.unique(pts.chart, axis=0, return_counts=True)
    return {
        "manifold": config.manifold.name,
        "psi": [config.manifold.psi.real, config.manifold.psi.imag],
        "seed": config.seed,
        "points": len(pts),
        "lines_drawn": pts.lines_drawn,
        "sigma_fs": s,
        "kappa": k,
        "kappa_exact": config.manifold.exact_kappa(),
        "charts": {f"{a},{e}": int(c) for (a, e), c in zip(charts, counts)},
        "seconds": seconds,
    }


def show_sample(r: dict) -> str:
    exact = f" (exact {r['kappa_exact']:.6f})" if r["kappa_exact"] is not None else ""
    return (
        f"{r['points']:,} points on the {r['manifold']} (psi={complex(*r['psi']):g}, seed {r['seed']})\n"
        f"sigma_FS = {r['sigma_fs']:.4f}\nkappa    = {r['kappa']:.6f}{exact}\n"
        f"charts used: {len(r['charts'])}; {r['seconds']:.2f} s"
    )


# ---- entry point ----------------------------------------------------------------------

COMMANDS = {"sample": (add_sample, run_sample, show_sample)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m metricflow", description="Neural-network metric flows on Calabi-Yau manifolds.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _, _ in COMMANDS.values():
        add(sub)
    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, or 2 for bad input)."""
    args = build_parser().parse_args(argv)
    _, run, show = COMMANDS[args.command]
    try:
        result = run(args)
    except MetricflowError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; use fewer points", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else show(result))
    return 0
