"""The ``noise`` and ``scaling`` subcommands: fig. 3 left and the distance scaling of eq. 3.7."""

from __future__ import annotations

from metricflow.cli.options import add_manifold, int_arg
from metricflow.parse import float_list, int_list


def add_parser(sub) -> None:
    """Declare the ``noise`` and ``scaling`` subcommands on ``sub`` (an argparse subparsers action)."""
    add_noise(sub)
    add_scaling(sub)


def add_noise(sub) -> None:
    p = sub.add_parser("noise", help="test gain of a kernel flow against the distance of noised test points (fig. 3 left)")
    p.add_argument("--kernel", required=True, help="delta or gaussian")
    p.add_argument("--noise", required=True, help="noise variances per real feature, comma-separated, e.g. 0,1e-6,1e-4")
    p.add_argument("--train", type=int_arg, default=1000, help="train points (default 1000)")
    p.add_argument("--steps", type=int_arg, default=50)
    p.add_argument("--update", default="covariant",
                   help="covariant (default: the kernel in each metric's frame) or euclidean (coordinate update)")
    p.add_argument("--loss", default=None,
                   help="log, sigma, ultralocal or entropy (default: log for covariant, ultralocal for euclidean)")
    p.add_argument("--lr", type=float, default=None,
                   help="step size (default: table 1's for covariant, 3e-4 x train points for euclidean)")
    p.add_argument("--any-chart", action="store_true",
                   help="keep noised test points that leave the train chart's region (default: redraw their noise)")
    p.add_argument("--precision", default="float64", help="float64 (default) or float32 metrics during the flow")
    add_manifold(p)
    p.set_defaults(run=run_noise, show=show_noise)


def run_noise(args) -> dict:
    from metricflow.studies.generalisation import NoiseConfig
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold

    config = NoiseConfig(
        kernel=args.kernel, noise=float_list(args.noise, "noise variances"), n_train=args.train, steps=args.steps,
        update=args.update, loss=args.loss, lr=args.lr, in_chart=not args.any_chart, precision=args.precision,
        seed=args.seed,
        manifold=manifold(args.manifold, args.psi),
    )
    return run_job(config, cache=not args.no_cache).to_dict()


def show_noise(r: dict) -> str:
    c = r["config"]

    def gain(g, se):
        return f"{'diverged':>21}" if g is None else f"{g:>10.4g} +- {se:<7.2g}"

    train = "diverged" if r["train_gain"] is None else f"{r['train_gain']:.3g} +- {r['train_gain_se']:.2g}"
    lines = [
        f"{r['kernel']} kernel, {r['update']} update, {r['loss']} loss, lr {c['lr']:g}, {c['n_train']:,} train points "
        f"in chart {tuple(r['chart'])}: train gain {train}",
        f"sigma against the reference kappa {r['kappa_ref']:.6g}",
        f"{'noise v':>10}  {'distance':>10}  {'test gain':>21}  {'non-PD':>7}",
    ]
    lines += [
        f"{v:>10.3g}  {d:>10.4g}  {gain(g, se)}  {p:>7.3f}"
        for v, d, g, se, p in zip(r["noise"], r["distance"], r["gain"], r["gain_se"], r["nonpd_fraction"])
    ]
    if r["stopped_reason"]:
        lines.append(r["stopped_reason"])
    return "\n".join(lines)


def add_scaling(sub) -> None:
    p = sub.add_parser("scaling", help="nearest-neighbour FS distance against the number of points, and its fit (eq. 3.7)")
    p.add_argument("--points", required=True, help="sizes N, comma-separated, e.g. 100,1000,10000")
    p.add_argument("--chart", default="all", help="all (points over all charts) or one (points in one chart)")
    p.add_argument("--seeds", type=int_arg, default=1, help="independent samples per N (default 1)")
    add_manifold(p)
    p.set_defaults(run=run_scaling, show=show_scaling)


def run_scaling(args) -> dict:
    from metricflow.studies.generalisation import ScalingConfig
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold

    config = ScalingConfig(
        points=int_list(args.points, "points"), chart=args.chart, seeds=args.seeds,
        seed=args.seed, manifold=manifold(args.manifold, args.psi),
    )
    return run_job(config, cache=not args.no_cache).to_dict()


def show_scaling(r: dict) -> str:
    lines = [f"nearest-neighbour FS distance, points in {'all charts' if r['chart'] == 'all' else 'one chart'}:",
             f"{'N':>10}  {'mean':>8}  {'min':>8}  {'max':>8}"]
    lines += [f"{n:>10,}  {a:>8.4f}  {b:>8.4f}  {c:>8.4f}" for n, a, b, c in zip(r["points"], r["mean"], r["min"], r["max"])]
    err = "" if r["fit_exponent_err"] is None else f" +- {r['fit_exponent_err']:.4f}"
    lines.append(
        f"fit: mean = {r['fit_prefactor']:.3f} N^({r['fit_exponent']:.4f}{err})"
        f"   (paper eq. 3.7: {r['paper']['prefactor']} N^{r['paper']['exponent']})"
    )
    return "\n".join(lines)
