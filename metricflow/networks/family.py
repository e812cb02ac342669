"""One phi network for the whole Dwork family: psi as an extra input (issue 17, optional item).

The per-psi phi network (``metricflow.networks.models``, model "phi") learns
g = g_FS + d dbar phi (eq. B.6) with phi(z) = NN(u(z)) on one member X_psi of the family
p = sum z_i^d - d psi prod z_i. This module trains ONE network across several psi,

    phi(z; psi) = NN(u(z), e(psi)),   e(psi) = (Re, Im) of psi / (1 + |psi|),

where u(z) are the d^2 invariant features (``invariant_features``) and e(psi) is a bounded
encoding of psi (the unit disc; psi = 0 maps to the origin, psi -> infinity to the circle).
For each fixed psi, phi( . ; psi) is a smooth function on P^(d-1), so g is Kahler in the class
of g_FS on X_psi, and kappa (B.10) is that of X_psi: the loss on a point of X_psi uses its own
psi's reference kappa (``metricflow.geometry.reference.reference_kappa``). This is a
moduli-dependent metric in the spirit of cyjax's h-network, with a phi network in place of
the balanced-metric h.

Points and budget. Each psi gets exactly the points of the per-psi phi network of the same
size and seed: ``sample_points(SampleConfig(Manifold(d, psi), n_points, seed))`` split by
``split_points(points, n_val, seed)`` (``FamilyTrainConfig.member_configs`` are those
per-psi TrainConfigs). The network trains on the union of the P train splits for the same
number of epochs, with the same batch size, so it takes P times the optimizer steps of one
per-psi network (and about the seconds of all P together). Batches mix psis (one shuffle of
the union per epoch).

Loss (B.11) on a batch B drawn from the union:

    L = sum_{i in B} w~_i |1 - det g(x_i) / (kappa_{psi_i} |Omega(x_i)|^2)| / sum_{i in B} w~_i,

w~_i = w_i / mean(w over the train points of psi_i): the CY weights renormalised per psi, so
each psi counts by its number of points (their absolute scale differs between psis). On the
whole union, with equal points per psi, L is the mean over psi of the per-psi train sigma.

Example:
  >>> r = train_family(FamilyTrainConfig(psis=(0, 0.5, 10 + 3j), n_points=5000, epochs=3))
  >>> r.val_sigma[:, -1], r.val_sigma_se[:, -1]   # per psi, after the last epoch
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Optional

import numpy as np

from metricflow._jax import jax, jnp
from metricflow.constraints import SEED, Count, Maybe, OneOf, Positive, validate
from metricflow.errors import MetricflowError, check_memory
from metricflow.estimates import Estimate
from metricflow.geometry.manifolds import Manifold, family_psis
from metricflow.geometry.measures import SigmaReport, measure_sigma
from metricflow.geometry.measures import sigma as sigma_of
from metricflow.geometry.points import Points
from metricflow.geometry.reference import reference_kappa
from metricflow.networks.models import (
    SECONDS_PER_POINT_EPOCH,
    WORKER_BYTES,
    TrainConfig,
    all_finite,
    evaluate_in_chunks,
    n_parameters,
    network_points,
    nonpd_fraction,
    stream_key,
    to_numpy,
)
from metricflow.networks.mlp import Network, mlp
from metricflow.networks.outputs import ddbar, invariant_features
from metricflow.networks.training import epoch_runner
from metricflow.progress import Progress, panel, publish

__all__ = [
    "FAMILY_SCHEMA",
    "FAMILY_PSIS",
    "PSI_INPUTS",
    "FamilyTrainConfig",
    "FamilyResult",
    "FamilyBatch",
    "psi_encoding",
    "family_batch",
    "make_family_model",
    "init_family_params",
    "family_potential_fn",
    "family_metric_fn",
    "family_loss",
    "member_points",
    "train_family",
    "estimate_family",
]

# Bump when FamilyResult's fields or their meaning change.
FAMILY_SCHEMA = 1

# The default family: the Fermat point, a point near it, and one far out (the sweep's ends).
FAMILY_PSIS = (0j, 0.5 + 0j, 10 + 3j)

# Real inputs that encode psi (Re, Im of psi / (1 + |psi|)).
PSI_INPUTS = 2

# The smooth activations (d dbar of a ReLU network is 0 almost everywhere).
SMOOTH_ACTIVATIONS = ("gelu", "erf")


# ---- the config ------------------------------------------------------------------------


@dataclass(frozen=True)
class FamilyTrainConfig:
    """One psi-conditioned phi network trained across the family. Validated; computes nothing.

    The defaults of the network and optimizer are those of the per-psi phi network
    (``TrainConfig(model="phi")``: 3 x 64 GELU, standard parameterization, Adam at 1e-2 with
    a cosine decay to 1e-4, batch 200, readout W_std 0.05), so that the two differ only in
    the psi input and in training on the union of the psis' points.

    Attributes:
      psis: the complex structure values (none with psi^d = 1, none repeated).
      degree: the Dwork degree d (5: quintics).
      n_points: points per psi (train + validation), as the per-psi network's n_points.
      epochs: passes over the union of the train points (P times the steps of one per-psi
        network of the same epochs).
      width, depth: hidden layers of ``width`` units.
      activation: "gelu" or "erf" (smooth).
      lr: initial Adam learning rate; lr_final_fraction: the cosine decay ends at
        lr * lr_final_fraction.
      batch_size: points per step, drawn from the union; None = min(200, train points per
        psi), the per-psi network's default.
      val_fraction: fraction of each psi's points held out (sigma is measured on them).
      readout_std: W_std of the readout layer.
      seed: sampling and split (the per-psi networks' seed), initialisation and shuffling.
    """

    psis: tuple = FAMILY_PSIS
    degree: int = 5
    n_points: int = 5000
    epochs: int = 10
    width: int = 64
    depth: int = 3
    activation: str = "gelu"
    lr: float = 1e-2
    lr_final_fraction: float = 0.01
    batch_size: Optional[int] = None
    val_fraction: float = 0.2
    readout_std: float = 0.05
    seed: int = 0

    constraints: ClassVar[dict] = {
        "n_points": Count("points per psi", minimum=20),
        "epochs": Count("epochs", minimum=0, maximum=10_000),
        "width": Count("width", maximum=100_000),
        "depth": Count("depth", maximum=50),
        "activation": OneOf(SMOOTH_ACTIVATIONS, label="activation (the phi network needs a smooth one)"),
        "lr": Positive("lr"),
        "lr_final_fraction": Positive("lr_final_fraction"),
        "batch_size": Maybe(Count("batch size")),
        "val_fraction": Positive("val_fraction", below=1),
        "readout_std": Positive("readout_std"),
        "seed": SEED,
    }

    def __post_init__(self):
        validate(self)
        object.__setattr__(self, "psis", family_psis(self.psis, self.degree))
        if self.lr_final_fraction > 1:
            raise MetricflowError(f"lr_final_fraction must be in (0, 1], got {self.lr_final_fraction}")
        n_val = self.n_val
        n_train = self.n_points - n_val
        if n_val < 10 or n_train < 10:
            raise MetricflowError(f"{self.n_points} points per psi with val_fraction {self.val_fraction} leave fewer "
                                  "than 10 train or validation points; use more points")
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", min(200, n_train))
        if self.batch_size > n_train:
            raise MetricflowError(f"batch size {self.batch_size:,} exceeds the {n_train:,} train points per psi "
                                  "(the per-psi networks' batch must fit); use a smaller batch")

    @property
    def n_val(self) -> int:
        """Validation points per psi (as TrainConfig.n_val)."""
        return int(round(self.val_fraction * self.n_points))

    @property
    def manifolds(self) -> tuple:
        return tuple(Manifold(self.degree, p) for p in self.psis)

    def member_configs(self) -> list[TrainConfig]:
        """The per-psi phi networks of the same size, seed and hyperparameters: their points
        and validation splits are exactly this network's, psi by psi."""
        return [
            TrainConfig(model="phi", n_points=self.n_points, epochs=self.epochs, width=self.width, depth=self.depth,
                        activation=self.activation, lr=self.lr, lr_final_fraction=self.lr_final_fraction,
                        batch_size=self.batch_size, val_fraction=self.val_fraction, readout_std=self.readout_std,
                        ricci=False, seed=self.seed, manifold=m)
            for m in self.manifolds
        ]


# ---- the model -------------------------------------------------------------------------


def psi_encoding(psi) -> np.ndarray:
    """e(psi) = (Re, Im) of psi / (1 + |psi|): (2,) float64 in the open unit disc."""
    psi = complex(psi)
    w = psi / (1.0 + abs(psi))
    return np.array([w.real, w.imag], dtype=np.float64)


class FamilyBatch(NamedTuple):
    """Points of several psis with what the network and the loss read (all lead with N).

    features: (N, 2d) float64, Points.features; g_fs: (N, n, n) complex128; jacobian:
    (N, n, d) complex128, dz/dx; encoding: (N, 2) float64, psi_encoding of each point's psi;
    omega_sq: (N,) float64; weights: (N,) float64, CY weights (renormalised per psi by
    ``family_batch(normalise=True)``); kappa: (N,) float64, each point's own psi's
    reference kappa; psi_index: (N,) int64, the index of each point's psi.
    """

    features: np.ndarray
    g_fs: np.ndarray
    jacobian: np.ndarray
    encoding: np.ndarray
    omega_sq: np.ndarray
    weights: np.ndarray
    kappa: np.ndarray
    psi_index: np.ndarray



def family_batch(points: list[Points], kappas, normalise: bool = True) -> FamilyBatch:
    """The union of per-psi point sets as one FamilyBatch, psi by psi in the given order.

    Args:
      points: P Points, one set per psi (each set's manifold gives its psi).
      kappas: P reference kappa values, in the same order.
      normalise: divide each set's weights by their mean (each psi then counts by its
        number of points in a weighted mean); False keeps the raw CY weights.
    """
    if len(points) != len(kappas):
        raise MetricflowError(f"{len(points)} point sets but {len(kappas)} kappas")
    parts = []
    for i, (pts, k) in enumerate(zip(points, kappas)):
        n = len(pts)
        w = np.asarray(pts.weights, dtype=np.float64)
        parts.append(FamilyBatch(
            np.asarray(pts.features), np.asarray(pts.g_fs), np.asarray(pts.jacobian),
            np.tile(psi_encoding(pts.manifold.psi), (n, 1)), np.asarray(pts.omega_sq, dtype=np.float64),
            w / np.mean(w) if normalise else w, np.full(n, float(k)), np.full(n, i, dtype=np.int64),
        ))
    return FamilyBatch(*(np.concatenate(arrays) for arrays in zip(*parts)))


def make_family_model(config: FamilyTrainConfig) -> Network:
    """(init_fn, apply_fn, kernel_fn) of ``mlp`` (stax's semantics, plain JAX): d^2 + 2
    inputs (u(z), e(psi)) -> 1 output."""
    return mlp(config.depth, config.width, 1, config.activation, "standard", config.readout_std)


def init_family_params(config: FamilyTrainConfig, key):
    """Initial parameters from the jax key; the first layer reads d^2 + PSI_INPUTS inputs."""
    init_fn = make_family_model(config)[0]
    d = config.degree
    return init_fn(key, (-1, d * d + PSI_INPUTS))[1]


def family_potential_fn(config: FamilyTrainConfig):
    """f(params, zr, encoding) -> (N,) float64: phi(z; psi) = NN(u(z), e(psi)) at N points.

    zr: (N, 2d) real then imaginary parts of z (any scaling); encoding: (N, 2) e(psi)."""
    apply_fn = make_family_model(config)[1]
    return lambda params, zr, enc: apply_fn(params, jnp.concatenate([invariant_features(zr), enc], axis=-1))[:, 0]


def family_metric_fn(config: FamilyTrainConfig):
    """f(params, FamilyBatch) -> (N, n, n) complex128: g = g_FS + d dbar phi( . ; psi).

    d dbar acts on z only (``ddbar``, pulled back with the chart jacobian); psi is a constant
    of each point's manifold."""
    apply_fn = make_family_model(config)[1]

    def phi(params, zr, enc):
        return apply_fn(params, jnp.concatenate([invariant_features(zr), enc])[None, :])[0, 0]

    def f(params, x: FamilyBatch):
        dd = jax.vmap(lambda zr, jac, enc: ddbar(lambda y: phi(params, y, enc), zr, jac))(
            x.features, x.jacobian, x.encoding)
        return x.g_fs + dd

    return f


def family_loss(f, params, x: FamilyBatch):
    """The sigma loss (B.11) with each point's own kappa: sum w |1 - eta_i| / sum w, with
    eta_i = det g / (kappa_i |Omega|^2) and kappa_i the reference kappa of point i's psi."""
    return sigma_of(f(params, x), x.omega_sq, x.weights, x.kappa)


def member_points(config: TrainConfig) -> tuple[Points, Points]:
    """(train, validation) of a per-psi phi network, exactly as ``train`` draws them."""
    return network_points(config)


# ---- the result ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FamilyResult:
    """The record of one psi-conditioned network. P psis, E epochs. Every sigma is measured on
    each psi's validation points (never trained on) against that psi's reference kappa
    (``measure_sigma``), with its standard error.

    Attributes:
      config: the FamilyTrainConfig.
      psis: (P,) complex128.
      kappa, kappa_se: (P,) float64, each psi's reference kappa (loss and sigma) and its error.
      val_sigma, val_sigma_se: (P, E+1) float64, reference-kappa sigma (B.11, CY weights) of
        each psi before training ([:, 0]) and after every epoch, and its standard error.
      val_sigma_self, val_sigma_self_se: (P, E+1) float64, the self-normalised sigma.
      nonpd_fraction: (P, E+1) float64, validation points whose metric is not positive definite.
      sigma_fs, sigma_fs_se: (P,) float64, sigma of g_FS on the same validation points.
      train_loss: (E,) float64, mean train-batch loss in each epoch.
      train_seconds: (E+1,) float64, training time (optimizer steps only) before each record.
      epoch_seconds: (E,) float64, wall time of each epoch's steps.
      steps: optimizer steps taken (E * floor(P * train points per psi / batch)).
      n_params: number of parameters.
      params_initial, params_final: the parameters (pytrees of ndarrays, laid out as stax's).
      seconds: everything (sampling, kappas, training, validation).
      load_average: (start, end) 1-minute load average of the machine.
      schema_version: FAMILY_SCHEMA.
    """

    config: FamilyTrainConfig
    psis: np.ndarray
    kappa: np.ndarray
    kappa_se: np.ndarray
    val_sigma: np.ndarray
    val_sigma_se: np.ndarray
    val_sigma_self: np.ndarray
    val_sigma_self_se: np.ndarray
    nonpd_fraction: np.ndarray
    sigma_fs: np.ndarray
    sigma_fs_se: np.ndarray
    train_loss: np.ndarray
    train_seconds: np.ndarray
    epoch_seconds: np.ndarray
    steps: int
    n_params: int
    params_initial: object
    params_final: object
    seconds: float
    load_average: tuple
    schema_version: int = FAMILY_SCHEMA

    def summary(self) -> dict:
        """JSON-ready: one row per psi (initial and final sigma with errors), the budget."""
        rows = []
        for i, p in enumerate(self.psis):
            rows.append({
                "psi": [float(p.real), float(p.imag)], "kappa": float(self.kappa[i]),
                "kappa_se": float(self.kappa_se[i]), "sigma_fs": float(self.sigma_fs[i]),
                "sigma_fs_se": float(self.sigma_fs_se[i]), "sigma_initial": float(self.val_sigma[i, 0]),
                "sigma_initial_se": float(self.val_sigma_se[i, 0]), "sigma": float(self.val_sigma[i, -1]),
                "sigma_se": float(self.val_sigma_se[i, -1]), "sigma_self": float(self.val_sigma_self[i, -1]),
                "sigma_self_se": float(self.val_sigma_self_se[i, -1]),
                "nonpd_fraction": float(self.nonpd_fraction[i, -1]),
            })
        c = self.config
        return {
            "epochs": c.epochs, "points_per_psi": c.n_points, "validation_per_psi": c.n_val,
            "batch_size": c.batch_size, "steps": int(self.steps), "n_params": int(self.n_params),
            "train_seconds": float(self.train_seconds[-1]), "seconds": float(self.seconds),
            "train_loss": [float(v) for v in self.train_loss], "per_psi": rows,
        }


# ---- training --------------------------------------------------------------------------


def _family_partial(psis, sig: np.ndarray, train_loss: np.ndarray, epoch: int) -> dict:
    """The family network's partial series after ``epoch``: each psi's validation sigma per
    epoch, and the train loss (mean batch sigma over all psis) per epoch."""
    xs = range(epoch + 1)
    name = lambda p: f"ψ = {p.real:g}" + (f"{p.imag:+g}i" if p.imag else "")  # noqa: E731
    curves = {name(complex(p)): (xs, sig[i, : epoch + 1]) for i, p in enumerate(psis)}
    return {"panels": [
        panel("validation σ per epoch", "epoch", "σ", curves, log_y=True),
        panel("train loss per epoch", "epoch", "mean batch σ", {"train loss": (range(1, epoch + 1), train_loss[:epoch])},
              log_y=True),
    ]}


def train_family(config: FamilyTrainConfig, progress: Optional[Progress] = None) -> FamilyResult:
    """Train one psi-conditioned phi network on the union of the psis' train points.

    Per psi: the per-psi phi network's points and split (``member_points`` of
    ``config.member_configs()``) and its reference kappa. Per step: ``family_loss`` on a
    batch drawn from the shuffled union (psis mixed), optax Adam with a cosine decay over all
    E * floor(P N_train / batch) steps. Before training and after every epoch: sigma of each
    psi on its own validation points, in both conventions with standard errors.

    Args:
      config: a FamilyTrainConfig.
      progress: optional progress(epoch, epochs, message), after every epoch.

    Returns:
      FamilyResult.
    """
    import optax

    c = config
    report = progress or (lambda *a, **k: None)
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    check_memory(estimate_family(c).bytes, f"training the family network on {len(c.psis) * c.n_points:,} points")
    members = c.member_configs()
    refs = [reference_kappa(m.manifold) for m in members]
    splits = [member_points(m) for m in members]
    kappas = [float(r.value) for r in refs]
    x_tr = family_batch([tr for tr, _ in splits], kappas)
    vals = [family_batch([va], [k]) for (_, va), k in zip(splits, kappas)]
    P, n_tr = len(c.psis), len(x_tr.features)
    report(0, c.epochs, f"sampled {n_tr:,} train + {P * c.n_val:,} validation points at {P} values of psi")

    f = family_metric_fn(c)
    f_jit = jax.jit(f)
    params = init_family_params(c, stream_key(c.seed, 2))
    params_initial = to_numpy(params)
    n_batches = n_tr // c.batch_size
    rate = optax.cosine_decay_schedule(c.lr, max(c.epochs * n_batches, 1), alpha=c.lr_final_fraction)
    opt = optax.adam(rate)
    opt_state = opt.init(params)

    def step(p, s, xb):
        value, grads = jax.value_and_grad(lambda q: family_loss(f, q, xb))(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    run_epoch, data = epoch_runner(step, c.batch_size), jax.device_put((x_tr,))

    def validate_all(p) -> list[tuple[SigmaReport, float]]:
        out = []
        for (_, va), ref, xv in zip(splits, refs, vals):
            g = evaluate_in_chunks(f_jit, p, xv)
            out.append((measure_sigma(g, va.omega_sq, va.weights, ref), nonpd_fraction(g)))
        return out

    E = c.epochs
    shape = (P, E + 1)
    sig, sig_se, self_, self_se, nonpd = (np.full(shape, np.nan) for _ in range(5))

    def record(epoch: int, p) -> None:
        for i, (rep, bad) in enumerate(validate_all(p)):
            sig[i, epoch], sig_se[i, epoch] = rep.sigma, rep.sigma_se
            self_[i, epoch], self_se[i, epoch] = rep.sigma_self, rep.sigma_self_se
            nonpd[i, epoch] = bad

    fs = [measure_sigma(va.g_fs, va.omega_sq, va.weights, ref) for (_, va), ref in zip(splits, refs)]
    record(0, params)
    report(0, E, "epoch 0: validation sigma " + ", ".join(f"{s:.4f}" for s in sig[:, 0]))

    rng = np.random.default_rng([c.seed, 3])
    train_loss, epoch_seconds, train_seconds = np.full(E, np.nan), np.zeros(E), np.zeros(E + 1)
    publish(progress, lambda: _family_partial(c.psis, sig, train_loss, 0))
    elapsed = 0.0
    for epoch in range(1, E + 1):
        t0 = time.perf_counter()
        params, opt_state, values = run_epoch(params, opt_state, data, rng.permutation(n_tr))
        train_loss[epoch - 1] = float(np.mean(np.asarray(values)))
        if not all_finite(params):
            raise MetricflowError(f"the parameters became NaN/inf in epoch {epoch}; lower the learning rate {c.lr:g}")
        epoch_seconds[epoch - 1] = time.perf_counter() - t0
        elapsed += epoch_seconds[epoch - 1]
        train_seconds[epoch] = elapsed
        record(epoch, params)
        report(epoch, E, f"epoch {epoch}: validation sigma " + ", ".join(
            f"{s:.4f} ± {e:.4f}" for s, e in zip(sig[:, epoch], sig_se[:, epoch])))
        publish(progress, lambda: _family_partial(c.psis, sig, train_loss, epoch))

    return FamilyResult(
        config=c, psis=np.asarray(c.psis, dtype=np.complex128),
        kappa=np.array([r.value for r in refs], dtype=np.float64), kappa_se=np.array([r.se for r in refs], dtype=np.float64),
        val_sigma=sig, val_sigma_se=sig_se, val_sigma_self=self_, val_sigma_self_se=self_se, nonpd_fraction=nonpd,
        sigma_fs=np.array([r.sigma for r in fs]), sigma_fs_se=np.array([r.sigma_se for r in fs]),
        train_loss=train_loss, train_seconds=train_seconds, epoch_seconds=epoch_seconds, steps=E * n_batches,
        n_params=n_parameters(params), params_initial=params_initial, params_final=to_numpy(params),
        seconds=time.perf_counter() - start, load_average=(load_start, os.getloadavg()[0]),
    )


def estimate_family(config: FamilyTrainConfig) -> Estimate:
    """Expected seconds and peak bytes of ``train_family(config)``.

    As ``estimate_train`` for one phi network on the union of the P psis' points (P * N
    points for E epochs: P times one per-psi network's point-epochs), without the Ricci check
    or metric-NTK: ~10 s start, ~1e-5 s per point sampled, SECONDS_PER_POINT_EPOCH["phi"] per
    point-epoch scaled by depth * width^2 / (3 * 64^2) (at least 0.3). The reference kappa of
    a psi other than 0 is its own job (about 10 s once, then stored). Memory: the worker
    (WORKER_BYTES), ~3 kB per point of chart data, batch activations.
    """
    c = config
    total = len(c.psis) * c.n_points
    scale = max(0.3, c.depth * c.width**2 / (3 * 64**2))
    seconds = 10.0 + 1e-5 * total + SECONDS_PER_POINT_EPOCH["phi"] * scale * total * c.epochs
    memory = WORKER_BYTES + 3000 * total + 8 * 20 * c.batch_size * c.width * c.depth
    return Estimate(float(seconds), int(memory))
