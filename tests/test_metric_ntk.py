"""The empirical metric-NTK (eq. 2.7): symmetry, positivity, the spectra, the experiments."""

import numpy as np
import pytest

from metricflow import MetricflowError, SampleConfig, manifold, sample_points
from metricflow._jax import jax
from metricflow.studies.feature_learning import TrainedKernelConfig, WidthSweepConfig, run_trained_kernel, run_width_sweep
from metricflow.networks.metric_ntk import metric_ntk, spectrum, wasserstein_to_first
from metricflow.networks.models import TrainConfig, components_fn, init_params, model_input


@pytest.fixture(scope="module")
def probe():
    return model_input(sample_points(SampleConfig(manifold("quintic"), 6, seed=5)))


@pytest.mark.parametrize("model", ["metric", "phi"])
def test_metric_ntk_is_symmetric_psd_and_a_jacobian_gram_matrix(probe, model):
    cfg = TrainConfig(model=model, n_points=100, width=16, depth=2)
    params = init_params(cfg, jax.random.PRNGKey(0), 3, 5)
    f = components_fn(cfg, 3, 5)
    theta = metric_ntk(f, params, probe, probe, 1)
    assert theta.shape == (54, 54)
    assert np.allclose(theta, theta.T, atol=1e-12 * np.abs(theta).max())
    eig = spectrum(theta)
    assert eig[0] > -1e-10 * eig[-1]
    # eq. (2.7) by hand: J J^T with J = d components / d theta
    jac = jax.jit(jax.jacobian(lambda p: f(p, probe).reshape(-1)))(params)
    j = np.concatenate([np.asarray(a).reshape(54, -1) for a in jax.tree_util.tree_leaves(jac)], axis=1)
    assert np.allclose(theta, j @ j.T, rtol=1e-9, atol=1e-12 * np.abs(theta).max())
    # implementation 2 (NTK-vector products) agrees; 3 is refused
    if model == "phi":
        return
    assert np.allclose(metric_ntk(f, params, probe, probe, 2), theta, rtol=1e-8, atol=1e-12 * np.abs(theta).max())
    with pytest.raises(ValueError, match="broken"):
        metric_ntk(f, params, probe, probe, 3)


def test_wasserstein_to_first():
    rng = np.random.default_rng(0)
    a = np.sort(rng.exponential(size=50))
    raw, log = wasserstein_to_first(np.stack([a, a, 2 * a]))
    assert raw[0] == 0 and raw[1] == 0 and raw[2] == pytest.approx(np.mean(a))
    assert log[2] == pytest.approx(np.log10(2))


def test_training_records_the_evolving_kernel():
    from metricflow.networks.models import train

    r = train(TrainConfig(n_points=1000, epochs=3, width=16, depth=2, ntk_probe=5, ntk_every=2))
    assert list(r.ntk_epochs) == [0, 2, 3]
    assert r.ntk_spectra.shape == (3, 45)
    assert r.ntk_wasserstein[0] == 0 and np.all(r.ntk_wasserstein[1:] > 0)
    assert r.ntk_change[0] == 0 and np.all(r.ntk_change[1:] > 0)


def test_width_sweep_kernel_moves_less_when_wider():
    r = run_width_sweep(WidthSweepConfig(widths=(16, 512), n_points=2000, epochs=2, ntk_probe=4))
    assert r.kernel_change.shape == (2,) and np.all(r.kernel_change > 0)
    assert r.kernel_change[1] < r.kernel_change[0]
    with pytest.raises(MetricflowError):
        WidthSweepConfig(widths=())


def test_trained_kernel_flow_runs_both_kernels():
    cfg = TrainedKernelConfig(
        train=TrainConfig(n_points=2000, epochs=3, width=16, depth=2), n_train=20, n_test=20, steps=5
    )
    r = run_trained_kernel(cfg)
    for curve in (r.initial_test_sigma, r.trained_test_sigma, r.initial_train_sigma):
        assert curve.shape == (6,) and np.isfinite(curve[0])
    assert r.kernel_change > 0 and r.lambda_max_initial > 0 and r.lambda_max_trained > 0
    assert set(r.summary()) >= {"initial_test_gain", "trained_test_gain", "network_gain", "trained_test_sigma_final_se"}
    # step 0 is g_FS on the fresh test points, against the exact kappa, with its standard error
    from metricflow.geometry.measures import measure_sigma
    from metricflow.geometry.reference import reference_kappa

    pts = sample_points(SampleConfig(manifold("quintic"), 40, seed=cfg.seed))
    te = pts.subset(np.arange(20, 40))
    fs = measure_sigma(te.g_fs, te.omega_sq, te.weights, reference_kappa(te.manifold))
    assert r.initial_test_sigma[0] == pytest.approx(fs.sigma, rel=1e-12)
    assert r.trained_test_sigma_se[0] == pytest.approx(fs.sigma_se, rel=1e-12) and fs.sigma_se > 0
    assert r.initial_test_sigma_self[0] == pytest.approx(fs.sigma_self, rel=1e-12)


def test_frozen_ntk_flow_with_test_rows_in_chunks_equals_the_whole_matrix():
    # The test points only receive updates, so computing Theta(test, train) chunk by chunk
    # after the train flow gives the step-by-step flow with the whole matrix.
    from metricflow.networks.metric_ntk import ntk_flow

    rng = np.random.default_rng(4)
    pts = sample_points(SampleConfig(manifold("quintic"), 70, seed=8))
    tr, te = pts.subset(np.arange(30)), pts.subset(np.arange(30, 70))
    a = rng.standard_normal((9 * 70, 40))
    theta = a @ a.T / 40  # a PSD kernel on the 9 components of 70 points
    whole = ntk_flow(theta[: 9 * 30, : 9 * 30], theta[9 * 30 :, : 9 * 30], tr, te, 6, 2e-4)
    calls = []

    def rows(i, j):
        calls.append((i, j))
        return theta[9 * (30 + i) : 9 * (30 + j), : 9 * 30]

    chunked = ntk_flow(theta[: 9 * 30, : 9 * 30], rows, tr, te, 6, 2e-4, chunk=16)
    assert calls == [(0, 16), (16, 32), (32, 40)]
    for x, y in zip(whole, chunked):
        np.testing.assert_allclose(x, y, rtol=1e-12)
    assert whole[0].sigma[6] < whole[0].sigma[0] and np.all(np.isfinite(whole[1].sigma))  # it flows
    # step by step, by hand: g_r(x) <- g_r(x) - lr Theta(x, train) dl/dg(train)
    from metricflow.geometry.measures import measure_sigma
    from metricflow.geometry.reference import reference_kappa
    from metricflow.networks.metric_ntk import component_gradient
    from metricflow.networks.outputs import components, hermitian

    kref = reference_kappa(tr.manifold)
    c_tr, c_te = np.asarray(components(tr.g_fs)), np.asarray(components(te.g_fs))
    for _ in range(6):
        grad = np.asarray(component_gradient(c_tr, tr.omega_sq, tr.weights, kref.value)).reshape(-1)
        c_tr = c_tr - 2e-4 * (theta[: 9 * 30, : 9 * 30] @ grad).reshape(c_tr.shape)
        c_te = c_te - 2e-4 * (theta[9 * 30 :, : 9 * 30] @ grad).reshape(c_te.shape)
    by_hand = measure_sigma(np.asarray(hermitian(c_te)), te.omega_sq, te.weights, kref).sigma
    assert chunked[1].sigma[6] == pytest.approx(by_hand, rel=1e-10)
