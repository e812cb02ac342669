"""metricflow: neural-network metric flows on Calabi–Yau manifolds.

Importing metricflow turns on double precision in JAX (see ``metricflow/_jax.py``).
"""

from metricflow.distance import (
    ZERO_BELOW,
    FSNeighbours,
    fs_distance,
    fs_distance_matrix,
    nearest_neighbour_stats,
    projector_embedding,
)
from metricflow.errors import MetricflowError
from metricflow.manifolds import MANIFOLDS, Manifold, manifold
from metricflow.measures import eta, kappa, sigma, volume_ratio
from metricflow.points import Points, SampleConfig, points_from_coordinates, sample_points

__all__ = [
    "MANIFOLDS",
    "ZERO_BELOW",
    "FSNeighbours",
    "Manifold",
    "MetricflowError",
    "Points",
    "SampleConfig",
    "eta",
    "fs_distance",
    "fs_distance_matrix",
    "kappa",
    "manifold",
    "nearest_neighbour_stats",
    "points_from_coordinates",
    "projector_embedding",
    "sample_points",
    "sigma",
    "volume_ratio",
]
