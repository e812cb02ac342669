"""Generalisation study (fig. 3, eq. 3.7): projection onto X, the noise study, the distance
scaling fit, extrapolation, and the noise and scaling CLI."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial import cKDTree

import metricflow.studies.generalisation as gen
from metricflow import MetricflowError, manifold
from metricflow.cli.main import main
from metricflow.flows.flow import sample_in_chart
from metricflow.geometry.points import points_from_coordinates
from metricflow.studies.generalisation import (
    NoiseConfig,
    NoiseResult,
    ScalingConfig,
    extrapolate,
    fit_power_law,
    noised_points,
    project_to_hypersurface,
    run_noise,
    run_scaling,
)

QUINTIC = manifold("quintic")


def relative_residual(m, z):
    return np.abs(m.polynomial(z)) / m.monomial_scale(z)


@pytest.fixture(scope="module")
def train():
    pts, chart, _ = sample_in_chart(QUINTIC, 300, seed=0, stream=0)
    return pts, chart


# ---- projection ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, psi", [("quintic", 0), ("quintic", 0.5), ("quartic", 0.3 + 0.1j), ("cubic", 0)])
def test_projection_puts_points_on_the_hypersurface(name, psi):
    m = manifold(name, psi)
    rng = np.random.default_rng(1)
    z = rng.standard_normal((500, m.degree)) + 1j * rng.standard_normal((500, m.degree))
    out, ok = project_to_hypersurface(m, z)
    assert ok.all()
    assert np.max(relative_residual(m, out)) <= 1e-10


def test_projection_is_a_small_move_along_the_normal(train):
    pts, _ = train
    rng = np.random.default_rng(2)
    noise = 1e-6 * (rng.standard_normal(pts.z.shape) + 1j * rng.standard_normal(pts.z.shape))
    out, ok = project_to_hypersurface(QUINTIC, pts.z + noise)
    assert ok.all() and np.max(relative_residual(QUINTIC, out)) <= 1e-12
    # the Newton correction is the normal part of the noise: never longer than the noise
    move = np.linalg.norm(out - (pts.z + noise), axis=1)
    assert np.all(move <= 1.0001 * np.linalg.norm(noise, axis=1))
    # it is along conj(grad p): orthogonal (Hermitian) to the tangent space
    grad = QUINTIC.gradient(pts.z)
    delta = out - (pts.z + noise)
    cos = np.abs(np.sum(grad * delta, axis=1)) / (np.linalg.norm(grad, axis=1) * np.linalg.norm(delta, axis=1))
    assert np.min(cos) > 0.999


def test_noised_points_are_on_x_seeded_and_zero_noise_is_the_train_set(train):
    pts, _ = train
    z0, redrawn = noised_points(QUINTIC, pts.z, 0.0, seed=0)
    assert redrawn == 0 and np.array_equal(z0, pts.z)
    a, _ = noised_points(QUINTIC, pts.z, 1e-3, seed=0)
    b, _ = noised_points(QUINTIC, pts.z, 1e-3, seed=0)
    c, _ = noised_points(QUINTIC, pts.z, 1e-3, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.max(relative_residual(QUINTIC, a)) <= 1e-10


def test_noised_points_share_their_directions_across_levels(train):
    # common random numbers: the unprojected noise of a point is sqrt(v) times one draw, so
    # at small v (projection ~ normal part only) the moves scale like sqrt(v)
    pts, _ = train
    a, _ = noised_points(QUINTIC, pts.z, 1e-8, seed=0)
    b, _ = noised_points(QUINTIC, pts.z, 1e-6, seed=0)
    error = np.abs((b - pts.z) - 10 * (a - pts.z)).max() / np.abs(b - pts.z).max()
    assert error < 2e-2, error  # 5e-3 from the curvature of X; O(1) for independent draws


def test_noised_points_kept_in_the_chart_have_a_bounded_jacobian(train):
    # the chart rule of the flows: |z_scale| = max |z_i|, |dp/dz_elim| = max_j |dp/dz_j|, so
    # |dz_elim/dx_a| <= 1; without it, large noise puts points near z_scale = 0, where the
    # train chart's coordinates and metric components blow up
    pts, chart = train
    free, redrawn = noised_points(QUINTIC, pts.z, 0.3, seed=0)
    kept, redrawn_kept = noised_points(QUINTIC, pts.z, 0.3, seed=0, chart=chart)
    assert redrawn == 0 and redrawn_kept > len(pts)
    assert gen.points_in_chart(QUINTIC, kept, chart).all()
    assert gen.points_in_chart(QUINTIC, free, chart).mean() < 0.3
    charts = np.tile(chart, (len(pts), 1))
    jac_kept = points_from_coordinates(QUINTIC, kept, chart=charts).jacobian
    jac_free = points_from_coordinates(QUINTIC, free, chart=charts).jacobian
    assert np.abs(jac_kept).max() <= 1 + 1e-12 and np.abs(jac_free).max() > 3


def test_projection_that_never_converges_is_an_error(train, monkeypatch):
    pts, _ = train
    monkeypatch.setattr(gen, "NEWTON_STEPS", 0)
    monkeypatch.setattr(gen, "MAX_REDRAWS", 5)
    with pytest.raises(MetricflowError, match="could not be projected onto the hypersurface after 5 redraws"):
        noised_points(QUINTIC, pts.z[:10], 1e-2, seed=0)


# ---- noise study ------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["delta", "gaussian"])
def test_zero_noise_gives_the_train_gain_and_noise_lowers_it(kernel):
    r = run_noise(NoiseConfig(kernel=kernel, noise=(1e-4, 0.0, 1e-7), n_train=150, steps=15))
    assert r.noise.tolist() == [0.0, 1e-7, 1e-4]
    assert r.distance[0] == 0.0 and r.nearest_distance[0] == 0.0
    assert r.gain[0] == r.train_gain and r.gain_se[0] == r.train_gain_se  # the test set is the train set
    assert r.train_gain > 10 and 0 < r.train_gain_se < 0.2 * r.train_gain
    assert np.all(np.diff(r.distance) > 0) and np.all(np.diff(r.gain) < 2 * r.gain_se[1:]) and r.gain[2] < r.gain[0]
    # the distance is that of complex noise of variance v per real feature, ~ sqrt(v)
    assert 1e-4 < r.distance[1] < 1e-3 and 3e-3 < r.distance[2] < 3e-2
    assert np.all(r.nearest_distance <= r.distance + 1e-15)
    assert np.all(r.max_residual <= 1e-10) and np.all(r.steps_done == 15)
    assert np.all(r.diverged_step == -1) and np.all(r.nonpd_fraction == 0)  # the covariant update keeps g PD
    text = json.dumps(r.to_dict(), allow_nan=False)
    out = json.loads(text)
    assert out["gain"][0] == r.train_gain and out["update"] == "covariant" and out["loss"] == "log"


def test_sigma_is_measured_against_the_exact_kappa(train):
    # v = 0: the test set is the train set; sigma of g_FS against the closed-form kappa of
    # the Fermat quintic, recomputed here from the points, with its standard error
    r = run_noise(NoiseConfig(kernel="delta", noise=(0.0,), n_train=300, steps=1))
    pts, _ = train
    kref = QUINTIC.exact_kappa()
    assert r.kappa_ref == pytest.approx(kref, rel=1e-12) and r.kappa_ref_se == 0
    x = np.abs(1 - np.linalg.det(pts.g_fs).real / (kref * pts.omega_sq))
    w = pts.weights
    mean = np.sum(w * x) / np.sum(w)
    assert r.test_sigma_fs[0] == pytest.approx(mean, rel=1e-9)
    assert r.test_sigma_fs_se[0] == pytest.approx(np.sqrt(np.sum(w**2 * (x - mean) ** 2)) / np.sum(w), rel=0.05)


@pytest.mark.parametrize("kernel", ["delta", "gaussian"])
def test_noise_curve_is_monotone_in_distance_within_noise(kernel):
    noise = (0.0, 1e-16, 1e-12, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
    r = run_noise(NoiseConfig(kernel=kernel, noise=noise, n_train=150))
    assert np.all(np.diff(r.distance) > 0) and np.all(np.isfinite(r.gain)) and np.all(r.gain_se > 0)
    assert gen.monotone_violations(r) == [], (r.distance, r.gain, r.gain_se)
    # the small-distance law: the error of ln eta moved by d is ~ |grad ln eta| d, so gain ~ 1/d
    # once the gain is well below the train gain
    small = (r.distance > 0) & (r.distance < 0.05) & (r.gain < 0.1 * r.train_gain)
    assert small.sum() >= 2
    slope = np.polyfit(np.log(r.distance[small]), np.log(r.gain[small]), 1)[0]
    assert -1.1 < slope < -0.9, slope
    # far away the gain is ~1: no collapse
    assert np.all((r.gain[-3:] > 0.6) & (r.gain[-3:] < 1.6)), r.gain


def test_monotone_violations_flags_a_significant_rise():
    noise = fake_noise([0.0, 1e-3, 1e-2, 1e-1], [1e3, 10.0, 12.0, 1.0], 1e3, gain_se=[10.0, 0.5, 0.5, 0.1])
    assert gen.monotone_violations(noise) == [(1, 2)]
    noise = fake_noise([0.0, 1e-3, 1e-2, 1e-1], [1e3, 10.0, 10.8, 1.0], 1e3, gain_se=[10.0, 0.5, 0.5, 0.1])
    assert gen.monotone_violations(noise) == []


@pytest.mark.parametrize("kernel", ["delta", "gaussian"])
def test_far_test_points_do_not_collapse_the_gain(kernel):
    # Regression (issue 14): at v = 0.1 and 1 most noised points leave the train chart's
    # region, and one near z_scale = 0 (train-chart metric components ~1e-3 of the train
    # ones) took eta ~ 1e9 from the train point's coordinate update: gains of 5e-7 (delta)
    # and 4e-5 (gaussian) at 1000 points; here (before the fix) 0.22 and 1.5e-5 (delta),
    # 0.25 and 2.2e-4 (gaussian). Kept in the chart, the gain falls to ~1 and stays there.
    r = run_noise(NoiseConfig(kernel=kernel, update="euclidean", noise=(0.0, 0.1, 1.0), n_train=100))
    assert r.distance[1] > 0.3 and r.distance[2] > 0.7
    assert np.all(r.outside_chart == 0)
    assert np.all((r.gain[1:] > 0.7) & (r.gain[1:] < 1.5)), r.gain
    # kept anywhere, the coordinate update breaks down at the far points (or diverges: NaN)
    free = run_noise(NoiseConfig(kernel=kernel, update="euclidean", noise=(1.0,), n_train=100, in_chart=False))
    assert free.outside_chart[0] > 0.9 and not free.gain[0] > 0.01
    # the covariant update does not depend on the chart: no collapse even there
    cov = run_noise(NoiseConfig(kernel=kernel, noise=(1.0,), n_train=100, in_chart=False))
    assert cov.nonpd_fraction[0] == 0 and 0.5 < cov.gain[0] < 1.5


def test_noise_config_validates_and_defaults():
    c = NoiseConfig()
    assert c.update == "covariant" and c.loss == "log" and c.lr == pytest.approx(0.3162)
    assert c.normalise is True and c.weighted is True and c.sigma is None and c.in_chart is True
    g = NoiseConfig(kernel="gaussian", n_train=500)
    assert g.sigma == pytest.approx(1 / 30) and g.lr == pytest.approx(0.1583)
    assert g.flow_config().kernel.sigma == g.sigma and g.flow_config().n_test == 500 and g.flow_config().update == "covariant"
    e = NoiseConfig(update="euclidean")
    assert e.loss == "ultralocal" and e.lr == pytest.approx(0.3) and e.normalise is False and e.weighted is False
    eg = NoiseConfig(kernel="gaussian", update="euclidean", n_train=500)
    assert eg.normalise is True and eg.lr == pytest.approx(0.15) and eg.flow_config().update == "euclidean"
    assert NoiseConfig(precision="float32").flow_config().precision == "float32"
    for kwargs, message in [
        ({"kernel": "relu-ntk"}, "runs the kernels delta, gaussian"),
        ({"update": "nope"}, "unknown update"),
        ({"precision": "half"}, "precision must be"),
        ({"noise": ()}, "at least one noise variance"),
        ({"noise": (0, -1e-3)}, r"in \[0, 100\]"),
        ({"noise": "0,1"}, "sequence of numbers"),
        ({"noise": (0, float("nan"))}, r"in \[0, 100\]"),
        ({"n_train": 1}, "at least 2"),
        ({"lr": -1.0}, "positive"),
        ({"sigma": 0.1}, "delta kernel takes no sigma"),
        ({"loss": "nope"}, "unknown loss"),
    ]:
        with pytest.raises(MetricflowError, match=message):
            NoiseConfig(**kwargs)


# ---- distance scaling -------------------------------------------------------------------


def cube_nearest_mean(n: int, d: int, seed) -> float:
    """Mean nearest-neighbour distance of n uniform points on the periodic unit d-torus."""
    x = np.random.default_rng(seed).random((n, d))
    dist, _ = cKDTree(x, boxsize=1.0).query(x, k=2)
    return float(dist[:, 1].mean())


@pytest.mark.parametrize("d", [2, 3, 6])
def test_fitted_exponent_on_a_uniform_cube_is_minus_one_over_d(d):
    sizes = [200, 500, 1000, 2000, 5000]
    n = [size for size in sizes for _ in range(3)]
    mu = [cube_nearest_mean(size, d, [0, d, size, s]) for size in sizes for s in range(3)]
    fit = fit_power_law(n, mu)
    assert fit.n_fit == 15 and 0 < fit.exponent_err < 0.01
    assert abs(fit.exponent + 1 / d) <= 2 * fit.exponent_err, (fit.exponent, fit.exponent_err)


def test_fit_recovers_an_exact_power_law_and_its_inverse():
    n = np.array([1e2, 1e3, 1e4, 1e5])
    fit = fit_power_law(n, 0.968 * n**-0.184)
    assert fit.prefactor == pytest.approx(0.968) and fit.exponent == pytest.approx(-0.184)
    assert fit.exponent_err == pytest.approx(0, abs=1e-12)
    assert fit.points_for(0.968 * 1e8**-0.184) == pytest.approx(1e8, rel=1e-9)
    with pytest.raises(MetricflowError, match="2 or more distinct sizes"):
        fit_power_law([100, 100], [0.5, 0.4])


def test_scaling_in_all_charts_and_in_one_chart():
    every = run_scaling(ScalingConfig(points=(300, 100), chart="all", seeds=2))
    one = run_scaling(ScalingConfig(points=(100, 300), chart="one"))
    assert every.points.tolist() == [100, 300] and every.mean_by_seed.shape == (2, 2)
    assert np.all(every.min <= every.mean) and np.all(every.mean <= every.max)
    assert np.all(np.diff(every.mean) < 0) and every.fit.exponent < 0
    assert every.charts == ("all", "all") and all("," in c for c in one.charts)
    # the same number of points in one chart (1/20 of X) are closer together
    assert np.all(one.mean < every.mean)
    d = every.to_dict()
    assert d["fit_exponent"] == every.fit.exponent and d["paper"] == {"prefactor": 0.968, "exponent": -0.184}
    json.dumps(one.to_dict(), allow_nan=False)


def test_scaling_config_validates():
    for kwargs, message in [
        ({"points": (100,)}, "at least 2 distinct sizes"),
        ({"points": (100, 100)}, "at least 2 distinct sizes"),
        ({"points": (1, 100)}, "at least 2"),
        ({"points": "100"}, "sequence of sizes"),
        ({"chart": "two"}, "'all' or 'one'"),
        ({"seeds": 0}, "seeds must be at least 1"),
    ]:
        with pytest.raises(MetricflowError, match=message):
            ScalingConfig(**kwargs)


# ---- extrapolation ----------------------------------------------------------------------


def fake_noise(distance, gain, train_gain, kernel="delta", gain_se=None):
    distance, gain = np.asarray(distance, float), np.asarray(gain, float)
    z = np.zeros(len(distance))
    se = z if gain_se is None else np.asarray(gain_se, float)
    return NoiseResult(
        config=NoiseConfig(kernel=kernel), noise=z, distance=distance, distance_std=z, nearest_distance=distance,
        gain=gain, gain_se=se, gain_pd=gain, gain_pd_se=se, nonpd_fraction=z, nonpd_max=z,
        diverged_step=np.full(len(z), -1), train_gain=train_gain, train_gain_se=0.0, test_sigma_fs=z,
        test_sigma_fs_se=z, test_sigma=z, test_sigma_se=z, kappa_ref=1.0, kappa_ref_se=0.0, steps_done=z.astype(int),
        redrawn=z.astype(int), max_residual=z, outside_chart=z, chart=(3, 4), points_drawn=0, seconds=0.0,
    )


def test_extrapolation_interpolates_extrapolates_and_refuses():
    # gain = 1 / d exactly, train gain 1e4; mu = N^(-1/6) exactly
    d = np.array([0.0, 1e-3, 1e-2, 1e-1])
    noise = fake_noise(d, np.where(d > 0, 1 / np.maximum(d, 1e-300), 1e4), 1e4)
    n = np.array([1e2, 1e3, 1e4, 1e5])
    fit = fit_power_law(np.r_[n, n], np.r_[n ** (-1 / 6) * 1.01, n ** (-1 / 6) / 1.01])
    rows = {r.target: r for r in extrapolate(noise, fit, targets=(100, 5000, 2, 1e6))}
    assert rows[100].status == "interpolated" and rows[100].distance == pytest.approx(1e-2)
    assert rows[100].points == pytest.approx(1e12, rel=1e-6)
    assert rows[100].points_low < rows[100].points < rows[100].points_high
    assert rows[5000].status == "extrapolated" and rows[5000].distance == pytest.approx(2e-4)
    assert rows[2].status == "extrapolated" and rows[2].distance == pytest.approx(0.5)
    assert rows[1e6].status == "unreachable" and math.isnan(rows[1e6].points)
    assert "train gain" in rows[1e6].reason
    json.dumps([r.to_dict() for r in rows.values()], allow_nan=False)


def test_extrapolation_makes_the_curve_monotone():
    noise = fake_noise([0.0, 1e-3, 2e-3, 1e-2], [1e3, 50.0, 80.0, 10.0], 1e3)
    fit = fit_power_law([1e2, 1e4], [0.5, 0.2])
    (row,) = extrapolate(noise, fit, targets=(60,))
    # 80 at 2e-3 is above 50 at 1e-3: the running minimum caps it at 50, so 60 lies
    # between 1e3 at zero and 50 at 1e-3, reached by extrapolation below 1e-3
    assert row.status == "extrapolated" and row.distance < 1e-3


# ---- figure -------------------------------------------------------------------------------


def test_noise_figure_draws_errors_non_pd_fractions_and_leaves_out_diverged_levels():
    from metricflow.figures import noise_gain_figure

    r = fake_noise([0.0, 1e-3, 1e-2, 1e-1], [1e3, 10.0, 2.0, np.nan], 1e3, gain_se=[10.0, 0.5, 0.1, np.nan])
    r.nonpd_fraction[2] = 0.25
    r.diverged_step[3] = 7
    fig = noise_gain_figure([r], log_x=True)
    gain, nonpd, diverged = fig.data
    assert list(gain.x) == [1e-3, 1e-2] and list(gain.error_y.array) == [0.5, 0.1]
    assert nonpd.yaxis == "y2" and list(nonpd.y) == [0.0, 0.25, 0.0] and fig.layout.yaxis2.range == (0, 1)
    assert list(diverged.x) == [1e-1] and "diverged" in diverged.name
    assert fig.layout.yaxis.type == "log" and fig.layout.xaxis.type == "log"


# ---- CLI ----------------------------------------------------------------------------------


def test_cli_noise_and_scaling_json_keys(capsys):
    assert main(["noise", "--kernel", "delta", "--noise", "0,1e-6", "--train", "60", "--steps", "5", "--json", "--no-cache"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"distance", "gain", "train_gain", "noise", "kernel"} <= out.keys()
    assert len(out["distance"]) == len(out["gain"]) == 2 and out["gain"][0] == out["train_gain"]
    assert main(["scaling", "--points", "50,100,200", "--chart", "all", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"points", "mean", "min", "max", "fit_prefactor", "fit_exponent", "fit_exponent_err"} <= out.keys()
    assert out["points"] == [50, 100, 200] and out["fit_exponent"] < 0
    assert main(["scaling", "--points", "50,100"]) == 0
    assert "fit: mean =" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["noise", "--kernel", "relu-ntk", "--noise", "0"], "runs the kernels delta, gaussian"),
        (["noise", "--kernel", "delta", "--noise", "0,abc"], "noise variances must be numbers"),
        (["noise", "--kernel", "delta", "--noise", "0", "--train", "1"], "at least 2"),
        (["scaling", "--points", "100"], "at least 2 distinct sizes"),
        (["scaling", "--points", "1.5,10"], "must be integers"),
        (["scaling", "--points", "100,1000", "--chart", "two"], "'all' or 'one'"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_cli_bad_input_has_no_traceback_in_a_real_process():
    proc = subprocess.run([sys.executable, "-m", "metricflow", "scaling", "--points", "10,x"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "points must be numbers" in proc.stderr
