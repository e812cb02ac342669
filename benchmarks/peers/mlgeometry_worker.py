"""MLGeometry's side (mlgeometry-jax, its JAX port); runs in its own venv (run_cymetric.sh
builds it with --mlgeometry). Does not import metricflow.

  python mlgeometry_worker.py N SEED

generates N Fermat quintic points with MLGeometry's own Hypersurface (random lines, N / 5 of
them), holds out 10 % (seeded), and builds the network of its guide (Guide.ipynb): the Kahler
potential K = log(NN(z zbar)) with hidden layers of 70 and 100 units and square activations
(its Bihomogeneous and SquareDense layers; k = 4), g = d dbar K restricted to X. Trained the
way its trainer.train_optax loops (shuffled batches of 1000, its compute_loss with its
weighted_MAPE, which normalises det g per batch), with Adam at 1e-3 as in its guide, one
epoch per command. K is the log of a degree-(k, k) polynomial without 1/pi, so g lies in the
class pi k [g_FS]: its reference kappa is (pi k)^3 times ours.
Then reads commands from stdin, one a line, and answers each with one line "PEER {json}":

  eval PATH   the metric on the validation points -> PATH (.npz: g, omega_sq, weights and
              the points z), untimed
  epoch       one epoch, timed
  quit        peak memory, then exit
"""

from __future__ import annotations

import json
import resource
import sys
import time

HIDDEN = (70, 100)  # its guide's network; square activations make K of degree k = 2^len(HIDDEN)
BATCH_SIZE = 1000
LEARNING_RATE = 1e-3
EVAL_CHUNK = 2000


def reply(out: dict) -> None:
    print("PEER " + json.dumps(out), flush=True)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: mlgeometry_worker.py N SEED")
    n_points, seed = int(argv[0]), int(argv[1])
    t0 = time.perf_counter()
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import sympy as sp
    from flax import linen as nn

    import MLGeometry as mlg
    from MLGeometry import bihomoNN as bnn

    class Potential(nn.Module):
        @nn.compact
        def __call__(self, z):
            x = bnn.Bihomogeneous()(z)
            for width in HIDDEN:
                x = bnn.SquareDense(features=width)(x)
            x = bnn.SquareDense(features=1, activation=None)(x)
            return jnp.log(x)

    # MLGeometry draws its lines from NumPy's global generator: seed it, in this process only.
    np.random.seed(seed)
    t_gen = time.perf_counter()
    z = sp.symbols("z0:5")
    hs = mlg.hypersurface.Hypersurface(list(z), sum(zi**5 for zi in z), -(-n_points // 5))
    data = mlg.dataset.generate_dataset(hs, jax=False)
    t_gen = time.perf_counter() - t_gen
    perm = np.random.default_rng([seed, 1]).permutation(len(data["points"]))
    n_val = int(round(0.1 * len(perm)))
    val = {k: jnp.asarray(v[perm[:n_val]]) for k, v in data.items()}
    train = {k: jnp.asarray(v[perm[n_val:]]) for k, v in data.items()}
    n_train = len(perm) - n_val

    model = Potential()
    params = mlg.trainer.init_params(model, (5,), seed)
    opt = optax.adam(LEARNING_RATE)
    opt_state = opt.init(params)

    @jax.jit
    def step(p, s, batch):
        value, grads = jax.value_and_grad(lambda q: mlg.loss.compute_loss(model, q, batch, mlg.loss.weighted_MAPE))(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    metric = jax.jit(lambda p, batch: mlg.loss.compute_cy_metric(model, p, batch))
    key = jax.random.PRNGKey(seed)
    n_batches = -(-n_train // BATCH_SIZE)

    def evaluate(path: str) -> None:
        g = np.concatenate([
            np.asarray(metric(params, {k: v[s : s + EVAL_CHUNK] for k, v in val.items()}))
            for s in range(0, n_val, EVAL_CHUNK)
        ])
        np.savez(path, g=g.astype(np.complex128), omega_sq=np.asarray(val["Omega_Omegabar"], dtype=np.float64),
                 weights=np.asarray(val["mass"], dtype=np.float64), z=np.asarray(val["points"], dtype=np.complex128))

    reply({"ready": True, "setup_seconds": time.perf_counter() - t0, "sample_seconds": t_gen, "jax": jax.__version__,
           "class_scale": float(np.pi * 2 ** len(HIDDEN)),
           "n_train": int(n_train), "n_val": int(n_val),
           "n_params": int(sum(np.size(a) for a in jax.tree_util.tree_leaves(params)))})
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "eval":
            evaluate(cmd[1])
            reply({"saved": cmd[1]})
        elif cmd[0] == "epoch":
            t = time.perf_counter()
            key, sub = jax.random.split(key)
            order = jax.random.permutation(sub, n_train)
            shuffled = {k: v[order] for k, v in train.items()}
            values = []
            for b in range(n_batches):
                batch = {k: v[b * BATCH_SIZE : (b + 1) * BATCH_SIZE] for k, v in shuffled.items()}
                params, opt_state, value = step(params, opt_state, batch)
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
