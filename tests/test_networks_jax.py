"""Finite networks without TensorFlow: the plain-JAX MLP against neural-tangents' stax, the
JAX metric-NTK against neural-tangents' empirical NTK, and a fresh process that trains,
evaluates, saves, loads and computes the metric-NTK with neither library imported."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metricflow import SampleConfig, manifold, sample_points
from metricflow._jax import jax, jnp
from metricflow.networks import metric_ntk as ntk_module
from metricflow.networks.metric_ntk import metric_jacobian, metric_ntk
from metricflow.networks.mlp import ACTIVATIONS, PARAMETERIZATIONS, mlp
from metricflow.networks.models import TrainConfig, components_fn, init_params, model_input

ROOT = Path(__file__).resolve().parent.parent


def _leaves_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


@pytest.mark.parametrize("parameterization", PARAMETERIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_the_jax_mlp_is_stax_bit_for_bit(activation, parameterization):
    from metricflow import _nt

    x = np.random.default_rng(0).standard_normal((7, 10))
    for depth, readout_std in ((1, 0.1), (3, 0.05)):
        ours, stax = mlp(depth, 16, 9, activation, parameterization, readout_std), _nt.mlp(depth, 16, 9, activation, parameterization, readout_std)
        key = jax.random.PRNGKey(11)
        shape_a, p_ours = ours.init_fn(key, (-1, 10))
        shape_b, p_stax = stax[0](key, (-1, 10))
        assert shape_a == shape_b == (-1, 9)
        # the same pytree: [(W, b), (), ..., (W, None)], the same draws from the same key
        assert jax.tree_util.tree_structure(p_ours) == jax.tree_util.tree_structure(p_stax)
        assert _leaves_equal(p_ours, p_stax)
        assert p_ours[-1][1] is None and p_ours[1] == ()
        assert np.array_equal(ours.apply_fn(p_ours, x), stax[1](p_stax, x))
        assert np.array_equal(jax.jit(ours.apply_fn)(p_ours, x), jax.jit(stax[1])(p_stax, x))
        # gradients too (what training sees), also at preactivations exactly 0 (zeroed weights)
        for params in (p_stax, jax.tree_util.tree_map(jnp.zeros_like, p_stax)):
            g_ours = jax.grad(lambda p: jnp.sum(jnp.sin(ours.apply_fn(p, x))))(params)
            g_stax = jax.grad(lambda p: jnp.sum(jnp.sin(stax[1](p, x))))(params)
            assert _leaves_equal(g_ours, g_stax)


def test_the_infinite_width_kernel_is_still_stax():
    from metricflow import _nt

    x1, x2 = np.random.default_rng(1).standard_normal((2, 4, 6))
    ours = mlp(2, 16, 1, "erf", "ntk", 1.0).kernel_fn(x1, x2, "ntk")
    stax = _nt.mlp(2, 16, 1, "erf", "ntk", 1.0)[2](x1, x2, "ntk")
    assert np.array_equal(np.asarray(ours), np.asarray(stax))


def test_a_model_file_of_stax_parameters_loads_and_gives_the_same_metric(tmp_path):
    """A file written before (parameters from stax) loads into the JAX network unchanged."""
    from metricflow import _nt
    from metricflow.networks.saved import TrainedModel, load_model, save_model

    for cfg in (TrainConfig(model="metric", n_points=100, width=8, depth=2, seed=1),
                TrainConfig(model="phi", n_points=100, width=8, depth=2, seed=1)):
        out_dim, in_dim = (9, 10) if cfg.model == "metric" else (1, 25)
        stax = _nt.mlp(cfg.depth, cfg.width, out_dim, cfg.activation, cfg.parameterization, cfg.readout_std)
        params = jax.tree_util.tree_map(np.asarray, stax[0](jax.random.PRNGKey(5), (-1, in_dim))[1])
        assert _leaves_equal(params, init_params(cfg, jax.random.PRNGKey(5), 3, 5))
        path = save_model(TrainedModel(cfg, params, {}), tmp_path / f"{cfg.model}.npz")
        model = load_model(path)
        assert _leaves_equal(model.params, params)
        pts = sample_points(SampleConfig(manifold("quintic"), 20, seed=4))
        x = model_input(pts)
        if cfg.model == "metric":
            from metricflow.networks.outputs import hermitian

            g_stax = x.g_fs * (1.0 + np.asarray(hermitian(stax[1](params, x.features))))
            np.testing.assert_allclose(model.metric(pts.z).g, g_stax, rtol=1e-12, atol=1e-15)
        else:  # the metric is g_FS + d dbar of this potential (tests/test_networks.py)
            from metricflow.networks.outputs import invariant_features

            phi_stax = np.asarray(stax[1](params, invariant_features(jnp.asarray(x.features))))[:, 0]
            np.testing.assert_allclose(model.potential(pts.z), phi_stax, rtol=1e-12, atol=1e-15)


@pytest.fixture(scope="module")
def probes():
    pts = sample_points(SampleConfig(manifold("quintic"), 12, seed=5))
    return model_input(pts.subset(np.arange(7))), model_input(pts.subset(np.arange(7, 12)))


def test_the_metric_ntk_is_neural_tangents_empirical_ntk(probes, monkeypatch):
    from metricflow import _nt

    x1, x2 = probes
    monkeypatch.setattr(ntk_module, "JAC_CHUNK", 3)  # chunks of 3, 3, 1 (+2 padded) and 3, 2 (+1)
    cfg = TrainConfig(model="metric", n_points=100, width=8, depth=2)
    params = init_params(cfg, jax.random.PRNGKey(0), 3, 5)
    f = components_fn(cfg, 3, 5)
    for a, b in ((x1, x1), (x1, x2)):
        ref = np.transpose(_nt.empirical_ntk(f, params, a, b, 1), (0, 2, 1, 3)).reshape(9 * len(a.features), 9 * len(b.features))
        for implementation in (1, 2):
            theta = metric_ntk(f, params, a, b, implementation)
            assert theta.shape == ref.shape
            assert np.abs(theta - ref).max() <= 1e-10 * np.abs(ref).max(), (implementation, np.abs(theta - ref).max())
    # the jacobian is that of the whole set, row x * 9 + r
    jac = jax.jacobian(lambda p: f(p, x2).reshape(-1))(params)
    whole = np.concatenate([np.asarray(a).reshape(45, -1) for a in jax.tree_util.tree_leaves(jac)], axis=1)
    np.testing.assert_allclose(metric_jacobian(f, params, x2), whole, rtol=1e-12, atol=1e-14 * np.abs(whole).max())


def test_the_phi_models_metric_ntk_is_neural_tangents_empirical_ntk(probes):
    from metricflow import _nt
    from metricflow.networks.outputs import take

    x1, x2 = take(probes[0], slice(0, 3)), take(probes[1], slice(0, 2))
    cfg = TrainConfig(model="phi", n_points=100, width=4, depth=1)
    params = init_params(cfg, jax.random.PRNGKey(0), 3, 5)
    f = components_fn(cfg, 3, 5)
    ref = np.transpose(_nt.empirical_ntk(f, params, x1, x2, 1), (0, 2, 1, 3)).reshape(27, 18)
    theta = metric_ntk(f, params, x1, x2, 1)
    assert np.abs(theta - ref).max() <= 1e-10 * np.abs(ref).max(), np.abs(theta - ref).max()


def test_train_evaluate_ntk_save_load_import_neither_tensorflow_nor_neural_tangents(tmp_path):
    code = f"""
