"""The ``train`` and ``evaluate`` subcommands: finite metric networks (section 3.3)."""

from __future__ import annotations

import os

from metricflow.cli.options import add_manifold, int_arg
from metricflow.errors import MetricflowError


def add_parser(sub) -> None:
    """Declare the ``train`` and ``evaluate`` subcommands on ``sub`` (an argparse subparsers action)."""
    add_train(sub)
    add_evaluate(sub)


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a finite metric network with the sigma loss; record the metric-NTK")
    p.add_argument("--model", default="metric", help="metric (g_FS o (1 + NN)) or phi (g_FS + d dbar phi)")
    p.add_argument("--points", type=int_arg, default=100_000, help="points, train + validation (default 1e5)")
    p.add_argument("--epochs", type=int_arg, default=50)
    p.add_argument("--width", type=int_arg, default=64)
    p.add_argument("--depth", type=int_arg, default=3)
    p.add_argument("--activation", default=None, help="relu, gelu or erf (default relu for metric, gelu for phi)")
    p.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (cosine decay to 1%%)")
    p.add_argument("--warmup", type=int_arg, default=0, help="epochs of linear learning-rate warm-up (default 0)")
    p.add_argument("--batch", type=int_arg, default=None, help="batch size (default 200)")
    p.add_argument("--lbfgs", type=int_arg, default=0, help="full-batch L-BFGS steps after the epochs (default 0)")
    p.add_argument("--lbfgs-points", type=int_arg, default=20_000, help="train points of the L-BFGS loss (default 2e4)")
    p.add_argument("--ntk-probe", type=int_arg, default=0, help="probe points for the metric-NTK (0 = none)")
    p.add_argument("--ntk-every", type=int_arg, default=0, help="record the metric-NTK every K epochs")
    p.add_argument("--no-ricci", action="store_true", help="skip the Ricci scalar check of the phi model")
    p.add_argument("--save", default=None, metavar="PATH", help="write the trained model to PATH (.npz; see docs/NETWORKS.md)")
    add_manifold(p)
    p.set_defaults(run=run_train, show=show_train)


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
    v = r["val_sigma"]
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
    p.add_argument("--points", type=int_arg, default=100_000, help="fresh points (default 1e5)")
    p.add_argument("--ricci-points", type=int_arg, default=200, help="points of the Ricci measure, phi model (default 200; 0 = skip)")
    p.set_defaults(run=run_evaluate, show=show_evaluate)


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
