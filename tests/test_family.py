"""The psi-conditioned phi network (metricflow.networks.family) and its place in the Dwork sweep.

Checks against the truth: the initial network's sigma at each psi is that of g_FS + d dbar phi
computed independently (full ambient Hessian, pulled back, measure_sigma); with the psi input
ignored it is the per-psi phi network; the loss uses each psi's own kappa; training lowers sigma
at every psi by more than its standard error; the sweep gets it in the same map_configs call on
the per-psi networks' own validation points, and keeps the keys of sweeps without it.
"""

import json

import numpy as np
import pytest

from metricflow._jax import jax, jnp
from metricflow.errors import ConfigTypeError, MetricflowError
from metricflow.geometry import reference
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.measures import measure_sigma, sigma as sigma_of
from metricflow.geometry.points import SampleConfig, sample_points
from metricflow.geometry.reference import estimate_kappa, reference_kappa
from metricflow.networks.family import (
    PSI_INPUTS,
    FamilyTrainConfig,
    family_batch,
    family_loss,
    family_metric_fn,
    init_family_params,
    make_family_model,
    member_points,
    psi_encoding,
    train_family,
)
from metricflow.networks.models import TrainConfig, metric_fn, split_points
from metricflow.networks.outputs import invariant_features, model_input

FAR = 10 + 3j  # kappa about ten times the Fermat point's: a shared kappa would be far off there


@pytest.fixture(scope="module", autouse=True)
def small_kappas():
    """Reference kappas off the Fermat point from 5e4 points (not 10^6) for this module."""
    with pytest.MonkeyPatch.context() as mp:
        for psi in (0.5, FAR):
            m = Manifold(5, psi)
            mp.setitem(reference._known, m, estimate_kappa(m, 50_000, 0))
        yield


def _ambient_metric(config, params, points, psi):
    """g_FS + d dbar phi at every point, independently of ``ddbar``: the full 2d x 2d real
    Hessian of phi in C^d, d_i dbar_j = (1/4)(d_xi d_xj + d_yi d_yj + i(d_xi d_yj - d_yi d_xj)),
    pulled back as J H J^dagger."""
    apply_fn = make_family_model(config)[1]
    d = points.manifold.degree
    enc = jnp.asarray(psi_encoding(psi))

    def phi(zr):
        return apply_fn(params, jnp.concatenate([invariant_features(zr), enc])[None, :])[0, 0]

    hess = jax.vmap(jax.hessian(phi))(jnp.asarray(points.features))  # (N, 2d, 2d)
    xx, yy, xy, yx = hess[:, :d, :d], hess[:, d:, d:], hess[:, :d, d:], hess[:, d:, :d]
    h = 0.25 * (xx + yy + 1j * (xy - yx))
    jac = np.asarray(points.jacobian)
    return np.asarray(points.g_fs) + np.einsum("nai,nij,nbj->nab", jac, np.asarray(h), jac.conj())


def test_the_initial_sigma_is_that_of_g_fs_plus_ddbar_phi_at_each_psi():
    config = FamilyTrainConfig(psis=(0, 0.5), n_points=200, epochs=0, width=16, depth=2, readout_std=1.0)
    r = train_family(config)
    for i, psi in enumerate(config.psis):
        m = Manifold(5, psi)
        pts = sample_points(SampleConfig(m, 200, 0))  # the per-psi phi network's points and split
        _, va = split_points(pts, 40, 0)
        g = _ambient_metric(config, r.params_initial, va, psi)
        truth = measure_sigma(g, va.omega_sq, va.weights, reference_kappa(m))
        assert r.val_sigma[i, 0] == pytest.approx(truth.sigma, rel=1e-9)
        assert r.val_sigma_se[i, 0] == pytest.approx(truth.sigma_se, rel=1e-9)
        fs = measure_sigma(va.g_fs, va.omega_sq, va.weights, reference_kappa(m))
        assert r.sigma_fs[i] == fs.sigma and abs(r.val_sigma[i, 0] - fs.sigma) > 1e-3  # phi is not a no-op
    assert r.kappa.tolist() == [reference_kappa(Manifold(5, p)).value for p in config.psis]
    assert r.val_sigma.shape == (2, 1) and r.train_loss.shape == (0,) and r.steps == 0


def test_with_the_psi_input_ignored_it_is_the_per_psi_phi_network():
    config = FamilyTrainConfig(psis=(0, 0.5), n_points=100, epochs=0, width=16, depth=2, readout_std=1.0)
    d, n = 5, 3
    params = init_family_params(config, jax.random.PRNGKey(7))
    (w, b), *rest = params
    ignored = [(w.at[d * d :].set(0.0), b), *rest]  # the psi columns of the first layer at 0
    trimmed = [(w[: d * d], b), *rest]  # the same network without the psi inputs
    member = config.member_configs()[1]
    _, va = member_points(member)
    k = reference_kappa(member.manifold).value
    f = family_metric_fn(config)
    own, other = family_batch([va], [k]), family_batch([va], [k])._replace(
        encoding=np.tile(psi_encoding(0), (len(va), 1)))
    per_psi = np.asarray(metric_fn(member, n, d)(trimmed, model_input(va)))
    np.testing.assert_allclose(np.asarray(f(ignored, own)), per_psi, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(f(ignored, other)), per_psi, rtol=0, atol=1e-12)
    # with the psi inputs in use, the same points read as another psi give another metric
    assert np.max(np.abs(np.asarray(f(params, own)) - np.asarray(f(params, other)))) > 1e-4
    assert w.shape == (d * d + PSI_INPUTS, 16)


