"""cymetric's JAX backend (ruehlef/cymetric, Equinox + Optax); runs in its own venv
(run_cymetric_jax.sh builds it) with CYMETRIC_FRAMEWORK=jax. Does not import metricflow.

  python cymetric_jax_worker.py MODEL MODE DIR SEED EPOCHS

MODEL is "metric" (MultFSModel) or "phi" (PhiFSModel), the networks of its notebook
0.GettingStarted (JAX examples): an eqx.nn.Sequential of three Linear 64 + GELU layers and a
Linear readout without bias (9 outputs for the metric, 1 for phi), optax.adam(1e-3). DIR holds
cymetric's dataset.npz and basis.pickle (cymetric_worker.py prepare). Training is its own loop,
cymetric.models.helper.train_model (the JAX one under CYMETRIC_FRAMEWORK=jax), with its default
batch sizes (64, then 10,000) and all EPOCHS in one call. A callback (the loop's own hook,
on_epoch_end) hands each epoch back to the driver. MODE:

  shipped   the loop as it is: it builds a new jitted train step every epoch
            (helper._make_train_step inside the epoch loop), so every epoch compiles again.
  kept      the same loop with helper._make_train_step memoised per optimizer: the step is
            built and compiled once and reused (Equinox caches the compiled step per static
            flags and shapes). The math is unchanged.

Reads commands from stdin, one a line, and answers each with one line "PEER {json}":

  eval PATH   the metric on the validation points -> PATH (.npz: g, g_fs, omega_sq, weights
              and the points z), untimed; the reply carries cymetric's own sigma_measure
  epoch       one epoch, timed (from the end of the previous callback to this one's start):
              wall seconds, and CPU seconds of all the process's threads
  quit        peak memory, then exit
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import resource
import sys
import time

os.environ["CYMETRIC_FRAMEWORK"] = "jax"

import numpy as np  # noqa: E402

WIDTH, DEPTH = 64, 3  # notebook 0's JAX examples
LEARNING_RATE = 1e-3
BATCH_SIZES = (64, 10_000)  # train_model's defaults
EVAL_CHUNK = {"metric": 5000, "phi": 1000}
MODES = ("shipped", "kept")


def reply(out: dict) -> None:
    print("PEER " + json.dumps(out), flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process, all its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str]) -> None:
    if len(argv) != 5 or argv[0] not in ("metric", "phi") or argv[1] not in MODES:
        sys.exit("usage: cymetric_jax_worker.py metric|phi shipped|kept DIR SEED EPOCHS")
    kind, mode, dirname, seed, epochs = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    t0 = time.perf_counter()
    import equinox as eqx
    import jax
    import jax.nn as jnn
    import jax.numpy as jnp
    import optax

    import cymetric
    import cymetric.jax.models.helper as helper
    from cymetric.models.helper import prepare_basis, train_model
    from cymetric.models.measures import sigma_measure
    from cymetric.models.models import MultFSModel, PhiFSModel

    if cymetric.PREFERRED_FRAMEWORK != "jax" or train_model is not helper.train_model:
        sys.exit(f"error: cymetric picked the {cymetric.PREFERRED_FRAMEWORK} backend, not jax")

    # Count the train steps the loop builds; in "kept" mode build one per optimizer and reuse it.
    built = {"steps": 0}
    make_step = helper._make_train_step
    kept_steps = {}

    def counted_make_train_step(optimizer):
        if mode == "kept" and id(optimizer) in kept_steps:
            return kept_steps[id(optimizer)]
        built["steps"] += 1
        step = make_step(optimizer)
        if mode == "kept":
            kept_steps[id(optimizer)] = step
        return step

    helper._make_train_step = counted_make_train_step

    with open(os.path.join(dirname, "basis.pickle"), "rb") as fh:
        import pickle

        basis = prepare_basis(pickle.load(fh))
    data = dict(np.load(os.path.join(dirname, "dataset.npz"), allow_pickle=True))
    x_val, y_val = data["X_val"], data["y_val"]

    # Its train_model shuffles with NumPy's global generator: seed it, in this process only.
    np.random.seed(seed)
    keys = jax.random.split(jax.random.PRNGKey(seed), 8)
    n_in = data["X_train"].shape[1]
    n_out = int(basis["NFOLD"].real) ** 2 if kind == "metric" else 1
    layers, width_in = [], n_in
    for i in range(DEPTH):
        layers += [eqx.nn.Linear(width_in, WIDTH, key=keys[i]), eqx.nn.Lambda(jnn.gelu)]
        width_in = WIDTH
    layers.append(eqx.nn.Linear(WIDTH, n_out, use_bias=False, key=keys[DEPTH]))
    nn = eqx.nn.Sequential(layers)
    model = (MultFSModel if kind == "metric" else PhiFSModel)(nn, basis)
    optimizer = optax.adam(learning_rate=LEARNING_RATE)
    n_params = int(sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(nn, eqx.is_array))))

    forward = eqx.filter_jit(lambda m, x: m(x))
    fs_forward = eqx.filter_jit(lambda m, x: m.fubini_study_pb(x))
    own_sigma = eqx.filter_jit(sigma_measure)
    state = {"model": model}

    def evaluate(path: str) -> dict:
        m, chunk = state["model"], EVAL_CHUNK[kind]
        g, g_fs = [], []
        for s in range(0, len(x_val), chunk):
            xb = jnp.asarray(x_val[s : s + chunk], dtype=jnp.float32)  # the loop casts to float32 too
            g.append(np.asarray(forward(m, xb)))
            g_fs.append(np.asarray(fs_forward(m, xb)))
        np.savez(path, g=np.concatenate(g).astype(np.complex128), g_fs=np.concatenate(g_fs).astype(np.complex128),
                 omega_sq=y_val[:, -1].astype(np.float64), weights=y_val[:, -2].astype(np.float64),
                 z=x_val[:, :5] + 1j * x_val[:, 5:])
        own = float(own_sigma(m, jnp.asarray(x_val, dtype=jnp.float32), jnp.asarray(y_val, dtype=jnp.float32)))
        return {"saved": path, "own_sigma": own}

    def serve() -> None:
        """Answer commands until "epoch" (return) or "quit" (exit)."""
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "eval":
                reply(evaluate(cmd[1]))
            elif cmd[0] == "epoch":
                return
            elif cmd[0] == "quit":
                reply({"peak_rss_mib": peak_rss_mib(), "train_steps_built": built["steps"]})
                sys.exit(0)
            else:
                reply({"error": f"unknown command {cmd[0]!r}"})
        sys.exit(0)

    clock = {"start": 0.0, "cpu": 0.0}

    class Turn:
        """train_model's callback: reports the epoch, then waits for the driver's next turn."""

        def on_train_begin(self, logs=None, model=None):
            self.history = logs

        def on_epoch_end(self, epoch, logs=None, model=None):
            seconds, cpu = time.perf_counter() - clock["start"], cpu_seconds() - clock["cpu"]
            state["model"] = model
            h = self.history
            reply({"seconds": seconds, "cpu_seconds": cpu, "epoch": epoch + 1, "train_steps_built": built["steps"],
                   "general_loss": h["General loss phase"][-1], "volume_loss": h["Volume loss phase"][-1]})
            if epoch + 1 < epochs:
                serve()
                clock["start"], clock["cpu"] = time.perf_counter(), cpu_seconds()

    reply({"ready": True, "setup_seconds": time.perf_counter() - t0, "jax": jax.__version__, "equinox": eqx.__version__,
           "cymetric": importlib.metadata.version("cymetric"), "device": str(jax.devices()[0]), "mode": mode,
           "n_train": int(len(data["X_train"])), "n_val": int(len(x_val)), "n_params": n_params,
           "batch_sizes": list(BATCH_SIZES)})
    serve()
    clock["start"], clock["cpu"] = time.perf_counter(), cpu_seconds()
    trained, _ = train_model(model, data, optimizer=optimizer, epochs=epochs, batch_sizes=BATCH_SIZES, verbose=0,
                             callbacks=[Turn()])
    state["model"] = trained
    serve()
    reply({"error": "no more epochs: the run was started with EPOCHS epochs"})


if __name__ == "__main__":
    main(sys.argv[1:])
