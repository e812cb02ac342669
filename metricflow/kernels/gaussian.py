"""The Gaussian kernel of the FS distance (eq. 3.6), dense or cut off at a radius (sparse)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np
from scipy.sparse import csr_matrix

from metricflow.constraints import Flag, Maybe, Positive
from metricflow.geometry.distance import FSNeighbours, fs_distance_matrix
from metricflow.geometry.points import Points
from metricflow.kernels.base import TILE_ROWS, KernelSpec, Search, check_dense

__all__ = ["Gaussian", "gaussian_kernel", "gaussian_kernel_sparse"]


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


@dataclass(frozen=True)
class Gaussian(KernelSpec):
    """The gaussian kernel of the flow: eq. (3.6) on the FS distance (table 1: sigma = 30).

    Attributes:
      sigma: the width, > 0.
      squared: exp(-d^2 / (2 sigma^2)) instead of exp(-d / (2 sigma)).
      radius: cutoff in (0, pi/2): a sparse kernel, zero beyond it; None = dense.
    """

    sigma: float = 30.0
    squared: bool = False
    radius: Optional[float] = None

    name: ClassVar[str] = "gaussian"
    label: ClassVar[str] = "Gaussian"
    table1: ClassVar[dict] = {"n_train": 2500, "lr": 0.1583, "sigma": 30.0}
    constraints: ClassVar[dict] = {
        "sigma": Positive("sigma"),
        "squared": Flag("squared"),
        "radius": Maybe(Positive("radius", below=math.pi / 2, below_text="pi/2", hint="FS distances are at most pi/2")),
    }
    search: ClassVar[dict] = {"sigma": Search("log", 1e-2, 1e2), "normalise": Search("bool", 0, 1)}
    labels: ClassVar[dict] = {"sigma": "σ (eq. 3.6)", "squared": "exp(−d²/2σ²)", "radius": "cutoff radius"}
    help: ClassVar[dict] = {"sigma": "width (default 30)", "squared": "exp(-d^2 / (2 sigma^2))",
                            "radius": "cutoff radius: sparse kernel"}

    def matrices(self, train: Points, test: Points, seed: int) -> tuple:
        """Dense float64 matrices, or csr_matrix with the cutoff (isolated test points counted)."""
        if self.radius is None:
            return (gaussian_kernel(train.z, train.z, self.sigma, self.squared),
                    gaussian_kernel(test.z, train.z, self.sigma, self.squared), 0)
        nbrs = FSNeighbours(train.z)
        k_test = gaussian_kernel_sparse(test.z, nbrs, self.sigma, self.radius, self.squared)
        isolated = int(np.sum(np.diff(k_test.indptr) == 0))
        return gaussian_kernel_sparse(train.z, nbrs, self.sigma, self.radius, self.squared), k_test, isolated

    def dense(self) -> bool:
        return self.radius is None

    def estimate(self, n: int, m: int, degree: int) -> tuple:
        """Dense: the default. Cut off: the entries within the radius (about 4 sin(radius)^6 of
        them, the volume of an FS ball on a 3-fold) plus one per row, 32 bytes and ~1e-7 s each,
        and ~2e-5 s per point for the neighbour search."""
        if self.radius is None:
            return super().estimate(n, m, degree)
        kept = int(n * (n + m) * min(1.0, 4.0 * np.sin(self.radius) ** 6)) + n + m
        return 1e-7 * kept + 2e-5 * (n + m), 32 * kept, kept

    def legend(self) -> str:
        return f"σ {self.sigma:g}" + (" squared" if self.squared else "") + (f", r {self.radius:g}" if self.radius else "")
