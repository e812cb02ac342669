"""Donaldson's algorithm: balanced metrics on Dwork hypersurfaces, the classical discrete flow.

A hermitian matrix H on the N_k sections s_alpha of O(k) gives the Kahler potential
K = s^dagger H s and the metric

    g_k = (1 / (k pi)) d dbar log K,

normalised like our g_FS = (1/pi) d dbar log|z|^2, so that g_k is in the FS Kahler class and
the manifold's reference kappa applies. Donaldson's T-operator (Donaldson 2009; Douglas,
Karp, Lukic, Reinbacher 2008, eq. 20) is

    T(H)_{alpha beta} = (N_k / Vol) int_X s_alpha conj(s_beta) / K  dmu_Omega,

and the balanced H is the fixed point of H -> T(H)^{-1}; the balanced metrics converge to the
Ricci-flat one as k grows. The integral is a Monte-Carlo sum over points with the CY weights
|Omega|^2 / det g_FS. Each iteration costs about 2 N_k^2 complex multiply-adds per point.

The sections are the degree-k monomials in the d homogeneous coordinates, modulo the defining
polynomial: p = z_0^d + (terms of lower degree in z_0), so for k >= d the monomials divisible
by z_0^d are dropped. Their number is the Hilbert function C(k+d-1, d-1) - C(k-1, d-1).

Beyond the balanced H, ``optimise_h`` minimises sigma over H directly (Headrick and Nassar
2013: an energy functional beats the balanced metric at each k), with Adam on the entries of
a Cholesky factor of H, starting from the balanced one.

Example:
  >>> result = run_donaldson(DonaldsonConfig(ks=(1, 2, 3), n_points=20_000, n_test=20_000))
  >>> result.sigma          # sigma_k on fresh points, falling with k
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Optional, Sequence

import numpy as np

from metricflow.constraints import Count, Flag, Maybe, Positive, validate
from metricflow.errors import ConfigTypeError, MetricflowError, check_count
from metricflow.estimates import Estimate
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.measures import Kappa, SigmaReport, measure_sigma
from metricflow.geometry.points import Points, SampleConfig, check_test_sample, first_points, sample_points
from metricflow.progress import panel, publish

__all__ = [
    "DONALDSON_SCHEMA",
    "MAX_K",
    "DonaldsonConfig",
    "DonaldsonResult",
    "Balanced",
    "balance",
    "estimate_donaldson",
    "hilbert_dimension",
    "initial_h",
    "metric",
    "monomial_exponents",
    "Optimised",
    "optimise_h",
    "potential",
    "run_donaldson",
    "sections",
    "t_operator",
]

# Bump when DonaldsonResult's fields or their meaning change: cached results are recomputed.
DONALDSON_SCHEMA = 1

# Largest degree offered: N_k = 460 sections for the quintic at k = 8.
MAX_K = 8

# Points per block when evaluating sections (bounds the temporaries to ~100 MiB at k = 6).
BLOCK = 4096

# The sigma optimisation's defaults: training points, Adam steps and learning rate.
OPT_POINTS = 5_000
OPT_STEPS = 300
OPT_LR = 5e-3

# The psi values of the moduli sweep by default (issue 17).
SWEEP_PSIS = (0, 0.1, 0.3, 0.5, 0.8, 1.5, 10 + 3j)


# ---- sections --------------------------------------------------------------------------


def hilbert_dimension(degree: int, k: int) -> int:
    """dim H^0(X, O(k)) for a degree-``degree`` hypersurface in P^(degree-1), k >= 1."""
    d = degree
    return math.comb(k + d - 1, d - 1) - (math.comb(k - 1, d - 1) if k >= d else 0)


def monomial_exponents(degree: int, k: int) -> np.ndarray:
    """Exponents of the section basis: (N_k, d) int64, rows summing to k, lexicographic.

    All degree-k monomials in d = ``degree`` coordinates except those divisible by z_0^d,
    which the defining polynomial eliminates (its leading term is z_0^d).
    """
    d = degree
    rows = []
    for combo in itertools.combinations_with_replacement(range(d), k):
        m = np.bincount(np.asarray(combo, dtype=np.int64), minlength=d)
        if m[0] < d:
            rows.append(m)
    return np.asarray(sorted(rows, key=lambda r: tuple(-r)), dtype=np.int64)


def sections(z: np.ndarray, exponents: np.ndarray, derivatives: bool = False):
    """The monomials z^m and, optionally, their derivatives d z^m / d z_i.

    Args:
      z: (B, d) complex128 homogeneous coordinates.
      exponents: (N_k, d) int, from ``monomial_exponents``.
      derivatives: also return the derivatives.

    Returns:
      s: (B, N_k) complex128; with ``derivatives`` also ds: (B, N_k, d) complex128.
    """
    z = np.asarray(z, dtype=complex)
    k = int(exponents.sum(axis=1).max())
    d = z.shape[1]
    powers = z[:, :, None] ** np.arange(k + 1)  # (B, d, k+1)
    cols = np.arange(d)[None, :]
    factors = powers[:, cols, exponents]  # (B, N_k, d): z_i^(m_i)
    s = np.prod(factors, axis=2)
    if not derivatives:
        return s
    lower = powers[:, cols, np.maximum(exponents - 1, 0)] * exponents  # m_i z_i^(m_i - 1)
    ds = np.empty(factors.shape, dtype=complex)
    for i in range(d):
        ds[:, :, i] = lower[:, :, i] * np.prod(np.delete(factors, i, axis=2), axis=2)
    return s, ds


def _local_sections(points: Points, exponents: np.ndarray, start: int, stop: int):
    """s (B, N_k) and D = ds J^T (B, N_k, n), the derivatives in the chart, for a block."""
    s, ds = sections(points.z[start:stop], exponents, derivatives=True)
    return s, np.einsum("bxi,bai->bxa", ds, points.jacobian[start:stop])


# ---- the potential, the metric and the T-operator --------------------------------------


def potential(s: np.ndarray, h: np.ndarray) -> np.ndarray:
    """K = s^dagger H s = sum conj(s_alpha) H_{alpha beta} s_beta, shape (B,), float64.

    Args:
      s: (B, N_k) complex128 sections; h: (N_k, N_k) complex128 Hermitian positive.
    """
    return np.real(np.sum(np.conj(s) * (s @ h.T), axis=1))


def t_operator(s: np.ndarray, weights: np.ndarray, h: np.ndarray) -> np.ndarray:
    """T(H) = N_k sum_x w s s^dagger / K / sum_x w, shape (N_k, N_k), complex128 Hermitian.

    The Monte-Carlo form of Donaldson's T-operator, T_{alpha beta} = N_k <s_alpha conj(s_beta) / K>
    under the CY measure; tr(H T(H)) = N_k. Computed in blocks of ``BLOCK`` points.

    Args:
      s: (N, N_k) complex128 sections at the points; weights: (N,) float64 CY weights.
      h: (N_k, N_k) complex128.
    """
    n_k = s.shape[1]
    t = np.zeros((n_k, n_k), dtype=complex)
    for start in range(0, s.shape[0], 4 * BLOCK):
        block = s[start : start + 4 * BLOCK]
        c = weights[start : start + 4 * BLOCK] / potential(block, h)
        t += (block * c[:, None]).T @ np.conj(block)
    t *= n_k / np.sum(weights)
    return 0.5 * (t + np.conj(t.T))


def _metric_block(s: np.ndarray, dloc: np.ndarray, h: np.ndarray, k: int) -> np.ndarray:
    """g_ab = (1/(k pi)) [ (dd K)_ab / K - dK_a conj(dK_b) / K^2 ] for one block, (B, n, n)."""
    hd = np.einsum("xy,byc->bxc", h, dloc)  # H D: (B, N_k, n)
    K = potential(s, h)
    dK = np.einsum("bx,bxa->ba", np.conj(s), hd)  # d_a K = s^dagger H D_a
    ddK = np.einsum("bxa,bxc->bac", hd, np.conj(dloc))  # d_a dbar_b K = D_b^dagger H D_a
    g = ddK / K[:, None, None] - dK[:, :, None] * np.conj(dK)[:, None, :] / (K**2)[:, None, None]
    g = g / (k * np.pi)
    return 0.5 * (g + np.conj(np.swapaxes(g, 1, 2)))


def metric(points: Points, h: np.ndarray, k: int, exponents: np.ndarray | None = None) -> np.ndarray:
    """The metric g_k = (1/(k pi)) d dbar log(s^dagger H s) in each point's chart.

    The derivatives of the sections in the chart are D_{alpha a} = sum_i ds_alpha/dz_i J_{a i}
    with the points' Jacobian J = dz_i/dx_a. At k = 1 with H = 1 this is g_FS.

    Args:
      points: N points; h: (N_k, N_k) complex128 Hermitian positive; k: the degree.
      exponents: the section basis (default ``monomial_exponents(degree, k)``).

    Returns:
      (N, n, n) complex128 Hermitian.
    """
    if exponents is None:
        exponents = monomial_exponents(points.manifold.degree, k)
    n = points.manifold.dim
    out = np.empty((len(points), n, n), dtype=complex)
    for start in range(0, len(points), BLOCK):
        stop = min(start + BLOCK, len(points))
        s, dloc = _local_sections(points, exponents, start, stop)
        out[start:stop] = _metric_block(s, dloc, h, k)
    return out


def initial_h(exponents: np.ndarray) -> np.ndarray:
    """H_0 = diag(multinomial(k; m)): s^dagger H_0 s = |z|^(2k), so g_k(H_0) = g_FS."""
    k = int(exponents[0].sum())
    coef = [math.factorial(k) / math.prod(math.factorial(int(e)) for e in m) for m in exponents]
    return np.diag(np.asarray(coef, dtype=complex))


@dataclass(frozen=True)
class Balanced:
    """The outcome of ``balance``.

    Attributes:
      h: (N_k, N_k) complex128 Hermitian positive, the last iterate.
      iterations: T-operator applications done.
      residuals: (iterations,) float64, ||T(H_i)^(-1) - H_i||_F / ||T(H_i)^(-1)||_F.
      converged: whether the last residual is below the tolerance.
    """

    h: np.ndarray
    iterations: int
    residuals: np.ndarray
    converged: bool


def balance(s: np.ndarray, weights: np.ndarray, h0: np.ndarray, tol: float, max_iterations: int,
            progress: Optional[Callable[[int, float], None]] = None) -> Balanced:
    """Iterate H -> T(H)^(-1) from ``h0`` until the relative change is below ``tol``.

    Args:
      s: (N, N_k) complex128 sections at the points; weights: (N,) float64.
      h0: (N_k, N_k) complex128 start; tol: relative Frobenius tolerance; max_iterations: cap.
      progress: optional ``progress(iteration, residual)``.

    Returns:
      Balanced. It does not raise when the cap is reached; ``converged`` says so.
    """
    h = h0
    residuals = []
    for it in range(1, max_iterations + 1):
        t = t_operator(s, weights, h)
        try:
            new = np.linalg.inv(t)
        except np.linalg.LinAlgError:
            raise MetricflowError(
                f"the T-operator became singular at iteration {it} (N_k = {s.shape[1]}); use more points"
            ) from None
        new = 0.5 * (new + np.conj(new.T))
        r = float(np.linalg.norm(new - h) / np.linalg.norm(new))
        residuals.append(r)
        h = new
        if progress is not None:
            progress(it, r)
        if r < tol:
            break
    return Balanced(h, len(residuals), np.asarray(residuals), bool(residuals and residuals[-1] < tol))


# ---- sigma-optimised H (Headrick-Nassar) ----------------------------------------------------


def optimise_h(points: Points, h: np.ndarray, k: int, kappa_value: float, steps: int, lr: float,
               exponents: np.ndarray | None = None, validation: Points | None = None,
               check_every: int = 10) -> "Optimised":
    """Minimise sigma of g_k over H on ``points``, starting from ``h``, with Adam.

    H = C C^dagger with C = L_0 (1 + X), L_0 the Cholesky factor of ``h`` and X lower
    triangular (complex, diagonal included, zero at the start), so C is a Cholesky factor of H
    and Adam's step size is relative to the start. The loss is the reference-kappa sigma
    (eq. B.11) on ``points``. With ``validation`` points, sigma there is measured at the start
    and every ``check_every`` steps, and the H with the lowest validation sigma is returned
    (the start included: early stopping, so the result is not worse than ``h`` on points it
    was not fitted to); without, the H with the lowest training loss.

    Args:
      points: the training points; h: (N_k, N_k) start; k: degree; kappa_value: reference kappa.
      steps: Adam steps; lr: its learning rate.
      exponents: the section basis (default ``monomial_exponents(degree, k)``).
      validation: optional points for the choice of the step.
      check_every: steps between validation measurements.

    Returns:
      Optimised.
    """
    import optax

    from metricflow._jax import jax, jnp
    from metricflow.geometry.measures import sigma as sigma_fn

    if exponents is None:
        exponents = monomial_exponents(points.manifold.degree, k)
    l0 = jnp.asarray(np.linalg.cholesky(h))
    n_k = h.shape[0]
    rows, cols = np.tril_indices(n_k)

    def data(pts):
        s, dloc = _local_sections(pts, exponents, 0, len(pts))
        return jnp.asarray(s), jnp.asarray(dloc), jnp.asarray(pts.omega_sq), jnp.asarray(pts.weights)

    def h_of(x):
        lower = jnp.zeros((n_k, n_k), dtype=complex).at[rows, cols].set(x[0] + 1j * x[1])
        c = l0 @ (jnp.eye(n_k) + lower)
        return c @ jnp.conj(c.T)

    def loss(x, s, dloc, omega_sq, w):
        hh = h_of(x)
        hd = jnp.einsum("xy,bya->bxa", hh, dloc)
        K = jnp.real(jnp.sum(jnp.conj(s) * (s @ hh.T), axis=1))
        dK = jnp.einsum("bx,bxa->ba", jnp.conj(s), hd)
        ddK = jnp.einsum("bxa,bxc->bac", hd, jnp.conj(dloc))
        g = (ddK / K[:, None, None] - dK[:, :, None] * jnp.conj(dK)[:, None, :] / (K**2)[:, None, None]) / (k * jnp.pi)
        return sigma_fn(g, omega_sq, w, kappa_value)

    train = data(points)
    val = data(validation) if validation is not None else None
    val_loss = jax.jit(lambda x: loss(x, *val)) if val is not None else None
    opt = optax.adam(lr)
    x = jnp.zeros((2, rows.size))
    state = opt.init(x)

    @jax.jit
    def step(x, state):
        value, grad = jax.value_and_grad(loss)(x, *train)
        updates, state = opt.update(grad, state, x)
        return optax.apply_updates(x, updates), state, value

    losses, checked, val_losses = [], [], []
    best_x, best, best_step = x, np.inf, 0
    for i in range(steps + 1):
        if val_loss is not None and (i % check_every == 0 or i == steps):
            v = float(val_loss(x))
            checked.append(i)
            val_losses.append(v)
            if v < best:
                best, best_x, best_step = v, x, i
        if i == steps:
            losses.append(float(loss(x, *train)))
            break
        new_x, state, value = step(x, state)
        losses.append(float(value))  # the loss at x, before this step
        if val_loss is None and losses[-1] < best:
            best, best_x, best_step = losses[-1], x, i
        x = new_x
    if val_loss is None and losses[-1] < best:
        best_x, best_step = x, steps
    h_best = np.asarray(h_of(best_x))
    return Optimised(0.5 * (h_best + np.conj(h_best.T)), np.asarray(losses), np.asarray(checked, dtype=np.int64),
                     np.asarray(val_losses), best_step)


@dataclass(frozen=True)
class Optimised:
    """The outcome of ``optimise_h``.

    Attributes:
      h: (N_k, N_k) complex128, the chosen H.
      train_sigma: (steps + 1,) float64, the training loss at each step (0 = the start).
      checked_steps: (C,) int64, the steps at which the validation sigma was measured.
      validation_sigma: (C,) float64, sigma on the validation points there (empty without).
      best_step: the step whose H is returned.
    """

    h: np.ndarray
    train_sigma: np.ndarray
    checked_steps: np.ndarray
    validation_sigma: np.ndarray
    best_step: int


# ---- the study ------------------------------------------------------------------------


def _check_ks(ks) -> tuple:
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, bool):
        ks = tuple(range(1, check_count(ks, "k_max", maximum=MAX_K) + 1))
    try:
        ks = tuple(ks)
    except TypeError:
        raise MetricflowError(f"ks must be degrees such as (1, 2, 3) or a k_max, got {ks!r}") from None
    if not ks:
        raise MetricflowError("give at least one degree k, for example ks=(1, 2, 3)")
    ks = tuple(check_count(k, "degree k", minimum=1, maximum=MAX_K) for k in ks)
    if len(set(ks)) != len(ks) or list(ks) != sorted(ks):
        raise MetricflowError(f"degrees k must be increasing without repeats, got {ks}")
    return ks


@dataclass(frozen=True)
class DonaldsonConfig:
    """Balanced metrics at each degree k, measured on fresh points.

    Attributes:
      manifold: the Dwork hypersurface (psi^d = 1 is refused by Manifold).
      ks: the degrees k, increasing (an int k_max means 1..k_max); each at most MAX_K.
      n_points: points for the T-operator integrals (and the training of ``optimise``).
      n_test: fresh points on which sigma is measured.
      seed: seed of both samples (independent streams).
      optimise: also minimise sigma over H from the balanced one (Headrick-Nassar).
      tol: stop when ||T(H)^(-1) - H||_F / ||H||_F < tol.
      max_iterations: cap on T-operator applications per k.
      opt_steps, opt_lr: Adam steps and learning rate of ``optimise`` (without ``optimise``
        these and opt_points are set to their defaults, so the job key is per psi, k, sizes, seed).
      opt_points: training points of ``optimise``, the first of the n_points (default
        min(n_points // 2, OPT_POINTS)); the next opt_points, if there are as many, choose the
        step (validation).
      test: the test points are the first n_test of ``sample_points(test)`` (a SampleConfig on
        the same manifold, shared with other methods); None (default): a fresh sample of seed.
    """

    manifold: Manifold = Manifold()
    ks: tuple = (1, 2, 3, 4)
    n_points: int = 20_000
    n_test: int = 20_000
    seed: int = 0
    optimise: bool = False
    tol: float = 1e-6
    max_iterations: int = 200
    opt_steps: int = OPT_STEPS
    opt_lr: float = OPT_LR
    opt_points: Optional[int] = None
    test: Optional[SampleConfig] = field(default=None, metadata={"key": "omit-default"})

    constraints: ClassVar[dict] = {
        "n_points": Count("points"),
        "n_test": Count("test points"),
        "seed": Count("seed", minimum=0, maximum=2**63 - 1),
        "optimise": Flag(),
        "tol": Positive("tol"),
        "max_iterations": Count("max_iterations", maximum=10_000),
        "opt_steps": Count("opt_steps", maximum=100_000),
        "opt_lr": Positive("opt_lr"),
        "opt_points": Maybe(Count("opt_points")),
    }

    def __post_init__(self):
        if not isinstance(self.manifold, Manifold):
            raise ConfigTypeError(f"manifold must be a Manifold, got {type(self.manifold).__name__}")
        ks = _check_ks(self.ks)
        object.__setattr__(self, "ks", ks)
        validate(self)
        if self.tol >= 0.1:
            raise MetricflowError(f"tol is a relative change and must be below 0.1, got {self.tol:g}; try 1e-6")
        if self.opt_points is None:
            object.__setattr__(self, "opt_points", min(self.n_points // 2, OPT_POINTS))
        if self.test is not None:
            check_test_sample(self.test, self.manifold, self.n_test, "Donaldson's metrics")
        need = 10 * hilbert_dimension(self.manifold.degree, ks[-1])
        if self.n_points < need:
            raise MetricflowError(
                f"k = {ks[-1]} has {need // 10} sections and needs at least {need:,} points for the "
                f"T-operator, got {self.n_points:,}; use more points or a smaller k"
            )
        if self.optimise and self.opt_points > self.n_points:
            raise MetricflowError(
                f"opt_points ({self.opt_points:,}) must not exceed n_points ({self.n_points:,})"
            )
        if not self.optimise:  # unused: keep them at their defaults so they do not change the job key
            object.__setattr__(self, "opt_steps", OPT_STEPS)
            object.__setattr__(self, "opt_lr", OPT_LR)
            object.__setattr__(self, "opt_points", min(self.n_points // 2, OPT_POINTS))

    def sample_configs(self) -> tuple[SampleConfig, SampleConfig]:
        """The SampleConfigs of the integration points and of the fresh test points (of which
        the first n_test are used)."""
        a, b = np.random.SeedSequence([self.seed, 17]).generate_state(2, np.uint64) % np.uint64(2**63)
        test = self.test or SampleConfig(self.manifold, self.n_test, int(b))
        return SampleConfig(self.manifold, self.n_points, int(a)), test


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


@dataclass(frozen=True, eq=False)
class DonaldsonResult:
    """sigma of the balanced (and optimised) metric at each k, on fresh points.

    K degrees. Arrays are (K,) and follow ``ks``; the opt_* arrays are NaN without ``optimise``.

    Attributes:
      config: the DonaldsonConfig.
      ks: (K,) int64 degrees; n_sections: (K,) int64, N_k.
      sigma, sigma_se: (K,) float64, reference-kappa sigma of g_k and its standard error.
      sigma_self, sigma_self_se: (K,) float64, self-normalised sigma (cymetric's convention).
      iterations: (K,) int64 T-operator applications; converged: (K,) bool.
      residual: (K,) float64, the last ||T(H)^(-1) - H||_F / ||H||_F.
      seconds: (K,) float64, time to build the sections and balance H (the test excluded).
      seconds_per_iteration: (K,) float64.
      residual_history: K arrays (iterations,) float64.
      h: K arrays (N_k, N_k) complex128, the balanced H.
      opt_sigma, opt_sigma_se, opt_sigma_self, opt_sigma_self_se: (K,) float64, the same for
        the sigma-optimised H. opt_seconds: (K,) float64 (added to the balancing time).
      opt_best_step: (K,) int64, the Adam step whose H was kept (chosen on validation points:
        the opt_points integration points after the training ones, when there are enough);
        -1 without optimise.
      opt_train_sigma: K arrays (opt_steps + 1,) float64, training sigma per Adam step (empty
        without optimise).
      sigma_fs, sigma_fs_se, sigma_fs_self, sigma_fs_self_se: g_FS on the test points.
      kappa, kappa_se, kappa_exact: the reference kappa used.
      n_points, n_test: the sizes.
      total_seconds: wall time of the whole job.
    """

    config: DonaldsonConfig
    ks: np.ndarray
    n_sections: np.ndarray
    sigma: np.ndarray
    sigma_se: np.ndarray
    sigma_self: np.ndarray
    sigma_self_se: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    residual: np.ndarray
    seconds: np.ndarray
    seconds_per_iteration: np.ndarray
    residual_history: tuple
    h: tuple
    opt_sigma: np.ndarray
    opt_sigma_se: np.ndarray
    opt_sigma_self: np.ndarray
    opt_sigma_self_se: np.ndarray
    opt_seconds: np.ndarray
    opt_best_step: np.ndarray
    opt_train_sigma: tuple
    sigma_fs: float
    sigma_fs_se: float
    sigma_fs_self: float
    sigma_fs_self_se: float
    kappa: float
    kappa_se: float
    kappa_exact: bool
    n_points: int
    n_test: int
    total_seconds: float

    def per_k(self) -> list[dict]:
        """One JSON-ready dict per k (the entries of ``metricflow donaldson --json``)."""
        f = lambda v: None if not np.isfinite(v) else float(v)  # noqa: E731
        out = []
        for i, k in enumerate(self.ks):
            row = {
                "k": int(k), "n_sections": int(self.n_sections[i]),
                "sigma": f(self.sigma[i]), "sigma_se": f(self.sigma_se[i]),
                "sigma_self": f(self.sigma_self[i]), "sigma_self_se": f(self.sigma_self_se[i]),
                "iterations": int(self.iterations[i]), "converged": bool(self.converged[i]),
                "residual": f(self.residual[i]), "seconds": float(self.seconds[i]),
                "seconds_per_iteration": f(self.seconds_per_iteration[i]),
            }
            if self.config.optimise:
                row.update({
                    "opt_sigma": f(self.opt_sigma[i]), "opt_sigma_se": f(self.opt_sigma_se[i]),
                    "opt_sigma_self": f(self.opt_sigma_self[i]), "opt_sigma_self_se": f(self.opt_sigma_self_se[i]),
                    "opt_seconds": float(self.opt_seconds[i]), "opt_best_step": int(self.opt_best_step[i]),
                })
            out.append(row)
        return out

    def summary(self) -> dict:
        """The scalars and the per-k rows as a JSON-ready dict."""
        c = self.config
        return {
            "manifold": c.manifold.name, "psi": [c.manifold.psi.real, c.manifold.psi.imag],
            "seed": c.seed, "points": self.n_points, "test_points": self.n_test, "tol": c.tol,
            "optimise": c.optimise, "kappa": self.kappa, "kappa_se": self.kappa_se, "kappa_exact": self.kappa_exact,
            "sigma_fs": self.sigma_fs, "sigma_fs_se": self.sigma_fs_se,
            "sigma_fs_self": self.sigma_fs_self, "sigma_fs_self_se": self.sigma_fs_self_se,
            "per_k": self.per_k(), "seconds": self.total_seconds,
        }


def _report_arrays(reports: Sequence[Optional[SigmaReport]]):
    get = lambda name: np.asarray([np.nan if r is None else getattr(r, name) for r in reports], dtype=np.float64)  # noqa: E731
    return get("sigma"), get("sigma_se"), get("sigma_self"), get("sigma_self_se")


def _donaldson_partial(ks, balanced: list, optimised: list, histories: list, current: list) -> dict:
    """The partial series of ``run_donaldson``: sigma of the degrees done (balanced and, if
    run, optimised) and the T-operator's change per iteration at each k (``current``: the
    residuals of the k being balanced)."""
    done = ks[: len(balanced)]
    curves = {"balanced": (done, [r.sigma for r in balanced])}
    if any(r is not None for r in optimised):
        curves["optimised"] = (done[: len(optimised)], [np.nan if r is None else r.sigma for r in optimised])
    residuals = {f"k = {k}": (range(1, len(h) + 1), h) for k, h in zip(ks, histories + ([current] if current else []))}
    return {"panels": [
        panel("σ per k", "k", "σ", curves, log_y=True),
        panel("T-operator change per iteration", "iteration", "|T(H)⁻¹ - H| / |H|", residuals, log_y=True),
    ]}


def run_donaldson(config: DonaldsonConfig, progress=None, reference: Kappa | None = None) -> DonaldsonResult:
    """Balance H at each k of ``config`` and measure sigma of g_k on fresh points.

    Args:
      config: what to compute.
      progress: optional ``progress(step, total, message)``.
      reference: the reference kappa (default ``reference_kappa(config.manifold)``).

    Returns:
      DonaldsonResult.
    """
    from metricflow.geometry.reference import reference_kappa

    report = progress or (lambda *a, **k: None)
    start_all = time.perf_counter()
    total = 2 + len(config.ks) * (2 if config.optimise else 1)
    report(0, total, "sampling points")
    train_cfg, test_cfg = config.sample_configs()
    train, test = sample_points(train_cfg), first_points(test_cfg, config.n_test)
    kref = reference if reference is not None else reference_kappa(config.manifold)
    fs = measure_sigma(test.g_fs, test.omega_sq, test.weights, kref)
    report(1, total, "sigma of g_FS")
    K = len(config.ks)
    balanced_reports, opt_reports = [], []
    n_sections = np.zeros(K, dtype=np.int64)
    iterations = np.zeros(K, dtype=np.int64)
    converged = np.zeros(K, dtype=bool)
    residual, seconds, per_iteration, opt_seconds = _nan(K), _nan(K), _nan(K), _nan(K)
    opt_best = np.full(K, -1, dtype=np.int64)
    histories, hs, opt_losses = [], [], []
    step = 1
    for i, k in enumerate(config.ks):
        t0 = time.perf_counter()
        exps = monomial_exponents(config.manifold.degree, k)
        n_sections[i] = len(exps)
        s = np.concatenate([sections(train.z[a : a + BLOCK], exps) for a in range(0, len(train), BLOCK)])
        base = f"k = {k} ({len(exps)} sections)"
        t_iter = time.perf_counter()
        current = []

        def iterated(it: int, r: float) -> None:
            current.append(r)
            report(step, total, f"{base}: iteration {it}, change {r:.1e}")
            publish(progress, lambda: _donaldson_partial(config.ks, balanced_reports, opt_reports, histories, current))

        bal = balance(s, train.weights, initial_h(exps), config.tol, config.max_iterations, progress=iterated)
        del s
        now = time.perf_counter()
        seconds[i] = now - t0
        per_iteration[i] = (now - t_iter) / max(bal.iterations, 1)
        iterations[i], converged[i] = bal.iterations, bal.converged
        residual[i] = bal.residuals[-1] if bal.iterations else np.nan
        histories.append(bal.residuals)
        hs.append(bal.h)
        g = metric(test, bal.h, k, exps)
        balanced_reports.append(measure_sigma(g, test.omega_sq, test.weights, kref))
        step += 1
        report(step, total, f"{base}: sigma {balanced_reports[-1].sigma:.4f}")
        publish(progress, lambda: _donaldson_partial(config.ks, balanced_reports, opt_reports, histories, []))
        if config.optimise:
            t1 = time.perf_counter()
            n_opt = config.opt_points
            validation = train.subset(slice(n_opt, 2 * n_opt)) if len(train) >= 2 * n_opt else None
            opt = optimise_h(train.subset(slice(0, n_opt)), bal.h, k, kref.value, config.opt_steps,
                             config.opt_lr, exps, validation=validation)
            opt_seconds[i] = time.perf_counter() - t1
            opt_best[i] = opt.best_step
            g = metric(test, opt.h, k, exps)
            opt_reports.append(measure_sigma(g, test.omega_sq, test.weights, kref))
            opt_losses.append(opt.train_sigma)
            step += 1
            report(step, total, f"{base}: optimised sigma {opt_reports[-1].sigma:.4f}")
            publish(progress, lambda: _donaldson_partial(config.ks, balanced_reports, opt_reports, histories, []))
        else:
            opt_reports.append(None)
            opt_losses.append(np.zeros(0))
    sig, sig_se, sig_self, sig_self_se = _report_arrays(balanced_reports)
    o_sig, o_se, o_self, o_self_se = _report_arrays(opt_reports)
    report(total, total, "done")
    return DonaldsonResult(
        config=config, ks=np.asarray(config.ks, dtype=np.int64), n_sections=n_sections,
        sigma=sig, sigma_se=sig_se, sigma_self=sig_self, sigma_self_se=sig_self_se,
        iterations=iterations, converged=converged, residual=residual, seconds=seconds,
        seconds_per_iteration=per_iteration, residual_history=tuple(histories), h=tuple(hs),
        opt_sigma=o_sig, opt_sigma_se=o_se, opt_sigma_self=o_self, opt_sigma_self_se=o_self_se,
        opt_seconds=opt_seconds, opt_best_step=opt_best, opt_train_sigma=tuple(opt_losses),
        sigma_fs=fs.sigma, sigma_fs_se=fs.sigma_se, sigma_fs_self=fs.sigma_self, sigma_fs_self_se=fs.sigma_self_se,
        kappa=float(kref.value), kappa_se=float(kref.se), kappa_exact=bool(kref.exact),
        n_points=len(train), n_test=len(test), total_seconds=time.perf_counter() - start_all,
    )


# Seconds per complex multiply-add of the T-operator and the metric, fitted to
# benchmarks/bench_donaldson.py on 2 cores; and a typical iteration count.
SECONDS_PER_MAC = 5e-9
TYPICAL_ITERATIONS = 12
WORKER_BYTES = 400 * 2**20


def estimate_donaldson(config: DonaldsonConfig):
    """Expected seconds and peak bytes of ``run_donaldson(config)``.

    Per k the T-operator costs about 2 N N_k^2 complex multiply-adds per iteration, and the
    metric on the test points 2 M N_k^2 n; memory is dominated by the sections of the N
    integration points, 16 N N_k bytes, and the sampled points themselves.
    """
    from metricflow.geometry.points import memory_estimate
    from metricflow.geometry.reference import CHUNK, REFERENCE_POINTS

    c = config
    d, n = c.manifold.degree, c.manifold.dim
    sampled_test = c.test.n_points if c.test is not None else c.n_test
    seconds = 3.0 + 4e-5 * (c.n_points + sampled_test)  # start-up and sampling
    if c.manifold.exact_kappa() is None:
        seconds += 4e-5 * REFERENCE_POINTS  # the reference kappa, the first time for this psi
    peak = 0
    for k in c.ks:
        n_k = hilbert_dimension(d, k)
        seconds += SECONDS_PER_MAC * n_k * n_k * (2 * TYPICAL_ITERATIONS * c.n_points + 2 * n * c.n_test)
        if c.optimise:
            # an Adam step is ~3 forward passes of opt_points N_k^2 n (measured: ~1.5 x that count at 5e-9 s)
            seconds += 5.0 + 1.5 * SECONDS_PER_MAC * n_k * n_k * n * c.opt_points * c.opt_steps
            peak = max(peak, 16 * c.opt_points * n_k * (n + 1) * 6)
        peak = max(peak, 16 * c.n_points * n_k * 2 + 16 * BLOCK * n_k * d * 6)
    memory = WORKER_BYTES + memory_estimate(c.n_points, d) + memory_estimate(sampled_test, d) + peak
    if c.manifold.exact_kappa() is None:
        memory = max(memory, WORKER_BYTES + memory_estimate(CHUNK, d))
    return Estimate(float(seconds), int(memory))
