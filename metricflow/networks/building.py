"""The finite networks of a TrainConfig: parameters, the metric, the potential, and the
helpers that evaluate a network on many points (section 3.3).

Both models are ``metricflow.networks.mlp.mlp`` networks: plain JAX with the semantics of
neural-tangents' stax (same parameters from the same key, same outputs), so nothing here
imports neural-tangents or TensorFlow.
"""

from __future__ import annotations

import numpy as np

from metricflow._jax import jax
from metricflow.errors import MetricflowError
from metricflow.networks import invariant
from metricflow.networks.config import TrainConfig
from metricflow.networks.mlp import Network, mlp
from metricflow.networks.outputs import ModelInput, components, ddbar, hermitian, invariant_features, take

__all__ = [
    "EVAL_CHUNK",
    "make_model",
    "init_params",
    "metric_fn",
    "point_potential",
    "potential_fn",
    "components_fn",
    "to_numpy",
    "n_parameters",
    "evaluate_in_chunks",
    "nonpd_fraction",
    "all_finite",
]

# Points per chunk when the metric is evaluated on a whole set.
EVAL_CHUNK = 5000


def make_model(config: TrainConfig, n: int, d: int) -> Network:
    """The (init_fn, apply_fn, kernel_fn) of the network inside ``config.model`` (``mlp``:
    plain JAX with stax's semantics; only kernel_fn imports neural-tangents, when called).

    metric: input 2d features -> n^2 outputs; phi: input d^2 invariants -> 1 output.
    """
    out_dim = n * n if config.model == "metric" else 1
    return mlp(config.depth, config.width, out_dim, config.activation, config.parameterization, config.readout_std)


def init_params(config: TrainConfig, key, n: int, d: int):
    """Initial parameters from the jax key: a list per layer, (W, b) float64 for a Dense
    layer (b None for the readout), () for an activation, as stax lays them out. With the
    symmetric features a dict (``invariant.init_symmetric_params``): that network under
    "net", with its feature shift and scale (and base coefficients)."""
    if config.features == "symmetric":
        return invariant.init_symmetric_params(config, key)
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

    phi = point_potential(config, n, d)

    def f(params, x: ModelInput):
        dd = jax.vmap(lambda zr, jac: ddbar(lambda y: phi(params, y), zr, jac))(x.features, x.jacobian)
        return x.g_fs + dd

    return f


def point_potential(config: TrainConfig, n: int, d: int):
    """phi(params, zr) for one point: zr (2d,) float64 -> scalar, the phi model's potential
    on top of g_FS (NN of the invariants u(z), or ``invariant.symmetric_potential``)."""
    if config.features == "symmetric":
        batch = invariant.symmetric_potential(config)
        return lambda params, zr: batch(params, zr[None, :])[0]
    _, apply_fn, _ = make_model(config, n, d)

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
    if config.features == "symmetric":
        return invariant.symmetric_potential(config)
    _, apply_fn, _ = make_model(config, n, d)
    return lambda params, zr: apply_fn(params, invariant_features(zr))[:, 0]


def components_fn(config: TrainConfig, n: int, d: int):
    """f(params, ModelInput) -> (N, n^2) real metric components (for the metric-NTK, eq. 2.7)."""
    f = metric_fn(config, n, d)
    return lambda params, x: components(f(params, x))


# ---- arrays and pytrees ----------------------------------------------------------------


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