def test_the_loss_uses_each_psis_own_kappa():
    config = FamilyTrainConfig(psis=(0, FAR), n_points=400, epochs=1, width=16, depth=2, lr=1e-12, batch_size=320)
    members = config.member_configs()
    trains = [member_points(m)[0] for m in members]
    kappas = [reference_kappa(m.manifold).value for m in members]
    assert kappas[1] > 5 * kappas[0]
    params = init_family_params(config, jax.random.PRNGKey(0))
    f = family_metric_fn(config)
    union = float(family_loss(f, params, family_batch(trains, kappas)))
    per_psi = [float(sigma_of(f(params, family_batch([t], [k])), t.omega_sq, t.weights, k)) for t, k in zip(trains, kappas)]
    assert union == pytest.approx(np.mean(per_psi), rel=1e-12)  # equal points per psi: the mean of the psis' sigma
    shared = float(family_loss(f, params, family_batch(trains, [kappas[0]] * 2)))
    assert shared > 2 * union
    # train_family's own batches: at lr ~ 0 the epoch's mean batch loss is the union's loss
    r = train_family(config)
    assert r.train_loss[0] == pytest.approx(float(family_loss(f, r.params_initial, family_batch(trains, kappas))), rel=0.15)
    assert r.train_loss[0] < shared / 2 and r.steps == 2


