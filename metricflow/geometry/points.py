"""Points on a Dwork hypersurface and the per-point geometry of section 3.1 and appendix B.

Sampling (Shiffman–Zelditch): random lines in P^(d-1) meet X in d points each, and the
points are then distributed by the FS volume form restricted to X.

Patch choice (section 3.1): scale the largest |z_i| to 1, then eliminate the coordinate with
the largest |dp/dz_j| (the smallest |Omega|^2). The n = d-2 remaining coordinates are the
local coordinates x_a, in increasing index order.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import ClassVar

import numpy as np

from metricflow.constraints import SEED, Points as PointCount, validate
from metricflow.errors import ConfigTypeError, MetricflowError, check_memory
from metricflow.geometry.manifolds import Manifold

__all__ = [
    "Points",
    "SampleConfig",
    "sample_points",
    "first_points",
    "check_test_sample",
    "points_from_coordinates",
    "choose_patch",
    "pullback",
    "fs_metric_ambient",
    "memory_estimate",
]

# Largest tolerated |p(z)| / (sum of |monomials|) for a sampled point.
RESIDUAL_TOL = 1e-10


@dataclass(frozen=True)
class SampleConfig:
    """What to sample: ``n_points`` points on ``manifold`` from ``seed``."""

    manifold: Manifold = Manifold()
    n_points: int = 1000
    seed: int = 0

    constraints: ClassVar[dict] = {"n_points": PointCount("points"), "seed": SEED}

    def __post_init__(self):
        validate(self)


@dataclass(frozen=True, eq=False)
class Points:
    """Points on X with their chart data. N points, d homogeneous coordinates, n = d - 2.

    Attributes:
      manifold: the hypersurface.
      z: (N, d) complex128, homogeneous coordinates scaled so z[scale_index] = 1.
      scale_index: (N,) int, the coordinate set to 1 (largest |z_i|).
      elim_index: (N,) int, the coordinate solved for by p = 0.
      omega_sq: (N,) float64, |Omega|^2 = 1 / |dp/dz_elim|^2.
      jacobian: (N, n, d) complex128, dz_i/dx_a, the pullback from P^(d-1) to X.
      g_fs: (N, n, n) complex128, Hermitian, the FS metric pulled back to X.
      weights: (N,) float64, |Omega|^2 / det g_FS: Monte-Carlo weights for the CY measure.
      lines_drawn: number of random lines used (0 if the points were given).
    """

    manifold: Manifold
    z: np.ndarray
    scale_index: np.ndarray
    elim_index: np.ndarray
    omega_sq: np.ndarray
    jacobian: np.ndarray
    g_fs: np.ndarray
    weights: np.ndarray
    lines_drawn: int = 0

    def __len__(self) -> int:
        return self.z.shape[0]

    @property
    def features(self) -> np.ndarray:
        """(N, 2d) float64: real then imaginary parts of the patch-normalised z (section 3.1)."""
        return np.concatenate([self.z.real, self.z.imag], axis=1)

    @property
    def chart(self) -> np.ndarray:
        """(N, 2) int: the (scale, elim) index pair of each point."""
        return np.stack([self.scale_index, self.elim_index], axis=1)

    def subset(self, index) -> "Points":
        """The points selected by ``index`` (a boolean mask or integer array)."""
        return Points(
            self.manifold, self.z[index], self.scale_index[index], self.elim_index[index],
            self.omega_sq[index], self.jacobian[index], self.g_fs[index], self.weights[index],
            self.lines_drawn,
        )


def memory_estimate(n_points: int, degree: int) -> int:
    """Peak bytes needed to sample ``n_points`` points with all per-point quantities."""
    n = degree - 2
    per_point = 16 * (6 * degree + 3 * n * degree + 3 * n * n + degree * degree) + 64
    return int(4 * n_points * per_point) + 50 * 2**20


def _line_polynomial(manifold: Manifold, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Coefficients c_k (lowest first), shape (L, d+1), of t -> p(p + t q)."""
    d = manifold.degree
    k = np.arange(d + 1)
    binom = np.array([comb(d, j) for j in k], dtype=float)
    # sum_i (p_i + t q_i)^d = sum_k C(d,k) t^k sum_i p_i^(d-k) q_i^k
    coeffs = binom * np.einsum("lik,lik->lk", p[:, :, None] ** (d - k), q[:, :, None] ** k)
    if manifold.psi != 0:
        prod = np.ones((p.shape[0], 1), dtype=complex)  # prod_i (p_i + t q_i), lowest first
        for i in range(d):
            nxt = np.zeros((p.shape[0], prod.shape[1] + 1), dtype=complex)
            nxt[:, :-1] += prod * p[:, i : i + 1]
            nxt[:, 1:] += prod * q[:, i : i + 1]
            prod = nxt
        coeffs = coeffs - d * manifold.psi * prod
    return coeffs


