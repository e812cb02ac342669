"""Seconds per epoch, peak memory and results of the finite metric networks (section 3.3).

Each case runs in its own subprocess so that ru_maxrss is that case's peak. Prints one JSON
line per case and the machine load (uptime) before and after. Usage:

  python benchmarks/bench_networks.py                # all cases (about 30 minutes on 2 cores)
  python benchmarks/bench_networks.py metric ntk200  # only the named cases

Cases:
  metric    metric model 3 x 64 ReLU, 10^5 points, 50 epochs, metric-NTK on 100 probe
            points every 5 epochs (fig. 4). Target: <= 5 min on 2 cores.
  phi       phi model 3 x 64 GELU, 10^5 points, 5 epochs, with the Ricci check.
  phi_best  the phi model's recipe for sigma <= 0.002 (PHI_BEST below): 10^5 points, batch
            100, 30 epochs, Ricci check; seconds per epoch, training time to reference-kappa
            validation sigma <= 0.0167, 0.005 and 0.002, then the saved model evaluated on
            10^5 fresh points (seed 12345). Target: sigma <= 0.002 within 10 minutes.
  phi_fast  the same recipe with 20 epochs (its cosine schedule ends at epoch 20).
  metric50  the metric model 3 x 64 ReLU, 10^5 points, 50 epochs, no NTK snapshots:
            reference-kappa sigma after 50 epochs (cymetric's setting).
  ntk200    time for the (9 * 200)^2 metric-NTK and its spectrum, both models, at init.
  width     the default width sweep (NTK parameterisation, gradient descent).
  trained   the default trained-kernel experiment (eq. 3.5 with a frozen metric-NTK).

Worker start (``--startup``): a fresh interpreter imports what a warm worker imports
(``metricflow.jobs.local.WARM_MODULES``), then trains a small metric network (3 x 64 ReLU,
2000 points, 2 epochs, seed 0), once without and once with metric-NTK snapshots (10 probe
points, every epoch). Prints the seconds from process start to the end of the first epoch,
the peak RSS, and whether neural_tangents or tensorflow were imported:

  python benchmarks/bench_networks.py --startup [--repeat 3] [--path DIR] [--cache]

``--path DIR`` puts DIR first on the child's PYTHONPATH (to time another copy of the package).
``--cache`` gives the interpreter a store whose compiled programs it keeps, as a pool worker
does (``metricflow._jax.use_compile_cache``): each case runs on a new store ("cold"), then
again on the same one ("warm").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

# The phi model's recipe (docs/NETWORKS.md): the only change from the defaults is batch 100
# and more epochs.
PHI_BEST = dict(model="phi", n_points=100_000, epochs=30, batch_size=100, lr=1e-2, seed=11)

PHI_RUN = """
import os, tempfile
from metricflow.networks.models import TrainConfig, train
from metricflow.networks.saved import evaluate_model, load_model, save_model
r = train(TrainConfig(**dict(PHI_BEST, epochs=EPOCHS)))
out = r.summary(); out.pop("config")
for target in (0.0167, 0.005, 0.002):
    hit = [t for t, s in zip(r.train_seconds, r.val_sigma) if s <= target]
    out[f"train_seconds_to_{target}"] = hit[0] if hit else None
path = os.path.join(tempfile.mkdtemp(), "phi.npz")
save_model(r, path)
out["fresh"] = evaluate_model(load_model(path), 100_000, seed=12345).to_dict()
out["fresh"].pop("config")
"""

CASE_CODE = {
    "metric": """
from metricflow.networks.models import TrainConfig, train
r = train(TrainConfig(model="metric", n_points=100_000, epochs=50, ntk_probe=100, ntk_every=5))
out = r.summary(); out.pop("config"); out["ntk_seconds"] = r.ntk_seconds
""",
    "phi": """
from metricflow.networks.models import TrainConfig, train
r = train(TrainConfig(model="phi", n_points=100_000, epochs=5, ntk_probe=50, ntk_every=5))
out = r.summary(); out.pop("config"); out["ntk_seconds"] = r.ntk_seconds
""",
    "phi_best": PHI_RUN.replace("EPOCHS", "30"),
    "phi_fast": PHI_RUN.replace("EPOCHS", "20"),
    "metric50": """
from metricflow.networks.models import TrainConfig, train
r = train(TrainConfig(model="metric", n_points=100_000, epochs=50, seed=11))
out = r.summary(); out.pop("config")
""",
    "ntk200": """
