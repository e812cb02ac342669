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
    p.add_argument("--no-cache", action="store_true", help="compute afresh; do not read or write the result store")


def run_flow(args) -> dict:
    from metricflow.flow import FlowConfig
    from metricflow.jobs import run_job
    from metricflow.manifolds import manifold

    config = FlowConfig(
        kernel=args.kernel, loss=args.loss, n_train=args.train, n_test=args.test, steps=args.steps,
        lr=args.lr, sigma=args.sigma, squared=args.squared, radius=args.radius, normalise=args.normalise,
        weighted=not args.unweighted, depth=args.depth, sigma_w=args.sigma_w, sigma_b=args.sigma_b,
        width=args.width, clip=args.clip, seed=args.seed, chart=args.chart, coordinates=args.coordinates,
        manifold=manifold(args.manifold, args.psi),
    )
    return run_job(config, cache=not args.no_cache).to_dict()


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


# ---- noise and scaling (fig. 3, eq. 3.7) ----------------------------------------------


def _number_list(text: str, name: str, integer: bool = False) -> tuple:
    """'0,1e-6,1e-4' -> (0.0, 1e-06, 0.0001); raises MetricflowError with a one-line message."""
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise MetricflowError(f"{name} must be numbers separated by commas, such as {'100,1000' if integer else '0,1e-6,1e-4'}; got {text!r}") from None
    if not values:
        raise MetricflowError(f"give at least one value for {name}")
    if integer:
        if not all(np.isfinite(v) and v == int(v) for v in values):
            raise MetricflowError(f"{name} must be integers such as 100,1000,1e4; got {text!r}")
        values = tuple(int(v) for v in values)
    return values


def add_noise(sub) -> None:
    p = sub.add_parser("noise", help="test gain of a kernel flow against the distance of noised test points (fig. 3 left)")
    p.add_argument("--kernel", required=True, help="delta or gaussian")
    p.add_argument("--noise", required=True, help="noise variances per real feature, comma-separated, e.g. 0,1e-6,1e-4")
    p.add_argument("--train", type=_int, default=1000, help="train points (default 1000)")
    p.add_argument("--steps", type=_int, default=50)
    p.add_argument("--lr", type=float, default=None, help="step size (default 3e-4 x train points)")
    p.add_argument("--seed", type=_int, default=0)
    p.add_argument("--manifold", default="quintic", help="quintic, quartic or cubic")
    p.add_argument("--psi", type=_psi, default=0j, help="complex structure parameter (default 0)")
    p.add_argument("--no-cache", action="store_true", help="compute afresh; do not read or write the result store")


def run_noise(args) -> dict:
    from metricflow.generalisation import NoiseConfig
    from metricflow.jobs import run_job
    from metricflow.manifolds import manifold

    config = NoiseConfig(
        kernel=args.kernel, noise=_number_list(args.noise, "noise variances"), n_train=args.train, steps=args.steps,
        lr=args.lr, seed=args.seed, manifold=manifold(args.manifold, args.psi),
    )
    return run_job(config, cache=not args.no_cache).to_dict()


def show_noise(r: dict) -> str:
    c = r["config"]
    lines = [
        f"{r['kernel']} kernel, {c['loss']} loss, lr {c['lr']:g}, {c['n_train']:,} train points in chart {tuple(r['chart'])}: "
        f"train gain {r['train_gain']:.3g}",
        f"{'noise v':>10}  {'distance':>10}  {'test gain':>10}",
    ]
    lines += [f"{v:>10.3g}  {d:>10.4g}  {g:>10.4g}" for v, d, g in zip(r["noise"], r["distance"], r["gain"])]
    if r["stopped_reason"]:
        lines.append(r["stopped_reason"])
    return "\n".join(lines)


def add_scaling(sub) -> None:
    p = sub.add_parser("scaling", help="nearest-neighbour FS distance against the number of points, and its fit (eq. 3.7)")
    p.add_argument("--points", required=True, help="sizes N, comma-separated, e.g. 100,1000,10000")
    p.add_argument("--chart", default="all", help="all (points over all charts) or one (points in one chart)")
    p.add_argument("--seeds", type=_int, default=1, help="independent samples per N (default 1)")
    p.add_argument("--seed", type=_int, default=0)
    p.add_argument("--manifold", default="quintic", help="quintic, quartic or cubic")
    p.add_argument("--psi", type=_psi, default=0j, help="complex structure parameter (default 0)")
    p.add_argument("--no-cache", action="store_true", help="compute afresh; do not read or write the result store")


def run_scaling(args) -> dict:
    from metricflow.generalisation import ScalingConfig
    from metricflow.jobs import run_job
    from metricflow.manifolds import manifold

    config = ScalingConfig(
        points=_number_list(args.points, "points", integer=True), chart=args.chart, seeds=args.seeds,
        seed=args.seed, manifold=manifold(args.manifold, args.psi),
    )
    return run_job(config, cache=not args.no_cache).to_dict()


def show_scaling(r: dict) -> str:
    lines = [f"nearest-neighbour FS distance, points in {'all charts' if r['chart'] == 'all' else 'one chart'}:",
             f"{'N':>10}  {'mean':>8}  {'min':>8}  {'max':>8}"]
    lines += [f"{n:>10,}  {a:>8.4f}  {b:>8.4f}  {c:>8.4f}" for n, a, b, c in zip(r["points"], r["mean"], r["min"], r["max"])]
    lines.append(
        f"fit: mean = {r['fit_prefactor']:.3f} N^({r['fit_exponent']:.4f} +- {r['fit_exponent_err']:.4f})"
        f"   (paper eq. 3.7: {r['paper']['prefactor']} N^{r['paper']['exponent']})"
    )
    return "\n".join(lines)


# ---- entry point ----------------------------------------------------------------------

COMMANDS = {"sample": (add_sample, run_sample, show_sample)}
COMMANDS["flow"] = (add_flow, run_flow, show_flow)
COMMANDS["noise"] = (add_noise, run_noise, show_noise)
COMMANDS["scaling"] = (add_scaling, run_scaling, show_scaling)


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
