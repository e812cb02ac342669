"""Fubini–Study geodesic distance on P^(d-1) (eq. 3.2) and exact nearest neighbours.

d(z, z') = arccos( |<z, z'>| / (|z| |z'|) ) lies in [0, pi/2]. Near zero, arccos(1 - eps)
~ sqrt(2 eps) (eq. 3.4) turns rounding noise into a sizable distance, so distances below
``zero_below`` are set to 0, as in the paper.

For neighbour search, each point is mapped to its projector P = z z^dag / |z|^2, a real
vector of length d^2. Since |P - P'|_F = sqrt(2) sin d(z, z') and <P, P'> = cos^2 d(z, z'),
monotone in the FS distance on [0, pi/2], the Euclidean nearest neighbours of the projectors
are exactly the FS nearest neighbours. A k-d tree on them was measured slower than a blocked
search (38 s against 12 s for 10^5 quintic points): the points fill a real 6-manifold inside
R^25 and the neighbour balls are too wide for the tree to prune. So the search is blocked
inner products, with no N x N matrix.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from metricflow.errors import MetricflowError, check_count, check_memory

__all__ = [
    "ZERO_BELOW",
    "fs_distance",
    "fs_distance_matrix",
    "projector_embedding",
    "FSNeighbours",
    "nearest_neighbour_stats",
]

# In double precision the cosine is exact to a few ulp, so identical points come out at
# about sqrt(2 * 4e-16) ~ 3e-8; anything below 1e-7 is rounding noise (eq. 3.4).
ZERO_BELOW = 1e-7


def _unit(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=complex)
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


def fs_distance(z1: np.ndarray, z2: np.ndarray, zero_below: float = ZERO_BELOW) -> np.ndarray:
    """FS geodesic distance between matching rows (eq. 3.2), accurate at all distances.

    Uses atan2(sin d, cos d) with sin d = |P - P'|_F / sqrt(2), which has no cancellation at
    small d, so it resolves distances far below the arccos formula's sqrt(2 eps) floor.

    Args:
      z1, z2: (..., d) complex homogeneous coordinates, broadcastable.
      zero_below: distances below this are set to 0 (eq. 3.4); pass 0 to keep them.

    Returns:
      (...) float64 in [0, pi/2].
    """
    u1, u2 = _unit(z1), _unit(z2)
    cos = np.abs(np.sum(np.conj(u1) * u2, axis=-1))
    diff = u1[..., :, None] * np.conj(u1[..., None, :]) - u2[..., :, None] * np.conj(u2[..., None, :])
    sin = np.linalg.norm(diff, axis=(-2, -1)) / np.sqrt(2.0)
    dist = np.arctan2(sin, cos)
    return np.where(dist < zero_below, 0.0, dist)


def fs_distance_matrix(
    z1: np.ndarray, z2: np.ndarray | None = None, zero_below: float = ZERO_BELOW
) -> np.ndarray:
    """Pairwise FS distances by eq. (3.2), with the near-zero threshold of eq. (3.4).

    Args:
      z1: (N, d) complex; z2: (M, d) complex, or None for z1 against itself.

    Returns:
      (N, M) float64 in [0, pi/2]; the diagonal is exactly 0 when z2 is None.
    """
    same = z2 is None
    u1 = _unit(z1)
    u2 = u1 if same else _unit(z2)
    check_memory(16.0 * u1.shape[0] * u2.shape[0], f"a {u1.shape[0]} x {u2.shape[0]} distance matrix")
    cos = np.clip(np.abs(u1 @ np.conj(u2).T), 0.0, 1.0)
    dist = np.arccos(cos)
    # below this cosine, arccos only measures rounding (eq. 3.4)
    dist[dist < max(zero_below, np.sqrt(2 * 8 * np.finfo(float).eps))] = 0.0
    if same:
        np.fill_diagonal(dist, 0.0)
    return dist


def projector_embedding(z: np.ndarray) -> np.ndarray:
    """Real embedding of P = z z^dag / |z|^2 with |P - P'|_F as its Euclidean distance.

    Args:
      z: (N, d) complex.

    Returns:
      (N, d^2) float64: the diagonal, then sqrt(2) times the real and imaginary parts of the
      upper off-diagonal entries.
    """
    u = _unit(z)
    d = u.shape[1]
    proj = u[:, :, None] * np.conj(u[:, None, :])
    iu = np.triu_indices(d, 1)
    off = proj[:, iu[0], iu[1]] * np.sqrt(2.0)
    return np.concatenate([np.real(np.diagonal(proj, axis1=1, axis2=2)), off.real, off.imag], axis=1)


# A query stripe of ROWS points meets the indexed points COLS at a time: 256 x 8192 float32
# is 8 MiB per thread.
ROWS, COLS = 256, 8192
# Bound on the float32 error of <P, P'> for unit projectors in R^25 (25 * 2^-24, rounded up).
FLOAT32_MARGIN = 4e-6


def _nearest(eq: np.ndarray, ei: np.ndarray, exclude_self: bool) -> np.ndarray:
    """Index of the largest <P, P'> in ei for each row of eq, exact.

    The search runs in float32 over stripes on two threads; a row whose best and second-best
    inner products are closer than the float32 error bound is searched again in float64.
    """
    q32, i32 = eq.astype(np.float32), ei.astype(np.float32)

    def stripe(s):
        q = q32[s : s + ROWS]
        r = np.arange(len(q))
        best = np.full(len(q), -np.inf, np.float32)
        second = np.full(len(q), -np.inf, np.float32)
        arg = np.zeros(len(q), np.int64)
        for c in range(0, len(i32), COLS):
            g = q @ i32[c : c + COLS].T
            if exclude_self:
                cols = r + s - c
                ok = (cols >= 0) & (cols < g.shape[1])
                g[r[ok], cols[ok]] = -np.inf
            a = g.argmax(axis=1)
            m = g[r, a]
            g[r, a] = -np.inf
            second = np.maximum(np.maximum(second, np.minimum(m, best)), g.max(axis=1))
            better = m > best
            best = np.where(better, m, best)
            arg = np.where(better, a + c, arg)
        return arg, best - second

    with threadpool_limits(1), ThreadPoolExecutor(2) as pool:
        parts = list(pool.map(stripe, range(0, len(eq), ROWS)))
    arg = np.concatenate([p[0] for p in parts])
    for row in np.flatnonzero(np.concatenate([p[1] for p in parts]) < FLOAT32_MARGIN):
        g = ei @ eq[row]
        if exclude_self:
            g[row] = -np.inf
        arg[row] = np.argmax(g)
    return arg


def _top_k_stripe(q32: np.ndarray, i32t: np.ndarray, start: int, keep: int, exclude_self: bool):
    """The ``keep`` largest float32 <P, P'> of each query row over the columns of i32t.

    The first column block is partitioned in full; after that only the entries above each
    row's current ``keep``-th best are gathered (a few per row), so the cost is the matrix
    product and one comparison per entry.
    """
    rows = np.arange(len(q32))
    vals = np.full((len(q32), 0), -np.inf, np.float32)
    idxs = np.zeros((len(q32), 0), np.int64)
    for c in range(0, i32t.shape[1], COLS):
        g = q32 @ i32t[:, c : c + COLS]
        if exclude_self:
            own = rows + start - c
            ok = (own >= 0) & (own < g.shape[1])
            g[rows[ok], own[ok]] = -np.inf
        if vals.shape[1] < keep:  # until keep candidates are held: take whole blocks
            new_v, new_i = g, np.broadcast_to(np.arange(c, c + g.shape[1]), g.shape)
        else:  # then only the few entries above each row's current keep-th best
            r, cc = np.nonzero(g > vals.min(axis=1)[:, None])
            if len(r) == 0:
                continue
            counts = np.bincount(r, minlength=len(q32))
            slot = np.arange(len(r)) - np.repeat(np.cumsum(counts) - counts, counts)
            new_v = np.full((len(q32), int(counts.max())), -np.inf, np.float32)
            new_i = np.zeros(new_v.shape, np.int64)
            new_v[r, slot], new_i[r, slot] = g[r, cc], cc + c
        all_v, all_i = np.concatenate([vals, new_v], axis=1), np.concatenate([idxs, new_i], axis=1)
        if all_v.shape[1] > keep:
            part = np.argpartition(-all_v, keep - 1, axis=1)[:, :keep]
            all_v, all_i = np.take_along_axis(all_v, part, axis=1), np.take_along_axis(all_i, part, axis=1)
        vals, idxs = all_v, all_i
    return vals, idxs


def _top_k(eq: np.ndarray, ei: np.ndarray, k: int, exclude_self: bool) -> np.ndarray:
    """Indices of the k largest <P, P'> in ei for each row of eq, exact, best first.

    The search runs in float32 stripes on two threads keeping k + 4 candidates a row; their
    inner products are recomputed in float64, and a row is searched again in float64 unless
    its k-th candidate beats every point left out by more than the float32 error bound.
    """
    available = len(ei) - int(exclude_self)
    keep = min(k + 4, available)
    q32, i32t = eq.astype(np.float32), np.ascontiguousarray(ei.astype(np.float32).T)
    with threadpool_limits(1), ThreadPoolExecutor(2) as pool:
        parts = list(pool.map(
            lambda s: _top_k_stripe(q32[s : s + ROWS], i32t, s, keep, exclude_self), range(0, len(eq), ROWS)
        ))
    vals32 = np.concatenate([p[0] for p in parts])
    cand = np.concatenate([p[1] for p in parts])
    exact = np.einsum("nj,nkj->nk", eq, ei[cand])
    order = np.argsort(-exact, axis=1, kind="stable")
    cand, exact = np.take_along_axis(cand, order, axis=1), np.take_along_axis(exact, order, axis=1)
    left_out = vals32.min(axis=1).astype(np.float64) if keep < available else np.full(len(eq), -np.inf)
    for row in np.flatnonzero(exact[:, k - 1] <= left_out + FLOAT32_MARGIN):
        g = ei @ eq[row]
        if exclude_self:
            g[row] = -np.inf
        cand[row, :k] = np.argsort(-g, kind="stable")[:k]
    return cand[:, :k]


class FSNeighbours:
    """Exact FS nearest-neighbour queries against a fixed set of points.

    A blocked search over inner products of the projector embeddings, cos^2 d = <P, P'>,
    with O(ROWS x COLS) memory per thread: no N x M matrix is ever held. The nearest
    neighbour search runs in float32 and repeats in float64 the rare rows whose top two are
    within the float32 error, so it is exact; k > 1 keeps k + 4 float32 candidates a row and
    checks them the same way. The neighbours' distances are recomputed with the stable
    ``fs_distance``.

    Example:
      >>> nn = FSNeighbours(train.z)
      >>> dist, idx = nn.query(test.z, k=1)
    """

    def __init__(self, z: np.ndarray):
        """Index the points z of shape (N, d), complex."""
        self._z = np.asarray(z, dtype=complex)
        self._emb = projector_embedding(self._z)
        self.size = len(self._z)

    def query(self, z: np.ndarray, k: int = 1, exclude_self: bool = False):
        """The k nearest indexed points to each row of z.

        Args:
          z: (M, d) complex query points.
          k: number of neighbours.
          exclude_self: z is the indexed set itself; skip each point's own index.

        Returns:
          (dist, idx): (M, k) float64 FS distances, increasing, and (M, k) int indices.
        """
        k = check_count(k, "k", maximum=self.size - int(exclude_self))
        z = np.asarray(z, dtype=complex)
        if exclude_self and len(z) != self.size:
            raise MetricflowError("exclude_self needs the indexed points themselves as the query")
        emb = projector_embedding(z)
        if k == 1:
            idx = _nearest(emb, self._emb, exclude_self)[:, None]
        else:
            idx = _top_k(emb, self._emb, k, exclude_self)
        dist = fs_distance(z[:, None, :], self._z[idx])
        order = np.argsort(dist, axis=1, kind="stable")
        return np.take_along_axis(dist, order, axis=1), np.take_along_axis(idx, order, axis=1)

    def within(self, z: np.ndarray, radius: float):
        """All indexed points within FS distance ``radius`` of each row of z.

        Args:
          z: (M, d) complex query points.
          radius: in (0, pi/2).

        Returns:
          scipy.sparse.csr_matrix of shape (M, N) holding the FS distances of the pairs
          within the radius (pairs at distance exactly 0 are stored as explicit zeros).
        """
        if not 0 < radius < np.pi / 2:
            raise MetricflowError(f"radius must be in (0, pi/2), got {radius}")
        z = np.asarray(z, dtype=complex)
        emb = projector_embedding(z)
        rows, cols = [], []
        threshold = np.cos(radius) ** 2 - 1e-12
        for s in range(0, len(z), ROWS):
            for c in range(0, self.size, COLS):
                r, cc = np.nonzero(emb[s : s + ROWS] @ self._emb[c : c + COLS].T >= threshold)
                rows.append(r + s)
                cols.append(cc + c)
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        dist = fs_distance(z[rows], self._z[cols])
        keep = dist <= radius
        return csr_matrix((dist[keep], (rows[keep], cols[keep])), shape=(len(z), self.size))


def nearest_neighbour_stats(z: np.ndarray) -> dict:
    """Mean, min and max over points of the FS distance to the nearest other point.

    Exact, in O(N^2) time and O(N) memory (see ``FSNeighbours``).

    Args:
      z: (N, d) complex, N >= 2.

    Returns:
      {"mean", "min", "max"} as floats, "distances" (N,) float64 and "neighbour" (N,) int.
    """
    z = np.asarray(z, dtype=complex)
    n = len(z)
    if n < 2:
        raise MetricflowError(f"need at least 2 points for neighbour distances, got {n}")
    check_memory(8.0 * n * 60 + 2 * 8 * ROWS * COLS, f"neighbour distances of {n:,} points")
    arg = _nearest(projector_embedding(z), projector_embedding(z), exclude_self=True)
    dist = fs_distance(z, z[arg])
    return {
        "mean": float(dist.mean()),
        "min": float(dist.min()),
        "max": float(dist.max()),
        "distances": dist,
        "neighbour": arg,
    }
