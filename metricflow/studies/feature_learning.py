"""Feature learning at finite width (section 3.3): the width sweep and the trained-kernel flow.

* the width sweep (``run_width_sweep``): in NTK parameterisation and plain gradient
  descent, the relative kernel change |Theta_T - Theta_0| / |Theta_0| shrinks as the width
  grows (lazy learning, eq. 2.9-2.12), and with it what the network learns;
* the trained kernel (``run_trained_kernel``): the flow (2.8)/(3.5) with the full,
  component-mixing metric-NTK frozen at initialisation (eq. 2.11, the linearised model) or
  frozen after training, from g_FS on fresh train and test points.

Every sigma is measured against the manifold's reference kappa and reported with its
standard error; the self-normalised sigma is recorded beside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import numpy as np

from metricflow.constraints import SEED, Count, Points, Positive, validate
from metricflow.errors import ConfigTypeError, MetricflowError, check_count
from metricflow.estimates import Estimate
from metricflow.geometry.points import SampleConfig, check_test_sample, first_points, sample_points
from metricflow.networks.metric_ntk import TEST_CHUNK, _gain, metric_ntk, ntk_flow, spectrum
from metricflow.networks.models import TrainConfig, components_fn, estimate_train, model_input, train, train_partial
from metricflow.networks.outputs import take
from metricflow.progress import ConfigMap, Progress, map_each, no_progress, panel, publish, serial_map

__all__ = [
    "WIDTH_SCHEMA",
    "TRAINED_KERNEL_SCHEMA",
    "WidthSweepConfig",
    "WidthSweepResult",
    "run_width_sweep",
    "estimate_width_sweep",
    "TrainedKernelConfig",
    "TrainedKernelResult",
    "run_trained_kernel",
    "estimate_trained_kernel",
]

# Bump when a result's fields or their meaning change (2: reference kappa, standard errors,
# self-normalised sigma beside it).
WIDTH_SCHEMA = 2
TRAINED_KERNEL_SCHEMA = 2


# ---- width sweep -----------------------------------------------------------------------


@dataclass(frozen=True)
class WidthSweepConfig:
    """Train the same network at several widths in NTK parameterisation (section 2.2).

    Attributes:
      widths: hidden widths, increasing.
      model, depth, activation: as in TrainConfig (depth 2 keeps wide nets cheap).
      optimizer, lr: plain gradient descent ("sgd") is the setting of the lazy-learning
        theorem (eq. 2.9-2.12); Adam rescales updates per parameter and is not lazy.
      n_points, epochs, batch_size: the training data and length (batch None = TrainConfig's).
      ntk_probe: probe points for the kernel change.
      seed: one seed for all widths (same data, same probe).
    """

    widths: tuple = (32, 128, 512)
    model: str = "metric"
    depth: int = 2
    activation: Optional[str] = None
    optimizer: str = "sgd"
    lr: float = 1.0
    n_points: int = 10_000
    epochs: int = 5
    batch_size: Optional[int] = None
    ntk_probe: int = 20
    seed: int = 0

    # As in TrainConfig; the cross-field checks are TrainConfig's (train_config below).
    constraints: ClassVar[dict] = {
        **{name: TrainConfig.constraints[name]
           for name in ("model", "depth", "activation", "optimizer", "lr", "n_points", "epochs", "batch_size")},
        "ntk_probe": Count("NTK probe points", minimum=1, maximum=2000, why="the width sweep measures the kernel change on them"),
        "seed": SEED,
    }

    def __post_init__(self):
        validate(self)
        try:
            widths = tuple(int(check_count(w, "width", maximum=100_000)) for w in self.widths)
        except TypeError:
            raise ConfigTypeError(f"widths must be a list of integers, got {self.widths!r}") from None
        if not widths or len(set(widths)) != len(widths):
            raise MetricflowError(f"widths must be distinct integers, at least one, got {self.widths!r}")
        object.__setattr__(self, "widths", tuple(sorted(widths)))
        self.train_config(self.widths[0])  # the cross-field checks

    def train_config(self, width: int) -> TrainConfig:
        return TrainConfig(
            model=self.model, n_points=self.n_points, epochs=self.epochs, width=width, depth=self.depth,
            activation=self.activation, parameterization="ntk", optimizer=self.optimizer, lr=self.lr,
            batch_size=self.batch_size, readout_std=1.0, ntk_probe=self.ntk_probe, ntk_every=self.epochs or 1,
            ricci=False, seed=self.seed,
        )


@dataclass(frozen=True, eq=False)
class WidthSweepResult:
    """Per width W (in config.widths order):

    Attributes:
      kernel_change: (W,) |Theta_T - Theta_0|_F / |Theta_0|_F on the probe set.
      gain: (W,) validation sigma gain of the network.
      val_sigma, val_sigma_se: (W, E+1) validation sigma curves (reference kappa) and errors.
      val_sigma_self: (W, E+1) the same in the self-normalised convention.
      wasserstein_log: (W,) log-spectrum Wasserstein distance, epoch 0 to the last.
      n_params: (W,) parameters.
      seconds: (W,) time per width.
    """

    config: WidthSweepConfig
    widths: np.ndarray
    kernel_change: np.ndarray
    gain: np.ndarray
    val_sigma: np.ndarray
    val_sigma_se: np.ndarray
    val_sigma_self: np.ndarray
    wasserstein_log: np.ndarray
    n_params: np.ndarray
    seconds: np.ndarray
    schema_version: int = WIDTH_SCHEMA

    def summary(self) -> dict:
        return {
            "widths": [int(w) for w in self.widths],
            "kernel_change": [float(v) for v in self.kernel_change],
            "gain": [float(v) for v in self.gain],
            "val_sigma_final": [float(v[-1]) for v in self.val_sigma],
            "val_sigma_final_se": [float(v[-1]) for v in self.val_sigma_se],
            "val_sigma_self_final": [float(v[-1]) for v in self.val_sigma_self],
            "wasserstein_log": [float(v) for v in self.wasserstein_log],
            "n_params": [int(v) for v in self.n_params],
            "seconds": [float(v) for v in self.seconds],
        }


def run_width_sweep(
    config: WidthSweepConfig, progress: Optional[Progress] = None, map_configs: ConfigMap = serial_map
) -> WidthSweepResult:
    """Train at each width (NTK parameterisation) and measure how much the metric-NTK moved.

    Lazy learning (eq. 2.9-2.12): as the width grows the kernel change shrinks (~1/sqrt(W)
    for gradient descent), so the network approaches its linearised model (2.10).

    Each width is one TrainConfig, run by ``map_configs``: in the job runner each is a
    cached job, run in parallel on the store's executor (worker processes, or a Dask
    cluster), and a rerun reuses the widths already trained.
    """
    report = progress or no_progress
    report(0, 1, f"training at {len(config.widths)} widths")
    done = {}

    def partial() -> dict:
        widths = sorted(done)
        return {"panels": [
            panel("validation σ per epoch", "epoch", "σ",
                  {f"width {w}": (range(len(done[w].val_sigma)), done[w].val_sigma) for w in widths}, log_y=True),
            panel("kernel change per width", "width", "|Θ_T - Θ_0| / |Θ_0|",
                  {"kernel change": (widths, [done[w].ntk_change[-1] for w in widths])}, log_y=True),
        ]}

    def each(i: int, result) -> None:
        done[config.widths[i]] = result
        publish(progress, partial)

    results = map_each(map_configs, train, [config.train_config(w) for w in config.widths], each)
    report(1, 1, "done")
    return WidthSweepResult(
        config=config,
        widths=np.asarray(config.widths, dtype=np.int64),
        kernel_change=np.array([r.ntk_change[-1] for r in results]),
        gain=np.array([r.gain for r in results]),
        val_sigma=np.stack([r.val_sigma for r in results]),
        val_sigma_se=np.stack([r.val_sigma_se for r in results]),
        val_sigma_self=np.stack([r.val_sigma_self for r in results]),
        wasserstein_log=np.array([r.ntk_wasserstein_log[-1] for r in results]),
        n_params=np.array([r.n_params for r in results], dtype=np.int64),
        seconds=np.array([r.seconds for r in results]),
    )


def estimate_width_sweep(config: WidthSweepConfig):

    parts = [estimate_train(config.train_config(w)) for w in config.widths]
    return Estimate(sum(p.seconds for p in parts), max(p.bytes for p in parts))


# ---- trained kernel --------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedKernelConfig:
    """Flow (3.5) with the metric-NTK of a network frozen at init and after training.

    Attributes:
      train: the TrainConfig of the network (trained once, here).
      n_train, n_test: fresh flow points (not the network's training data); the train kernel
        is (9 n_train) x (9 n_train) dense, the test points' rows are computed TEST_CHUNK
        points at a time (``ntk_flow``).
      steps: flow steps (the paper: 50).
      lr_scale: step size in units of 1 / lambda_max of each kernel's train block, so both
        kernels take comparably sized steps.
      seed: seed of the flow points.
      test: the flow's test points are the first n_test of ``sample_points(test)`` (a
        SampleConfig on the network's manifold, shared with other methods); None (default):
        drawn with the train points from seed.
    """

    train: TrainConfig = field(default_factory=lambda: TrainConfig(n_points=20_000, epochs=20, ricci=False))
    n_train: int = 300
    n_test: int = 300
    steps: int = 50
    lr_scale: float = 0.5
    seed: int = 1
    test: Optional[SampleConfig] = field(default=None, metadata={"key": "omit-default"})

    constraints: ClassVar[dict] = {
        "n_train": Points("flow train points", maximum=3000),
        "n_test": Points("flow test points", maximum=1_000_000),
        "steps": Count("steps", minimum=0, maximum=10_000),
        "lr_scale": Positive("lr_scale"),
        "seed": SEED,
    }

    def __post_init__(self):
        if not isinstance(self.train, TrainConfig):
            raise ConfigTypeError(f"train must be a TrainConfig, got {type(self.train).__name__}")
        validate(self)
        if self.test is not None:
            check_test_sample(self.test, self.train.manifold, self.n_test, "the trained-kernel flow")


@dataclass(frozen=True, eq=False)
class TrainedKernelResult:
    """Flows (3.5) from g_FS with two frozen metric-NTKs of the same network.

    Every sigma is reference-kappa sigma (B.11); ``*_se`` is its standard error and
    ``*_sigma_self`` the self-normalised sigma of the same flowed metric.

    Attributes:
      initial_train_sigma, initial_test_sigma: (S+1,) with Theta at initialisation (2.11).
      trained_train_sigma, trained_test_sigma: (S+1,) with Theta after training.
      initial_test_gain, trained_test_gain (and train gains): sigma_0 / sigma_last.
      network_gain: the trained network's own validation gain.
      network_val_sigma, network_val_sigma_se: its validation sigma per epoch and errors.
      lambda_max_initial, lambda_max_trained: top eigenvalue of each train block.
      kernel_change: |Theta_T - Theta_0|_F / |Theta_0|_F on the flow train points.
    """

    config: TrainedKernelConfig
    initial_train_sigma: np.ndarray
    initial_test_sigma: np.ndarray
    trained_train_sigma: np.ndarray
    trained_test_sigma: np.ndarray
    initial_train_sigma_se: np.ndarray
    initial_test_sigma_se: np.ndarray
    trained_train_sigma_se: np.ndarray
    trained_test_sigma_se: np.ndarray
    initial_test_sigma_self: np.ndarray
    trained_test_sigma_self: np.ndarray
    initial_train_gain: float
    initial_test_gain: float
    trained_train_gain: float
    trained_test_gain: float
    network_gain: float
    network_val_sigma: np.ndarray
    network_val_sigma_se: np.ndarray
    lambda_max_initial: float
    lambda_max_trained: float
    kernel_change: float
    seconds: float
    schema_version: int = TRAINED_KERNEL_SCHEMA

    def summary(self) -> dict:
        keys = ["initial_train_gain", "initial_test_gain", "trained_train_gain", "trained_test_gain",
                "network_gain", "lambda_max_initial", "lambda_max_trained", "kernel_change", "seconds"]
        out = {k: float(getattr(self, k)) for k in keys}
        for name in ("initial", "trained"):
            curve, se = getattr(self, f"{name}_test_sigma"), getattr(self, f"{name}_test_sigma_se")
            last = int(np.flatnonzero(np.isfinite(curve))[-1]) if np.any(np.isfinite(curve)) else 0
            out[f"{name}_test_sigma_final"] = float(curve[last])
            out[f"{name}_test_sigma_final_se"] = float(se[last])
            out[f"{name}_test_sigma_self_final"] = float(getattr(self, f"{name}_test_sigma_self")[last])
        return out


def _kernel_partial(curves: dict, net) -> dict:
    """``run_trained_kernel``'s partial series: sigma per step of the kernel flows done so far
    (``curves``: kernel name -> (train, test) FlowCurves), and the network's training."""
    flows = {f"{kernel} kernel, {part}": (range(len(curve.sigma)), curve.sigma)
             for kernel, pair in curves.items() for part, curve in zip(("train", "test"), pair)}
    return {"panels": [panel("flow σ per step", "step", "σ", flows, log_y=True),
                       *train_partial(net.val_sigma, net.train_loss)["panels"]]}


def run_trained_kernel(config: TrainedKernelConfig, progress: Optional[Progress] = None) -> TrainedKernelResult:
    """Train the network, then flow (3.5) from g_FS with its initial and its trained metric-NTK."""

    c = config
    report = progress or (lambda *a, **k: None)
    start = time.perf_counter()
    total = c.train.epochs + 3

    def train_progress(step, _total, message=""):
        report(step, total, f"training: {message}")

    train_progress.partial = lambda make: publish(progress, make)  # the network's sigma per epoch
    net = train(c.train, train_progress)
    m = c.train.manifold
    d, n = m.degree, m.degree - 2
    if c.test is None:
        pts = sample_points(SampleConfig(m, c.n_train + c.n_test, c.seed))
        tr, te = pts.subset(np.arange(c.n_train)), pts.subset(np.arange(c.n_train, c.n_train + c.n_test))
    else:
        tr, te = sample_points(SampleConfig(m, c.n_train, c.seed)), first_points(c.test, c.n_test)
    x_tr, x_te = model_input(tr), model_input(te)
    comp = components_fn(c.train, n, d)
    curves, lam, thetas = {}, {}, {}
    for i, (name, params) in enumerate((("initial", net.params_initial), ("trained", net.params_final))):
        k_tr = metric_ntk(comp, params, x_tr, x_tr, c.train.ntk_implementation)  # (K N, K N)

        def rows(a, b, params=params):  # Theta(test points a..b-1, train): (K (b - a), K N)
            return metric_ntk(comp, params, take(x_te, slice(a, b)), x_tr, c.train.ntk_implementation)

        lam[name] = float(spectrum(k_tr)[-1])
        thetas[name] = k_tr
        curves[name] = ntk_flow(k_tr, rows, tr, te, c.steps, c.lr_scale / lam[name])
        report(c.train.epochs + 1 + i, total, f"{name} kernel: test gain {_gain(curves[name][1].sigma):.3g}")
        publish(progress, lambda: _kernel_partial(curves, net))
    change = float(np.linalg.norm(thetas["trained"] - thetas["initial"]) / np.linalg.norm(thetas["initial"]))
    report(total, total, "done")
    return TrainedKernelResult(
        config=c,
        initial_train_sigma=curves["initial"][0].sigma,
        initial_test_sigma=curves["initial"][1].sigma,
        trained_train_sigma=curves["trained"][0].sigma,
        trained_test_sigma=curves["trained"][1].sigma,
        initial_train_sigma_se=curves["initial"][0].sigma_se,
        initial_test_sigma_se=curves["initial"][1].sigma_se,
        trained_train_sigma_se=curves["trained"][0].sigma_se,
        trained_test_sigma_se=curves["trained"][1].sigma_se,
        initial_test_sigma_self=curves["initial"][1].sigma_self,
        trained_test_sigma_self=curves["trained"][1].sigma_self,
        initial_train_gain=_gain(curves["initial"][0].sigma),
        initial_test_gain=_gain(curves["initial"][1].sigma),
        trained_train_gain=_gain(curves["trained"][0].sigma),
        trained_test_gain=_gain(curves["trained"][1].sigma),
        network_gain=net.gain,
        network_val_sigma=net.val_sigma,
        network_val_sigma_se=net.val_sigma_se,
        lambda_max_initial=lam["initial"],
        lambda_max_trained=lam["trained"],
        kernel_change=change,
        seconds=time.perf_counter() - start,
    )


def estimate_trained_kernel(config: TrainedKernelConfig):
    """Expected seconds and peak bytes of ``run_trained_kernel(config)``: the network's
    training, then per kernel the jacobians (16 bytes per component and parameter of the
    train points and one test chunk), the dense train block, the test chunk's rows and the
    test metrics of every step."""
    base = estimate_train(config.train)
    k = 9 * (config.n_train + config.n_test)
    p = config.train.depth * config.train.width**2 + 30 * config.train.width
    k_tr, k_chunk = 9 * config.n_train, 9 * min(config.n_test, TEST_CHUNK)
    extra_bytes = (8 * k_tr * (k_tr + k_chunk) * 3 + 16 * (k_tr + k_chunk) * p
                   + 8 * (config.steps + 1) * 9 * config.n_test * 2)
    extra_seconds = 2 * (5e-9 * k * p + 1e-9 * (9 * config.n_train) ** 3) + config.steps * 2e-9 * k * 9 * config.n_train
    return Estimate(base.seconds + extra_seconds, int(base.bytes + extra_bytes))
