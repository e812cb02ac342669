"""Kernel metric flows: the discrete flow (3.5) on train and test points.

Two update rules (``FlowConfig.update``, docs/FLOWS.md derives both):

  ``covariant`` (default): the kernel acts in each metric's own frame,
      Theta(x, x') = K(x, x') g(x) (x) g(x). For a loss of eta alone the correction a train
      point x' asks for, relative to its metric, is the scalar r(x') = F'(eta') eta'
      (``losses.relative_gradient``); the transported relative correction at x is
      c(x) = sum_x' Kn(x, x') r(x'), and the step integrates dg/dt = -c g exactly:

          g(x) <- g(x) exp(-lr c(x) / n),       n = complex dimension,

      so that ln eta(x) <- ln eta(x) - lr c(x). This is chart-independent, invariant under
      g_FS -> lambda g_FS, and keeps every metric positive definite. Kn is the kernel
      normalised against the CY measure (``normalise``, the default here):
      Kn(x, x') = K(x, x') u(x') / sum_x'' K(x, x'') u(x''), u the loss weights; the delta
      kernel stays a Kronecker delta, and with the log loss F = (ln eta)^2 / 2 its step is
      Newton's step on ln eta: ln eta <- (1 - lr) ln eta.
  ``euclidean``: the literal coordinate update of (3.5) with Theta_ijkl = delta_ik delta_jl K,

          g^(n+1)(x) = g^(n)(x) - lr sum_{x' in train} K(x, x') dl(x') / dg(x'),

      every metric component updated by the same scalar kernel from the same component of the
      loss gradient (eq. 2.23).

The flow starts from g_FS at every point; train points feed the sum, test points only
receive updates. After every step sigma (B.11) is measured on both sets against the
reference kappa (``metricflow.reference.reference_kappa``; the same kappa is in the loss),
with its standard error, beside the self-normalised sigma (kappa from the metric on the same
points) and sigma over the points whose metric is still positive definite.

Common coordinates (section 3.1): the metric components at different points can only be
added if they are in the same chart. As in the paper, points are oversampled and only those
whose (scale, elim) chart pair equals one chosen pair are kept (``coordinates="reject"``).
``coordinates="transform"`` instead keeps every sampled point and recomputes its chart data
in the chosen chart, which can be badly conditioned far from the chart's good region. The
covariant update acts on the chart-independent eta alone, so it needs no common chart:
``coordinates="all"`` keeps every point in its own chart (no oversampling), and only then
may the test points be a shared sample (``FlowConfig.test``) that other methods measure on.

Example:
  >>> result = run_flow(FlowConfig(kernel="delta", n_train=1000, n_test=1000, steps=50))
  >>> result.train_gain, result.test_gain
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field, fields
from typing import Callable, ClassVar, Optional, Union

import numpy as np

from metricflow.constraints import SEED, Count, Flag, Maybe, OneOf, Positive, validate
from metricflow.constraints import Points as PointCount
from metricflow.errors import ConfigTypeError, MetricflowError
from metricflow.estimates import Estimate
from metricflow.kernels import KERNELS, MAX_DENSE_ENTRIES, KernelSpec, kernel_spec, row_sums
from metricflow.kernels.relu_ntk import TENSORFLOW_BYTES  # noqa: F401 (importable from here, as before)
from metricflow.flows.losses import LOSSES, loss_gradient, relative_gradient
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.measures import Kappa, kappa, measure_sigma, volume_ratio_numpy
from metricflow.geometry.reference import reference_kappa
from metricflow.geometry.points import Points, SampleConfig, check_test_sample, first_points, memory_estimate, sample_points
from metricflow.progress import Progress, panel, publish
from metricflow.flows.sampling import SAMPLE_BATCH, sample_in_chart
from metricflow.kernels.base import stream_seed
from metricflow.flows.updates import apply_kernel, nonpd, paired_gain, transport

__all__ = ["SCHEMA_VERSION", "TABLE1", "UPDATES", "DEFAULT_LOSS", "DIVERGED_FACTOR", "FlowConfig", "FlowResult", "run_flow", "flow_on_points", "sample_in_chart", "flow_kernels", "flow_csv", "estimate_flow", "flow_from_options", "flow_partial"]

# 2: the covariant update and log loss (defaults), sigma against the reference kappa with
# standard errors, self-normalised and PD-only sigma, non-PD counts, null gains on divergence.
# 3: the config holds the kernel's spec (metricflow.kernels): "kernel" is {"name", options}
# and the flat option fields (sigma, radius, depth, ...) are gone.
SCHEMA_VERSION = 3

# The update rules, and the loss each uses when FlowConfig.loss is None.
UPDATES = ("covariant", "euclidean")
# How a flow's points are placed in charts (FlowConfig.coordinates).
COORDINATES = ("reject", "transform", "all")
DEFAULT_LOSS = {"covariant": "log", "euclidean": "sigma"}

# A flow whose sigma on either set exceeds this many times its step-0 value has diverged
# (eta ~ 1e6: the metric blew up), as has one with a NaN/inf gradient or sigma.
DIVERGED_FACTOR = 1e6

# Hyperparameters of table 1 (n_train, lr and kernel options) by kernel, from the registry
# (each spec's ``table1``); a config's n_train and lr default to them. cosnet is not in
# table 1; its defaults are ours (docs/FLOWS.md).
TABLE1 = {name: dict(spec.table1) for name, spec in KERNELS.items()}




@dataclass(frozen=True)
class FlowConfig:
    """What to run: one kernel flow (3.5). Validated on construction; computes nothing.

    n_train and lr left as None take the table 1 value of the kernel (its spec's ``table1``).

    Attributes:
      kernel: a KernelSpec (``metricflow.kernels``: ReluNTK, Gaussian, Delta, CosNet, with
        their options), or a registry name ("relu-ntk", "gaussian", "delta", "cosnet") for
        that kernel's default (table 1) spec; stored as the spec.
      loss: one of LOSSES ("log", "sigma", "ultralocal", "entropy"); None = the update's
        default (``DEFAULT_LOSS``: log for covariant, sigma for euclidean).
      n_train: train points (table 1: 2500, or 1000 for delta).
      n_test: test points (default n_train).
      steps: flow steps (the paper: 50).
      lr: step size Delta t of eq. (3.5).
      normalise: covariant: use the kernel normalised against the CY measure,
        Kn(x, x') = K(x, x') u(x') / sum_x'' K(x, x'') u(x'') (u the loss weights), instead
        of the Monte-Carlo sum sum_x' K(x, x') u(x') / sum u; euclidean: divide each point's
        update by its kernel row sum sum_x' K(x, x'). None = True for covariant, False for
        euclidean.
      weighted: loss sum w F(eta) / sum w (True), or the same with w = 1 (False). The
        recorded sigma always uses the CY weights.
      clip: if set, scale down each point's update so |lr U|_F <= clip |g|_F (euclidean),
        or bound the log-rescaling |lr c / n| <= clip (covariant).
      seed: train points use streams of this seed, test points other streams of it.
      chart: (scale, elim) pair for common coordinates; None = most common in the first
        train batch.
      coordinates: "reject" (paper: keep only points in the chart), "transform" (every point
        recomputed in the chart) or "all" (every point in its own chart; covariant update only).
      manifold: the hypersurface (default the Fermat quintic).
      update: "covariant" (default: the kernel in each metric's frame, g <- g exp(-lr c / n))
        or "euclidean" (the literal coordinate update of eq. 3.5).
      precision: "float64" (default) or "float32": the metrics are rounded to complex64 after
        every step (updates and measurements are still computed in float64), which shows
        the floor a single-precision flow has under sigma.
      test: the test points are the first n_test of ``sample_points(test)`` (a SampleConfig on
        the same manifold, shared with other methods) instead of the flow's own; needs
        coordinates "all". None (default): the flow samples its own.
    """

    kernel: Union[KernelSpec, str] = "gaussian"
    loss: Optional[str] = None
    n_train: Optional[int] = None
    n_test: Optional[int] = None
    steps: int = 50
    lr: Optional[float] = None
    normalise: Optional[bool] = None
    weighted: bool = True
    clip: Optional[float] = None
    seed: int = 0
    chart: Optional[tuple] = None
    coordinates: str = "reject"
    manifold: Manifold = field(default_factory=Manifold)
    update: str = "covariant"
    precision: str = "float64"
    test: Optional[SampleConfig] = field(default=None, metadata={"key": "omit-default"})

    constraints: ClassVar[dict] = {
        "precision": OneOf(("float64", "float32"), either=True),
        "update": OneOf(UPDATES),
        "loss": OneOf(tuple(LOSSES)),
        "coordinates": OneOf(COORDINATES, either=True),
        "n_train": PointCount("train points"),
        "n_test": PointCount("test points"),
        "steps": Count("steps", minimum=0, maximum=100_000),
        "seed": SEED,
        "lr": Positive("lr"),
        "normalise": Flag("normalise"),
        "weighted": Flag("weighted"),
        "clip": Maybe(Positive("clip")),
    }

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        validate(self, {name: self.constraints[name] for name in ("precision", "update")})
        if self.loss is None:
            set_("loss", DEFAULT_LOSS[self.update])
        if self.normalise is None:
            set_("normalise", self.update == "covariant")
        if isinstance(self.kernel, str):
            set_("kernel", kernel_spec(self.kernel))
        elif not isinstance(self.kernel, KernelSpec):
            raise ConfigTypeError(
                f"kernel must be a name ({', '.join(KERNELS)}) or a KernelSpec such as Gaussian(sigma=1.0), "
                f"got {self.kernel!r} ({type(self.kernel).__name__})"
            )
        for name in ("n_train", "lr"):
            if getattr(self, name) is None:
                set_(name, self.kernel.table1[name])
        if self.n_test is None:
            set_("n_test", self.n_train)
        validate(self)
        if self.chart is not None:
            d = self.manifold.degree
            try:
                chart = tuple(int(c) for c in self.chart)
            except (TypeError, ValueError):
                raise MetricflowError(f"chart must be a pair (scale, elim) of integers, got {self.chart!r}") from None
            if len(chart) != 2 or chart[0] == chart[1] or not all(0 <= c < d for c in chart):
                raise MetricflowError(
                    f"chart must be a pair of distinct indices (scale, elim) in 0..{d - 1}, got {self.chart!r}"
                )
            set_("chart", chart)
        if self.coordinates == "all":
            if self.update != "covariant":
                raise MetricflowError(
                    "coordinates 'all' needs the covariant update: the euclidean update adds metric components of "
                    "different points, which must share one chart (section 3.1); use coordinates 'reject'"
                )
            if self.chart is not None:
                raise MetricflowError("coordinates 'all' keeps every point in its own chart; give no chart")
        if self.test is not None:
            check_test_sample(self.test, self.manifold, self.n_test, "the flow")
            if self.coordinates != "all":
                raise MetricflowError(
                    "shared test points lie in every chart; use coordinates 'all' (covariant update) with them"
                )

    def to_dict(self) -> dict:
        """Canonical JSON-ready dict (the kernel as {"name", options}, the manifold as degree and psi)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "manifold"}
        out["kernel"] = self.kernel.to_dict()
        out["chart"] = list(self.chart) if self.chart is not None else None
        out["test"] = None if self.test is None else {"n_points": self.test.n_points, "seed": self.test.seed}
        out["manifold"] = {"degree": self.manifold.degree, "psi": [self.manifold.psi.real, self.manifold.psi.imag]}
        return out


@dataclass(frozen=True, eq=False)
class FlowResult:
    """The record of one flow. S = config.steps; per-step arrays are NaN after a stop.

    Every sigma is sigma (B.11) measured against the reference kappa (``kappa_ref``, the
    same kappa as in the loss), unless named ``_self``: the self-normalised sigma, with kappa
    from the metric on the same points (cymetric's convention). ``_se`` is the Monte-Carlo
    standard error; ``_pd`` is over the points whose metric is positive definite.

    Attributes:
      config: the FlowConfig that was run.
      train_sigma, test_sigma: (S+1,) float64, sigma after each step; [0] is g_FS.
      train_nonpd_fraction, test_nonpd_fraction: (S+1,) float64, fraction of points whose
        metric has an eigenvalue <= 0.
      clipped_fraction: (S,) float64, fraction of train points whose update was clipped.
      train_gain, test_gain: sigma_0 / sigma_S, or None if the flow diverged.
      steps_done: steps completed (S unless stopped).
      chart: the (scale, elim) pair of the common coordinates; None with coordinates "all".
      points_drawn: points sampled to obtain the train and test sets (in that chart).
      kappa_train, kappa_test: kappa of g_FS on each set (the self-normalised kappa at step 0).
      isolated_test: test points with no train point in the kernel's support (cutoff).
      kernel_seconds, seconds: time for the kernel matrices, and for everything.
      stopped_reason: None if all steps ran, else "diverged at step k: ...".
      schema_version: SCHEMA_VERSION.
      train_sigma_se, test_sigma_se: (S+1,) float64.
      train_sigma_self, test_sigma_self, train_sigma_self_se, test_sigma_self_se: (S+1,).
      train_sigma_pd, test_sigma_pd, train_sigma_pd_se, test_sigma_pd_se: (S+1,) float64,
        over the PD points of that step (NaN if none is PD).
      train_nonpd_count, test_nonpd_count: (S+1,) float64, points with a non-PD metric.
      train_gain_se, test_gain_se: standard errors of the gains (paired: the same points at
        step 0 and S), or None if diverged.
      test_gain_pd, test_gain_pd_se: sigma_0 / sigma_S over the test points PD at step S.
      kappa_ref, kappa_ref_se: the reference kappa and its standard error (0 if exact).
      diverged_step: the step k at which the flow diverged, or None.
    """

    config: FlowConfig
    train_sigma: np.ndarray
    test_sigma: np.ndarray
    train_nonpd_fraction: np.ndarray
    test_nonpd_fraction: np.ndarray
    clipped_fraction: np.ndarray
    train_gain: Optional[float]
    test_gain: Optional[float]
    steps_done: int
    chart: Optional[tuple]
    points_drawn: int
    kappa_train: float
    kappa_test: float
    isolated_test: int
    kernel_seconds: float
    seconds: float
    stopped_reason: Optional[str] = None
    schema_version: int = SCHEMA_VERSION
    train_sigma_se: Optional[np.ndarray] = None
    test_sigma_se: Optional[np.ndarray] = None
    train_sigma_self: Optional[np.ndarray] = None
    test_sigma_self: Optional[np.ndarray] = None
    train_sigma_self_se: Optional[np.ndarray] = None
    test_sigma_self_se: Optional[np.ndarray] = None
    train_sigma_pd: Optional[np.ndarray] = None
    test_sigma_pd: Optional[np.ndarray] = None
    train_sigma_pd_se: Optional[np.ndarray] = None
    test_sigma_pd_se: Optional[np.ndarray] = None
    train_nonpd_count: Optional[np.ndarray] = None
    test_nonpd_count: Optional[np.ndarray] = None
    train_gain_se: Optional[float] = None
    test_gain_se: Optional[float] = None
    test_gain_pd: Optional[float] = None
    test_gain_pd_se: Optional[float] = None
    kappa_ref: Optional[float] = None
    kappa_ref_se: Optional[float] = None
    diverged_step: Optional[int] = None

    @property
    def nonpd_fraction(self) -> np.ndarray:
        """(S+1,) float64: fraction of all (train and test) points with a non-PD metric."""
        n, m = self.config.n_train, self.config.n_test
        return (n * self.train_nonpd_fraction + m * self.test_nonpd_fraction) / (n + m)

    @property
    def train_gain_last(self) -> float:
        """sigma_0 / sigma at the last completed step, also after a divergence (then it is not a gain)."""
        return float(self.train_sigma[0] / self.train_sigma[self.steps_done])

    @property
    def test_gain_last(self) -> float:
        """As ``train_gain_last``, on the test points."""
        return float(self.test_sigma[0] / self.test_sigma[self.steps_done])

    def to_dict(self) -> dict:
        """JSON-ready dict; NaN (steps after a stop) becomes None. Names the update and loss."""

        def clean(x):
            if isinstance(x, np.ndarray):
                return [clean(v) for v in x.tolist()]
            if isinstance(x, float) and not math.isfinite(x):
                return None
            return x

        out = {f.name: clean(getattr(self, f.name)) for f in fields(self) if f.name != "config"}
        for name in ("train_nonpd_count", "test_nonpd_count"):
            if out[name] is not None:
                out[name] = [None if v is None else int(v) for v in out[name]]
        out["nonpd_fraction"] = clean(self.nonpd_fraction)
        out["chart"] = None if self.chart is None else list(self.chart)
        out["update"] = self.config.update
        out["loss"] = self.config.loss
        out["diverged"] = self.diverged_step is not None
        out["config"] = self.config.to_dict()
        return out


# ---- kernels ---------------------------------------------------------------------------


def flow_kernels(config: FlowConfig, train: Points, test: Points):
    """The kernel matrices of the flow: (K_train (N, N), K_test (M, N), isolated_test).

    Each is a dense ndarray, a scipy csr_matrix or a LowRank (see metricflow.kernels);
    ``config.kernel.matrices`` builds them, with the flow's seed.
    isolated_test counts test points whose kernel row is empty (only with a cutoff).
    """
    return config.kernel.matrices(train, test, config.seed)


def run_flow(config: FlowConfig, progress: Optional[Progress] = None) -> FlowResult:
    """Run the discrete kernel metric flow (3.5) from g_FS and record sigma (B.11).

    Each step (covariant): r(x') = F'(eta') eta' on the train points, c(x) = sum_x' Kn(x, x') r(x'),
    g(x) <- g(x) exp(-lr c(x) / n). Each step (euclidean): D(x') = dl/dg(x') on the train
    points (``loss_gradient``, Hermitian), g(x) <- g(x) - lr sum_x' K(x, x') D(x'). Train and
    test points are updated alike. A non-finite gradient or sigma, or a sigma over
    DIVERGED_FACTOR times its start, stops the flow: it diverged; the result keeps the
    history up to the last good step, says "diverged at step k: ..." in ``stopped_reason``
    and has null gains.

    Args:
      config: a FlowConfig.
      progress: optional callback progress(step, total, message), called after sampling,
        after the kernel, and after every step.

    Returns:
      FlowResult.
    """
    c = config
    report = progress or (lambda step, total, message: None)
    start = time.perf_counter()
    if c.coordinates == "all":
        train = sample_points(SampleConfig(c.manifold, c.n_train, stream_seed(c.seed, 0, 0)))
        test_sample = c.test or SampleConfig(c.manifold, c.n_test, stream_seed(c.seed, 1, 0))
        test, chart = first_points(test_sample, c.n_test), None
        drawn_train, drawn_test = c.n_train, test_sample.n_points
        report(0, c.steps, f"sampled {c.n_train:,} + {c.n_test:,} points in all charts")
        return flow_on_points(c, train, test, chart, drawn_train + drawn_test, progress, start)
    train, chart, drawn_train = sample_in_chart(c.manifold, c.n_train, c.seed, 0, c.chart, c.coordinates)
    test, _, drawn_test = sample_in_chart(c.manifold, c.n_test, c.seed, 1, chart, c.coordinates)
    report(0, c.steps, f"sampled {c.n_train:,} + {c.n_test:,} points in chart {chart}")
    return flow_on_points(c, train, test, chart, drawn_train + drawn_test, progress, start)


def flow_on_points(
    config: FlowConfig,
    train: Points,
    test: Points,
    chart: Optional[tuple],
    points_drawn: int = 0,
    progress: Optional[Progress] = None,
    start: Optional[float] = None,
    kernels: Optional[Callable] = None,
    reference: Optional[Kappa] = None,
) -> FlowResult:
    """The flow (3.5) on given train and test points, all in the common ``chart``.

    ``run_flow`` samples the points and calls this; experiments that make their own test
    points (the noise study) call it directly. The sizes of ``train`` and ``test`` must
    match config.n_train and config.n_test.

    Args:
      config: a FlowConfig (its sampling fields are not used here).
      train, test: Points whose local coordinates are those of ``chart``.
      chart: the (scale, elim) pair, recorded in the result; None: each point in its own
        chart (the covariant update only).
      points_drawn: recorded in the result.
      progress: optional callback progress(step, total, message).
      start: perf_counter value at which the timing starts (default: now).
      kernels: optional replacement of ``flow_kernels`` with the same signature and return
        value (``metricflow.clustering.run_cluster_flow`` passes per-cluster kernels).
      reference: the kappa in the loss and in every sigma; default
        ``reference_kappa(config.manifold)`` (exact for the Fermat point).

    Returns:
      FlowResult.
    """
    c = config
    report = progress or (lambda step, total, message: None)
    start = time.perf_counter() if start is None else start
    if len(train) != c.n_train or len(test) != c.n_test:
        raise MetricflowError(
            f"expected {c.n_train} train and {c.n_test} test points, got {len(train)} and {len(test)}"
        )
    t0 = time.perf_counter()
    k_train, k_test, isolated = (kernels or flow_kernels)(c, train, test)
    norm_train = norm_test = None
    if c.normalise and c.update == "euclidean":
        norm_train, norm_test = row_sums(k_train), row_sums(k_test)
        norm_test = np.where(norm_test > 0, norm_test, 1.0)  # empty rows get no update
    kernel_seconds = time.perf_counter() - t0
    report(0, c.steps, f"kernel {c.kernel} ready in {kernel_seconds:.1f} s")

    kref: Kappa = reference if reference is not None else reference_kappa(c.manifold)
    kap = float(kref.value)
    kap_train = float(kappa(train.g_fs, train.omega_sq, train.weights))
    kap_test = float(kappa(test.g_fs, test.omega_sq, test.weights))
    stored = np.complex64 if c.precision == "float32" else np.complex128
    g_train, g_test = train.g_fs.astype(stored), test.g_fs.astype(stored)
    dim = g_train.shape[1]
    loss_weights = train.weights if c.weighted else np.ones(c.n_train)
    nan = lambda k: np.full(k, np.nan)  # noqa: E731
    names = ("sigma", "sigma_se", "sigma_self", "sigma_self_se", "sigma_pd", "sigma_pd_se", "nonpd_count")
    hist = {(part, name): nan(c.steps + 1) for part in ("train", "test") for name in names}
    clipped = nan(c.steps)
    sets = {"train": train, "test": test}

    def deviation(g, pts):
        return np.abs(1.0 - volume_ratio_numpy(g, pts.omega_sq) / kap)

    def record(step: int) -> Optional[str]:
        """Measure both sets after ``step``; return why the flow diverged, or None."""
        reports = {}
        for part, g in (("train", g_train), ("test", g_test)):
            pts = sets[part]
            rep = measure_sigma(g, pts.omega_sq, pts.weights, kref)
            if not math.isfinite(rep.sigma):
                return f"sigma on the {part} points became NaN/inf (metric entries overflowed)"
            if step > 0 and rep.sigma > DIVERGED_FACTOR * hist[part, "sigma"][0]:
                return f"sigma on the {part} points grew to {rep.sigma:.3g}, over {DIVERGED_FACTOR:g} times its start"
            bad = nonpd(g)
            # sigma over the PD points (NaN if there are none)
            pd = measure_sigma(g, pts.omega_sq, pts.weights, kref, mask=~bad) if bad.any() else rep
            reports[part] = (rep, pd, int(bad.sum()))
        for part, (rep, pd, count) in reports.items():
            row = {
                "sigma": rep.sigma, "sigma_se": rep.sigma_se, "sigma_self": rep.sigma_self,
                "sigma_self_se": rep.sigma_self_se, "nonpd_count": count,
                "sigma_pd": pd.sigma, "sigma_pd_se": pd.sigma_se,
            }
            for name, value in row.items():
                hist[part, name][step] = value
        return None

    if record(0) is not None:
        raise MetricflowError("sigma of g_FS is not finite: the points or the reference kappa are broken")
    publish(progress, lambda: flow_partial(hist["train", "sigma"], hist["test", "sigma"], 0))
    dev0 = {"train": deviation(g_train, train), "test": deviation(g_test, test)}
    stopped, done, diverged = None, 0, None
    lr_hint = f"the learning rate {c.lr:g} is likely too large"
    for step in range(1, c.steps + 1):
        if c.update == "covariant":
            eta_train = volume_ratio_numpy(g_train, train.omega_sq) / kap
            rate = np.asarray(relative_gradient(eta_train, c.loss))
            if not np.all(np.isfinite(rate)):
                bad = int(np.sum(~np.isfinite(rate)))
                stopped = f"the {c.loss} loss gradient is NaN/inf at {bad:,} train points; {lr_hint}"
                diverged = step
                break
            shift_train = -c.lr / dim * transport(k_train, rate, loss_weights, c.normalise)
            shift_test = -c.lr / dim * transport(k_test, rate, loss_weights, c.normalise)
            if c.clip is not None:
                clipped[step - 1] = float(np.mean(np.abs(shift_train) > c.clip))
                shift_train = np.clip(shift_train, -c.clip, c.clip)
                shift_test = np.clip(shift_test, -c.clip, c.clip)
            else:
                clipped[step - 1] = 0.0
            g_train = (g_train * np.exp(shift_train)[:, None, None]).astype(stored)
            g_test = (g_test * np.exp(shift_test)[:, None, None]).astype(stored)
        else:
            grad = np.asarray(loss_gradient(g_train, train.omega_sq, loss_weights, kap, c.loss))
            if not np.all(np.isfinite(grad)):
                bad = int(np.sum(~np.all(np.isfinite(grad), axis=(1, 2))))
                count = int(hist["train", "nonpd_count"][step - 1])
                stopped = (
                    f"the {c.loss} loss gradient is NaN/inf at {bad:,} train points "
                    f"({count:,} of {c.n_train:,} train metrics not PD); {lr_hint}"
                )
                diverged = step
                break
            grad = 0.5 * (grad + np.conj(np.swapaxes(grad, 1, 2)))  # remove autodiff rounding asymmetry
            upd_train, upd_test = apply_kernel(k_train, grad, norm_train), apply_kernel(k_test, grad, norm_test)
            if c.clip is not None:
                ratio = c.lr * np.linalg.norm(upd_train, axis=(1, 2)) / np.linalg.norm(g_train, axis=(1, 2))
                clipped[step - 1] = float(np.mean(ratio > c.clip))
                upd_train *= np.minimum(1.0, c.clip / np.maximum(ratio, 1e-300))[:, None, None]
                ratio = c.lr * np.linalg.norm(upd_test, axis=(1, 2)) / np.linalg.norm(g_test, axis=(1, 2))
                upd_test *= np.minimum(1.0, c.clip / np.maximum(ratio, 1e-300))[:, None, None]
            else:
                clipped[step - 1] = 0.0
            g_train = (g_train - c.lr * upd_train).astype(stored)
            g_test = (g_test - c.lr * upd_test).astype(stored)
        why = record(step)
        if why is not None:
            stopped, diverged = f"{why}; {lr_hint}", step
            break
        done = step
        report(step, c.steps, f"step {step}: train sigma {hist['train', 'sigma'][step]:.3e}, "
               f"test sigma {hist['test', 'sigma'][step]:.3e}")
        publish(progress, lambda: flow_partial(hist["train", "sigma"], hist["test", "sigma"], done))
    if diverged is not None:
        clipped[diverged - 1] = np.nan
        stopped = f"diverged at step {diverged}: {stopped}"

    gains = {}
    if diverged is None:
        for part, g in (("train", g_train), ("test", g_test)):
            pts = sets[part]
            gains[part] = paired_gain(dev0[part], deviation(g, pts), pts.weights)
        pd = ~nonpd(g_test)
        gains["test_pd"] = (
            paired_gain(dev0["test"][pd], deviation(g_test[pd], test.subset(pd)), test.weights[pd]) if pd.any() else (None, None)
        )
    none = (None, None)
    frac = lambda part: hist[part, "nonpd_count"] / len(sets[part])  # noqa: E731
    return FlowResult(
        config=c,
        train_sigma=hist["train", "sigma"],
        test_sigma=hist["test", "sigma"],
        train_nonpd_fraction=frac("train"),
        test_nonpd_fraction=frac("test"),
        clipped_fraction=clipped,
        train_gain=gains.get("train", none)[0],
        test_gain=gains.get("test", none)[0],
        steps_done=done,
        chart=chart,
        points_drawn=points_drawn,
        kappa_train=kap_train,
        kappa_test=kap_test,
        isolated_test=isolated,
        kernel_seconds=kernel_seconds,
        seconds=time.perf_counter() - start,
        stopped_reason=stopped,
        train_sigma_se=hist["train", "sigma_se"],
        test_sigma_se=hist["test", "sigma_se"],
        train_sigma_self=hist["train", "sigma_self"],
        test_sigma_self=hist["test", "sigma_self"],
        train_sigma_self_se=hist["train", "sigma_self_se"],
        test_sigma_self_se=hist["test", "sigma_self_se"],
        train_sigma_pd=hist["train", "sigma_pd"],
        test_sigma_pd=hist["test", "sigma_pd"],
        train_sigma_pd_se=hist["train", "sigma_pd_se"],
        test_sigma_pd_se=hist["test", "sigma_pd_se"],
        train_nonpd_count=hist["train", "nonpd_count"],
        test_nonpd_count=hist["test", "nonpd_count"],
        train_gain_se=gains.get("train", none)[1],
        test_gain_se=gains.get("test", none)[1],
        test_gain_pd=gains.get("test_pd", none)[0],
        test_gain_pd_se=gains.get("test_pd", none)[1],
        kappa_ref=kap,
        kappa_ref_se=float(kref.se),
        diverged_step=diverged,
    )


def flow_partial(train_sigma: np.ndarray, test_sigma: np.ndarray, steps: int) -> dict:
    """A flow's partial series after ``steps`` steps (``metricflow.progress.publish``):
    sigma and the gain sigma_0 / sigma per step on the train and test points, taken from the
    per-step sigma arrays (steps 0..steps)."""
    xs = range(steps + 1)
    tr, te = train_sigma[: steps + 1], test_sigma[: steps + 1]
    return {"panels": [
        panel("σ per step", "step", "σ", {"train": (xs, tr), "test": (xs, te)}, log_y=True),
        panel("gain σ₀/σ per step", "step", "σ₀/σ", {"train": (xs, tr[0] / tr), "test": (xs, te[0] / te)}, log_y=True),
    ]}


# ---- output and cost ------------------------------------------------------------------


# Per-step columns of a FlowResult beyond the first four, written when the result has them.
FLOW_CSV_EXTRA = tuple(
    f"{s}_{c}" for c in ("sigma_se", "sigma_self", "sigma_self_se", "sigma_pd", "sigma_pd_se", "nonpd_count")
    for s in ("train", "test")
)


def flow_csv(result) -> str:
    """Per-step data of a FlowResult as CSV text (empty cells after a stop, and at step 0
    for clipped_fraction): step, train_sigma, test_sigma, train_nonpd_fraction,
    test_nonpd_fraction, clipped_fraction, then the standard errors, self-normalised and
    PD-only sigma and non-PD counts (``FLOW_CSV_EXTRA``) where the result has them."""
    out = io.StringIO()
    writer = csv.writer(out)
    names = ["train_sigma", "test_sigma", "train_nonpd_fraction", "test_nonpd_fraction"]
    extra = [n for n in FLOW_CSV_EXTRA if getattr(result, n, None) is not None]
    writer.writerow(["step", *names, "clipped_fraction", *extra])
    cell = lambda v: "" if not np.isfinite(v) else repr(float(v))  # noqa: E731
    for step in range(len(result.train_sigma)):
        row = [cell(getattr(result, n)[step]) for n in names]
        clipped = cell(result.clipped_fraction[step - 1]) if step > 0 else ""
        writer.writerow([step, *row, clipped, *(cell(getattr(result, n)[step]) for n in extra)])
    return out.getvalue()


# Rejection sampling in one chart (flow.sample_in_chart) draws about this many points per point kept.
OVERSAMPLE = 25
# The worker's baseline: interpreter, NumPy, SciPy and JAX (relu-ntk also imports TensorFlow:
# metricflow.kernels.relu_ntk.TENSORFLOW_BYTES, in its estimate).
WORKER_BYTES = 400 * 2**20
# Per point kept: g and its gradient, update and copies (3 x 3 complex), eigenvalues, chart data.
FLOW_POINT_BYTES = 4096


def _dense(config: FlowConfig) -> bool:
    return config.kernel.dense()


def estimate_flow(config: FlowConfig) -> Estimate:
    """Expected seconds and peak bytes of ``run_flow(config)``; raises if a dense kernel is too big.

    N train and M test points. A dense kernel (relu-ntk, gaussian without radius, analytic
    cosnet) holds K_train (N, N) and K_test (M, N) in float64, with a temporary copy: about
    16 N (N + M) bytes. The kernel's part is its spec's ``estimate`` (the kernel modules say
    how each is counted). Times are fitted to ``benchmarks/bench_flow.py`` on 2 cores: ~1e-5 s
    per sampled point, the kernel's own time, and per step ~4e-6 s per point plus ~8e-9 s
    per kernel entry kept.
    """
    c = config
    n, m = c.n_train, c.n_test
    entries = n * (n + m)
    if c.kernel.dense() and entries > MAX_DENSE_ENTRIES:
        raise MetricflowError(
            f"the {c.kernel.name} kernel would be dense {n:,} x {n + m:,} ({8 * entries / 2**30:.1f} GiB), over the "
            f"limit of {MAX_DENSE_ENTRIES:,} entries; use fewer points, a cutoff radius or the delta kernel"
        )
    drawn = OVERSAMPLE * (n + m) if c.coordinates == "reject" else n + m + (c.test.n_points - m if c.test else 0)
    seconds = 2.0 + 1e-5 * drawn
    memory = WORKER_BYTES + memory_estimate(min(SAMPLE_BATCH, OVERSAMPLE * max(n, m)), c.manifold.degree)
    memory += FLOW_POINT_BYTES * (n + m)
    kernel_seconds, kernel_bytes, kept = c.kernel.estimate(n, m, c.manifold.degree)
    memory += kernel_bytes
    seconds += kernel_seconds
    seconds += c.steps * (4e-6 * (n + m) + 8e-9 * kept)
    return Estimate(float(seconds), int(memory))


def flow_from_options(kernel: str = "gaussian", **settings) -> FlowConfig:
    """A FlowConfig from flat keywords: the kernel's options (sigma=..., radius=...) go into
    its spec (``kernel_spec``), the other keywords are FlowConfig fields.

    Example:
      >>> flow_from_options(kernel="gaussian", radius=0.3, n_train=1000).kernel
      Gaussian(sigma=30.0, squared=False, radius=0.3)
    """
    names = {f.name for f in fields(FlowConfig)}
    options = {k: v for k, v in settings.items() if k not in names}
    flow = {k: v for k, v in settings.items() if k in names}
    return FlowConfig(kernel=kernel_spec(kernel, **options), **flow)
