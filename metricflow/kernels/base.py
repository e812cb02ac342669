"""Shared pieces of the scalar kernels Theta(x, x') of the flow (3.5), Theta_ijkl = delta_ik delta_jl Theta.

The flow (metricflow.flows.flow) applies the scalar kernel either in each metric's own frame (the
covariant update: a conformal rescaling transported with the kernel normalised against the CY
measure, Theta(x, x') u(x') / sum_x'' Theta(x, x'') u(x'')) or to coordinate components (the
euclidean update); the kernels are the same for both.

Every kernel returns a matrix K of shape (M, N): M query points (train or test) against N
train points, as one of three types that all support ``K @ X`` for X of shape (N, k):

  * a dense (M, N) float64 ndarray (relu-ntk, gaussian, analytic cosnet);
  * a scipy.sparse csr_matrix (gaussian with a cutoff radius, delta);
  * a ``LowRank`` factorisation (cosnet at finite width, eq. 2.33).

Dense matrices are bounded: more than ``MAX_DENSE_ENTRIES`` entries, or more than the free
memory, raises MetricflowError naming the sizes. Local kernels never form an N x N matrix.

Each kernel is one module of this package (relu_ntk, gaussian, delta, cosnet) holding its
math and its ``KernelSpec``: a frozen dataclass of its options that also says, as class
data, its name, label, table 1 values, constraints and tuning search ranges, and, as
methods, how it builds the flow's matrices and what that costs. ``metricflow.kernels.KERNELS``
is the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, NamedTuple

import numpy as np

from metricflow.constraints import validate
from metricflow.errors import MetricflowError, check_memory
from metricflow.geometry.points import Points

__all__ = [
    "MAX_DENSE_ENTRIES",
    "TILE_ROWS",
    "LowRank",
    "Search",
    "KernelSpec",
    "check_dense",
    "row_sums",
    "stream_seed",
]

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




def stream_seed(seed: int, stream: int, batch: int) -> int:
    """An independent seed for (seed, stream, batch); no global RNG.

    Streams of a flow seed: 0 train points, 1 test points, 2 cosnet weights (see
    ``metricflow.flows.flow`` and the studies for the others)."""
    return int(np.random.SeedSequence([seed, stream, batch]).generate_state(1, np.uint64)[0] % 2**63)


class Search(NamedTuple):
    """How tuning searches one parameter: scale "log" (log10 of the value), "int" (log10,
    rounded to an integer), "linear" or "bool" (a [0, 1] dimension, True at >= 0.5), and
    the default range low <= value <= high."""

    scale: str
    low: float
    high: float


@dataclass(frozen=True)
class KernelSpec:
    """One kernel of the flow (3.5): its options as frozen fields, the rest as class data.

    A kernel module defines a subclass with its options as fields (with their table 1
    defaults) and sets the class data:

      name: the registry name ("gaussian").
      label: the kernel's name in figures and pages.
      table1: {"n_train": ..., "lr": ..., and option values}: table 1 of the paper (our
        choice where table 1 has none); the flow's n_train and lr default to these.
      constraints: {option: metricflow.constraints rule}, checked on construction.
      search: {parameter: Search(scale, low, high)}: what tuning searches besides n_train and
        lr, in order; a parameter is an option or a FlowConfig field (``normalise``).
      labels: {option: short label} for figures, widgets and tables.
      help: {option: one line} for the CLI.

    and the methods ``matrices``, ``dense`` and ``estimate``. Computes nothing on construction.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    table1: ClassVar[dict] = {}
    constraints: ClassVar[dict] = {}
    search: ClassVar[dict] = {}
    labels: ClassVar[dict] = {}
    help: ClassVar[dict] = {}

    def __post_init__(self):
        validate(self)

    def __str__(self) -> str:
        return self.name

    def options(self) -> dict:
        """The option values, by field name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_dict(self) -> dict:
        """JSON-ready: {"name": ..., option: value, ...}."""
        return {"name": self.name, **self.options()}

    def legend(self) -> str:
        """The options in a figure legend, such as "σ_w 10" (empty for none)."""
        return ", ".join(f"{self.labels.get(k, k)} {v:g}" if isinstance(v, float) else f"{self.labels.get(k, k)} {v}"
                         for k, v in self.options().items() if v is not None and v is not False)

    def matrices(self, train: Points, test: Points, seed: int) -> tuple:
        """(K_train (N, N), K_test (M, N), isolated_test) of the flow on ``train`` and ``test``.

        Each matrix is a dense float64 ndarray, a scipy csr_matrix or a LowRank;
        isolated_test counts test points whose kernel row is empty. ``seed`` is the flow's
        seed (for kernels that draw parameters, from ``stream_seed(seed, 2, 0)``).
        """
        raise NotImplementedError(f"{type(self).__name__} does not define matrices")

    def dense(self) -> bool:
        """Whether ``matrices`` gives dense N x (N + M) matrices (bounded by MAX_DENSE_ENTRIES)."""
        return True

    def estimate(self, n: int, m: int, degree: int) -> tuple:
        """(seconds, bytes, kept) of the kernel part of a flow on n train and m test points.

        kept is the number of kernel entries held (each step costs ~8e-9 s per entry);
        ``metricflow.flows.flow.estimate_flow`` adds sampling and the steps. Default: a dense
        kernel, 16 bytes and ~6e-8 s per entry of K_train and K_test.
        """
        entries = n * (n + m)
        return 6e-8 * entries, 16 * entries, entries
