"""Kernels of the flow against independent computations and closed forms."""

import numpy as np
import pytest

from metricflow import FSNeighbours, MetricflowError, SampleConfig, sample_points
from metricflow.kernels import LowRank, check_dense, row_sums
from metricflow.kernels import cosnet_apply, cosnet_empirical_kernel, cosnet_init, cosnet_kernel, cosnet_normalisation, cosnet_width, delta_kernel, gaussian_kernel, gaussian_kernel_sparse
from metricflow.kernels import relu_ntk


@pytest.fixture(scope="module")
def sets():
    return sample_points(SampleConfig(n_points=300, seed=5)), sample_points(SampleConfig(n_points=120, seed=6))


def _arccos_distance(z1, z2):
    """Eq. (3.2) written out, pair by pair, with the eq. (3.4) threshold."""
    out = np.empty((len(z1), len(z2)))
    for i, a in enumerate(z1):
        for j, b in enumerate(z2):
            c = abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b))
            out[i, j] = np.arccos(min(c, 1.0))
    return np.where(out < 1e-7, 0.0, out)


def test_gaussian_kernel_is_eq_3_6(sets):
    train, test = sets
    d = _arccos_distance(test.z[:20], train.z)
    np.testing.assert_allclose(gaussian_kernel(test.z[:20], train.z, 0.2), np.exp(-d / 0.4), rtol=1e-6)
    np.testing.assert_allclose(
        gaussian_kernel(test.z[:20], train.z, 0.2, squared=True), np.exp(-(d**2) / 0.08), rtol=1e-6, atol=1e-12
    )


def test_sparse_gaussian_is_the_dense_one_cut_off(sets):
    train, test = sets
    nbrs = FSNeighbours(train.z)
    for q in (test.z, train.z):
        dense = gaussian_kernel(q, train.z, 0.3)
        dist = _arccos_distance(q, train.z)
        sparse = gaussian_kernel_sparse(q, nbrs, 0.3, radius=0.4).toarray()
        inside = dist <= 0.4 - 1e-9
        np.testing.assert_allclose(sparse[inside], dense[inside], rtol=1e-9)
        assert np.all(sparse[dist > 0.4 + 1e-9] == 0)
    # train points see themselves with weight 1
    assert np.allclose(np.diag(gaussian_kernel_sparse(train.z, nbrs, 0.3, radius=0.4).toarray()), 1.0)


def test_delta_kernel_picks_the_nearest_train_point(sets):
    train, test = sets
    nbrs = FSNeighbours(train.z)
    k = delta_kernel(test.z, nbrs)
    want = np.argmin(_arccos_distance(test.z, train.z), axis=1)
    assert np.array_equal(k.indices, want) and np.all(k.data == 1.0)
    np.testing.assert_array_equal(delta_kernel(train.z, nbrs, same=True).toarray(), np.eye(len(train)))
    np.testing.assert_array_equal(row_sums(k), np.ones(len(test)))


def test_cosnet_gaussian_width_and_normalisation():
    """(2.35)-(2.37): Theta(x, x + s e) = peak * exp(-1/2) at s = sqrt(d)/sigma_w; integral 1."""
    d, sw = 2, 3.0
    s = cosnet_width(sw, d)
    assert s == pytest.approx(np.sqrt(2) / 3.0)
    x0 = np.zeros((1, d))
    peak = cosnet_kernel(x0, x0, sw)[0, 0]
    assert peak == pytest.approx(cosnet_normalisation(sw, d) ** 2 / 2)
    assert cosnet_kernel(x0, np.array([[s, 0.0]]), sw)[0, 0] == pytest.approx(peak * np.exp(-0.5), rel=1e-12)
    # the normalised Gaussian integrates to 1 over R^d (midpoint rule on a wide grid)
    h = 0.01
    g = np.arange(-6 * s, 6 * s, h) + h / 2
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, d)
    assert np.sum(cosnet_kernel(x0, grid, sw)) * h**d == pytest.approx(1.0, rel=1e-6)