def _roots(coeffs: np.ndarray) -> np.ndarray:
    """Roots, shape (L, d), of L polynomials given lowest coefficient first, shape (L, d+1)."""
    L, d = coeffs.shape[0], coeffs.shape[1] - 1
    monic = coeffs[:, :-1] / coeffs[:, -1:]
    companion = np.zeros((L, d, d), dtype=complex)
    companion[:, np.arange(1, d), np.arange(d - 1)] = 1.0
    companion[:, :, -1] = -monic
    roots = np.linalg.eigvals(companion)
    # Two Newton steps polish the eigenvalue roots to full double precision.
    deriv = coeffs[:, 1:] * np.arange(1, d + 1)
    for _ in range(2):
        val = _horner(coeffs, roots)
        slope = _horner(deriv, roots)
        roots = roots - np.where(slope != 0, val / np.where(slope != 0, slope, 1), 0)
    return roots


def _horner(coeffs: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = np.zeros_like(t)
    for k in range(coeffs.shape[1] - 1, -1, -1):
        out = out * t + coeffs[:, k : k + 1]
    return out


def choose_patch(manifold: Manifold, z: np.ndarray, chart: np.ndarray | None = None):
    """Rescale z and pick the chart (section 3.1).

    Args:
      z: (N, d) complex128 homogeneous coordinates of points on X.
      chart: optional (N, 2) int (scale, elim) pairs to use instead of the best ones.

    Returns:
      (z_scaled, scale_index, elim_index, grad): z scaled so that its largest entry is 1,
      the index of that entry, the eliminated index (largest |dp/dz_j|, j != scale_index),
      and dp/dz at z_scaled, shape (N, d).
    """
    rows = np.arange(z.shape[0])
    scale_index = np.argmax(np.abs(z), axis=1) if chart is None else chart[:, 0]
    z = z / z[rows, scale_index][:, None]
    z[rows, scale_index] = 1.0  # exact
    grad = manifold.gradient(z)
    if chart is None:
        mag = np.abs(grad)
        mag[rows, scale_index] = -1.0
        elim_index = np.argmax(mag, axis=1)
    else:
        elim_index = chart[:, 1]
    return z, scale_index, elim_index, grad


def pullback(grad: np.ndarray, scale_index: np.ndarray, elim_index: np.ndarray) -> np.ndarray:
    """Jacobian dz_i/dx_a of the embedding of X's local coordinates into C^d.

    The local coordinates are the z_j with j not in {scale, elim}, in increasing order. Then
    dz_j/dx_a = delta, dz_scale/dx_a = 0, and dz_elim/dx_a = -(dp/dx_a)/(dp/dz_elim) by the
    implicit function theorem.

    Args:
      grad: (N, d) complex128, dp/dz at the point.
      scale_index, elim_index: (N,) int.

    Returns:
      (N, n, d) complex128 with n = d - 2.
    """
    N, d = grad.shape
    rows = np.arange(N)
    free = local_indices(scale_index, elim_index, d)  # (N, n)
    jac = np.zeros((N, d - 2, d), dtype=complex)
    a = np.arange(d - 2)
    jac[rows[:, None], a[None, :], free] = 1.0
    g_elim = grad[rows, elim_index]
    jac[rows[:, None], a[None, :], elim_index[:, None]] = -grad[rows[:, None], free] / g_elim[:, None]
    return jac


def local_indices(scale_index: np.ndarray, elim_index: np.ndarray, d: int) -> np.ndarray:
    """(N, d-2) int: the homogeneous indices that serve as local coordinates, increasing."""
    idx = np.broadcast_to(np.arange(d), (scale_index.shape[0], d))
    keep = (idx != scale_index[:, None]) & (idx != elim_index[:, None])
    return idx[keep].reshape(-1, d - 2)


def fs_metric_ambient(z: np.ndarray) -> np.ndarray:
    """FS metric of P^(d-1), g_ij = (1/pi) d_i dbar_j log|z|^2, shape (N, d, d), complex128.

    g_ij = (1/pi) (delta_ij / |z|^2 - conj(z_i) z_j / |z|^4). The 1/pi makes the hyperplane
    class integral: Vol_FS(X) = d / n! for a degree-d hypersurface.
    """
    norm2 = np.sum(np.abs(z) ** 2, axis=1)[:, None, None]
    eye = np.eye(z.shape[1])[None]
    return (eye / norm2 - np.conj(z)[:, :, None] * z[:, None, :] / norm2**2) / np.pi


def points_from_coordinates(
    manifold: Manifold, z: np.ndarray, lines_drawn: int = 0, chart: np.ndarray | None = None
) -> Points:
    """Per-point chart data, |Omega|^2, pullback, FS metric and weights for points on X.

    Args:
      z: (N, d) complex128 homogeneous coordinates of points on X (any scaling).
      lines_drawn: recorded in the result.
      chart: optional (N, 2) int (scale, elim) pairs; by default the choice of section 3.1.
        Any chart with z_scale != 0 and dp/dz_elim != 0 gives the same weights and eta.
    """
    z = np.asarray(z, dtype=complex)
    if z.ndim != 2 or z.shape[1] != manifold.degree:
        raise MetricflowError(
            f"expected coordinates of shape (N, {manifold.degree}), got {z.shape}"
        )
    if chart is not None:
        chart = np.asarray(chart, dtype=np.int64).reshape(len(z), 2)
        if np.any(chart[:, 0] == chart[:, 1]) or np.any((chart < 0) | (chart >= manifold.degree)):
            raise MetricflowError("a chart is a pair of distinct indices (scale, elim) in 0..d-1")
    z, scale_index, elim_index, grad = choose_patch(manifold, z, chart)
    rows = np.arange(z.shape[0])
    omega_sq = 1.0 / np.abs(grad[rows, elim_index]) ** 2
    jac = pullback(grad, scale_index, elim_index)
    g = np.einsum("nai,nij,nbj->nab", jac, fs_metric_ambient(z), np.conj(jac))
    g = 0.5 * (g + np.conj(np.swapaxes(g, 1, 2)))
    det = np.linalg.det(g).real
    return Points(manifold, z, scale_index, elim_index, omega_sq, jac, g, omega_sq / det, lines_drawn)


def sample_points(config: SampleConfig) -> Points:
    """Sample ``config.n_points`` points on the manifold by intersecting random lines.

    Each line through two points p, q drawn from the unitarily invariant complex Gaussian in
    C^d meets X where p(p + t q) = 0, a degree-d polynomial in t; its roots come from the
    eigenvalues of companion matrices, batched, then two Newton steps.

    Returns:
      Points with N = config.n_points; every point satisfies |p(z)| <= 1e-10 times the size
      of its monomials.
    """
    m = config.manifold
    d = m.degree
    check_memory(memory_estimate(config.n_points, d), f"sampling {config.n_points:,} points")
    rng = np.random.default_rng(config.seed)
    n_lines = -(-config.n_points // d)
    pq = rng.standard_normal((2, n_lines, d, 2)) @ np.array([1.0, 1.0j])
    p, q = pq[0], pq[1]
    t = _roots(_line_polynomial(m, p, q))  # (L, d)
    z = (p[:, None, :] + t[:, :, None] * q[:, None, :]).reshape(-1, d)[: config.n_points]
    residual = np.abs(m.polynomial(z)) / m.monomial_scale(z)
    if not np.all(residual <= RESIDUAL_TOL):
        worst = float(np.max(residual))
        raise MetricflowError(
            f"root finding left a point off the hypersurface (relative residual {worst:.1e}); "
            "try another seed"
        )
    return points_from_coordinates(m, z, lines_drawn=n_lines)


def first_points(sample: SampleConfig, n: int) -> Points:
    """The first ``n`` points of ``sample_points(sample)``: the shared fresh test points of a
    comparison, of which a method may use a prefix (``check_test_sample`` checks n)."""
    pts = sample_points(sample)
    return pts if n == len(pts) else pts.subset(np.arange(n))


def _describe(m: Manifold) -> str:
    psi = f"{m.psi.real:g}" if m.psi.imag == 0 else f"{m.psi.real:g}{m.psi.imag:+g}i"
    return f"{m.name} with psi = {psi}"


def check_test_sample(sample, manifold: Manifold, n: int, owner: str) -> None:
    """Check that ``sample`` (a SampleConfig) can give the ``n`` test points of ``owner``.

    Raises:
      ConfigTypeError: if it is not a SampleConfig.
      MetricflowError: if it is on another manifold or has fewer than n points.
    """
    if not isinstance(sample, SampleConfig):
        raise ConfigTypeError(f"the test points of {owner} must be a SampleConfig, got {type(sample).__name__}")
    if sample.manifold != manifold:
        raise MetricflowError(
            f"the test points are on the {_describe(sample.manifold)}, {owner} on the {_describe(manifold)}; "
            "sample the test points on the same manifold"
        )
    if sample.n_points < n:
        raise MetricflowError(
            f"{owner} measures on {n:,} test points, but the test sample has only {sample.n_points:,}; "
            "use fewer test points or a larger sample"
        )
