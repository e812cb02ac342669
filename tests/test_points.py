"""Sampling, charts, Omega, pullbacks, FS metrics and weights, checked against autodiff,
against chart invariance and against the exact kappa of the Fermat hypersurfaces."""

import numpy as np
import pytest

from metricflow import SampleConfig, manifold, points_from_coordinates, sample_points
from metricflow._jax import jax, jnp
from metricflow.geometry.points import local_indices

CASES = [("quintic", 0), ("quartic", 0), ("cubic", 0), ("quintic", 0.3 + 0.2j), ("quartic", 1.7j), ("cubic", -0.4)]


@pytest.mark.parametrize("name,psi", CASES)
def test_points_lie_on_hypersurface(name, psi):
    m = manifold(name, psi)
    pts = sample_points(SampleConfig(m, 5000, seed=1))
    assert len(pts) == 5000 and pts.z.dtype == np.complex128
    residual = np.abs(m.polynomial(pts.z)) / m.monomial_scale(pts.z)
    assert residual.max() < 1e-10


def test_patch_choice():
    m = manifold("quintic")
    pts = sample_points(SampleConfig(m, 2000, seed=2))
    rows = np.arange(len(pts))
    assert np.all(pts.z[rows, pts.scale_index] == 1.0)
    assert np.allclose(np.abs(pts.z).max(axis=1), 1.0)
    grad = np.abs(m.gradient(pts.z))
    grad[rows, pts.scale_index] = -1
    assert np.array_equal(pts.elim_index, grad.argmax(axis=1))
    # the chosen chart has the smallest |Omega|^2 among charts with the same scaling
    assert np.all(pts.omega_sq <= 1 / grad.max(axis=1) ** 2 * (1 + 1e-12))
    # all 20 charts of the quintic occur
    assert len(np.unique(pts.chart, axis=0)) == 20


def test_sampling_is_seeded():
    m = manifold("quartic")
    a = sample_points(SampleConfig(m, 300, seed=7))
    b = sample_points(SampleConfig(m, 300, seed=7))
    c = sample_points(SampleConfig(m, 300, seed=8))
    assert np.array_equal(a.z, b.z) and not np.allclose(a.z, c.z)


def _autodiff_geometry(m, pts):
    """Pullback, dp/dz_elim and g_FS at each point by JAX autodiff, independent of the
    closed forms: z_elim(x) is solved from p = 0 by Newton steps, and differentiated."""
    d, n = m.degree, m.dim

    def p(z):
        return jnp.sum(z**d) - d * m.psi * jnp.prod(z)

    def embed(x, z0, free, elim):
        z = z0.at[free].set(x)

        def newton(_, ze):
            zz = z.at[elim].set(ze)
            dp = jax.grad(lambda t: p(zz.at[elim].set(t)), holomorphic=True)(ze)
            return ze - p(zz) / dp

        ze = jax.lax.fori_loop(0, 12, newton, z0[elim] * (1 + 1e-3))  # start off the root
        return z.at[elim].set(ze)

    def one(z0, free, elim):
        x0 = z0[free]
        jac = jax.jacfwd(embed, holomorphic=True)(x0, z0, free, elim)  # (d, n)
        dp = jax.grad(lambda t: p(z0.at[elim].set(t)), holomorphic=True)(z0[elim])

        def K(uv):  # (1/pi) log|z(x)|^2 as a real function of (Re x, Im x)
            zz = embed(uv[:n] + 1j * uv[n:], z0, free, elim)
            return jnp.log(jnp.sum(jnp.abs(zz) ** 2)) / jnp.pi

        H = jax.hessian(K)(jnp.concatenate([x0.real, x0.imag]))
        Huu, Hvv, Huv = H[:n, :n], H[n:, n:], H[:n, n:]
        g = 0.25 * (Huu + Hvv + 1j * (Huv - Huv.T))  # d_a dbar_b K
        return jac.T, 1 / jnp.abs(dp) ** 2, g

    free = local_indices(pts.scale_index, pts.elim_index, d)
    return jax.jit(jax.vmap(one))(jnp.asarray(pts.z), jnp.asarray(free), jnp.asarray(pts.elim_index))


@pytest.mark.parametrize("name,psi", [("quintic", 0), ("quartic", 0.5 - 0.2j), ("cubic", 0)])
def test_pullback_omega_and_fs_metric_match_autodiff(name, psi):
    m = manifold(name, psi)
    pts = sample_points(SampleConfig(m, 40, seed=3))
    jac, omega_sq, g = _autodiff_geometry(m, pts)
    np.testing.assert_allclose(np.asarray(jac), pts.jacobian, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(omega_sq), pts.omega_sq, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(g), pts.g_fs, rtol=1e-8, atol=1e-12)


