"""Finite-width networks that learn the quintic's Ricci-flat metric (section 3.3).

Two models map a point x of X (N points, d homogeneous coordinates, n = d - 2 local
coordinates) to a Hermitian metric g_ab(x) in its own chart (section 3.1):

``metric``  g = g_FS o (1 + H(x)), the Hadamard (entrywise) product of g_FS with 1 + H, where
            H is the Hermitian n x n matrix of the n^2 real network outputs (``hermitian``)
            and the network reads ``Points.features`` (patch-normalised z, real and imag).
            Hermitian by construction, neither Kahler nor positive definite by construction.
``phi``     g = g_FS + d dbar phi (eq. B.6), phi(z) = NN(u(z)) with the invariant features
            u(z) = Re, Im of z_i conj(z_j) / |z|^2 (i <= j): d^2 real numbers unchanged by
            z -> lambda z for every complex lambda != 0. So phi is a smooth function on
            P^(d-1) (not only on one chart), d dbar phi is a global exact (1,1)-form, and g is
            Kahler in the class of g_FS: kappa (B.10) stays that of g_FS. A smooth activation
            (GELU) keeps d dbar phi continuous.

d dbar is taken in the ambient C^d and pulled back with the chart jacobian J = dz/dx
(``Points.jacobian``): (d dbar f)_ab = J_ai (d_i dbar_j f) conj(J_bj), exact because z(x) is
holomorphic (``ddbar``). Both networks are plain JAX MLPs with the semantics of neural-tangents'
stax (``metricflow.networks.mlp``: the same parameters from the same key, the same outputs),
so training, evaluation and the metric-NTK import neither neural-tangents nor TensorFlow;
only a network's analytic ``kernel_fn`` does, when it is called.

Training (section 3.3): the sigma loss (B.11) with CY weights and the manifold's reference
kappa (``metricflow.reference.reference_kappa``: exact at the Fermat point), optax Adam (or
plain SGD for the lazy-learning width sweep), a validation split whose sigma is recorded
before training and after every epoch in both conventions (reference-kappa and
self-normalised) with standard errors, and optionally snapshots of the empirical metric-NTK
(eq. 2.7) on a fixed probe set (``metricflow.networks.metric_ntk``).

This module is the public face of five smaller ones, and every name stays importable here:
``config`` (TrainConfig), ``building`` (the networks and their metric), ``curvature`` (the
Ricci scalar), ``results`` (TrainResult) and ``training`` (train, estimate_train).
TrainConfig and TrainResult keep this module's name as their stored name (job keys).

Example:
  >>> result = train(TrainConfig(model="metric", n_points=20_000, epochs=20))
  >>> result.val_sigma[0], result.val_sigma[-1], result.gain
"""

from metricflow.networks.building import (
    EVAL_CHUNK,
    all_finite,
    components_fn,
    evaluate_in_chunks,
    init_params,
    make_model,
    metric_fn,
    n_parameters,
    nonpd_fraction,
    potential_fn,
    to_numpy,
)
from metricflow.networks.config import (
    ACTIVATIONS,
    DEFAULT_ACTIVATION,
    MODELS,
    OPTIMIZERS,
    PARAMETERIZATIONS,
    READOUT_STD,
    TrainConfig,
)
from metricflow.networks.curvature import RICCI_POINTS, ricci_measure, ricci_scalar
from metricflow.networks.outputs import ModelInput, components, ddbar, hermitian, invariant_features, model_input
from metricflow.networks.results import TRAIN_SCHEMA, TrainResult
from metricflow.networks.training import (
    SECONDS_PER_POINT_EPOCH,
    WORKER_BYTES,
    estimate_train,
    network_points,
    split_points,
    stream_key,
    train,
    train_partial,
)

__all__ = [
    "MODELS",
    "ACTIVATIONS",
    "OPTIMIZERS",
    "PARAMETERIZATIONS",
    "READOUT_STD",
    "DEFAULT_ACTIVATION",
    "TRAIN_SCHEMA",
    "RICCI_POINTS",
    "EVAL_CHUNK",
    "SECONDS_PER_POINT_EPOCH",
    "WORKER_BYTES",
    "ModelInput",
    "TrainConfig",
    "TrainResult",
    "hermitian",
    "components",
    "invariant_features",
    "ddbar",
    "make_model",
    "model_input",
    "metric_fn",
    "potential_fn",
    "components_fn",
    "nonpd_fraction",
    "init_params",
    "n_parameters",
    "ricci_scalar",
    "ricci_measure",
    "split_points",
    "network_points",
    "stream_key",
    "to_numpy",
    "all_finite",
    "evaluate_in_chunks",
    "train",
    "train_partial",
    "estimate_train",
]
