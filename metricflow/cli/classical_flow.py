"""The ``classical-flow`` subcommand: a flow of appendix B projected on a space of potentials."""

from __future__ import annotations

from metricflow.cli.options import add_manifold, int_arg


def add_parser(sub) -> None:
    """Declare the ``classical-flow`` subcommand on ``sub`` (an argparse subparsers action)."""
    p = sub.add_parser("classical-flow", help="Kahler-Ricci, Calabi or the two-derivative flow (appendix B) "
                                              "in a space of Kahler potentials: sigma per step on fresh points")
    p.add_argument("--flow", default="ricci", help="ricci (Kahler-Ricci), calabi or two-derivative (default ricci)")
    p.add_argument("--space", default="algebraic", help="algebraic (Donaldson's metrics, default) or basis (a fixed basis)")
    p.add_argument("--k", type=int_arg, default=2, help="degree of the sections (default 2)")
    p.add_argument("--points", type=int_arg, default=10_000, help="points of the flow (default 1e4)")
    p.add_argument("--test", type=int_arg, default=None, help="fresh test points for sigma (default: as --points)")
    p.add_argument("--steps", type=int_arg, default=40, help="steps (default 40)")
    p.add_argument("--dt", type=float, default=None, help="step (default: stable for the flow and k)")
    p.add_argument("--symmetry", default="invariant",
                   help="invariant (matrices fixed by the Dwork symmetries, default) or full (every Hermitian matrix)")
    add_manifold(p)
    p.set_defaults(run=run_classical_flow, show=show_classical_flow)


def run_classical_flow(args) -> dict:
    from metricflow.flows.classical import ClassicalFlowConfig
    from metricflow.geometry.manifolds import manifold
    from metricflow.jobs.runner import run_job

    config = ClassicalFlowConfig(
        manifold(args.manifold, args.psi), space=args.space, k=args.k, flow=args.flow, dt=args.dt,
        n_steps=args.steps, n_points=args.points, n_test=args.points if args.test is None else args.test,
        seed=args.seed, symmetry=args.symmetry,
    )
    return run_job(config, cache=not args.no_cache).summary()


def show_classical_flow(r: dict) -> str:
    fmt = lambda v: "nan" if v is None else f"{v:.4f}"  # noqa: E731
    done = r["steps_done"]
    lines = [
        f"{r['flow']} flow in the {r['space']} space ({r['symmetry']}, k = {r['k']}, {r['n_params']} parameters) on the "
        f"{r['manifold']}: dt {r['dt']:.3g}, {r['points']:,} points, {r['test_points']:,} test points",
        f"{'step':>5} {'t':>8} {'sigma':>16} {'functional':>12} {'velocity':>10}",
    ]
    every = max(1, done // 10)
    for i in sorted(set(range(0, done + 1, every)) | {done}):
        lines.append(f"{i:>5} {r['time'][i]:>8.4f} {fmt(r['sigma'][i]):>8} ± {fmt(r['sigma_se'][i])} "
                     f"{r['functional'][i]:>12.4e} {r['velocity'][i]:>10.2e}")
    if r["stopped_reason"]:
        lines.append(r["stopped_reason"])
    lines.append(f"total {r['total_seconds']:.1f} s")
    return "\n".join(lines)
