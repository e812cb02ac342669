"""The phi model's symmetric ansatz on the Fermat quintic: features invariant under the
quintic's symmetry group, and an algebraic base potential from the classical flows.

**The group.** The Fermat quintic sum z_i^5 = 0 is mapped to itself by the permutations of
the five coordinates and by the phases z_i -> w^(a_i) z_i (w = exp(2 pi i / 5), any a in
(Z_5)^5; the diagonal a = (1, ..., 1) is the overall phase, trivial on P^4): S_5 x| (Z_5)^4
of order 120 * 625 = 75,000 acting on P^4. Complex conjugation z -> conj(z) maps X to
itself as well (real coefficients). The Ricci-flat metric is unique in its class, so its
Kahler potential phi relative to g_FS (itself invariant under U(5) and conjugation) is
invariant under all of them, up to a constant; the ansatz makes phi invariant by
construction. Off psi = 0 only the phases with sum a_i = 0 mod 5 remain (Dwork family),
and z_0 ... z_4 conj(z_i)^5 becomes invariant too: this ansatz is for psi = 0 only, the
general network (``features="projective"``) for the rest.

**The features** (``symmetric_features``, F = ``N_FEATURES`` = 11 reals), with
x_i = |z_i|^2 / |z|^2, y_i = 5 x_i (mean 1 over i) and v_i = z_i^5 / (sum_j |z_j|^10)^(1/2):

* the power sums mean_i y_i^p for p = 2, 3, 4, 5 and the product prod_i y_i: symmetric
  functions of the x_i (the power sums p = 1..5 generate them; mean_i y_i = 1);
* with B_a = sum_i y_i^a v_i (a = 1, 2, 3), Re(B_a conj(B_b)) for 1 <= a <= b <= 3.

Each v_i is unchanged by every phase of (Z_5)^5 (z_i^5 is) and turns by the common factor
(lambda / |lambda|)^5 under z -> lambda z, so B_a conj(B_b) is unchanged; a permutation moves
y and v together, so each B_a is unchanged; conjugation conjugates B_a conj(B_b), whose real
part stays. The features are smooth on all of P^4 (|z| > 0 and sum |z_j|^10 > 0). They see
the phases of the z_i^5, which the x_i do not: on X, sum_i v_i = 0, the v_i close a
pentagon whose shape (2 real parameters, up to rotation and reflection) and the x_i (4)
make the 6 real dimensions of X.

**The network.** phi(z) = NN((f(z) - shift) / scale), a ``networks.mlp.mlp`` on the F
standardised features; shift is the features' mean on the training points and scale their
typical FS Laplacian (``prepare_params``), fixed before the first step and stored with
the model.

**The base** (``base_k`` = k > 0). The metric is g = g_FS + d dbar (phi_base + phi) with
phi_base = (1 / (k pi)) log(s^dagger H s / |z|^(2k)), s the degree-k monomials and
H = sum_a c_a B_a in the invariant Hermitian matrices of ``flows.classical_spaces``, so
g_FS + d dbar phi_base is Donaldson's algebraic metric (1 / (k pi)) d dbar log(s^dagger H s).
c is the projected Kahler-Ricci flow's end point (``flows.classical.run_classical_flow``:
the algebraic space, invariant matrices, BASE_STEPS steps on BASE_POINTS points), computed
before the first step; at k = 4 that metric alone has sigma ~ 0.006 (docs/FLOWS.md). The
network learns the rest. c is frozen during training (the gradient does not reach it).

Parameters (a dict pytree, saved as ``params/<key>/...``): ``net`` the MLP's layers (stax's
layout), ``shift`` and ``scale`` (F,) float64, and with a base ``base`` (P,) float64.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np

from metricflow._jax import jax, jnp
from metricflow.errors import MetricflowError

__all__ = [
    "N_FEATURES",
    "PHASE_POWERS",
    "BASE_STEPS",
    "BASE_POINTS",
    "BASE_SECONDS",
    "RECORD_PRESET",
    "symmetric_features",
    "base_space",
    "base_potential",
    "init_symmetric_params",
    "symmetric_potential",
    "fit_base",
    "feature_curvature",
    "prepare_params",
]

POWER_SUMS = (2, 3, 4, 5)
PHASE_POWERS = (1, 2, 3)
N_FEATURES = len(POWER_SUMS) + 1 + len(PHASE_POWERS) * (len(PHASE_POWERS) + 1) // 2
# The classical flow that gives the base potential: its steps and its integration points.
BASE_STEPS = 20
BASE_POINTS = 5000
BASE_TEST = 500
# About what fitting the base costs at k = 4 on 2 cores (measured 22-33 s at load 3-8).
BASE_SECONDS = 35.0
# The record preset (``python -m metricflow train --preset record``; docs/NETWORKS.md, "σ
# record"): TrainConfig fields, seed and manifold left at their defaults (0, the Fermat quintic).
RECORD_PRESET = {
    "model": "phi",
    "features": "symmetric",
    "base_k": 4,
    "n_points": 100_000,
    "epochs": 20,
    "width": 64,
    "depth": 3,
    "activation": "gelu",
    "batch_size": 100,
    "lr": 0.01,
    "lr_final_fraction": 0.01,
    "ricci": True,
}
# Training points on which the features' curvature scale is measured.
CURVATURE_POINTS = 2000


def symmetric_features(zr):
    """The invariant features f(z) of the Fermat quintic's symmetry group (module docstring).

    Args:
      zr: (..., 10) float64, real then imaginary parts of z in C^5 minus 0 (any scaling).

    Returns:
      (..., N_FEATURES) float64: mean y^2, y^3, y^4, y^5, prod y, then Re(B_a conj B_b)
      for (a, b) = (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3).
    """
    d = zr.shape[-1] // 2
    if d != 5:
        raise MetricflowError(f"the symmetric features are those of the quintic (5 coordinates), got {d}")
    re, im = zr[..., :d], zr[..., d:]
    a2 = re * re + im * im  # |z_i|^2
    y = d * a2 / jnp.sum(a2, axis=-1, keepdims=True)
    # z_i^5 by repeated products (exact at z_i = 0)
    z = re + 1j * im
    z2 = z * z
    z5 = z2 * z2 * z
    v = z5 / jnp.sqrt(jnp.sum(a2 * a2 * a2 * a2 * a2, axis=-1, keepdims=True))
    out = [jnp.mean(y**p, axis=-1) for p in POWER_SUMS]
    out.append(jnp.prod(y, axis=-1))
    b = [jnp.sum(y**a * v, axis=-1) for a in PHASE_POWERS]
    for i in range(len(b)):
        for j in range(i, len(b)):
            out.append(jnp.real(b[i] * jnp.conj(b[j])))
    return jnp.stack(out, axis=-1)


# ---- the base potential ----------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def base_space(degree: int, k: int, psi: complex = 0j):
    """(exponents (N_k, d) int, matrices (P, N_k, N_k) complex128) of the invariant
    algebraic space at degree k (``flows.classical_spaces.hermitian_basis``)."""
    from metricflow.flows.classical_spaces import hermitian_basis
    from metricflow.flows.donaldson import monomial_exponents

    return np.asarray(monomial_exponents(degree, k)), hermitian_basis(degree, k, "invariant", psi)


def base_potential(c, zr, k: int, psi: complex = 0j):
    """phi_base(z) = (1 / (k pi)) log(s^dagger H s / |z|^(2k)), H = sum_a c_a B_a.

    Args:
      c: (P,) float64, the coordinates of H in ``base_space(d, k, psi)[1]``.
      zr: (..., 2d) float64, real then imaginary parts of z (any scaling).
      k: the degree of the sections s (monomials).

    Returns:
      (...) float64. g_FS + d dbar phi_base is (1 / (k pi)) d dbar log(s^dagger H s).
    """
    d = zr.shape[-1] // 2
    exps, basis = base_space(d, k, complex(psi))
    z = zr[..., :d] + 1j * zr[..., d:]
    powers = [jnp.ones_like(z)]
    for _ in range(k):
        powers.append(powers[-1] * z)
    powers = jnp.stack(powers, axis=-2)  # (..., k + 1, d)
    s = jnp.prod(powers[..., exps, np.arange(d)], axis=-1)  # (..., N_k): z^alpha for each exponent alpha
    h = jnp.tensordot(jnp.asarray(c).astype(jnp.complex128), jnp.asarray(basis), axes=1)
    p = jnp.real(jnp.einsum("...x,xy,...y->...", jnp.conj(s), h, s))
    norm2 = jnp.sum(jnp.real(z) ** 2 + jnp.imag(z) ** 2, axis=-1)
    return (jnp.log(p) - k * jnp.log(norm2)) / (k * math.pi)


# ---- the model ---------------------------------------------------------------------------


def _network(config):
    from metricflow.networks.mlp import mlp

    return mlp(config.depth, config.width, 1, config.activation, config.parameterization, config.readout_std)


def init_symmetric_params(config, key) -> dict:
    """The parameters before ``prepare_params``: the MLP drawn from ``key`` as
    ``networks.mlp.mlp`` draws it (input width N_FEATURES), shift 0, scale 1 and, with a
    base, the c of g_FS (s^dagger H s = |z|^(2k), phi_base = 0); float64 throughout."""
    _, net = _network(config).init_fn(key, (-1, N_FEATURES))
    params = {"net": net, "shift": jnp.zeros(N_FEATURES), "scale": jnp.ones(N_FEATURES)}
    if config.base_k:
        from metricflow.flows.classical_spaces import start_parameters

        d, k = config.manifold.degree, config.base_k
        params["base"] = jnp.asarray(start_parameters("algebraic", base_space(d, k, config.manifold.psi)[1], k, d))
    return params


def symmetric_potential(config):
    """phi(params, zr) -> (N,) float64: the potential on top of g_FS at N points, zr (N, 10)
    float64 (real then imaginary parts of z, any scaling): phi_base + NN of the standardised
    features. shift, scale and the base enter through stop_gradient: training moves only
    the network."""
    apply_fn = _network(config).apply_fn
    k, psi = config.base_k, config.manifold.psi
    stop = jax.lax.stop_gradient

    def phi(params, zr):
        f = (symmetric_features(zr) - stop(params["shift"])) / stop(params["scale"])
        out = apply_fn(params["net"], f)[..., 0]
        if k:
            out = out + base_potential(stop(params["base"]), zr, k, psi)
        return out

    return phi


def fit_base(config):
    """The base: the projected Kahler-Ricci flow on the invariant algebraic space of degree
    ``config.base_k`` (BASE_STEPS steps from g_FS on BASE_POINTS points of a seed derived
    from ``config.seed``).

    Returns:
      (c (P,) float64, the flow's seconds, its reference-kappa sigma on BASE_TEST test points).
    """
    from metricflow.flows.classical import ClassicalFlowConfig, run_classical_flow

    seed = int(np.random.SeedSequence([config.seed, 24]).generate_state(1, np.uint64)[0] % np.uint64(2**63))
    flow = ClassicalFlowConfig(manifold=config.manifold, space="algebraic", k=config.base_k, flow="ricci",
                               n_steps=BASE_STEPS, n_points=BASE_POINTS, n_test=BASE_TEST, seed=seed)
    r = run_classical_flow(flow)
    if r.stopped_reason is not None:
        raise MetricflowError(f"the base potential's classical flow failed: {r.stopped_reason}")
    return np.asarray(r.params, dtype=np.float64), float(r.seconds[r.steps_done]), float(r.sigma[r.steps_done])


def feature_curvature(zr, jacobian, g_fs) -> np.ndarray:
    """|Delta_FS f_j| = |g_FS^{a bbar} d_a dbar_b f_j| of each symmetric feature at N points
    (``outputs.ddbar`` of each feature, traced with the inverse FS metric).

    Args:
      zr: (N, 10) float64 points of X (real then imaginary parts); jacobian: (N, 3, 5)
        complex128, their chart jacobians dz/dx; g_fs: (N, 3, 3) complex128.

    Returns:
      (N, N_FEATURES) float64.
    """
    dd = np.asarray(_feature_ddbar(jnp.asarray(zr), jnp.asarray(jacobian)))  # (N, F, n, n)
    return np.abs(np.real(np.einsum("nab,nfba->nf", np.linalg.inv(g_fs), dd)))


@jax.jit
def _feature_ddbar(zr, jacobian):
    from metricflow.networks.outputs import ddbar

    eye = jnp.eye(N_FEATURES)
    one = lambda z, jac: jax.vmap(lambda e: ddbar(lambda y: symmetric_features(y) @ e, z, jac))(eye)  # noqa: E731
    return jax.vmap(one)(zr, jacobian)


_features_jit = jax.jit(symmetric_features)


def prepare_params(config, params, points):
    """The parameters at the first step: shift and scale of the features from the training
    points and, with a base, its coefficients from ``fit_base``.

    shift is the features' mean over the training points; scale_j the median over the first
    CURVATURE_POINTS of them of |Delta_FS f_j| (``feature_curvature``). So a standardised
    feature bends the metric about as much as one of the projective features u (whose
    median is 1-2), whatever its degree: scaled by their spread instead, the phase features
    (degree 7 to 11 in z, Laplacian ~180 times their spread against 8-17 for u) made
    d dbar phi so rough that training stalled at sigma ~0.3 (docs/NETWORKS.md).

    Args:
      config: a TrainConfig with features "symmetric".
      params: from ``init_symmetric_params``.
      points: the training Points.

    Returns:
      (params, seconds it took).
    """
    t0 = time.perf_counter()
    zr = np.asarray(points.features)
    f = np.concatenate([np.asarray(_features_jit(jnp.asarray(zr[s : s + 20_000]))) for s in range(0, len(zr), 20_000)])
    m = min(CURVATURE_POINTS, len(zr))
    scale = np.median(feature_curvature(zr[:m], np.asarray(points.jacobian[:m]), np.asarray(points.g_fs[:m])), axis=0)
    if not np.all(scale > 0):
        raise MetricflowError("a symmetric feature does not vary on the training points; use more points")
    params = dict(params, shift=jnp.asarray(f.mean(axis=0)), scale=jnp.asarray(scale))
    if config.base_k:
        params["base"] = jnp.asarray(fit_base(config)[0])
    return params, time.perf_counter() - t0
