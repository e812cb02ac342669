"""The cosine net of eq. (2.32) with only the last layer trained: its analytic NTK (2.35) with
normalisation (2.36), or its empirical NTK (2.33) at finite width."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Optional

import numpy as np

from metricflow.constraints import Count, Maybe, Positive
from metricflow.errors import check_count, check_memory
from metricflow.geometry.points import Points
from metricflow.kernels.base import TILE_ROWS, KernelSpec, LowRank, Search, check_dense, stream_seed

__all__ = [
    "CosNet", "CosNetParams", "cosnet_normalisation", "cosnet_width", "cosnet_kernel", "cosnet_init",
    "cosnet_features", "cosnet_apply", "cosnet_empirical_kernel",
]


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


@dataclass(frozen=True)
class CosNet(KernelSpec):
    """The cosnet kernel of the flow, on Points.features. Not in table 1: its defaults are
    ours (docs/FLOWS.md).

    Attributes:
      sigma_w: the first layer's weight scale (the NTK is a Gaussian of width sqrt(d) / sigma_w).
      width: N for the empirical kernel (2.33), its weights drawn from the flow seed (stream
        2); None = the analytic kernel (2.35).
    """

    sigma_w: float = 10.0
    width: Optional[int] = None

    name: ClassVar[str] = "cosnet"
    label: ClassVar[str] = "cos-net NTK"
    table1: ClassVar[dict] = {"n_train": 2500, "lr": 0.1, "sigma_w": 10.0}
    constraints: ClassVar[dict] = {
        "sigma_w": Positive("sigma_w"), "width": Maybe(Count("cosnet width", maximum=10**7)),
    }
    search: ClassVar[dict] = {"sigma_w": Search("log", 0.1, 100.0), "normalise": Search("bool", 0, 1)}
    labels: ClassVar[dict] = {"sigma_w": "σ_w", "width": "width N"}
    help: ClassVar[dict] = {"sigma_w": "sigma_w (default 10)", "width": "width (default: analytic kernel)"}

    def matrices(self, train: Points, test: Points, seed: int) -> tuple:
        """Dense float64 (analytic) or LowRank (finite width, weights from stream_seed(seed, 2, 0))."""
        xt = train.features
        if self.width is None:
            return cosnet_kernel(xt, xt, self.sigma_w), cosnet_kernel(test.features, xt, self.sigma_w), 0
        params = cosnet_init(stream_seed(seed, 2, 0), self.width, xt.shape[1], self.sigma_w)
        return (
            cosnet_empirical_kernel(params, xt, xt, self.sigma_w),
            cosnet_empirical_kernel(params, test.features, xt, self.sigma_w),
            0,
        )

    def dense(self) -> bool:
        return self.width is None

    def estimate(self, n: int, m: int, degree: int) -> tuple:
        """Analytic: the dense default. Finite width: the features (N + M, width), 16 bytes
        and ~2e-8 s per entry and input dimension."""
        if self.width is None:
            return super().estimate(n, m, degree)
        kept = self.width * (n + m)
        return 2e-8 * self.width * (n + m) * degree, 16 * self.width * (n + m), kept

    def legend(self) -> str:
        return f"σ_w {self.sigma_w:g}" + (f", N {self.width}" if self.width else ", ∞ width")
