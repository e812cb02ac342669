"""Generalisation study (section 3.2.4, fig. 3, eq. 3.7): how the test gain of a kernel flow
falls with the distance between test and train points, and how that distance falls with N.

Three parts:

  * Noise (fig. 3 left). Test points are the train points with complex Gaussian noise of
    variance v on every real feature (the real and imaginary parts of the patch-normalised
    z, section 3.1), z' = z + sqrt(v) (a + i b), a, b ~ N(0, 1). Unlike the paper, whose
    noised points are "only approximately on the CY", we project z' back onto X by Newton
    steps along the normal (``project_to_hypersurface``) and compute its data in the train
    chart, so sigma (B.11) is measured on points of X. The x-axis is the mean FS distance
    (eq. 3.2) from each train point to its noised, projected copy; the y-axis the test gain
    sigma_0 / sigma_50 of the flow (3.5) run on the train points (``flow_on_points``).
    v = 0 gives the train points themselves, so the gain is the train gain.
  * Scaling (fig. 3 right, eq. 3.7). Mean, min and max over points of the FS distance to
    the nearest other point, for several N, over all charts (``sample_points``) or within
    one chart (``sample_in_chart``, the points a flow trains on), and the least-squares fit
    log mu = log a + b log N (theory: b = -1/dim_R X = -1/6 on a threefold).
  * Extrapolation (text after eq. 3.7). The distance at which the gain curve reaches a
    target gain, and the N at which the fitted mu reaches that distance.

Example:
  >>> noise = run_noise(NoiseConfig(kernel="delta", noise=(0.0, 1e-6, 1e-4, 1e-2)))
  >>> noise.distance, noise.gain
  >>> scaling = run_scaling(ScalingConfig(points=(100, 1000, 10000)))
  >>> scaling.fit.prefactor, scaling.fit.exponent, scaling.fit.exponent_err
  >>> extrapolate(noise, scaling.fit, targets=(100.0,))
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import ClassVar, Optional

import numpy as np
from scipy.stats import linregress

from metricflow.geometry.distance import ZERO_BELOW, FSNeighbours, fs_distance, nearest_neighbour_stats
from metricflow.constraints import SEED, Count, Flag, Maybe, OneOf, Points, Positive, validate
from metricflow.errors import ConfigTypeError, MetricflowError, check_count, check_positive
from metricflow.flows.flow import TABLE1, FlowConfig, estimate_flow, flow_on_points, sample_in_chart
from metricflow.estimates import Estimate
from metricflow.kernels import kernel_spec
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.points import SampleConfig, choose_patch, points_from_coordinates, sample_points
from metricflow.progress import ConfigMap, Progress, panel, publish, serial_map

__all__ = [
    "NOISE_SCHEMA",
    "SCALING_SCHEMA",
    "PAPER_FIT",
    "PROJECTION_TOL",
    "LR_PER_POINT",
    "KERNELS",
    "UPDATES",
    "GAUSSIAN_WIDTH",
    "DEFAULT_NOISE",
    "NoiseConfig",
    "NoiseResult",
    "ScalingConfig",
    "ScalingResult",
    "PowerLawFit",
    "ExtrapolationRow",
    "project_to_hypersurface",
    "noised_points",
    "points_in_chart",
    "run_noise",
    "monotone_violations",
    "noise_sweep",
    "run_noise_sweep",
    "run_scaling",
    "fit_power_law",
    "extrapolate",
    "estimate_noise",
    "estimate_scaling",
]

# Bump when a result's fields or their meaning change: cached results are then recomputed.
# 2: covariant update by default, test points kept in the train chart, common noise
# directions across levels, sigma against the reference kappa with standard errors, gains
# with errors, non-PD fractions, null (NaN) gains for diverged flows.
NOISE_SCHEMA = 2
SCALING_SCHEMA = 1

# Eq. (3.7): mu = .968 N^-0.184 (the paper gives no error).
PAPER_FIT = {"prefactor": 0.968, "exponent": -0.184}

# A projected point is on X when |p(z)| / (sum of |monomials|) is at most this.
PROJECTION_TOL = 1e-12
# Newton iterations per projection attempt, halvings of a step whose |p| grows, and noise
# redraws for points whose projection fails or leaves the train chart (at v = 1 on 1000
# quintic points about 6% of draws stay in the chart; the last point needed 120 draws).
NEWTON_STEPS = 60
MAX_HALVINGS = 30
MAX_REDRAWS = 1000

# Default step size per train point: lr = LR_PER_POINT * n_train keeps each point's step the
# same at every N, since the loss gradient at a point is ~1/N (metricflow.losses.total_loss).
LR_PER_POINT = 3e-4

# Seed streams (flow.py uses 0 for train, 1 for test, 2 for cosnet weights).
NOISE_STREAM = 3
SCALING_STREAM = 4



def _json(value):
    """JSON-ready: arrays to lists, NaN and inf to None."""
    if isinstance(value, np.ndarray):
        return [_json(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _quiet(step: int, total: int, message: str = "") -> None:
    pass


def _numbers(values, name: str) -> tuple:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigTypeError(f"{name} must be a sequence of numbers, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool):
            raise ConfigTypeError(f"{name} must be numbers, got {v!r}")
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise ConfigTypeError(f"{name} must be numbers, got {v!r}") from None
    return tuple(out)


# ---- projection onto X --------------------------------------------------------------------


def project_to_hypersurface(manifold: Manifold, z: np.ndarray, tol: float = PROJECTION_TOL):
    """Move points of C^d onto X = {p = 0} by minimal-norm Newton steps along the normal.

    Each step is z <- z - p(z) conj(grad p) / |grad p|^2, the smallest change of z that
    zeroes the linearisation of p; a step that makes |p| grow is halved until it does not.
    Points stop once |p(z)| / monomial_scale(z) <= tol.

    Args:
      manifold: the hypersurface.
      z: (N, d) complex128.
      tol: relative residual at which a point counts as on X.

    Returns:
      (z_projected, converged): (N, d) complex128 and (N,) bool. Points that did not
      converge (a critical point of p, or too many steps) are left where they stopped.
    """
    z = np.array(z, dtype=complex)
    residual = lambda w: np.abs(manifold.polynomial(w)) / manifold.monomial_scale(w)  # noqa: E731
    active = np.flatnonzero(~(residual(z) <= tol))
    for _ in range(NEWTON_STEPS):
        if active.size == 0:
            break
        w = z[active]
        p = manifold.polynomial(w)
        grad = manifold.gradient(w)
        norm2 = np.sum(np.abs(grad) ** 2, axis=1)
        ok = norm2 > 0
        step = np.zeros_like(w)
        step[ok] = (p[ok] / norm2[ok])[:, None] * np.conj(grad[ok])
        scale = np.ones(len(w))
        old = np.abs(p)
        new = w - step
        for _ in range(MAX_HALVINGS):
            grew = np.abs(manifold.polynomial(new)) > old
            if not np.any(grew):
                break
            scale[grew] *= 0.5
            new[grew] = w[grew] - scale[grew, None] * step[grew]
        z[active] = new
        active = active[~(residual(z[active]) <= tol)]
    converged = residual(z) <= tol
    return z, converged


def _noise_draw(seed: int, attempt: int, shape: tuple) -> np.ndarray:
    """Complex noise a + ib, a, b ~ N(0, 1), of the given shape (N, d) for one attempt.

    The draw depends on (seed, attempt) only, not on the noise level: every level scales the
    same directions (common random numbers), so the gain curve is smooth in v.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, NOISE_STREAM, attempt]))
    return rng.standard_normal((*shape, 2)) @ np.array([1.0, 1.0j])


