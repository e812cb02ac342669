"""Every method on one axis: Donaldson's balanced metrics, the kernel flows and the networks.

The paper's argument (fig. 3) is one comparison: fixed kernels (the frozen-NTK flows) against
finite networks that learn features, with Donaldson's balanced metrics (introduction) as the
classical discrete flow. ``run_methods`` runs each method as an ordinary config of its own
kind, all through one ``map_configs`` call (in the job runner: cached jobs, in parallel, on
the local pool or a Dask cluster), and collects sigma against wall time and against the
training points used:

* Donaldson k = 1 ... k_max, balanced and sigma-optimised H (``DonaldsonConfig``): one point
  per k (``DonaldsonResult.sigma`` / ``opt_sigma``);
* the kernel flows (``FlowConfig``): delta, Gaussian with a cutoff radius, ReLU NTK, one point
  per step (``FlowResult.test_sigma``);
* the trained kernel (``TrainedKernelConfig``): the flow with the network's metric-NTK frozen
  after training, per step (``trained_test_sigma``);
* the metric and phi networks (``TrainConfig``): one point per epoch, on the points that are
  their validation set (``TrainResult.val_sigma``), never trained on.

Every sigma is the reference-kappa sigma (B.11) with the manifold's one reference kappa
(``reference_kappa``), with its standard error, on ONE set of fresh test points
(``shared_test``: n_test points of their own seed stream, which no method trains on). Each
config names that sample (its ``test`` field), so each job draws the identical points (the
trained kernel too: its dense 9N x 9N kernel limits only its train points, the test points'
rows are computed in chunks). The flows use the covariant update, which acts on the
chart-independent eta, so their train points lie in every chart (``coordinates="all"``)
like the others' and need no common chart (section 3.1 needs one for the euclidean update).
``run_methods`` checks that every method's sigma of g_FS on its test points is the same.

Example:
  >>> result = run_methods(MethodsConfig.preset("quick"))
  >>> result.table()            # best sigma, time, memory, points, parameters per series
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar, Optional

import numpy as np

from metricflow.constraints import SEED, Count, Flag, Points, Positive, validate
from metricflow.errors import ConfigTypeError, MetricflowError
from metricflow.estimates import Estimate
from metricflow.flows.donaldson import (
    MAX_K, DonaldsonConfig, DonaldsonResult, estimate_donaldson, run_donaldson,
)
from metricflow.flows.flow import FlowConfig, FlowResult, estimate_flow, flow_from_options, run_flow
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.measures import measure_sigma
from metricflow.geometry.points import SampleConfig, first_points
from metricflow.geometry.reference import reference_kappa
from metricflow.kernels.base import stream_seed
from metricflow.networks.models import TrainConfig, TrainResult, estimate_train, train
from metricflow.progress import ConfigMap, Progress, no_progress, serial_map
from metricflow.studies.feature_learning import (
    TrainedKernelConfig, TrainedKernelResult, estimate_trained_kernel, run_trained_kernel,
)

__all__ = [
    "METHODS_SCHEMA",
    "PRESETS",
    "MethodsConfig",
    "MethodsResult",
    "Series",
    "method_configs",
    "run_method",
    "run_methods",
    "estimate_methods",
    "FAMILIES",
    "FLOW_NAMES",
    "TRAINED",
    "TEST_STREAM",
    "shared_test",
]

# Bump when MethodsResult's fields or their meaning change: cached results are recomputed.
# 2: every method measures on one shared set of test points.
METHODS_SCHEMA = 2

# The seed stream (``stream_seed``) of the shared test points: no method samples from it.
TEST_STREAM = 7

# The kinds of series: fixed kernels (frozen-NTK flows), networks, Donaldson's balanced metrics.
FAMILIES = ("donaldson", "kernel", "network")

# Sizes of the presets. "quick" runs in about 3 minutes on 2 cores, one job after another
# (benchmarks/bench_methods.py); "full" is the size of the docs' table (tens of minutes).
PRESETS = {
    "quick": dict(
        n_test=5000, k_max=4, donaldson_points=10_000, opt_steps=100, opt_points=2000,
        flow_train=1000, flow_steps=50, network_points=20_000, epochs=20, phi_points=6000, phi_epochs=10,
        trained_kernel=True, trained_kernel_points=200,
    ),
    "full": dict(
        n_test=20_000, k_max=5, donaldson_points=50_000, opt_steps=300, opt_points=5000,
        flow_train=2500, flow_steps=100, network_points=100_000, epochs=50, phi_points=40_000, phi_epochs=30,
        trained_kernel=True, trained_kernel_points=300,
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
    }

    def __post_init__(self):
        if not isinstance(self.manifold, Manifold):
            raise ConfigTypeError(f"manifold must be a Manifold, got {type(self.manifold).__name__}")
        validate(self)
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
        (metric, phi), the trained kernel."""
        return method_configs(self)


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
    return out


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
    raise MetricflowError(f"no method runs a {type(config).__name__}")


