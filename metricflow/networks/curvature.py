"""The Ricci scalar of the phi model (eq. B.3), by four derivatives of the potential."""

from __future__ import annotations

import functools

import numpy as np

from metricflow._jax import jax, jnp
from metricflow.errors import MetricflowError
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.points import Points
from metricflow.networks.building import init_params, point_potential
from metricflow.networks.config import TrainConfig
from metricflow.networks.outputs import ddbar

__all__ = ["RICCI_POINTS", "ricci_scalar", "ricci_measure"]

# Validation points on which the Ricci scalar is measured (4th derivatives: costly).
RICCI_POINTS = 200


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
    phi = point_potential(config, n, d)

    def one(params, on, zr, jac, free, elim):
        def potential(y):
            z = y[:d] + 1j * y[d:]
            fs = jnp.log(jnp.sum(jnp.abs(z) ** 2)) / jnp.pi  # g_FS = d dbar of this
            return fs + on * phi(params, y)

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
