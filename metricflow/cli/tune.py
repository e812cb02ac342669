"""The ``tune`` subcommand: Bayesian optimisation of a kernel flow's hyperparameters (section 3.2, table 1)."""

from __future__ import annotations

from metricflow.cli.kernel_flags import add_kernel_flag, add_search_flags, search_bounds_from_args
from metricflow.cli.options import add_manifold, int_arg
from metricflow.errors import MetricflowError
from metricflow.parse import float_list


def add_parser(sub) -> None:
    """Declare the ``tune`` subcommand on ``sub`` (an argparse subparsers action)."""
    p = sub.add_parser("tune", help="search a kernel flow's hyperparameters by Bayesian optimisation (table 1)")
    add_kernel_flag(p)
    p.add_argument("--iterations", type=int_arg, required=True, help="optimiser steps after the random ones")
    p.add_argument("--init", type=int_arg, default=5, help="random settings first (default 5)")
    p.add_argument("--steps", type=int_arg, default=20, help="flow steps per evaluation (default 20)")
    p.add_argument("--points", default=None, help="train points LOW,HIGH to search, or N to fix (default 250,2500)")
    p.add_argument("--test", type=int_arg, default=1000, help="test points per evaluation (default 1000)")
    p.add_argument("--lr", default=None, help="learning rate range LOW,HIGH (log scale), or a value to fix")
    add_search_flags(p)  # a range flag per kernel option some kernel searches, from the registry
    p.add_argument("--normalise", default=None, help="search, on or off (default: search, except delta)")
    p.add_argument("--update", default="covariant", help="the flows' update rule: covariant (default) or euclidean")
    p.add_argument("--loss", default=None, help="log, sigma, ultralocal or entropy (default: log for covariant, sigma for euclidean)")
    p.add_argument("--unweighted", action="store_true", help="pointwise loss without the CY weights")
    p.add_argument("--diverged", default="last", help="score of a diverged flow: last (gain at last good step) or floor")
    p.add_argument("--spread", type=int_arg, default=3, help="fresh point sets for the best setting (default 3)")
    add_manifold(p)
    p.set_defaults(run=run_tune, show=show_tune)


def run_tune(args) -> dict:
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold
    from metricflow.studies.tuning import TuneConfig, run_tune as tune

    bounds = []
    for name, flag, text in (("n_train", "--points", args.points), ("lr", "--lr", args.lr)):
        if text is not None:
            values = float_list(text, flag)
            if len(values) > 2:
                raise MetricflowError(f"give one value or a range LOW,HIGH for {flag}, got {text!r}")
            bounds.append((name, values[0], values[-1]))
    bounds += search_bounds_from_args(args, float_list)
    if args.normalise is not None:
        choice = {"search": (0, 1), "on": (1, 1), "off": (0, 0)}.get(args.normalise)
        if choice is None:
            raise MetricflowError(f"--normalise must be search, on or off, got {args.normalise!r}")
        bounds.append(("normalise", *choice))
    config = TuneConfig(
        kernel=args.kernel, iterations=args.iterations, init_points=args.init, steps=args.steps, seed=args.seed,
        bounds=tuple(bounds), n_test=args.test, loss=args.loss, weighted=not args.unweighted, diverged=args.diverged,
        spread_seeds=args.spread, manifold=manifold(args.manifold, args.psi), update=args.update,
    )
    result = tune(config) if args.no_cache else run_job(config)
    return result.to_dict()


def show_tune(r: dict) -> str:
    c = r["config"]
    fmt = lambda v: "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    names = [b[0] for b in c["bounds"]]
    lines = [f"{c['kernel']} kernel, {c['loss']} loss, {c['steps']} steps, {c['n_test']:,} test points; "
             f"objective log10(test gain), seed {c['seed']}",
             "  ".join([f"{'#':>3}", *(f"{n:>10}" for n in names), f"{'log10 gain':>10}", "  note"])]
    for e in r["evaluations"]:
        params = {**{b[0]: b[1] for b in c["bounds"] if b[1] == b[2]}, **e["params"]}
        note = "diverged" if e["stopped_reason"] else ("floored" if e["floored"] else "")
        lines.append("  ".join([f"{e['index']:>3}", *(f"{fmt(params.get(n)):>10}" for n in names),
                                f"{e['objective']:>10.4f}", f"  {note}"]))
    lines.append(f"best: evaluation {r['best_index']}, test gain {r['best_gain']:.4g} "
                 f"(log10 {r['best_objective']:.4f}) at {', '.join(f'{k}={fmt(v)}' for k, v in r['best_params'].items())}")
    if r["spread"]:
        std = "" if r["spread_std"] is None else f" ± {r['spread_std']:.4f}"
        lines.append(f"best setting on {len(r['spread'])} fresh point sets: log10 gain {r['spread_mean']:.4f}{std}")
    lines.append("table 1: " + "; ".join(f"{row['parameter']} paper {fmt(row['paper (table 1)'])}, found {fmt(row['best found'])}"
                                         for row in r["table1"]))
    lines.append(f"{len(r['evaluations']) + len(r['spread'])} flows ({r['reused']} reused) in {r['seconds']:.1f} s")
    return "\n".join(lines)
