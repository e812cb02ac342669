"""Command line: ``python -m metricflow SUBCOMMAND ...``.

Each subcommand has an ``add_<name>`` function that declares its options and a ``run_<name>``
function that returns a JSON-ready dict; ``--json`` prints that dict, otherwise a summary.
Bad input exits with status 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from decimal import Decimal, InvalidOperation


from metricflow.cli.kernel_flags import add_kernel_flag, add_kernel_flags, add_search_flags, kernel_from_args, search_bounds_from_args
from metricflow.errors import MetricflowError

__all__ = ["main"]


def _psi(text: str) -> complex:
    try:
        return complex(text.replace(" ", "").replace("i", "j"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"psi must be a complex number such as 0.5 or 1+0.2j, got {text!r}")


# The largest integer the CLI takes (a signed 64-bit integer, the widest seed NumPy's
# generators and the job keys carry exactly).
MAX_INT = 2**63 - 1


def _exact_int(text: str) -> int:
    """'42', '1e5', '1_000' -> an int, parsed exactly (decimal, never through float).

    Raises ValueError with a one-line message if ``text`` is not an integer in
    [-MAX_INT, MAX_INT].
    """
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"expected an integer, got {text!r}") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(f"expected an integer, got {text!r}")
    if abs(value) > MAX_INT:
        raise ValueError(f"expected an integer of at most 2**63 - 1 = {MAX_INT}, got {text!r}")
    return int(value)


def _int(text: str) -> int:
    try:
        return _exact_int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_manifold(p) -> None:
    """The options that choose the hypersurface, shared by the subcommands that sample points."""
    p.add_argument("--manifold", default="quintic", help="quintic, quartic or cubic")
    p.add_argument("--psi", type=_psi, default=0j, help="complex structure parameter (default 0)")


# ---- sample ---------------------------------------------------------------------------


def add_sample(sub) -> None:
    p = sub.add_parser("sample", help="sample points and report sigma and kappa of the FS metric")
    p.add_argument("--points", type=_int, required=True, help="number of points N")
    _add_manifold(p)


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


# ---- flow -----------------------------------------------------------------------------


def _chart(text: str) -> tuple:
    try:
        a, b = (int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"chart must be two indices such as 0,1, got {text!r}") from None
    return (a, b)


def add_flow(sub) -> None:
    p = sub.add_parser("flow", help="run a kernel metric flow (eq. 3.5) and report sigma on train and test")
    add_kernel_flags(p)  # --kernel and every kernel's options, from the registry
    p.add_argument("--update", default="covariant", help="covariant (default: the kernel in each metric's frame) or euclidean (coordinate update)")
    p.add_argument("--loss", default=None, help="log, sigma, ultralocal or entropy (default: log for covariant, sigma for euclidean)")
    p.add_argument("--train", type=_int, default=None, help="train points (default: table 1)")
    p.add_argument("--test", type=_int, default=None, help="test points (default: as train)")
    p.add_argument("--steps", type=_int, default=50)
    p.add_argument("--lr", type=float, default=None, help="step size (default: table 1)")
    norm = p.add_mutually_exclusive_group()
    norm.add_argument("--normalise", dest="normalise", action="store_const", const=True, default=None,
                      help="normalise the kernel (default for covariant: against the CY measure; euclidean: row sums)")
    norm.add_argument("--no-normalise", dest="normalise", action="store_const", const=False,
                      help="unnormalised kernel sum (default for euclidean)")
    p.add_argument("--unweighted", action="store_true", help="pointwise loss without the CY weights")
    p.add_argument("--clip", type=float, default=None, help="max |lr update|_F / |g|_F per point")
    p.add_argument("--chart", type=_chart, default=None, help="common chart scale,elim (default: most common)")
    p.add_argument("--coordinates", default="reject", help="reject (paper) or transform")
    p.add_argument("--precision", default="float64", help="float64, or float32: metrics rounded to complex64 every step")
    _add_manifold(p)


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
    lines = [
        f"{c['kernel']['name']} kernel, {c['update']} update, {c['loss']} loss, lr {c['lr']:g}: {c['n_train']:,} train / "
        f"{c['n_test']:,} test points in chart {tuple(r['chart'])} ({r['points_drawn']:,} drawn)",
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
        try:
            values = tuple(_exact_int(t) for t in text.split(",") if t.strip())
        except ValueError:
            raise MetricflowError(f"{name} must be integers such as 100,1000,1e4; got {text!r}") from None
    return values


def add_noise(sub) -> None:
    p = sub.add_parser("noise", help="test gain of a kernel flow against the distance of noised test points (fig. 3 left)")
    p.add_argument("--kernel", required=True, help="delta or gaussian")
    p.add_argument("--noise", required=True, help="noise variances per real feature, comma-separated, e.g. 0,1e-6,1e-4")
    p.add_argument("--train", type=_int, default=1000, help="train points (default 1000)")
    p.add_argument("--steps", type=_int, default=50)
    p.add_argument("--update", default="covariant",
                   help="covariant (default: the kernel in each metric's frame) or euclidean (coordinate update)")
    p.add_argument("--loss", default=None,
                   help="log, sigma, ultralocal or entropy (default: log for covariant, ultralocal for euclidean)")
    p.add_argument("--lr", type=float, default=None,
                   help="step size (default: table 1's for covariant, 3e-4 x train points for euclidean)")
    p.add_argument("--any-chart", action="store_true",
                   help="keep noised test points that leave the train chart's region (default: redraw their noise)")
    p.add_argument("--precision", default="float64", help="float64 (default) or float32 metrics during the flow")
    _add_manifold(p)


def run_noise(args) -> dict:
    from metricflow.studies.generalisation import NoiseConfig
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold

    config = NoiseConfig(
        kernel=args.kernel, noise=_number_list(args.noise, "noise variances"), n_train=args.train, steps=args.steps,
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
    p.add_argument("--seeds", type=_int, default=1, help="independent samples per N (default 1)")
    _add_manifold(p)


def run_scaling(args) -> dict:
    from metricflow.studies.generalisation import ScalingConfig
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold

    config = ScalingConfig(
        points=_number_list(args.points, "points", integer=True), chart=args.chart, seeds=args.seeds,
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


# ---- cluster (section 3.1, fig. 2) -----------------------------------------------------


def add_cluster(sub) -> None:
    p = sub.add_parser("cluster", help="cluster points by FS distance (section 3.1, eq. 3.3) and report silhouettes")
    p.add_argument("--points", type=_int, required=True, help="number of points N")
    p.add_argument("--clusters", type=_int, required=True, help="number of clusters C")
    p.add_argument("--batches", type=_int, default=5, help="mini-batches B of the batched method (default 5)")
    p.add_argument("--method", action="append", default=None,
                   help="batched, full, birch or graph; repeat for several (default: all that fit)")
    p.add_argument("--merge", default="nearest", help="nearest (default) or greedy merging across batches")
    p.add_argument("--neighbours", type=_int, default=6, help="k of the graph method's kNN graph (default 6)")
    p.add_argument("--heatmap", default=None, help="write fig. 2 to this file: .html, or .png (needs kaleido)")
    _add_manifold(p)


def run_cluster(args) -> dict:
    from metricflow.studies.clustering import ClusterConfig
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold

    if args.heatmap is not None and not args.heatmap.lower().endswith((".html", ".htm", ".png")):
        raise MetricflowError(f"--heatmap must name an .html or .png file, got {args.heatmap!r}")
    config = ClusterConfig(
        n_points=args.points, n_clusters=args.clusters, n_batches=args.batches, methods=tuple(args.method or ()),
        merge=args.merge, neighbours=args.neighbours, seed=args.seed, manifold=manifold(args.manifold, args.psi),
    )
    result = run_job(config, cache=not args.no_cache)
    out = result.summary()
    if args.heatmap is not None:
        from metricflow.figures.core import cluster_heatmap_figure, figure_png

        fig = cluster_heatmap_figure(result)
        try:
            if args.heatmap.lower().endswith(".png"):
                data = figure_png(fig, width=fig.layout.width, height=fig.layout.height)
                with open(args.heatmap, "wb") as f:
                    f.write(data)
            else:
                fig.write_html(args.heatmap, include_plotlyjs=True)
        except OSError as err:
            raise MetricflowError(f"could not write {args.heatmap}: {err.strerror or err}") from None
        out["heatmap"] = args.heatmap
    return out


def show_cluster(r: dict) -> str:
    c = r["config"]
    fmt = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    lines = [
        f"{c['n_points']:,} points, {c['n_clusters']} clusters, {c['n_batches']} batches of up to {r['batch_size']:,} "
        f"(seed {c['seed']}); silhouette on FS distance over {r['silhouette_points']:,} points",
        f"{'method':<8} {'ours':>7} {'paper':>7} {'seconds':>8}  smallest/largest cluster",
    ]
    for m, score in r["silhouette"].items():
        sizes = r["cluster_sizes"][m]
        lines.append(
            f"{m:<8} {fmt(score):>7} {fmt(r['paper_silhouette'].get(m)):>7} {r['method_seconds'][m]:>8.2f}  "
            f"{min(sizes):,}/{max(sizes):,}"
        )
    lines.append(f"total {r['seconds']:.1f} s" + (f"; heatmap written to {r['heatmap']}" if r.get("heatmap") else ""))
    return "\n".join(lines)


# ---- train and evaluate (section 3.3) ---------------------------------------------------


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a finite metric network with the sigma loss; record the metric-NTK")
    p.add_argument("--model", default="metric", help="metric (g_FS o (1 + NN)) or phi (g_FS + d dbar phi)")
    p.add_argument("--points", type=_int, default=100_000, help="points, train + validation (default 1e5)")
    p.add_argument("--epochs", type=_int, default=50)
    p.add_argument("--width", type=_int, default=64)
    p.add_argument("--depth", type=_int, default=3)
    p.add_argument("--activation", default=None, help="relu, gelu or erf (default relu for metric, gelu for phi)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (cosine decay to 1%%)")
    p.add_argument("--warmup", type=_int, default=0, help="epochs of linear learning-rate warm-up (default 0)")
    p.add_argument("--batch", type=_int, default=None, help="batch size (default 200)")
    p.add_argument("--lbfgs", type=_int, default=0, help="full-batch L-BFGS steps after the epochs (default 0)")
    p.add_argument("--lbfgs-points", type=_int, default=20_000, help="train points of the L-BFGS loss (default 2e4)")
    p.add_argument("--ntk-probe", type=_int, default=0, help="probe points for the metric-NTK (0 = none)")
    p.add_argument("--ntk-every", type=_int, default=0, help="record the metric-NTK every K epochs")
    p.add_argument("--no-ricci", action="store_true", help="skip the Ricci scalar check of the phi model")
    p.add_argument("--save", default=None, metavar="PATH", help="write the trained model to PATH (.npz; see docs/NETWORKS.md)")
    _add_manifold(p)


def run_train(args) -> dict:
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold
    from metricflow.networks.models import TrainConfig

    config = TrainConfig(
        model=args.model, n_points=args.points, epochs=args.epochs, width=args.width, depth=args.depth,
        activation=args.activation, lr=args.lr, warmup_epochs=args.warmup, batch_size=args.batch,
        lbfgs_steps=args.lbfgs, lbfgs_points=args.lbfgs_points, ntk_probe=args.ntk_probe,
        ntk_every=args.ntk_every, ricci=not args.no_ricci, seed=args.seed, manifold=manifold(args.manifold, args.psi),
    )
    if args.save is not None and not os.path.isdir(os.path.dirname(os.path.abspath(args.save))):
        raise MetricflowError(f"--save: the folder of {args.save} does not exist")
    result = run_job(config, cache=not args.no_cache)
    out = result.summary()
    if args.save is not None:
        from metricflow.networks.saved import save_model

        out["saved"] = save_model(result, args.save)
    return out


def show_train(r: dict) -> str:
    c = r["config"]
    v, se = r["val_sigma"], r["val_sigma_se"]
    f = r["final"]
    kappa = f"{r['kappa']:.7f} exact" if r["kappa_exact"] else f"{r['kappa']:.7f} ± {r['kappa_se']:.1e}"
    lines = [
        f"{c['model']} model, {c['depth']} x {c['width']} {c['activation']} ({r['n_params']:,} parameters), "
        f"{c['n_points']:,} points, {c['epochs']} epochs" + (f" + {r['lbfgs_steps_done']} L-BFGS steps" if c["lbfgs_steps"] else ""),
        f"validation sigma (reference kappa {kappa}) {v[0]:.4f} -> {f['sigma']:.5f} ± {f['sigma_se']:.5f}  "
        f"gain {r['gain']:.3g}  ({r['seconds']:.1f} s, training {r['train_seconds'][-1]:.1f} s)",
        f"self-normalised sigma {f['sigma_self']:.5f} ± {f['sigma_self_se']:.5f}; g_FS {r['sigma_fs']:.4f} ± {r['sigma_fs_se']:.4f}",
    ]
    if r["ntk_epochs"]:
        pairs = ", ".join(f"{e}: {w:.3g}" for e, w in zip(r["ntk_epochs"], r["ntk_wasserstein"]))
        lines.append(f"metric-NTK Wasserstein to epoch 0: {pairs}")
    if r["ricci_final"] is not None:
        lines.append(f"weighted mean |R|: FS {r['ricci_fs']:.3g}, initial {r['ricci_initial']:.3g}, "
                     f"trained {r['ricci_final']:.3g} ± {r['ricci_final_se']:.2g}")
    if r.get("saved"):
        lines.append(f"model written to {r['saved']}")
    return "\n".join(lines)


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="measure a saved model (train --save) on fresh points: sigma, kappa, non-PD, Ricci")
    p.add_argument("--model", required=True, metavar="PATH", help="the model file written by train --save")
    p.add_argument("--points", type=_int, default=100_000, help="fresh points (default 1e5)")
    p.add_argument("--ricci-points", type=_int, default=200, help="points of the Ricci measure, phi model (default 200; 0 = skip)")


def run_evaluate(args) -> dict:
    from metricflow.networks.saved import evaluate_model, load_model

    model = load_model(args.model)
    out = evaluate_model(model, args.points, args.seed, args.ricci_points).to_dict()
    out["file"] = args.model
    return out


def show_evaluate(r: dict) -> str:
    c = r["config"]
    kappa = f"{r['kappa']:.7f}" + (f" ± {r['kappa_se']:.1e}" if r["kappa_se"] else " (exact)")
    lines = [
        f"{r['file']}: {c['model']} model, {c['depth']} x {c['width']} {c['activation']}, trained on {c['n_points']:,} points "
        f"(seed {c['seed']}); {r['points']:,} fresh points (seed {r['seed']})",
        f"sigma (reference kappa {kappa})  {r['sigma']:.5f} ± {r['sigma_se']:.5f}",
        f"sigma (self-normalised, kappa {r['kappa_self']:.7f} ± {r['kappa_self_se']:.1e})  {r['sigma_self']:.5f} ± {r['sigma_self_se']:.5f}",
        f"non-positive-definite fraction {r['nonpd_fraction']:.4f}",
    ]
    if r["ricci"] is not None:
        lines.append(f"weighted mean |R| on {r['ricci_points']} points {r['ricci']:.4g} ± {r['ricci_se']:.2g}")
    lines.append(f"{r['seconds']:.1f} s")
    return "\n".join(lines)


# ---- entry point ----------------------------------------------------------------------

COMMANDS = {"sample": (add_sample, run_sample, show_sample)}
COMMANDS["flow"] = (add_flow, run_flow, show_flow)
COMMANDS["noise"] = (add_noise, run_noise, show_noise)
COMMANDS["scaling"] = (add_scaling, run_scaling, show_scaling)
COMMANDS["cluster"] = (add_cluster, run_cluster, show_cluster)
COMMANDS["train"] = (add_train, run_train, show_train)
COMMANDS["evaluate"] = (add_evaluate, run_evaluate, show_evaluate)


# ---- tune (section 3.2: Bayesian optimisation of a kernel flow's hyperparameters) -------


def add_tune(sub) -> None:
    p = sub.add_parser("tune", help="search a kernel flow's hyperparameters by Bayesian optimisation (table 1)")
    add_kernel_flag(p)
    p.add_argument("--iterations", type=_int, required=True, help="optimiser steps after the random ones")
    p.add_argument("--init", type=_int, default=5, help="random settings first (default 5)")
    p.add_argument("--steps", type=_int, default=20, help="flow steps per evaluation (default 20)")
    p.add_argument("--points", default=None, help="train points LOW,HIGH to search, or N to fix (default 250,2500)")
    p.add_argument("--test", type=_int, default=1000, help="test points per evaluation (default 1000)")
    p.add_argument("--lr", default=None, help="learning rate range LOW,HIGH (log scale), or a value to fix")
    add_search_flags(p)  # a range flag per kernel option some kernel searches, from the registry
    p.add_argument("--normalise", default=None, help="search, on or off (default: search, except delta)")
    p.add_argument("--update", default="covariant", help="the flows' update rule: covariant (default) or euclidean")
    p.add_argument("--loss", default=None, help="log, sigma, ultralocal or entropy (default: log for covariant, sigma for euclidean)")
    p.add_argument("--unweighted", action="store_true", help="pointwise loss without the CY weights")
    p.add_argument("--diverged", default="last", help="score of a diverged flow: last (gain at last good step) or floor")
    p.add_argument("--spread", type=_int, default=3, help="fresh point sets for the best setting (default 3)")
    _add_manifold(p)


def run_tune(args) -> dict:
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold
    from metricflow.studies.tuning import TuneConfig, run_tune as tune

    bounds = []
    for name, flag, text in (("n_train", "--points", args.points), ("lr", "--lr", args.lr)):
        if text is not None:
            values = _number_list(text, flag)
            if len(values) > 2:
                raise MetricflowError(f"give one value or a range LOW,HIGH for {flag}, got {text!r}")
            bounds.append((name, values[0], values[-1]))
    bounds += search_bounds_from_args(args, _number_list)
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


COMMANDS["tune"] = (add_tune, run_tune, show_tune)


# ---- reproduce (all of section 3, one report; issue 9) ----------------------------------


def add_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="run every experiment of section 3 and write DIR/report.html and report.json")
    p.add_argument("--out", required=True, help="directory for report.html and report.json (created if needed)")
    p.add_argument("--quick", action="store_true", help="smaller sizes: about 10 minutes on 2 cores")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--parallel", action="store_true", help="run the independent pieces at once on the job runner's workers (or --scheduler)")


def run_reproduce(args) -> dict:
    from metricflow.reproduce.core import ReproduceConfig, reproduce

    config = ReproduceConfig(quick=args.quick, seed=args.seed)
    if args.parallel and args.no_cache:
        raise MetricflowError("--parallel runs the pieces as stored jobs; drop --no-cache")
    result = reproduce(config, args.out, cache=not args.no_cache, progress=not args.no_progress, parallel=args.parallel)
    return result.summary()


def show_reproduce(r: dict) -> str:
    counts = {}
    for n in r["numbers"]:
        counts[n["status"]] = counts.get(n["status"], 0) + 1
    lines = [f"{r['mode']} mode: {r['computed']} pieces computed, {r['stored']} from the store, {r['seconds']:.0f} s "
             f"(plan estimate {r['plan_estimate_seconds']:.0f} s); load {r['load']['start']} -> {r['load']['end']} "
             f"on {r['load']['cpus']} CPUs",
             f"{'quantity':<62} {'paper':>14}  {'ours':<28} status"]
    lines += [f"{n['quantity'][:62]:<62} {n['paper'][:14]:>14}  {n['ours_text'][:28]:<28} {n['status']}" for n in r["numbers"]]
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items()))
    if r["failed"]:
        lines.append("failed: " + "; ".join(r["failed"]))
    lines.append(f"report: {r['out']}/report.html and report.json")
    return "\n".join(lines)


COMMANDS["reproduce"] = (add_reproduce, run_reproduce, show_reproduce)


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (and exit 2), like every other bad input."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="python -m metricflow", description="Neural-network metric flows on Calabi-Yau manifolds.")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="run jobs on this Dask scheduler (default: $METRICFLOW_SCHEDULER, else locally)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _, _ in COMMANDS.values():
        add(sub)
    for p in sub.choices.values():  # options every subcommand has
        p.add_argument("--seed", type=_int, default=0)
        p.add_argument("--no-cache", action="store_true", help="compute afresh; do not read or write the result store")
        p.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, or 2 for bad input)."""
    args = build_parser().parse_args(argv)
    _, run, show = COMMANDS[args.command]
    try:
        if args.scheduler is not None:  # jobs (run_job, run_many, JobStore) read it from here
            from metricflow.jobs.dask import SCHEDULER_ENV, executor_for

            os.environ[SCHEDULER_ENV] = args.scheduler
            executor_for(args.scheduler)  # fail now, in one line, if it cannot be reached
        result = run(args)
    except MetricflowError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; use fewer points", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else show(result))
    return 0


