"""cymetric's JAX backend beside our networks (benchmarks/peers/README.md, "cymetric's JAX
backend").

Run through ``bash benchmarks/peers/run_cymetric_jax.sh``, which builds the peer's venv first;
by hand: ``python benchmarks/peers/compare_jax.py --peer-python VENV/bin/python``.

For each model family (the metric model, then the phi model) three processes take turns, one
epoch each: cymetric's JAX backend as shipped (its loop compiles the train step again every
epoch), the same with its compiled step kept (cymetric_jax_worker.py, in its venv), and ours
(metricflow_model_worker.py). Each peer process trains on cymetric's own 10^5 points (its
PointGenerator, 10 % held out), ours on our own. After every epoch each saves its metric on its
validation points, and sigma is measured here, by the same code for all
(``metricflow.geometry.measures.measure_sigma``), in both conventions: against the exact
Fermat kappa, and self-normalised (kappa from the metric on the same points). The peer's own
measure, cymetric's ``sigma_measure``, is self-normalised too and is printed beside ours.

Prints a table as it goes, then a summary in Markdown and one JSON line ("RESULT {...}"), also
kept as result.json in the run's folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from compare import ROOT, Worker, check_conventions, fmt_sigma, load, prepare_cymetric, sigma_of_file  # noqa: E402

from metricflow.geometry.manifolds import Manifold  # noqa: E402
from metricflow.geometry.reference import reference_kappa  # noqa: E402

OURS = "ours"
SIDES = ("cymetric-jax shipped", "cymetric-jax kept", OURS)


def steady(seconds: list) -> float:
    """Mean epoch time of epochs 2 and later (epoch 1 when it is the only one)."""
    return float(np.mean(seconds[1:] if len(seconds) > 1 else seconds))


def sigma_at(cumulative: list, sigmas: list, t: float) -> tuple[float, int]:
    """(sigma, epoch) after the last epoch finished within t seconds of training."""
    done = [e for e, s in enumerate(cumulative) if s <= t + 1e-9]
    return sigmas[done[-1]], done[-1]


def time_to(cumulative: list, sigmas: list, target: float):
    """Training seconds to the first epoch with sigma <= target, or None."""
    for s, sig in zip(cumulative, sigmas):
        if sig <= target:
            return s
    return None


def run_family(kind: str, args, data: Path, run: Path, kref) -> dict:
    argvs = {
        "cymetric-jax shipped": [args.peer_python, str(HERE / "cymetric_jax_worker.py"), kind, "shipped", str(data),
                                 str(args.seed), str(args.epochs)],
        "cymetric-jax kept": [args.peer_python, str(HERE / "cymetric_jax_worker.py"), kind, "kept", str(data),
                              str(args.seed), str(args.epochs)],
        OURS: [sys.executable, str(HERE / "metricflow_model_worker.py"), kind, str(args.points), str(args.epochs),
               str(args.seed)],
    }
    env_ours = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env_peer = dict(os.environ, CYMETRIC_FRAMEWORK="jax")
    models, workers = {}, {}
    print(f"\n== {kind} model: load average {load()}")
    try:
        for name, cmd in argvs.items():  # one at a time, so that no start-up competes with another
            tag = name.replace(" ", "-")
            workers[name] = Worker(name, cmd, run / f"{kind}-{tag}.log", env=env_ours if name == OURS else env_peer)
            models[name] = {"setup": workers[name].read(), "seconds": [], "cpu_seconds": [], "sigma": [], "own_sigma": [], "epochs": []}
        print("sigma on each side's validation points: reference kappa ± se | self-normalised ± se;"
              " seconds: the epoch's training only (wall)")
        print("epoch  " + "  ".join(f"{name + ' s':>24} {'sigma':>33}" for name in workers))
        for epoch in range(args.epochs + 1):
            cells = []
            for name, w in workers.items():
                m = models[name]
                if epoch > 0:
                    out = w.ask("epoch")
                    m["epochs"].append(out)
                    m["seconds"].append(out["seconds"])
                    m["cpu_seconds"].append(out["cpu_seconds"])
                path = run / f"{kind}-{name.replace(' ', '-')}-epoch{epoch}.npz"
                out = w.ask(f"eval {path}")
                if "own_sigma" in out:
                    m["own_sigma"].append(out["own_sigma"])
                m["sigma"].append(sigma_of_file(path, kref))
                if epoch == 0 and name != OURS:
                    m["conventions"] = check_conventions(path)
                cells.append(f"{m['seconds'][-1] if epoch else float('nan'):24.2f} {fmt_sigma(m['sigma'][-1]):>33}")
            print(f"{epoch:5d}  " + "  ".join(cells), flush=True)
        for name, w in workers.items():
            out = w.close()
            models[name]["peak_rss_mib"] = out["peak_rss_mib"]
            if "train_steps_built" in out:
                models[name]["train_steps_built"] = out["train_steps_built"]
    finally:
        for w in workers.values():
            if w.proc.poll() is None:
                w.proc.kill()
    for m in models.values():
        m["steady_seconds"] = steady(m["seconds"])
        m["steady_cpu_seconds"] = steady(m["cpu_seconds"])
        m["cumulative"] = [0.0] + list(np.cumsum(m["seconds"]))
    ours = models[OURS]
    for name, m in models.items():
        if name == OURS:
            continue
        m["steady_ratio"] = m["steady_seconds"] / ours["steady_seconds"]
        m["steady_cpu_ratio"] = m["steady_cpu_seconds"] / ours["steady_cpu_seconds"]
        sig = [s["sigma"] for s in m["sigma"]]
        ours_sig = [s["sigma"] for s in ours["sigma"]]
        # equal wall time: ours at the peer's whole training time, the peer at ours
        m["ours_sigma_at_peer_time"], m["ours_epoch_at_peer_time"] = sigma_at(ours["cumulative"], ours_sig, m["cumulative"][-1])
        m["sigma_at_ours_time"], m["epoch_at_ours_time"] = sigma_at(m["cumulative"], sig, ours["cumulative"][-1])
        m["ours_seconds_to_its_sigma"] = time_to(ours["cumulative"], ours_sig, sig[-1])
    return models


def summary(kind: str, models: dict, epochs: int) -> list[str]:
    """The family's table in Markdown, one column per side."""
    names = list(models)

    def row(label, cell):
        return f"| {label} | " + " | ".join(cell(models[n]) for n in names) + " |"

    arrow = lambda xs: " → ".join(f"{x:.3f}" for x in xs)  # noqa: E731
    lines = [f"**{kind} model**, {epochs} epochs", "",
             "| | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names),
             row("batch", lambda m: "64, then 10,000" if "batch_sizes" in m["setup"] else str(m["setup"]["batch_size"])),
             row("parameters", lambda m: f"{m['setup']['n_params']:,}"),
             row("epoch seconds", lambda m: ", ".join(f"{s:.2f}" for s in m["seconds"])),
             row("steady epoch (s)", lambda m: f"{m['steady_seconds']:.2f}"),
             row("steady epoch / ours", lambda m: f"{m.get('steady_ratio', 1.0):.1f}"),
             row("CPU seconds per epoch", lambda m: ", ".join(f"{s:.2f}" for s in m["cpu_seconds"])),
             row("steady epoch, CPU s / ours", lambda m: f"{m.get('steady_cpu_ratio', 1.0):.1f}"),
             row("train steps built", lambda m: str(m.get("train_steps_built", "—"))),
             row("σ, reference κ", lambda m: arrow(s["sigma"] for s in m["sigma"])),
             row("σ, self-normalised", lambda m: arrow(s["sigma_self"] for s in m["sigma"])),
             row("its own sigma_measure", lambda m: arrow(m["own_sigma"]) if m["own_sigma"] else "—"),
             row("standard error of σ, last", lambda m: f"{m['sigma'][-1]['sigma_se']:.4f}"),
             row("training seconds, all epochs", lambda m: f"{m['cumulative'][-1]:.1f}"),
             row("σ at ours' training time", lambda m: f"{m['sigma_at_ours_time']:.3f} (epoch {m['epoch_at_ours_time']})"
                 if "sigma_at_ours_time" in m else f"{m['sigma'][-1]['sigma']:.3f}"),
             row("ours' σ at its training time", lambda m: f"{m['ours_sigma_at_peer_time']:.3f}" if "ours_sigma_at_peer_time" in m else "—"),
             row("ours' seconds to its last σ", lambda m: ("not reached" if m["ours_seconds_to_its_sigma"] is None
                                                          else f"{m['ours_seconds_to_its_sigma']:.2f}")
                 if "ours_seconds_to_its_sigma" in m else "—"),
             row("peak RSS (MiB)", lambda m: f"{m['peak_rss_mib']:.0f}")]
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--peer-python", required=True, help="python of the venv with cymetric (ruehlef), JAX and Equinox")
    p.add_argument("--workdir", default=None, help="where run files go (default: metricflow-peers-jax in the temp dir)")
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default="metric,phi", help="comma-separated: metric, phi (default both)")
    args = p.parse_args(argv)
    kinds = [k for k in args.models.split(",") if k]
    if args.epochs < 1 or args.points < 1000 or not kinds or set(kinds) - {"metric", "phi"}:
        p.error("need --epochs >= 1, --points >= 1000 and --models from metric, phi")

    from metricflow._jax import jax

    base = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir()) / "metricflow-peers-jax"
    run = base / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run.mkdir(parents=True, exist_ok=True)
    print(f"run files: {run}")
    print(f"device: {jax.devices()[0]} ({jax.default_backend()})")
    print(f"load average (1, 5, 15 min) at the start: {load()} on {os.cpu_count()} cores")
    kref = reference_kappa(Manifold())
    print(f"reference kappa (exact, Fermat quintic): {kref.value:.7f}")
    result = {"points": args.points, "epochs": args.epochs, "seed": args.seed, "kappa_ref": kref.value,
              "load_start": load(), "families": {}}

    data = run / "cymetric-data"
    prep = prepare_cymetric(args.peer_python, data, args.points)
    result["cymetric_points"] = prep
    print(f"cymetric points: {args.points:,} in {prep['seconds']:.1f} s, peak {prep['peak_rss_mib']:.0f} MiB, "
          f"its kappa of g_FS {prep['kappa']:.6f}")

    lines = []
    for kind in kinds:
        models = run_family(kind, args, data, run, kref)
        result["families"][kind] = models
        conv = models["cymetric-jax kept"]["conventions"]
        lines += summary(kind, models, args.epochs) + [
            "", f"its weights / ours at its points: relative spread {conv['weights_ratio_rel_spread']:.1e}; its det g_FS /"
            f" |Omega|^2 matches ours to {conv.get('eta_fs_max_rel_diff', float('nan')):.1e}", ""]
    result["load_end"] = load()
    print("\n" + "\n".join(lines))
    first = result["families"][kinds[0]]
    s, ss = first["cymetric-jax kept"]["setup"], first[OURS]["setup"]
    print(f"peer: cymetric {s['cymetric']}, jax {s['jax']}, equinox {s['equinox']}, device {s['device']}; "
          f"ours: jax {ss['jax']}, device {ss['device']}")
    print(f"load average at the start {result['load_start']}, at the end {result['load_end']}")
    print("RESULT " + json.dumps(result))
    (run / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