def test_cosnet_empirical_is_the_jacobian_product_of_the_network():
    """Eq. (2.33): Theta = sum_k dphi(x)/da_k dphi(x')/da_k for the net of eq. (2.32)."""
    x = np.random.default_rng(1).standard_normal((6, 4))
    params = cosnet_init(seed=2, width=40, d=4, sigma_w=2.0)
    amp = cosnet_normalisation(2.0, 4)
    jac = np.stack([cosnet_apply(params, np.eye(40)[k], x, amp) for k in range(40)], axis=1)
    k = cosnet_empirical_kernel(params, x, x, 2.0)
    assert isinstance(k, LowRank) and k.shape == (6, 6)
    np.testing.assert_allclose(k.toarray(), jac @ jac.T, rtol=1e-12)
    v = np.random.default_rng(2).standard_normal((6, 3))
    np.testing.assert_allclose(k @ v, (jac @ jac.T) @ v, rtol=1e-12)
    # parameter description: w ~ N(0, sigma_w^2 / d), b ~ U(-pi, pi)
    big = cosnet_init(seed=3, width=200_000, d=4, sigma_w=2.0)
    assert np.var(big.w) == pytest.approx(4.0 / 4, rel=0.01)
    assert big.b.min() >= -np.pi and big.b.max() <= np.pi and np.var(big.b) == pytest.approx(np.pi**2 / 3, rel=0.01)


def test_cosnet_empirical_kernel_converges_as_one_over_sqrt_width(sets):
    train, _ = sets
    x = train.features[:25]
    sw, d = 4.0, x.shape[1]
    exact = cosnet_kernel(x, x, sw)
    scale = cosnet_normalisation(sw, d) ** 2
    errors = {}
    for width in (500, 8000):
        errs = [
            np.sqrt(np.mean((cosnet_empirical_kernel(cosnet_init(s, width, d, sw), x, x, sw).toarray() - exact) ** 2))
            for s in range(4)
        ]
        errors[width] = np.mean(errs)
        # each entry is a mean of `width` terms A^2 cos cos, each of variance <= A^4 / 4
        assert errors[width] <= 0.6 * scale / np.sqrt(width)
    assert 2.5 <= errors[500] / errors[8000] <= 6.5  # sqrt(16) = 4


def _relu_ntk_depth1(x1, x2, sw, sb):
    """Closed form (arc-cosine kernels) of the NTK of Dense-Relu-Dense in NTK parameterisation."""
    dim = x1.shape[1]
    s12 = sw**2 * x1 @ x2.T / dim + sb**2
    s11 = sw**2 * np.sum(x1**2, 1) / dim + sb**2
    s22 = sw**2 * np.sum(x2**2, 1) / dim + sb**2
    norm = np.sqrt(np.outer(s11, s22))
    theta = np.arccos(np.clip(s12 / norm, -1, 1))
    k_relu = norm / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * np.cos(theta))
    k_step = (np.pi - theta) / (2 * np.pi)
    return sw**2 * k_relu + sb**2 + sw**2 * k_step * s12


def test_relu_ntk_matches_closed_form_and_monte_carlo(sets):
    from metricflow import _nt

    train, test = sets
    x1, x2 = test.features[:6], train.features[:9]
    for sw, sb in ((5.716, 80.52), (1.5, 0.3)):
        got = relu_ntk(x1, x2, depth=1, sigma_w=sw, sigma_b=sb)
        np.testing.assert_allclose(got, _relu_ntk_depth1(x1, x2, sw, sb), rtol=1e-8)
    # the finite network of the same description: empirical NTK -> analytic as width grows
    mc = _nt.relu_ntk_monte_carlo(x1, x2, 1, 1.5, 0.3, width=2048, n_samples=4, seed=0)
    exact = _relu_ntk_depth1(x1, x2, 1.5, 0.3)
    assert np.max(np.abs(mc - exact)) <= 0.05 * np.max(np.abs(exact))


def test_dense_kernels_are_bounded():
    with pytest.raises(MetricflowError, match=r"100,000 x 100,000 matrix \(74.5 GiB\), over the limit"):
        check_dense(100_000, 100_000, "the Gaussian kernel")
    with pytest.raises(MetricflowError, match="dense 30,000 x 20,000"):
        gaussian_kernel(np.ones((30_000, 5), complex), np.ones((20_000, 5), complex), 1.0)
