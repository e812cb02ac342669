"""Scalar kernels Theta(x, x') for the metric flow (3.5), with Theta_ijkl = delta_ik delta_jl Theta.

The flow (metricflow.flows.flow) applies the scalar kernel either in each metric's own frame (the
covariant update: a conformal rescaling transported with the kernel normalised against the CY
measure, Theta(x, x') u(x') / sum_x'' Theta(x, x'') u(x'')) or to coordinate components (the
euclidean update); the kernels here are the same for both.

Every kernel here returns a matrix K of shape (M, N): M query points (train or test) against
N train points, as one of three types that all support ``K @ X`` for X of shape (N, k):

  * a dense (M, N) float64 ndarray: ``relu_ntk``, ``gaussian_kernel``, ``cosnet_kernel``;
  * a scipy.sparse csr_matrix: ``gaussian_kernel_sparse`` (cutoff radius), ``delta_kernel``;
  * a ``LowRank`` factorisation: ``cosnet_empirical_kernel`` at finite width (eq. 2.33).

Dense matrices are bounded: more than ``MAX_DENSE_ENTRIES`` entries, or more than the free
memory, raises MetricflowError naming the sizes. Local kernels never form an N x N matrix.

The kernels:

  relu-ntk   infinite-width NTK of a ReLU net (section 3.2.1), via neural_tangents (``_nt``).
  gaussian   exp(-d / (2 sigma)) of the FS distance d (eq. 3.6), or with ``squared``
             exp(-d^2 / (2 sigma^2)); optionally cut off at a radius (sparse).
  delta      each query point takes the update of its nearest train point (section 3.2.3).
  cosnet     cosine net of eq. (2.32) with only the last layer trained: analytic NTK
             (2.35) with normalisation (2.36), or the empirical NTK (2.33) at finite width.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.sparse import csr_matrix

from metricflow.geometry.distance import FSNeighbours, fs_distance_matrix
from metricflow.errors import MetricflowError, check_count, check_memory

__all__ = [
    "KERNELS",
    "MAX_DENSE_ENTRIES",
    "LowRank",
    "CosNetParams",
    "check_dense",
    "relu_ntk",
    "gaussian_kernel",
    "gaussian_kernel_sparse",
    "delta_kernel",
    "cosnet_normalisation",
    "cosnet_width",
    "cosnet_kernel",
    "cosnet_init",
    "cosnet_features",
    "cosnet_apply",
    "cosnet_empirical_kernel",
    "row_sums",
]

KERNELS = ("relu-ntk", "gaussian", "delta", "cosnet")

# A dense Gram matrix above 4e8 entries (3.2 GB in float64) is refused whatever memory is
# free: use a cutoff radius or the delta kernel, which are sparse.
MAX_DENSE_ENTRIES = 400_000_000
# Rows per tile when a dense kernel is filled from FS distances.
TILE_ROWS = 1024


class LowRank(NamedTuple):
    """K = scale * left @ right.T, never formed. left (M, R), right (N, R) float64."""

    left: np.ndarray
    right: np.ndarray
    scale: float

    @property
    def shape(self):
        return (self.left.shape[0], self.right.shape[0])

    def __matmul__(self, x):
        return self.scale * (self.left @ (self.right.T @ x))

    def toarray(self) -> np.ndarray:
        return self.scale * (self.left @ self.right.T)


def check_dense(m: int, n: int, what: str, copies: int = 1) -> None:
    """Refuse a dense (m, n) float64 matrix over MAX_DENSE_ENTRIES or over free memory."""
    if m * n > MAX_DENSE_ENTRIES:
        raise MetricflowError(
            f"{what} would be a dense {m:,} x {n:,} matrix ({8 * m * n / 2**30:.1f} GiB), over the "
            f"limit of {MAX_DENSE_ENTRIES:,} entries; use fewer points, a cutoff radius or the delta kernel"
        )
    check_memory(8.0 * m * n * copies, f"{what} ({m:,} x {n:,} dense)")


def row_sums(k) -> np.ndarray:
    """(M,) float64: sum over train points of K(x, x') for each query point x."""
    return np.asarray(k @ np.ones(k.shape[1])).reshape(-1)


# ---- relu-ntk (section 3.2.1) ----------------------------------------------------------


def relu_ntk(x_query: np.ndarray, x_train: np.ndarray, depth: int, sigma_w: float, sigma_b: float) -> np.ndarray:
    """Infinite-width NTK of a ReLU network (neural_tangents.stax), section 3.2.1.

    Args:
      x_query: (M, D) float64, x_train: (N, D) float64 (Points.features, D = 2d).
      depth: number of hidden ReLU layers; sigma_w, sigma_b: W_std and b_std.

    Returns:
      (M, N) float64, computed in tiles of at most 500 x 500.
    """
    from metricflow import _nt

    check_dense(len(x_query), len(x_train), "the ReLU NTK", copies=2)
    return _nt.relu_ntk(x_query, x_train, depth, sigma_w, sigma_b)


# ---- gaussian (eq. 3.6) ----------------------------------------------------------------


def _gaussian(d: np.ndarray, sigma: float, squared: bool) -> np.ndarray:
    if squared:
        return np.exp(-(d**2) / (2.0 * sigma**2))
    return np.exp(-d / (2.0 * sigma))


def gaussian_kernel(z_query: np.ndarray, z_train: np.ndarray, sigma: float, squared: bool = False) -> np.ndarray:
    """Dense Gaussian kernel of the FS distance (eq. 3.6), filled in row tiles.

    Theta(x, x') = exp(-d(x, x') / (2 sigma)), or exp(-d^2 / (2 sigma^2)) with ``squared``,
    with d from eq. (3.2) and the near-zero threshold of eq. (3.4).

    Args:
      z_query: (M, d) complex128; z_train: (N, d) complex128.
      sigma: the width, > 0.

    Returns:
      (M, N) float64 in (0, 1].
    """
    m, n = len(z_query), len(z_train)
    check_dense(m, n, "the Gaussian kernel", copies=1)
    out = np.empty((m, n))
    for s in range(0, m, TILE_ROWS):
        out[s : s + TILE_ROWS] = _gaussian(fs_distance_matrix(z_query[s : s + TILE_ROWS], z_train), sigma, squared)
    return out


def gaussian_kernel_sparse(
    z_query: np.ndarray, train: FSNeighbours, sigma: float, radius: float, squared: bool = False
) -> csr_matrix:
    """Gaussian kernel (eq. 3.6) set to zero beyond FS distance ``radius``: sparse.

    Args:
      z_query: (M, d) complex128.
      train: FSNeighbours of the N train points.
      sigma: the width; radius: the cutoff in (0, pi/2).

    Returns:
      csr_matrix (M, N) float64; a query point with no train point within the radius has an
      empty row (its metric does not move).
    """
    k = train.within(z_query, radius)
    # .data holds distances, with explicit zeros for coincident points; exp maps them to 1.
    return csr_matrix((_gaussian(k.data, sigma, squared), k.indices, k.indptr), shape=k.shape)


# ---- delta (section 3.2.3) -------------------------------------------------------------


def delta_kernel(z_query: np.ndarray, train: FSNeighbours, same: bool = False) -> csr_matrix:
    """The nearest-neighbour kernel: Theta(x, x') = 1 if x' is x's nearest train point, else 0.

    Args:
      z_query: (M, d) complex128.
      train: FSNeighbours of the N train points.
      same: z_query are the train points themselves (in order): each takes its own update.

    Returns:
      csr_matrix (M, N) with exactly one 1 per row.
    """
    m = len(z_query)
    idx = np.arange(m) if same else train.query(z_query, k=1)[1][:, 0]
    return csr_matrix((np.ones(m), idx, np.arange(m + 1)), shape=(m, train.size))


# ---- cosnet (eq. 2.32 - 2.37) ----------------------------------------------------------


class CosNetParams(NamedTuple):
    """Frozen first-layer parameters of the cosine net (eq. 2.32), width N, input dim d.

    w: (N, d) float64 ~ N(0, sigma_w^2 / d); b: (N,) float64 ~ U(-pi, pi).
    """

    w: np.ndarray
    b: np.ndarray


def cosnet_normalisation(sigma_w: float, d: int) -> float:
    """A such that the NTK (2.35) is a normalised Gaussian: int Theta(x, x') dx' = 1.

    A^2 / 2 = (2 pi sigma^2)^(-d/2) with sigma = sqrt(d) / sigma_w gives
    A = sqrt(2) (sigma_w / sqrt(2 pi d))^(d/2). Eq. (2.36) prints 2^(1/4) (...)^(d/4), the
    square root of this; with it the Gaussian would not integrate to 1 (docs/FLOWS.md).
    """
    return float(np.sqrt(2.0) * (sigma_w / np.sqrt(2.0 * np.pi * d)) ** (d / 2.0))


def cosnet_width(sigma_w: float, d: int) -> float:
    """The Gaussian width sigma = sqrt(d) / sigma_w of the cosnet NTK (eq. 2.37)."""
    return float(np.sqrt(d) / sigma_w)


def cosnet_kernel(x_query: np.ndarray, x_train: np.ndarray, sigma_w: float, normalised: bool = True) -> np.ndarray:
    """Analytic infinite-width NTK of the cosine net (eq. 2.35).

    Theta(x, x') = A^2 / 2 exp(-sigma_w^2 |x - x'|^2 / (2 d)), with A from
    ``cosnet_normalisation`` (or A = 1 if not ``normalised``).

    Args:
      x_query: (M, d) float64; x_train: (N, d) float64.

    Returns:
      (M, N) float64.
    """
    m, n = len(x_query), len(x_train)
    d = x_train.shape[1]
    check_dense(m, n, "the cosnet kernel", copies=2)
    a = cosnet_normalisation(sigma_w, d) if normalised else 1.0
    out = np.empty((m, n))
    sq_t = np.sum(x_train**2, axis=1)
    for s in range(0, m, TILE_ROWS):
        xq = x_query[s : s + TILE_ROWS]
        d2 = np.maximum(np.sum(xq**2, axis=1)[:, None] + sq_t[None, :] - 2.0 * xq @ x_train.T, 0.0)
        out[s : s + TILE_ROWS] = 0.5 * a**2 * np.exp(-0.5 * sigma_w**2 / d * d2)
    return out


def cosnet_init(seed: int, width: int, d: int, sigma_w: float) -> CosNetParams:
    """Draw the frozen parameters of eq. (2.32): w ~ N(0, sigma_w^2/d), b ~ U(-pi, pi)."""
    width = check_count(width, "cosnet width", maximum=10**7)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((width, d)) * (sigma_w / np.sqrt(d))
    b = rng.uniform(-np.pi, np.pi, width)
    return CosNetParams(w, b)


def cosnet_features(params: CosNetParams, x: np.ndarray) -> np.ndarray:
    """cos(w_k . x + b_k), shape (M, N): d phi / d a_k up to the factor A / sqrt(N)."""
    return np.cos(x @ params.w.T + params.b)


def cosnet_apply(params: CosNetParams, a: np.ndarray, x: np.ndarray, amplitude: float) -> np.ndarray:
    """The network phi(x) = A / sqrt(N) sum_k a_k cos(w_k . x + b_k) (eq. 2.32), shape (M,).

    Eq. (2.32) prints a sum over the input index j outside the cosine; (2.34)-(2.35) only
    follow with w_k . x = sum_j w_kj x_j inside it (Einstein summation), as used here.
    """
    return amplitude / np.sqrt(len(params.b)) * cosnet_features(params, x) @ a


def cosnet_empirical_kernel(
    params: CosNetParams, x_query: np.ndarray, x_train: np.ndarray, sigma_w: float, normalised: bool = True
) -> LowRank:
    """Empirical NTK of the finite cosine net with only the last layer trained (eq. 2.33).

    Theta(x, x') = sum_k dphi(x)/da_k dphi(x')/da_k = A^2 / N sum_k cos(w_k.x + b_k) cos(w_k.x' + b_k),
    which converges to ``cosnet_kernel`` as N -> infinity with error ~ 1/sqrt(N).

    Returns:
      LowRank of shape (M, N_train), rank = width; ``.toarray()`` gives the dense matrix.
    """
    width, d = params.w.shape
    a = cosnet_normalisation(sigma_w, d) if normalised else 1.0
    check_memory(8.0 * width * (len(x_query) + len(x_train)), f"cosnet features at width {width:,}")
    return LowRank(cosnet_features(params, x_query), cosnet_features(params, x_train), a**2 / width)
