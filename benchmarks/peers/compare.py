"""Peer libraries' metric networks beside ours (benchmarks/peers/README.md).

Run through ``bash benchmarks/peers/run_cymetric.sh``, which builds the peers' venvs first; by
hand: ``python benchmarks/peers/compare.py --cymetric-python VENV/bin/python``.

Each model trains in its own process (cymetric_worker.py in cymetric's venv,
mlgeometry_worker.py in MLGeometry's, metricflow_worker.py in ours), on its own library's
10^5 Fermat quintic points (10 % held out), for the same number of epochs. They take turns,
one epoch each, so all see the same machine load, and each waits while another runs. After
every epoch each saves its metric on its validation points; sigma is measured here, by the
same code for all (``metricflow.measures.measure_sigma``), in both conventions: against the
exact Fermat kappa (scaled by s^3 for a metric in the class s [g_FS], as MLGeometry's is), and
self-normalised (kappa from the metric on the same points: cymetric's convention).

Prints a table as it goes, then a summary and one JSON line ("RESULT {...}"), also kept as
result.json in the run's folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from metricflow.geometry.manifolds import Manifold  # noqa: E402
from metricflow.geometry.measures import Kappa, measure_sigma  # noqa: E402
from metricflow.geometry.points import points_from_coordinates  # noqa: E402
from metricflow.geometry.reference import reference_kappa  # noqa: E402

OURS = "metricflow"


class Worker:
    """A model's process; it answers each command with one "PEER {json}" line."""

    def __init__(self, name: str, argv: list[str], log: Path, env=None):
        self.name = name
        self.log_path = log
        self.log = open(log, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, bufsize=1, env=env)

    def read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("PEER "):
                out = json.loads(line[5:])
                if "error" in out:
                    raise RuntimeError(f"{self.name}: {out['error']}")
                return out
            self.log.write(line)
        self.log.flush()
        tail = self.log_path.read_text()[-3000:]
        raise RuntimeError(f"the {self.name} worker ended (exit {self.proc.wait()}); its log {self.log_path} ends:\n{tail}")

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> dict:
        out = self.ask("quit")
        self.proc.wait(timeout=60)
        self.log.close()
        return out


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def sigma_of_file(path: Path, kref) -> dict:
    """Both sigmas (with errors) and the non-positive-definite fraction of a saved metric."""
    a = np.load(path)
    out = measure_sigma(a["g"], a["omega_sq"], a["weights"], kref).to_dict()
    out["nonpd_fraction"] = float(np.mean(np.linalg.eigvalsh(a["g"])[:, 0] <= 0))
    return out


def check_conventions(path: Path) -> dict:
    """A peer's |Omega|^2 / det g_FS weights (and eta_FS = det g_FS / |Omega|^2, if it saved
    g_FS) against ours at the peer's own validation points.

    Both are chart-independent. A constant weight ratio means the peer's weights are ours up
    to normalisation; eta_FS equal point by point means g_FS (1/pi) and Omega (1 / dp/dz_elim)
    are normalised alike, so the one reference kappa applies to the peer's metric as it is.
    """
    a = np.load(path)
    ours = points_from_coordinates(Manifold(), a["z"])
    ratio = a["weights"] / ours.weights
    out = {"weights_ratio_rel_spread": float(np.std(ratio) / np.mean(ratio))}
    if "g_fs" in a:
        eta = np.real(np.linalg.det(a["g_fs"])) / a["omega_sq"]
        out["eta_fs_max_rel_diff"] = float(np.max(np.abs(eta * ours.weights - 1)))
    return out


