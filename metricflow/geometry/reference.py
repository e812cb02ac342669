"""The reference kappa of a manifold: the one kappa every sigma is measured against.

kappa = Vol_FS / int |Omega|^2 (eq. B.10) depends only on the Kahler class, so it is a number
of the manifold, not of a point set. At the Fermat point it has a closed form
(``Manifold.exact_kappa``). Elsewhere it is estimated once from ``REFERENCE_POINTS`` seeded
points, with its standard error, and kept: in this process, and in the job store when the job
layer has installed its loader (``set_kappa_loader``). It is never estimated from the set being
measured: a 1 % error in kappa is a floor of about 0.01 under sigma.

Example:
  >>> reference_kappa(manifold("quintic"))            # exact
  Kappa(value=0.0176189..., se=0.0, n_points=None, seed=None, exact=True)
  >>> reference_kappa(manifold("quintic", psi=0.5))   # 10^6 points, about 10 s, then cached
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, ClassVar, Optional

import numpy as np

from metricflow.constraints import Count, Points, validate
from metricflow.estimates import Estimate
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.measures import Kappa, volume_ratio_numpy
from metricflow.geometry.points import SampleConfig, memory_estimate, sample_points

__all__ = [
    "REFERENCE_POINTS",
    "REFERENCE_SEED",
    "KappaConfig",
    "estimate_kappa",
    "reference_kappa",
    "run_kappa",
    "set_kappa_loader",
]

# The sample behind every estimated reference kappa: 10^6 points (relative error ~5e-4).
REFERENCE_POINTS = 1_000_000
REFERENCE_SEED = 0

# Points sampled at once while estimating (about 300 MiB each).
CHUNK = 100_000

# Bump when Kappa or the estimate's meaning changes: stored estimates are then recomputed.
KAPPA_SCHEMA = 1

_known: dict[Manifold, Kappa] = {}
_lock = threading.Lock()
_loader: Optional[Callable[[Manifold], Kappa]] = None


@dataclass(frozen=True)
class KappaConfig:
    """Estimate kappa of g_FS on ``manifold`` from ``n_points`` points drawn from ``seed``."""

    manifold: Manifold = Manifold()
    n_points: int = REFERENCE_POINTS
    seed: int = REFERENCE_SEED

    constraints: ClassVar[dict] = {"n_points": Points("points"), "seed": Count("seed", minimum=0, maximum=2**63 - 1)}

    def __post_init__(self):
        validate(self)


def estimate_kappa(manifold: Manifold, n_points: int, seed: int, progress=None) -> Kappa:
    """kappa of g_FS from ``n_points`` fresh points, in chunks, with its standard error.

    Args:
      manifold: the hypersurface.
      n_points: sample size.
      seed: the sample's seed; chunk i is drawn from SeedSequence([seed, i]).
      progress: optional ``progress(step, total, message)``.

    Returns:
      Kappa (exact=False).
    """
    report = progress or (lambda *a, **k: None)
    chunks = -(-n_points // CHUNK)
    sw = swv = sww = swwv = swwvv = 0.0
    for i in range(chunks):
        size = min(CHUNK, n_points - i * CHUNK)
        chunk_seed = int(np.random.SeedSequence([seed, i]).generate_state(1, np.uint64)[0] % 2**63)
        pts = sample_points(SampleConfig(manifold, size, chunk_seed))
        w = np.asarray(pts.weights, dtype=np.float64)
        v = volume_ratio_numpy(pts.g_fs, pts.omega_sq)
        sw, swv = sw + w.sum(), swv + (w * v).sum()
        sww, swwv, swwvv = sww + (w * w).sum(), swwv + (w * w * v).sum(), swwvv + (w * w * v * v).sum()
        report(i + 1, chunks, f"kappa from {min(n_points, (i + 1) * CHUNK):,} points")
    mean = swv / sw
    se = np.sqrt(max(swwvv - 2 * mean * swwv + mean * mean * sww, 0.0)) / sw
    return Kappa(float(mean), float(se), int(n_points), int(seed), exact=False)


def run_kappa(config: KappaConfig, progress=None) -> Kappa:
    """The job function for a KappaConfig (exact at the Fermat point needs no job)."""
    return estimate_kappa(config.manifold, config.n_points, config.seed, progress)


def set_kappa_loader(loader: Optional[Callable[[Manifold], Kappa]]) -> None:
    """Install how an estimated reference kappa is fetched (the job layer keeps it in the store).

    Args:
      loader: ``loader(manifold) -> Kappa`` for the default sample, or None to estimate here.
    """
    global _loader
    _loader = loader


def reference_kappa(manifold: Manifold) -> Kappa:
    """The reference kappa of ``manifold``: exact at the Fermat point, else a stored estimate.

    Returns:
      Kappa. Exact ones have se = 0; estimated ones come from ``REFERENCE_POINTS`` points with
      seed ``REFERENCE_SEED``.
    """
    exact = manifold.exact_kappa()
    if exact is not None:
        return Kappa(float(exact), 0.0, None, None, exact=True)
    with _lock:
        known = _known.get(manifold)
        if known is None:
            if _loader is not None:
                known = _loader(manifold)
            else:
                known = estimate_kappa(manifold, REFERENCE_POINTS, REFERENCE_SEED)
            _known[manifold] = known
    return known


def estimate_kappa_config(config: KappaConfig) -> Estimate:
    """Sampling in chunks: the time of sampling the points, the memory of one chunk."""
    d = config.manifold.degree
    return Estimate(2.0 + 3.5e-6 * d * config.n_points, memory_estimate(min(config.n_points, CHUNK), d))
