"""Finite-width networks that learn the quintic's Ricci-flat metric (section 3.3).

Two models map a point x of X (N points, d homogeneous coordinates, n = d - 2 local
coordinates) to a Hermitian metric g_ab(x) in its own chart (section 3.1):

``metric``  g = g_FS o (1 + H(x)), the Hadamard (entrywise) product of g_FS with 1 + H, where
            H is the Hermitian n x n matrix of the n^2 real network outputs (``hermitian``)
            and the network reads ``Points.features`` (patch-normalised z, real and imag).
            Hermitian by construction, neither Kahler nor positive definite by construction.
``phi``     g = g_FS + d dbar phi (eq. B.6), phi(z) = NN(u(z)) with the invariant features
            u(z) = Re, Im of z_i conj(z_j) / |z|^2 (i <= j): d^2 real numbers unchanged by
            z -> lambda z for every complex lambda != 0. So phi is a smooth function on
            P^(d-1) (not only on one chart), d dbar phi is a global exact (1,1)-form, and g is
            Kahler in the class of g_FS: kappa (B.10) stays that of g_FS. A smooth activation
            (GELU) keeps d dbar phi continuous.

d dbar is taken in the ambient C^d and pulled back with the chart jacobian J = dz/dx
(``Points.jacobian``): (d dbar f)_ab = J_ai (d_i dbar_j f) conj(J_bj), exact because z(x) is
holomorphic (``ddbar``). Both networks are neural-tangents stax descriptions
(``metricflow._nt.mlp``), so the same object gives the finite network and its kernels.

Training (section 3.3): the sigma loss (B.11) with CY weights and the manifold's reference
kappa (``metricflow.reference.reference_kappa``: exact at the Fermat point), optax Adam (or
plain SGD for the lazy-learning width sweep), a validation split whose sigma is recorded
before training and after every epoch in both conventions (reference-kappa and
self-normalised) with standard errors, and optionally snapshots of the empirical metric-NTK
(eq. 2.7) on a fixed probe set (``metricflow.networks.metric_ntk``).

Example:
  >>> result = train(TrainConfig(model="metric", n_points=20_000, epochs=20))
  >>> result.val_sigma[0], result.val_sigma[-1], result.gain
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field, fields
from typing import ClassVar, Optional

import numpy as np

from metricflow._jax import jax, jnp
from metricflow.constraints import SEED, Count, Flag, Maybe, OneOf, Positive, validate
from metricflow.errors import MetricflowError, check_memory
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.measures import Kappa, SigmaReport, measure_sigma, weighted_mean_se
from metricflow.geometry.measures import sigma as sigma_of
from metricflow.networks import metric_ntk
from metricflow.networks.outputs import ModelInput, components, ddbar, hermitian, invariant_features, model_input, take
from metricflow.geometry.points import Points, SampleConfig, check_test_sample, first_points, sample_points
from metricflow.geometry.reference import reference_kappa
from metricflow.progress import Progress, panel, publish

__all__ = [
    "MODELS",
    "ACTIVATIONS",
    "OPTIMIZERS",
    "TRAIN_SCHEMA",
    "ModelInput",
    "TrainConfig",
    "TrainResult",
    "hermitian",
    "components",
    "invariant_features",
    "ddbar",
    "make_model",
    "model_input",
    "metric_fn",
    "potential_fn",
    "components_fn",
    "nonpd_fraction",
    "init_params",
    "n_parameters",
    "ricci_scalar",
    "ricci_measure",
    "split_points",
    "network_points",
    "stream_key",
    "to_numpy",
    "all_finite",
    "evaluate_in_chunks",
    "train",
    "train_partial",
    "estimate_train",
]

MODELS = ("metric", "phi")
ACTIVATIONS = ("relu", "gelu", "erf")
OPTIMIZERS = ("adam", "sgd")
PARAMETERIZATIONS = ("standard", "ntk")

# Bump when TrainResult's fields or their meaning change (2: reference kappa, both sigma
# conventions with standard errors, training seconds per validation, L-BFGS finish).
TRAIN_SCHEMA = 2

# Default readout scale (W_std of the last layer): small, so the metric starts near g_FS.
READOUT_STD = {"metric": 0.1, "phi": 0.05}
DEFAULT_ACTIVATION = {"metric": "relu", "phi": "gelu"}
# Validation points on which the Ricci scalar is measured (4th derivatives: costly).
RICCI_POINTS = 200
# Points per chunk when the metric is evaluated on a whole set.
EVAL_CHUNK = 5000



# ---- configs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """One training run of a finite metric network (section 3.3). Validated; computes nothing.

    Attributes:
      model: "metric" (g_FS o (1 + H)) or "phi" (g_FS + d dbar phi, Kahler).
      n_points: points sampled (train + validation); the literature uses 10^5.
      epochs: passes over the train points (the literature: 50).
      width, depth: hidden layers of ``width`` units (baseline 3 x 64).
      activation: "relu", "gelu" or "erf"; None = relu for metric, gelu for phi. phi needs
        a smooth one (relu has d dbar phi = 0 almost everywhere).
      parameterization: "standard" or "ntk" (stax; ntk for the width sweep).
      optimizer: "adam" (optax) or "sgd" (plain gradient descent, for the lazy limit).
      lr: initial learning rate.
      lr_final_fraction: the rate decays (cosine) to lr * lr_final_fraction at the last step;
        1 keeps it constant.
      warmup_epochs: the rate first rises linearly from 0 to lr over this many epochs.
      batch_size: points per step (the last partial batch of an epoch is dropped); None =
        min(200, train points).
      val_fraction: fraction of the points held out for validation.
      readout_std: W_std of the readout layer; None = READOUT_STD of the model.
      ntk_probe: validation points on which the metric-NTK is recorded (0 = none).
      ntk_every: record the metric-NTK every this many epochs (and at 0 and the last).
      ntk_implementation: neural-tangents implementation, 1 or 2 (3 is broken here).
      lbfgs_steps: full-batch L-BFGS steps after the epochs (0 = none).
      lbfgs_points: train points of the L-BFGS loss (the first ones of the train split).
      lbfgs_every: validate every this many L-BFGS steps.
      ricci: measure the Ricci scalar (phi model only) before and after training.
      seed: sampling, split, initialisation and shuffling all derive from it.
      manifold: the hypersurface (default the Fermat quintic).
      test: the validation points are the first n_val of ``sample_points(test)`` (a
        SampleConfig on the same manifold, shared with other methods), and the n_points - n_val
        train points a sample of seed; None (default): both are a seeded split of one sample.
    """

    model: str = "metric"
    n_points: int = 100_000
    epochs: int = 50
    width: int = 64
    depth: int = 3
    activation: Optional[str] = None
    parameterization: str = "standard"
    optimizer: str = "adam"
    lr: float = 1e-2
    lr_final_fraction: float = 0.01
    warmup_epochs: int = 0
    batch_size: Optional[int] = None
    val_fraction: float = 0.1
    readout_std: Optional[float] = None
    ntk_probe: int = 0
    ntk_every: int = 0
    ntk_implementation: int = 1
    lbfgs_steps: int = 0
    lbfgs_points: int = 20_000
    lbfgs_every: int = 10
    ricci: bool = True
    seed: int = 0
    manifold: Manifold = field(default_factory=Manifold)
    test: Optional[SampleConfig] = field(default=None, metadata={"key": "omit-default"})

    constraints: ClassVar[dict] = {
        "model": OneOf(MODELS, label="model"),
        "activation": Maybe(OneOf(ACTIVATIONS, label="activation")),
        "parameterization": OneOf(PARAMETERIZATIONS, label="parameterization"),
        "optimizer": OneOf(OPTIMIZERS, label="optimizer"),
        "n_points": Count("points", minimum=20),
        "epochs": Count("epochs", minimum=0, maximum=10_000),
        "width": Count("width", maximum=100_000),
        "depth": Count("depth", maximum=50),
        "lr": Positive("lr"),
        "lr_final_fraction": Positive("lr_final_fraction"),
        "warmup_epochs": Count("warmup epochs", minimum=0, maximum=10_000),
        "batch_size": Maybe(Count("batch size")),
        "val_fraction": Positive("val_fraction", below=1),
        "readout_std": Maybe(Positive("readout_std")),
        "ntk_probe": Count("NTK probe points", minimum=0, maximum=2000),
        "ntk_every": Count("ntk_every", minimum=0, maximum=10_000),
        "ntk_implementation": Count("ntk_implementation", minimum=1, maximum=3),
        "lbfgs_steps": Count("L-BFGS steps", minimum=0, maximum=100_000),
        "lbfgs_points": Count("L-BFGS points", minimum=1, maximum=10_000_000),
        "lbfgs_every": Count("lbfgs_every", minimum=1, maximum=100_000),
        "ricci": Flag(),
        "seed": SEED,
    }

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        validate(self)
        if self.activation is None:
            set_("activation", DEFAULT_ACTIVATION[self.model])
        if self.model == "phi" and self.activation == "relu":
            raise MetricflowError("the phi model needs a smooth activation (gelu or erf): d dbar of a ReLU net is 0 almost everywhere")
        if self.lr_final_fraction > 1:
            raise MetricflowError(f"lr_final_fraction must be in (0, 1], got {self.lr_final_fraction}")
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise MetricflowError(f"warmup_epochs ({self.warmup_epochs}) must be fewer than epochs ({self.epochs})")
        if self.readout_std is None:
            set_("readout_std", READOUT_STD[self.model])
        if self.ntk_implementation == 3:
            raise MetricflowError(f"ntk_implementation must be 1 or 2 (3, STRUCTURED_DERIVATIVES, is broken here), got {self.ntk_implementation!r}")
        n_val = self.n_val
        if self.batch_size is None:
            set_("batch_size", min(200, self.n_points - n_val))
        if n_val < 10 or self.n_points - n_val < 10:
            raise MetricflowError(f"{self.n_points} points with val_fraction {self.val_fraction} leave fewer than 10 train or validation points")
        if self.batch_size > self.n_points - n_val:
            raise MetricflowError(
                f"batch size {self.batch_size:,} exceeds the {self.n_points - n_val:,} train points; use a smaller batch"
            )
        if self.test is not None:
            check_test_sample(self.test, self.manifold, n_val, "the network's validation")
        if self.ntk_probe > n_val:
            raise MetricflowError(f"ntk_probe {self.ntk_probe} exceeds the {n_val} validation points")

    @property
    def n_val(self) -> int:
        return int(round(self.val_fraction * self.n_points))

    @property
    def ntk_epochs(self) -> tuple:
        """Epochs after which the metric-NTK is recorded: 0, K, 2K, ... and the last."""
        if self.ntk_probe == 0 or self.ntk_every == 0:
            return ()
        out = list(range(0, self.epochs + 1, self.ntk_every))
        if out[-1] != self.epochs:
            out.append(self.epochs)
        return tuple(out)

    def to_dict(self) -> dict:
        """JSON-ready dict of every field (the manifold as degree and [Re psi, Im psi])."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("manifold", "test")}
        out["manifold"] = {"degree": self.manifold.degree, "psi": [self.manifold.psi.real, self.manifold.psi.imag]}
        if self.test is not None:  # on the same manifold
            out["test"] = {"n_points": self.test.n_points, "seed": self.test.seed}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """The inverse of ``to_dict`` (validated; unknown keys are an error)."""
        if not isinstance(data, dict):
            raise MetricflowError(f"a TrainConfig is a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise MetricflowError(f"unknown TrainConfig fields {', '.join(unknown)}; expected some of {', '.join(sorted(names))}")
        kwargs = dict(data)
        if "manifold" in kwargs:
            m = kwargs["manifold"]
            try:
                kwargs["manifold"] = Manifold(int(m["degree"]), complex(float(m["psi"][0]), float(m["psi"][1])))
            except (TypeError, KeyError, IndexError, ValueError):
                raise MetricflowError(f"manifold must be {{'degree': d, 'psi': [re, im]}}, got {m!r}") from None
        if kwargs.get("test") is not None:
            t = kwargs["test"]
            try:
                kwargs["test"] = SampleConfig(kwargs.get("manifold", Manifold()), t["n_points"], t["seed"])
            except (TypeError, KeyError):
                raise MetricflowError(f"test must be {{'n_points': n, 'seed': s}}, got {t!r}") from None
        return cls(**kwargs)


# ---- models ----------------------------------------------------------------------------


def make_model(config: TrainConfig, n: int, d: int):
    """The stax (init_fn, apply_fn, kernel_fn) of the network inside ``config.model``.

    metric: input 2d features -> n^2 outputs; phi: input d^2 invariants -> 1 output.
    """
    from metricflow import _nt

    out_dim = n * n if config.model == "metric" else 1
    return _nt.mlp(config.depth, config.width, out_dim, config.activation, config.parameterization, config.readout_std)


def init_params(config: TrainConfig, key, n: int, d: int):
    """Initial parameters (a stax pytree) from the jax key."""
    init_fn, _, _ = make_model(config, n, d)
    in_dim = 2 * d if config.model == "metric" else d * d
    _, params = init_fn(key, (-1, in_dim))
    return params


def metric_fn(config: TrainConfig, n: int, d: int):
    """f(params, ModelInput) -> (N, n, n) complex128: the model's metric at N points."""
    _, apply_fn, _ = make_model(config, n, d)
    if config.model == "metric":

        def f(params, x: ModelInput):
            return x.g_fs * (1.0 + hermitian(apply_fn(params, x.features)))

        return f

    phi = _phi_fn(apply_fn)

    def f(params, x: ModelInput):
        dd = jax.vmap(lambda zr, jac: ddbar(lambda y: phi(params, y), zr, jac))(x.features, x.jacobian)
        return x.g_fs + dd

    return f


def _phi_fn(apply_fn):
    """phi(params, zr) for one point: zr (2d,) float64 -> scalar, NN of the invariants u(z)."""

    def phi(params, zr):
        return apply_fn(params, invariant_features(zr)[None, :])[0, 0]

    return phi


def potential_fn(config: TrainConfig, n: int, d: int):
    """f(params, zr) -> (N,) float64: the phi model's potential phi(z) = NN(u(z)) at N points.

    zr is (N, 2d) float64, real then imaginary parts of z (any scaling: phi is a function on
    P^(d-1)). The model's metric is g_FS + d dbar phi, the Kahler potential of g is
    (1/pi) log|z|^2 + phi.
    """
    if config.model != "phi":
        raise MetricflowError(f"only the phi model has a potential; this is the {config.model!r} model")
    _, apply_fn, _ = make_model(config, n, d)
    return lambda params, zr: apply_fn(params, invariant_features(zr))[:, 0]


def components_fn(config: TrainConfig, n: int, d: int):
    """f(params, ModelInput) -> (N, n^2) real metric components (for the metric-NTK, eq. 2.7)."""
    f = metric_fn(config, n, d)
    return lambda params, x: components(f(params, x))


# ---- curvature (eq. B.3) for the phi model ---------------------------------------------


def _gradient_p(m: Manifold, z):
    """dp/dz_i for p = sum z_i^d - d psi prod z_i, in JAX, z (d,) complex."""
    d = m.degree
    grad = d * z ** (d - 1)
    if m.psi != 0:
        prods = jnp.array([jnp.prod(jnp.delete(z, i, assume_unique_indices=True)) for i in range(d)])
        grad = grad - d * m.psi * prods
    return grad


def _jacobian_ext(m: Manifold, z, free, elim):
    """The chart jacobian dz/dx (n, d), extended holomorphically to z off X (same chart)."""
    d = m.degree
    grad = _gradient_p(m, z)
    onehot = jax.nn.one_hot(free, d, dtype=jnp.complex128)  # (n, d)
    elim_col = jax.nn.one_hot(elim, d, dtype=jnp.complex128)  # (d,)
    return onehot - (grad[free] / grad[elim])[:, None] * elim_col[None, :]


@functools.lru_cache(maxsize=8)
def _ricci_fn(config: TrainConfig, m: Manifold):
    """Jitted R(params, on, features, jacobian, free, elim) for the phi model of ``config``:
    the potential is the FS one plus ``on`` (0 or 1) times phi, so g_FS reuses the compile."""
    d, n = m.degree, m.degree - 2
    apply_fn = make_model(config, n, d)[1]

    def one(params, on, zr, jac, free, elim):
        def potential(y):
            z = y[:d] + 1j * y[d:]
            fs = jnp.log(jnp.sum(jnp.abs(z) ** 2)) / jnp.pi  # g_FS = d dbar of this
            return fs + on * apply_fn(params, invariant_features(y)[None, :])[0, 0]

        def metric(y):
            return ddbar(potential, y, _jacobian_ext(m, y[:d] + 1j * y[d:], free, elim))

        g = metric(zr)
        ric = -ddbar(lambda y: jnp.log(jnp.real(jnp.linalg.det(metric(y)))), zr, jac)
        return jnp.real(jnp.trace(jnp.linalg.solve(g, ric)))

    return jax.jit(jax.vmap(one, in_axes=(None, None, 0, 0, 0, 0)))


def ricci_scalar(config: TrainConfig, params, points: Points):
    """Ricci scalar R = g^{ab} R_ab, R_ab = -d_a dbar_b log det g (eq. B.3), of the phi model.

    log det g is extended off X by the same formulas (chart jacobian from dp/dz, ambient
    FS metric and d dbar phi at any z); d dbar of any extension pulls back to the right
    (1,1)-form, so ``ddbar`` applies. Four derivatives of phi: use a few hundred points.
    params=None gives g_FS itself. (R here is the trace g^{ab} R_ab; the Riemannian scalar
    curvature is twice it.)

    Args:
      config: a phi-model TrainConfig; params: its parameters, or None for g_FS.
      points: N points.

    Returns:
      (N,) float64.
    """
    from metricflow.geometry.points import local_indices

    if config.model != "phi":
        raise MetricflowError("the Ricci scalar is only computed for the Kahler phi model")
    m = points.manifold
    d = m.degree
    on = 0.0 if params is None else 1.0
    if params is None:
        params = init_params(config, jax.random.PRNGKey(0), d - 2, d)
    free = local_indices(points.scale_index, points.elim_index, d)
    fn = _ricci_fn(config, m)
    return np.asarray(fn(params, on, jnp.asarray(points.features), jnp.asarray(points.jacobian), jnp.asarray(free), jnp.asarray(points.elim_index)))


def ricci_measure(r, weights) -> float:
    """sum w |R| / sum w: the CY-weighted mean of |R| (0 for the Ricci-flat metric)."""
    return float(np.sum(weights * np.abs(r)) / np.sum(weights))


# ---- training --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The record of one training run. E = config.epochs, S snapshots of the metric-NTK,
    P = config.ntk_probe probe points, K = n^2 metric components per point. Every sigma is
    measured on the validation points (never trained on), in two conventions
    (``metricflow.measures.measure_sigma``), each with its standard error:

    * reference-kappa sigma (``val_sigma``): eta = det g / (kappa_ref |Omega|^2) with the
      manifold's one reference kappa (exact at the Fermat point);
    * self-normalised sigma (``val_sigma_self``): kappa from the model's own metric on the
      same points (cymetric's convention; fair only in the FS Kahler class).

    Attributes:
      config: the TrainConfig.
      kappa: the reference Kappa (value, se, exact) of the loss and of ``val_sigma``.
      val_sigma, val_sigma_se: (E+1,) float64, reference-kappa sigma (B.11, CY weights)
        before training ([0]) and after every epoch, and its standard error.
      val_sigma_self, val_sigma_self_se: (E+1,) float64, self-normalised sigma and its error.
      val_kappa_self: (E+1,) float64, kappa of the model's metric on the validation points.
      train_seconds: (E+1,) float64, training time (optimizer steps only) before each record.
      train_loss: (E,) float64, mean train-batch sigma during each epoch.
      gain: val_sigma[0] / val_sigma[-1].
      sigma_fs, sigma_fs_se: reference-kappa sigma of g_FS itself on the validation points.
      nonpd_fraction: (E+1,) float64, fraction of validation points whose metric is not PD.
      lbfgs_sigma, lbfgs_sigma_se: (L,) float64, reference-kappa validation sigma after each
        block of L-BFGS steps (config.lbfgs_every); L = 0 without the L-BFGS finish.
      lbfgs_seconds: (L,) float64, training time before each of those records.
      lbfgs_steps_done: L-BFGS steps taken (fewer than config.lbfgs_steps if a step went
        non-finite: the last finite parameters are kept).
      final: SigmaReport of the final model on the validation points.
      ntk_epochs: (S,) int, epochs of the metric-NTK snapshots.
      ntk_spectra: (S, K P) float64, eigenvalues (ascending) of the (K P) x (K P) metric-NTK.
      ntk_change: (S,) float64, |Theta_t - Theta_0|_F / |Theta_0|_F on the probe set.
      ntk_wasserstein: (S,) float64, Wasserstein distance between the epoch-0 spectrum and
        each snapshot's (fig. 4, right), in eigenvalue units.
      ntk_wasserstein_log: (S,) float64, the same between log10 spectra (floored at 1e-12
        times the largest eigenvalue): shape changes, not only scale.
      ricci_fs, ricci_initial, ricci_final: CY-weighted mean |R| (eq. B.3) on RICCI_POINTS
        validation points for g_FS, the initial and the trained phi model (None for the
        metric model or with ricci=False); ricci_*_se their standard errors.
      params_initial, params_final: the network parameters (stax pytrees of ndarrays).
      n_params: number of parameters.
      epoch_seconds: (E,) float64, wall time of each epoch (training only).
      ntk_seconds: total time spent on metric-NTK snapshots.
      seconds: everything.
      load_average: (start, end) 1-minute load average of the machine (timings are only
        comparable at similar load).
      schema_version: TRAIN_SCHEMA.
    """

    config: TrainConfig
    kappa: Kappa
    val_sigma: np.ndarray
    val_sigma_se: np.ndarray
    val_sigma_self: np.ndarray
    val_sigma_self_se: np.ndarray
    val_kappa_self: np.ndarray
    train_seconds: np.ndarray
    train_loss: np.ndarray
    gain: float
    sigma_fs: float
    sigma_fs_se: float
    nonpd_fraction: np.ndarray
    lbfgs_sigma: np.ndarray
    lbfgs_sigma_se: np.ndarray
    lbfgs_seconds: np.ndarray
    lbfgs_steps_done: int
    final: SigmaReport
    ntk_epochs: np.ndarray
    ntk_spectra: np.ndarray
    ntk_change: np.ndarray
    ntk_wasserstein: np.ndarray
    ntk_wasserstein_log: np.ndarray
    ricci_fs: Optional[float]
    ricci_fs_se: Optional[float]
    ricci_initial: Optional[float]
    ricci_initial_se: Optional[float]
    ricci_final: Optional[float]
    ricci_final_se: Optional[float]
    params_initial: object
    params_final: object
    n_params: int
    epoch_seconds: np.ndarray
    ntk_seconds: float
    seconds: float
    load_average: tuple
    schema_version: int = TRAIN_SCHEMA

    def summary(self) -> dict:
        """The JSON of ``metricflow train --json``."""
        floats = lambda a: [float(v) for v in a]  # noqa: E731
        return {
            "model": self.config.model,
            "kappa": float(self.kappa.value),
            "kappa_se": float(self.kappa.se),
            "kappa_exact": bool(self.kappa.exact),
            "val_sigma": floats(self.val_sigma),
            "val_sigma_se": floats(self.val_sigma_se),
            "val_sigma_self": floats(self.val_sigma_self),
            "val_sigma_self_se": floats(self.val_sigma_self_se),
            "val_kappa_self": floats(self.val_kappa_self),
            "train_seconds": floats(self.train_seconds),
            "train_loss": floats(self.train_loss),
            "nonpd_fraction": floats(self.nonpd_fraction),
            "lbfgs_sigma": floats(self.lbfgs_sigma),
            "lbfgs_sigma_se": floats(self.lbfgs_sigma_se),
            "lbfgs_seconds": floats(self.lbfgs_seconds),
            "lbfgs_steps_done": int(self.lbfgs_steps_done),
            "final": self.final.to_dict(),
            "gain": float(self.gain),
            "sigma_fs": float(self.sigma_fs),
            "sigma_fs_se": float(self.sigma_fs_se),
            "ntk_epochs": [int(e) for e in self.ntk_epochs],
            "ntk_wasserstein": floats(self.ntk_wasserstein),
            "ntk_wasserstein_log": floats(self.ntk_wasserstein_log),
            "ntk_change": floats(self.ntk_change),
            "ricci_fs": self.ricci_fs,
            "ricci_fs_se": self.ricci_fs_se,
            "ricci_initial": self.ricci_initial,
            "ricci_initial_se": self.ricci_initial_se,
            "ricci_final": self.ricci_final,
            "ricci_final_se": self.ricci_final_se,
            "n_params": int(self.n_params),
            "epoch_seconds": floats(self.epoch_seconds),
            "seconds": float(self.seconds),
            "load_average": floats(self.load_average),
            "config": self.config.to_dict(),
        }


def stream_key(seed: int, stream: int):
    """An independent jax key for (seed, stream); no global RNG."""
    return jax.random.fold_in(jax.random.PRNGKey(seed % 2**32), stream)


def network_points(config: TrainConfig) -> tuple[Points, Points]:
    """(train, validation) of ``train(config)``: a seeded split of one sample, or, with
    ``config.test``, a sample of the train points and the first n_val of the test sample."""
    c = config
    if c.test is None:
        return split_points(sample_points(SampleConfig(c.manifold, c.n_points, c.seed)), c.n_val, c.seed)
    return sample_points(SampleConfig(c.manifold, c.n_points - c.n_val, c.seed)), first_points(c.test, c.n_val)


def split_points(points: Points, n_val: int, seed: int) -> tuple[Points, Points]:
    """(train, validation): a seeded random split, validation of n_val points."""
    perm = np.random.default_rng([seed, 1]).permutation(len(points))
    return points.subset(np.sort(perm[n_val:])), points.subset(np.sort(perm[:n_val]))


def _optimizer(config: TrainConfig, steps: int):
    """optax Adam or SGD: linear warm-up from 0 over config.warmup_epochs' steps, then a
    cosine decay to lr * lr_final_fraction at the last step."""
    import optax

    total = max(steps, 1)
    warmup = min(config.warmup_epochs * steps // max(config.epochs, 1), total - 1)
    if warmup > 0:
        rate = optax.warmup_cosine_decay_schedule(0.0, config.lr, warmup, total, end_value=config.lr * config.lr_final_fraction)
    else:
        rate = optax.cosine_decay_schedule(config.lr, total, alpha=config.lr_final_fraction)
    return optax.adam(rate) if config.optimizer == "adam" else optax.sgd(rate)


def to_numpy(tree):
    """The pytree with every leaf a numpy array."""
    return jax.tree_util.tree_map(lambda a: np.asarray(a), tree)


def n_parameters(params) -> int:
    return int(sum(np.size(a) for a in jax.tree_util.tree_leaves(params)))


def evaluate_in_chunks(f, params, x, chunk: int = EVAL_CHUNK) -> np.ndarray:
    """f(params, x) at all N points of x (a ModelInput or FamilyBatch), ``chunk`` at a time:
    the (N, n, n) complex128 metric."""
    parts = []
    for s in range(0, len(x.features), chunk):
        parts.append(np.asarray(f(params, take(x, slice(s, s + chunk)))))
    return np.concatenate(parts)


def nonpd_fraction(g) -> float:
    """Fraction of the (N, n, n) Hermitian metrics g that are not positive definite."""
    return float(np.mean(np.linalg.eigvalsh(np.asarray(g))[:, 0] <= 0))


def all_finite(params) -> bool:
    """True if every entry of every leaf of the pytree is finite."""
    return bool(np.all([np.all(np.isfinite(np.asarray(a))) for a in jax.tree_util.tree_leaves(params)]))


def train(config: TrainConfig, progress: Optional[Progress] = None) -> TrainResult:
    """Train the metric network of ``config`` with the sigma loss (B.11) and record it.

    Per step: L(theta) = sum_B w |1 - eta| / sum_B w over a batch B of train points, with
    eta = det g_theta / (kappa_ref |Omega|^2) and kappa_ref the manifold's reference kappa
    (``reference_kappa``); the optimizer step is optax Adam (or SGD). Optionally an L-BFGS
    finish (``optax.lbfgs``, full batch on the first lbfgs_points train points). After every
    epoch: sigma on the validation set in both conventions with standard errors
    (``measure_sigma``), and at ``config.ntk_epochs`` the metric-NTK (eq. 2.7) of the n^2
    real metric components on the first ntk_probe validation points.

    Args:
      config: a TrainConfig.
      progress: optional progress(epoch, epochs, message), after every epoch.

    Returns:
      TrainResult.
    """
    import optax


    c = config
    report = progress or (lambda *a, **k: None)
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    check_memory(estimate_train(c).bytes, f"training on {c.n_points:,} points")
    kref = reference_kappa(c.manifold)
    tr, va = network_points(c)
    d, n = c.manifold.degree, c.manifold.degree - 2
    x_tr, x_va = model_input(tr), model_input(va)
    k_loss = float(kref.value)
    total = c.epochs + (1 if c.lbfgs_steps else 0)
    report(0, total, f"sampled {len(tr):,} train + {len(va):,} validation points")

    f = metric_fn(c, n, d)
    f_jit = jax.jit(f)
    params = init_params(c, stream_key(c.seed, 2), n, d)
    params_initial = to_numpy(params)
    opt = _optimizer(c, c.epochs * (len(tr) // c.batch_size))
    opt_state = opt.init(params)

    def loss(p, x, omega_sq, w):
        return sigma_of(f(p, x), omega_sq, w, k_loss)

    @jax.jit
    def step(p, s, x, omega_sq, w):
        value, grads = jax.value_and_grad(loss)(p, x, omega_sq, w)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    def validate(p) -> tuple[SigmaReport, float]:
        g = evaluate_in_chunks(f_jit, p, x_va)
        return measure_sigma(g, va.omega_sq, va.weights, kref), nonpd_fraction(g)

    probe = take(x_va, slice(0, c.ntk_probe))
    comp = components_fn(c, n, d)
    ntk_epochs = c.ntk_epochs
    spectra, changes, theta0 = [], [], None
    ntk_seconds = 0.0

    def snapshot(p) -> None:
        nonlocal theta0, ntk_seconds
        t0 = time.perf_counter()
        theta = metric_ntk.metric_ntk(comp, p, probe, probe, c.ntk_implementation)
        if theta0 is None:
            theta0 = theta
        spectra.append(metric_ntk.spectrum(theta))
        changes.append(float(np.linalg.norm(theta - theta0) / np.linalg.norm(theta0)))
        ntk_seconds += time.perf_counter() - t0

    reports: list[SigmaReport] = []
    nonpd = np.full(c.epochs + 1, np.nan)
    train_seconds = np.zeros(c.epochs + 1)
    train_loss, epoch_seconds = np.full(c.epochs, np.nan), np.zeros(c.epochs)
    fs = measure_sigma(va.g_fs, va.omega_sq, va.weights, kref)
    rep, nonpd[0] = validate(params)
    reports.append(rep)
    if 0 in ntk_epochs:
        snapshot(params)
    report(0, total, f"epoch 0: validation sigma {rep.sigma:.4f}")
    publish(progress, lambda: train_partial([r.sigma for r in reports], train_loss))

    rng = np.random.default_rng([c.seed, 3])
    n_tr = len(tr)
    n_batches = n_tr // c.batch_size
    omega_tr, w_tr = np.asarray(tr.omega_sq), np.asarray(tr.weights)
    elapsed = 0.0
    for epoch in range(1, c.epochs + 1):
        t0 = time.perf_counter()
        perm = rng.permutation(n_tr)
        values = []
        for b in range(n_batches):
            idx = perm[b * c.batch_size : (b + 1) * c.batch_size]
            xb = take(x_tr, idx)
            params, opt_state, value = step(params, opt_state, xb, omega_tr[idx], w_tr[idx])
            values.append(value)
        train_loss[epoch - 1] = float(np.mean(np.asarray(jnp.stack(values))))
        if not all_finite(params):
            raise MetricflowError(f"the parameters became NaN/inf in epoch {epoch}; lower the learning rate {c.lr:g}")
        epoch_seconds[epoch - 1] = time.perf_counter() - t0
        elapsed += epoch_seconds[epoch - 1]
        train_seconds[epoch] = elapsed
        rep, nonpd[epoch] = validate(params)
        reports.append(rep)
        if epoch in ntk_epochs:
            snapshot(params)
        report(epoch, total, f"epoch {epoch}: validation sigma {rep.sigma:.4f} ± {rep.sigma_se:.4f}")
        publish(progress, lambda: train_partial([r.sigma for r in reports], train_loss))

    lbfgs_sigma, lbfgs_se, lbfgs_seconds, lbfgs_done = [], [], [], 0
    if c.lbfgs_steps:
        params, lbfgs_sigma, lbfgs_se, lbfgs_seconds, lbfgs_done = _lbfgs_finish(c, loss, params, tr, validate, elapsed, report, total)
    final = validate(params)[0] if c.lbfgs_steps else reports[-1]

    ricci = (None,) * 6
    if c.ricci and c.model == "phi":
        sub = va.subset(np.arange(min(RICCI_POINTS, len(va))))
        ricci = (
            *weighted_mean_se(np.abs(ricci_scalar(c, None, sub)), sub.weights),
            *weighted_mean_se(np.abs(ricci_scalar(c, params_initial, sub)), sub.weights),
            *weighted_mean_se(np.abs(ricci_scalar(c, params, sub)), sub.weights),
        )

    spectra_arr = np.asarray(spectra) if spectra else np.zeros((0, 0))
    w_raw, w_log = metric_ntk.wasserstein_to_first(spectra_arr)
    field_of = lambda name: np.array([getattr(r, name) for r in reports])  # noqa: E731
    val_sigma = field_of("sigma")
    return TrainResult(
        config=c,
        kappa=kref,
        val_sigma=val_sigma,
        val_sigma_se=field_of("sigma_se"),
        val_sigma_self=field_of("sigma_self"),
        val_sigma_self_se=field_of("sigma_self_se"),
        val_kappa_self=field_of("kappa_self"),
        train_seconds=train_seconds,
        train_loss=train_loss,
        gain=float(val_sigma[0] / final.sigma),
        sigma_fs=fs.sigma,
        sigma_fs_se=fs.sigma_se,
        nonpd_fraction=nonpd,
        lbfgs_sigma=np.asarray(lbfgs_sigma, dtype=np.float64),
        lbfgs_sigma_se=np.asarray(lbfgs_se, dtype=np.float64),
        lbfgs_seconds=np.asarray(lbfgs_seconds, dtype=np.float64),
        lbfgs_steps_done=lbfgs_done,
        final=final,
        ntk_epochs=np.asarray(ntk_epochs, dtype=np.int64),
        ntk_spectra=spectra_arr,
        ntk_change=np.asarray(changes, dtype=np.float64),
        ntk_wasserstein=w_raw,
        ntk_wasserstein_log=w_log,
        ricci_fs=ricci[0],
        ricci_fs_se=ricci[1],
        ricci_initial=ricci[2],
        ricci_initial_se=ricci[3],
        ricci_final=ricci[4],
        ricci_final_se=ricci[5],
        params_initial=params_initial,
        params_final=to_numpy(params),
        n_params=n_parameters(params),
        epoch_seconds=epoch_seconds,
        ntk_seconds=ntk_seconds,
        seconds=time.perf_counter() - start,
        load_average=(load_start, os.getloadavg()[0]),
    )


def train_partial(val_sigma, train_loss: np.ndarray) -> dict:
    """Training's partial series (``metricflow.progress.publish``): the validation sigma of
    epochs 0..e and the train loss (mean train-batch sigma) of epochs 1..e."""
    e = len(val_sigma) - 1
    return {"panels": [panel("σ per epoch", "epoch", "σ", {
        "validation": (range(e + 1), val_sigma), "train loss (batch σ)": (range(1, e + 1), train_loss[:e]),
    }, log_y=True)]}


def _lbfgs_finish(c: TrainConfig, loss, params, tr: Points, validate, elapsed: float, report, total: int):
    """c.lbfgs_steps full-batch L-BFGS steps (optax.lbfgs, zoom line search) on the first
    c.lbfgs_points train points, validated every c.lbfgs_every steps.

    Returns:
      (params, sigma list, se list, training-seconds list, steps done).
    """
    import optax

    m = min(c.lbfgs_points, len(tr))
    xs = model_input(tr.subset(np.arange(m)))
    omega, w = jnp.asarray(tr.omega_sq[:m]), jnp.asarray(tr.weights[:m])

    def value_fn(p):
        return loss(p, xs, omega, w)

    opt = optax.lbfgs()
    state = opt.init(params)
    value_and_grad = optax.value_and_grad_from_state(value_fn)

    @jax.jit
    def step(p, s):
        value, grad = value_and_grad(p, state=s)
        updates, s = opt.update(grad, s, p, value=value, grad=grad, value_fn=value_fn)
        return optax.apply_updates(p, updates), s

    sigmas, ses, seconds, done = [], [], [], 0
    for i in range(1, c.lbfgs_steps + 1):
        t0 = time.perf_counter()
        new, state = step(params, state)
        jax.block_until_ready(new)
        elapsed += time.perf_counter() - t0
        if not all_finite(new):
            break  # keep the last finite parameters; lbfgs_steps_done says how far it got
        params, done = new, i
        if i % c.lbfgs_every == 0 or i == c.lbfgs_steps:
            rep = validate(params)[0]
            sigmas.append(rep.sigma)
            ses.append(rep.sigma_se)
            seconds.append(elapsed)
            report(c.epochs, total, f"L-BFGS step {i}: validation sigma {rep.sigma:.4f} ± {rep.sigma_se:.4f}")
    return params, sigmas, ses, seconds, done


# Seconds per point-epoch on 2 cores (benchmarks/bench_networks.py, 3 x 64, load 5-7), training
# and validation together: metric 0.5-1 s, phi (batch 100) 11-16 s per epoch of 10^5 points.
SECONDS_PER_POINT_EPOCH = {"metric": 1e-5, "phi": 1.7e-4}


def estimate_train(config: TrainConfig):
    """Expected seconds and peak bytes of ``train(config)``.

    Time: ~10 s start (JAX, compile), sampling ~1e-5 s per point, then per point-epoch the
    model's cost (SECONDS_PER_POINT_EPOCH, scaled by depth * width^2 / (3 * 64^2), at least
    0.3 of it); per metric-NTK snapshot with k = 9 P rows ~3e-10 k^2 (parameters) for the
    kernel (3x for phi) and 7e-10 k^3 for the spectrum, plus ~10 s of compile (TensorFlow
    import); the phi model's Ricci check ~50 s; an L-BFGS step ~3 full-batch gradients. Memory: the worker with TensorFlow
    (~1.6 GB), ~3 kB per point of chart data, batch activations (the L-BFGS batch too),
    and the metric-NTK
    ((9P)^2 float64, twice) with the parameter jacobian (9P x parameters).
    """
    from metricflow.estimates import Estimate

    c = config
    scale = max(0.3, c.depth * c.width**2 / (3 * 64**2))
    seconds = 10.0 + 1e-5 * c.n_points + SECONDS_PER_POINT_EPOCH[c.model] * scale * c.n_points * c.epochs
    params = c.depth * c.width**2 + 30 * c.width
    k = 9 * c.ntk_probe
    snaps = len(c.ntk_epochs)
    if snaps:
        seconds += 10.0 + snaps * (3e-10 * k * k * params * (3 if c.model == "phi" else 1) + 7e-10 * k**3)
    if c.model == "phi" and c.ricci:
        seconds += 50.0
    # an L-BFGS step: a full-batch gradient and its line search, about 3 gradients
    seconds += 3 * SECONDS_PER_POINT_EPOCH[c.model] * scale * min(c.lbfgs_points, c.n_points) * c.lbfgs_steps
    batch = max(c.batch_size, min(c.lbfgs_points, c.n_points) if c.lbfgs_steps else 0)
    memory = 1600 * 2**20 + 3000 * c.n_points + 8 * 20 * batch * c.width * c.depth
    memory += 16 * k * k + 8 * k * params
    return Estimate(float(seconds), int(memory))