def points_in_chart(manifold: Manifold, z: np.ndarray, chart: tuple) -> np.ndarray:
    """(N,) bool: whether the best chart of section 3.1 at each point of X is ``chart``.

    This is the rule by which the flows keep their train and test points (``sample_in_chart``):
    |z_scale| is the largest |z_i| and |dp/dz_elim| the largest |dp/dz_j|, j != scale, so the
    chart's Jacobian dz/dx has entries of size at most 1.
    """
    _, scale, elim, _ = choose_patch(manifold, np.asarray(z, dtype=complex))
    return (scale == chart[0]) & (elim == chart[1])


def noised_points(
    manifold: Manifold, z: np.ndarray, variance: float, seed: int, chart: Optional[tuple] = None
):
    """The noised and projected copies of the points z (the test points of fig. 3 left).

    z' = z + sqrt(v) (a + i b) with a, b ~ N(0, 1) per real feature, then projected onto X
    (``project_to_hypersurface``). A point draws new noise (the next attempt, up to
    MAX_REDRAWS) if its projection fails or, when ``chart`` is given, if the projected point
    is not in that chart's region (``points_in_chart``): the test points then lie where the flow's
    own test points lie. v = 0 returns z unchanged.

    Args:
      manifold: the hypersurface.
      z: (N, d) complex128 points on X (patch-normalised, as ``Points.z``).
      variance: v >= 0.
      seed: attempt k of point i uses row i of ``_noise_draw(seed, k, z.shape)``, the same
        at every v.
      chart: optional (scale, elim) pair the test points must keep.

    Returns:
      (z_projected, redrawn): (N, d) complex128 on X, and how many noise redraws were needed.

    Raises:
      MetricflowError: if some points still fail after MAX_REDRAWS redraws.
    """
    z = np.asarray(z, dtype=complex)
    if variance == 0:
        return z.copy(), 0
    out = np.empty_like(z)
    todo = np.arange(len(z))
    redrawn = 0
    for attempt in range(MAX_REDRAWS + 1):
        noise = _noise_draw(seed, attempt, z.shape)
        trial, ok = project_to_hypersurface(manifold, z[todo] + math.sqrt(variance) * noise[todo])
        if chart is not None:
            ok &= points_in_chart(manifold, trial, chart)
        out[todo[ok]] = trial[ok]
        todo = todo[~ok]
        if todo.size == 0:
            return out, redrawn
        redrawn += todo.size
    where = f" into chart {tuple(chart)}" if chart is not None else ""
    raise MetricflowError(
        f"{todo.size} of {len(z)} noised points (variance {variance:g}) could not be projected onto the "
        f"hypersurface{where} after {MAX_REDRAWS} redraws; use a smaller noise variance"
    )


# ---- noise study (fig. 3 left) ------------------------------------------------------------


KERNELS = ("delta", "gaussian")
UPDATES = ("covariant", "euclidean")

# The gaussian width of eq. (3.6) in the noise study: 1/30, i.e. exp(-30 d). Table 1's
# sigma = 30 read as exp(-d / 30) is flat over X (exp(-d/30) >= 0.95 for d <= pi/2) and could
# not give the paper's ~1e6 at zero distance; docs/FLOWS.md.
GAUSSIAN_WIDTH = 1 / 30

