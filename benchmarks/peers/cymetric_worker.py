"""cymetric's side of the comparison; runs in cymetric's own venv (run_cymetric.sh builds it).

Does not import metricflow. Two modes:

  python cymetric_worker.py prepare DIR N     cymetric's PointGenerator: N Fermat quintic
                                              points, dataset.npz and basis.pickle in DIR
                                              (notebook 1.PointGenerator); prints one JSON line.
  python cymetric_worker.py train DIR SEED    MultFSModel as in notebook 2.TensorFlow_models;
                                              then reads commands from stdin, one a line:
      eval PATH   the model's metric on the validation points -> PATH (.npz: g, g_fs,
                  omega_sq, weights, and the points z), untimed
      epoch       one epoch of the notebook's loop (below), timed
      quit        peak memory, then exit
    and answers each with one line "PEER {json}".

The notebook's loop (cymetric.models.tfhelper.train_model) runs per epoch two fits: batch 64
with the sigma, Kahler and transition losses, then batch 50,000 with the sigma and volume
losses only. It compiles once and switches the losses by setting the model's learn_* flags;
Keras traces train_step once, so on TF 2.14 the flags of the first trace stay in force and
the switch never happens. Here each phase keeps its own traced train function, so both
phases run with their own losses and the optimizer state carries on, as the loop intends.
The callbacks (Ricci, sigma, volume, ...) are left out of the timed epochs; the comparison
measures sigma on the validation points outside the timing, the same way for both models.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

# notebook 2.TensorFlow_models
N_LAYER, N_HIDDEN, ACTIVATION = 3, 64, "gelu"
BATCH_SIZES = (64, 50_000)
ALPHA = (1.0, 1.0, 1.0, 1.0, 1.0)
EVAL_CHUNK = 5000


def reply(out: dict) -> None:
    print("PEER " + json.dumps(out), flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(dirname: str, n_points: int) -> None:
    """notebook 1: the Fermat quintic's PointGenerator, prepare_dataset and prepare_basis."""
    from cymetric.pointgen.pointgen import PointGenerator

    t0 = time.perf_counter()
    pg = PointGenerator(5 * np.eye(5, dtype=np.int64), np.ones(5), np.ones(1), np.array([4]))
    kappa = pg.prepare_dataset(n_points, dirname)
    pg.prepare_basis(dirname, kappa=kappa)
    reply({"seconds": time.perf_counter() - t0, "kappa": float(kappa), "peak_rss_mib": peak_rss_mib()})


def train(dirname: str, seed: int) -> None:
    t0 = time.perf_counter()
    import tensorflow as tf

    from cymetric.models.metrics import KaehlerLoss, RicciLoss, SigmaLoss, TotalLoss, TransitionLoss, VolkLoss
    from cymetric.models.tfhelper import prepare_tf_basis
    from cymetric.models.tfmodels import MultFSModel

    tfk = tf.keras
    # Keras draws initial weights and the fit shuffles from TF's global generator: seed it
    # once, in this process only.
    tfk.utils.set_random_seed(seed)
    data = np.load(os.path.join(dirname, "dataset.npz"))
    basis = prepare_tf_basis(np.load(os.path.join(dirname, "basis.pickle"), allow_pickle=True))
    x_train, y_train = data["X_train"], data["y_train"]
    x_val, y_val = data["X_val"], data["y_val"]

    nfold = 3
    nn = tfk.Sequential()
    nn.add(tfk.Input(shape=(x_train.shape[1],)))
    for _ in range(N_LAYER):
        nn.add(tfk.layers.Dense(N_HIDDEN, activation=ACTIVATION))
    nn.add(tfk.layers.Dense(nfold**2, use_bias=False))
    model = MultFSModel(nn, basis, alpha=list(ALPHA))
    metrics = [TotalLoss(), SigmaLoss(), KaehlerLoss(), TransitionLoss(), VolkLoss(), RicciLoss()]
    model.compile(custom_metrics=metrics, optimizer=tfk.optimizers.Adam())

    on, off = tf.cast(True, dtype=tf.bool), tf.cast(False, dtype=tf.bool)
    learn = {"learn_kaehler": model.learn_kaehler, "learn_transition": model.learn_transition,
             "learn_ricci": model.learn_ricci, "learn_ricci_val": model.learn_ricci_val}
    phases = [
        ("batch64", BATCH_SIZES[0], {**learn, "learn_volk": off}),
        ("volume", min(BATCH_SIZES[1], len(x_train)),
         {"learn_kaehler": off, "learn_transition": off, "learn_ricci": off, "learn_ricci_val": off, "learn_volk": on}),
    ]
    traced = {}  # phase name -> its Keras train function, traced with that phase's flags

    def run_phase(name, batch_size, flags) -> dict:
        for key, value in flags.items():
            setattr(model, key, value)
        model.train_function = traced.get(name)  # None: fit traces anew with these flags
        hist = model.fit(x_train, y_train, epochs=1, batch_size=batch_size, verbose=0)
        traced[name] = model.train_function
        return {k: float(v[-1]) for k, v in hist.history.items()}

    def evaluate(path: str) -> None:
        g, g_fs = [], []
        for s in range(0, len(x_val), EVAL_CHUNK):
            xb = tf.constant(x_val[s : s + EVAL_CHUNK], dtype=tf.float32)  # fit casts to float32 too
            g.append(model(xb, training=False).numpy())
            g_fs.append(model.fubini_study_pb(xb).numpy())
        np.savez(path, g=np.concatenate(g).astype(np.complex128), g_fs=np.concatenate(g_fs).astype(np.complex128),
                 omega_sq=y_val[:, -1].astype(np.float64), weights=y_val[:, -2].astype(np.float64),
                 z=x_val[:, :5] + 1j * x_val[:, 5:])

    reply({"ready": True, "setup_seconds": time.perf_counter() - t0, "tensorflow": tf.__version__,
           "n_train": int(len(x_train)), "n_val": int(len(x_val)), "n_params": int(nn.count_params())})
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "eval":
            evaluate(cmd[1])
            reply({"saved": cmd[1]})
        elif cmd[0] == "epoch":
            t = time.perf_counter()
            out = {}
            for name, batch_size, flags in phases:
                t1 = time.perf_counter()
                losses = run_phase(name, batch_size, flags)
                out[name] = {"seconds": time.perf_counter() - t1, **losses}
            out["seconds"] = time.perf_counter() - t
            reply(out)
        elif cmd[0] == "quit":
            reply({"peak_rss_mib": peak_rss_mib()})
            return
        else:
            reply({"error": f"unknown command {cmd[0]!r}"})


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[0] == "prepare":
        prepare(argv[1], int(argv[2]))
    elif len(argv) == 3 and argv[0] == "train":
        train(argv[1], int(argv[2]))
    else:
        sys.exit("usage: cymetric_worker.py prepare DIR N | train DIR SEED")


if __name__ == "__main__":
    main(sys.argv[1:])