import json, sys
from metricflow.networks.models import TrainConfig, train
from metricflow.networks.saved import evaluate_model, load_model, save_model
r = train(TrainConfig(model="metric", n_points=200, epochs=1, width=8, depth=1, ntk_probe=3, ntk_every=1, seed=0))
path = save_model(r, {str(tmp_path / "m.npz")!r})
model = load_model(path)
e = evaluate_model(model, 50, seed=1)
print(json.dumps({{"sigma": e.report.sigma, "spectra": list(r.ntk_spectra.shape), "change": r.ntk_change.tolist(),
                  "tensorflow": "tensorflow" in sys.modules, "neural_tangents": "neural_tangents" in sys.modules}}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # the metric-NTK on 3 probe points at epochs 0 and 1, and it moved
    assert got["spectra"] == [2, 27] and got["change"][0] == 0 < got["change"][1] and 0 < got["sigma"] < 1
    assert got["tensorflow"] is False and got["neural_tangents"] is False


@pytest.mark.parametrize("model", ["metric", "phi"])
def test_an_epoch_in_one_call_takes_the_same_steps_as_batch_by_batch(model):
    """training.epoch_runner (a lax.scan over the batches) against jit(step) called per batch,
    on 650 points in batches of 100 (the last 50 left out, as the loop leaves them)."""
    import optax

    from metricflow.geometry.measures import sigma as sigma_of
    from metricflow.networks.models import metric_fn
    from metricflow.networks.outputs import take
    from metricflow.networks.training import epoch_runner

    c = TrainConfig(model=model, width=16, depth=2, n_points=650, batch_size=100, seed=4)
    m = c.manifold
    pts = sample_points(SampleConfig(m, n_points=650, seed=4))
    x, n, d = model_input(pts), m.degree - 2, m.degree
    f, opt = metric_fn(c, n, d), optax.adam(1e-3)

    def step(p, s, xb, omega_sq, w):
        value, grads = jax.value_and_grad(lambda q: sigma_of(f(q, xb), omega_sq, w, 0.0176))(p)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, value

    p0 = init_params(c, jax.random.PRNGKey(0), n, d)
    perm = np.random.default_rng(1).permutation(650)
    omega, w = np.asarray(pts.omega_sq), np.asarray(pts.weights)
    p, s, losses, one = p0, opt.init(p0), [], jax.jit(step)
    for b in range(6):
        idx = perm[b * 100:(b + 1) * 100]
        p, s, value = one(p, s, take(x, idx), omega[idx], w[idx])
        losses.append(float(value))
    q, r, values = epoch_runner(step, 100)(p0, opt.init(p0), jax.device_put((x, omega, w)), perm)
    assert values.shape == (6,) and np.allclose(np.asarray(values), losses, rtol=1e-12, atol=0)
    for a, b in zip(jax.tree_util.tree_leaves((p, s)), jax.tree_util.tree_leaves((q, r))):
        assert np.allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-14)
    assert not np.allclose(np.asarray(jax.tree_util.tree_leaves(q)[0]), np.asarray(jax.tree_util.tree_leaves(p0)[0]))
