"""The ``flow`` subcommand: a kernel metric flow (eq. 3.5), sigma on train and test."""

from __future__ import annotations

import argparse

from metricflow.cli.kernel_flags import add_kernel_flags, kernel_from_args
from metricflow.cli.options import add_manifold, int_arg


def _chart(text: str) -> tuple:
    try:
        a, b = (int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"chart must be two indices such as 0,1, got {text!r}") from None
    return (a, b)


def add_parser(sub) -> None:
    """Declare the ``flow`` subcommand on ``sub`` (an argparse subparsers action)."""
    p = sub.add_parser("flow", help="run a kernel metric flow (eq. 3.5) and report sigma on train and test")
    add_kernel_flags(p)  # --kernel and every kernel's options, from the registry
    p.add_argument("--update", default="covariant", help="covariant (default: the kernel in each metric's frame) or euclidean (coordinate update)")
    p.add_argument("--loss", default=None, help="log, sigma, ultralocal or entropy (default: log for covariant, sigma for euclidean)")
    p.add_argument("--train", type=int_arg, default=None, help="train points (default: table 1)")
    p.add_argument("--test", type=int_arg, default=None, help="test points (default: as train)")
    p.add_argument("--steps", type=int_arg, default=50)
    p.add_argument("--lr", type=float, default=None, help="step size (default: table 1)")
    norm = p.add_mutually_exclusive_group()
    norm.add_argument("--normalise", dest="normalise", action="store_const", const=True, default=None,
                      help="normalise the kernel (default for covariant: against the CY measure; euclidean: row sums)")
    norm.add_argument("--no-normalise", dest="normalise", action="store_const", const=False,
                      help="unnormalised kernel sum (default for euclidean)")
    p.add_argument("--unweighted", action="store_true", help="pointwise loss without the CY weights")
    p.add_argument("--clip", type=float, default=None, help="max |lr update|_F / |g|_F per point")
    p.add_argument("--chart", type=_chart, default=None, help="common chart scale,elim (default: most common)")
    p.add_argument("--coordinates", default="reject", help="reject (paper), transform, or all (every point in its own chart; covariant update only)")
    p.add_argument("--precision", default="float64", help="float64, or float32: metrics rounded to complex64 every step")
    add_manifold(p)
    p.set_defaults(run=run_flow, show=show_flow)


def run_flow(args) -> dict:
    from metricflow.flows.flow import FlowConfig
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold

    config = FlowConfig(
        kernel=kernel_from_args(args), loss=args.loss, n_train=args.train, n_test=args.test, steps=args.steps,
        lr=args.lr, normalise=args.normalise, weighted=not args.unweighted, clip=args.clip, seed=args.seed, chart=args.chart, coordinates=args.coordinates,
        manifold=manifold(args.manifold, args.psi), update=args.update, precision=args.precision,
    )
    return run_job(config, cache=not args.no_cache).to_dict()


def show_flow(r: dict) -> str:
    c = r["config"]
    fmt = lambda v: "nan" if v is None else f"{v:.3e}"  # noqa: E731
    gain = lambda g, se: "none (diverged)" if g is None else f"{g:.3g} +- {se:.2g}"  # noqa: E731
    k = r["steps_done"]
    where = "in all charts" if r["chart"] is None else f"in chart {tuple(r['chart'])}"
    lines = [
        f"{c['kernel']['name']} kernel, {c['update']} update, {c['loss']} loss, lr {c['lr']:g}: {c['n_train']:,} train / "
        f"{c['n_test']:,} test points {where} ({r['points_drawn']:,} drawn)",
        f"sigma against the reference kappa {r['kappa_ref']:.6g}; self-normalised in brackets",
        f"train sigma {fmt(r['train_sigma'][0])} -> {fmt(r['train_sigma'][k])} ({fmt(r['train_sigma_self'][k])})  "
        f"gain {gain(r['train_gain'], r['train_gain_se'])}",
        f"test  sigma {fmt(r['test_sigma'][0])} -> {fmt(r['test_sigma'][k])} ({fmt(r['test_sigma_self'][k])})  "
        f"gain {gain(r['test_gain'], r['test_gain_se'])}",
        f"non-PD test points at the end {r['test_nonpd_count'][k]:,} of {c['n_test']:,} "
        f"(test sigma over the PD ones {fmt(r['test_sigma_pd'][k])}); "
        f"{r['steps_done']} steps in {r['seconds']:.1f} s (kernel {r['kernel_seconds']:.1f} s)",
    ]
    if r["stopped_reason"]:
        lines.append(r["stopped_reason"])
    return "\n".join(lines)