# ---- donaldson (balanced metrics, issue 17) ---------------------------------------------


def add_donaldson(sub) -> None:
    p = sub.add_parser("donaldson", help="Donaldson's balanced metrics at degrees k: sigma_k on fresh points")
    p.add_argument("--k", required=True, help="degrees k, comma-separated, e.g. 1,2,3,4")
    p.add_argument("--points", type=_int, required=True, help="points N for the T-operator integrals")
    p.add_argument("--test", type=_int, default=None, help="fresh test points for sigma (default: as --points)")
    p.add_argument("--optimise", action="store_true", help="also minimise sigma over h from the balanced h (Adam)")
    p.add_argument("--tol", type=float, default=1e-6, help="stop when |T(h)^-1 - h| / |h| < TOL (default 1e-6)")
    p.add_argument("--max-iterations", type=_int, default=200, help="cap on T-operator iterations per k")
    p.add_argument("--opt-steps", type=_int, default=300, help="Adam steps of --optimise (default 300)")
    p.add_argument("--opt-lr", type=float, default=5e-3, help="Adam learning rate of --optimise (default 5e-3)")
    p.add_argument("--opt-points", type=_int, default=None, help="training points of --optimise (default min(N/2, 5000)); the next as many choose the step")
    _add_manifold(p)


