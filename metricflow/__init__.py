"""metricflow: neural-network metric flows on Calabi–Yau manifolds.

Importing metricflow turns on double precision in JAX (see ``metricflow/_jax.py``).
"""

from metricflow.geometry.distance import (
    ZERO_BELOW,
    FSNeighbours,
    fs_distance,
    fs_distance_matrix,
    nearest_neighbour_stats,
    projector_embedding,
)
from metricflow.flows.donaldson import DonaldsonConfig, DonaldsonResult, run_donaldson
from metricflow.studies.moduli import DonaldsonSweepConfig
from metricflow.errors import MetricflowError
from metricflow.flows.flow import SCHEMA_VERSION as FLOW_SCHEMA_VERSION
from metricflow.flows.flow import TABLE1, FlowConfig, FlowResult, run_flow, sample_in_chart
from metricflow.kernels import KERNELS
from metricflow.kernels import cosnet_empirical_kernel, cosnet_init, cosnet_kernel, cosnet_normalisation, cosnet_width, delta_kernel, gaussian_kernel, gaussian_kernel_sparse
from metricflow.kernels import relu_ntk
from metricflow.flows.losses import LOSSES, loss_gradient, loss_values, total_loss
from metricflow.geometry.manifolds import MANIFOLDS, Manifold, manifold
from metricflow.geometry.measures import Kappa, SigmaReport, eta, kappa, measure_sigma, sigma, volume_ratio, weighted_mean_se
from metricflow.geometry.reference import KappaConfig, reference_kappa
from metricflow.geometry.points import Points, SampleConfig, points_from_coordinates, sample_points
from metricflow.networks.saved import TrainedModel, evaluate_model, load_model, save_model

__all__ = [
    "DonaldsonConfig",
    "DonaldsonResult",
    "DonaldsonSweepConfig",
    "run_donaldson",
    "FLOW_SCHEMA_VERSION",
    "KERNELS",
    "LOSSES",
    "TABLE1",
    "FlowConfig",
    "Kappa",
    "KappaConfig",
    "SigmaReport",
    "measure_sigma",
    "reference_kappa",
    "weighted_mean_se",
    "FlowResult",
    "cosnet_empirical_kernel",
    "cosnet_init",
    "cosnet_kernel",
    "cosnet_normalisation",
    "cosnet_width",
    "delta_kernel",
    "gaussian_kernel",
    "gaussian_kernel_sparse",
    "loss_gradient",
    "loss_values",
    "relu_ntk",
    "run_flow",
    "sample_in_chart",
    "total_loss",
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
    "TrainedModel",
    "evaluate_model",
    "load_model",
    "save_model",
    "sigma",
    "volume_ratio",
]
