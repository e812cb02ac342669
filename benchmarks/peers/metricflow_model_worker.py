"""Our side beside cymetric's JAX backend: the metric or phi model of
``python -m metricflow train --model metric|phi --activation gelu`` (3 x 64), one epoch per
command. Runs in the project's Python; compare_jax.py drives it.

  python benchmarks/peers/metricflow_model_worker.py MODEL N EPOCHS SEED

MODEL is "metric" (g = g_FS o (1 + H)) or "phi" (g = g_FS + d dbar phi). The steps are those
of ``metricflow.networks.train`` with its defaults (the sigma loss against the reference kappa,
optax Adam at 1e-2 with the cosine decay to 1e-4 over all epochs, batch 200, a 10 % validation
split, initialisation from ``stream_key(seed, 2)``), unrolled here so that the metric can be
saved after every epoch. Reads commands from stdin, one a line, and answers each with one line
"PEER {json}":

  eval PATH   the model's metric on the validation points -> PATH (.npz: g, g_fs, omega_sq,
              weights), untimed
  epoch       one epoch, timed: wall seconds, and CPU seconds of all the process's threads
  quit        peak memory, then exit
"""

from __future__ import annotations

import json
import resource
import sys
import time


def reply(out: dict) -> None:
    print("PEER " + json.dumps(out), flush=True)


def cpu_seconds() -> float:
    """User + system CPU time of this process, all its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str]) -> None:
    if len(argv) != 4 or argv[0] not in ("metric", "phi"):
        sys.exit("usage: metricflow_model_worker.py metric|phi N EPOCHS SEED")
    kind = argv[0]
    n_points, epochs, seed = (int(a) for a in argv[1:])
    t0 = time.perf_counter()
    import numpy as np
    import optax

    from metricflow._jax import jax
    from metricflow.geometry.measures import sigma as sigma_of
    from metricflow.geometry.reference import reference_kappa
    from metricflow.networks.models import (
        TrainConfig,
        evaluate_in_chunks,
        init_params,
        metric_fn,
        model_input,
        n_parameters,
        network_points,
        stream_key,
    )
    from metricflow.networks.training import epoch_runner

    c = TrainConfig(model=kind, activation="gelu", width=64, depth=3, n_points=n_points, epochs=epochs, seed=seed,
                    ricci=False)
    t_sample = time.perf_counter()
    tr, va = network_points(c)
    t_sample = time.perf_counter() - t_sample
    d, n = c.manifold.degree, c.manifold.degree - 2
    x_tr, x_va = model_input(tr), model_input(va)
    k_loss = float(reference_kappa(c.manifold).value)

    f = metric_fn(c, n, d)
    f_jit = jax.jit(f)
    params = init_params(c, stream_key(c.seed, 2), n, d)
    n_batches = len(tr) // c.batch_size
    rate = optax.cosine_decay_schedule(c.lr, max(c.epochs * n_batches, 1), alpha=c.lr_final_fraction)
    opt = optax.adam(rate)
    opt_state = opt.init(params)

    def step(p, s, x, omega_sq, w):
        value, grads = jax.value_and_grad(lambda q: sigma_of(f(q, x), omega_sq, w, k_loss))(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    run_epoch = epoch_runner(step, c.batch_size)  # as train() runs its epochs
    rng = np.random.default_rng([seed, 3])
    data = jax.device_put((x_tr, tr.omega_sq, tr.weights))

    def evaluate(path: str) -> None:
        g = evaluate_in_chunks(f_jit, params, x_va)
        np.savez(path, g=g, g_fs=np.asarray(va.g_fs), omega_sq=np.asarray(va.omega_sq), weights=np.asarray(va.weights))

    reply({"ready": True, "setup_seconds": time.perf_counter() - t0, "sample_seconds": t_sample, "jax": jax.__version__,
           "device": str(jax.devices()[0]), "n_train": len(tr), "n_val": len(va), "n_params": n_parameters(params),
           "batch_size": c.batch_size})
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "eval":
            evaluate(cmd[1])
            reply({"saved": cmd[1]})
        elif cmd[0] == "epoch":
            t, cpu = time.perf_counter(), cpu_seconds()
            params, opt_state, values = run_epoch(params, opt_state, data, rng.permutation(len(tr)))
            loss = float(np.mean(np.asarray(values)))
            reply({"seconds": time.perf_counter() - t, "cpu_seconds": cpu_seconds() - cpu, "train_loss": loss})
        elif cmd[0] == "quit":
            reply({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
            return
        else:
            reply({"error": f"unknown command {cmd[0]!r}"})


if __name__ == "__main__":
    main(sys.argv[1:])