# Default noise variances: from ~1e-9 in distance (where the covariant train gain ~1e8 is
# reached) out to v = 1 (distance ~0.85 within the train chart).
DEFAULT_NOISE = (0.0, 1e-18, 1e-16, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def _flow_defaults(update: str, kernel: str, n_train: int) -> dict:
    """The flow settings a NoiseConfig leaves as None: loss, lr, weighted, normalise."""
    if update == "covariant":
        # Table 1's steps, on the log loss in each metric's frame (metricflow.flows.flow).
        return {"loss": "log", "lr": TABLE1[kernel]["lr"], "weighted": True, "normalise": True}
    # The coordinate update: the stable settings of docs/FLOWS.md (table 1's diverge).
    return {"loss": "ultralocal", "lr": LR_PER_POINT * n_train, "weighted": False, "normalise": kernel == "gaussian"}


@dataclass(frozen=True)
class NoiseConfig:
    """One curve of fig. 3 (left): test gain against noise for one kernel. Computes nothing.

    Flow settings left as None depend on the update rule:

      * covariant (default): the metric-covariant update of ``metricflow.flows.flow``, log loss,
        weighted, kernel normalised against the CY measure, table 1's step (delta 0.3162,
        gaussian 0.1583), 50 steps.
      * euclidean: the literal coordinate update, the stable settings of docs/FLOWS.md:
        ultralocal loss (B.14), unweighted, lr = LR_PER_POINT * n_train (the loss gradient
        carries 1/N, ``metricflow.losses.total_loss``), row-normalised gaussian.

    The gaussian kernel (3.6) has width GAUSSIAN_WIDTH = 1/30 in both.

    Attributes:
      kernel: "delta" or "gaussian".
      noise: the noise variances v per real feature, >= 0, sorted and distinct on storing.
      n_train: train points; the test set has as many (one noised copy per train point).
      steps: flow steps.
      update: "covariant" or "euclidean" (``FlowConfig.update``).
      loss, lr, weighted, normalise: flow settings (see FlowConfig); None = the defaults above.
      sigma: gaussian width of eq. (3.6) (default 1/30); None for delta.
      in_chart: keep the test points in the train chart's region, as the flow's own test
        points are (``noised_points`` redraws the noise of a point that leaves it). False
        keeps every projected point, measured in the train chart even near its singular set
        (z_scale -> 0), where the coordinate update is meaningless.
      precision: "float64" or "float32" (``FlowConfig.precision``: the metrics are rounded to
        single precision after every step, which puts a floor under sigma).
      seed: train points use stream 0 of it (as run_flow), the noise stream NOISE_STREAM.
      manifold: the hypersurface (default the Fermat quintic).
    """

    kernel: str = "delta"
    noise: tuple = DEFAULT_NOISE
    n_train: int = 1000
    steps: int = 50
    update: str = "covariant"
    loss: Optional[str] = None
    lr: Optional[float] = None
    weighted: Optional[bool] = None
    sigma: Optional[float] = None
    normalise: Optional[bool] = None
    in_chart: bool = True
    precision: str = "float64"
    seed: int = 0
    manifold: Manifold = field(default_factory=Manifold)

    # The loss and the precision are checked by FlowConfig (flow_config below).
    constraints: ClassVar[dict] = {
        "update": OneOf(UPDATES, label="update"),
        "n_train": Points("train points", maximum=10**6),
        "steps": Count("steps", minimum=0, maximum=100_000),
        "lr": Maybe(Positive("lr")),
        "weighted": Maybe(Flag()),
        "normalise": Maybe(Flag()),
        "in_chart": Flag(),
        "seed": SEED,
    }

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        if self.kernel not in KERNELS:
            raise MetricflowError(f"the noise study runs the kernels {', '.join(KERNELS)}, got {self.kernel!r}")
        validate(self)
        noise = _numbers(self.noise, "noise variances")
        if not noise:
            raise MetricflowError("give at least one noise variance, such as 0, 1e-6, 1e-4")
        if not all(math.isfinite(v) and 0 <= v <= 100 for v in noise):
            raise MetricflowError(f"noise variances must be in [0, 100], got {self.noise!r}")
        set_("noise", tuple(sorted(set(noise))))
        for name, value in _flow_defaults(self.update, self.kernel, self.n_train).items():
            if getattr(self, name) is None:
                set_(name, value)
        if self.kernel == "delta" and self.sigma is not None:
            raise MetricflowError("sigma is the gaussian width; the delta kernel takes no sigma")
        if self.kernel == "gaussian":
            set_("sigma", check_positive(GAUSSIAN_WIDTH if self.sigma is None else self.sigma, "sigma"))
        # FlowConfig checks the loss (and everything else) the same way run_flow would.
        self.flow_config()

    def flow_config(self) -> FlowConfig:
        """The FlowConfig of the flow run at every noise level."""
        # the gaussian's width is this study's sigma; delta takes no options
        spec = kernel_spec(self.kernel, sigma=self.sigma) if self.kernel == "gaussian" else kernel_spec(self.kernel)
        return FlowConfig(
            kernel=spec, update=self.update, loss=self.loss, n_train=self.n_train, n_test=self.n_train,
            steps=self.steps, lr=self.lr, normalise=self.normalise, weighted=self.weighted, seed=self.seed,
            manifold=self.manifold, precision=self.precision,
        )

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "manifold"}
        out["noise"] = list(self.noise)
        out["manifold"] = {"degree": self.manifold.degree, "psi": [self.manifold.psi.real, self.manifold.psi.imag]}
        return out


