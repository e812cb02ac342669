"""The moduli dependence along the Dwork family: sigma of g_FS and of Donaldson's balanced
metric g_k as functions of psi, one Donaldson run per psi."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from metricflow.constraints import Count, validate
from metricflow.errors import ConfigTypeError, MetricflowError
from metricflow.estimates import Estimate
from metricflow.flows.donaldson import MAX_K, SWEEP_PSIS, DonaldsonConfig, estimate_donaldson, run_donaldson
from metricflow.geometry.manifolds import Manifold
from metricflow.progress import ConfigMap, Progress, no_progress, serial_map

__all__ = [
    "DONALDSON_SWEEP_SCHEMA",
    "DonaldsonSweepConfig",
    "DonaldsonSweepResult",
    "run_donaldson_sweep",
    "estimate_donaldson_sweep",
]

DONALDSON_SWEEP_SCHEMA = 1


# ---- the moduli sweep -----------------------------------------------------------------


@dataclass(frozen=True)
class DonaldsonSweepConfig:
    """sigma of g_FS and of the balanced g_k along the Dwork family, one Donaldson job per psi.

    Attributes:
      psis: the complex structure values (none with psi^5 = 1).
      k: the degree of the balanced metric.
      n_points, n_test, seed, tol, max_iterations: as in DonaldsonConfig.
      degree: the Dwork degree d (5: quintics).
    """

    psis: tuple = SWEEP_PSIS
    k: int = 3
    n_points: int = 20_000
    n_test: int = 20_000
    seed: int = 0
    tol: float = 1e-6
    max_iterations: int = 200
    degree: int = 5

    # As in DonaldsonConfig; the degree is checked by Manifold, the cross-field checks by
    # DonaldsonConfig (donaldson_configs below).
    constraints: ClassVar[dict] = {
        "k": Count("degree k", maximum=MAX_K),
        **{name: DonaldsonConfig.constraints[name] for name in ("n_points", "n_test", "seed", "tol", "max_iterations")},
    }

    def __post_init__(self):
        validate(self)
        try:
            psis = tuple(complex(p) for p in self.psis)
        except (TypeError, ValueError):
            raise ConfigTypeError(f"psis must be complex numbers such as (0, 0.5, 10+3j), got {self.psis!r}") from None
        if not psis:
            raise MetricflowError("give at least one psi")
        if len(set(psis)) != len(psis):
            raise MetricflowError(f"psis must not repeat, got {psis}")
        object.__setattr__(self, "psis", psis)
        for cfg in self.donaldson_configs():  # validates psi and the sizes, one line each
            pass

    def donaldson_configs(self) -> list[DonaldsonConfig]:
        """The per-psi DonaldsonConfigs of degrees (1, k)."""
        ks = (1,) if self.k == 1 else (1, self.k)
        return [
            DonaldsonConfig(Manifold(self.degree, p), ks, self.n_points, self.n_test, self.seed,
                            tol=self.tol, max_iterations=self.max_iterations)
            for p in self.psis
        ]


@dataclass(frozen=True, eq=False)
class DonaldsonSweepResult:
    """sigma along the family. P values of psi; arrays are (P,) float64.

    Attributes:
      config: the DonaldsonSweepConfig.
      psis: (P,) complex128.
      sigma_fs, sigma_fs_se: g_FS on each psi's test points.
      sigma, sigma_se: the balanced g_k.
      sigma_self, sigma_self_se: the balanced g_k, self-normalised.
      kappa, kappa_se: the reference kappa of each psi.
      iterations: (P,) int64 at degree k.
      seconds: (P,) float64, wall time of each psi's job.
    """

    config: DonaldsonSweepConfig
    psis: np.ndarray
    sigma_fs: np.ndarray
    sigma_fs_se: np.ndarray
    sigma: np.ndarray
    sigma_se: np.ndarray
    sigma_self: np.ndarray
    sigma_self_se: np.ndarray
    kappa: np.ndarray
    kappa_se: np.ndarray
    iterations: np.ndarray
    seconds: np.ndarray

    def summary(self) -> dict:
        """JSON-ready: one row per psi."""
        rows = []
        for i, p in enumerate(self.psis):
            rows.append({
                "psi": [float(p.real), float(p.imag)], "sigma_fs": float(self.sigma_fs[i]),
                "sigma_fs_se": float(self.sigma_fs_se[i]), "sigma": float(self.sigma[i]),
                "sigma_se": float(self.sigma_se[i]), "sigma_self": float(self.sigma_self[i]),
                "sigma_self_se": float(self.sigma_self_se[i]), "kappa": float(self.kappa[i]),
                "kappa_se": float(self.kappa_se[i]), "iterations": int(self.iterations[i]),
                "seconds": float(self.seconds[i]),
            })
        c = self.config
        return {"k": c.k, "points": c.n_points, "test_points": c.n_test, "seed": c.seed, "per_psi": rows}


def run_donaldson_sweep(
    config: DonaldsonSweepConfig, progress: Optional[Progress] = None, map_configs: ConfigMap = serial_map
) -> DonaldsonSweepResult:
    """One Donaldson run per psi, then sigma_FS(psi) and sigma_k(psi).

    Args:
      config: the sweep.
      progress: optional ``progress(done, total, message)``.
      map_configs: runs the DonaldsonConfigs (``metricflow.progress.ConfigMap``); the job
        runner passes one that makes each a cached job, run in parallel.
    """
    report = progress or no_progress
    report(0, 1, f"Donaldson's algorithm at {len(config.psis)} values of psi")
    results = map_configs(run_donaldson, config.donaldson_configs())
    report(1, 1, "done")
    last = lambda r, name: float(getattr(r, name)[-1])  # noqa: E731
    arr = lambda vals, dtype=np.float64: np.asarray(vals, dtype=dtype)  # noqa: E731
    return DonaldsonSweepResult(
        config=config, psis=arr(config.psis, complex),
        sigma_fs=arr([r.sigma_fs for r in results]), sigma_fs_se=arr([r.sigma_fs_se for r in results]),
        sigma=arr([last(r, "sigma") for r in results]), sigma_se=arr([last(r, "sigma_se") for r in results]),
        sigma_self=arr([last(r, "sigma_self") for r in results]),
        sigma_self_se=arr([last(r, "sigma_self_se") for r in results]),
        kappa=arr([r.kappa for r in results]), kappa_se=arr([r.kappa_se for r in results]),
        iterations=arr([int(r.iterations[-1]) for r in results], np.int64),
        seconds=arr([r.total_seconds for r in results]),
    )


def estimate_donaldson_sweep(config: DonaldsonSweepConfig):
    """The sum of the per-psi estimates (they may run in parallel), and the largest memory."""
    parts = [estimate_donaldson(c) for c in config.donaldson_configs()]
    return Estimate(float(sum(p.seconds for p in parts)), int(max(p.bytes for p in parts)))
