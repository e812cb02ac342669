"""The methods comparison's config: the presets, the pieces (one config of its own kind per
method, all on one shared set of fresh test points), the order they run in and their cost.
``metricflow.studies.methods`` runs them and builds the result; it re-exports these names."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from metricflow.constraints import SEED, Count, Flag, Points, Positive, validate
from metricflow.errors import ConfigTypeError, MetricflowError
from metricflow.estimates import Estimate
from metricflow.flows.classical import FLOWS as CLASSICAL_FLOWS
from metricflow.flows.classical import ClassicalFlowConfig, estimate_classical_flow, run_classical_flow
from metricflow.flows.donaldson import MAX_K, DonaldsonConfig, estimate_donaldson, run_donaldson
from metricflow.flows.flow import FlowConfig, estimate_flow, flow_from_options, run_flow
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.points import SampleConfig
from metricflow.kernels.base import stream_seed
from metricflow.networks.models import TrainConfig, estimate_train, train
from metricflow.studies.feature_learning import TrainedKernelConfig, estimate_trained_kernel, run_trained_kernel

__all__ = ["CLASSICAL_ORDER", "FAMILIES", "PRESETS", "RUN_ORDER", "TEST_STREAM", "WORKERS", "MethodsConfig",
           "classical_configs", "estimate_methods", "method_configs", "run_method", "run_order", "shared_test"]

# The seed stream (``stream_seed``) of the shared test points: no method samples from it.
TEST_STREAM = 7

# The kinds of series: fixed kernels (frozen-NTK flows), networks, Donaldson's balanced metrics,
# the classical flows of appendix B in Donaldson's algebraic family (their kernel moves with H)
# and in a fixed basis (a fixed kernel).
FAMILIES = ("donaldson", "kernel", "network", "classical", "fixed basis")

# The classical flows in the order they run (Calabi, fourth order, takes the most steps).
CLASSICAL_ORDER = ("ricci", "two-derivative", "calabi")

# Sizes of the presets. "quick" is the dashboard's landing page: under a minute on 2 idle
# cores with 2 warm workers (benchmarks/bench_methods.py --jobs; docs/METHODS.md). Its 2000
# shared test points bound the trained kernel's cost (its test rows are 2 x n_test / 250
# metric-NTK chunks); every method keeps the train points it had with 5000 test points.
# Its classical flow is the cheapest informative one: Kahler-Ricci in the invariant algebraic
# family at k = 3 (3 parameters), a few steps on a few thousand points (docs/METHODS.md).
# "full" is the size of the docs' table (tens of minutes): every classical flow in the
# algebraic family at k = 2 ... min(k_max, d - 1), and Kahler-Ricci in the fixed basis.
PRESETS = {
    "quick": dict(
        n_test=2000, k_max=4, donaldson_points=10_000, opt_steps=100, opt_points=2000,
        flow_train=1000, flow_steps=50, network_points=17_000, epochs=20, phi_points=3000, phi_epochs=10,
        trained_kernel=True, trained_kernel_points=200,
        classical_flows=("ricci",), classical_ks=(3,), classical_basis_ks=(), classical_points=3000,
        classical_steps=8, calabi_steps=80,
    ),
    "full": dict(
        n_test=20_000, k_max=5, donaldson_points=50_000, opt_steps=300, opt_points=5000,
        flow_train=2500, flow_steps=100, network_points=100_000, epochs=50, phi_points=40_000, phi_epochs=30,
        trained_kernel=True, trained_kernel_points=300,
        classical_flows=CLASSICAL_ORDER, classical_ks=(2, 3, 4), classical_basis_ks=(4,), classical_points=10_000,
        classical_steps=20, calabi_steps=120,
    ),
}


def _gaussian_flow(**options) -> FlowConfig:
    """The Gaussian kernel flow with a cutoff radius (sparse kernel, eq. 3.6).

    ``options`` are the FlowConfig fields of the series (sizes, seed, manifold) plus
    ``sigma`` (the kernel width) and ``radius`` (the cutoff, in (0, pi/2)).
    """
    return flow_from_options(kernel="gaussian", **options)


@dataclass(frozen=True)
class MethodsConfig:
    """The methods compared on one manifold. Validated on construction; computes nothing.

    Attributes:
      manifold: the Dwork hypersurface (default the Fermat quintic).
      n_test: the shared fresh test points every method measures sigma on (``shared_test``).
      seed: the seed of every method's points and initialisation.
      k_max: Donaldson degrees 1 ... k_max.
      donaldson_points: integration points of the T-operator.
      optimise: also the sigma-optimised H (Headrick-Nassar), opt_steps Adam steps on
        opt_points of the integration points.
      flow_train, flow_steps: train points and steps of each kernel flow (delta, Gaussian with
        a cutoff, ReLU NTK), all with table 1's learning rates.
      gaussian_sigma, gaussian_radius: the cutoff Gaussian's width (3.6) and radius. Table 1's
        sigma = 30 makes e^(-d / 2 sigma) nearly 1 within any cutoff: a ball kernel, whose
        truncation is not positive definite, and the flow diverges (docs/METHODS.md);
        sigma = 0.1 with radius 0.6 was the most accurate stable choice on the points of seed 1.
      network_points, epochs: points (network_points - n_test train points, plus the shared
        test points as validation) and epochs of the metric network (3 x 64, Adam).
      phi: include the phi network (Kahler, g_FS + d dbar phi), on phi_points points for
        phi_epochs epochs (its epochs cost ~17 times the metric network's per point).
      trained_kernel: include the flow with the metric network's metric-NTK frozen after
        training (TrainedKernelConfig), on trained_kernel_points train points (its kernel
        is dense 9N x 9N) and the shared test points.
      classical_flows, classical_ks: the classical flows of appendix B ("ricci", "calabi",
        "two-derivative"; ``ClassicalFlowConfig``) run in Donaldson's algebraic family with
        invariant matrices, one piece per flow and degree k (k < d); () for none.
      classical_basis_ks: degrees of the Kahler-Ricci flow in the fixed basis (a fixed
        kernel), one piece each; () for none.
      classical_points: the flow points of each classical piece (its own seed stream).
      classical_steps, calabi_steps: steps of Kahler-Ricci and the two-derivative flow, and of
        Calabi (a fourth-order flow: its stable step is ~pi lam times smaller), each at its
        default step ``default_dt``.
    """

    manifold: Manifold = field(default_factory=Manifold)
    n_test: int = 5000
    seed: int = 0
    k_max: int = 4
    donaldson_points: int = 10_000
    optimise: bool = True
    opt_steps: int = 100
    opt_points: int = 2000
    flow_train: int = 1000
    flow_steps: int = 50
    gaussian_sigma: float = 0.1
    gaussian_radius: float = 0.6
    network_points: int = 20_000
    epochs: int = 20
    phi: bool = True
    phi_points: int = 6000
    phi_epochs: int = 10
    trained_kernel: bool = True
    trained_kernel_points: int = 200
    classical_flows: tuple = ()
    classical_ks: tuple = ()
    classical_basis_ks: tuple = ()
    classical_points: int = 3000
    classical_steps: int = 8
    calabi_steps: int = 80

    constraints: ClassVar[dict] = {
        "n_test": Points("test points"),
        "seed": SEED,
        "k_max": Count("k max", maximum=MAX_K),
        "donaldson_points": Count("Donaldson points", minimum=100),
        "optimise": Flag("optimise"),
        "opt_steps": Count("opt_steps", maximum=100_000),
        "opt_points": Count("opt_points", minimum=10),
        "flow_train": Points("flow train points"),
        "flow_steps": Count("flow steps", maximum=100_000),
        "gaussian_sigma": Positive("gaussian sigma"),
        "gaussian_radius": Positive("gaussian radius", below=math.pi / 2, hint="FS distances are at most pi/2"),
        "network_points": Count("network points", minimum=20),
        "epochs": Count("epochs", maximum=10_000),
        "phi": Flag("phi"),
        "phi_points": Count("phi points", minimum=20),
        "phi_epochs": Count("phi epochs", maximum=10_000),
        "trained_kernel": Flag("trained_kernel"),
        "trained_kernel_points": Points("trained kernel points", maximum=3000),
        "classical_points": Points("classical flow points"),
        "classical_steps": Count("classical flow steps", maximum=100_000),
        "calabi_steps": Count("Calabi flow steps", maximum=100_000),
    }

    def __post_init__(self):
        if not isinstance(self.manifold, Manifold):
            raise ConfigTypeError(f"manifold must be a Manifold, got {type(self.manifold).__name__}")
        validate(self)
        for name in ("classical_flows", "classical_ks", "classical_basis_ks"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)):
                raise ConfigTypeError(f"{name} must be a tuple, got {type(value).__name__}")
            object.__setattr__(self, name, tuple(value))
        unknown = [f for f in self.classical_flows if f not in CLASSICAL_FLOWS]
        if unknown:
            raise MetricflowError(
                f"unknown classical flow {unknown[0]!r}; expected some of {', '.join(CLASSICAL_FLOWS)}")
        for name in ("classical_ks", "classical_basis_ks"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise MetricflowError(
                    f"{name.replace('_', ' ')} {getattr(self, name)} repeats a degree; give each once")
        for name in ("network_points",) + (("phi_points",) if self.phi else ()):
            if getattr(self, name) <= self.n_test + 10:
                raise MetricflowError(
                    f"{name.replace('_', ' ')} ({getattr(self, name):,}) must exceed the {self.n_test:,} test points "
                    "(they are the networks' validation split) by at least 10; use more points or fewer test points"
                )
        self.configs()  # validates every method's config, with its own messages

    @classmethod
    def preset(cls, name: str = "quick", **changes) -> "MethodsConfig":
        """The config of preset ``name`` ("quick" or "full"), with ``changes`` applied."""
        if name not in PRESETS:
            raise MetricflowError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **changes})

    def configs(self) -> list:
        """The ordinary configs of every series, in the order of ``MethodsResult.series``'s
        sources: Donaldson, the flows (delta, Gaussian with cutoff, ReLU NTK), the networks
        (metric, phi), the trained kernel, the classical flows (algebraic, then fixed basis)."""
        return method_configs(self)

    @property
    def n_series(self) -> int:
        """How many series the result holds (Donaldson gives two with ``optimise``)."""
        return len(self.configs()) + int(self.optimise)


def shared_test(config: MethodsConfig) -> SampleConfig:
    """The one sample of test points of every method: n_test points of seed stream
    TEST_STREAM of the config's seed."""
    return SampleConfig(config.manifold, config.n_test, stream_seed(config.seed, TEST_STREAM, 0))


def method_configs(config: MethodsConfig) -> list:
    """The DonaldsonConfig, FlowConfigs, TrainConfigs and TrainedKernelConfig of ``config``,
    each measuring on ``shared_test(config)``."""
    c = config
    m = c.manifold
    test = shared_test(c)
    out: list = [DonaldsonConfig(m, c.k_max, c.donaldson_points, c.n_test, c.seed, optimise=c.optimise,
                                 opt_steps=c.opt_steps, opt_points=min(c.opt_points, c.donaldson_points), test=test)]
    sizes = dict(n_train=c.flow_train, n_test=c.n_test, steps=c.flow_steps, seed=c.seed, manifold=m,
                 coordinates="all", test=test)
    out.append(FlowConfig(kernel="delta", **sizes))
    out.append(_gaussian_flow(sigma=c.gaussian_sigma, radius=c.gaussian_radius, **sizes))
    out.append(FlowConfig(kernel="relu-ntk", **sizes))
    out.append(_network(c, "metric", test))
    if c.phi:
        out.append(_network(c, "phi", test))
    if c.trained_kernel:
        out.append(TrainedKernelConfig(train=_network(c, "metric", test), n_train=c.trained_kernel_points,
                                       n_test=c.n_test, steps=c.flow_steps, seed=c.seed + 1, test=test))
    return out + classical_configs(c, test)


def classical_configs(c: MethodsConfig, test: SampleConfig) -> list:
    """The ClassicalFlowConfigs of ``c``: per degree (ascending) its algebraic flows in
    CLASSICAL_ORDER, then the fixed-basis Kahler-Ricci flows; each measures on ``test`` and
    samples its flow points from the comparison's seed."""
    sizes = dict(n_points=c.classical_points, n_test=c.n_test, seed=c.seed, symmetry="invariant", test=test)
    out = [ClassicalFlowConfig(c.manifold, space="algebraic", k=k, flow=flow,
                               n_steps=c.calabi_steps if flow == "calabi" else c.classical_steps, **sizes)
           for k in sorted(c.classical_ks) for flow in CLASSICAL_ORDER if flow in c.classical_flows]
    out += [ClassicalFlowConfig(c.manifold, space="basis", k=k, flow="ricci", n_steps=c.classical_steps, **sizes)
            for k in sorted(c.classical_basis_ks)]
    return out


# How many workers the estimate assumes run the pieces at once (the local pool's default).
WORKERS = 2

# The order the pieces are handed to map_configs (a worker pool takes them in this order):
# the delta flow first (about a second: the first curve), then the trained kernel (the
# longest: it starts at once on the second worker and ends last), then the others, the
# cheap ones first, so that Donaldson, a kernel flow and a network are in early; the
# classical flows last (a few seconds in the quick preset, where the free worker takes it;
# minutes each in the full one, cheapest degree first).
RUN_ORDER = ("delta", "trained kernel", "gaussian", "metric", "donaldson", "relu-ntk", "phi", "classical")


def _order_name(config) -> str:
    if isinstance(config, DonaldsonConfig):
        return "donaldson"
    if isinstance(config, FlowConfig):
        return config.kernel.name
    if isinstance(config, TrainConfig):
        return config.model
    if isinstance(config, ClassicalFlowConfig):
        return "classical"
    return "trained kernel"


def run_order(configs: list) -> list[int]:
    """The indices of ``configs`` (``method_configs``' order) in ``RUN_ORDER`` (unknown last)."""
    rank = {name: i for i, name in enumerate(RUN_ORDER)}
    return sorted(range(len(configs)), key=lambda i: (rank.get(_order_name(configs[i]), len(RUN_ORDER)), i))


def _network(c: MethodsConfig, model: str, test: SampleConfig) -> TrainConfig:
    """The network of ``model``: the shared test points ``test`` are its validation set."""
    n, epochs = (c.network_points, c.epochs) if model == "metric" else (c.phi_points, c.phi_epochs)
    return TrainConfig(model=model, n_points=n, epochs=epochs, val_fraction=c.n_test / n, ricci=False,
                       seed=c.seed, manifold=c.manifold, test=test)


def run_method(config):
    """Run one method's config: the function of its kind (the ``map_configs`` function)."""
    if isinstance(config, DonaldsonConfig):
        return run_donaldson(config)
    if isinstance(config, FlowConfig):
        return run_flow(config)
    if isinstance(config, TrainConfig):
        return train(config)
    if isinstance(config, TrainedKernelConfig):
        return run_trained_kernel(config)
    if isinstance(config, ClassicalFlowConfig):
        return run_classical_flow(config)
    raise MetricflowError(f"no method runs a {type(config).__name__}")


def _estimate_one(config) -> Estimate:
    if isinstance(config, DonaldsonConfig):
        return estimate_donaldson(config)
    if isinstance(config, FlowConfig):
        return estimate_flow(config)
    if isinstance(config, TrainConfig):
        return estimate_train(config)
    if isinstance(config, ClassicalFlowConfig):
        return estimate_classical_flow(config)
    return estimate_trained_kernel(config)


def estimate_methods(config: MethodsConfig, workers: int = WORKERS) -> Estimate:
    """Wall seconds with ``workers`` workers taking the pieces in ``RUN_ORDER`` (each the next
    piece as it frees; workers=1: the sum, one after another), and the largest of the
    pieces' memory estimates (each runs in its own worker)."""
    configs = config.configs()
    parts = [_estimate_one(c) for c in configs]
    free = [0.0] * max(1, int(workers))
    for i in run_order(configs):
        j = free.index(min(free))
        free[j] += parts[i].seconds
    return Estimate(float(max(free)), int(max(p.bytes for p in parts)))