@dataclass(frozen=True, eq=False)
class NoiseResult:
    """Test gain against distance for one kernel. L noise levels.

    Every sigma is measured against the reference kappa (``kappa_ref``, exact for Fermat),
    with its Monte-Carlo standard error (``_se``); gains are sigma_0 / sigma_S on the same
    test points, with the paired standard error of the flow (``FlowResult.test_gain_se``).

    Attributes:
      config: the NoiseConfig.
      noise: (L,) the variances v, increasing.
      distance: (L,) mean FS distance from each train point to its noised, projected copy.
      distance_std: (L,) the standard deviation of that distance over points.
      nearest_distance: (L,) mean FS distance from each test point to its nearest train point
        (<= distance; the two agree while the noise is small against the point spacing).
      gain, gain_se: (L,) test gain sigma_0 / sigma_S at each level and its standard error
        (NaN where the flow diverged).
      gain_pd, gain_pd_se: (L,) the same over the test points whose metric is positive
        definite at the end.
      nonpd_fraction: (L,) fraction of test points whose metric is not positive definite at
        the end (or at the last step before a divergence).
      nonpd_max: (L,) the largest such fraction over the steps.
      diverged_step: (L,) int, the step at which the flow diverged, -1 if it did not.
      train_gain, train_gain_se: the train gain (the same at every level: the train set
        does not change); NaN if the flow diverged.
      test_sigma_fs, test_sigma_fs_se: (L,) sigma of g_FS on the test set (the start).
      test_sigma, test_sigma_se: (L,) sigma at the end of each flow.
      kappa_ref, kappa_ref_se: the reference kappa and its standard error (0 if exact).
      steps_done: (L,) int, steps completed (< steps if the flow stopped).
      redrawn: (L,) int, noise redraws (failed projections, points that left the chart).
      max_residual: (L,) largest |p| / monomial_scale over the test points.
      outside_chart: (L,) fraction of test points whose best chart is not the train chart
        (0 with config.in_chart).
      chart: the (scale, elim) chart of the train points; test data are computed in it.
      points_drawn: points sampled to get the train set in that chart.
      seconds: compute time.
      stopped_reason: the first level's reason a flow stopped, or None.
      schema_version: NOISE_SCHEMA.
    """

    config: NoiseConfig
    noise: np.ndarray
    distance: np.ndarray
    distance_std: np.ndarray
    nearest_distance: np.ndarray
    gain: np.ndarray
    gain_se: np.ndarray
    gain_pd: np.ndarray
    gain_pd_se: np.ndarray
    nonpd_fraction: np.ndarray
    nonpd_max: np.ndarray
    diverged_step: np.ndarray
    train_gain: float
    train_gain_se: float
    test_sigma_fs: np.ndarray
    test_sigma_fs_se: np.ndarray
    test_sigma: np.ndarray
    test_sigma_se: np.ndarray
    kappa_ref: float
    kappa_ref_se: float
    steps_done: np.ndarray
    redrawn: np.ndarray
    max_residual: np.ndarray
    outside_chart: np.ndarray
    chart: tuple
    points_drawn: int
    seconds: float
    stopped_reason: Optional[str] = None
    schema_version: int = NOISE_SCHEMA

    def to_dict(self) -> dict:
        """JSON-ready dict (the output of ``metricflow noise --json``); NaN becomes None."""
        out = {f.name: _json(getattr(self, f.name)) for f in fields(self) if f.name != "config"}
        out["chart"] = list(self.chart)
        out["diverged_step"] = [None if k < 0 else int(k) for k in self.diverged_step]
        out["config"] = self.config.to_dict()
        out["kernel"] = self.config.kernel
        out["update"] = self.config.update
        out["loss"] = self.config.loss
        return out


def _nan(value) -> float:
    return math.nan if value is None else float(value)


def _noise_partial(noise: tuple, gain: np.ndarray, levels_done: int, flow: Optional[dict] = None, v: float = 0.0) -> dict:
    """The noise study's partial series: the test gain of the levels done and, while a
    level's flow runs, its sigma and gain per step (``flow``, ``flow_partial``'s series)."""
    xs = range(levels_done)
    panels = [panel("test gain per noise level", "level (its v in the note)", "σ₀/σ_S",
                    {"test gain": (xs, gain[:levels_done])}, log_y=True)]
    for p in (flow or {}).get("panels", []):
        panels.append({**p, "title": f"{p['title']} (noise {v:g})"})
    return {"panels": panels, "note": "noise levels v: " + ", ".join(f"{x:g}" for x in noise)}


