"""The sigma-measure (B.11): reference values, the FS identity, and double precision."""

import numpy as np
import pytest

from metricflow import SampleConfig, eta, kappa, manifold, sample_points, sigma
from metricflow._jax import jax, jnp


def test_sigma_fs_of_the_fermat_quintic(quintic_100k):
    """0.372 +- 0.005 at 10^5 points, as in the literature (for example cymetric)."""
    pts = quintic_100k
    s = float(sigma(pts.g_fs, pts.omega_sq, pts.weights))
    assert s == pytest.approx(0.372, abs=0.005)
    assert float(kappa(pts.g_fs, pts.omega_sq, pts.weights)) == pytest.approx(0.0176, abs=0.0002)


def test_sigma_of_fs_reduces_to_weight_spread(quintic_100k):
    """For g = g_FS, eta = 1/(kappa w) and kappa = 1/mean(w): sigma = mean|w - mean w| / mean w."""
    pts = quintic_100k
    w = pts.weights
    assert float(sigma(pts.g_fs, pts.omega_sq, w)) == pytest.approx(np.mean(np.abs(w - w.mean())) / w.mean(), rel=1e-12)
    assert float(kappa(pts.g_fs, pts.omega_sq, w)) == pytest.approx(1 / w.mean(), rel=1e-12)


@pytest.mark.parametrize("name,expected", [("quartic", 0.2306), ("cubic", 0.0973)])
def test_sigma_fs_of_k3_and_torus(name, expected):
    """sigma_FS of the Fermat quartic and cubic; references from 10^6 points (docs/GEOMETRY.md)."""
    pts = sample_points(SampleConfig(manifold(name), 100_000, seed=21))
    assert float(sigma(pts.g_fs, pts.omega_sq, pts.weights)) == pytest.approx(expected, abs=0.003)


def test_ricci_flat_torus_metric_has_zero_sigma():
    """On the torus the flat metric is g = |Omega|^2 / kappa up to scale, so eta = 1 exactly."""
    pts = sample_points(SampleConfig(manifold("cubic"), 2000, seed=2))
    g = (pts.omega_sq * 3.7)[:, None, None].astype(complex)
    assert float(sigma(g, pts.omega_sq, pts.weights)) < 1e-14
    # with kappa held at its FS value the same metric is off by the constant factor only
    k_fs = kappa(pts.g_fs, pts.omega_sq, pts.weights)
    np.testing.assert_allclose(eta(g, pts.omega_sq, k_fs), 3.7 / k_fs, rtol=1e-12)


def test_sigma_is_double_precision():
    """x64 is on: sigma is float64, and it resolves a 1e-12 change that float32 cannot."""
    assert jax.config.jax_enable_x64
    pts = sample_points(SampleConfig(manifold("quintic"), 500, seed=3))
    g = jnp.asarray(pts.g_fs)
    assert g.dtype == jnp.complex128
    s = sigma(g, pts.omega_sq, pts.weights)
    assert s.dtype == jnp.float64
    k = kappa(g, pts.omega_sq, pts.weights)
    s1 = sigma(g * (1 + 1e-12), pts.omega_sq, pts.weights, k)
    s0 = sigma(g, pts.omega_sq, pts.weights, k)
    assert float(s1) != float(s0)
    assert abs(float(s1) - float(s0)) < 1e-10


def test_kappa_fixed_versus_recomputed():
    """Scaling g by c scales det g by c^n: with kappa fixed, eta scales by c^n; recomputing
    kappa hides it. Flows keep kappa at its FS value for this reason."""
    pts = sample_points(SampleConfig(manifold("quintic"), 1000, seed=4))
    k = kappa(pts.g_fs, pts.omega_sq, pts.weights)
    g = 1.1 * pts.g_fs
    assert float(sigma(g, pts.omega_sq, pts.weights)) == pytest.approx(float(sigma(pts.g_fs, pts.omega_sq, pts.weights)), rel=1e-12)
    np.testing.assert_allclose(eta(g, pts.omega_sq, k), 1.1**3 * eta(pts.g_fs, pts.omega_sq, k), rtol=1e-12)
