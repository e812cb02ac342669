"""Theory lab: the cos-net NTK at finite and infinite width, and its local limit (section 2.3.2).

Two numerical checks of the paper's construction, computed with the kernel code the flow
uses (``metricflow.kernels``), never with closed forms written out here:

  * Width: the empirical NTK of the finite cosine net (eq. 2.33), with only the last layer
    trained, converges to the analytic normalised Gaussian (eq. 2.35, 2.36) as the width N
    grows, with an error that falls like 1/sqrt(N) (law of large numbers, eq. 2.34).
  * Locality: the normalised kernel has width sigma = sqrt(d) / sigma_w (eq. 2.37) and unit
    mass over R^d, so as sigma_w -> infinity it tends to a delta function (eq. 2.24, 2.29):
    the NN metric flow becomes local, the setting in which Ricci flow (2.39), in Perelman's
    gradient form (2.40)-(2.42), is an NN metric flow.

Inputs lie on a straight line through the origin of R^d, x(t) = t u with a random unit
vector u (from the seed), so |x(t) - x(t')| = |t - t'|: a one-dimensional slice of the
d-dimensional input space (d = 10 for points of P^4: real and imaginary parts of z).

Example:
  >>> result = run_theory(TheoryConfig(widths=(10, 100, 1000), trials=2))
  >>> result.error, result.slope       # about -0.5
  >>> result.width_measured / result.width_eq237   # about 1
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from metricflow.constraints import SEED, Count, Positive, validate
from metricflow.errors import ConfigTypeError, MetricflowError, check_count, check_positive
from metricflow.estimates import Estimate
from metricflow.progress import Progress

__all__ = ["THEORY_SCHEMA", "TheoryConfig", "TheoryResult", "run_theory", "estimate_theory"]

# Bump when TheoryResult's fields or their meaning change: cached results are then recomputed.
THEORY_SCHEMA = 1

# Points on the line for the locality profiles, and on the radial grid for the mass.
PROFILE_POINTS = 2001
RADIAL_POINTS = 4001



@dataclass(frozen=True)
class TheoryConfig:
    """What the theory lab computes. Validated on construction; computes nothing.

    Attributes:
      d: input dimension (10: real and imaginary parts of the 5 coordinates of P^4).
      sigma_w: weight scale of the width study (eq. 2.32: w ~ N(0, sigma_w^2 / d)).
      widths: network widths N of the empirical kernel (eq. 2.33), sorted, distinct.
      trials: independent draws of the network per width (the error is their mean).
      n_inputs: points on the line for the width study, spread over +-3 sigma (eq. 2.37).
      locality_sigma_w: the sigma_w values of the locality study, sorted, distinct.
      seed: seeds the line direction and every network draw; no global RNG.
    """

    d: int = 10
    sigma_w: float = 10.0
    widths: tuple = (10, 32, 100, 316, 1000, 3162, 10000)
    trials: int = 4
    n_inputs: int = 41
    locality_sigma_w: tuple = (1.0, 3.0, 10.0, 30.0, 100.0)
    seed: int = 0

    constraints: ClassVar[dict] = {
        "d": Count("input dimension d", maximum=1000),
        "sigma_w": Positive("sigma_w"),
        "trials": Count("trials", maximum=1000),
        "n_inputs": Count("inputs on the line", minimum=3, maximum=2000),
        "seed": SEED,
    }

    def __post_init__(self):
        validate(self)
        # The two sequences: each entry checked, then stored sorted and distinct.
        try:
            widths = tuple(sorted({check_count(w, "cosnet width", maximum=10**6) for w in self.widths}))
            sws = tuple(sorted({check_positive(s, "locality sigma_w") for s in self.locality_sigma_w}))
        except TypeError:
            raise ConfigTypeError(
                f"widths and locality_sigma_w must be sequences of numbers, got {self.widths!r}, "
                f"{self.locality_sigma_w!r}"
            ) from None
        if len(widths) < 2:
            raise MetricflowError(f"give at least 2 distinct widths to see the 1/sqrt(N) trend, got {self.widths!r}")
        if not sws:
            raise MetricflowError("give at least one sigma_w for the locality study, got none")
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "locality_sigma_w", sws)

    def to_dict(self) -> dict:
        return {
            "d": self.d, "sigma_w": self.sigma_w, "widths": list(self.widths), "trials": self.trials,
            "n_inputs": self.n_inputs, "locality_sigma_w": list(self.locality_sigma_w), "seed": self.seed,
        }


@dataclass(frozen=True, eq=False)
class TheoryResult:
    """The numbers of the theory lab. W widths, T inputs on the line, S locality sigma_w, P profile points.

    Attributes:
      config: the TheoryConfig.
      t: (T,) positions on the line, x(t) = t u; the kernel curves are Theta(x(t), x(0)).
      analytic: (T,) the infinite-width kernel (eq. 2.35 with A of eq. 2.36) at sigma_w.
      empirical: (W, T) the finite-width kernel (eq. 2.33) of the first draw at each width.
      widths: (W,) int, the widths N.
      error: (W,) mean over draws of the RMS error over the T x T Gram matrix, relative to
        the peak Theta(x, x) = A^2 / 2.
      error_std: (W,) standard deviation of that error over the draws (0 for one draw).
      slope: least-squares slope of log error against log N (theory: -1/2).
      reference: c such that c / sqrt(N) best fits the error (least squares in log space).
      sigma_w: (S,) the locality study's sigma_w values.
      r: (P,) positions on the line for the profiles, +-4 times the widest sigma.
      profiles: (S, P) Theta(x(r), 0), the normalised kernel at each sigma_w.
      peak: (S,) Theta(0, 0) = A^2 / 2 for each sigma_w.
      width_measured: (S,) sqrt of the second moment of each profile along the line.
      width_eq237: (S,) sqrt(d) / sigma_w (eq. 2.37), from ``cosnet_width``.
      mass: (S,) integral of Theta(x, 0) over R^d (radial quadrature): 1 when normalised.
      seconds: compute time.
    """

    config: TheoryConfig
    t: np.ndarray
    analytic: np.ndarray
    empirical: np.ndarray
    widths: np.ndarray
    error: np.ndarray
    error_std: np.ndarray
    slope: float
    reference: float
    sigma_w: np.ndarray
    r: np.ndarray
    profiles: np.ndarray
    peak: np.ndarray
    width_measured: np.ndarray
    width_eq237: np.ndarray
    mass: np.ndarray
    seconds: float
    schema_version: int = THEORY_SCHEMA

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        out = {}
        for name, value in self.__dict__.items():
            out[name] = value.tolist() if isinstance(value, np.ndarray) else value
        out["config"] = self.config.to_dict()
        return out

    def width_csv(self) -> str:
        """CSV text: width, error, error_std."""
        rows = ["width,error,error_std"]
        rows += [f"{int(n)},{e!r},{s!r}" for n, e, s in zip(self.widths, self.error.tolist(), self.error_std.tolist())]
        return "\n".join(rows) + "\n"

    def locality_csv(self) -> str:
        """CSV text: sigma_w, width_measured, width_eq237, peak, mass."""
        rows = ["sigma_w,width_measured,width_eq237,peak,mass"]
        rows += [
            ",".join(repr(float(v)) for v in row)
            for row in zip(self.sigma_w, self.width_measured, self.width_eq237, self.peak, self.mass)
        ]
        return "\n".join(rows) + "\n"


def _direction(seed: int, d: int) -> np.ndarray:
    u = np.random.default_rng(np.random.SeedSequence([seed, 0])).standard_normal(d)
    return u / np.linalg.norm(u)


def _draw_seed(seed: int, width_index: int, trial: int) -> int:
    return int(np.random.SeedSequence([seed, 1, width_index, trial]).generate_state(1, np.uint64)[0] % 2**63)


def run_theory(config: TheoryConfig, progress: Optional[Progress] = None) -> TheoryResult:
    """Measure the cos-net NTK's convergence in width and its narrowing as sigma_w grows.

    Args:
      config: a TheoryConfig.
      progress: optional callback progress(step, total, message).

    Returns:
      TheoryResult.
    """
    from metricflow.kernels import cosnet_empirical_kernel, cosnet_init, cosnet_kernel, cosnet_width

    c = config
    report = progress or (lambda step, total, message="": None)
    start = time.perf_counter()
    total = len(c.widths) + len(c.locality_sigma_w)
    u = _direction(c.seed, c.d)

    # (a) width: empirical (2.33) against analytic (2.35) on the line, over +-3 sigma (2.37)
    sigma = cosnet_width(c.sigma_w, c.d)
    t = np.linspace(-3.0 * sigma, 3.0 * sigma, c.n_inputs)
    x = t[:, None] * u[None, :]
    origin = np.zeros((1, c.d))
    gram = cosnet_kernel(x, x, c.sigma_w)
    analytic = cosnet_kernel(x, origin, c.sigma_w)[:, 0]
    peak = float(cosnet_kernel(origin, origin, c.sigma_w)[0, 0])
    empirical = np.empty((len(c.widths), c.n_inputs))
    error = np.empty(len(c.widths))
    error_std = np.empty(len(c.widths))
    for i, width in enumerate(c.widths):
        errs = []
        for trial in range(c.trials):
            params = cosnet_init(_draw_seed(c.seed, i, trial), width, c.d, c.sigma_w)
            k = cosnet_empirical_kernel(params, x, x, c.sigma_w).toarray()
            errs.append(np.sqrt(np.mean((k - gram) ** 2)) / peak)
            if trial == 0:
                empirical[i] = cosnet_empirical_kernel(params, x, origin, c.sigma_w).toarray()[:, 0]
        error[i], error_std[i] = np.mean(errs), np.std(errs)
        report(i + 1, total, f"width {width:,}: relative error {error[i]:.3g}")
    log_n, log_e = np.log(np.asarray(c.widths, dtype=float)), np.log(error)
    slope = float(np.polyfit(log_n, log_e, 1)[0])
    reference = float(np.exp(np.mean(log_e + 0.5 * log_n)))

    # (b) locality: profiles along the line, their widths and their mass over R^d
    sws = np.asarray(c.locality_sigma_w, dtype=float)
    widest = max(cosnet_width(s, c.d) for s in sws)
    r = np.linspace(-4.0 * widest, 4.0 * widest, PROFILE_POINTS)
    xr = r[:, None] * u[None, :]
    profiles = np.empty((len(sws), PROFILE_POINTS))
    peaks, measured, eq237, mass = (np.empty(len(sws)) for _ in range(4))
    shell = 2.0 * math.pi ** (c.d / 2.0) / math.gamma(c.d / 2.0)  # area of the unit sphere S^(d-1)
    for j, s in enumerate(sws):
        profiles[j] = cosnet_kernel(xr, origin, s)[:, 0]
        peaks[j] = cosnet_kernel(origin, origin, s)[0, 0]
        eq237[j] = cosnet_width(s, c.d)
        # second moment on a grid fine enough for this width (the shared grid may not be)
        fine = np.linspace(-8.0 * eq237[j], 8.0 * eq237[j], PROFILE_POINTS)
        kf = cosnet_kernel(fine[:, None] * u[None, :], origin, s)[:, 0]
        measured[j] = np.sqrt(np.trapezoid(fine**2 * kf, fine) / np.trapezoid(kf, fine))
        # integral over R^d of a radial function: |S^(d-1)| int_0^inf K(rho) rho^(d-1) d rho
        rho = np.linspace(0.0, (8.0 + math.sqrt(c.d)) * eq237[j], RADIAL_POINTS)
        kr = cosnet_kernel(rho[:, None] * u[None, :], origin, s)[:, 0]
        mass[j] = shell * np.trapezoid(kr * rho ** (c.d - 1), rho)
        report(len(c.widths) + j + 1, total, f"sigma_w {s:g}: width {measured[j]:.3g}, mass {mass[j]:.4f}")

    return TheoryResult(
        config=c, t=t, analytic=analytic, empirical=empirical, widths=np.asarray(c.widths, dtype=np.int64),
        error=error, error_std=error_std, slope=slope, reference=reference,
        sigma_w=sws, r=r, profiles=profiles, peak=peaks, width_measured=measured, width_eq237=eq237,
        mass=mass, seconds=time.perf_counter() - start,
    )


def estimate_theory(config: TheoryConfig) -> Estimate:
    """About 2 s to start a worker, then the cosine features: trials x sum(N) x T x (d + 3) flops.

    Memory: the features of the largest width (T x N float64, a few copies) and the grids.
    """
    c = config
    work = c.trials * sum(c.widths) * c.n_inputs * (c.d + 3 + c.n_inputs)
    seconds = 2.0 + 8e-9 * work + 5e-3 * len(c.locality_sigma_w)
    peak = 8 * (4 * max(c.widths) * (c.n_inputs + 1) + 3 * c.n_inputs**2 + 4 * RADIAL_POINTS * c.d)
    return Estimate(seconds, int(peak + 300 * 2**20))
