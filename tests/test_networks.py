"""Finite metric networks (section 3.3): the models, d dbar, training, the CLI."""

import json
import math

import numpy as np
import pytest

from metricflow import MetricflowError, SampleConfig, manifold, sample_points
from metricflow._jax import jax, jnp
from metricflow.networks.models import (
    TrainConfig,
    components,
    ddbar,
    hermitian,
    init_params,
    invariant_features,
    metric_fn,
    model_input,
    ricci_measure,
    ricci_scalar,
    train,
)
from metricflow.geometry.points import local_indices


@pytest.fixture(scope="module")
def pts():
    return sample_points(SampleConfig(manifold("quintic"), 12, seed=3))


def test_hermitian_components_round_trip():
    h = np.random.default_rng(0).standard_normal((4, 9))
    g = np.asarray(hermitian(jnp.asarray(h)))
    assert np.allclose(g, np.conj(np.swapaxes(g, 1, 2)))
    assert np.allclose(np.asarray(components(jnp.asarray(g))), h)


def test_invariant_features_are_functions_on_projective_space(pts):
    zr = pts.features[:5]
    lam = 0.7 * np.exp(1.3j)
    z = (pts.z[:5] * lam)
    zr2 = np.concatenate([z.real, z.imag], axis=1)
    assert np.allclose(invariant_features(jnp.asarray(zr)), invariant_features(jnp.asarray(zr2)), atol=1e-14)


def test_ddbar_of_fs_potential_is_g_fs(pts):
    f = lambda zr: jnp.log(jnp.sum(zr**2)) / jnp.pi  # noqa: E731
    g = np.stack([np.asarray(ddbar(f, jnp.asarray(pts.features[i]), jnp.asarray(pts.jacobian[i]))) for i in range(5)])
    assert np.allclose(g, pts.g_fs[:5], atol=1e-13)


def _embed(m, z0, free, elim, delta):
    """z(x0 + delta) on X: move the free coordinates, solve p = 0 for z_elim (Newton)."""
    z = z0.copy()
    z[free] += delta
    for _ in range(30):
        p = m.polynomial(z[None])[0]
        z[elim] -= p / m.gradient(z[None])[0, elim]
    return z


def test_phi_model_is_hermitian_pd_and_ddbar_matches_finite_differences(pts):
    cfg = TrainConfig(model="phi", n_points=100, epochs=0, width=16, depth=2, readout_std=1.0)
    params = init_params(cfg, jax.random.PRNGKey(1), 3, 5)
    g = np.asarray(jax.jit(metric_fn(cfg, 3, 5))(params, model_input(pts)))
    assert np.allclose(g, np.conj(np.swapaxes(g, 1, 2)), atol=1e-15)
    cfg0 = TrainConfig(model="phi", n_points=100, epochs=0, width=16, depth=2)
    g0 = np.asarray(jax.jit(metric_fn(cfg0, 3, 5))(init_params(cfg0, jax.random.PRNGKey(1), 3, 5), model_input(pts)))
    assert np.all(np.linalg.eigvalsh(g0)[:, 0] > 0)  # PD at init with the default readout scale

    _, apply_fn, _ = __import__("metricflow.networks.models", fromlist=["make_model"]).make_model(cfg, 3, 5)

    phi_jit = jax.jit(lambda zr: apply_fn(params, invariant_features(zr)[None])[0, 0])

    def phi(z):
        return float(phi_jit(jnp.asarray(np.concatenate([z.real, z.imag]))))

    m = pts.manifold
    free = local_indices(pts.scale_index, pts.elim_index, 5)
    h = 2e-4
    for i in range(2):
        f = lambda delta: phi(_embed(m, pts.z[i], free[i], pts.elim_index[i], delta))  # noqa: E731
        dirs = [np.eye(3)[a] for a in range(3)] + [1j * np.eye(3)[a] for a in range(3)]
        hess = np.empty((6, 6))
        for p_ in range(6):
            for q in range(6):
                e, k = h * dirs[p_], h * dirs[q]
                hess[p_, q] = (f(e + k) - f(e - k) - f(-e + k) + f(-e - k)) / (4 * h * h)
        fd = 0.25 * (hess[:3, :3] + hess[3:, 3:] + 1j * (hess[:3, 3:] - hess[3:, :3]))
        assert np.abs(g[i] - pts.g_fs[i] - fd).max() < 1e-6 * max(1.0, np.abs(fd).max()), (i, np.abs(g[i] - pts.g_fs[i] - fd).max())