def run_noise(config: NoiseConfig, progress: Optional[Progress] = None) -> NoiseResult:
    """The noise study for one kernel (fig. 3 left).

    Samples the train points in one chart as ``run_flow`` does, then for every noise level
    makes the test points (``noised_points``), computes their chart data in the train
    chart (``points_from_coordinates``) and runs the flow with ``flow_on_points``.

    Args:
      config: a NoiseConfig.
      progress: optional callback progress(step, total, message); one step per level.

    Returns:
      NoiseResult.
    """
    c = config
    report = progress or _quiet
    start = time.perf_counter()
    m = c.manifold
    flow_config = c.flow_config()
    levels = len(c.noise)
    train, chart, drawn = sample_in_chart(m, c.n_train, c.seed, 0, None, "reject")
    report(0, levels, f"sampled {c.n_train:,} train points in chart {chart}")
    nbrs = FSNeighbours(train.z)
    charts = np.tile(chart, (c.n_train, 1))
    names = ("distance", "distance_std", "nearest", "gain", "gain_se", "gain_pd", "gain_pd_se", "nonpd", "nonpd_max",
             "sigma0", "sigma0_se", "sigma", "sigma_se", "residual", "outside")
    cols = {k: np.full(levels, np.nan) for k in names}
    steps_done = np.zeros(levels, dtype=np.int64)
    redrawn = np.zeros(levels, dtype=np.int64)
    diverged = np.full(levels, -1, dtype=np.int64)
    flow = None
    stopped = None
    for i, v in enumerate(c.noise):
        z, redrawn[i] = noised_points(m, train.z, v, c.seed, chart if c.in_chart else None)
        test = train if v == 0 else points_from_coordinates(m, z, chart=charts)
        cols["outside"][i] = 1.0 - np.mean(points_in_chart(m, test.z, chart))
        dist = fs_distance(train.z, test.z, zero_below=0.0)
        near = nbrs.query(test.z, k=1)[0][:, 0]
        near = np.where(near < ZERO_BELOW, dist, np.minimum(near, dist))  # resolve the rounded-to-0 ones
        cols["distance"][i], cols["distance_std"][i], cols["nearest"][i] = dist.mean(), dist.std(), near.mean()
        cols["residual"][i] = np.max(np.abs(m.polynomial(test.z)) / m.monomial_scale(test.z))
        level = None  # hands the flow's per-step series on, with the levels done
        if getattr(progress, "partial", None) is not None:
            level = lambda step, total, message="": None  # noqa: E731
            level.partial = lambda make, i=i, v=v: publish(
                progress, lambda: _noise_partial(c.noise, cols["gain"], i, make(), v))
        flow = flow_on_points(flow_config, train, test, chart, drawn, level)
        last = flow.steps_done
        cols["gain"][i], cols["gain_se"][i] = _nan(flow.test_gain), _nan(flow.test_gain_se)
        cols["gain_pd"][i], cols["gain_pd_se"][i] = _nan(flow.test_gain_pd), _nan(flow.test_gain_pd_se)
        cols["nonpd"][i] = flow.test_nonpd_fraction[last]
        cols["nonpd_max"][i] = np.nanmax(flow.test_nonpd_fraction[: last + 1])
        cols["sigma0"][i], cols["sigma0_se"][i] = flow.test_sigma[0], flow.test_sigma_se[0]
        cols["sigma"][i], cols["sigma_se"][i] = flow.test_sigma[last], flow.test_sigma_se[last]
        steps_done[i] = last
        if flow.diverged_step is not None:
            diverged[i] = flow.diverged_step
        if flow.stopped_reason and stopped is None:
            stopped = f"noise {v:g}: {flow.stopped_reason}"
        gain = "diverged" if flow.test_gain is None else f"{flow.test_gain:.3g}"
        report(i + 1, levels, f"noise {v:g}: distance {dist.mean():.3g}, test gain {gain}")
        publish(progress, lambda: _noise_partial(c.noise, cols["gain"], i + 1))
    return NoiseResult(
        config=c,
        noise=np.asarray(c.noise, dtype=np.float64),
        distance=cols["distance"],
        distance_std=cols["distance_std"],
        nearest_distance=cols["nearest"],
        gain=cols["gain"],
        gain_se=cols["gain_se"],
        gain_pd=cols["gain_pd"],
        gain_pd_se=cols["gain_pd_se"],
        nonpd_fraction=cols["nonpd"],
        nonpd_max=cols["nonpd_max"],
        diverged_step=diverged,
        train_gain=_nan(flow.train_gain),
        train_gain_se=_nan(flow.train_gain_se),
        test_sigma_fs=cols["sigma0"],
        test_sigma_fs_se=cols["sigma0_se"],
        test_sigma=cols["sigma"],
        test_sigma_se=cols["sigma_se"],
        kappa_ref=float(flow.kappa_ref),
        kappa_ref_se=float(flow.kappa_ref_se),
        steps_done=steps_done,
        redrawn=redrawn,
        max_residual=cols["residual"],
        outside_chart=cols["outside"],
        chart=tuple(int(x) for x in chart),
        points_drawn=int(drawn),
        seconds=time.perf_counter() - start,
        stopped_reason=stopped,
    )


def monotone_violations(result: NoiseResult, z: float = 2.0) -> list:
    """Levels where the gain curve rises with distance by more than z standard errors.

    Compares each level with the next larger distance: gain[j] - gain[i] > z sqrt(se_i^2 +
    se_j^2) is a violation. Levels whose flow diverged are skipped.

    Returns:
      list of (i, j) index pairs into the result's arrays (empty: monotone within noise).
    """
    order = [k for k in np.argsort(result.distance, kind="stable") if math.isfinite(result.gain[k])]
    out = []
    for i, j in zip(order, order[1:]):
        rise = result.gain[j] - result.gain[i]
        se = math.hypot(result.gain_se[i], result.gain_se[j])
        if rise > z * se:
            out.append((int(i), int(j)))
    return out


