"""Loss gradients (appendix B) against closed forms, and the complex gradient convention."""

import numpy as np
import pytest

from metricflow import MetricflowError, SampleConfig, kappa, sample_points, sigma
from metricflow.flows.losses import LOSSES, loss_gradient, loss_values, relative_gradient, total_loss
from metricflow.geometry.measures import eta


@pytest.fixture(scope="module")
def pts():
    return sample_points(SampleConfig(n_points=300, seed=11))


def _closed_form(g, omega_sq, weights, k, name):
    """D = (w / sum w) F'(eta) eta g^{-1}, from d det g = det g tr(g^{-1} dg)."""
    e = np.linalg.det(g).real / omega_sq / k
    fprime = {"sigma": np.sign(e - 1.0), "ultralocal": 2.0 * (e - 1.0), "entropy": np.log(e) + 1.0,
              "log": np.log(e) / e}[name]
    return ((weights / weights.sum()) * fprime * e)[:, None, None] * np.linalg.inv(g)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_matches_closed_form(pts, name):
    k = float(kappa(pts.g_fs, pts.omega_sq, pts.weights))
    got = np.asarray(loss_gradient(pts.g_fs, pts.omega_sq, pts.weights, k, name))
    want = _closed_form(pts.g_fs, pts.omega_sq, pts.weights, k, name)
    assert np.max(np.abs(got - want)) <= 1e-10 * np.max(np.abs(want))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_is_hermitian_and_not_the_raw_jax_grad(pts, name):
    k = float(kappa(pts.g_fs, pts.omega_sq, pts.weights))
    d = np.asarray(loss_gradient(pts.g_fs, pts.omega_sq, pts.weights, k, name))
    assert np.max(np.abs(d - np.conj(np.swapaxes(d, 1, 2)))) <= 1e-12 * np.max(np.abs(d))
    # the update g - lr K D with a real kernel K stays Hermitian
    kern = np.random.default_rng(0).random((7, len(pts)))
    upd = np.einsum("mn,nab->mab", kern, d)
    assert np.max(np.abs(upd - np.conj(np.swapaxes(upd, 1, 2)))) <= 1e-12 * np.max(np.abs(upd))
    # D is g^{-1}, not g^{-T} (what jax.grad returns): they differ off the diagonal
    assert np.max(np.abs(d - np.conj(d))) > 1e-3 * np.max(np.abs(d))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_directional_derivative_by_finite_differences(pts, name):
    """dL(g + t H)/dt = sum_x Re tr(D(x)^dag H(x)) for Hermitian H: D is the real gradient."""
    sub = pts.subset(np.arange(40))
    k = float(kappa(pts.g_fs, pts.omega_sq, pts.weights))
    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 3, 3)) + 1j * rng.standard_normal((40, 3, 3))
    h = 1e-3 * (a + np.conj(np.swapaxes(a, 1, 2)))
    f = lambda t: float(total_loss(sub.g_fs + t * h, sub.omega_sq, sub.weights, k, name))  # noqa: E731
    t = 1e-6
    numeric = (f(t) - f(-t)) / (2 * t)
    d = np.asarray(loss_gradient(sub.g_fs, sub.omega_sq, sub.weights, k, name))
    analytic = float(np.sum(np.real(np.conj(d) * h)))
    assert numeric == pytest.approx(analytic, rel=1e-5)


def test_small_step_decreases_the_loss(pts):
    k = float(kappa(pts.g_fs, pts.omega_sq, pts.weights))
    for name in LOSSES:
        d = np.asarray(loss_gradient(pts.g_fs, pts.omega_sq, pts.weights, k, name))
        before = float(total_loss(pts.g_fs, pts.omega_sq, pts.weights, k, name))
        after = float(total_loss(pts.g_fs - 1e-7 * d, pts.omega_sq, pts.weights, k, name))
        assert after < before


def test_loss_values_are_the_formulas(pts):
    k = float(kappa(pts.g_fs, pts.omega_sq, pts.weights))
    e = np.asarray(eta(pts.g_fs, pts.omega_sq, k))
    np.testing.assert_allclose(loss_values(pts.g_fs, pts.omega_sq, k, "sigma"), np.abs(1 - e), rtol=1e-12)
    np.testing.assert_allclose(loss_values(pts.g_fs, pts.omega_sq, k, "ultralocal"), (e - 1) ** 2, rtol=1e-12)
    np.testing.assert_allclose(loss_values(pts.g_fs, pts.omega_sq, k, "entropy"), e * np.log(e), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss_values(pts.g_fs, pts.omega_sq, k, "log"), 0.5 * np.log(e) ** 2, rtol=1e-12, atol=1e-15)
    # L with the CY weights is the sigma measure (B.11)
    s = np.sum(pts.weights * np.abs(1 - e)) / np.sum(pts.weights)
    assert float(total_loss(pts.g_fs, pts.omega_sq, pts.weights, k, "sigma")) == pytest.approx(s, rel=1e-12)
    assert float(sigma(pts.g_fs, pts.omega_sq, pts.weights, k)) == pytest.approx(s, rel=1e-12)


def test_unknown_loss_is_refused(pts):
    with pytest.raises(MetricflowError, match="unknown loss 'l2'; expected one of sigma"):
        loss_gradient(pts.g_fs, pts.omega_sq, pts.weights, 1.0, "l2")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_relative_gradient_is_the_conformal_part_of_dl_dg(pts, name):
    """g^{1/2} (dl/dg) g^{1/2} = r I with r = F'(eta) eta: against closed forms and loss_gradient."""
    k = float(kappa(pts.g_fs, pts.omega_sq, pts.weights))
    e = np.asarray(eta(pts.g_fs, pts.omega_sq, k))
    want = {"sigma": np.sign(e - 1.0) * e, "ultralocal": 2.0 * (e - 1.0) * e, "entropy": (np.log(e) + 1.0) * e,
            "log": np.log(e)}[name]
    got = np.asarray(relative_gradient(e, name))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    # dl/dg (unweighted: weights w with sum w = 1 per point) times g is r times the identity
    d = np.asarray(loss_gradient(pts.g_fs, pts.omega_sq, np.ones(len(pts)), k, name)) * len(pts)
    dg = np.einsum("nab,nbc->nac", d, pts.g_fs)
    np.testing.assert_allclose(dg, got[:, None, None] * np.eye(3)[None], atol=1e-9 * np.max(np.abs(got)))
    assert np.isnan(np.asarray(relative_gradient(np.array([-0.5]), name))[0])  # no rate for a non-PD metric
