"""Pointwise losses l(x) = F(eta(x)) of appendix B and their metric gradients dl/dg.

eta = det g / (kappa |Omega|^2) (eq. B.11). The losses are

  ``sigma``       F(eta) = |1 - eta|        (eq. B.11, the sigma measure)
  ``ultralocal``  F(eta) = (eta - 1)^2      (eq. B.14)
  ``entropy``     F(eta) = eta ln eta       (below eq. B.14; undefined for eta <= 0)
  ``log``         F(eta) = (ln eta)^2 / 2   (ours: the default of the covariant flow)

Every one is a function of eta alone, so dl/dg = F'(eta) eta g^{-1}: relative to g the
correction is the scalar F'(eta) eta = dF/d(ln eta) times the identity (``relative_gradient``).
The metric-covariant flow (metricflow.flows.flow, docs/FLOWS.md) uses only that scalar; for the log
loss it is ln eta itself, so the delta-kernel flow is Newton's step on ln eta.

Complex gradient convention. g is a Hermitian matrix of complex entries, l(g) is real. The
steepest-ascent direction of l with respect to the real inner product Re tr(A^dag B) is

  D = dl/dRe g + i dl/dIm g = F'(eta) eta (g^{-1})^dag = F'(eta) eta g^{-1},

which is Hermitian, so g - lr D stays Hermitian. ``jax.grad`` of a real function of complex
input returns conj(D) = F'(eta) eta g^{-T}, not D; the flow must use conj(jax.grad(l)). This
module does that in one place, ``loss_gradient``; tests compare it with the closed form.
"""

from __future__ import annotations

from metricflow._jax import jax, jnp
from metricflow.errors import MetricflowError
from metricflow.geometry.measures import eta as eta_of

__all__ = ["LOSSES", "pointwise_loss", "loss_values", "total_loss", "loss_gradient", "relative_gradient"]


def _sigma(e):
    return jnp.abs(1.0 - e)


def _ultralocal(e):
    return (e - 1.0) ** 2


def _entropy(e):
    # eta ln eta is undefined for eta <= 0 (a non-positive-definite metric); the NaN it gives
    # is what stops a flow, with a message, rather than a silently repaired value.
    return e * jnp.log(e)


def _log(e):
    # (ln eta)^2 / 2: NaN for eta <= 0, like entropy.
    return 0.5 * jnp.log(e) ** 2


# name -> F(eta), with the equation it comes from
LOSSES = {"sigma": _sigma, "ultralocal": _ultralocal, "entropy": _entropy, "log": _log}


def pointwise_loss(name: str):
    """F(eta) for a loss name in LOSSES, as a JAX function of a float64 array."""
    try:
        return LOSSES[name]
    except KeyError:
        raise MetricflowError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}") from None


def loss_values(g, omega_sq, kappa_value, name: str):
    """F(eta(x)) at each point.

    Args:
      g: (N, n, n) complex128 Hermitian metrics.
      omega_sq: (N,) float64 |Omega|^2.
      kappa_value: scalar float64, kappa of the reference (FS) metric, held fixed.
      name: a key of LOSSES.

    Returns:
      (N,) float64.
    """
    return pointwise_loss(name)(eta_of(g, omega_sq, kappa_value))


def total_loss(g, omega_sq, weights, kappa_value, name: str):
    """L = sum_x w(x) F(eta(x)) / sum_x w(x): the Monte-Carlo integral of F over X (eq. 2.3).

    With the CY weights this is the integral of F(eta) against the CY measure; for ``sigma``
    it is the sigma measure (B.11) itself. Its derivative at one point carries the factor
    w(x) / sum w ~ 1/N, the discrete form of the functional derivative in eq. (2.8), so the
    kernel sum of eq. (3.5) is a Monte-Carlo estimate of the integral over x'. This is the
    scale in which the learning rates of table 1 are stated.

    Args:
      g: (N, n, n) complex128; omega_sq, weights: (N,) float64; kappa_value: scalar.

    Returns:
      scalar float64.
    """
    w = weights / jnp.sum(weights)
    return jnp.sum(w * loss_values(g, omega_sq, kappa_value, name))


def _gradient(g, omega_sq, weights, kappa_value, name):
    grad = jax.grad(total_loss)(g, omega_sq, weights, kappa_value, name)
    return jnp.conj(grad)


_gradient_jit = jax.jit(_gradient, static_argnames="name")


def loss_gradient(g, omega_sq, weights, kappa_value, name: str):
    """dl(x)/dg(x) for every point: the steepest-ascent direction D of eq. (3.5), Hermitian.

    D(x) = (w(x) / sum w) F'(eta) eta g^{-1}, obtained by autodiff of ``total_loss`` and
    conjugated (see the module docstring for the convention). The flow update is
    g <- g - lr sum_x' Theta(x, x') D(x').

    Args:
      g: (N, n, n) complex128 Hermitian metrics.
      omega_sq, weights: (N,) float64.
      kappa_value: scalar float64.
      name: a key of LOSSES.

    Returns:
      (N, n, n) complex128, Hermitian up to rounding.

    Example:
      >>> D = loss_gradient(pts.g_fs, pts.omega_sq, pts.weights, k, "sigma")
    """
    pointwise_loss(name)  # validate the name before tracing
    return _gradient_jit(
        jnp.asarray(g, dtype=jnp.complex128),
        jnp.asarray(omega_sq, dtype=jnp.float64),
        jnp.asarray(weights, dtype=jnp.float64),
        jnp.asarray(kappa_value, dtype=jnp.float64),
        name=name,
    )


def _relative(log_eta, name):
    f = LOSSES[name]
    return jax.vmap(jax.grad(lambda s: f(jnp.exp(s))))(log_eta)


_relative_jit = jax.jit(_relative, static_argnames="name")


def relative_gradient(eta_values, name: str):
    """dF/d(ln eta) = F'(eta) eta at each point: the loss gradient relative to the metric.

    dl/dg = F'(eta) eta g^{-1}, so g^{1/2} (dl/dg) g^{1/2} = F'(eta) eta times the identity:
    the correction a point asks for, in its metric's own frame, is conformal with this rate.
    Obtained by autodiff of F(exp(s)) at s = ln eta; tests compare it with the closed forms
    (sigma: sign(eta - 1) eta, ultralocal: 2 (eta - 1) eta, entropy: (ln eta + 1) eta, log: ln eta).

    Args:
      eta_values: (N,) float64, eta > 0 (a positive-definite metric).
      name: a key of LOSSES.

    Returns:
      (N,) float64; NaN where eta <= 0.
    """
    pointwise_loss(name)
    e = jnp.asarray(eta_values, dtype=jnp.float64)
    return _relative_jit(jnp.log(e), name=name)
