"""The ``donaldson`` and ``donaldson-sweep`` subcommands: balanced metrics, and along the Dwork family."""

from __future__ import annotations

from metricflow.cli.options import add_manifold, int_arg
from metricflow.parse import complex_list, int_list


def add_parser(sub) -> None:
    """Declare the ``donaldson`` and ``donaldson-sweep`` subcommands on ``sub`` (an argparse subparsers action)."""
    add_donaldson(sub)
    add_donaldson_sweep(sub)


def add_donaldson(sub) -> None:
    p = sub.add_parser("donaldson", help="Donaldson's balanced metrics at degrees k: sigma_k on fresh points")
    p.add_argument("--k", required=True, help="degrees k, comma-separated, e.g. 1,2,3,4")
    p.add_argument("--points", type=int_arg, required=True, help="points N for the T-operator integrals")
    p.add_argument("--test", type=int_arg, default=None, help="fresh test points for sigma (default: as --points)")
    p.add_argument("--optimise", action="store_true", help="also minimise sigma over h from the balanced h (Adam)")
    p.add_argument("--tol", type=float, default=1e-6, help="stop when |T(h)^-1 - h| / |h| < TOL (default 1e-6)")
    p.add_argument("--max-iterations", type=int_arg, default=200, help="cap on T-operator iterations per k")
    p.add_argument("--opt-steps", type=int_arg, default=300, help="Adam steps of --optimise (default 300)")
    p.add_argument("--opt-lr", type=float, default=5e-3, help="Adam learning rate of --optimise (default 5e-3)")
    p.add_argument("--opt-points", type=int_arg, default=None, help="training points of --optimise (default min(N/2, 5000)); the next as many choose the step")
    add_manifold(p)
    p.set_defaults(run=run_donaldson, show=show_donaldson)


def run_donaldson(args) -> dict:
    from metricflow.flows.donaldson import DonaldsonConfig
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold

    config = DonaldsonConfig(
        manifold(args.manifold, args.psi), int_list(args.k, "k"), args.points,
        args.points if args.test is None else args.test, args.seed, optimise=args.optimise, tol=args.tol,
        max_iterations=args.max_iterations, opt_steps=args.opt_steps, opt_lr=args.opt_lr,
        opt_points=args.opt_points,
    )
    return run_job(config, cache=not args.no_cache).summary()


def show_donaldson(r: dict) -> str:
    exact = "exact" if r["kappa_exact"] else f"± {r['kappa_se']:.1e}"
    lines = [
        f"balanced metrics on the {r['manifold']} (psi={complex(*r['psi']):g}): {r['points']:,} points for h, "
        f"{r['test_points']:,} fresh test points, kappa {r['kappa']:.6f} ({exact}), tol {r['tol']:g}",
        f"sigma_FS = {r['sigma_fs']:.4f} ± {r['sigma_fs_se']:.4f} (self-normalised {r['sigma_fs_self']:.4f})",
        f"{'k':>2} {'N_k':>4} {'sigma':>16} {'self-normalised':>16} {'iter':>5} {'seconds':>8}"
        + (f" {'optimised sigma':>16}" if r["optimise"] else ""),
    ]
    for row in r["per_k"]:
        line = (f"{row['k']:>2} {row['n_sections']:>4} {row['sigma']:>8.4f} ± {row['sigma_se']:.4f} "
                f"{row['sigma_self']:>8.4f} ± {row['sigma_self_se']:.4f} {row['iterations']:>5} {row['seconds']:>8.2f}")
        if r["optimise"]:
            line += f" {row['opt_sigma']:>8.4f} ± {row['opt_sigma_se']:.4f}"
        if not row["converged"]:
            line += f"  (not converged: change {row['residual']:.1e})"
        lines.append(line)
    lines.append(f"total {r['seconds']:.1f} s")
    return "\n".join(lines)


def add_donaldson_sweep(sub) -> None:
    p = sub.add_parser("donaldson-sweep", help="sigma_FS and the balanced sigma_k along the Dwork family (one job per psi)")
    p.add_argument("--psis", default="0,0.1,0.3,0.5,0.8,1.5,10+3j", help="psi values, comma-separated")
    p.add_argument("--k", type=int_arg, default=3, help="degree of the balanced metric (default 3)")
    p.add_argument("--points", type=int_arg, default=20_000, help="points N for the T-operator (default 2e4)")
    p.add_argument("--test", type=int_arg, default=None, help="fresh test points (default: as --points)")
    p.add_argument("--degree", type=int_arg, default=5, help="Dwork degree d (default 5, quintics)")
    p.add_argument("--phi-epochs", type=int_arg, default=0,
                   help="also train the phi network at each psi for this many epochs (default 0: off)")
    p.add_argument("--phi-points", type=int_arg, default=5000,
                   help="points of the phi network, a fifth held out for its sigma (default 5000)")
    p.add_argument("--family", action="store_true",
                   help="also train one phi network conditioned on psi across all psis, on the union of the "
                        "per-psi networks' train points for --phi-epochs (P times the steps of one)")
    p.set_defaults(run=run_donaldson_sweep, show=show_donaldson_sweep)


def run_donaldson_sweep(args) -> dict:
    from metricflow.studies.moduli import DonaldsonSweepConfig, run_donaldson_sweep as sweep
    from metricflow.jobs.runner import run_job

    config = DonaldsonSweepConfig(
        psis=complex_list(args.psis, empty="give at least one psi value"), k=args.k, n_points=args.points,
        n_test=args.points if args.test is None else args.test, seed=args.seed, degree=args.degree,
        phi_epochs=args.phi_epochs, phi_points=args.phi_points, family=args.family,
    )
    if args.no_cache:
        return sweep(config).summary()  # every piece here, one after another
    return run_job(config).summary()


def show_donaldson_sweep(r: dict) -> str:
    phi, family = "phi_epochs" in r, r.get("family", False)
    head = f"balanced metrics at k = {r['k']}, {r['points']:,} points, {r['test_points']:,} test points"
    if phi:
        head += f"; phi network {r['phi_epochs']} epochs on {r['phi_points']:,} points"
    if family:
        head += f"; psi-conditioned network {r['family_seconds']:.1f} s for all psis"
    lines = [head, f"{'psi':>10} {'sigma_FS':>16} {'sigma_k':>16} {'kappa':>10} {'iter':>5}"
             + (f" {'sigma_phi':>16} {'seconds':>8}" if phi else "")
             + (f" {'sigma_family':>16}" if family else "")]
    for row in r["per_psi"]:
        line = (f"{complex(*row['psi']):>10g} {row['sigma_fs']:>8.4f} ± {row['sigma_fs_se']:.4f} "
                f"{row['sigma']:>8.4f} ± {row['sigma_se']:.4f} {row['kappa']:>10.6f} {row['iterations']:>5}")
        if phi:
            line += f" {row['phi_sigma']:>8.4f} ± {row['phi_sigma_se']:.4f} {row['phi_seconds']:>8.1f}"
        if family:
            line += f" {row['family_sigma']:>8.4f} ± {row['family_sigma_se']:.4f}"
        lines.append(line)
    return "\n".join(lines)