def noise_sweep(kernels, **settings) -> list[NoiseConfig]:
    """One NoiseConfig per kernel, with the same ``settings`` (NoiseConfig fields).

    The study splits by kernel, one job each; the levels of one kernel share the train set
    and the noise directions (``_noise_draw``).
    """
    if isinstance(kernels, str):
        kernels = [k.strip() for k in kernels.split(",")]
    kernels = list(dict.fromkeys(kernels))
    if not kernels:
        raise MetricflowError("give at least one kernel for the noise study, such as delta, gaussian")
    return [NoiseConfig(kernel=k, **settings) for k in kernels]


def run_noise_sweep(kernels, map_configs: ConfigMap = serial_map, **settings) -> dict:
    """The noise study (fig. 3 left) for several kernels at once: {kernel: NoiseResult}.

    Each kernel is its own NoiseConfig (``noise_sweep``), run by ``map_configs``; with the
    job runner's map (``metricflow.jobs.StoreMap``) they are cached jobs run in parallel on
    the store's executor (the local process pool or a Dask cluster), and a rerun reuses the
    kernels already done.
    """
    configs = noise_sweep(kernels, **settings)
    results = map_configs(run_noise, configs)
    return {c.kernel: r for c, r in zip(configs, results)}


def estimate_noise(config: NoiseConfig) -> Estimate:
    """Sampling (~25 points drawn per train point) plus one flow per level (``estimate_flow``)."""
    flow = estimate_flow(config.flow_config())
    per_level = max(flow.seconds - 2.0 - 2.5e-4 * config.n_train, 0.1) + 1e-4 * config.n_train
    return Estimate(2.0 + 2.5e-4 * config.n_train + len(config.noise) * per_level, flow.bytes)


# ---- distance scaling (fig. 3 right, eq. 3.7) ---------------------------------------------


@dataclass(frozen=True)
class PowerLawFit:
    """mu = prefactor * N^exponent, fitted by least squares in log-log (scipy linregress).

    Attributes:
      prefactor, exponent: a and b.
      exponent_err: standard error of b.
      prefactor_err: standard error of a (from that of log a).
      log_n_mean, log_mu_mean: the centroid of the data in log-log; the fit passes through
        it, and lines with b +- err pivot about it (``points_for``).
      r_value: correlation coefficient.
      n_fit: number of (N, mu) pairs fitted.
    """

    prefactor: float
    exponent: float
    exponent_err: float
    prefactor_err: float
    log_n_mean: float
    log_mu_mean: float
    r_value: float
    n_fit: int

    def __call__(self, n) -> np.ndarray:
        return self.prefactor * np.asarray(n, dtype=float) ** self.exponent

    def points_for(self, distance: float, exponent: Optional[float] = None) -> float:
        """N at which the fitted mu equals ``distance``, for the fitted exponent or another one
        through the same centroid (for the range implied by exponent +- err)."""
        b = self.exponent if exponent is None else exponent
        if not (distance > 0 and b < 0):
            return math.inf
        log_n = self.log_n_mean + (math.log(distance) - self.log_mu_mean) / b
        return math.exp(log_n) if log_n < 700 else math.inf

    def to_dict(self) -> dict:
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}


def fit_power_law(n, mu) -> PowerLawFit:
    """Least-squares fit of log mu = log a + b log n (eq. 3.7), with standard errors.

    Args:
      n: (K,) positive sizes (repeats allowed, e.g. several seeds per N).
      mu: (K,) positive distances.

    Returns:
      PowerLawFit.
    """
    x, y = np.log(np.asarray(n, dtype=float)), np.log(np.asarray(mu, dtype=float))
    if x.shape != y.shape or x.ndim != 1:
        raise MetricflowError(f"n and mu must be 1-d arrays of one length, got {np.shape(n)} and {np.shape(mu)}")
    if np.unique(x).size < 2 or not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        raise MetricflowError("a power-law fit needs positive values at 2 or more distinct sizes")
    fit = linregress(x, y)
    err = float(fit.stderr) if len(x) > 2 else math.nan
    a = math.exp(fit.intercept)
    return PowerLawFit(
        prefactor=a,
        exponent=float(fit.slope),
        exponent_err=err,
        prefactor_err=a * float(fit.intercept_stderr) if len(x) > 2 else math.nan,
        log_n_mean=float(x.mean()),
        log_mu_mean=float(y.mean()),
        r_value=float(fit.rvalue),
        n_fit=int(len(x)),
    )


CHARTS = ("all", "one")


@dataclass(frozen=True)
class ScalingConfig:
    """Nearest-neighbour FS distances against N (fig. 3 right). Computes nothing.

    Attributes:
      points: the sizes N, sorted and distinct on storing (at least 2).
      chart: "all" (points over all charts, ``sample_points``) or "one" (points in one chart
        by rejection, ``sample_in_chart``, as the flows use).
      seeds: independent samples per N; the fit uses every (N, seed) mean.
      seed: base seed; sample s at size N uses SeedSequence([seed, SCALING_STREAM, N, s]).
      manifold: the hypersurface (default the Fermat quintic).
    """

    points: tuple = (100, 316, 1000, 3162, 10000, 31623, 100000)
    chart: str = "all"
    seeds: int = 1
    seed: int = 0
    manifold: Manifold = field(default_factory=Manifold)

    constraints: ClassVar[dict] = {"seeds": Count("seeds", maximum=100), "seed": SEED}

    def __post_init__(self):
        validate(self)
        if isinstance(self.points, (str, bytes)) or not hasattr(self.points, "__iter__"):
            raise ConfigTypeError(f"points must be a sequence of sizes such as 100, 1000, 10000, got {self.points!r}")
        points = tuple(sorted({check_count(n, "points", minimum=2, maximum=10**6) for n in self.points}))
        if len(points) < 2:
            raise MetricflowError(f"give at least 2 distinct sizes N to fit the scaling, got {self.points!r}")
        object.__setattr__(self, "points", points)
        if self.chart not in CHARTS:
            raise MetricflowError(f"chart must be 'all' or 'one', got {self.chart!r}")

    def to_dict(self) -> dict:
        return {
            "points": list(self.points), "chart": self.chart, "seeds": self.seeds, "seed": self.seed,
            "manifold": {"degree": self.manifold.degree, "psi": [self.manifold.psi.real, self.manifold.psi.imag]},
        }


