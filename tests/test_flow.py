"""The kernel flow (3.5): configs, common charts, both update rules against hand computations,
chart and scale invariance of the covariant update, divergence reports, CLI."""

import json
from dataclasses import replace

import numpy as np
import pytest

from metricflow import FlowConfig, MetricflowError, fs_distance_matrix, run_flow, sample_in_chart
from metricflow.cli.main import main
from metricflow.flows.flow import SCHEMA_VERSION, TABLE1, flow_from_options, flow_on_points
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.measures import Kappa
from metricflow.geometry.points import Points, SampleConfig, points_from_coordinates, sample_points
from metricflow.kernels.base import stream_seed
from metricflow.geometry.reference import reference_kappa

KREF = reference_kappa(Manifold()).value


def _eta(pts, g=None, k=KREF):
    return np.linalg.det(pts.g_fs if g is None else g).real / pts.omega_sq / k


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
        ({"n_train": 0}, "train points must be at least 2, got 0"),
        ({"n_test": -5}, "test points must be at least 2"),
        ({"n_train": 1}, "train points must be at least 2, got 1"),
        ({"steps": 2.5}, "steps must be an integer"),
        ({"lr": -0.1}, "lr must be a positive finite number"),
        ({"lr": float("nan")}, "lr must be a positive finite number"),
        ({"kernel": "delta", "sigma": 1.0}, "option sigma=1.0 does not apply to the delta kernel"),
        ({"kernel": "relu-ntk", "radius": 0.1}, "option radius=0.1 does not apply to the relu-ntk kernel"),
        ({"radius": 2.0}, r"radius must be in \(0, pi/2\)"),
        ({"chart": (1, 1)}, "chart must be a pair of distinct indices"),
        ({"chart": (0, 7)}, "chart must be a pair of distinct indices"),
        ({"coordinates": "nearest"}, "coordinates must be 'reject', 'transform' or 'all'"),
        ({"update": "riemann"}, "unknown update 'riemann'; expected one of covariant, euclidean"),
        ({"precision": "float16"}, "precision must be 'float64' or 'float32'"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(MetricflowError, match=message):
        flow_from_options(**kwargs)


def test_config_defaults_are_table_1():
    for kernel, values in TABLE1.items():
        c = FlowConfig(kernel=kernel)
        for name, value in values.items():
            assert getattr(c.kernel if name in c.kernel.options() else c, name) == value
        assert c.n_test == c.n_train and c.steps == 50
        assert c.update == "covariant" and c.loss == "log" and c.normalise is True
    e = FlowConfig(kernel="delta", update="euclidean")
    assert e.loss == "sigma" and e.normalise is False
    assert FlowConfig(loss="sigma", normalise=False).to_dict()["update"] == "covariant"
    json.dumps(flow_from_options(kernel="gaussian", radius=0.3, chart=(0, 1)).to_dict(), allow_nan=False)


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


def test_euclidean_delta_flow_first_step_by_hand():
    c = FlowConfig(kernel="delta", n_train=120, n_test=60, steps=3, lr=1e-4, seed=4, update="euclidean")
    r = run_flow(c)
    train, chart, _ = sample_in_chart(c.manifold, 120, 4, 0)
    test, _, _ = sample_in_chart(c.manifold, 60, 4, 1, chart)
    k_tr = k_te = KREF  # loss and sigma use the reference kappa
    k_fs = np.sum(train.weights * np.linalg.det(train.g_fs).real / train.omega_sq) / np.sum(train.weights)
    nearest = np.argmin(fs_distance_matrix(test.z, train.z), axis=1)
    d, upd = _step(train.g_fs, train, k_tr, c.lr, np.eye(120), train.weights)
    g_test = test.g_fs - c.lr * d[nearest]
    assert r.train_sigma[0] == pytest.approx(_sigma(train.g_fs, train.omega_sq, train.weights, k_tr), rel=1e-12)
    assert r.train_sigma[1] == pytest.approx(_sigma(train.g_fs - c.lr * upd, train.omega_sq, train.weights, k_tr), rel=1e-10)
    assert r.test_sigma[1] == pytest.approx(_sigma(g_test, test.omega_sq, test.weights, k_te), rel=1e-10)
    assert r.kappa_train == pytest.approx(k_fs, rel=1e-12) and r.kappa_ref == KREF and r.chart == chart
    assert r.steps_done == 3 and r.stopped_reason is None and r.schema_version == SCHEMA_VERSION
    assert r.train_gain == pytest.approx(r.train_sigma[0] / r.train_sigma[3])
    assert r.train_sigma.shape == (4,) and r.nonpd_fraction.shape == (4,) and r.clipped_fraction.shape == (3,)


def test_euclidean_gaussian_normalised_step_by_hand_and_cutoff_agrees():
    """Dense Gaussian with row normalisation, and the sparse cutoff at a radius wider than all pairs."""
    c = flow_from_options(kernel="gaussian", n_train=80, n_test=40, steps=1, lr=1e-4, sigma=0.1, normalise=True, weighted=False,
                   seed=2, update="euclidean")
    r = run_flow(c)
    train, chart, _ = sample_in_chart(c.manifold, 80, 2, 0)
    test, _, _ = sample_in_chart(c.manifold, 40, 2, 1, chart)
    k_tr = k_te = KREF
    kern_tr = np.exp(-fs_distance_matrix(train.z, train.z) / 0.2)
    kern_te = np.exp(-fs_distance_matrix(test.z, train.z) / 0.2)
    ones = np.ones(80)
    _, upd = _step(train.g_fs, train, k_tr, c.lr, kern_tr / kern_tr.sum(1, keepdims=True), ones)
    _, upd_te = _step(train.g_fs, train, k_tr, c.lr, kern_te / kern_te.sum(1, keepdims=True), ones)
    assert r.train_sigma[1] == pytest.approx(_sigma(train.g_fs - c.lr * upd, train.omega_sq, train.weights, k_tr), rel=1e-10)
    assert r.test_sigma[1] == pytest.approx(_sigma(test.g_fs - c.lr * upd_te, test.omega_sq, test.weights, k_te), rel=1e-10)
    # the sparse cutoff: the same kernel with the pairs beyond the radius removed
    cut = run_flow(replace(c, kernel=replace(c.kernel, radius=0.8)))
    mask_tr = fs_distance_matrix(train.z, train.z) <= 0.8
    mask_te = fs_distance_matrix(test.z, train.z) <= 0.8
    _, upd = _step(train.g_fs, train, k_tr, c.lr, kern_tr * mask_tr / (kern_tr * mask_tr).sum(1, keepdims=True), ones)
    _, upd_te = _step(train.g_fs, train, k_tr, c.lr, kern_te * mask_te / (kern_te * mask_te).sum(1, keepdims=True), ones)
    assert cut.train_sigma[1] == pytest.approx(_sigma(train.g_fs - c.lr * upd, train.omega_sq, train.weights, k_tr), rel=1e-10)
    assert cut.test_sigma[1] == pytest.approx(_sigma(test.g_fs - c.lr * upd_te, test.omega_sq, test.weights, k_te), rel=1e-10)
    assert cut.train_sigma[1] != pytest.approx(r.train_sigma[1], rel=1e-6)
    assert cut.isolated_test == 0


def test_small_ultralocal_flow_decreases_train_sigma():
    r = run_flow(FlowConfig(kernel="delta", loss="ultralocal", n_train=200, n_test=50, steps=10, lr=0.06, weighted=False,
                            update="euclidean"))
    assert np.all(np.diff(r.train_sigma) < 0) and r.train_gain > 5


def test_too_large_step_diverges_with_history_reason_and_null_gains():
    r = run_flow(FlowConfig(kernel="delta", n_train=100, n_test=30, steps=40, lr=30.0, update="euclidean"))
    assert r.stopped_reason is not None and r.steps_done < 40 and r.diverged_step == r.steps_done + 1
    assert r.stopped_reason.startswith(f"diverged at step {r.steps_done + 1}: ")
    assert "learning rate 30 is likely too large" in r.stopped_reason
    assert np.all(np.isfinite(r.train_sigma[: r.steps_done + 1])) and np.all(np.isnan(r.train_sigma[r.steps_done + 1 :]))
    assert r.train_gain is None and r.test_gain is None and r.train_gain_se is None
    assert np.isfinite(r.train_gain_last)
    out = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert out["train_sigma"][-1] is None and out["train_gain"] is None and out["test_gain"] is None
    assert out["diverged"] is True and out["diverged_step"] == r.diverged_step
    # the test metrics that stopped being PD are counted per step and set aside in sigma_pd
    assert r.test_nonpd_count[0] == 0 and np.nanmax(r.test_nonpd_count) > 0
    assert out["test_nonpd_count"][0] == 0 and out["test_nonpd_count"][-1] is None
    # the covariant update diverges too when lr > 2 makes Newton's step overshoot: ln eta -> (1 - lr) ln eta
    r = run_flow(FlowConfig(kernel="delta", n_train=100, n_test=30, steps=60, lr=2.5))
    assert r.diverged_step is not None and r.train_gain is None and r.stopped_reason.startswith("diverged at step ")
    assert np.nanmax(r.test_nonpd_count) == 0


def test_clipping_bounds_the_update_and_keeps_the_flow_finite():
    r = run_flow(FlowConfig(kernel="delta", n_train=100, n_test=30, steps=15, lr=30.0, clip=0.05, update="euclidean"))
    assert r.stopped_reason is None and np.all(np.isfinite(r.train_sigma))
    assert r.clipped_fraction[0] == 1.0  # at this lr every update is over 5% of |g|
    # covariant: the log-rescaling per step is bounded by clip, so ln eta moves by at most n clip
    r = run_flow(FlowConfig(kernel="delta", n_train=100, n_test=30, steps=15, lr=30.0, clip=0.05))
    assert r.stopped_reason is None and r.clipped_fraction[0] > 0.9  # only points with |ln eta| < 0.005 are not


def test_progress_and_kernels_that_need_features():
    calls = []
    r = run_flow(flow_from_options(kernel="cosnet", n_train=60, n_test=20, steps=2, lr=1e-5, width=256, sigma_w=3.0,
                            update="euclidean"), progress=lambda *a: calls.append(a))
    assert [a[0] for a in calls] == [0, 0, 1, 2] and all(a[1] == 2 for a in calls)
    assert np.all(np.isfinite(r.train_sigma))
    for update, lr in (("euclidean", 1e-9), ("covariant", 0.1)):
        r = run_flow(FlowConfig(kernel="relu-ntk", n_train=60, n_test=20, steps=2, lr=lr, update=update))
        assert r.steps_done == 2 and np.all(np.isfinite(r.test_sigma))
    r = run_flow(flow_from_options(kernel="cosnet", n_train=60, n_test=20, steps=2, width=256, sigma_w=3.0))
    assert r.steps_done == 2 and np.all(np.isfinite(r.test_sigma))


def test_cli_flow_json_and_bad_input(capsys):
    assert main(["flow", "--kernel", "delta", "--train", "80", "--test", "20", "--steps", "2", "--lr", "1e-4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("train_sigma", "test_sigma", "nonpd_fraction", "train_sigma_se", "test_sigma_self", "test_sigma_pd",
                "test_nonpd_count"):
        assert len(out[key]) == 3
    for key in ("train_gain", "test_gain", "train_gain_se", "test_gain_se", "points_drawn", "seconds", "stopped_reason",
                "kappa_ref", "kappa_ref_se"):
        assert key in out
    assert out["update"] == out["config"]["update"] == "covariant" and out["loss"] == "log"
    assert out["schema_version"] == SCHEMA_VERSION
    assert main(["flow", "--kernel", "delta", "--train", "80", "--test", "20", "--steps", "1", "--update", "euclidean",
                 "--loss", "ultralocal", "--lr", "1e-4", "--json", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["update"] == "euclidean" and out["loss"] == "ultralocal" and out["config"]["normalise"] is False
    assert main(["flow", "--kernel", "delta", "--train", "40", "--steps", "1", "--precision", "float32", "--json", "--no-cache"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["precision"] == "float32"
    assert main(["flow", "--kernel", "delta", "--update", "newton"]) == 2
    assert capsys.readouterr().err.startswith("error: unknown update 'newton'")
    assert main(["flow", "--kernel", "delta", "--train", "80", "--steps", "1", "--lr", "1e-4"]) == 0
    assert "gain" in capsys.readouterr().out
    assert main(["flow", "--kernel", "delta", "--train", "80", "--steps", "1", "--coordinates", "all", "--no-cache"]) == 0
    assert "80 test points in all charts (160 drawn)" in capsys.readouterr().out
    assert main(["flow", "--kernel", "delta", "--coordinates", "all", "--update", "euclidean"]) == 2
    assert capsys.readouterr().err.startswith("error: coordinates 'all' needs the covariant update")
    assert main(["flow", "--kernel", "rbf", "--train", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown kernel 'rbf'") and err.count("\n") == 1
    assert main(["flow", "--kernel", "delta", "--radius", "0.2"]) == 2


# ---- the covariant update ---------------------------------------------------------------


def _weighted(x, w):
    return np.sum(w * x) / np.sum(w)


def test_covariant_delta_contracts_log_eta_by_one_minus_lr_per_step():
    """Log loss, delta kernel: ln eta <- (1 - lr) ln eta on train points (Newton's step), and each
    test point takes its nearest train point's rescaling: closed forms at every step."""
    c = FlowConfig(kernel="delta", n_train=150, n_test=70, steps=6, lr=0.3162, seed=5)
    r = run_flow(c)
    train, chart, _ = sample_in_chart(c.manifold, 150, 5, 0)
    test, _, _ = sample_in_chart(c.manifold, 70, 5, 1, chart)
    nearest = np.argmin(fs_distance_matrix(test.z, train.z), axis=1)
    le_tr, le_te = np.log(_eta(train)), np.log(_eta(test))
    for k in range(c.steps + 1):
        q = (1 - c.lr) ** k
        want_tr = _weighted(np.abs(1 - np.exp(q * le_tr)), train.weights)
        want_te = _weighted(np.abs(1 - np.exp(le_te - (1 - q) * le_tr[nearest])), test.weights)
        assert r.train_sigma[k] == pytest.approx(want_tr, rel=1e-9)
        assert r.test_sigma[k] == pytest.approx(want_te, rel=1e-9)
    # the gain, its paired standard error, and the PD bookkeeping
    a0, a6 = np.abs(1 - _eta(train)), np.abs(1 - np.exp((1 - c.lr) ** 6 * le_tr))
    w = train.weights
    gain = np.sum(w * a0) / np.sum(w * a6)
    assert r.train_gain == pytest.approx(gain, rel=1e-9)
    assert r.train_gain_se == pytest.approx(np.sqrt(np.sum((w * (a0 - gain * a6)) ** 2)) / np.sum(w * a6), rel=1e-6)
    assert 0 < r.train_gain_se < 0.2 * r.train_gain
    assert np.all(r.test_nonpd_count == 0) and np.array_equal(r.test_sigma_pd, r.test_sigma)
    assert r.test_gain_pd == pytest.approx(r.test_gain, rel=1e-12)
    # standard error of sigma at step 0 and the self-normalised convention
    a = np.abs(1 - _eta(test))
    assert r.test_sigma_se[0] == pytest.approx(np.sqrt(np.sum(test.weights**2 * (a - r.test_sigma[0]) ** 2)) / np.sum(test.weights), rel=1e-6)
    k_self = _weighted(np.linalg.det(test.g_fs).real / test.omega_sq, test.weights)
    assert r.test_sigma_self[0] == pytest.approx(_weighted(np.abs(1 - _eta(test, k=k_self)), test.weights), rel=1e-9)


def test_all_charts_flow_on_shared_test_points_by_closed_form():
    """coordinates "all": train points in every chart (no oversampling), the test points the
    first n_test of a shared sample; the covariant delta flow is still Newton's step on ln eta,
    so both sets follow the closed form of the one-chart test above, point for point."""
    m = Manifold()
    shared = SampleConfig(m, 90, 1234)
    c = FlowConfig(kernel="delta", n_train=120, n_test=60, steps=4, lr=0.4, seed=3, coordinates="all", test=shared)
    r = run_flow(c)
    train = sample_points(SampleConfig(m, 120, stream_seed(3, 0, 0)))
    test = sample_points(shared).subset(np.arange(60))
    assert len(set(map(tuple, train.chart))) > 5 and len(set(map(tuple, test.chart))) > 5  # many charts
    assert r.chart is None and r.points_drawn == 120 + 90 and r.to_dict()["chart"] is None
    nearest = np.argmin(fs_distance_matrix(test.z, train.z), axis=1)
    le_tr, le_te = np.log(_eta(train)), np.log(_eta(test))
    for k in range(c.steps + 1):
        q = (1 - c.lr) ** k
        assert r.train_sigma[k] == pytest.approx(_weighted(np.abs(1 - np.exp(q * le_tr)), train.weights), rel=1e-9)
        want = _weighted(np.abs(1 - np.exp(le_te - (1 - q) * le_tr[nearest])), test.weights)
        assert r.test_sigma[k] == pytest.approx(want, rel=1e-9)
    # without a shared sample the test points are the flow's own (stream 1), also in every chart
    own = run_flow(replace(c, test=None, steps=0))
    mine = sample_points(SampleConfig(m, 60, stream_seed(3, 1, 0)))
    assert own.test_sigma[0] == pytest.approx(_weighted(np.abs(1 - _eta(mine)), mine.weights), rel=1e-12)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"update": "euclidean"}, "coordinates 'all' needs the covariant update"),
        ({"chart": (0, 1)}, "coordinates 'all' keeps every point in its own chart; give no chart"),
        ({"coordinates": "reject"}, "shared test points lie in every chart; use coordinates 'all'"),
        ({"n_test": 91}, "measures on 91 test points, but the test sample has only 90"),
        ({"test": SampleConfig(Manifold(5, 0.5), 90, 1)}, "the test points are on the quintic with psi = 0.5, the flow on the quintic with psi = 0"),
    ],
)
def test_shared_test_points_are_checked(changes, message):
    base = dict(kernel="delta", n_train=50, n_test=60, coordinates="all", test=SampleConfig(Manifold(), 90, 1))
    with pytest.raises(MetricflowError, match=message):
        FlowConfig(**{**base, **changes})
    with pytest.raises(TypeError, match="must be a SampleConfig"):
        FlowConfig(**{**base, "test": 90})


def test_covariant_gaussian_step_by_hand():
    """c(x) = sum Kn(x, x') r(x') with Kn = K w' / sum K w'', g <- g exp(-lr c / 3), ultralocal loss."""
    c = flow_from_options(kernel="gaussian", sigma=0.1, n_train=90, n_test=40, steps=2, lr=0.7, loss="ultralocal", seed=6)
    r = run_flow(c)
    train, chart, _ = sample_in_chart(c.manifold, 90, 6, 0)
    test, _, _ = sample_in_chart(c.manifold, 40, 6, 1, chart)
    k_tr = np.exp(-fs_distance_matrix(train.z, train.z) / 0.2) * train.weights
    k_te = np.exp(-fs_distance_matrix(test.z, train.z) / 0.2) * train.weights
    k_tr, k_te = k_tr / k_tr.sum(1, keepdims=True), k_te / k_te.sum(1, keepdims=True)
    e_tr, e_te = _eta(train), _eta(test)
    for k in (1, 2):
        rate = 2 * (e_tr - 1) * e_tr  # F'(eta) eta for (eta - 1)^2
        e_tr, e_te = e_tr * np.exp(-c.lr * k_tr @ rate), e_te * np.exp(-c.lr * k_te @ rate)
        assert r.train_sigma[k] == pytest.approx(_weighted(np.abs(1 - e_tr), train.weights), rel=1e-9)
        assert r.test_sigma[k] == pytest.approx(_weighted(np.abs(1 - e_te), test.weights), rel=1e-9)
    # without normalisation the sum is the Monte-Carlo integral sum_x' K w' r' / sum w
    un = run_flow(replace(c, normalise=False, steps=1))
    k_raw = np.exp(-fs_distance_matrix(train.z, train.z) / 0.2) * train.weights / train.weights.sum()
    e1 = _eta(train) * np.exp(-c.lr * k_raw @ (2 * (_eta(train) - 1) * _eta(train)))
    assert un.train_sigma[1] == pytest.approx(_weighted(np.abs(1 - e1), train.weights), rel=1e-9)


def _in_chart(pts: Points, chart) -> Points:
    return points_from_coordinates(pts.manifold, pts.z, chart=np.tile(chart, (len(pts), 1)))


@pytest.mark.parametrize("kernel, options", [("delta", {}), ("gaussian", {"sigma": 0.1})])
def test_covariant_update_is_chart_and_scale_invariant(kernel, options):
    """The same points in two charts, and with g_FS rescaled by lambda (kappa by lambda^3): the
    covariant flow measures the same sigma at every step; the coordinate update does not."""
    m = Manifold()
    train, chart, _ = sample_in_chart(m, 80, 7, 0)
    test, _, _ = sample_in_chart(m, 40, 7, 1, chart)
    other = ((chart[0] + 1) % 5, (chart[1] + 2) % 5)
    if other[0] == other[1]:
        other = (other[0], (other[1] + 1) % 5)
    moved_train, moved_test = _in_chart(train, other), _in_chart(test, other)
    assert not np.allclose(moved_train.g_fs, train.g_fs)  # the components really change
    lam = np.pi  # g_FS without the 1/pi of points.py
    scale = lambda p: Points(p.manifold, p.z, p.scale_index, p.elim_index, p.omega_sq, p.jacobian,  # noqa: E731
                             lam * p.g_fs, p.weights / lam**3)
    kref = reference_kappa(m)
    for update, loss, lr in (("covariant", "log", 0.5), ("euclidean", "ultralocal", 0.05)):
        c = flow_from_options(kernel=kernel, n_train=80, n_test=40, steps=4, lr=lr, loss=loss, update=update, **options)
        base = flow_on_points(c, train, test, chart)
        moved = flow_on_points(c, moved_train, moved_test, other)
        scaled = flow_on_points(c, scale(train), scale(test), chart, reference=Kappa(kref.value * lam**3, 0.0, None, None, True))
        assert base.train_gain > 1.5
        # g_FS in the other chart carries rounding of ~1e-7 (sigma at step 0 differs by that much)
        np.testing.assert_allclose(moved.train_sigma[0], base.train_sigma[0], rtol=1e-6)
        np.testing.assert_allclose(scaled.train_sigma[0], base.train_sigma[0], rtol=1e-12)
        for r, tol in ((moved, 1e-5), (scaled, 1e-10)):
            change = max(np.max(np.abs(r.train_sigma / base.train_sigma - 1)), np.max(np.abs(r.test_sigma / base.test_sigma - 1)))
            if update == "covariant":
                assert change < tol
            else:  # the coordinate update changes, or even diverges, in the other chart or scale
                assert r.diverged_step is not None or change > 1e-2


def test_covariant_transport_keeps_test_metrics_positive_definite():
    """At an lr where the coordinate update breaks test metrics, the relative transport does not."""
    common = dict(kernel="gaussian", sigma=0.1, n_train=150, n_test=60, steps=10, lr=1.5, loss="sigma", normalise=True,
                  weighted=False)
    euc = run_flow(flow_from_options(update="euclidean", **common))
    cov = run_flow(flow_from_options(update="covariant", **common))
    assert np.nanmax(euc.test_nonpd_count) > 0
    bad = int(np.nanargmax(euc.test_nonpd_count))
    # sigma over the PD test points is reported beside sigma over all of them
    assert np.isfinite(euc.test_sigma_pd[bad]) and euc.test_sigma_pd[bad] != euc.test_sigma[bad]
    assert cov.steps_done == 10 and np.all(cov.test_nonpd_count == 0) and np.all(cov.train_nonpd_count == 0)


def test_float32_metrics_floor_the_covariant_delta_flow():
    """Rounding the metrics to complex64 each step stops sigma near 1e-7 (the paper's ~1e6 gain);
    float64 goes on contracting at (1 - lr) per step."""
    c = FlowConfig(kernel="delta", n_train=200, n_test=20, steps=50, seed=8)
    r64, r32 = run_flow(c), run_flow(replace(c, precision="float32"))
    assert r64.train_sigma[-1] < 1e-8 and 3e-8 < r32.train_sigma[-1] < 1e-6
    assert abs(r32.train_sigma[10] / r64.train_sigma[10] - 1) < 1e-4  # the same flow until the floor
    assert 3e5 < r32.train_gain < 1e7 < r64.train_gain


def test_paired_gain_error_matches_a_bootstrap_and_ignores_the_weights_sign():
    from metricflow.flows.updates import paired_gain as _paired_gain

    rng = np.random.default_rng(0)
    before = rng.uniform(0.5, 1.0, 1000)
    after = before / 3 + rng.normal(0, 0.01, 1000)
    w = rng.uniform(0.1, 2.0, 1000)
    gain, se = _paired_gain(before, after, w)
    boots = []
    for _ in range(400):
        i = rng.integers(0, 1000, 1000)
        boots.append(np.sum(w[i] * before[i]) / np.sum(w[i] * after[i]))
    assert 0.8 < se / np.std(boots) < 1.25
    assert _paired_gain(before, after, -w) == (gain, se)
