"""The ``methods`` subcommand: every method on one sigma-time axis (Donaldson, kernel flows, networks)."""

from __future__ import annotations

from metricflow.cli.options import int_arg, psi_arg


def add_parser(sub) -> None:
    """Declare the ``methods`` subcommand on ``sub`` (an argparse subparsers action)."""
    p = sub.add_parser("methods", help="Donaldson, the kernel flows and the networks on the same test points and kappa")
    p.add_argument("--preset", default="quick", help="quick (a few minutes on 2 cores) or full")
    p.add_argument("--psi", type=psi_arg, default=0j, help="complex structure parameter of the quintic (default 0)")
    p.add_argument("--test", type=int_arg, default=None, help="the one shared set of fresh test points of every method (default: the preset's)")
    p.add_argument("--k-max", type=int_arg, default=None, help="Donaldson degrees 1..K (default: the preset's)")
    p.add_argument("--donaldson-points", type=int_arg, default=None, help="T-operator points (default: the preset's)")
    p.add_argument("--no-optimise", action="store_true", help="leave out the sigma-optimised Donaldson h")
    p.add_argument("--flow-train", type=int_arg, default=None, help="train points of each kernel flow")
    p.add_argument("--flow-steps", type=int_arg, default=None, help="steps of each kernel flow")
    p.add_argument("--network-points", type=int_arg, default=None, help="points of the metric network (train + test)")
    p.add_argument("--epochs", type=int_arg, default=None, help="epochs of the metric network")
    p.add_argument("--no-phi", action="store_true", help="leave out the phi network")
    p.add_argument("--no-trained-kernel", action="store_true", help="leave out the flow with the trained metric-NTK")
    p.set_defaults(run=run_methods, show=show_methods)


def run_methods(args) -> dict:
    from metricflow.geometry.manifolds import Manifold
    from metricflow.jobs.runner import run_job
    from metricflow.studies.methods import MethodsConfig

    flags = {"n_test": args.test, "k_max": args.k_max, "donaldson_points": args.donaldson_points,
             "flow_train": args.flow_train, "flow_steps": args.flow_steps, "network_points": args.network_points,
             "epochs": args.epochs}
    changes = {k: v for k, v in flags.items() if v is not None}
    changes.update({k: False for k, off in (("optimise", args.no_optimise), ("phi", args.no_phi),
                                            ("trained_kernel", args.no_trained_kernel)) if off})
    config = MethodsConfig.preset(args.preset, manifold=Manifold(5, args.psi), seed=args.seed, **changes)
    return run_job(config, cache=not args.no_cache).summary()


def show_methods(r: dict) -> str:
    lines = [f"methods compared on the {r['manifold']} (psi={complex(*r['psi']):g}), {r['test_points']:,} fresh test "
             f"points each, kappa {r['kappa']:.6f}; sigma_FS {r['sigma_fs']:.4f} ± {r['sigma_fs_se']:.4f}",
             f"{'method':<24} {'best sigma':>18} {'at':>5} {'seconds':>8} {'points':>10} {'parameters':>10}"]
    for row in r["table"]:
        best = "—" if row["best_sigma"] is None else f"{row['best_sigma']:.4f} ± {row['best_sigma_se']:.4f}"
        at = "" if row["at"] is None else row["at"]
        secs = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
        lines.append(f"{row['method']:<24} {best:>18} {at:>5} {secs:>8} {row['points'] or 0:>10,} {row['parameters'] or 0:>10,}")
    lines.append(f"total {r['seconds']:.1f} s")
    return "\n".join(lines)