def test_fs_metric_hermitian_positive():
    pts = sample_points(SampleConfig(manifold("quintic"), 3000, seed=4))
    g = pts.g_fs
    assert np.allclose(g, np.conj(np.swapaxes(g, 1, 2)), atol=1e-14)
    assert np.all(np.linalg.eigvalsh(g) > 0)
    assert np.all(pts.weights > 0) and np.all(np.isfinite(pts.weights))


def _ambient_kahler_metric(z, h):
    """d_i dbar_j log(z^dag h z) on P^(d-1) for a Hermitian positive h: a Kahler metric
    other than FS (h = 1 gives pi times FS). Shape (N, d, d)."""
    s = np.einsum("ni,ij,nj->n", np.conj(z), h, z).real[:, None, None]
    hz = z @ h.T  # (h z)_j
    zh = np.conj(z) @ h  # (h^T zbar)_i
    return h.T[None] / s - zh[:, :, None] * hz[:, None, :] / s**2


@pytest.mark.parametrize("name,psi", [("quintic", 0), ("quartic", 0.2 + 0.3j), ("cubic", 0)])
@pytest.mark.parametrize("ambient", ["fs", "other"])
def test_weights_and_eta_do_not_depend_on_chart(name, psi, ambient):
    """w = |Omega|^2 / det g_FS and eta of any globally defined metric are scalars: every
    well-conditioned chart gives the same values."""
    from metricflow.geometry.measures import eta

    m = manifold(name, psi)
    d = m.degree
    pts = sample_points(SampleConfig(m, 400, seed=5))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((d, d)) + 1j * rng.standard_normal((d, d))
    h = np.eye(d) if ambient == "fs" else a @ a.conj().T / d + np.eye(d)

    def metric(p):
        return np.einsum("nai,nij,nbj->nab", p.jacobian, _ambient_kahler_metric(p.z, h), np.conj(p.jacobian))

    rows = np.arange(len(pts))
    for _ in range(6):
        chart = np.stack([rng.permutation(d)[:2] for _ in rows])
        grad = np.abs(m.gradient(pts.z))
        # well-conditioned charts: the rescaling and the elimination do not amplify rounding
        ok = (np.abs(pts.z[rows, chart[:, 0]]) > 0.3) & (grad[rows, chart[:, 1]] > 0.3 * grad.max(axis=1))
        other = points_from_coordinates(m, pts.z[ok], chart=chart[ok])
        assert np.array_equal(other.chart, chart[ok])
        np.testing.assert_allclose(other.weights, pts.weights[ok], rtol=1e-9)
        np.testing.assert_allclose(
            eta(metric(other), other.omega_sq, 0.02), eta(metric(pts)[ok], pts.omega_sq[ok], 0.02), rtol=1e-9
        )


def test_local_indices():
    idx = local_indices(np.array([0, 4, 2]), np.array([1, 0, 3]), 5)
    assert idx.tolist() == [[2, 3, 4], [1, 2, 3], [0, 1, 4]]


@pytest.mark.parametrize("name", ["quintic", "quartic", "cubic"])
def test_kappa_matches_exact_value(name):
    """kappa = Vol_FS / int|Omega|^2 = d^d / (n! pi^n gamma(1/d)^d) at psi = 0."""
    from metricflow import kappa

    m = manifold(name)
    pts = sample_points(SampleConfig(m, 100_000, seed=11))
    k = float(kappa(pts.g_fs, pts.omega_sq, pts.weights))
    w = pts.weights
    rel_err = w.std() / w.mean() / np.sqrt(len(w))  # standard error of 1/mean(w)
    assert abs(k / m.exact_kappa() - 1) < 4 * rel_err
    assert rel_err < 0.005


def test_exact_kappa_values():
    assert manifold("quintic").exact_kappa() == pytest.approx(0.0176189, rel=1e-5)
    assert manifold("quintic", 0.1).exact_kappa() is None
    # cubic torus: int |Omega|^2 is the area of the period lattice, (2/9) pi gamma(1/3)^3 ... from the
    # Dirichlet integral; check it against direct quadrature over the x-plane (3 sheets).
    from scipy import integrate

    def integrand(r, theta):
        x = r * np.exp(1j * theta)
        return r / abs(1 + x**3) ** (4 / 3)

    # split at the branch points |x| = 1 and at theta = pi/3 (a branch point), by symmetry 6 sectors
    pieces = [integrate.dblquad(lambda r, t: integrand(r, t), 0, np.pi / 3, a, b, epsabs=1e-11, epsrel=1e-10)[0]
              for a, b in [(0, 1), (1, 2), (2, np.inf)]]
    area = 6 * sum(pieces) / 3  # (1/3) int d^2x |1 + x^3|^(-4/3)
    vol_fs = 3.0
    assert vol_fs / area == pytest.approx(manifold("cubic").exact_kappa(), rel=1e-6)
