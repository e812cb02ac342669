"""The ReLU NTK (section 3.2.1): the infinite-width NTK of a ReLU network, via neural_tangents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from metricflow.constraints import Count, Positive, Real
from metricflow.geometry.points import Points
from metricflow.kernels.base import KernelSpec, Search, check_dense

__all__ = ["TENSORFLOW_BYTES", "ReluNTK", "relu_ntk"]

# neural_tangents imports TensorFlow: this much more memory, and ~5 s, per worker.
TENSORFLOW_BYTES = 1200 * 2**20


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


@dataclass(frozen=True)
class ReluNTK(KernelSpec):
    """The relu-ntk kernel of the flow: ``relu_ntk`` on Points.features (table 1 defaults).

    Attributes:
      depth: hidden ReLU layers.
      sigma_w, sigma_b: W_std and b_std of the network.
    """

    depth: int = 1
    sigma_w: float = 5.716
    sigma_b: float = 80.52

    name: ClassVar[str] = "relu-ntk"
    label: ClassVar[str] = "ReLU NTK"
    table1: ClassVar[dict] = {"n_train": 2500, "lr": 0.1, "depth": 1, "sigma_w": 5.716, "sigma_b": 80.52}
    constraints: ClassVar[dict] = {
        "depth": Count("depth", maximum=100), "sigma_w": Positive("sigma_w"), "sigma_b": Real("sigma_b", low=0.0),
    }
    search: ClassVar[dict] = {
        "sigma_w": Search("log", 0.1, 100.0), "sigma_b": Search("linear", 0.0, 100.0), "normalise": Search("bool", 0, 1),
    }
    labels: ClassVar[dict] = {"depth": "depth", "sigma_w": "σ_w", "sigma_b": "σ_b"}
    help: ClassVar[dict] = {"depth": "hidden layers (default 1)", "sigma_w": "W_std (default 5.716)",
                            "sigma_b": "b_std (default 80.52)"}

    def matrices(self, train: Points, test: Points, seed: int) -> tuple:
        """Dense (N, N) and (M, N) float64 NTKs; no test point is isolated."""
        xt = train.features
        return (relu_ntk(xt, xt, self.depth, self.sigma_w, self.sigma_b),
                relu_ntk(test.features, xt, self.depth, self.sigma_w, self.sigma_b), 0)

    def estimate(self, n: int, m: int, degree: int) -> tuple:
        """Dense: 24 bytes per entry (matrix, copy, neural_tangents' tile) plus TensorFlow;
        ~2.5e-6 s per entry plus ~5 s to import TensorFlow (benchmarks/bench_flow.py)."""
        entries = n * (n + m)
        return 2.5e-6 * entries + 5.0, 16 * entries + 8 * entries + TENSORFLOW_BYTES, entries

    def legend(self) -> str:
        return f"depth {self.depth}, σ_w {self.sigma_w:g}, σ_b {self.sigma_b:g}"

