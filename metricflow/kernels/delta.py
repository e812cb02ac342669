"""The delta kernel (section 3.2.3): each query point takes the update of its nearest train point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.sparse import csr_matrix

from metricflow.geometry.distance import FSNeighbours
from metricflow.geometry.points import Points
from metricflow.kernels.base import KernelSpec

__all__ = ["Delta", "delta_kernel"]


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


@dataclass(frozen=True)
class Delta(KernelSpec):
    """The delta kernel of the flow: no options. Its rows sum to 1, so tuning does not search
    the normalisation."""

    name: ClassVar[str] = "delta"
    label: ClassVar[str] = "delta"
    table1: ClassVar[dict] = {"n_train": 1000, "lr": 0.3162}

    def matrices(self, train: Points, test: Points, seed: int) -> tuple:
        """csr_matrix (N, N) identity and (M, N) nearest train point; no test point is isolated."""
        nbrs = FSNeighbours(train.z)
        return delta_kernel(train.z, nbrs, same=True), delta_kernel(test.z, nbrs), 0

    def dense(self) -> bool:
        return False

    def estimate(self, n: int, m: int, degree: int) -> tuple:
        """One entry per row (32 bytes each) and ~2e-5 s per point for the neighbour search."""
        kept = n + m
        return 2e-5 * (n + m), 32 * kept, kept
