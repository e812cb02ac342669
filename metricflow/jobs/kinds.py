"""The registration table: which pure function, schema version and cost estimate serve each
config type. This is the one place that imports the studies; nothing below it imports this.

A new job kind is one ``register`` line at the bottom (docs/CONTRIBUTING.md).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable

from metricflow.errors import MetricflowError, check_memory
from metricflow.estimates import Estimate
from metricflow.progress import Progress

__all__ = ["JobKind", "register", "job_kind", "kinds", "generation", "estimate", "check_estimate"]


@dataclass(frozen=True)
class JobKind:
    """What runs for a config type.

    Attributes:
      function: ``function(config, progress) -> result``, pure; ``progress(step, total,
        message)`` reports progress and raises ``JobCancelled`` once the job is cancelled.
      schema_version: bump it when the result type or its meaning changes; cached results of
        other versions are then recomputed.
      estimate: ``estimate(config) -> Estimate``, or None for "cheap".
      result_type: the type of the result; a stored result of another type is corrupt.
        None: not checked.
      fan_out: the function also takes ``map_configs`` (``metricflow.progress.ConfigMap``):
        the runner passes one that runs each of its configs as a cached job.
    """

    function: Callable[[Any, Progress], Any]
    schema_version: int
    estimate: Callable[[Any], Estimate] | None = None
    result_type: type | None = None
    fan_out: bool = False


_KINDS: dict[type, JobKind] = {}
_GENERATION = [0]  # bumped by every register call


def kinds() -> dict:
    """A copy of the table: config type -> JobKind."""
    return dict(_KINDS)


def generation() -> int:
    """A number that changes whenever a kind is registered (for caches of the table)."""
    return _GENERATION[0]


def _return_type(function) -> type | None:
    """The class in ``function``'s return annotation (``-> FlowResult``), else None."""
    try:
        hint = typing.get_type_hints(function).get("return")
    except Exception:  # noqa: BLE001  (an annotation that does not resolve: unchecked)
        return None
    hint = typing.get_origin(hint) or hint
    return hint if isinstance(hint, type) and hint is not object else None


def register(config_type: type, function, schema_version: int, estimate=None, result_type=None, fan_out=False) -> None:
    """Run ``function`` for configs of ``config_type``; registering again replaces the kind.

    ``function`` must be importable by name (a module-level function) so a spawned worker
    can unpickle it. ``result_type`` defaults to the class in ``function``'s return
    annotation. The built-in kinds are registered at the bottom of this module.
    """
    if not (dataclasses.is_dataclass(config_type) and config_type.__dataclass_params__.frozen):
        raise MetricflowError(f"a job config must be a frozen dataclass, got {config_type.__name__}")
    _KINDS[config_type] = JobKind(function, int(schema_version), estimate, result_type or _return_type(function), bool(fan_out))
    _GENERATION[0] += 1


def job_kind(config) -> JobKind:
    """The registered kind for ``config``'s type."""
    kind = _KINDS.get(type(config))
    if kind is None:
        known = ", ".join(sorted(t.__name__ for t in _KINDS)) or "none"
        raise MetricflowError(
            f"no job kind is registered for {type(config).__name__}; registered: {known}. "
            "Call metricflow.jobs.register(ConfigType, function, schema_version)."
        )
    return kind


def estimate(config) -> Estimate:
    """Expected (seconds, bytes) of the job for ``config``, before launching it."""
    kind = job_kind(config)
    return kind.estimate(config) if kind.estimate else Estimate(0.0, 0)


def check_estimate(config) -> Estimate:
    """The estimate, after refusing a job whose memory estimate exceeds what is free."""
    cost = estimate(config)
    check_memory(cost.bytes, f"this {type(config).__name__} job")
    return cost



# ---- the built-in kinds ------------------------------------------------------------------

from metricflow.flows.classical import CLASSICAL_SCHEMA, ClassicalFlowConfig, estimate_classical_flow, run_classical_flow  # noqa: E402
from metricflow.flows.donaldson import DONALDSON_SCHEMA, DonaldsonConfig, estimate_donaldson, run_donaldson  # noqa: E402
from metricflow.flows.flow import SCHEMA_VERSION as FLOW_SCHEMA, FlowConfig, estimate_flow, run_flow  # noqa: E402
from metricflow.geometry.points import SampleConfig  # noqa: E402
from metricflow.geometry.reference import KAPPA_SCHEMA, KappaConfig, estimate_kappa_config, run_kappa  # noqa: E402
from metricflow.networks.family import FAMILY_SCHEMA, FamilyTrainConfig, estimate_family, train_family  # noqa: E402
from metricflow.networks.models import TRAIN_SCHEMA, TrainConfig, estimate_train, train  # noqa: E402
from metricflow.studies import clustering, feature_learning as fl, generalisation as gen, moduli, theory, tuning  # noqa: E402
from metricflow.studies.sample import SAMPLE_SCHEMA, estimate_sample, run_sample  # noqa: E402
from metricflow.studies.methods import METHODS_SCHEMA, MethodsConfig, estimate_methods, run_methods  # noqa: E402

register(KappaConfig, run_kappa, KAPPA_SCHEMA, estimate_kappa_config)
register(SampleConfig, run_sample, SAMPLE_SCHEMA, estimate_sample)
register(FlowConfig, run_flow, FLOW_SCHEMA, estimate_flow)
register(theory.TheoryConfig, theory.run_theory, theory.THEORY_SCHEMA, theory.estimate_theory)
register(gen.NoiseConfig, gen.run_noise, gen.NOISE_SCHEMA, gen.estimate_noise)
register(gen.ScalingConfig, gen.run_scaling, gen.SCALING_SCHEMA, gen.estimate_scaling)
register(tuning.TuneConfig, tuning.run_tune, tuning.TUNE_SCHEMA, tuning.estimate_tune, fan_out=True)
register(clustering.ClusterConfig, clustering.run_clustering, clustering.CLUSTER_SCHEMA, clustering.estimate_clustering)
register(clustering.ClusterFlowConfig, clustering.run_cluster_flow, clustering.CLUSTER_FLOW_SCHEMA,
         clustering.estimate_cluster_flow)
register(TrainConfig, train, TRAIN_SCHEMA, estimate_train)
register(FamilyTrainConfig, train_family, FAMILY_SCHEMA, estimate_family)
register(fl.WidthSweepConfig, fl.run_width_sweep, fl.WIDTH_SCHEMA, fl.estimate_width_sweep, fan_out=True)
register(fl.TrainedKernelConfig, fl.run_trained_kernel, fl.TRAINED_KERNEL_SCHEMA, fl.estimate_trained_kernel)
register(DonaldsonConfig, run_donaldson, DONALDSON_SCHEMA, estimate_donaldson)
register(moduli.DonaldsonSweepConfig, moduli.run_donaldson_sweep, moduli.DONALDSON_SWEEP_SCHEMA,
         moduli.estimate_donaldson_sweep, fan_out=True)
register(MethodsConfig, run_methods, METHODS_SCHEMA, estimate_methods, fan_out=True)
register(ClassicalFlowConfig, run_classical_flow, CLASSICAL_SCHEMA, estimate_classical_flow)
