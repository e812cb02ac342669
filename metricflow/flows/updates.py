"""The update rules of the kernel flow (docs/FLOWS.md): the kernel sum of loss gradients
(euclidean), the transport of relative corrections (covariant), and the paired gain."""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["apply_kernel", "transport", "nonpd", "paired_gain"]


def apply_kernel(k, grad: np.ndarray, norm: Optional[np.ndarray]) -> np.ndarray:
    """sum_x' K(x, x') grad(x') for grad (N, n, n) complex; optionally divided by row sums."""
    n, a, _ = grad.shape
    flat = np.ascontiguousarray(grad).view(np.float64).reshape(n, 2 * a * a)
    out = np.ascontiguousarray(np.asarray(k @ flat))
    if norm is not None:
        out /= norm[:, None]
    return out.view(np.complex128).reshape(-1, a, a)


def nonpd(g: np.ndarray) -> np.ndarray:
    """(N,) bool: the metric has an eigenvalue <= 0."""
    return np.linalg.eigvalsh(g.astype(np.complex128, copy=False))[:, 0] <= 0.0


def transport(k, rate: np.ndarray, u: np.ndarray, normalise: bool) -> np.ndarray:
    """c(x) = sum_x' Kn(x, x') rate(x') for the covariant update, shape (M,) float64.

    normalise: Kn = K u' / sum_x'' K u'' (rows with sum <= 0 give 0: no update); else the
    Monte-Carlo sum K u' / sum u.
    """
    num = np.asarray(k @ (u * rate), dtype=np.float64).reshape(-1)
    if not normalise:
        return num / np.sum(u)
    den = np.asarray(k @ u, dtype=np.float64).reshape(-1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def paired_gain(before: np.ndarray, after: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Gain sum w before / sum w after and its standard error (delta method, same points)."""
    b, a = np.sum(w * before), np.sum(w * after)
    ratio = b / a
    return float(ratio), float(np.sqrt(np.sum((w * (before - ratio * after)) ** 2)) / abs(a))