@dataclass(frozen=True, eq=False)
class ScalingResult:
    """Nearest-neighbour distances against N. P sizes, S seeds.

    Attributes:
      config: the ScalingConfig.
      points: (P,) int, the sizes N.
      mean, min, max: (P,) over points of the FS distance to the nearest other point,
        averaged over seeds (mean), and the smallest (min) and largest (max) over seeds.
      mean_by_seed: (S, P) the mean for each seed.
      fit: PowerLawFit of log mean against log N over all (seed, N) pairs.
      charts: (P,) the chart used at each N ("all", or "scale,elim" of the first seed).
      seconds: compute time.
      schema_version: SCALING_SCHEMA.
    """

    config: ScalingConfig
    points: np.ndarray
    mean: np.ndarray
    min: np.ndarray
    max: np.ndarray
    mean_by_seed: np.ndarray
    fit: PowerLawFit
    charts: tuple
    seconds: float
    schema_version: int = SCALING_SCHEMA

    def to_dict(self) -> dict:
        """JSON-ready dict (the output of ``metricflow scaling --json``)."""
        return {
            "points": self.points.tolist(),
            "mean": self.mean.tolist(),
            "min": self.min.tolist(),
            "max": self.max.tolist(),
            "mean_by_seed": self.mean_by_seed.tolist(),
            "fit_prefactor": self.fit.prefactor,
            "fit_exponent": self.fit.exponent,
            "fit_exponent_err": _json(self.fit.exponent_err),
            "fit": self.fit.to_dict(),
            "chart": self.config.chart,
            "charts": list(self.charts),
            "seeds": self.config.seeds,
            "paper": dict(PAPER_FIT),
            "seconds": self.seconds,
            "schema_version": self.schema_version,
        }


def run_scaling(config: ScalingConfig, progress: Optional[Progress] = None) -> ScalingResult:
    """Mean, min and max nearest-neighbour FS distance for each N, and the fit (eq. 3.7).

    Args:
      config: a ScalingConfig.
      progress: optional callback progress(step, total, message); one step per (N, seed).

    Returns:
      ScalingResult.
    """
    c = config
    report = progress or _quiet
    start = time.perf_counter()
    P, S = len(c.points), c.seeds
    means, mins, maxs = np.zeros((S, P)), np.zeros((S, P)), np.zeros((S, P))
    charts = []
    total = S * P
    report(0, total, "starting")
    for j, n in enumerate(c.points):
        for s in range(S):
            seed = int(np.random.SeedSequence([c.seed, SCALING_STREAM, n, s]).generate_state(1, np.uint64)[0] % 2**63)
            if c.chart == "all":
                z, where = sample_points(SampleConfig(c.manifold, n, seed)).z, "all"
            else:
                pts, chart, _ = sample_in_chart(c.manifold, n, seed, 0)
                z, where = pts.z, f"{chart[0]},{chart[1]}"
            stats = nearest_neighbour_stats(z)
            means[s, j], mins[s, j], maxs[s, j] = stats["mean"], stats["min"], stats["max"]
            if s == 0:
                charts.append(where)
            report(j * S + s + 1, total, f"N = {n:,} (seed {s}): mean nearest distance {stats['mean']:.4f}")
        publish(progress, lambda: {"panels": [panel(
            "nearest-neighbour FS distance per N", "N", "distance",
            {"mean": (c.points[: j + 1], means[:, : j + 1].mean(axis=0)),
             "min": (c.points[: j + 1], mins[:, : j + 1].min(axis=0)),
             "max": (c.points[: j + 1], maxs[:, : j + 1].max(axis=0))}, log_y=True)]})
    fit = fit_power_law(np.tile(np.asarray(c.points, dtype=float), S), means.reshape(-1))
    return ScalingResult(
        config=c,
        points=np.asarray(c.points, dtype=np.int64),
        mean=means.mean(axis=0),
        min=mins.min(axis=0),
        max=maxs.max(axis=0),
        mean_by_seed=means,
        fit=fit,
        charts=tuple(charts),
        seconds=time.perf_counter() - start,
    )


def estimate_scaling(config: ScalingConfig) -> Estimate:
    """Neighbour search ~1.2e-9 s per pair (12 s at 1e5, docs/GEOMETRY.md); one-chart
    sampling draws ~22 points per point kept (~1e-5 s each)."""
    pairs = sum(n * n for n in config.points) * config.seeds
    drawn = sum(config.points) * config.seeds * (22 if config.chart == "one" else 1)
    largest = max(config.points) * (1 if config.chart == "all" else 22)
    memory = 400 * 2**20 + 3000 * min(largest, 100_000) + 200 * max(config.points)
    return Estimate(2.0 + 1.2e-9 * pairs + 1e-5 * drawn, int(memory))


