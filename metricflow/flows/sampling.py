"""Sampling in one chart (section 3.1): the metric components at different points can only
be added if they are in the same chart, so a flow's points share one (scale, elim) pair."""

from __future__ import annotations

from typing import Optional

import numpy as np

from metricflow.errors import MetricflowError
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.points import Points, SampleConfig, points_from_coordinates, sample_points
from metricflow.kernels.base import stream_seed

__all__ = ["SAMPLE_BATCH", "MAX_OVERSAMPLE", "sample_in_chart"]

# Rejection sampling draws points in batches of at most this many, and gives up after
# drawing MAX_OVERSAMPLE times the points asked for.
SAMPLE_BATCH = 100_000
MAX_OVERSAMPLE = 200




def _concat(parts: list[Points]) -> Points:
    names = ["z", "scale_index", "elim_index", "omega_sq", "jacobian", "g_fs", "weights"]
    arrays = {n: np.concatenate([getattr(p, n) for p in parts]) for n in names}
    return Points(parts[0].manifold, lines_drawn=sum(p.lines_drawn for p in parts), **arrays)


def _most_common_chart(pts: Points) -> tuple:
    charts, counts = np.unique(pts.chart, axis=0, return_counts=True)
    return tuple(int(c) for c in charts[np.argmax(counts)])  # ties: lexicographically first


def sample_in_chart(
    manifold: Manifold, n: int, seed: int, stream: int, chart: Optional[tuple] = None, coordinates: str = "reject"
) -> tuple[Points, tuple, int]:
    """n points on the manifold whose metrics are all in one chart (section 3.1).

    Args:
      manifold: the hypersurface.
      n: points wanted.
      seed, stream: the sampling seeds are derived from (seed, stream, batch number).
      chart: the (scale, elim) pair; None = most common chart of the first batch.
      coordinates: "reject" keeps only points whose own best chart is ``chart``
        (oversampling about 20 times on the quintic); "transform" recomputes n points in it.

    Returns:
      (points, chart, drawn): Points with N = n, the chart used, and the points drawn.
    """
    if coordinates == "transform":
        pts = sample_points(SampleConfig(manifold, n, stream_seed(seed, stream, 0)))
        chart = _most_common_chart(pts) if chart is None else chart
        pts = points_from_coordinates(manifold, pts.z, pts.lines_drawn, chart=np.tile(chart, (n, 1)))
        return pts, chart, n
    kept, have, drawn, batch = [], 0, 0, 0
    while have < n:
        size = int(min(SAMPLE_BATCH, max(2_000, 25 * (n - have))))
        pts = sample_points(SampleConfig(manifold, size, stream_seed(seed, stream, batch)))
        if chart is None:
            chart = _most_common_chart(pts)
        mask = (pts.scale_index == chart[0]) & (pts.elim_index == chart[1])
        kept.append(pts.subset(np.flatnonzero(mask)[: n - have]))
        have += kept[-1].z.shape[0]
        drawn += size
        batch += 1
        if have < n and drawn >= MAX_OVERSAMPLE * n + SAMPLE_BATCH:
            raise MetricflowError(
                f"chart {chart} held only {have:,} of {drawn:,} sampled points, fewer than the {n:,} "
                "asked for; choose another chart or use coordinates='transform'"
            )
    return _concat(kept), tuple(chart), drawn
