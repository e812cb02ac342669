"""The sigma-measure of appendix B (eq. B.10, B.11) for any metric given at the points.

All functions take JAX or NumPy arrays and return JAX arrays in double precision.
"""

from __future__ import annotations

from metricflow._jax import jnp

__all__ = ["volume_ratio", "kappa", "eta", "sigma"]


def volume_ratio(g, omega_sq):
    """det g / |Omega|^2 at each point.

    Args:
      g: (N, n, n) complex128 Hermitian metrics in the local coordinates.
      omega_sq: (N,) float64, |Omega|^2 in the same coordinates.

    Returns:
      (N,) float64.
    """
    return jnp.real(jnp.linalg.det(g)) / omega_sq


def kappa(g, omega_sq, weights):
    """kappa = sum_x w det g / |Omega|^2 / sum_x w  (eq. B.10: J^n = kappa |Omega|^2).

    For a Kahler metric kappa depends only on the Kahler class, so a flow should compute it
    once, from g_FS, and keep it fixed.

    Args:
      g: (N, n, n) complex128; omega_sq, weights: (N,) float64.

    Returns:
      scalar float64.
    """
    return jnp.sum(weights * volume_ratio(g, omega_sq)) / jnp.sum(weights)


def eta(g, omega_sq, kappa_value):
    """eta = det g / (kappa |Omega|^2) (eq. B.11); the Ricci-flat metric has eta = 1.

    Returns:
      (N,) float64.
    """
    return volume_ratio(g, omega_sq) / kappa_value


def sigma(g, omega_sq, weights, kappa_value=None):
    """sigma = sum_x w |1 - eta| / sum_x w (eq. B.11), a Monte-Carlo integral over X.

    Args:
      g: (N, n, n) complex128 Hermitian metrics.
      omega_sq, weights: (N,) float64.
      kappa_value: kappa to use; None computes it from g itself, which is only right for a
        Kahler metric in the FS class. Flows pass kappa of g_FS.

    Returns:
      scalar float64.
    """
    if kappa_value is None:
        kappa_value = kappa(g, omega_sq, weights)
    return jnp.sum(weights * jnp.abs(1.0 - eta(g, omega_sq, kappa_value))) / jnp.sum(weights)
