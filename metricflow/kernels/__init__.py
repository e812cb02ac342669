"""Scalar kernels for the metric flow (3.5); see ``metricflow.kernels.base``."""

from metricflow.kernels.base import *  # noqa: F401,F403
from metricflow.kernels.base import KERNELS, MAX_DENSE_ENTRIES, LowRank, check_dense, row_sums  # noqa: F401
