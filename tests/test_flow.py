"""The kernel flow (3.5): configs, common charts, one step against a hand computation, stops, CLI."""

import json

import numpy as np
import pytest

from metricflow import FlowConfig, MetricflowError, fs_distance_matrix, run_flow, sample_in_chart
from metricflow.cli import main
from metricflow.flow import SCHEMA_VERSION, TABLE1
from metricflow.manifolds import Manifold


def _sigma(g, omega_sq, weights, k):
    e = np.linalg.det(g).real / omega_sq / k
    return np.sum(weights * np.abs(1 - e)) / np.sum(weights)


def _step(g, pts, k, lr, kern, weights):
    """One step of eq. (3.5) with the sigma loss in closed form: D = w/w̄ sign(eta-1) eta g^-1."""
    e = np.linalg.det(g).real / pts.omega_sq / k
    d = ((weights / weights.sum()) * np.sign(e - 1) * e)[:, None, None] * np.linalg.inv(g)
    return d, np.einsum("mn,nab->mab", kern, d)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kernel": "rbf"}, "unknown kernel 'rbf'; expected one of relu-ntk, gaussian, delta, cosnet"),
        ({"loss": "mse"}, "unknown loss 'mse'"),
        ({"n_train": 0}, "train points must be at least 1, got 0"),
        ({"n_test": -5}, "test points must be at least 1"),
        ({"steps": 2.5}, "steps must be an integer"),
        ({"lr": -0.1}, "lr must be a positive finite number"),
        ({"lr": float("nan")}, "lr must be a positive finite number"),
        ({"kernel": "delta", "sigma": 1.0}, "option sigma=1.0 does not apply to the delta kernel"),
        ({"kernel": "relu-ntk", "radius": 0.1}, "option radius=0.1 does not apply to the relu-ntk kernel"),
        ({"radius": 2.0}, r"radius must be in \(0, pi/2\)"),
        ({"chart": (1, 1)}, "chart must be a pair of distinct indices"),
        ({"chart": (0, 7)}, "chart must be a pair of distinct indices"),
        ({"coordinates": "nearest"}, "coordinates must be 'reject' or 'transform'"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(MetricflowError, match=message):
        FlowConfig(**kwargs)


def test_config_defaults_are_table_1():
    for kernel, values in TABLE1.items():
        c = FlowConfig(kernel=kernel)
        for name, value in values.items():
            assert getattr(c, name) == value
        assert c.n_test == c.n_train and c.steps == 50
    json.dumps(FlowConfig(kernel="gaussian", radius=0.3, chart=(0, 1)).to_dict(), allow_nan=False)


def test_sample_in_chart_is_seeded_and_common():
    m = Manifold()
    train, chart, drawn = sample_in_chart(m, 150, seed=3, stream=0)
    again, _, _ = sample_in_chart(m, 150, seed=3, stream=0)
    test, chart2, drawn2 = sample_in_chart(m, 150, seed=3, stream=1, chart=chart)
    assert chart2 == chart and len(train) == len(test) == 150
    assert np.all(train.chart == chart) and np.all(test.chart == chart)
    assert np.array_equal(train.z, again.z) and not np.isin(train.z[:, 0], test.z[:, 0]).any()
    assert drawn >= 150 * 5 and drawn2 >= 150 * 5  # about 1 in 20 points is in a given chart
    forced, chart3, drawn3 = sample_in_chart(m, 50, seed=3, stream=0, chart=(0, 1), coordinates="transform")
    assert chart3 == (0, 1) and drawn3 == 50 and np.all(forced.chart == (0, 1))


def test_delta_flow_first_step_by_hand():
    c = FlowConfig(kernel="delta", n_train=120, n_test=60, steps=3, lr=1e-4, seed=4)
    r = run_flow(c)
    train, chart, _ = sample_in_chart(c.manifold, 120, 4, 0)
    test, _, _ = sample_in_chart(c.manifold, 60, 4, 1, chart)
    k_tr = np.sum(train.weights * np.linalg.det(train.g_fs).real / train.omega_sq) / np.sum(train.weights)
    k_te = np.sum(test.weights * np.linalg.det(test.g_fs).real / test.omega_sq) / np.sum(test.weights)
    nearest = np.argmin(fs_distance_matrix(test.z, train.z), axis=1)
    d, upd = _step(train.g_fs, train, k_tr, c.lr, np.eye(120), train.weights)
    g_test = test.g_fs - c.lr * d[nearest]
    assert r.train_sigma[0] == pytest.approx(_sigma(train.g_fs, train.omega_sq, train.weights, k_tr), rel=1e-12)
    assert r.train_sigma[1] == pytest.approx(_sigma(train.g_fs - c.lr * upd, train.omega_sq, train.weights, k_tr), rel=1e-10)
    assert r.test_sigma[1] == pytest.approx(_sigma(g_test, test.omega_sq, test.weights, k_te), rel=1e-10)
    assert r.kappa_train == pytest.approx(k_tr, rel=1e-12) and r.chart == chart
    assert r.steps_done == 3 and r.stopped_reason is None and r.schema_version == SCHEMA_VERSION
    assert r.train_gain == pytest.approx(r.train_sigma[0] / r.train_sigma[3])
    assert r.train_sigma.shape == (4,) and r.nonpd_fraction.shape == (4,) and r.clipped_fraction.shape == (3,)


def test_gaussian_normalised_step_by_hand_and_cutoff_agrees():
    """Dense Gaussian with row normalisation, and the sparse cutoff at a radius wider than all pairs."""
    c = FlowConfig(kernel="gaussian", n_train=80, n_test=40, steps=1, lr=1e-4, sigma=0.1, normalise=True, weighted=False, seed=2)
    r = run_flow(c)
    train, chart, _ = sample_in_chart(c.manifold, 80, 2, 0)
    test, _, _ = sample_in_chart(c.manifold, 40, 2, 1, chart)
    k_tr = np.sum(train.weights * np.linalg.det(train.g_fs).real / train.omega_sq) / np.sum(train.weights)
    k_te = np.sum(test.weights * np.linalg.det(test.g_fs).real / test.omega_sq) / np.sum(test.weights)
    kern_tr = np.exp(-fs_distance_matrix(train.z, train.z) / 0.2)
    kern_te = np.exp(-fs_distance_matrix(test.z, train.z) / 0.2)
    ones = np.ones(80)
    _, upd = _step(train.g_fs, train, k_tr, c.lr, kern_tr / kern_tr.sum(1, keepdims=True), ones)
    _, upd_te = _step(train.g_fs, train, k_tr, c.lr, kern_te / kern_te.sum(1, keepdims=True), ones)
    assert r.train_sigma[1] == pytest.approx(_sigma(train.g_fs - c.lr * upd, train.omega_sq, train.weights, k_tr), rel=1e-10)
    assert r.test_sigma[1] == pytest.approx(_sigma(test.g_fs - c.lr * upd_te, test.omega_sq, test.weights, k_te), rel=1e-10)
    # the sparse cutoff: the same kernel with the pairs beyond the radius removed
    cut = run_flow(FlowConfig(**{**c.__dict__, "radius": 0.8}))
    mask_tr = fs_distance_matrix(train.z, train.z) <= 0.8
    mask_te = fs_distance_matrix(test.z, train.z) <= 0.8
    _, upd = _step(train.g_fs, train, k_tr, c.lr, kern_tr * mask_tr / (kern_tr * mask_tr).sum(1, keepdims=True), ones)
    _, upd_te = _step(train.g_fs, train, k_tr, c.lr, kern_te * mask_te / (kern_te * mask_te).sum(1, keepdims=True), ones)
    assert cut.train_sigma[1] == pytest.approx(_sigma(train.g_fs - c.lr * upd, train.omega_sq, train.weights, k_tr), rel=1e-10)
    assert cut.test_sigma[1] == pytest.approx(_sigma(test.g_fs - c.lr * upd_te, test.omega_sq, test.weights, k_te), rel=1e-10)
    assert cut.train_sigma[1] != pytest.approx(r.train_sigma[1], rel=1e-6)
    assert cut.isolated_test == 0


def test_small_ultralocal_flow_decreases_train_sigma():
    r = run_flow(FlowConfig(kernel="delta", loss="ultralocal", n_train=200, n_test=50, steps=10, lr=0.06, weighted=False))
    assert np.all(np.diff(r.train_sigma) < 0) and r.train_gain > 5


def test_too_large_step_stops_with_history_and_reason():
    r = run_flow(FlowConfig(kernel="delta", n_train=100, n_test=30, steps=40, lr=30.0))
    assert r.stopped_reason is not None and r.steps_done < 40
    assert f"stopped at step {r.steps_done + 1}:" in r.stopped_reason and "learning rate 30 is likely too large" in r.stopped_reason
    assert np.all(np.isfinite(r.train_sigma[: r.steps_done + 1])) and np.all(np.isnan(r.train_sigma[r.steps_done + 1 :]))
    assert np.isfinite(r.train_gain)
    text = json.dumps(r.to_dict(), allow_nan=False)
    assert json.loads(text)["train_sigma"][-1] is None


def test_clipping_bounds_the_update_and_keeps_the_flow_finite():
    r = run_flow(FlowConfig(kernel="delta", n_train=100, n_test=30, steps=15, lr=30.0, clip=0.05))
    assert r.stopped_reason is None and np.all(np.isfinite(r.train_sigma))
    assert r.clipped_fraction[0] == 1.0  # at this lr every update is over 5% of |g|


def test_progress_and_kernels_that_need_features():
    calls = []
    r = run_flow(FlowConfig(kernel="cosnet", n_train=60, n_test=20, steps=2, lr=1e-5, width=256, sigma_w=3.0),
                 progress=lambda *a: calls.append(a))
    assert [a[0] for a in calls] == [0, 0, 1, 2] and all(a[1] == 2 for a in calls)
    assert np.all(np.isfinite(r.train_sigma))
    r = run_flow(FlowConfig(kernel="relu-ntk", n_train=60, n_test=20, steps=2, lr=1e-9))
    assert r.steps_done == 2 and np.all(np.isfinite(r.test_sigma))


def test_cli_flow_json_and_bad_input(capsys):
    assert main(["flow", "--kernel", "delta", "--train", "80", "--test", "20", "--steps", "2", "--lr", "1e-4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("train_sigma", "test_sigma", "nonpd_fraction"):
        assert len(out[key]) == 3
    for key in ("train_gain", "test_gain", "points_drawn", "seconds", "stopped_reason"):
        assert key in out
    assert main(["flow", "--kernel", "delta", "--train", "80", "--steps", "1", "--lr", "1e-4"]) == 0
    assert "gain" in capsys.readouterr().out
    assert main(["flow", "--kernel", "rbf", "--train", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown kernel 'rbf'") and err.count("\n") == 1
    assert main(["flow", "--kernel", "delta", "--radius", "0.2"]) == 2
