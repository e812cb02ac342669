"""The metric from a network's real outputs: Hermitian matrices from components, the
invariant input features, the d dbar of a potential, and the inputs a model sees."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from metricflow._jax import jax, jnp
from metricflow.geometry.points import Points

__all__ = ["ModelInput", "hermitian", "components", "invariant_features", "ddbar", "model_input", "take"]


def hermitian(h):
    """(..., n^2) real -> (..., n, n) complex Hermitian: diagonal h[:n], then Re and Im of the
    upper triangle (row-major, i < j) in h[n : n + n(n-1)/2] and h[n + n(n-1)/2 :]."""
    m = h.shape[-1]
    n = int(round(math.sqrt(m)))
    iu, ju = np.triu_indices(n, 1)
    k = len(iu)
    off = h[..., n : n + k] + 1j * h[..., n + k :]
    out = jnp.zeros(h.shape[:-1] + (n, n), dtype=jnp.complex128)
    out = out.at[..., np.arange(n), np.arange(n)].set(h[..., :n].astype(jnp.complex128))
    out = out.at[..., iu, ju].set(off)
    out = out.at[..., ju, iu].set(jnp.conj(off))
    return out


def components(g):
    """(..., n, n) Hermitian -> (..., n^2) real: the inverse of ``hermitian``. These n^2 real
    numbers are the metric components g_ij of eq. (2.7) whose metric-NTK is computed."""
    n = g.shape[-1]
    iu, ju = np.triu_indices(n, 1)
    diag = jnp.real(g[..., np.arange(n), np.arange(n)])
    return jnp.concatenate([diag, jnp.real(g[..., iu, ju]), jnp.imag(g[..., iu, ju])], axis=-1)


def invariant_features(zr):
    """u(z): Re and Im of z_i conj(z_j) / |z|^2 for i <= j (d + d(d-1) = d^2 reals).

    Args:
      zr: (..., 2d) float64, real then imaginary parts of z in C^d \\ {0}.

    Returns:
      (..., d^2) float64, invariant under z -> lambda z (lambda in C*): functions on P^(d-1).
    """
    d = zr.shape[-1] // 2
    z = zr[..., :d] + 1j * zr[..., d:]
    p = z[..., :, None] * jnp.conj(z[..., None, :]) / jnp.sum(jnp.abs(z) ** 2, axis=-1)[..., None, None]
    iu, ju = np.triu_indices(d, 1)
    diag = jnp.real(p[..., np.arange(d), np.arange(d)])
    return jnp.concatenate([diag, jnp.real(p[..., iu, ju]), jnp.imag(p[..., iu, ju])], axis=-1)


def ddbar(f, zr, jac):
    """(d dbar f)_ab = d_a dbar_b f(z(x)) in the local coordinates x of one point.

    Exact through the pullback: z(x) is holomorphic, so d_a dbar_b f(z(x)) =
    J_ai (d_i dbar_j f)(z) conj(J_bj) with J = dz/dx. The ambient complex Hessian is only
    needed along the 2n real directions u_a = J_a and w_a = i J_a: with psi(s, t) =
    f(z + sum_a (s_a + i t_a) J_a) (real s, t), d_a dbar_b = (1/4)(psi_{s_a s_b} +
    psi_{t_a t_b} + i (psi_{s_a t_b} - psi_{t_a s_b})).

    Args:
      f: real function of (2d,) float64 (real then imaginary parts of z).
      zr: (2d,) float64, the point.
      jac: (n, d) complex128, dz_i / dx_a at the point.

    Returns:
      (n, n) complex128, Hermitian.
    """
    n = jac.shape[0]
    v = jnp.concatenate(
        [jnp.concatenate([jnp.real(jac), jnp.imag(jac)], axis=1), jnp.concatenate([-jnp.imag(jac), jnp.real(jac)], axis=1)]
    )  # (2n, 2d): rows u_a then w_a
    h = jax.hessian(lambda t: f(zr + t @ v))(jnp.zeros(2 * n, dtype=zr.dtype))
    huu, hww, huw, hwu = h[:n, :n], h[n:, n:], h[:n, n:], h[n:, :n]
    return 0.25 * (huu + hww + 1j * (huw - hwu))


class ModelInput(NamedTuple):
    """What a metric model reads at N points (all arrays lead with N).

    features: (N, 2d) float64, Points.features; g_fs: (N, n, n) complex128; jacobian:
    (N, n, d) complex128, dz/dx.
    """

    features: np.ndarray
    g_fs: np.ndarray
    jacobian: np.ndarray


def take(x, index):
    """The points ``index`` (a slice, mask or integer array) of ``x``, a NamedTuple whose
    arrays all lead with N (ModelInput, networks.family.FamilyBatch)."""
    return type(x)(*(a[index] for a in x))


def model_input(points: Points) -> ModelInput:
    return ModelInput(np.asarray(points.features), np.asarray(points.g_fs), np.asarray(points.jacobian))
