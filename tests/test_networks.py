"""Finite metric networks (section 3.3): the models, d dbar, training, the CLI."""

import json
import time

import numpy as np
import pytest

from metricflow import MetricflowError, SampleConfig, manifold, sample_points
from metricflow._jax import jax, jnp
from metricflow.networks import (
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
from metricflow.points import local_indices


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

    _, apply_fn, _ = __import__("metricflow.networks", fromlist=["make_model"]).make_model(cfg, 3, 5)

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
    start = time.perf_counter()
    r = train(TrainConfig(model="metric", n_points=20_000, epochs=20, seed=0))
    assert len(r.val_sigma) == 21 and 0.3 < r.val_sigma[0] < 0.45
    assert r.gain >= 5, r.val_sigma
    assert time.perf_counter() - start < 120


def test_cli_train_json_keys_and_bad_input(capsys):
    from metricflow.cli import main

    code = main(["train", "--points", "400", "--epochs", "2", "--width", "8", "--depth", "1",
                 "--ntk-probe", "3", "--ntk-every", "1", "--json", "--no-cache"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("val_sigma", "gain", "ntk_epochs", "ntk_wasserstein", "seconds"):
        assert key in out
    assert len(out["val_sigma"]) == 3 and out["ntk_epochs"] == [0, 1, 2] and out["ntk_wasserstein"][0] == 0
    assert main(["train", "--model", "bogus", "--json"]) == 2
    assert main(["train", "--points", "100", "--ntk-probe", "500", "--json"]) == 2
    with pytest.raises(SystemExit) as err:
        main(["train", "--epochs", "x"])
    assert err.value.code == 2
