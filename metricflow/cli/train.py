"""The ``train`` and ``evaluate`` subcommands: finite metric networks (section 3.3)."""

from __future__ import annotations

import os

from metricflow.cli.options import add_manifold, int_arg
from metricflow.errors import MetricflowError

# Named sets of TrainConfig fields (``train_preset``); the flags given override them.
TRAIN_PRESETS = ("default", "record")


def train_preset(name: str) -> dict:
    """The TrainConfig fields of a preset: default = {} (TrainConfig's own defaults), record =
    ``networks.invariant.RECORD_PRESET``."""
    if name == "record":
        from metricflow.networks.invariant import RECORD_PRESET

        return dict(RECORD_PRESET)
    return {}


def add_parser(sub) -> None:
    """Declare the ``train`` and ``evaluate`` subcommands on ``sub`` (an argparse subparsers action)."""
    add_train(sub)
    add_evaluate(sub)


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a finite metric network with the sigma loss; record the metric-NTK")
    p.add_argument("--preset", default="default", choices=TRAIN_PRESETS,
                   help="default (TrainConfig's defaults) or record (the sigma record of docs/NETWORKS.md: "
                        "symmetric phi model on the Fermat quintic); the flags below override it")
    p.add_argument("--model", default=None, help="metric (g_FS o (1 + NN)) or phi (g_FS + d dbar phi); default metric")
    p.add_argument("--features", default=None, help="phi model: projective (default) or symmetric (Fermat quintic only)")
    p.add_argument("--base-k", type=int_arg, default=None,
                   help="symmetric phi model: degree 2-4 of the algebraic base metric (0 = g_FS, the default)")
    p.add_argument("--points", type=int_arg, default=None, help="points, train + validation (default 1e5)")
    p.add_argument("--epochs", type=int_arg, default=None, help="(default 50)")
    p.add_argument("--width", type=int_arg, default=None, help="(default 64)")
    p.add_argument("--depth", type=int_arg, default=None, help="(default 3)")
    p.add_argument("--activation", default=None, help="relu, gelu or erf (default relu for metric, gelu for phi)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-2; cosine decay to lr * --lr-final)")
    p.add_argument("--lr-final", type=float, default=None, help="the rate's final fraction (default 0.01)")
    p.add_argument("--warmup", type=int_arg, default=None, help="epochs of linear learning-rate warm-up (default 0)")
    p.add_argument("--batch", type=int_arg, default=None, help="batch size (default 200)")
    p.add_argument("--lbfgs", type=int_arg, default=None, help="full-batch L-BFGS steps after the epochs (default 0)")
    p.add_argument("--lbfgs-points", type=int_arg, default=None, help="train points of the L-BFGS loss (default 2e4)")
    p.add_argument("--ntk-probe", type=int_arg, default=None, help="probe points for the metric-NTK (0 = none)")
    p.add_argument("--ntk-every", type=int_arg, default=None, help="record the metric-NTK every K epochs")
    p.add_argument("--no-ricci", action="store_true", default=None, help="skip the Ricci scalar check of the phi model")
    p.add_argument("--save", default=None, metavar="PATH", help="write the trained model to PATH (.npz; see docs/NETWORKS.md)")
    add_manifold(p)
    p.set_defaults(run=run_train, show=show_train)


def train_config(args):
    """The TrainConfig of ``train``'s arguments: the preset's fields, then every flag given."""
    from metricflow.geometry.manifolds import manifold
    from metricflow.networks.models import TrainConfig

    flags = {
        "model": args.model, "features": args.features, "base_k": args.base_k, "n_points": args.points,
        "epochs": args.epochs, "width": args.width, "depth": args.depth, "activation": args.activation,
        "lr": args.lr, "lr_final_fraction": args.lr_final, "warmup_epochs": args.warmup, "batch_size": args.batch,
        "lbfgs_steps": args.lbfgs, "lbfgs_points": args.lbfgs_points, "ntk_probe": args.ntk_probe,
        "ntk_every": args.ntk_every, "ricci": None if args.no_ricci is None else not args.no_ricci,
    }
    fields = train_preset(args.preset)
    fields.update({name: value for name, value in flags.items() if value is not None})
    return TrainConfig(seed=args.seed, manifold=manifold(args.manifold, args.psi), **fields)


def run_train(args) -> dict:
    import resource

    from metricflow.jobs.runner import run_job

    config = train_config(args)
    if args.save is not None and not os.path.isdir(os.path.dirname(os.path.abspath(args.save))):
        raise MetricflowError(f"--save: the folder of {args.save} does not exist")
    result = run_job(config, cache=not args.no_cache)
    out = result.summary()
    out["training_seconds"] = float(result.lbfgs_seconds[-1] if len(result.lbfgs_seconds) else result.train_seconds[-1])
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process (0 work if stored)
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
        f"{c['model']} model{' (symmetric features' + (', base k = ' + str(c['base_k']) if c.get('base_k') else '') + ')' if c.get('features') == 'symmetric' else ''}, "
        f"{c['depth']} x {c['width']} {c['activation']} ({r['n_params']:,} parameters), "
        f"{c['n_points']:,} points, {c['epochs']} epochs" + (f" + {r['lbfgs_steps_done']} L-BFGS steps" if c["lbfgs_steps"] else ""),
        f"validation sigma (reference kappa {kappa}) {v[0]:.4f} -> {f['sigma']:.5f} ± {f['sigma_se']:.5f}  "
        f"gain {r['gain']:.3g}  ({r['seconds']:.1f} s, training {r['training_seconds']:.1f} s, peak RSS {r['peak_rss_mib']:.0f} MiB)",
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