def test_training_lowers_sigma_at_every_psi_by_more_than_its_standard_error():
    config = FamilyTrainConfig(psis=(0, 0.5), n_points=600, epochs=3)
    r = train_family(config)
    drop = r.val_sigma[:, 0] - r.val_sigma[:, -1]
    assert np.all(drop > r.val_sigma_se[:, -1]), (r.val_sigma, r.val_sigma_se)
    assert r.val_sigma.shape == (2, 4) and np.all(np.diff(r.train_seconds) > 0)
    assert r.steps == 3 * (2 * 480 // 200) and r.n_params == 27 * 64 + 64 + 2 * (64 * 64 + 64) + 64
    rows = r.summary()["per_psi"]
    assert [row["sigma"] for row in rows] == r.val_sigma[:, -1].tolist()
    assert all(np.isfinite(row["sigma_se"]) for row in rows)


def test_the_network_defaults_are_the_per_psi_phi_networks():
    member, phi = FamilyTrainConfig().member_configs()[0], TrainConfig(model="phi", n_points=5000, val_fraction=0.2)
    for name in ("width", "depth", "activation", "lr", "lr_final_fraction", "readout_std", "batch_size", "n_val",
                 "parameterization", "optimizer", "warmup_epochs"):
        assert getattr(member, name) == getattr(phi, name), name


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(psis=(0, 1)), "singular locus"),
        (dict(psis=()), "give at least one psi"),
        (dict(psis=(0, 0.5, 0)), "must not repeat"),
        (dict(n_points=10), "points per psi must be at least 20"),
        (dict(n_points=30), "fewer than 10 train or validation points"),
        (dict(n_points=100, batch_size=100), "exceeds the 80 train points per psi"),
        (dict(activation="relu"), "smooth"),
        (dict(epochs=-1), "epochs must be at least 0"),
        (dict(val_fraction=1.0), "val_fraction must be in (0, 1)"),
        (dict(lr_final_fraction=2.0), "lr_final_fraction must be in (0, 1]"),
        (dict(degree=6), "degree must be one of"),
    ],
)
def test_config_rejects_bad_input_with_one_line(kwargs, message):
    with pytest.raises(MetricflowError) as err:
        FamilyTrainConfig(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_config_types_and_estimate():
    from metricflow.jobs import estimate
    from metricflow.networks.family import estimate_family

    with pytest.raises(ConfigTypeError, match="psis must be complex numbers"):
        FamilyTrainConfig(psis=("x",))
    one, three = FamilyTrainConfig(psis=(0,)), FamilyTrainConfig()
    assert estimate(three) == estimate_family(three)  # registered as a job kind
    assert 2.5 < (estimate_family(three).seconds - 10) / (estimate_family(one).seconds - 10) < 3.5


# ---- the sweep, its keys, the CLI and the page ----------------------------------------------


def test_the_sweep_trains_it_in_the_same_map_call_on_the_per_psi_validation_points():
    from metricflow.figures.donaldson import donaldson_sweep_figure
    from metricflow.studies.moduli import DonaldsonSweepConfig, run_donaldson_sweep

    config = DonaldsonSweepConfig(psis=(0, 0.5), k=2, n_points=300, n_test=200, phi_epochs=2, phi_points=100, family=True)
    assert config.family_configs()[0].member_configs() == config.phi_configs()  # the same points, psi by psi
    calls, results = [], []

    def map_configs(function, configs):
        calls.append([type(c).__name__ for c in configs])
        results.extend(function(c) for c in configs)
        return list(results)

    r = run_donaldson_sweep(config, map_configs=map_configs)
    assert calls == [["DonaldsonConfig"] * 2 + ["TrainConfig"] * 2 + ["FamilyTrainConfig"]]
    nets, family = results[2:4], results[4]
    # identical validation points: g_FS has the same sigma on the network's and the per-psi ones
    assert family.sigma_fs.tolist() == [n.sigma_fs for n in nets]
    assert r.family_sigma.tolist() == family.val_sigma[:, -1].tolist() and np.all(np.isfinite(r.family_sigma))
    assert r.family_sigma_se.tolist() == family.val_sigma_se[:, -1].tolist()
    assert r.family_seconds == family.train_seconds[-1] > 0
    assert family.steps == len(config.psis) * config.phi_epochs * (80 // 80)  # P times one per-psi network's steps
    out = r.summary()
    assert out["family"] is True and out["family_seconds"] == r.family_seconds
    assert [row["family_sigma"] for row in out["per_psi"]] == r.family_sigma.tolist()
    fig = donaldson_sweep_figure(r)
    assert [t.name for t in fig.data] == ["g_FS", "balanced, k = 2", "φ network, 2 epochs",
                                          "ψ-conditioned φ network, 2 epochs"]
    assert list(fig.data[3].y) == r.family_sigma.tolist()


def test_a_sweep_without_it_keeps_its_json_and_has_nan_columns():
    from metricflow.hashing import canonical_json, key_of
    from metricflow.jobs.keys import job_key
    from metricflow.studies.moduli import DonaldsonSweepConfig, DonaldsonSweepResult

    kwargs = dict(psis=(0, 0.5), k=2, n_points=300, n_test=200, phi_epochs=2, phi_points=100)
    old_json = (  # this config's canonical JSON and key before the family field existed
        '{"__type__":"metricflow.studies.moduli.DonaldsonSweepConfig","degree":5,"k":2,"max_iterations":200,'
        '"n_points":300,"n_test":200,"phi_epochs":2,"phi_points":100,"psis":[[0.0,0.0],[0.5,0.0]],"seed":0,"tol":1e-06}'
    )
    old_key = "7658e7e56986a17f32183bd6d1b2ff9c2b3e0a4219a56d42b285bdab493ddd5e"  # schema 2
    assert key_of(old_json, 2) == old_key
    for config in (DonaldsonSweepConfig(**kwargs), DonaldsonSweepConfig(**kwargs, family=False)):
        # the same JSON; schema 3 (the family_* result fields) moves the key, so an entry stored
        # before is recomputed rather than refused as corrupt
        assert canonical_json(config) == old_json and job_key(config) == key_of(old_json, 3) != old_key
        assert config.family_configs() == []
    on = DonaldsonSweepConfig(**kwargs, family=True)
    assert '"family":true' in canonical_json(on) and job_key(on) != old_key
    with pytest.raises(MetricflowError, match="give phi_epochs > 0"):
        DonaldsonSweepConfig(family=True)
    with pytest.raises(ConfigTypeError, match="True or False"):
        DonaldsonSweepConfig(phi_epochs=1, family="yes")
    off = DonaldsonSweepResult(DonaldsonSweepConfig(psis=(0, 2)), np.array([0, 2 + 0j]), *(np.ones(2),) * 8,
                               np.ones(2, np.int64), np.ones(2))
    assert np.isnan([off.family_sigma, off.family_sigma_se]).all() and np.isnan(off.family_seconds)
    assert "family_sigma" not in off.summary()["per_psi"][0] and "family" not in off.summary()


def test_cli_family_flag(capsys):
    from metricflow.cli.main import main

    assert main(["donaldson-sweep", "--psis", "0", "--k", "2", "--points", "300", "--family", "--no-cache"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "give phi_epochs > 0" in err and "\n" not in err
    args = ["donaldson-sweep", "--psis", "0", "--k", "1", "--points", "300", "--phi-epochs", "1",
            "--phi-points", "100", "--family", "--no-cache"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    row = out["per_psi"][0]
    assert out["family"] is True and np.isfinite(row["family_sigma"]) and row["family_sigma_se"] > 0


def test_the_page_has_the_checkbox(cache_dir):
    from apptest import open_page

    at = open_page("pages/8_Donaldson.py")
    box = next(b for b in at.checkbox if b.key == "sweep_family")
    box.check().run()
    assert any("give phi_epochs > 0" in e.value for e in at.error) and not at.exception
    next(n for n in at.number_input if n.key == "sweep_phi_epochs").set_value(2).run()
    assert not at.error and any("for 15 jobs" in c.value for c in at.caption)  # 7 Donaldson + 7 phi + 1
