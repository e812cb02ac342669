"""The empirical metric-NTK of a finite network and how it evolves (eq. 2.7, section 3.3).

Theta_ijkl(x, x') = sum_I dg_ij(x)/dtheta_I dg_kl(x')/dtheta_I (eq. 2.7) for the K = n^2 real
metric components g_r (``networks.outputs.components``) of a metric network, on P probe points,
arranged as a (K P) x (K P) matrix (row index x * K + r). It is symmetric and positive
semi-definite (a Gram matrix of parameter gradients). Computed in JAX from the parameter
jacobians, a bounded number of points at a time (``metric_jacobian``); neural-tangents is
not imported.

The evolving kernel (fig. 4): spectra at chosen epochs, and the Wasserstein distance of each
to the epoch-0 spectrum (``TrainResult.ntk_*``, recorded by ``networks.models.train``), and
the flow with a frozen metric-NTK (``ntk_flow``). The width sweep and the trained-kernel
flow that use them are studies (``metricflow.studies.feature_learning``).

Every sigma is measured against the manifold's reference kappa
(``metricflow.reference.reference_kappa``) and reported with its standard error; the
self-normalised sigma (kappa from the metric on the same points) is recorded beside it.

Example:
  >>> theta = metric_ntk(components_fn(cfg, 3, 5), params, probe, probe)   # (9P, 9P)
  >>> eigenvalues = spectrum(theta)
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from metricflow._jax import jax, jnp
from metricflow.errors import check_memory
from metricflow.networks.outputs import ModelInput, components, hermitian, take

__all__ = [
    "metric_ntk",
    "metric_jacobian",
    "spectrum",
    "wasserstein_to_first",
    "component_gradient",
    "FlowCurves",
    "ntk_flow",
    "TEST_CHUNK",
]

# Eigenvalues below this fraction of the largest are floored before log10 (for histograms
# and the log-spectrum Wasserstein distance): the kernel has rank <= number of parameters
# and round-off puts the rest near 0 with either sign.
LOG_FLOOR = 1e-12



# ---- the kernel (eq. 2.7) --------------------------------------------------------------


def metric_ntk(f, params, x1: ModelInput, x2: ModelInput, implementation: int = 1) -> np.ndarray:
    """Empirical metric-NTK Theta_rs(x, x') of f(params, x) -> (N, K) components (eq. 2.7).

    Theta_rs(x, x') = sum_I df_r(x)/dtheta_I df_s(x')/dtheta_I, computed in JAX, JAC_CHUNK
    points at a time (``metric_jacobian``): implementation 1 contracts the parameter
    jacobians, J(x1) J(x2)^T (J(x1) is held whole, J(x2) one chunk at a time, and once only
    when x2 is x1); implementation 2 forms each column as a jacobian-vector product of a
    vector-jacobian product, never holding a jacobian of x1. They agree to rounding.

    Args:
      f: components function, e.g. ``networks.components_fn(config, n, d)``.
      params: network parameters (a pytree of float64 arrays).
      x1: ModelInput of N1 points; x2: of N2 points.
      implementation: 1 (jacobian contraction) or 2 (NTK-vector products). 3, neural-tangents'
        STRUCTURED_DERIVATIVES, is refused: it is broken for these functions.

    Returns:
      (K N1, K N2) float64 with entry [x K + r, x' K + s] = Theta_rs(x, x').
    """
    if int(implementation) not in (1, 2):
        raise ValueError(f"implementation must be 1 or 2 (3, STRUCTURED_DERIVATIVES, is broken here), got {implementation}")
    n1, n2 = len(x1.features), len(x2.features)
    k, n_params = _sizes(f, params, x1)
    size = _chunk_size(max(n1, n2), k, n_params)  # one compile serves both sets
    check_memory(16.0 * k * (n1 + size) * n_params + 16.0 * k * k * n1 * n2, f"the metric-NTK on {n1:,} x {n2:,} points")
    if int(implementation) == 2:
        return _ntk_vector_products(f, params, x1, x2, size)
    j1 = metric_jacobian(f, params, x1, size)
    if x2 is x1:
        return j1 @ j1.T
    out = np.empty((k * n1, k * n2))
    for a in range(0, n2, size):
        b = min(a + size, n2)
        out[:, k * a : k * b] = j1 @ metric_jacobian(f, params, take(x2, slice(a, b)), size).T
    return out


def _sizes(f, params, x) -> tuple[int, int]:
    """(K outputs per point, P parameters), from shapes only (nothing is computed)."""
    k = int(jax.eval_shape(f, params, take(x, slice(0, 1))).shape[-1])
    return k, int(sum(np.size(a) for a in jax.tree_util.tree_leaves(params)))


# Points whose parameter jacobian is computed in one call (K * JAC_CHUNK rows of it).
JAC_CHUNK = 64
# Bytes one chunk of the jacobian may take; fewer points per chunk for large networks.
JAC_CHUNK_BYTES = 128 * 2**20


def _chunk_size(n: int, k: int, n_params: int) -> int:
    """Points per chunk: at most JAC_CHUNK and JAC_CHUNK_BYTES, the n points split into equal
    chunks (the last one padded), so a probe set of n points compiles once."""
    top = max(1, min(JAC_CHUNK, JAC_CHUNK_BYTES // max(1, 8 * k * n_params)))
    chunks = math.ceil(n / top)
    return max(1, math.ceil(n / chunks))


def metric_jacobian(f, params, x: ModelInput, chunk: int | None = None) -> np.ndarray:
    """J[x K + r, I] = df_r(x)/dtheta_I, the parameter jacobian of f at N points.

    Per point (``jax.vmap`` of ``jax.jacrev``), ``chunk`` points per jitted call; the last
    chunk is padded with copies of its last point, whose rows are dropped.

    Args:
      f: f(params, x) -> (N, K) float64; params: a pytree with P entries in all.
      x: ModelInput (or any NamedTuple of arrays leading with N) of N points.
      chunk: points per call; None = ``_chunk_size`` (at most JAC_CHUNK and JAC_CHUNK_BYTES).

    Returns:
      (K N, P) float64, the parameters in ``jax.tree_util.tree_leaves`` order, each leaf
      flattened row-major.
    """
    n = len(x.features)
    k, n_params = _sizes(f, params, x)
    size = chunk or _chunk_size(n, k, n_params)
    fn = _jacobian_fn(f)
    parts = []
    for a in range(0, n, size):
        idx = np.minimum(np.arange(a, a + size), n - 1)
        parts.append(np.asarray(fn(params, take(x, idx)))[: k * (min(a + size, n) - a)])
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


@functools.lru_cache(maxsize=16)
def _jacobian_fn(f):
    """Jitted (params, x of c points) -> (K c, P) jacobian, compiled once per f and c."""

    def one(params, xi):
        return f(params, jax.tree_util.tree_map(lambda a: a[None], xi))[0]

    @jax.jit
    def rows(params, x):
        jac = jax.vmap(jax.jacrev(one), in_axes=(None, 0))(params, x)  # leaves (c, K, *shape)
        leaves = jax.tree_util.tree_leaves(jac)
        c, k = leaves[0].shape[:2]
        return jnp.concatenate([a.reshape(c * k, -1) for a in leaves], axis=1)

    return rows


def _ntk_vector_products(f, params, x1: ModelInput, x2: ModelInput, size: int) -> np.ndarray:
    """Theta (K N1, K N2) block by block of ``size`` x ``size`` points: for each chunk of x2
    the vjp of every basis cotangent (a parameter vector per column), then its jvp at a chunk
    of x1. Chunks are padded as in ``metric_jacobian``."""
    n1, n2 = len(x1.features), len(x2.features)
    k = _sizes(f, params, x1)[0]
    fn = _ntk_vp_fn(f)
    out = np.empty((k * n1, k * n2))
    for b in range(0, n2, size):
        xb = take(x2, np.minimum(np.arange(b, b + size), n2 - 1))
        m2 = min(b + size, n2) - b
        for a in range(0, n1, size):
            xa = take(x1, np.minimum(np.arange(a, a + size), n1 - 1))
            m1 = min(a + size, n1) - a
            out[k * a : k * (a + m1), k * b : k * (b + m2)] = np.asarray(fn(params, xa, xb))[: k * m1, : k * m2]
    return out


@functools.lru_cache(maxsize=16)
def _ntk_vp_fn(f):
    """Jitted (params, xa, xb) -> (K ca, K cb) block of Theta by vjp then jvp."""

    @jax.jit
    def block(params, xa, xb):
        out_b, vjp_b = jax.vjp(lambda p: f(p, xb), params)
        basis = jnp.eye(out_b.size, dtype=out_b.dtype).reshape((out_b.size,) + out_b.shape)
        vectors = jax.vmap(lambda e: vjp_b(e)[0])(basis)
        cols = jax.vmap(lambda v: jax.jvp(lambda p: f(p, xa), (params,), (v,))[1])(vectors)  # (K cb, ca, K)
        return cols.reshape(out_b.size, -1).T

    return block


def spectrum(theta: np.ndarray) -> np.ndarray:
    """Eigenvalues, ascending, of the symmetric (M, M) metric-NTK (symmetrised first)."""
    return np.linalg.eigvalsh(0.5 * (theta + theta.T))


def _log_spectrum(eig: np.ndarray) -> np.ndarray:
    top = float(np.max(np.abs(eig))) if eig.size else 1.0
    return np.log10(np.maximum(eig, LOG_FLOOR * top))


def wasserstein_to_first(spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wasserstein-1 distance of each spectrum to the first (fig. 4, right).

    Args:
      spectra: (S, M) eigenvalues of S snapshots.

    Returns:
      (raw, log): (S,) float64 each, on the eigenvalues and on their log10 (floored at
      LOG_FLOOR times the largest); both 0 for the first snapshot.
    """
    from scipy.stats import wasserstein_distance

    spectra = np.asarray(spectra, dtype=np.float64)
    if spectra.ndim != 2 or spectra.shape[0] == 0:
        return np.zeros(0), np.zeros(0)
    raw = np.array([wasserstein_distance(spectra[0], s) for s in spectra])
    logs = [_log_spectrum(s) for s in spectra]
    log = np.array([wasserstein_distance(logs[0], s) for s in logs])
    return raw, log


# ---- the flow with a frozen metric-NTK (eq. 2.8, 2.12, 3.5) -----------------------------


def component_gradient(comps, omega_sq, weights, kappa_value):
    """dl(x)/dg_r(x) for l(x) = (w / mean w) |1 - eta(x)| (B.11) of the real components.

    Args:
      comps: (N, K) float64 metric components; omega_sq, weights: (N,); kappa_value: scalar.

    Returns:
      (N, K) float64: the gradient in the same real coordinates as the metric-NTK, so
      dg_r(x)/dt = -sum_x',s Theta_rs(x, x') dl/dg_s(x') is gradient descent (eq. 2.8).
    """
    from metricflow.flows.losses import total_loss

    def total(c):
        return total_loss(hermitian(c), omega_sq, weights, kappa_value, "sigma")

    return jax.grad(total)(jnp.asarray(comps))


_component_gradient = jax.jit(component_gradient)


class FlowCurves(NamedTuple):
    """sigma (B.11) of a flow after each step on one point set, (S+1,) float64 each.

    sigma, sigma_se: reference-kappa sigma and its standard error; sigma_self,
    sigma_self_se: self-normalised sigma (kappa of the flowed metric on the same points).
    NaN after a non-finite step.
    """

    sigma: np.ndarray
    sigma_se: np.ndarray
    sigma_self: np.ndarray
    sigma_self_se: np.ndarray


def _curves(reports) -> FlowCurves:
    return FlowCurves(*(np.array([getattr(r, k) if r is not None else np.nan for r in reports], dtype=np.float64)
                        for k in FlowCurves._fields))


# Test points whose metric-NTK rows are computed at once when ``ntk_flow`` is given a function.
TEST_CHUNK = 250


def ntk_flow(theta_train, theta_test, train, test, steps: int, lr: float, chunk: int = TEST_CHUNK):
    """Discrete flow (3.5) with a full metric-NTK, from g_FS: returns sigma on both sets.

    g_r(x) <- g_r(x) - lr sum_{x' in train, s} Theta_rs(x, x') dl/dg_s(x'), for x in the
    train and in the test points. The loss and every sigma use the manifold's reference kappa.
    Test points only receive updates, so after t steps g(x) = g_FS(x) - lr Theta(x, train) G_t
    with G_t the sum of the train gradients of the first t steps: the train flow runs first,
    then the test points follow in chunks, and Theta(test, train) is never held whole.

    Args:
      theta_train: (K N, K N) float64.
      theta_test: (K M, K N) float64, or a function rows(a, b) -> (K (b - a), K N) float64,
        the rows of test points a .. b-1 (computed ``chunk`` test points at a time).
      train, test: Points (N and M points).
      steps: flow steps; lr: step size.

    Returns:
      (train_curves, test_curves): FlowCurves of (steps+1,) arrays each; both end at the
      first step at which either set's sigma is not finite.
    """
    from metricflow.geometry.measures import measure_sigma
    from metricflow.geometry.reference import reference_kappa

    kref = reference_kappa(train.manifold)
    k_loss = float(kref.value)
    c_tr = np.asarray(components(jnp.asarray(train.g_fs)))
    n_comp = c_tr.shape[1]
    out_tr, out_te = [None] * (steps + 1), [None] * (steps + 1)
    summed = np.zeros((steps + 1, c_tr.size))  # [t]: the sum of the train gradients of steps < t
    done = -1
    for step in range(steps + 1):
        r_tr = measure_sigma(np.asarray(hermitian(jnp.asarray(c_tr))), train.omega_sq, train.weights, kref)
        if not math.isfinite(r_tr.sigma):
            break
        out_tr[step], done = r_tr, step
        if step == steps:
            break
        grad = np.asarray(_component_gradient(c_tr, train.omega_sq, train.weights, k_loss)).reshape(-1)
        summed[step + 1] = summed[step] + grad
        c_tr = c_tr - lr * (theta_train @ grad).reshape(c_tr.shape)
    m = len(test.omega_sq)
    c_te0 = np.asarray(components(jnp.asarray(test.g_fs)))
    c_te = np.empty((done + 1, m, n_comp))
    rows = theta_test if callable(theta_test) else (lambda a, b: theta_test[a * n_comp : b * n_comp])
    for a in range(0, m, chunk):
        b = min(a + chunk, m)
        shift = (rows(a, b) @ summed[: done + 1].T).T.reshape(done + 1, b - a, n_comp)
        c_te[:, a:b] = c_te0[a:b] - lr * shift
    for step in range(done + 1):
        r_te = measure_sigma(np.asarray(hermitian(jnp.asarray(c_te[step]))), test.omega_sq, test.weights, kref)
        if not math.isfinite(r_te.sigma):
            out_tr[step:] = [None] * (steps + 1 - step)
            break
        out_te[step] = r_te
    return _curves(out_tr), _curves(out_te)


def _gain(curve: np.ndarray) -> float:
    last = curve[np.isfinite(curve)]
    return float(curve[0] / last[-1]) if last.size else float("nan")