import time, numpy as np
from metricflow._jax import jax
from metricflow.networks.metric_ntk import metric_ntk, spectrum
from metricflow.networks.models import TrainConfig, components_fn, init_params, model_input
from metricflow.geometry.points import SampleConfig, sample_points
probe = model_input(sample_points(SampleConfig(n_points=200, seed=9)))
out = {}
for model in ("metric", "phi"):
    cfg = TrainConfig(model=model, n_points=1000)
    params = init_params(cfg, jax.random.PRNGKey(0), 3, 5)
    f = components_fn(cfg, 3, 5)
    for rep in ("first", "again"):
        t = time.perf_counter(); theta = metric_ntk(f, params, probe, probe, 1); t1 = time.perf_counter()
        eig = spectrum(theta); t2 = time.perf_counter()
        out[f"{model}_{rep}_kernel_s"] = t1 - t; out[f"{model}_{rep}_eig_s"] = t2 - t1
    out[f"{model}_min_eig_over_max"] = float(eig[0] / eig[-1])
""",
    "width": """
from metricflow.studies.feature_learning import WidthSweepConfig, run_width_sweep
out = run_width_sweep(WidthSweepConfig()).summary()
""",
    "trained": """
from metricflow.studies.feature_learning import TrainedKernelConfig, run_trained_kernel
out = run_trained_kernel(TrainedKernelConfig()).summary()
""",
}

WRAPPER = """
import json, resource, time
PHI_BEST = {phi_best!r}
t0 = time.perf_counter()
{code}
out["wall_s"] = time.perf_counter() - t0
out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def run_case(name: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER.format(code=CASE_CODE[name], phi_best=PHI_BEST)], capture_output=True, text=True
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {"case": name, **json.loads(line[7:])}
    return {"case": name, "error": proc.stderr[-2000:]}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


STARTUP_CODE = """
import importlib, json, resource, sys, time
from metricflow.jobs.local import WARM_MODULES
for name in WARM_MODULES:
    importlib.import_module(name)
if {cache!r}:
    importlib.import_module("metricflow._jax").use_compile_cache({cache!r})  # as a worker does
warm = time.time()
from metricflow.networks.models import TrainConfig, train
marks = {{}}
def progress(step, total, message=""):
    if step == 1 and "epoch1" not in marks:
        marks["epoch1"] = time.time()
        marks["rss1"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
train(TrainConfig(model="metric", n_points=2000, epochs=2, ntk_probe={probe}, ntk_every={every}, seed=0), progress)
print("RESULT " + json.dumps({{
    "warm": warm, "epoch1": marks["epoch1"], "peak_rss_at_epoch1_mib": marks["rss1"],
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "tensorflow": "tensorflow" in sys.modules, "neural_tangents": "neural_tangents" in sys.modules,
    "devices": [repr(d) for d in __import__("jax").devices()],
}}))
"""

# (NTK probe points, snapshot every) of the two worker-start jobs.
STARTUP_CASES = {"train": (0, 0), "train_ntk": (10, 1)}


def run_startup(name: str, path: str | None = None, cache: str = "") -> dict:
    """One fresh worker-like interpreter: seconds from its start to the end of epoch 1."""
    probe, every = STARTUP_CASES[name]
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = os.pathsep.join([path] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", STARTUP_CODE.format(probe=probe, every=every, cache=cache)],
                          capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            return {"case": name, "warm_s": r.pop("warm") - t0, "first_epoch_s": r.pop("epoch1") - t0, **r,
                    "load": os.getloadavg()}
    return {"case": name, "error": proc.stderr[-2000:]}


def main(argv=None) -> None:
    argv = list(argv if argv is not None else sys.argv[1:])
    if "--startup" in argv:
        argv.remove("--startup")
        repeat = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 1
        path = argv[argv.index("--path") + 1] if "--path" in argv else None
        print(json.dumps({"load_before": uptime(), "path": path}), flush=True)
        for _ in range(repeat):
            for name in STARTUP_CASES:
                if "--cache" in argv:  # a worker's compiled programs kept in its store: a new store, then again
                    with tempfile.TemporaryDirectory() as store:
                        for state in ("cold", "warm"):
                            print(json.dumps({**run_startup(name, path, store), "compile_cache": state}), flush=True)
                else:
                    print(json.dumps(run_startup(name, path)), flush=True)
        print(json.dumps({"load_after": uptime()}), flush=True)
        return
    names = argv or list(CASE_CODE)
    for name in names:
        print(json.dumps({"load_before": uptime()}), flush=True)
        print(json.dumps(run_case(name)), flush=True)
        print(json.dumps({"load_after": uptime()}), flush=True)


if __name__ == "__main__":
    main()
