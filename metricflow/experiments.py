"""Results of the dashboard's jobs, the functions that compute them, and their registration.

Each job kind is a frozen config, a pure ``function(config, progress) -> result`` and a
result dataclass with named arrays. The ``register`` calls at the bottom tell the job runner
(``metricflow.jobs``) which function and schema version serve each config type.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass

import numpy as np

from metricflow.errors import MetricflowError
from metricflow.flow import SAMPLE_BATCH, SCHEMA_VERSION as FLOW_SCHEMA, FlowConfig, run_flow
from metricflow.jobs import Estimate, register
from metricflow.kernels import MAX_DENSE_ENTRIES
from metricflow.measures import SigmaReport, measure_sigma, volume_ratio_numpy
from metricflow.reference import KAPPA_SCHEMA, CHUNK, KappaConfig, reference_kappa, run_kappa, set_kappa_loader
from metricflow.points import SampleConfig, memory_estimate
from metricflow.theory import THEORY_SCHEMA, TheoryConfig, estimate_theory, run_theory
from metricflow.clustering import (
    CLUSTER_FLOW_SCHEMA,
    CLUSTER_SCHEMA,
    ClusterConfig,
    ClusterFlowConfig,
    estimate_cluster_flow,
    estimate_clustering,
    run_cluster_flow,
    run_clustering,
)
from metricflow.generalisation import (
    NOISE_SCHEMA, SCALING_SCHEMA, NoiseConfig, ScalingConfig, estimate_noise, estimate_scaling, run_noise, run_scaling,
)

__all__ = [
    "SampleResult",
    "run_sample",
    "estimate_sample",
    "estimate_flow",
    "flow_csv",
    "SAMPLE_SCHEMA",
    "PLOT_POINTS",
]

# Bump when SampleResult's fields or their meaning change: cached results are then recomputed.
SAMPLE_SCHEMA = 2

# How many points keep their |z_i| for scatter plots.
PLOT_POINTS = 500


@dataclass(frozen=True, eq=False)
class SampleResult:
    """Points sampled for a SampleConfig and the sigma-measure of the FS metric there.

    N points, d homogeneous coordinates, C charts in use, M = min(N, PLOT_POINTS).

    Attributes:
      config: the SampleConfig.
      sigma: sigma of g_FS (eq. B.11) in both conventions, with standard errors: against
        the manifold's reference kappa, and self-normalised (kappa_self from these points).
      kappa_exact: kappa in closed form (Fermat point only), else None.
      weights: (N,) float64, Monte-Carlo weights |Omega|^2 / det g_FS.
      eta: (N,) float64, det g_FS / (kappa_ref |Omega|^2) (eq. B.11).
      charts: (C, 2) int, the (scale, elim) index pairs in use, sorted.
      chart_counts: (C,) int, how many points use each chart.
      plot_index: (M,) int, the points kept for scatter plots (indices into weights, eta).
      abs_z: (M, d) float64, |z_i| of those points in their patch (largest entry 1).
      lines_drawn: number of random lines intersected with X.
      seconds: compute time.
    """

    config: SampleConfig
    sigma: SigmaReport
    kappa_exact: float | None
    weights: np.ndarray
    eta: np.ndarray
    charts: np.ndarray
    chart_counts: np.ndarray
    plot_index: np.ndarray
    abs_z: np.ndarray
    lines_drawn: int
    seconds: float

    @property
    def n_points(self) -> int:
        return int(self.weights.shape[0])

    @property
    def sigma_fs(self) -> float:
        """Reference-kappa sigma of g_FS."""
        return self.sigma.sigma

    @property
    def kappa(self) -> float:
        """The reference kappa."""
        return self.sigma.kappa

    def summary(self) -> dict:
        """The scalars as a JSON-ready dict (the same fields as ``metricflow sample --json``)."""
        m = self.config.manifold
        return {
            "manifold": m.name,
            "psi": [m.psi.real, m.psi.imag],
            "seed": self.config.seed,
            "points": self.n_points,
            "lines_drawn": self.lines_drawn,
            "sigma_fs": self.sigma.sigma,
            "sigma_fs_se": self.sigma.sigma_se,
            "sigma_fs_self": self.sigma.sigma_self,
            "sigma_fs_self_se": self.sigma.sigma_self_se,
            "kappa": self.sigma.kappa,
            "kappa_se": self.sigma.kappa_se,
            "kappa_exact": self.kappa_exact,
            "kappa_sample": self.sigma.kappa_self,
            "kappa_sample_se": self.sigma.kappa_self_se,
            "charts": {f"{a},{e}": int(c) for (a, e), c in zip(self.charts, self.chart_counts)},
            "seconds": self.seconds,
        }

    def points_csv(self) -> str:
        """Per-point data as CSV text: columns weight, eta."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["weight", "eta"])
        writer.writerows(zip(self.weights.tolist(), self.eta.tolist()))
        return out.getvalue()


