"""Our side of the comparison: the metric model of ``python -m metricflow train --model metric``
with cymetric's MultFSModel architecture (3 x 64 GELU, g = g_FS o (1 + H)), one epoch per
command. Runs in the project's Python; compare_cymetric.py drives it.

  python benchmarks/peers/metricflow_worker.py N EPOCHS SEED

reads commands from stdin, one a line, and answers each with one line "PEER {json}":
  eval PATH   the model's metric on the validation points -> PATH (.npz: g, g_fs, omega_sq,
              weights), untimed
  epoch       one epoch, timed
  quit        peak memory, then exit

The steps are those of ``metricflow.networks.train`` (sigma loss with kappa of g_FS on the
train points, optax Adam with the cosine decay over all epochs, batch 200, a 10 % validation
split), unrolled here so that the metric can be saved after every epoch.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def reply(out: dict) -> None:
    print("PEER " + json.dumps(out), flush=True)


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        sys.exit("usage: metricflow_worker.py N EPOCHS SEED")
    n_points, epochs, seed = (int(a) for a in argv)
    t0 = time.perf_counter()
    import numpy as np
    import optax

    from metricflow._jax import jax, jnp
    from metricflow.geometry.measures import kappa as kappa_of
    from metricflow.geometry.measures import sigma as sigma_of
    from metricflow.networks.models import (
        EVAL_CHUNK,
        ModelInput,
        TrainConfig,
        init_params,
        metric_fn,
        model_input,
        n_parameters,
        split_points,
    )
    from metricflow.geometry.points import SampleConfig, sample_points

    c = TrainConfig(model="metric", activation="gelu", width=64, depth=3, n_points=n_points, epochs=epochs, seed=seed)
    t_sample = time.perf_counter()
    pts = sample_points(SampleConfig(c.manifold, c.n_points, c.seed))
    t_sample = time.perf_counter() - t_sample
    tr, va = split_points(pts, c.n_val, c.seed)
    d, n = c.manifold.degree, c.manifold.degree - 2
    x_tr, x_va = model_input(tr), model_input(va)
    k_tr = float(kappa_of(tr.g_fs, tr.omega_sq, tr.weights))

    f = metric_fn(c, n, d)
    f_jit = jax.jit(f)
    params = init_params(c, jax.random.PRNGKey(seed), n, d)
    n_batches = len(tr) // c.batch_size
    rate = optax.cosine_decay_schedule(c.lr, max(c.epochs * n_batches, 1), alpha=c.lr_final_fraction)
    opt = optax.adam(rate)
    opt_state = opt.init(params)

    @jax.jit
    def step(p, s, x, omega_sq, w):
        value, grads = jax.value_and_grad(lambda q: sigma_of(f(q, x), omega_sq, w, k_tr))(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    rng = np.random.default_rng([seed, 3])
    omega_tr, w_tr = np.asarray(tr.omega_sq), np.asarray(tr.weights)

    def evaluate(path: str) -> None:
        g = np.concatenate([
            np.asarray(f_jit(params, ModelInput(*(a[s : s + EVAL_CHUNK] for a in x_va))))
            for s in range(0, len(va), EVAL_CHUNK)
        ])
        np.savez(path, g=g, g_fs=np.asarray(va.g_fs), omega_sq=np.asarray(va.omega_sq), weights=np.asarray(va.weights))

    reply({"ready": True, "setup_seconds": time.perf_counter() - t0, "sample_seconds": t_sample, "jax": jax.__version__,
           "n_train": len(tr), "n_val": len(va), "n_params": n_parameters(params), "batch_size": c.batch_size})
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "eval":
            evaluate(cmd[1])
            reply({"saved": cmd[1]})
        elif cmd[0] == "epoch":
            t = time.perf_counter()
            perm = rng.permutation(len(tr))
            values = []
            for b in range(n_batches):
                idx = perm[b * c.batch_size : (b + 1) * c.batch_size]
                xb = ModelInput(*(a[idx] for a in x_tr))
                params, opt_state, value = step(params, opt_state, xb, omega_tr[idx], w_tr[idx])
                values.append(value)
            loss = float(np.mean(np.asarray(jnp.stack(values))))
            reply({"seconds": time.perf_counter() - t, "train_loss": loss})
        elif cmd[0] == "quit":
            reply({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
            return
        else:
            reply({"error": f"unknown command {cmd[0]!r}"})


if __name__ == "__main__":
    main(sys.argv[1:])
