"""The ``sample`` subcommand: points on a hypersurface, sigma and kappa of the FS metric."""

from __future__ import annotations

from metricflow.cli.options import add_manifold, int_arg


def add_parser(sub) -> None:
    """Declare the ``sample`` subcommand on ``sub`` (an argparse subparsers action)."""
    p = sub.add_parser("sample", help="sample points and report sigma and kappa of the FS metric")
    p.add_argument("--points", type=int_arg, required=True, help="number of points N")
    add_manifold(p)
    p.set_defaults(run=run_sample, show=show_sample)


def run_sample(args) -> dict:
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold
    from metricflow.geometry.points import SampleConfig

    config = SampleConfig(manifold(args.manifold, args.psi), args.points, args.seed)
    return run_job(config, cache=not args.no_cache).summary()


def show_sample(r: dict) -> str:
    source = "exact" if r["kappa_exact"] is not None else f"+- {r['kappa_se']:.1e}, reference estimate"
    return (
        f"{r['points']:,} points on the {r['manifold']} (psi={complex(*r['psi']):g}, seed {r['seed']})\n"
        f"sigma_FS = {r['sigma_fs']:.4f} +- {r['sigma_fs_se']:.4f} (reference kappa); "
        f"{r['sigma_fs_self']:.4f} +- {r['sigma_fs_self_se']:.4f} (self-normalised)\n"
        f"kappa    = {r['kappa']:.6f} ({source}); from these points {r['kappa_sample']:.6f} +- {r['kappa_sample_se']:.6f}\n"
        f"charts used: {len(r['charts'])}; {r['seconds']:.2f} s"
    )
