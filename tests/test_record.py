"""The sigma record's ansatz (networks.invariant): symmetric features, the base potential,
the record preset, training, saving and loading."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from metricflow import SampleConfig, manifold, sample_points
from metricflow._jax import jax, jnp
from metricflow.networks import invariant
from metricflow.networks.models import TrainConfig, init_params, metric_fn, model_input, train
from metricflow.networks.outputs import ddbar

DOCS = Path(__file__).resolve().parent.parent / "docs" / "NETWORKS.md"


@pytest.fixture(scope="module")
def pts():
    return sample_points(SampleConfig(manifold("quintic"), 40, seed=31))


def _real(z):
    return np.concatenate([z.real, z.imag], axis=-1)


def _group_element(rng, z):
    """A random element of S_5 x| (Z_5)^5 (every phase), times an overall lambda in C*, and
    complex conjugation with probability 1/2, applied to z (N, 5)."""
    perm = rng.permutation(5)
    phases = np.exp(2j * np.pi * rng.integers(0, 5, size=5) / 5)
    lam = rng.uniform(0.2, 3.0) * np.exp(2j * np.pi * rng.uniform())
    out = lam * phases * z[:, perm]
    return np.conj(out) if rng.uniform() < 0.5 else out


def test_features_are_invariant_under_random_group_elements(pts):
    rng = np.random.default_rng(7)
    off = rng.standard_normal((20, 5)) + 1j * rng.standard_normal((20, 5))  # P^4, off X too
    for z in (pts.z, off):
        f = np.asarray(invariant.symmetric_features(jnp.asarray(_real(z))))
        assert f.shape == (len(z), invariant.N_FEATURES) and np.all(np.isfinite(f))
        for _ in range(25):
            g = np.asarray(invariant.symmetric_features(jnp.asarray(_real(_group_element(rng, z)))))
            np.testing.assert_allclose(g, f, rtol=1e-12, atol=1e-14)
    # not vacuous: a unitary map outside the group moves every feature
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)) + 1j * rng.standard_normal((5, 5)))
    moved = np.asarray(invariant.symmetric_features(jnp.asarray(_real(off @ q.T))))
    f = np.asarray(invariant.symmetric_features(jnp.asarray(_real(off))))
    assert np.all(np.max(np.abs(moved - f), axis=0) > 1e-3 * np.max(np.abs(f), axis=0))
    # the features see the phases of z_i^5, not only |z_i|: a phase outside (Z_5)^5 moves the last six
    turned = off * np.exp(0.4j * np.arange(5))
    t = np.asarray(invariant.symmetric_features(jnp.asarray(_real(turned))))
    np.testing.assert_allclose(t[:, :5], f[:, :5], rtol=1e-12)
    assert np.all(np.max(np.abs(t[:, 5:] - f[:, 5:]), axis=0) > 1e-3 * np.max(np.abs(f[:, 5:]), axis=0))


def test_feature_curvature_is_the_fs_laplacian_by_finite_differences(pts):
    """|g_FS^{a bbar} d_a dbar_b f| from the features' d dbar against central differences of
    f(z + sum (s_a + i t_a) J_a) in the ambient directions of the chart."""
    i = 0
    zr, jac = np.asarray(pts.features[i]), np.asarray(pts.jacobian[i])
    got = invariant.feature_curvature(zr[None], jac[None], pts.g_fs[i : i + 1])[0]
    v = np.concatenate([np.concatenate([jac.real, jac.imag], 1), np.concatenate([-jac.imag, jac.real], 1)])
    f = lambda t: np.asarray(invariant.symmetric_features(jnp.asarray(zr + t @ v)))  # noqa: E731
    h, e = 1e-4, np.eye(6)
    hess = np.empty((6, 6, invariant.N_FEATURES))
    for p in range(6):
        for q in range(6):
            hess[p, q] = (f(h * (e[p] + e[q])) - f(h * (e[p] - e[q])) - f(h * (e[q] - e[p])) + f(-h * (e[p] + e[q]))) / (4 * h * h)
    dd = 0.25 * (hess[:3, :3] + hess[3:, 3:] + 1j * (hess[:3, 3:] - hess[3:, :3]))  # (3, 3, F)
    lap = np.abs(np.real(np.einsum("ab,baf->f", np.linalg.inv(pts.g_fs[i]), dd)))
    np.testing.assert_allclose(got, lap, rtol=1e-5)


@pytest.mark.parametrize("k", [2, 4])
def test_base_metric_equals_the_classical_algebraic_metric(pts, k):
    """g_FS + d dbar phi_base (the network's path: ``ddbar`` of the potential) equals
    flows.classical_spaces.metric_jax (closed-form derivatives of log s^dagger H s)."""
    from metricflow.flows.classical_spaces import metric_jax, space_data, start_parameters

    exps, basis = invariant.base_space(5, k)
    c = start_parameters("algebraic", basis, k, 5) * np.random.default_rng(k).uniform(0.5, 1.5, size=len(basis))
    sub = pts.subset(np.arange(6))
    data = space_data(sub, k)
    ref = np.asarray(metric_jax("algebraic", jnp.asarray(c), basis, data.s, data.ds, data.ell, data.inv_q, data.g_fs, k))
    ours = np.stack([
        np.asarray(ddbar(lambda y: invariant.base_potential(jnp.asarray(c), y, k), jnp.asarray(sub.features[i]),
                         jnp.asarray(sub.jacobian[i])))
        for i in range(len(sub))
    ]) + sub.g_fs
    assert np.abs(ours - sub.g_fs).max() > 1e-2 * np.abs(sub.g_fs).max()  # the base is not g_FS
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def _record_section() -> str:
    text = DOCS.read_text()
    start = text.index("## σ record")
    end = text.find("\n## ", start + 5)
    return text[start : end if end > 0 else None]


def test_the_record_preset_is_what_the_docs_say():
    from metricflow.cli.main import build_parser
    from metricflow.cli.train import train_config

    block = re.search(r"```json\n(.*?)\n```", _record_section(), re.S)
    documented = json.loads(block.group(1))
    assert documented == invariant.RECORD_PRESET
    config = train_config(build_parser().parse_args(["train", "--preset", "record"]))
    assert config == TrainConfig(**documented)
    assert {k: config.to_dict()[k] for k in documented} == documented
    # a flag overrides the preset, the rest stays
    smaller = train_config(build_parser().parse_args(["train", "--preset", "record", "--points", "500", "--no-ricci"]))
    assert smaller.n_points == 500 and not smaller.ricci and smaller.features == "symmetric" and smaller.base_k == documented["base_k"]
    # the default preset is TrainConfig's defaults, as before presets existed
    assert train_config(build_parser().parse_args(["train"])) == TrainConfig()


def test_new_fields_keep_the_job_keys_and_are_validated():
    from metricflow.errors import MetricflowError
    from metricflow.hashing import canonical_json

    assert "features" not in canonical_json(TrainConfig(model="phi")) and "base_k" not in TrainConfig(model="phi").to_dict()
    assert '"features":"symmetric"' in canonical_json(TrainConfig(model="phi", features="symmetric"))
    for kwargs, message in [
        ({"model": "metric", "features": "symmetric"}, "phi model on the Fermat quintic"),
        ({"model": "phi", "features": "symmetric", "manifold": manifold("quintic", 0.5)}, "phi model on the Fermat quintic"),
        ({"model": "phi", "base_k": 4}, "needs the symmetric features"),
        ({"model": "phi", "features": "symmetric", "base_k": 5}, "base_k"),
        ({"model": "phi", "features": "bogus"}, "features"),
    ]:
        with pytest.raises(MetricflowError, match=message):
            TrainConfig(**kwargs)


def test_symmetric_model_trains_lowers_sigma_and_saves_and_loads_identically(tmp_path, pts):
    from metricflow import load_model, save_model

    cfg = TrainConfig(model="phi", features="symmetric", n_points=600, epochs=2, width=16, depth=2, batch_size=30,
                      ricci=False, seed=4)
    r = train(cfg)
    assert r.val_sigma[-1] < 0.5 * r.val_sigma[0], r.val_sigma
    assert r.train_seconds[0] > 0  # the feature scales are part of the training time
    assert np.array_equal(r.params_initial["shift"], r.params_final["shift"])  # frozen
    path = save_model(r, tmp_path / "sym.npz")
    with np.load(path) as npz:
        assert int(npz["format_version"]) == 2 and "params/net/0/0" in npz.files and "params/scale" in npz.files
    model = load_model(path)
    assert model.config == cfg
    for a, b in zip(jax.tree_util.tree_leaves(r.params_final), jax.tree_util.tree_leaves(model.params)):
        assert np.array_equal(a, b)
    g_direct = np.asarray(jax.jit(metric_fn(cfg, 3, 5))(r.params_final, model_input(pts)))
    g, _ = model.metric(pts.z * 1.7j)
    np.testing.assert_allclose(g, g_direct, rtol=1e-13, atol=1e-15)
    # the potential is invariant under the group (it is a function of the features)
    rng = np.random.default_rng(2)
    np.testing.assert_allclose(model.potential(_group_element(rng, pts.z)), model.potential(pts.z), rtol=1e-12)


def test_symmetric_model_with_base_metric_matches_finite_differences_of_its_potential(pts):
    """g_FS + d dbar (phi_base + NN) of a symmetric model with a k = 2 base, against central
    differences of its potential along X (Newton-solved z_elim) in the local coordinates."""
    from metricflow.flows.classical_spaces import start_parameters
    from metricflow.geometry.points import local_indices
    from metricflow.networks.building import potential_fn

    cfg = TrainConfig(model="phi", features="symmetric", base_k=2, n_points=100, epochs=0, width=8, depth=2,
                      readout_std=0.5, ricci=False)
    params = init_params(cfg, jax.random.PRNGKey(3), 3, 5)
    sub = pts.subset(np.arange(2))
    params = dict(params, shift=jnp.full(invariant.N_FEATURES, 0.1), scale=jnp.linspace(1.0, 30.0, invariant.N_FEATURES))
    params["base"] = jnp.asarray(start_parameters("algebraic", invariant.base_space(5, 2)[1], 2, 5) * np.array([1.0, 1.7]))
    g = np.asarray(jax.jit(metric_fn(cfg, 3, 5))(params, model_input(sub)))
    phi = jax.jit(potential_fn(cfg, 3, 5))
    m = sub.manifold
    free = local_indices(sub.scale_index, sub.elim_index, 5)
    h = 1e-4
    dirs = [np.eye(3)[a] for a in range(3)] + [1j * np.eye(3)[a] for a in range(3)]

    def on_x(z0, i, delta):
        z = z0.copy()
        z[free[i]] += delta
        for _ in range(30):
            z[sub.elim_index[i]] -= m.polynomial(z[None])[0] / m.gradient(z[None])[0, sub.elim_index[i]]
        return z

    for i in range(len(sub)):
        z0 = sub.z[i] / sub.z[i, sub.scale_index[i]]
        stencil = [(p, q, a, b) for p in range(6) for q in range(6) for a in (1, -1) for b in (1, -1)]
        zs = np.stack([on_x(z0, i, h * (a * dirs[p] + b * dirs[q])) for p, q, a, b in stencil])
        v = np.asarray(phi(params, jnp.asarray(_real(zs)))).reshape(6, 6, 4)
        hess = (v[..., 0] - v[..., 1] - v[..., 2] + v[..., 3]) / (4 * h * h)
        fd = 0.25 * (hess[:3, :3] + hess[3:, 3:] + 1j * (hess[:3, 3:] - hess[3:, :3]))
        assert np.abs(fd).max() > 1e-2 * np.abs(sub.g_fs[i]).max()
        assert np.abs(sub.g_fs[i] + fd - g[i]).max() < 1e-6 * np.abs(g[i]).max()


def test_record_command_on_a_small_size(tmp_path, capsys):
    """``train --preset record`` end to end on a small size (a k = 2 base instead of k = 4,
    which costs half a minute): it reports the training seconds and saves a model that
    ``evaluate`` reads."""
    from metricflow.cli.main import main

    path = tmp_path / "record.npz"
    code = main(["train", "--preset", "record", "--points", "500", "--epochs", "1", "--width", "8", "--depth", "1",
                 "--batch", "50", "--base-k", "2", "--no-ricci", "--no-cache", "--json", "--save", str(path)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["features"] == "symmetric" and out["config"]["base_k"] == 2
    assert out["training_seconds"] >= out["train_seconds"][0] > 0 and out["peak_rss_mib"] > 0
    assert out["val_sigma"][0] < 0.2  # the k = 2 base alone is far below g_FS's 0.37
    assert main(["evaluate", "--model", str(path), "--points", "300", "--seed", "5", "--ricci-points", "0", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["sigma"] < 0.2 and ev["sigma_se"] > 0 and abs(ev["sigma_self"] - ev["sigma"]) < 0.05