def run_donaldson(args) -> dict:
    from metricflow.flows.donaldson import DonaldsonConfig
    from metricflow.jobs.runner import run_job
    from metricflow.geometry.manifolds import manifold

    config = DonaldsonConfig(
        manifold(args.manifold, args.psi), _number_list(args.k, "k", integer=True), args.points,
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


COMMANDS["donaldson"] = (add_donaldson, run_donaldson, show_donaldson)


def _psi_list(text: str) -> tuple:
    try:
        values = tuple(complex(t.strip().replace(" ", "").replace("i", "j")) for t in text.split(",") if t.strip())
    except ValueError:
        raise MetricflowError(f"psi values must be complex numbers separated by commas, such as 0,0.5,10+3j; got {text!r}") from None
    if not values:
        raise MetricflowError("give at least one psi value")
    return values


def add_donaldson_sweep(sub) -> None:
    p = sub.add_parser("donaldson-sweep", help="sigma_FS and the balanced sigma_k along the Dwork family (one job per psi)")
    p.add_argument("--psis", default="0,0.1,0.3,0.5,0.8,1.5,10+3j", help="psi values, comma-separated")
    p.add_argument("--k", type=_int, default=3, help="degree of the balanced metric (default 3)")
    p.add_argument("--points", type=_int, default=20_000, help="points N for the T-operator (default 2e4)")
    p.add_argument("--test", type=_int, default=None, help="fresh test points (default: as --points)")
    p.add_argument("--degree", type=_int, default=5, help="Dwork degree d (default 5, quintics)")


def run_donaldson_sweep(args) -> dict:
    from metricflow.studies.moduli import DonaldsonSweepConfig, run_donaldson_sweep as sweep
    from metricflow.jobs.runner import run_job

    config = DonaldsonSweepConfig(
        psis=_psi_list(args.psis), k=args.k, n_points=args.points,
        n_test=args.points if args.test is None else args.test, seed=args.seed, degree=args.degree,
    )
    if args.no_cache:
        from metricflow.flows.donaldson import run_donaldson as one

        return sweep(config, map_configs=lambda function, cs: [one(c) for c in cs]).summary()
    return run_job(config).summary()


def show_donaldson_sweep(r: dict) -> str:
    lines = [f"balanced metrics at k = {r['k']}, {r['points']:,} points, {r['test_points']:,} test points",
             f"{'psi':>10} {'sigma_FS':>16} {'sigma_k':>16} {'kappa':>10} {'iter':>5}"]
    for row in r["per_psi"]:
        lines.append(f"{complex(*row['psi']):>10g} {row['sigma_fs']:>8.4f} ± {row['sigma_fs_se']:.4f} "
                     f"{row['sigma']:>8.4f} ± {row['sigma_se']:.4f} {row['kappa']:>10.6f} {row['iterations']:>5}")
    return "\n".join(lines)


COMMANDS["donaldson-sweep"] = (add_donaldson_sweep, run_donaldson_sweep, show_donaldson_sweep)
