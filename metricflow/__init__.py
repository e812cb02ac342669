"""metricflow: neural-network metric flows on Calabi–Yau manifolds.

The flat public API, re-exported from the layers (docs/ARCHITECTURE.md). Importing metricflow
turns on double precision in JAX (``metricflow/_jax.py``). The job runner (cached, parallel
runs of any config) is ``metricflow.jobs``; figures are ``metricflow.figures``.

Example:
  >>> from metricflow import FlowConfig, Gaussian, run_flow
  >>> result = run_flow(FlowConfig(kernel=Gaussian(sigma=0.05, radius=0.3), n_train=1000, steps=20))
"""

from metricflow.errors import ConfigTypeError, MetricflowError
from metricflow.geometry.distance import (
    ZERO_BELOW,
    FSNeighbours,
    fs_distance,
    fs_distance_matrix,
    nearest_neighbour_stats,
    projector_embedding,
)
from metricflow.geometry.manifolds import MANIFOLDS, Manifold, manifold
from metricflow.geometry.measures import Kappa, SigmaReport, eta, kappa, measure_sigma, sigma, volume_ratio, weighted_mean_se
from metricflow.geometry.points import Points, SampleConfig, points_from_coordinates, sample_points
from metricflow.geometry.reference import KappaConfig, reference_kappa
from metricflow.kernels import (
    KERNELS,
    CosNet,
    Delta,
    Gaussian,
    KernelSpec,
    ReluNTK,
    cosnet_empirical_kernel,
    cosnet_init,
    cosnet_kernel,
    cosnet_normalisation,
    cosnet_width,
    delta_kernel,
    gaussian_kernel,
    gaussian_kernel_sparse,
    kernel_spec,
    relu_ntk,
)
from metricflow.flows.classical import ClassicalFlowConfig, ClassicalFlowResult, run_classical_flow
from metricflow.flows.donaldson import DonaldsonConfig, DonaldsonResult, run_donaldson
from metricflow.flows.flow import SCHEMA_VERSION as FLOW_SCHEMA_VERSION
from metricflow.flows.flow import TABLE1, FlowConfig, FlowResult, flow_from_options, run_flow, sample_in_chart
from metricflow.flows.losses import LOSSES, loss_gradient, loss_values, total_loss
from metricflow.networks.family import FamilyResult, FamilyTrainConfig, train_family
from metricflow.networks.invariant import RECORD_PRESET
from metricflow.networks.models import TrainConfig, TrainResult, train
from metricflow.networks.saved import TrainedModel, evaluate_model, load_model, save_model
from metricflow.studies.methods import MethodsConfig, MethodsResult, run_methods
from metricflow.studies.moduli import DonaldsonSweepConfig, run_donaldson_sweep

__all__ = [
    # errors
    "ConfigTypeError", "MetricflowError",
    # geometry
    "MANIFOLDS", "Manifold", "manifold", "Points", "SampleConfig", "points_from_coordinates", "sample_points",
    "Kappa", "KappaConfig", "SigmaReport", "eta", "kappa", "measure_sigma", "reference_kappa", "sigma",
    "volume_ratio", "weighted_mean_se",
    "ZERO_BELOW", "FSNeighbours", "fs_distance", "fs_distance_matrix", "nearest_neighbour_stats", "projector_embedding",
    # kernels
    "KERNELS", "KernelSpec", "CosNet", "Delta", "Gaussian", "ReluNTK", "kernel_spec",
    "cosnet_empirical_kernel", "cosnet_init", "cosnet_kernel", "cosnet_normalisation", "cosnet_width",
    "delta_kernel", "gaussian_kernel", "gaussian_kernel_sparse", "relu_ntk",
    # flows
    "FLOW_SCHEMA_VERSION", "LOSSES", "TABLE1", "FlowConfig", "FlowResult", "flow_from_options", "run_flow",
    "sample_in_chart", "loss_gradient", "loss_values", "total_loss",
    "DonaldsonConfig", "DonaldsonResult", "run_donaldson",
    "ClassicalFlowConfig", "ClassicalFlowResult", "run_classical_flow",
    # networks
    "TrainConfig", "TrainResult", "train", "FamilyTrainConfig", "FamilyResult", "train_family", "TrainedModel", "evaluate_model", "load_model", "save_model",
    "RECORD_PRESET",
    # studies
    "DonaldsonSweepConfig", "run_donaldson_sweep", "MethodsConfig", "MethodsResult", "run_methods",
]
