"""Command line: ``python -m metricflow SUBCOMMAND ...``.

Each subcommand has an ``add_<name>`` function that declares its options and a ``run_<name>``
function that returns a JSON-ready dict; ``--json`` prints that dict, otherwise a summary.
Bad input exits with status 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

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
    p.add_argument("--no-cache", action="store_true", help="compute afresh; do not read or write the result store")


def run_sample(args) -> dict:
    from metricflow.jobs import run_job
    from metricflow.manifolds import manifold
    from metricflow.points import SampleConfig

    config = SampleConfig(manifold(args.manifold, args.psi), args.points, args.seed)
    return run_job(config, cache=not args.no_cache).summary()


def show_sample(r: dict) -> str:
    exact = f" (exact {r['kappa_exact']:.6f})" if r["kappa_exact"] is not None else ""
    return (
        f"{r['points']:,} points on the {r['manifold']} (psi={complex(*r['psi']):g}, seed {r['seed']})\n"
        f"sigma_FS = {r['sigma_fs']:.4f}\nkappa    = {r['kappa']:.6f}{exact}\n"
        f"charts used: {len(r['charts'])}; {r['seconds']:.2f} s"
    )


# ---- flow -----------------------------------------------------------------------------


def _chart(text: str) -> tuple:
    try:
        a, b = (int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"chart must be two indices such as 0,1, got {text!r}") from None
    return (a, b)


def add_flow(sub) -> None:
    p = sub.add_parser("flow", help="run a kernel metric flow (eq. 3.5) and report sigma on train and test")
    p.add_argument("--kernel", required=True, help="relu-ntk, gaussian, delta or cosnet")
    p.add_argument("--loss", default="sigma", help="sigma, ultralocal or entropy (default sigma)")
    p.add_argument("--train", type=_int, default=None, help="train points (default: table 1)")
    p.add_argument("--test", type=_int, default=None, help="test points (default: as train)")
    p.add_argument("--steps", type=_int, default=50)
    p.add_argument("--lr", type=float, default=None, help="step size (default: table 1)")
    p.add_argument("--sigma", type=float, default=None, help="gaussian width (default 30)")
    p.add_argument("--squared", action="store_true", help="gaussian of d^2 / (2 sigma^2)")
    p.add_argument("--radius", type=float, default=None, help="gaussian cutoff radius: sparse kernel")
    p.add_argument("--normalise", action="store_true", help="divide updates by kernel row sums")
    p.add_argument("--unweighted", action="store_true", help="pointwise loss without the CY weights")
    p.add_argument("--depth", type=_int, default=None, help="relu-ntk hidden layers (default 1)")
    p.add_argument("--sigma-w", type=float, default=None, help="relu-ntk W_std / cosnet sigma_w")
    p.add_argument("--sigma-b", type=float, default=None, help="relu-ntk b_std")
    p.add_argument("--width", type=_int, default=None, help="cosnet width (default: analytic kernel)")
    p.add_argument("--clip", type=float, default=None, help="max |lr update|_F / |g|_F per point")
    p.add_argument("--chart", type=_chart, default=None, help="common chart scale,elim (default: most common)")
    p.add_argument("--coordinates", default="reject", help="reject (paper) or transform")
    p.add_argument("--seed", type=_int, default=0)
    p.add_argument("--manifold", default="quintic", help="quintic, quartic or cubic")
    p.add_argument("--psi", type=_psi, default=0j, help="complex structure parameter (default 0)")


def run_flow(args) -> dict:
    from metricflow.flow import FlowConfig
    from metricflow.flow import run_flow as flow
    from metricflow.manifolds import manifold

    config = FlowConfig(
        kernel=args.kernel, loss=args.loss, n_train=args.train, n_test=args.test, steps=args.steps,
        lr=args.lr, sigma=args.sigma, squared=args.squared, radius=args.radius, normalise=args.normalise,
        weighted=not args.unweighted, depth=args.depth, sigma_w=args.sigma_w, sigma_b=args.sigma_b,
        width=args.width, clip=args.clip, seed=args.seed, chart=args.chart, coordinates=args.coordinates,
        manifold=manifold(args.manifold, args.psi),
    )
    return flow(config).to_dict()


def show_flow(r: dict) -> str:
    c = r["config"]
    fmt = lambda v: "nan" if v is None else f"{v:.3e}"  # noqa: E731
    lines = [
        f"{c['kernel']} kernel, {c['loss']} loss, lr {c['lr']:g}: {c['n_train']:,} train / {c['n_test']:,} test "
        f"points in chart {tuple(r['chart'])} ({r['points_drawn']:,} drawn)",
        f"train sigma {fmt(r['train_sigma'][0])} -> {fmt(r['train_sigma'][r['steps_done']])}  gain {r['train_gain']:.3g}",
        f"test  sigma {fmt(r['test_sigma'][0])} -> {fmt(r['test_sigma'][r['steps_done']])}  gain {r['test_gain']:.3g}",
        f"non-PD fraction at the end {r['nonpd_fraction'][r['steps_done']]:.3f}; "
        f"{r['steps_done']} steps in {r['seconds']:.1f} s (kernel {r['kernel_seconds']:.1f} s)",
    ]
    if r["stopped_reason"]:
        lines.append(r["stopped_reason"])
    return "\n".join(lines)


# ---- entry point ----------------------------------------------------------------------

COMMANDS = {"sample": (add_sample, run_sample, show_sample)}
COMMANDS["flow"] = (add_flow, run_flow, show_flow)


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
