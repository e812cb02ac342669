"""The sigma-measure of appendix B (eq. B.10, B.11) for any metric given at the points.

``volume_ratio``, ``kappa``, ``eta`` and ``sigma`` take JAX or NumPy arrays and return JAX
arrays in double precision (differentiable, for losses). ``measure_sigma`` is the measurement:
NumPy float64, both sigma conventions, each with its standard error.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

import numpy as np

from metricflow._jax import jnp

__all__ = ["Kappa", "SigmaReport", "eta", "kappa", "measure_sigma", "sigma", "volume_ratio", "volume_ratio_numpy", "weighted_mean_se"]


def volume_ratio(g, omega_sq):
    """det g / |Omega|^2 at each point.

    Args:
      g: (N, n, n) complex128 Hermitian metrics in the local coordinates.
      omega_sq: (N,) float64, |Omega|^2 in the same coordinates.

    Returns:
      (N,) float64.
    """
    return jnp.real(jnp.linalg.det(g)) / omega_sq


def volume_ratio_numpy(g, omega_sq) -> np.ndarray:
    """det g / |Omega|^2 at each point, in NumPy float64 (``volume_ratio`` is the JAX one).

    Args:
      g: (N, n, n) Hermitian metrics (complex64 input is promoted to complex128).
      omega_sq: (N,) float64.

    Returns:
      (N,) float64.
    """
    return np.real(np.linalg.det(np.asarray(g, dtype=np.complex128))) / np.asarray(omega_sq, dtype=np.float64)


def kappa(g, omega_sq, weights):
    """kappa = sum_x w det g / |Omega|^2 / sum_x w  (eq. B.10: J^n = kappa |Omega|^2).

    For a Kahler metric kappa depends only on the Kahler class, so sigma is measured against
    one reference value per manifold (``metricflow.reference.reference_kappa``), never against
    kappa estimated from the set being measured.

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
      kappa_value: kappa to use, normally the manifold's reference kappa
        (``metricflow.reference.reference_kappa``); None computes it from g on these points
        (the self-normalised convention), which is only fair for a Kahler metric in the FS class.

    Returns:
      scalar float64.
    """
    if kappa_value is None:
        kappa_value = kappa(g, omega_sq, weights)
    return jnp.sum(weights * jnp.abs(1.0 - eta(g, omega_sq, kappa_value))) / jnp.sum(weights)


# ---- Monte-Carlo estimates with standard errors (NumPy, float64) --------------------------


@dataclass(frozen=True)
class Kappa:
    """A value of kappa (eq. B.10) and where it comes from.

    Attributes:
      value: kappa.
      se: its standard error (0.0 when exact).
      n_points: points of the estimate, or None when exact.
      seed: seed of the estimate's sample, or None when exact.
      exact: True for the closed form (Fermat point).
    """

    value: float
    se: float = 0.0
    n_points: Optional[int] = None
    seed: Optional[int] = None
    exact: bool = False


@dataclass(frozen=True)
class SigmaReport:
    """sigma (eq. B.11) of one metric on one weighted sample, in both conventions.

    Attributes:
      sigma, sigma_se: reference-kappa sigma, eta = det g / (kappa_ref |Omega|^2), with one
        kappa_ref for the manifold (this project's convention). The standard error includes
        the reference's own error, if it has one.
      sigma_self, sigma_self_se: self-normalised sigma, kappa from the metric itself on the
        same points (the convention of the cymetric library). Fair only for metrics in the FS
        Kahler class; it hides a wrong overall volume.
      kappa, kappa_se: the reference kappa used.
      kappa_self, kappa_self_se: kappa of the metric on these points (eq. B.10).
      n_points: points measured.
    """

    sigma: float
    sigma_se: float
    sigma_self: float
    sigma_self_se: float
    kappa: float
    kappa_se: float
    kappa_self: float
    kappa_self_se: float
    n_points: int

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict (the keys of the CLI's ``--json``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def weighted_mean_se(values, weights) -> tuple[float, float]:
    """Weighted mean sum w y / sum w and its standard error.

    The error is that of a ratio estimator over independent points, to first order:
    se^2 = sum w^2 (y - mean)^2 / (sum w)^2.

    Args:
      values, weights: (N,) float64.

    Returns:
      (mean, se), floats.
    """
    y = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    total = np.sum(w)
    mean = np.sum(w * y) / total
    return float(mean), float(np.sqrt(np.sum((w * (y - mean)) ** 2)) / total)


def _sigma_with_error(volume, weights, kappa_value):
    """sigma at a fixed kappa, its sampling error, and d sigma / d kappa."""
    e = volume / kappa_value
    s, se = weighted_mean_se(np.abs(1.0 - e), weights)
    slope = float(np.sum(weights * np.sign(1.0 - e) * e) / np.sum(weights)) / kappa_value
    return s, se, slope


def measure_sigma(g, omega_sq, weights, reference: Kappa, mask=None) -> SigmaReport:
    """sigma of ``g`` in both conventions, with standard errors (eq. B.10, B.11).

    Errors are first-order (delta-method) errors of the weighted means over independent
    points. For the self-normalised sigma the point's influence on kappa_self is included;
    for the reference-kappa sigma the reference's own error is added in quadrature.

    Args:
      g: (N, n, n) complex128 Hermitian metrics in the local coordinates.
      omega_sq, weights: (N,) float64.
      reference: the manifold's reference kappa (``metricflow.reference.reference_kappa``).
      mask: optional (N,) bool, the points to measure (for example the positive-definite ones).

    Returns:
      SigmaReport.
    """
    volume = volume_ratio_numpy(g, omega_sq)
    w = np.asarray(weights, dtype=np.float64)
    if mask is not None:
        volume, w = volume[np.asarray(mask, dtype=bool)], w[np.asarray(mask, dtype=bool)]
    if volume.size == 0:
        nan = float("nan")
        return SigmaReport(nan, nan, nan, nan, reference.value, reference.se, nan, nan, 0)
    s, s_se, slope = _sigma_with_error(volume, w, reference.value)
    s_se = float(np.hypot(s_se, slope * reference.se))
    k_self, k_self_se = weighted_mean_se(volume, w)
    s_self, _, slope_self = _sigma_with_error(volume, w, k_self)
    influence = np.abs(1.0 - volume / k_self) - s_self + slope_self * (volume - k_self)
    s_self_se = float(np.sqrt(np.sum((w * influence) ** 2)) / np.sum(w))
    return SigmaReport(
        sigma=s, sigma_se=s_se, sigma_self=s_self, sigma_self_se=s_self_se,
        kappa=float(reference.value), kappa_se=float(reference.se),
        kappa_self=k_self, kappa_self_se=k_self_se, n_points=int(volume.size),
    )