def prepare_cymetric(python: str, data: Path, n_points: int) -> dict:
    """cymetric's points (notebook 1), in a process of their own."""
    proc = subprocess.run([python, str(HERE / "cymetric_worker.py"), "prepare", str(data), str(n_points)],
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PEER ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"error: cymetric's point generation failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][5:])


def fmt_sigma(s: dict) -> str:
    return f"{s['sigma']:.4f}±{s['sigma_se']:.4f} | {s['sigma_self']:.4f}±{s['sigma_self_se']:.4f}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cymetric-python", help="python of the venv with cymetric and TensorFlow 2.14")
    p.add_argument("--mlgeometry-python", help="python of the venv with mlgeometry-jax (optional second peer)")
    p.add_argument("--workdir", default=None, help="where run files go (default: metricflow-peers in the temp dir)")
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.points < 1000:
        p.error("need --epochs >= 1 and --points >= 1000")
    if not (args.cymetric_python or args.mlgeometry_python):
        p.error("name at least one peer: --cymetric-python and/or --mlgeometry-python")

    base = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir()) / "metricflow-peers"
    run = base / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run.mkdir(parents=True, exist_ok=True)
    print(f"run files: {run}")
    print(f"load average (1, 5, 15 min) at the start: {load()} on {os.cpu_count()} cores")
    kref = reference_kappa(Manifold())
    print(f"reference kappa (exact, Fermat quintic): {kref.value:.7f}")
    result = {"points": args.points, "epochs": args.epochs, "seed": args.seed, "kappa_ref": kref.value,
              "load_start": load(), "models": {}}

    argvs = {}
    if args.cymetric_python:
        data = run / "cymetric-data"
        prep = prepare_cymetric(args.cymetric_python, data, args.points)
        result["cymetric_points"] = prep
        print(f"cymetric points: {args.points:,} in {prep['seconds']:.1f} s, peak {prep['peak_rss_mib']:.0f} MiB, "
              f"its kappa of g_FS {prep['kappa']:.6f}")
        argvs["cymetric"] = [args.cymetric_python, str(HERE / "cymetric_worker.py"), "train", str(data), str(args.seed)]
    if args.mlgeometry_python:
        argvs["mlgeometry"] = [args.mlgeometry_python, str(HERE / "mlgeometry_worker.py"), str(args.points), str(args.seed)]
    argvs[OURS] = [sys.executable, str(HERE / "metricflow_worker.py"), str(args.points), str(args.epochs), str(args.seed)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    workers = {}
    try:
        # one at a time, so that no start-up competes with another
        for name, cmd in argvs.items():
            workers[name] = Worker(name, cmd, run / f"{name}.log", env=env if name == OURS else None)
            result["models"][name] = {"setup": workers[name].read(), "seconds": [], "sigma": [], "epochs": []}
        models = result["models"]
        # A model whose metric lies in the class s [g_FS] (MLGeometry's: s = pi k) has kappa s^3 times ours.
        krefs = {}
        for name, m in models.items():
            scale = m["setup"].get("class_scale", 1.0)
            krefs[name] = kref if scale == 1.0 else Kappa(kref.value * scale**3, kref.se * scale**3, exact=kref.exact)
            m["kappa_ref"] = krefs[name].value
        print("\nsigma on each model's validation points: reference kappa ± se | self-normalised ± se;"
              " seconds: the epoch's training only")
        print("epoch  " + "  ".join(f"{name + ' s':>10} {name + ' sigma':>33}" for name in workers))
        for epoch in range(args.epochs + 1):
            cells = []
            for name, w in workers.items():
                m = models[name]
                if epoch > 0:
                    out = w.ask("epoch")
                    m["epochs"].append(out)
                    m["seconds"].append(out["seconds"])
                path = run / f"{name}-epoch{epoch}.npz"
                w.ask(f"eval {path}")
                m["sigma"].append(sigma_of_file(path, krefs[name]))
                if epoch == 0 and name != OURS:
                    m["conventions"] = check_conventions(path)
                cells.append(f"{m['seconds'][-1] if epoch else float('nan'):10.2f} {fmt_sigma(m['sigma'][-1]):>33}")
            print(f"{epoch:5d}  " + "  ".join(cells), flush=True)
        for name, w in workers.items():
            models[name]["peak_rss_mib"] = w.close()["peak_rss_mib"]
    finally:
        for w in workers.values():
            if w.proc.poll() is None:
                w.proc.kill()

    steady = slice(1, None) if args.epochs > 1 else slice(0, None)
    which = "epochs 2 and later" if args.epochs > 1 else "epoch 1, the only one"
    ours_s = float(np.mean(models[OURS]["seconds"][steady]))
    print()
    for name, m in models.items():
        if name == OURS:
            continue
        m["steady_ratio"] = float(np.mean(m["seconds"][steady]) / ours_s)
        conv = m["conventions"]
        line = f"{name} / ours, steady-state epoch time ({which}): {m['steady_ratio']:.1f}; its weights / ours" \
               f" at its points: relative spread {conv['weights_ratio_rel_spread']:.1e}"
        if "eta_fs_max_rel_diff" in conv:
            line += f"; its det g_FS / |Omega|^2 matches ours to {conv['eta_fs_max_rel_diff']:.1e}"
        print(line)
    for name, m in models.items():
        last = m["sigma"][-1]
        print(f"{name}: kappa of its metric / reference kappa after the last epoch: {last['kappa_self'] / last['kappa']:.4f}"
              f" ± {last['kappa_self_se'] / last['kappa']:.4f}; non-positive-definite points {last['nonpd_fraction']:.2%}")
    for name, m in models.items():
        extra = f" (its point generation: {result['cymetric_points']['peak_rss_mib']:.0f} MiB)" if name == "cymetric" else ""
        print(f"peak memory, {name} process: {m['peak_rss_mib']:.0f} MiB{extra}")
    result["load_end"] = load()
    print(f"load average at the end: {result['load_end']}")
    print("RESULT " + json.dumps(result))
    (run / "result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