def run_sample(config: SampleConfig, progress=None) -> SampleResult:
    """Sample the points of ``config`` and measure the FS metric there.

    Args:
      config: what to sample.
      progress: optional ``progress(step, total, message)``.
    """
    from metricflow.points import sample_points

    report = progress or (lambda *a, **k: None)
    start = time.perf_counter()
    report(0, 3, "sampling points")
    pts = sample_points(config)
    report(1, 3, "measuring sigma and kappa")
    reference = reference_kappa(config.manifold)
    measured = measure_sigma(pts.g_fs, pts.omega_sq, pts.weights, reference)
    e = volume_ratio_numpy(pts.g_fs, pts.omega_sq) / reference.value
    report(2, 3, "summarising")
    charts, counts = np.unique(pts.chart, axis=0, return_counts=True)
    rng = np.random.default_rng(config.seed)
    keep = np.sort(rng.choice(len(pts), size=min(len(pts), PLOT_POINTS), replace=False))
    result = SampleResult(
        config=config,
        sigma=measured,
        kappa_exact=config.manifold.exact_kappa(),
        weights=np.asarray(pts.weights, dtype=np.float64),
        eta=e.astype(np.float64),
        charts=charts.astype(np.int64),
        chart_counts=counts.astype(np.int64),
        plot_index=keep.astype(np.int64),
        abs_z=np.abs(pts.z[keep]),
        lines_drawn=int(pts.lines_drawn),
        seconds=time.perf_counter() - start,
    )
    report(3, 3, "done")
    return result


def estimate_sample(config: SampleConfig) -> Estimate:
    """About 2 s to start a worker (JAX import), then ~3 us per point per coordinate."""
    d = config.manifold.degree
    return Estimate(2.0 + 3.5e-6 * d * config.n_points, memory_estimate(config.n_points, d))


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
# The worker's baseline: interpreter, NumPy, SciPy and JAX; relu-ntk also imports TensorFlow.
WORKER_BYTES = 400 * 2**20
TENSORFLOW_BYTES = 1200 * 2**20
# Per point kept: g and its gradient, update and copies (3 x 3 complex), eigenvalues, chart data.
FLOW_POINT_BYTES = 4096


def _dense(config: FlowConfig) -> bool:
    c = config
    return c.kernel == "relu-ntk" or (c.kernel == "cosnet" and c.width is None) or (c.kernel == "gaussian" and c.radius is None)


def estimate_flow(config: FlowConfig) -> Estimate:
    """Expected seconds and peak bytes of ``run_flow(config)``; raises if a dense kernel is too big.

    N train and M test points. A dense kernel (relu-ntk, gaussian without radius, analytic
    cosnet) holds K_train (N, N) and K_test (M, N) in float64, with a temporary copy: about
    16 N (N + M) bytes. A finite-width cosnet holds its features (N + M, width); a cutoff
    gaussian keeps the entries within the radius (about 4 sin(radius)^6 of them, the volume
    of an FS ball on a 3-fold), delta one entry per row. Times are fitted to
    ``benchmarks/bench_flow.py`` on 2 cores: ~1e-5 s per sampled point, ~6e-8 s per dense
    kernel entry (2.5e-6 for relu-ntk, plus ~5 s to import TensorFlow), and per step ~4e-6 s
    per point plus ~8e-9 s per kernel entry.
    """
    c = config
    n, m = c.n_train, c.n_test
    entries = n * (n + m)
    if _dense(c) and entries > MAX_DENSE_ENTRIES:
        raise MetricflowError(
            f"the {c.kernel} kernel would be dense {n:,} x {n + m:,} ({8 * entries / 2**30:.1f} GiB), over the "
            f"limit of {MAX_DENSE_ENTRIES:,} entries; use fewer points, a cutoff radius or the delta kernel"
        )
    drawn = OVERSAMPLE * (n + m) if c.coordinates == "reject" else n + m
    seconds = 2.0 + 1e-5 * drawn
    memory = WORKER_BYTES + memory_estimate(min(SAMPLE_BATCH, OVERSAMPLE * max(n, m)), c.manifold.degree)
    memory += FLOW_POINT_BYTES * (n + m)
    if _dense(c):
        memory += 16 * entries
        kept = entries
        seconds += (2.5e-6 * entries + 5.0) if c.kernel == "relu-ntk" else 6e-8 * entries
        if c.kernel == "relu-ntk":
            memory += 8 * entries + TENSORFLOW_BYTES
    elif c.kernel == "cosnet":
        memory += 16 * c.width * (n + m)
        kept = c.width * (n + m)
        seconds += 2e-8 * c.width * (n + m) * c.manifold.degree
    elif c.kernel == "gaussian":
        kept = int(entries * min(1.0, 4.0 * np.sin(c.radius) ** 6)) + n + m
        memory += 32 * kept
        seconds += 1e-7 * kept + 2e-5 * (n + m)
    else:  # delta
        kept = n + m
        memory += 32 * kept
        seconds += 2e-5 * (n + m)
    seconds += c.steps * (4e-6 * (n + m) + 8e-9 * kept)
    return Estimate(float(seconds), int(memory))


