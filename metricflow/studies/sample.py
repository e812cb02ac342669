"""The sample study: points on the manifold and the sigma-measure of the FS metric there."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass

import numpy as np

from metricflow.estimates import Estimate
from metricflow.geometry.measures import SigmaReport, measure_sigma, volume_ratio_numpy
from metricflow.geometry.points import SampleConfig, memory_estimate, sample_points
from metricflow.geometry.reference import reference_kappa

__all__ = [
    "SampleResult",
    "run_sample",
    "estimate_sample",
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
