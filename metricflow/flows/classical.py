"""The classical flows of appendix B as flows of the Kahler potential, projected on a space.

g = g_FS + (1/pi) d dbar phi, eta = det g / (kappa_ref |Omega|^2), and phi moves in a
finite-dimensional space (``metricflow.flows.classical_spaces``: a fixed basis of degree-k
functions, or Donaldson's algebraic metrics). Each flow is the gradient flow of an ultralocal
functional E = int F(eta) dmu (dmu the CY measure, eq. B.12) in a metric on the variations
of phi (docs/FLOWS.md, "Classical flows", derives it):

  flow             F(eta)                   metric      continuum velocity d phi / dt
  ricci            eta ln eta - eta + 1     H1(dV_g)    ln eta                  (Kahler-Ricci, B.4)
  calabi           eta ln eta - eta + 1     L2(dV_g)    R = -g^{a bbar} d_a dbar_b ln eta   (B.8, B.9)
  two-derivative   (1 - sqrt eta)^2         H1(dV_g)    -eta^(-1/2) + 1         (B.19, B.20)

Projected on a space with parameters c (the Galerkin form of the gradient flow), each step is

  dc/dt = -pi A(c)^+ grad_c E(c),      c <- c + dt dc/dt,

with E the Monte-Carlo integral on the training points (its gradient by autodiff) and A the
Gram matrix of the tangent functions f_a = d phi / d c_a in the flow's metric, on the same
points (pseudo-inverse: the constant, which moves no metric, is in the null space of H1).
The flow is a kernel flow (2.8) with the metric-NTK Theta(x, x') = dg(x)/dc A^+ dg(x')/dc:
in phi, the reproducing kernel K(x, x') = f(x) A^+ f(x') of the space in the flow's metric.
E falls at every step up to O(dt^2), and a fixed point is a critical point of E on the
space: the velocity is orthogonal to the space in the flow's metric.

After every step the metric is checked on the training and the test points: a metric that is
not positive definite, or a potential whose s^dagger H s is not positive, stops the flow with
the reason. sigma (B.11) is measured on fresh test points against the reference kappa.

The kernel view: after every step the kernel K = f A^+ f is formed on a fixed probe set (the
first KERNEL_PROBE flow points); its nonzero eigenvalues and how far they moved from step 0
(the Wasserstein distance of the metric-NTK page, ``kernel_wasserstein``) are recorded, and
the angle between its range and step 0's (``kernel_range_sine``): 0 for the fixed basis,
whose f never moves (K changes only through the volume form in A), positive for the
algebraic family, whose f moves with H.

Example:
  >>> r = run_classical_flow(ClassicalFlowConfig(flow="ricci", space="algebraic", k=3))
  >>> r.sigma[-1], r.functional[-1]
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import numpy as np

from metricflow.constraints import SEED, Count, OneOf, Positive, validate
from metricflow.constraints import Points as PointCount
from metricflow.errors import ConfigTypeError, MetricflowError
from metricflow.estimates import Estimate
from metricflow.flows.classical_spaces import (
    SPACES,
    SYMMETRIES,
    SpaceData,
    gram_h1,
    gram_l2,
    hermitian_basis,
    metric_jax,
    parameter_count,
    pseudo_inverse,
    range_sine,
    reproducing_kernel,
    space_data,
    start_parameters,
    tangent_features,
)
from metricflow.flows.donaldson import monomial_exponents
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.measures import Kappa, measure_sigma, volume_ratio_numpy
from metricflow.geometry.points import SampleConfig, check_test_sample, first_points, memory_estimate, sample_points
from metricflow.progress import Progress, panel, publish

__all__ = [
    "CLASSICAL_SCHEMA",
    "FLOWS",
    "FLOW_LABELS",
    "FLOW_METRIC",
    "KERNEL_PROBE",
    "MAX_K",
    "MAX_PARAMS",
    "ClassicalFlowConfig",
    "ClassicalFlowResult",
    "default_dt",
    "density",
    "estimate_classical_flow",
    "flow_step",
    "functional_of",
    "kernel_movement",
    "run_classical_flow",
]

# Bump when ClassicalFlowResult's fields or their meaning change: cached results are recomputed.
# 2: the kernel view (kernel_spectra, kernel_wasserstein, kernel_range_sine).
CLASSICAL_SCHEMA = 2

FLOWS = ("ricci", "calabi", "two-derivative")
# The metric each flow is a gradient flow in: "h1" = int Re g^{a bbar} d_a u dbar_b v dV_g,
# "l2" = int u v dV_g.
FLOW_METRIC = {"ricci": "h1", "calabi": "l2", "two-derivative": "h1"}
FLOW_LABELS = {"ricci": "Kähler–Ricci flow", "calabi": "Calabi flow", "two-derivative": "two-derivative flow"}

MAX_K = 6
# Largest number of real parameters: the Gram matrix costs N P^2 n per step.
MAX_PARAMS = 400
# Points per block of the tangent features (bounds (block, P, N_k) temporaries).
BLOCK_ENTRIES = 4_000_000
# The kernel's probe set: the first KERNEL_PROBE flow points.
KERNEL_PROBE = 100
# Eigenvalues below this fraction of the largest are floored before log10 in the log-spectrum
# distance (the metric-NTK page's LOG_FLOOR, ``networks.metric_ntk``).
LOG_FLOOR = 1e-12


def density(flow: str, eta):
    """F(eta), the pointwise density of the flow's functional E = int F(eta) dmu (works on
    NumPy and JAX arrays). Both are >= 0 with equality at eta = 1."""
    if flow == "two-derivative":
        return (1.0 - eta**0.5) ** 2
    return eta * np.log(eta) - eta + 1.0 if isinstance(eta, np.ndarray) else _jax_entropy(eta)


def _jax_entropy(eta):
    from metricflow._jax import jnp

    return eta * jnp.log(eta) - eta + 1.0


def default_dt(flow: str, k: int, degree: int) -> float:
    """A stable explicit-Euler step from g_FS.

    lam = k (k + d - 1) is the largest eigenvalue of -Laplacian on degree-k functions of
    P^(d-1) in the normalisation of g_FS (units of pi): ln eta relaxes at a rate ~lam for
    Kahler-Ricci, ~lam / 2 for the two-derivative flow (dF'/d ln eta = 1/2 at eta = 1) and
    ~pi lam^2 for Calabi (a fourth-order flow). On the quintic the fastest mode of the
    projected Kahler-Ricci flow relaxes at about 1.8 lam (measured at k = 3: dt = 1 / lam gave
    dt * rate = 1.77, near the limit 2), so the steps are 0.5 / lam, 1 / lam and
    0.25 / (pi lam^2) (Calabi at 1 / (pi lam^2) left the positive cone at step 8, k = 3).
    """
    lam = k * (k + degree - 1)
    return {"ricci": 0.5 / lam, "two-derivative": 1.0 / lam, "calabi": 0.25 / (math.pi * lam * lam)}[flow]


@dataclass(frozen=True)
class ClassicalFlowConfig:
    """One classical flow of appendix B, projected on a space of Kahler potentials.

    Attributes:
      manifold: the Dwork hypersurface.
      space: "basis" (phi = s^dagger C s / |z|^(2k), a fixed basis) or "algebraic"
        (phi = (1/k) log(s^dagger H s / |z|^(2k)), Donaldson's family).
      k: degree of the sections (1..MAX_K).
      flow: "ricci" (Kahler-Ricci), "calabi" or "two-derivative" (B.19).
      dt: the Euler step; None: ``default_dt(flow, k, degree)``.
      n_steps: steps.
      n_points: integration points of the flow (E, its gradient and the Gram matrix).
      n_test: fresh test points on which sigma is measured.
      seed: seed of both samples (independent streams).
      symmetry: "invariant" (matrices fixed by the Dwork symmetries; needs k < d) or "full"
        (every Hermitian matrix: N_k^2 parameters, at most MAX_PARAMS).
      test: the test points are the first n_test of ``sample_points(test)`` (shared with other
        methods); None (default): a fresh sample of seed.
    """

    manifold: Manifold = Manifold()
    space: str = "algebraic"
    k: int = 2
    flow: str = "ricci"
    dt: Optional[float] = None
    n_steps: int = 40
    n_points: int = 10_000
    n_test: int = 10_000
    seed: int = 0
    symmetry: str = "invariant"
    test: Optional[SampleConfig] = field(default=None, metadata={"key": "omit-default"})

    constraints: ClassVar[dict] = {
        "space": OneOf(SPACES, either=True),
        "flow": OneOf(FLOWS),
        "symmetry": OneOf(SYMMETRIES, either=True),
        "k": Count("degree k", maximum=MAX_K),
        "dt": Positive("dt"),
        "n_steps": Count("steps", minimum=0, maximum=100_000),
        "n_points": PointCount("points"),
        "n_test": PointCount("test points"),
        "seed": SEED,
    }

    def __post_init__(self):
        if not isinstance(self.manifold, Manifold):
            raise ConfigTypeError(f"manifold must be a Manifold, got {type(self.manifold).__name__}")
        validate(self, {n: r for n, r in self.constraints.items() if n != "dt"})
        if self.dt is None:
            object.__setattr__(self, "dt", default_dt(self.flow, self.k, self.manifold.degree))
        validate(self, {"dt": self.constraints["dt"]})
        d = self.manifold.degree
        if self.symmetry == "invariant" and self.k >= d:
            raise MetricflowError(
                f"the invariant space needs k < d = {d}, got k = {self.k}; use symmetry 'full' or a smaller k"
            )
        p = self.n_params
        if p > MAX_PARAMS:
            raise MetricflowError(
                f"the {self.symmetry} space at k = {self.k} has {p:,} parameters, over the limit of {MAX_PARAMS}; "
                "use symmetry 'invariant' or a smaller k"
            )
        if self.n_points < 10 * p:
            raise MetricflowError(
                f"the space has {p} parameters and needs at least {10 * p:,} points for its Gram matrix, "
                f"got {self.n_points:,}; use more points"
            )
        if self.test is not None:
            check_test_sample(self.test, self.manifold, self.n_test, "the classical flow")

    @property
    def n_params(self) -> int:
        """P, the real parameters of the space."""
        return parameter_count(self.manifold.degree, self.k, self.symmetry, self.manifold.psi)

    def sample_configs(self) -> tuple[SampleConfig, SampleConfig]:
        """The SampleConfigs of the flow's points and of the test points (first n_test used)."""
        a, b = np.random.SeedSequence([self.seed, 25]).generate_state(2, np.uint64) % np.uint64(2**63)
        test = self.test or SampleConfig(self.manifold, self.n_test, int(b))
        return SampleConfig(self.manifold, self.n_points, int(a)), test

    @property
    def label(self) -> str:
        return f"{FLOW_LABELS[self.flow]} ({self.space}, degree {self.k})"


@dataclass(frozen=True, eq=False)
class ClassicalFlowResult:
    """The record of one classical flow. S = config.n_steps; per-step arrays are (S+1,)
    float64, [0] is g_FS, NaN after a stop.

    Attributes:
      config: the ClassicalFlowConfig.
      sigma, sigma_se: reference-kappa sigma (B.11) on the test points and its standard error.
      sigma_self, sigma_self_se: self-normalised sigma (cymetric's convention).
      train_sigma: reference-kappa sigma on the flow's own points.
      functional: E = sum w F(eta) / sum w on the flow's points (``density``): falls at
        every step up to O(dt^2).
      functional_test: the same on the test points.
      velocity: ||dc/dt||_A = sqrt(dc/dt^T A dc/dt), the norm of the projected velocity in the
        flow's metric; dE/dt = -velocity^2 / pi. It tends to 0 at a fixed point.
      seconds: (S+1,) time of the flow itself up to each step (sampling, sections, steps;
        the test measurements excluded).
      kernel_probe: M, the probe points of the kernel view (the first M flow points).
      kernel_spectra: (S+1, R) float64, the R largest eigenvalues, ascending, of the kernel
        K(x, x') = f(x) A^+ f(x') on the probe points at each step, R = min(M, rank of A^+ at
        step 0) (K has no other nonzero eigenvalues); NaN after a stop.
      kernel_wasserstein, kernel_wasserstein_log: (S+1,) float64, the Wasserstein-1 distance of
        each step's spectrum to step 0's, on the eigenvalues and on their log10 (floored at
        LOG_FLOOR times the largest): the metric-NTK page's measure of a moving kernel.
      kernel_range_sine: (S+1,) float64, the sine of the largest principal angle between the
        range of K at the step and at step 0: 0 to rounding for the fixed basis (f is fixed;
        only A moves, through the volume form), positive when f moves (the algebraic family).
      params: (P,) float64, the parameters c at the last good step; start: c at g_FS.
      basis: (P, N_k, N_k) complex128, the Hermitian matrices B_a (phi's matrix is sum c_a B_a).
      steps_done: steps completed; stopped_reason: None, or why the flow stopped.
      dt: the step used; n_params: P; n_sections: N_k.
      kappa, kappa_se, kappa_exact: the reference kappa.
      n_points, n_test: the sizes; total_seconds: wall time of the whole job.
    """

    config: ClassicalFlowConfig
    sigma: np.ndarray
    sigma_se: np.ndarray
    sigma_self: np.ndarray
    sigma_self_se: np.ndarray
    train_sigma: np.ndarray
    functional: np.ndarray
    functional_test: np.ndarray
    velocity: np.ndarray
    seconds: np.ndarray
    kernel_probe: int
    kernel_spectra: np.ndarray
    kernel_wasserstein: np.ndarray
    kernel_wasserstein_log: np.ndarray
    kernel_range_sine: np.ndarray
    params: np.ndarray
    start: np.ndarray
    basis: np.ndarray
    steps_done: int
    stopped_reason: Optional[str]
    dt: float
    n_params: int
    n_sections: int
    kappa: float
    kappa_se: float
    kappa_exact: bool
    n_points: int
    n_test: int
    total_seconds: float

    @property
    def times(self) -> np.ndarray:
        """(S+1,) flow time t = step * dt."""
        return np.arange(len(self.sigma)) * self.dt

    def summary(self) -> dict:
        """JSON-ready dict (the CLI's ``--json``): per-step lists, NaN as null."""
        c = self.config
        clean = lambda a: [None if not math.isfinite(v) else float(v) for v in np.asarray(a, dtype=float)]  # noqa: E731
        return {
            "manifold": c.manifold.name, "psi": [c.manifold.psi.real, c.manifold.psi.imag],
            "flow": c.flow, "space": c.space, "k": c.k, "symmetry": c.symmetry, "metric": FLOW_METRIC[c.flow],
            "dt": self.dt, "steps": c.n_steps, "steps_done": self.steps_done, "seed": c.seed,
            "points": self.n_points, "test_points": self.n_test, "n_params": self.n_params,
            "n_sections": self.n_sections, "kappa": self.kappa, "kappa_se": self.kappa_se,
            "kappa_exact": self.kappa_exact,
            "time": clean(self.times), "sigma": clean(self.sigma), "sigma_se": clean(self.sigma_se),
            "sigma_self": clean(self.sigma_self), "sigma_self_se": clean(self.sigma_self_se),
            "train_sigma": clean(self.train_sigma), "functional": clean(self.functional),
            "functional_test": clean(self.functional_test), "velocity": clean(self.velocity),
            "seconds": clean(self.seconds), "stopped_reason": self.stopped_reason,
            "kernel_probe": self.kernel_probe,
            "kernel_spectrum_first": clean(self.kernel_spectra[0]),
            "kernel_spectrum_last": clean(self.kernel_spectra[self.steps_done]),
            "kernel_wasserstein": clean(self.kernel_wasserstein),
            "kernel_wasserstein_log": clean(self.kernel_wasserstein_log),
            "kernel_range_sine": clean(self.kernel_range_sine),
            "total_seconds": self.total_seconds,
        }


# ---- one step -------------------------------------------------------------------------------


def functional_of(flow: str, g: np.ndarray, data: SpaceData, kappa: float) -> float:
    """E = sum w F(eta) / sum w at the points (NumPy), F = ``density(flow, .)``."""
    eta = volume_ratio_numpy(g, data.omega_sq) / kappa
    return float(np.sum(data.weights * density(flow, eta)) / np.sum(data.weights))


def _pinv_solve(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """A^+ b for symmetric PSD A (``pseudo_inverse``: eigenvalues of rounding size dropped)."""
    lam, v = pseudo_inverse(a, scale)
    return v @ ((v.T @ b) / lam)


def flow_step(flow: str, space: str, c: np.ndarray, basis: np.ndarray, data: SpaceData, k: int,
              kappa: float, g: np.ndarray, grad: np.ndarray, features=None):
    """The projected velocity dc/dt = -pi A^+ grad E at c.

    Args:
      flow, space: as in the config; c: (P,) float64; basis: (P, N_k, N_k) complex128.
      data: the flow's points; k: degree; kappa: the reference kappa.
      g: (N, n, n) complex128, the metric at c on the points (positive definite).
      grad: (P,) float64, grad_c E at c.
      features: (f, df) from ``tangent_features`` to reuse (the fixed basis), or None.

    Returns:
      (cdot (P,) float64, A (P, P) float64, scale float): scale is the trace of the L2 Gram
      matrix (``pseudo_inverse``'s reference size).
    """
    eta = volume_ratio_numpy(g, data.omega_sq) / kappa
    rho = data.weights * eta / np.sum(data.weights)
    a = np.zeros((len(c), len(c)))
    scale = 0.0  # the trace of the L2 Gram matrix: the size of A without the derivatives
    n_k = data.s.shape[1]
    block = max(1, BLOCK_ENTRIES // max(1, len(c) * n_k))
    for start in range(0, len(rho), block):
        sl = slice(start, start + block)
        if features is None:
            part = SpaceData(*(x[sl] for x in data))
            f, df = tangent_features(space, c, basis, part, k)
        else:
            f, df = features[0][sl], features[1][sl]
        a += gram_h1(df, g[sl], rho[sl]) if FLOW_METRIC[flow] == "h1" else gram_l2(f, rho[sl])
        scale += float(np.sum(rho[sl][:, None] * f * f))
    return -math.pi * _pinv_solve(a, grad, scale), a, scale


def _energy_fn(flow: str, space: str, k: int, kappa: float):
    """E(c, basis, s, ds, ell, inv_q, g_fs, omega_sq, w) and its gradient in c (jitted)."""
    from metricflow._jax import jax, jnp

    def energy(c, basis, s, ds, ell, inv_q, g_fs, omega_sq, w):
        g = metric_jax(space, c, basis, s, ds, ell, inv_q, g_fs, k)
        eta = jnp.real(jnp.linalg.det(g)) / omega_sq / kappa
        return jnp.sum(w * density(flow, eta)) / jnp.sum(w)

    metric = jax.jit(lambda c, basis, s, ds, ell, inv_q, g_fs: metric_jax(space, c, basis, s, ds, ell, inv_q, g_fs, k))
    return jax.jit(jax.value_and_grad(energy)), metric


def _not_pd(g: np.ndarray) -> tuple[int, float]:
    low = np.linalg.eigvalsh(g)[:, 0]
    return int(np.sum(~(low > 0))), float(np.min(low))


def _partial(result_so_far: dict, done: int) -> dict:
    xs = range(done + 1)
    return {"panels": [
        panel("σ per step", "step", "σ", {"test": (xs, result_so_far["sigma"][: done + 1]),
                                          "train": (xs, result_so_far["train_sigma"][: done + 1])}, log_y=True),
        panel("functional per step", "step", "E", {"train": (xs, result_so_far["functional"][: done + 1])}, log_y=True),
    ]}


def run_classical_flow(config: ClassicalFlowConfig, progress: Optional[Progress] = None,
                       reference: Kappa | None = None) -> ClassicalFlowResult:
    """Run the projected classical flow from g_FS and measure sigma after every step.

    Args:
      config: what to run.
      progress: optional ``progress(step, total, message)``; partial series are published.
      reference: the reference kappa (default ``reference_kappa(config.manifold)``).

    Returns:
      ClassicalFlowResult.
    """
    from metricflow.geometry.reference import reference_kappa

    c_ = config
    report = progress or (lambda *a, **kw: None)
    start_all = time.perf_counter()
    S, d, k = c_.n_steps, c_.manifold.degree, c_.k
    report(0, S, "sampling points")
    train_cfg, test_cfg = c_.sample_configs()
    train = sample_points(train_cfg)
    t_test = time.perf_counter()
    test = first_points(test_cfg, c_.n_test)
    excluded = time.perf_counter() - t_test
    kref = reference if reference is not None else reference_kappa(c_.manifold)
    kap = float(kref.value)
    basis = hermitian_basis(d, k, c_.symmetry, c_.manifold.psi)
    c = start_parameters(c_.space, basis, k, d)
    c0 = c.copy()
    data = space_data(train, k)
    t_test = time.perf_counter()
    tdata = space_data(test, k)
    excluded += time.perf_counter() - t_test
    energy, metric = _energy_fn(c_.flow, c_.space, k, kap)
    args = lambda dd: (basis, dd.s, dd.ds, dd.ell, dd.inv_q, dd.g_fs)  # noqa: E731
    features = tangent_features(c_.space, c, basis, data, k) if c_.space == "basis" else None
    m_probe = min(KERNEL_PROBE, len(train))
    probe = SpaceData(*(x[:m_probe] for x in data))
    k_first, spectra, sines = None, np.full((S + 1, 0), np.nan), np.full(S + 1, np.nan)

    nan = lambda: np.full(S + 1, np.nan)  # noqa: E731
    hist = {name: nan() for name in ("sigma", "sigma_se", "sigma_self", "sigma_self_se", "train_sigma",
                                     "functional", "functional_test", "velocity", "seconds")}
    stopped, done, last_good = None, 0, c.copy()
    for step in range(S + 1):
        g = np.asarray(metric(c, *args(data)))
        t_test = time.perf_counter()
        gt = np.asarray(metric(c, *args(tdata)))
        reason = _check(c_.space, c, basis, data, tdata, g, gt, step)
        if reason is not None:
            stopped = f"stopped at step {step}: {reason}; use a smaller dt than {c_.dt:g}"
            break
        rep = measure_sigma(gt, test.omega_sq, test.weights, kref)
        hist["sigma"][step], hist["sigma_se"][step] = rep.sigma, rep.sigma_se
        hist["sigma_self"][step], hist["sigma_self_se"][step] = rep.sigma_self, rep.sigma_self_se
        hist["functional_test"][step] = functional_of(c_.flow, gt, tdata, kap)
        excluded += time.perf_counter() - t_test
        hist["train_sigma"][step] = measure_sigma(g, train.omega_sq, train.weights, kref).sigma
        value, grad = energy(c, *args(data), data.omega_sq, data.weights)
        grad = np.asarray(grad)
        if not (math.isfinite(float(value)) and np.all(np.isfinite(grad))):
            stopped = f"stopped at step {step}: the functional or its gradient is not finite"
            hist["sigma"][step] = np.nan
            break
        hist["functional"][step] = float(value)
        last_good, done = c.copy(), step
        cdot, a, scale = flow_step(c_.flow, c_.space, c, basis, data, k, kap, g, grad, features)
        t_kernel = time.perf_counter()  # the kernel view is a measurement: not flow time
        f_probe = features[0][:m_probe] if features is not None else tangent_features(c_.space, c, basis, probe, k)[0]
        kernel = reproducing_kernel(f_probe, a, scale)
        if k_first is None:
            k_first, rank = kernel, min(m_probe, len(pseudo_inverse(a, scale)[0]))
            spectra = np.full((S + 1, rank), np.nan)
        spectra[step] = np.linalg.eigvalsh(kernel)[m_probe - rank:]
        sines[step] = range_sine(k_first, kernel)
        excluded += time.perf_counter() - t_kernel
        hist["velocity"][step] = math.sqrt(max(float(cdot @ a @ cdot), 0.0))
        if step < S:
            c = c + c_.dt * cdot
        hist["seconds"][step] = time.perf_counter() - start_all - excluded
        report(step, S, f"step {step}: sigma {rep.sigma:.4f}, functional {float(value):.3e}")
        publish(progress, lambda: _partial(hist, done))
    w_raw, w_log = kernel_movement(spectra[: done + 1]) if k_first is not None else (np.zeros(0), np.zeros(0))
    pad = lambda a: np.concatenate([a, np.full(S + 1 - len(a), np.nan)])  # noqa: E731
    return ClassicalFlowResult(
        config=c_, **hist, kernel_probe=m_probe, kernel_spectra=spectra, kernel_wasserstein=pad(w_raw),
        kernel_wasserstein_log=pad(w_log), kernel_range_sine=sines, params=last_good, start=c0, basis=basis,
        steps_done=done, stopped_reason=stopped,
        dt=float(c_.dt), n_params=len(basis), n_sections=len(monomial_exponents(d, k)),
        kappa=kap, kappa_se=float(kref.se), kappa_exact=bool(kref.exact),
        n_points=len(train), n_test=len(test), total_seconds=time.perf_counter() - start_all,
    )


def kernel_movement(spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wasserstein-1 distance of each spectrum to the first, as the metric-NTK page measures
    its kernel's movement (``networks.metric_ntk.wasserstein_to_first``, fig. 4).

    Args:
      spectra: (S, R) eigenvalues of S snapshots.

    Returns:
      (raw, log): (S,) float64 each, on the eigenvalues and on their log10 (floored at
      LOG_FLOOR times the largest); 0 at the first snapshot, and everywhere when R = 0.
    """
    from scipy.stats import wasserstein_distance

    spectra = np.asarray(spectra, dtype=np.float64)
    if spectra.ndim != 2 or spectra.shape[1] == 0:
        return np.zeros(len(spectra)), np.zeros(len(spectra))

    def logs(e):
        return np.log10(np.maximum(e, LOG_FLOOR * float(np.max(np.abs(e)))))

    raw = np.array([wasserstein_distance(spectra[0], s) for s in spectra])
    log = np.array([wasserstein_distance(logs(spectra[0]), logs(s)) for s in spectra])
    return raw, log


def _check(space: str, c, basis, data: SpaceData, tdata: SpaceData, g, gt, step: int) -> Optional[str]:
    """Why the metric at c is not admissible on the points, or None."""
    if space == "algebraic":
        m = np.tensordot(c, basis, axes=1)
        for name, dd in (("train", data), ("test", tdata)):
            p = np.real(np.einsum("nx,xy,ny->n", np.conj(dd.s), m, dd.s))
            if not np.all(p > 0):
                return f"s^dagger H s is not positive at {int(np.sum(~(p > 0))):,} {name} points"
    for name, gg in (("train", g), ("test", gt)):
        if not np.all(np.isfinite(gg)):
            return f"the metric is not finite at some {name} points"
        bad, low = _not_pd(gg)
        if bad:
            return f"the metric is not positive definite at {bad:,} of {len(gg):,} {name} points (smallest eigenvalue {low:.2e})"
    return None


# ---- cost ----------------------------------------------------------------------------------

WORKER_BYTES = 400 * 2**20
# Seconds per complex multiply-add of the metric and Gram terms, of the algebraic space's
# tangent features (an unblocked einsum), and per point and step of the rest (eigenvalues,
# sigma); fitted to runs on 2 cores (docs/FLOWS.md: 2 x 10^4 + 2 x 10^4 points, k = 2..4).
SECONDS_PER_MAC = 5e-10
SECONDS_PER_FEATURE_MAC = 1.5e-9
SECONDS_PER_POINT_STEP = 5e-6


def estimate_classical_flow(config: ClassicalFlowConfig) -> Estimate:
    """Expected seconds and peak bytes of ``run_classical_flow(config)``.

    Per step: the metric and E's gradient cost about 4 N N_k^2 n (N flow points), the metric
    on the M test points 2 M N_k^2 n, the Gram matrix N P^2 (n + 1) (and, for the algebraic
    space, the tangent features N P N_k^2 n); memory is the points, their sections and
    derivatives (16 (N + M) N_k (n + 1)), the cached features of the basis space
    (16 N P (n + 1)) and one block of features.
    """
    c = config
    d, n = c.manifold.degree, c.manifold.dim
    n_k = len(monomial_exponents(d, c.k))
    p = c.n_params
    N, M = c.n_points, c.test.n_points if c.test is not None else c.n_test
    per_step = SECONDS_PER_MAC * (4 * N * n_k * n_k * n + 2 * M * n_k * n_k * n + N * p * p * (n + 1))
    if c.space == "algebraic":
        per_step += SECONDS_PER_FEATURE_MAC * N * p * n_k * n_k * n
    per_step += SECONDS_PER_POINT_STEP * (N + M)
    seconds = 5.0 + 4e-5 * (N + M) + (c.n_steps + 1) * per_step
    if c.manifold.exact_kappa() is None:
        from metricflow.geometry.reference import REFERENCE_POINTS

        seconds += 4e-5 * REFERENCE_POINTS
    memory = WORKER_BYTES + memory_estimate(N, d) + memory_estimate(M, d)
    memory += 16 * (N + M) * n_k * (n + 1) * 3 + 16 * N * p * (n + 1) + 16 * BLOCK_ENTRIES * (n + 2)
    return Estimate(float(seconds), int(memory))