def estimate_kappa_job(config: KappaConfig) -> Estimate:
    """Sampling in chunks: the time of sampling the points, the memory of one chunk."""
    d = config.manifold.degree
    return Estimate(2.0 + 3.5e-6 * d * config.n_points, memory_estimate(min(config.n_points, CHUNK), d))


def _stored_reference_kappa(m) -> object:
    """The default reference-kappa estimate for ``m``, computed once and kept in the job store."""
    from metricflow import reference
    from metricflow.jobs import run_job

    return run_job(KappaConfig(m, reference.REFERENCE_POINTS, reference.REFERENCE_SEED))


register(KappaConfig, run_kappa, KAPPA_SCHEMA, estimate_kappa_job)
set_kappa_loader(_stored_reference_kappa)
register(SampleConfig, run_sample, SAMPLE_SCHEMA, estimate_sample)
register(FlowConfig, run_flow, FLOW_SCHEMA, estimate_flow)
register(TheoryConfig, run_theory, THEORY_SCHEMA, estimate_theory)
register(NoiseConfig, run_noise, NOISE_SCHEMA, estimate_noise)
register(ScalingConfig, run_scaling, SCALING_SCHEMA, estimate_scaling)

# Hyperparameter search (issue 8); each of its evaluations is itself a FlowConfig job.
from metricflow.tuning import TUNE_SCHEMA, TuneConfig, estimate_tune, run_tune  # noqa: E402

register(TuneConfig, run_tune, TUNE_SCHEMA, estimate_tune)
register(ClusterConfig, run_clustering, CLUSTER_SCHEMA, estimate_clustering)
register(ClusterFlowConfig, run_cluster_flow, CLUSTER_FLOW_SCHEMA, estimate_cluster_flow)

# Finite-width networks and the evolving metric-NTK (issue 7, section 3.3).
from metricflow.metric_ntk import (  # noqa: E402
    TRAINED_KERNEL_SCHEMA,
    WIDTH_SCHEMA,
    TrainedKernelConfig,
    WidthSweepConfig,
    estimate_trained_kernel,
    estimate_width_sweep,
    run_trained_kernel,
    run_width_sweep,
)
from metricflow.networks import TRAIN_SCHEMA, TrainConfig, estimate_train, train  # noqa: E402

register(TrainConfig, train, TRAIN_SCHEMA, estimate_train)
register(WidthSweepConfig, run_width_sweep, WIDTH_SCHEMA, estimate_width_sweep)
register(TrainedKernelConfig, run_trained_kernel, TRAINED_KERNEL_SCHEMA, estimate_trained_kernel)

# Donaldson's balanced metrics and their sweep along the Dwork family (issue 17).
from metricflow.donaldson import (  # noqa: E402
    DONALDSON_SCHEMA,
    DONALDSON_SWEEP_SCHEMA,
    DonaldsonConfig,
    DonaldsonSweepConfig,
    estimate_donaldson,
    estimate_donaldson_sweep,
    run_donaldson,
    run_donaldson_sweep,
)

register(DonaldsonConfig, run_donaldson, DONALDSON_SCHEMA, estimate_donaldson)
register(DonaldsonSweepConfig, run_donaldson_sweep, DONALDSON_SWEEP_SCHEMA, estimate_donaldson_sweep)