# ---- extrapolation (text after eq. 3.7) ---------------------------------------------------


@dataclass(frozen=True)
class ExtrapolationRow:
    """Points needed for one kernel to reach one test gain.

    Attributes:
      kernel: the kernel of the gain curve.
      target: the test gain asked for.
      distance: mean test-train distance at which the curve reaches it (nan if unreachable).
      points: N at which the fitted mean nearest distance equals that distance.
      points_low, points_high: N for the fitted exponent -+ its standard error (lines through
        the centroid of the fit), low <= high.
      status: "interpolated" (between measured levels), "extrapolated" (a power law beyond
        them) or "unreachable".
      reason: one line explaining an extrapolation or why the target is unreachable.
    """

    kernel: str
    target: float
    distance: float
    points: float
    points_low: float
    points_high: float
    status: str
    reason: str = ""

    def to_dict(self) -> dict:
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}


def _monotone_curve(distance: np.ndarray, gain: np.ndarray):
    """(log d, log g) of the nonzero-distance levels, sorted by distance, with the gain made
    non-increasing in distance (a running minimum from small to large distance)."""
    keep = (distance > 0) & np.isfinite(gain) & (gain > 0)
    order = np.argsort(distance[keep])
    d, g = distance[keep][order], gain[keep][order]
    g = np.minimum.accumulate(g)
    return np.log(d), np.log(g)


def _distance_for(distance: np.ndarray, gain: np.ndarray, train_gain: float, target: float):
    """(distance, status, reason) at which the monotone gain curve reaches ``target``."""
    nan = math.nan
    if not (math.isfinite(train_gain) and target <= train_gain):
        return nan, "unreachable", (
            f"the gain at zero distance (the train gain) is {train_gain:.3g} < {target:g}: "
            "no density of points reaches it with these flow settings"
        )
    x, y = _monotone_curve(distance, gain)
    t = math.log(target)
    if len(x) == 0:
        return nan, "unreachable", "no noise level with a positive distance was measured"
    if len(x) == 1:
        return nan, "unreachable", "only one noise level with a positive distance: no curve to follow"
    # Within the measured range: log-log linear between the bracketing levels.
    for i in range(len(x) - 1):
        if y[i] >= t >= y[i + 1] and y[i] > y[i + 1]:
            frac = (y[i] - t) / (y[i] - y[i + 1])
            return math.exp(x[i] + frac * (x[i + 1] - x[i])), "interpolated", ""
    if t > y[0]:
        # Above the gain at the smallest distance: power law of the first two distinct levels.
        j = next((k for k in range(1, len(x)) if y[k] < y[0]), None)
        if j is None:
            return nan, "unreachable", "the gain curve is flat: no trend to extrapolate"
        slope = (y[j] - y[0]) / (x[j] - x[0])
        return math.exp(x[0] + (t - y[0]) / slope), "extrapolated", (
            f"above the largest measured test gain {math.exp(y[0]):.3g}: power law of the two smallest-distance levels"
        )
    if t < y[-1]:
        j = next((k for k in range(len(x) - 2, -1, -1) if y[k] > y[-1]), None)
        if j is None:
            return nan, "unreachable", "the gain curve is flat: no trend to extrapolate"
        slope = (y[-1] - y[j]) / (x[-1] - x[j])
        return math.exp(x[-1] + (t - y[-1]) / slope), "extrapolated", (
            f"below the smallest measured test gain {math.exp(y[-1]):.3g}: power law of the largest-distance levels"
        )
    # t equals a plateau value: the smallest distance on it.
    on = np.flatnonzero(np.isclose(y, t))
    if on.size == 0:
        return nan, "unreachable", "the gain curve does not pass through the target"
    return math.exp(x[on[-1]]), "interpolated", ""


def extrapolate(noise: NoiseResult, fit: PowerLawFit, targets=(100.0, 1e6)) -> tuple:
    """How many points a kernel needs to reach each target test gain (section 3.2.4).

    The target gain is located on the gain-against-distance curve, made non-increasing and
    interpolated linearly in log gain against log distance (beyond the measured levels, the
    power law of the last two distinct levels); the distance is then converted to N with the
    fit mu = a N^b, and with b -+ its standard error for the range. A target above the train
    gain (the gain at zero distance) is unreachable at any N.

    Args:
      noise: a NoiseResult (the gain curve).
      fit: a PowerLawFit of mean nearest distance against N (``ScalingResult.fit``).
      targets: the test gains to reach.

    Returns:
      tuple of ExtrapolationRow, one per target.
    """
    rows = []
    for target in _numbers(targets, "target gains"):
        if not (math.isfinite(target) and target > 0):
            raise MetricflowError(f"a target gain must be a positive number, got {target!r}")
        d, status, reason = _distance_for(noise.distance, noise.gain, noise.train_gain, target)
        if status == "unreachable":
            rows.append(ExtrapolationRow(noise.config.kernel, target, d, math.nan, math.nan, math.nan, status, reason))
            continue
        n = fit.points_for(d)
        err = fit.exponent_err if math.isfinite(fit.exponent_err) else 0.0
        span = sorted(fit.points_for(d, fit.exponent + s * err) for s in (-1.0, 1.0))
        if not math.isfinite(n):
            status, reason = "unreachable", "the fitted distance does not fall with N (exponent >= 0)"
        rows.append(ExtrapolationRow(noise.config.kernel, target, d, n, span[0], span[1], status, reason))
    return tuple(rows)