def test_ricci_scalar_of_phi_model_with_zero_network_is_that_of_fs(pts):
    cfg = TrainConfig(model="phi", n_points=100, epochs=0, width=4, depth=1)
    sub = pts.subset(np.arange(6))
    params = init_params(cfg, jax.random.PRNGKey(0), 3, 5)
    zeroed = jax.tree_util.tree_map(lambda a: 0 * a, params)
    r_fs, r0 = ricci_scalar(cfg, None, sub), ricci_scalar(cfg, zeroed, sub)
    assert np.all(np.isfinite(r_fs)) and np.allclose(r_fs, r0)
    assert ricci_measure(r_fs, sub.weights) > 0  # g_FS is not Ricci-flat
    with pytest.raises(MetricflowError, match="phi"):
        ricci_scalar(TrainConfig(model="metric", n_points=100), params, sub)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model": "kahler"}, "unknown model"),
        ({"model": "phi", "activation": "relu"}, "smooth activation"),
        ({"n_points": 1000, "batch_size": 5000}, "batch size"),
        ({"ntk_implementation": 3}, "broken"),
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"lr": -1}, "lr"),
        ({"n_points": 100, "ntk_probe": 50}, "ntk_probe"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(MetricflowError, match=message):
        TrainConfig(**kwargs)


def test_metric_model_gains_at_least_5_on_20000_points_in_20_epochs():
    r = train(TrainConfig(model="metric", n_points=20_000, epochs=20, seed=0))
    assert len(r.val_sigma) == 21 and 0.3 < r.val_sigma[0] < 0.45
    assert r.gain >= 5, r.val_sigma
    # the standard error is a few per cent of sigma on 2000 validation points, not 0 or sigma itself
    assert np.all(0.005 * r.val_sigma < r.val_sigma_se) and np.all(r.val_sigma_se < 0.2 * r.val_sigma)


def test_validation_sigma_is_measured_against_the_exact_kappa():
    """Every recorded sigma is recomputed here, independently, with kappa in closed form."""
    from metricflow.geometry.measures import kappa as kappa_of
    from metricflow.networks.models import split_points

    cfg = TrainConfig(model="phi", n_points=600, epochs=2, width=8, depth=1, ricci=False, seed=4,
                      lbfgs_steps=2, lbfgs_every=1, lbfgs_points=200)
    r = train(cfg)
    kexact = 5**5 / (6 * np.pi**3 * (math.gamma(0.2) / math.gamma(0.8)) ** 5)
    assert r.kappa.exact and r.kappa.se == 0 and r.kappa.value == pytest.approx(kexact, rel=1e-12)
    pts = sample_points(SampleConfig(manifold("quintic"), 600, 4))
    _, va = split_points(pts, cfg.n_val, cfg.seed)
    w = va.weights
    f = jax.jit(metric_fn(cfg, 3, 5))
    for params, sigma, sigma_self, k_self in [(r.params_initial, r.val_sigma[0], r.val_sigma_self[0], r.val_kappa_self[0]),
                                              (r.params_final, r.final.sigma, r.final.sigma_self, r.final.kappa_self)]:
        g = np.asarray(f(params, model_input(va)))
        vol = np.real(np.linalg.det(g)) / va.omega_sq
        assert sigma == pytest.approx(np.sum(w * np.abs(1 - vol / kexact)) / np.sum(w), rel=1e-10)
        k = float(kappa_of(g, va.omega_sq, w))
        assert k_self == pytest.approx(k, rel=1e-10)
        assert sigma_self == pytest.approx(np.sum(w * np.abs(1 - vol / k)) / np.sum(w), rel=1e-10)
    # the L-BFGS finish ran its 2 steps and its record ends at the final model
    assert r.lbfgs_steps_done == 2 and len(r.lbfgs_sigma) == 2 and r.lbfgs_sigma[-1] == r.final.sigma
    assert r.gain == pytest.approx(r.val_sigma[0] / r.final.sigma)
    assert r.train_seconds[0] == 0 and np.all(np.diff(r.train_seconds) > 0) and r.lbfgs_seconds[0] > r.train_seconds[-1]
    assert len(r.load_average) == 2
    # the figures: sigma with its error bars, against epochs and against training time
    from metricflow.figures import training_figures

    figs = training_figures(r)
    main = figs["sigma"].data[0]
    np.testing.assert_array_equal(main.y, r.val_sigma)
    np.testing.assert_array_equal(main.error_y.array, r.val_sigma_se)
    np.testing.assert_array_equal(figs["sigma_time"].data[0].x, r.train_seconds)
    np.testing.assert_array_equal(figs["sigma_time"].data[1].y, r.val_sigma_self)


def _small_phi_model(tmp_path, seed=0):
    from metricflow.networks.saved import save_model

    cfg = TrainConfig(model="phi", n_points=300, epochs=1, width=8, depth=2, readout_std=1.0, ricci=False, seed=seed)
    r = train(cfg)
    path = tmp_path / "phi.npz"
    save_model(r, path)
    return r, path


def test_save_load_evaluate_round_trip_exactly(tmp_path, capsys):
    from metricflow import load_model
    from metricflow.cli.main import main
    from metricflow.geometry.measures import measure_sigma
    from metricflow.geometry.reference import reference_kappa
    from metricflow.networks.saved import evaluate_model

    r, path = _small_phi_model(tmp_path)
    model = load_model(path)
    assert model.config == r.config and model.summary["val_sigma"] == [float(v) for v in r.val_sigma]
    leaves, loaded = jax.tree_util.tree_leaves(r.params_final), jax.tree_util.tree_leaves(model.params)
    assert len(leaves) == len(loaded) == 5 and all(np.array_equal(a, b) for a, b in zip(leaves, loaded))
    assert jax.tree_util.tree_structure(model.params) == jax.tree_util.tree_structure(r.params_final)

    pts = sample_points(SampleConfig(manifold("quintic"), 50, seed=21))
    g_direct = np.asarray(jax.jit(metric_fn(r.config, 3, 5))(r.params_final, model_input(pts)))
    z = pts.z * np.exp(0.3j)[None] * 2.0  # any scaling of the homogeneous coordinates
    g, chart = model.metric(z)
    assert np.array_equal(chart, pts.chart)
    assert np.allclose(g, g_direct, rtol=1e-12, atol=0)
    kref = reference_kappa(pts.manifold)
    assert np.allclose(model.eta(z), np.real(np.linalg.det(g_direct)) / pts.omega_sq / kref.value, rtol=1e-12)

    # evaluate: the same numbers as measuring the in-memory parameters on the same fresh points
    e = evaluate_model(model, 400, seed=9, ricci_points=0)
    fresh = sample_points(SampleConfig(manifold("quintic"), 400, 9))
    g_fresh = np.asarray(jax.jit(metric_fn(r.config, 3, 5))(r.params_final, model_input(fresh)))
    direct = measure_sigma(g_fresh, fresh.omega_sq, fresh.weights, kref)
    assert e.report.to_dict() == pytest.approx(direct.to_dict(), rel=1e-12)
    assert e.nonpd_fraction == float(np.mean(np.linalg.eigvalsh(g_fresh)[:, 0] <= 0))
    assert main(["evaluate", "--model", str(path), "--points", "400", "--seed", "9", "--ricci-points", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("sigma", "sigma_se", "sigma_self", "sigma_self_se", "kappa", "kappa_se", "nonpd_fraction", "ricci"):
        assert key in out
    assert out["sigma"] == e.report.sigma and out["sigma_self_se"] == e.report.sigma_self_se and out["ricci"] is None
    # the training points are not fresh
    assert main(["evaluate", "--model", str(path), "--seed", str(r.config.seed), "--json"]) == 2
    assert "training seed" in capsys.readouterr().err


def test_metric_model_file_has_no_potential(tmp_path):
    from metricflow import load_model, save_model

    r = train(TrainConfig(model="metric", n_points=300, epochs=1, width=8, depth=1, seed=2))
    save_model(r, tmp_path / "m.npz")
    model = load_model(tmp_path / "m.npz")
    pts = sample_points(SampleConfig(manifold("quintic"), 20, seed=8))
    g_direct = np.asarray(jax.jit(metric_fn(r.config, 3, 5))(r.params_final, model_input(pts)))
    assert np.allclose(model.metric(pts.z).g, g_direct, rtol=1e-12, atol=0)
    with pytest.raises(MetricflowError, match="potential"):
        model.potential(pts.z)
    with pytest.raises(MetricflowError, match="not on the quintic"):
        model.metric(pts.z + 0.01)


def test_corrupt_or_foreign_model_files_give_one_line_and_exit_2(tmp_path, capsys):
    import zipfile

    from metricflow import load_model
    from metricflow.cli.main import main

    _, good = _small_phi_model(tmp_path)
    data = good.read_bytes()
    cases = {}
    cases["garbage.npz"] = b"not a model at all\n"
    cases["truncated.npz"] = data[: len(data) // 2]
    buf = tmp_path / "foreign.npz"
    np.savez(buf, x=np.arange(3.0))
    cases["foreign.npz"] = buf.read_bytes()
    buf = tmp_path / "pickled.npz"
    np.savez(buf, format=np.array(["metricflow.trained_model", None], dtype=object))
    cases["pickled.npz"] = buf.read_bytes()
    with np.load(good) as npz:
        entries = {k: npz[k] for k in npz.files}
    for name, change in [("newer.npz", {"format_version": np.array(99)}),
                         ("shape.npz", {"params/0/0": np.zeros((3, 3))}),
                         ("config.npz", {"config": np.array("{not json")}),
                         ("unknown.npz", {"config": np.array(json.dumps({"model": "phi", "colour": 1}))})]:
        np.savez(tmp_path / name, **{**entries, **change})
        cases[name] = (tmp_path / name).read_bytes()
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(MetricflowError) as err:
            load_model(tmp_path / name)
        assert "\n" not in str(err.value), name
        assert main(["evaluate", "--model", str(tmp_path / name), "--seed", "5", "--json"]) == 2, name
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith("error: "), (name, captured.err)
    assert zipfile.is_zipfile(good)
    assert main(["evaluate", "--model", str(tmp_path / "missing.npz"), "--seed", "5", "--json"]) == 2
    assert "no model file" in capsys.readouterr().err


def test_potential_agrees_with_the_ddbar_of_training(tmp_path):
    """g_FS + d dbar phi by central differences of .potential in the local coordinates of
    each point's chart matches .metric to 1e-6 relative."""
    from metricflow import load_model

    _, path = _small_phi_model(tmp_path)
    model = load_model(path)
    pts = sample_points(SampleConfig(manifold("quintic"), 3, seed=13))
    g, chart = model.metric(pts.z)
    m = pts.manifold
    h = 1e-4  # truncation ~h^2, round-off ~1e-16 / h^2: both < 1e-7 here
    dirs = [np.eye(3)[a] for a in range(3)] + [1j * np.eye(3)[a] for a in range(3)]
    for i in range(len(pts)):
        free = local_indices(chart[i : i + 1, 0], chart[i : i + 1, 1], 5)[0]
        z0 = pts.z[i] / pts.z[i, chart[i, 0]]
        # every displaced point of the 4-point stencils, potentials in one call
        stencil = [(p, q, sp, sq) for p in range(6) for q in range(6) for sp in (1, -1) for sq in (1, -1)]
        zs = np.stack([_embed(m, z0, free, chart[i, 1], h * (sp * dirs[p] + sq * dirs[q])) for p, q, sp, sq in stencil])
        phi = model.potential(zs).reshape(6, 6, 4)
        hess = (phi[..., 0] - phi[..., 1] - phi[..., 2] + phi[..., 3]) / (4 * h * h)
        fd = 0.25 * (hess[:3, :3] + hess[3:, 3:] + 1j * (hess[:3, 3:] - hess[3:, :3]))
        assert np.abs(fd).max() > 1e-2 * np.abs(pts.g_fs[i]).max()  # phi contributes visibly
        err = np.abs(pts.g_fs[i] + fd - g[i]).max() / np.abs(g[i]).max()
        assert err < 1e-6, (i, err)


def test_cli_train_json_keys_save_and_bad_input(capsys, tmp_path):
    from metricflow import load_model
    from metricflow.cli.main import main

    path = tmp_path / "model.npz"
    code = main(["train", "--points", "400", "--epochs", "2", "--width", "8", "--depth", "1",
                 "--ntk-probe", "3", "--ntk-every", "1", "--json", "--no-cache", "--save", str(path)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("val_sigma", "val_sigma_se", "val_sigma_self", "val_sigma_self_se", "kappa", "kappa_se", "final",
                "train_seconds", "gain", "ntk_epochs", "ntk_wasserstein", "seconds", "load_average", "saved"):
        assert key in out
    assert len(out["val_sigma"]) == 3 and out["ntk_epochs"] == [0, 1, 2] and out["ntk_wasserstein"][0] == 0
    assert out["saved"] == str(path) and load_model(path).summary["val_sigma"] == out["val_sigma"]
    assert main(["train", "--model", "bogus", "--json"]) == 2
    assert main(["train", "--points", "100", "--ntk-probe", "500", "--json"]) == 2
    assert main(["train", "--points", "100", "--save", str(tmp_path / "no" / "such" / "m.npz"), "--json"]) == 2
    with pytest.raises(SystemExit) as err:
        main(["train", "--epochs", "x"])
    assert err.value.code == 2


def test_the_split_modules_keep_the_stored_names_and_job_keys():
    """TrainConfig and TrainResult live in networks.config and networks.results, but job keys
    and stored results name them as networks.models did: the keys below were computed
    before the split, so stored training results are still found."""
    from metricflow.hashing import config_key
    from metricflow.networks import models
    from metricflow.networks.models import TRAIN_SCHEMA, TrainResult
    from metricflow.studies.feature_learning import TRAINED_KERNEL_SCHEMA, TrainedKernelConfig

    assert TrainConfig.__module__ == TrainResult.__module__ == "metricflow.networks.models"
    assert models.TrainConfig is TrainConfig and models.TrainResult is TrainResult
    assert config_key(TrainConfig(), TRAIN_SCHEMA) == "f646685347230b532c80570d64657c746bfa462bb2d659998e37fa85dbec022d"
    assert config_key(TrainConfig(model="phi", n_points=1000, epochs=3, seed=5), TRAIN_SCHEMA) == (
        "0e38d6d48d29bf603a599b925d80b8d0a243f16c5404ed2e1d1d771cac95aad3")
    assert config_key(TrainedKernelConfig(), TRAINED_KERNEL_SCHEMA) == "5e5bd92fff1e3673c38c8d7cfcb3347566b961fa610b29915e7cce545d66ede5"
    for name in models.__all__:
        assert hasattr(models, name), name