def _estimate_one(config) -> Estimate:
    if isinstance(config, DonaldsonConfig):
        return estimate_donaldson(config)
    if isinstance(config, FlowConfig):
        return estimate_flow(config)
    if isinstance(config, TrainConfig):
        return estimate_train(config)
    return estimate_trained_kernel(config)


def estimate_methods(config: MethodsConfig) -> Estimate:
    """The sum of the methods' estimated seconds (as if run one after another) and the
    largest of their memory estimates (each runs in its own worker)."""
    parts = [_estimate_one(c) for c in config.configs()]
    return Estimate(float(sum(p.seconds for p in parts)), int(max(p.bytes for p in parts)))


# ---- the result ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Series:
    """sigma of one method against time and points. P measurements (k, step or epoch).

    Attributes:
      name: the label ("Donaldson balanced", "delta flow", "metric network", ...).
      family: "donaldson", "kernel" (fixed and trained kernels) or "network".
      step: (P,) int64, what each measurement follows: k (Donaldson), the flow step, the epoch.
      seconds: (P,) float64, wall time spent on the method up to the measurement (see
        ``run_methods`` for what each result records).
      points: (P,) int64, training-point visits up to the measurement (see ``run_methods``).
      sigma, sigma_se: (P,) float64, reference-kappa sigma on fresh points and its error.
      sigma_self: (P,) float64, the self-normalised sigma of the same metric (NaN where the
        result does not record it).
      train_points: distinct training points the method used.
      parameters: what the method adjusts: real entries of H (N_k^2 at the best k), one scalar
        per train point (covariant kernel flows), 9 per train point (the trained kernel's
        component-mixing flow), the network's parameters.
      memory_bytes: peak memory: the job's estimate (no result records its peak).
      memory_estimated: True: memory_bytes is an estimate, not a measurement.
      test_points: the shared test points sigma was measured on.
    """

    name: str
    family: str
    step: np.ndarray
    seconds: np.ndarray
    points: np.ndarray
    sigma: np.ndarray
    sigma_se: np.ndarray
    sigma_self: np.ndarray
    train_points: int
    parameters: int
    memory_bytes: int
    memory_estimated: bool
    test_points: int

    @property
    def best(self) -> int:
        """Index of the lowest finite sigma (-1 if none is finite)."""
        finite = np.isfinite(self.sigma)
        return int(np.nanargmin(np.where(finite, self.sigma, np.nan))) if finite.any() else -1

    def late_change(self) -> float:
        """sigma at the last measurement over sigma half-way: 1 - this is the fraction by
        which the second half of the run lowered sigma (NaN with fewer than 2 measurements)."""
        s = self.sigma[np.isfinite(self.sigma)]
        if s.size < 2:
            return float("nan")
        return float(s[-1] / s[(s.size - 1) // 2])


@dataclass(frozen=True, eq=False)
class MethodsResult:
    """The methods compared on one manifold with one reference kappa.

    Attributes:
      config: the MethodsConfig.
      series: the Series, in the order Donaldson balanced, (optimised), delta, Gaussian,
        ReLU NTK, metric network, (phi network), (trained kernel).
      kappa, kappa_se, kappa_exact: the reference kappa every method measured against.
      sigma_fs, sigma_fs_se: sigma of g_FS on the shared test points (every series starts
        there: Donaldson k = 1, a flow's step 0, a network's epoch 0 up to its init).
      seconds: the sum of the methods' job times (they may have run in parallel).
    """

    config: MethodsConfig
    series: tuple
    kappa: float
    kappa_se: float
    kappa_exact: bool
    sigma_fs: float
    sigma_fs_se: float
    seconds: float
    schema_version: int = METHODS_SCHEMA

    def by_name(self, name: str) -> Series:
        """The series called ``name``."""
        for s in self.series:
            if s.name == name:
                return s
        raise MetricflowError(f"no series {name!r}; there are {', '.join(s.name for s in self.series)}")

    def table(self) -> list[dict]:
        """One JSON-ready row per series: best sigma with its error, and where it was reached
        (step, seconds, points), the training points, parameters and peak memory."""
        rows = []
        for s in self.series:
            i = s.best
            f = lambda a: None if i < 0 or not np.isfinite(a[i]) else float(a[i])  # noqa: E731
            rows.append({
                "method": s.name, "family": s.family, "best_sigma": f(s.sigma), "best_sigma_se": f(s.sigma_se),
                "at": None if i < 0 else int(s.step[i]), "seconds": f(s.seconds),
                "points": None if i < 0 else int(s.points[i]), "train_points": s.train_points,
                "test_points": s.test_points, "parameters": s.parameters,
                "memory_mib": s.memory_bytes / 2**20, "memory_estimated": s.memory_estimated,
                "final_sigma": float(s.sigma[-1]) if len(s.sigma) else None,
                "late_change": _none(s.late_change()),
            })
        return rows

    def verdict(self) -> dict:
        """The fig. 3 comparison in numbers, JSON-ready.

        ``kernel_late_change`` and ``network_late_change``: over the fixed kernel flows (delta,
        Gaussian, ReLU NTK) and the networks, the smallest and largest ``Series.late_change``
        (sigma last / sigma half-way) and the series they belong to; the best sigma of each
        family with its series.
        """
        fixed = [s for s in self.series if s.family == "kernel" and s.name != TRAINED]
        nets = [s for s in self.series if s.family == "network"]

        def best(group):
            if not group:
                return None
            s = min(group, key=lambda s: s.sigma[s.best] if s.best >= 0 else np.inf)
            return {"method": s.name, "sigma": _none(s.sigma[s.best]), "sigma_se": _none(s.sigma_se[s.best])}

        def changes(group):
            vals = sorted((s.late_change(), s.name) for s in group if np.isfinite(s.late_change()))
            if not vals:
                return None
            return {"min": vals[0][0], "max": vals[-1][0], "min_method": vals[0][1], "max_method": vals[-1][1]}

        return {"fixed_kernels": best(fixed), "networks": best(nets), "kernel_late_change": changes(fixed),
                "network_late_change": changes(nets),
                "donaldson": best([s for s in self.series if s.family == "donaldson"])}

    def summary(self) -> dict:
        """JSON-ready: the config's sizes, kappa, sigma_FS, the table, the verdict and the
        series' arrays (the output of ``metricflow methods --json``)."""
        c = self.config
        arr = lambda a: [_none(v) for v in np.asarray(a, dtype=float)]  # noqa: E731
        return {
            "manifold": c.manifold.name, "psi": [c.manifold.psi.real, c.manifold.psi.imag], "seed": c.seed,
            "test_points": c.n_test, "kappa": self.kappa, "kappa_se": self.kappa_se, "kappa_exact": self.kappa_exact,
            "sigma_fs": self.sigma_fs, "sigma_fs_se": self.sigma_fs_se, "seconds": self.seconds,
            "table": self.table(), "verdict": self.verdict(),
            "series": [{"method": s.name, "family": s.family, "step": [int(v) for v in s.step],
                        "seconds": arr(s.seconds), "points": [int(v) for v in s.points],
                        "sigma": arr(s.sigma), "sigma_se": arr(s.sigma_se)} for s in self.series],
        }


TRAINED = "trained kernel"


def _none(v) -> Optional[float]:
    v = float(v)
    return v if math.isfinite(v) else None


def _nan_array(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _donaldson_series(r: DonaldsonResult, memory: int) -> list[Series]:
    """Balanced: per k, seconds = sections + balancing (``DonaldsonResult.seconds``), points =
    iterations x integration points; optimised: plus the Adam time and steps x opt points."""
    out = []
    visits = r.iterations * r.n_points
    params = r.n_sections**2  # a hermitian N_k x N_k matrix has N_k^2 real entries
    common = dict(step=r.ks.astype(np.int64), train_points=int(r.n_points), memory_bytes=memory,
                  memory_estimated=True, test_points=int(r.n_test))
    s = Series("Donaldson balanced", "donaldson", seconds=r.seconds.astype(float), points=visits.astype(np.int64),
               sigma=r.sigma, sigma_se=r.sigma_se, sigma_self=r.sigma_self, parameters=0, **common)
    out.append(replace(s, parameters=int(params[s.best]) if s.best >= 0 else 0))
    if r.config.optimise:
        c = r.config
        s = Series("Donaldson σ-optimised", "donaldson", seconds=(r.seconds + r.opt_seconds).astype(float),
                   points=(visits + c.opt_steps * c.opt_points).astype(np.int64), sigma=r.opt_sigma,
                   sigma_se=r.opt_sigma_se, sigma_self=r.opt_sigma_self, parameters=0, **common)
        out.append(replace(s, parameters=int(params[s.best]) if s.best >= 0 else 0))
    return out


FLOW_NAMES = {"delta": "delta flow", "gaussian": "Gaussian flow (cutoff)", "relu-ntk": "ReLU-NTK flow"}


def _flow_series(r: FlowResult, memory: int) -> Series:
    """Per step s = 1 ... steps_done: sigma on the test points (``FlowResult.test_sigma``);
    seconds = the kernel's time plus s equal shares of the rest of the job (FlowResult
    records only ``kernel_seconds`` and the total); points = s x train points (each step sums
    over them)."""
    c = r.config
    done = int(r.steps_done)
    steps = np.arange(1, done + 1, dtype=np.int64)
    rest = max(r.seconds - r.kernel_seconds, 0.0)
    n = c.manifold.dim
    return Series(
        FLOW_NAMES.get(c.kernel.name, f"{c.kernel.name} flow"), "kernel", step=steps,
        seconds=r.kernel_seconds + rest * steps / max(done, 1), points=steps * c.n_train,
        sigma=r.test_sigma[1 : done + 1], sigma_se=r.test_sigma_se[1 : done + 1],
        sigma_self=r.test_sigma_self[1 : done + 1], train_points=c.n_train,
        parameters=c.n_train * (1 if c.update == "covariant" else n * n),
        memory_bytes=memory, memory_estimated=True, test_points=c.n_test,
    )


def _network_series(r: TrainResult, memory: int) -> Series:
    """Per epoch e = 1 ... epochs: sigma on the validation points (``TrainResult.val_sigma``,
    held out, never trained on); seconds = training time before the record
    (``train_seconds``, optimizer steps only); points = e x train points."""
    c = r.config
    n_train = c.n_points - c.n_val
    epochs = np.arange(1, c.epochs + 1, dtype=np.int64)
    return Series(
        f"{c.model} network", "network", step=epochs, seconds=r.train_seconds[1:].astype(float),
        points=epochs * n_train, sigma=r.val_sigma[1:], sigma_se=r.val_sigma_se[1:],
        sigma_self=r.val_sigma_self[1:], train_points=n_train, parameters=int(r.n_params),
        memory_bytes=memory, memory_estimated=True, test_points=c.n_val,
    )


def _trained_kernel_series(r: TrainedKernelResult, memory: int) -> Series:
    """Per step s: sigma on the flow's fresh test points with the metric-NTK frozen after
    training (``trained_test_sigma``); seconds = the whole job at every step (training and
    the kernel are all but its entire cost, and only the total is recorded); points = the
    network's epochs x train points plus s x flow train points."""
    c = r.config
    t = c.train
    valid = np.flatnonzero(np.isfinite(r.trained_test_sigma))
    valid = valid[valid > 0]
    net_visits = t.epochs * (t.n_points - t.n_val)
    return Series(
        TRAINED, "kernel", step=valid.astype(np.int64), seconds=np.full(valid.size, float(r.seconds)),
        points=(net_visits + valid * c.n_train).astype(np.int64), sigma=r.trained_test_sigma[valid],
        sigma_se=r.trained_test_sigma_se[valid], sigma_self=r.trained_test_sigma_self[valid],
        train_points=int(t.n_points - t.n_val + c.n_train), parameters=9 * c.n_train,
        memory_bytes=memory, memory_estimated=True, test_points=c.n_test,
    )


def _job_seconds(r) -> float:
    return float(getattr(r, "total_seconds", None) or r.seconds)


def _start_sigma(r) -> float:
    """sigma of g_FS on the test points of result ``r`` (the first measurement of a flow)."""
    if isinstance(r, FlowResult):
        return float(r.test_sigma[0])
    if isinstance(r, TrainedKernelResult):
        return float(r.initial_test_sigma[0])
    return float(r.sigma_fs)  # DonaldsonResult, TrainResult


def _check_shared_points(config: MethodsConfig, configs: list, results: list) -> None:
    """Check that every method measured on the shared test points: its sigma of g_FS there
    equals sigma of g_FS computed here from ``shared_test(config)``."""
    pts = first_points(shared_test(config), config.n_test)
    expected = measure_sigma(pts.g_fs, pts.omega_sq, pts.weights, reference_kappa(config.manifold)).sigma
    for c, r in zip(configs, results):
        got = _start_sigma(r)
        if not math.isclose(got, expected, rel_tol=1e-9):
            raise MetricflowError(
                f"{type(c).__name__} measured sigma of g_FS {got:.6g} on its test points, not the shared points' "
                f"{expected:.6g}: it did not measure on the shared test points; rerun without the cache"
            )


def run_methods(config: MethodsConfig, progress: Optional[Progress] = None,
                map_configs: ConfigMap = serial_map) -> MethodsResult:
    """Run every method of ``config`` and put them on one sigma-time and sigma-points axis.

    All configs go through one ``map_configs(run_method, configs)`` call. What each series
    records (``Series``), from the fields its result has:

    * Donaldson: per k, sigma on its fresh test points (``DonaldsonResult.sigma``,
      ``opt_sigma``); seconds: sections and balancing (plus the Adam steps); points: the
      T-operator iterations x integration points (plus Adam steps x opt points).
    * kernel flows: per step, ``FlowResult.test_sigma``; seconds: the kernel's time plus equal
      shares of the rest per step; points: steps x train points.
    * networks: per epoch, ``TrainResult.val_sigma`` on the held-out validation points;
      seconds: ``train_seconds``; points: epochs x train points.
    * trained kernel: per step, ``TrainedKernelResult.trained_test_sigma``; seconds: the
      whole job; points: the network's point visits plus steps x flow train points.

    Args:
      config: the MethodsConfig.
      progress: optional ``progress(done, total, message)``.
      map_configs: runs the configs (``metricflow.progress.ConfigMap``); the job runner
        passes one that makes each a cached job, run in parallel.

    Returns:
      MethodsResult.

    Raises:
      MetricflowError: if the methods did not all measure against the same reference kappa,
        or not on the same test points (sigma of g_FS on them differs from the shared set's).
    """
    report = progress or no_progress
    configs = config.configs()
    report(0, 1, f"{len(configs)} methods")
    results = map_configs(run_method, configs)
    report(1, 1, "done")
    memory = [_estimate_one(c).bytes for c in configs]
    donaldson = results[0]
    kappas = {round(donaldson.kappa, 12)}
    series: list[Series] = []
    for r, mem in zip(results, memory):
        if isinstance(r, DonaldsonResult):
            series += _donaldson_series(r, mem)
        elif isinstance(r, FlowResult):
            kappas.add(round(float(r.kappa_ref), 12))
            series.append(_flow_series(r, mem))
        elif isinstance(r, TrainResult):
            kappas.add(round(float(r.kappa.value), 12))
            series.append(_network_series(r, mem))
        elif isinstance(r, TrainedKernelResult):
            series.append(_trained_kernel_series(r, mem))
        else:
            raise MetricflowError(f"unexpected result {type(r).__name__} among the methods")
    if len(kappas) != 1:
        raise MetricflowError(f"the methods measured against different reference kappas {sorted(kappas)}")
    _check_shared_points(config, configs, results)
    return MethodsResult(
        config=config, series=tuple(series), kappa=float(donaldson.kappa), kappa_se=float(donaldson.kappa_se),
        kappa_exact=bool(donaldson.kappa_exact), sigma_fs=float(donaldson.sigma_fs),
        sigma_fs_se=float(donaldson.sigma_fs_se), seconds=float(sum(_job_seconds(r) for r in results)),
    )

