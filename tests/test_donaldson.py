"""Donaldson's algorithm: the section basis, the closed-form metric, the T-operator's fixed
point, k = 1 against g_FS, sigma falling with k, the optimised H, the CLI and the sweep."""

import itertools
import json

import numpy as np
import pytest

from metricflow._jax import jax, jnp
from metricflow.cli.main import main
from metricflow.flows.donaldson import DonaldsonConfig, balance, hilbert_dimension, initial_h, metric, monomial_exponents, run_donaldson, sections, t_operator
from metricflow.studies.moduli import DonaldsonSweepConfig, run_donaldson_sweep
from metricflow.errors import MetricflowError
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.measures import Kappa, measure_sigma
from metricflow.geometry.points import SampleConfig, points_from_coordinates, sample_points
from metricflow.geometry.reference import estimate_kappa, reference_kappa

QUINTIC = Manifold(5, 0)


@pytest.fixture(scope="module")
def fermat_5k():
    return sample_points(SampleConfig(QUINTIC, 5000, seed=3))


def test_basis_dimension_is_the_hilbert_function_of_the_quintic():
    assert [len(monomial_exponents(5, k)) for k in range(1, 7)] == [5, 15, 35, 70, 125, 205]
    assert [hilbert_dimension(5, k) for k in range(1, 7)] == [5, 15, 35, 70, 125, 205]
    for k in (1, 4, 6):
        e = monomial_exponents(5, k)
        assert (e.sum(axis=1) == k).all() and len(np.unique(e, axis=0)) == len(e) and (e[:, 0] < 5).all()


@pytest.mark.parametrize("k", [5, 6])
def test_the_basis_is_independent_on_x_and_the_dropped_monomials_are_not(k):
    # Evaluated at points of X, all degree-k monomials have rank N_k (the Hilbert function),
    # and the basis alone has full rank N_k: the dropped ones are combinations of it on X.
    pts = sample_points(SampleConfig(Manifold(5, 0.3), 600, seed=1))
    every = np.asarray([np.bincount(c, minlength=5) for c in itertools.combinations_with_replacement(range(5), k)])
    sv_all = np.linalg.svd(sections(pts.z, every), compute_uv=False)
    sv_basis = np.linalg.svd(sections(pts.z, monomial_exponents(5, k)), compute_uv=False)
    n_k = hilbert_dimension(5, k)
    assert np.sum(sv_all > 1e-10 * sv_all[0]) == n_k
    assert sv_basis.size == n_k and sv_basis[-1] > 1e-3 * sv_basis[0]


def test_section_derivatives_match_autodiff():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 5)) + 1j * rng.standard_normal((3, 5))
    e = monomial_exponents(5, 4)
    _, ds = sections(z, e, derivatives=True)
    prod = lambda v: jnp.prod(v[None, :] ** jnp.asarray(e), axis=1)  # noqa: E731
    for x in range(3):
        auto = jax.jacfwd(prod, holomorphic=True)(jnp.asarray(z[x]))
        np.testing.assert_allclose(ds[x], np.asarray(auto), rtol=1e-12, atol=1e-12)


def test_k1_with_identity_h_is_g_fs(fermat_5k):
    g = metric(fermat_5k, np.eye(5, dtype=complex), 1)
    np.testing.assert_allclose(g, fermat_5k.g_fs, rtol=1e-11, atol=1e-14)
    # and H_0 = diag(multinomials) gives g_FS at every k: s^dagger H_0 s = |z|^(2k)
    g3 = metric(fermat_5k.subset(slice(0, 200)), initial_h(monomial_exponents(5, 3)), 3)
    np.testing.assert_allclose(g3, fermat_5k.g_fs[:200], rtol=1e-10, atol=1e-13)


def test_closed_form_metric_matches_jax_hessian_of_the_potential(fermat_5k):
    # g_k = (1/(k pi)) d dbar log(s^dagger H s) for a random positive H at k = 3, against the
    # autodiff Hessian of the real potential in the ambient coordinates, pulled back with J.
    k, e = 3, monomial_exponents(5, 3)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((35, 35)) + 1j * rng.standard_normal((35, 35))
    h = a @ a.conj().T / 35 + np.eye(35)
    pts = fermat_5k.subset(slice(0, 4))
    hj, ej = jnp.asarray(h), jnp.asarray(e)

    def log_k(xy):  # xy = (Re z, Im z), 10 reals
        z = xy[:5] + 1j * xy[5:]
        s = jnp.prod(z[None, :] ** ej, axis=1)
        return jnp.log(jnp.real(jnp.conj(s) @ hj @ s)) / (k * jnp.pi)

    hess = jax.jit(jax.hessian(log_k))
    for x in range(len(pts)):
        z = pts.z[x]
        H = np.asarray(hess(jnp.concatenate([jnp.asarray(z.real), jnp.asarray(z.imag)])))
        xx, yy, xy, yx = H[:5, :5], H[5:, 5:], H[:5, 5:], H[5:, :5]
        ambient = 0.25 * (xx + yy + 1j * (xy - yx))  # d_i dbar_j
        J = pts.jacobian[x]
        expected = J @ ambient @ J.conj().T
        np.testing.assert_allclose(metric(pts.subset([x]), h, k, e)[0], expected, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_the_t_operator_fixed_point_is_reached(fermat_5k, k):
    e = monomial_exponents(5, k)
    s = sections(fermat_5k.z, e)
    w = fermat_5k.weights
    tol = 1e-8
    bal = balance(s, w, initial_h(e), tol, 500)
    assert bal.converged and bal.residuals[-1] < tol and bal.iterations < 500
    t = t_operator(s, w, bal.h)
    again = np.linalg.inv(t)
    assert np.linalg.norm(again - bal.h) / np.linalg.norm(bal.h) < tol  # ||T(h)^-1 - h|| below the tolerance
    assert np.real(np.trace(bal.h @ t)) == pytest.approx(len(e), rel=1e-12)  # tr(H T(H)) = N_k
    assert np.all(np.diff(bal.residuals[2:]) < 0)  # a contraction: the change falls every step


def test_k1_balanced_metric_is_g_fs():
    # At k = 1 symmetry makes the balanced H proportional to 1 (the points' sampling noise
    # aside), so sigma_1 is sigma_FS on the same fresh points.
    r = run_donaldson(DonaldsonConfig(QUINTIC, ks=(1,), n_points=20_000, n_test=5000, seed=1))
    h = r.h[0]
    scale = np.real(np.trace(h)) / 5
    assert np.max(np.abs(h / scale - np.eye(5))) < 0.05  # entries scatter by ~0.01 at 2 x 10^4 points
    assert r.iterations[0] >= 1 and r.converged[0]
    assert abs(r.sigma[0] - r.sigma_fs) < 0.003 and abs(r.sigma_self[0] - r.sigma_fs_self) < 0.003
    assert r.sigma_fs == pytest.approx(0.373, abs=4 * r.sigma_fs_se)  # the known sigma_FS (docs/GEOMETRY.md)


@pytest.mark.parametrize("psi", [0, 10 + 3j])
def test_k1_balanced_h_on_a_symmetric_sample_is_exactly_g_fs(psi):
    # z -> (z_0, w z_1, w^2 z_2, w^3 z_3, w^4 z_4), w = exp(2 pi i / 5), and the cyclic
    # permutations are symmetries of every Dwork quintic. On a sample closed under them
    # T(1) is exactly proportional to 1, so the balanced h at k = 1 is 1 and g_1 = g_FS:
    # sigma identical to rounding.
    m = Manifold(5, psi)
    base = sample_points(SampleConfig(m, 200, seed=5)).z
    phase = np.exp(2j * np.pi * np.arange(5) / 5)
    orbit = [np.roll(base * phase**a, r, axis=1) for a in range(5) for r in range(5)]
    pts = points_from_coordinates(m, np.concatenate(orbit))
    e = monomial_exponents(5, 1)
    bal = balance(sections(pts.z, e), pts.weights, np.eye(5, dtype=complex), 1e-12, 50)
    h = bal.h / bal.h[0, 0]
    np.testing.assert_allclose(h, np.eye(5), atol=1e-12)
    test = sample_points(SampleConfig(m, 2000, seed=6))
    kref = Kappa(0.1, 0.0)  # any fixed kappa: the same for both metrics
    a = measure_sigma(metric(test, bal.h, 1, e), test.omega_sq, test.weights, kref)
    b = measure_sigma(test.g_fs, test.omega_sq, test.weights, kref)
    assert a.sigma == pytest.approx(b.sigma, rel=1e-10) and a.sigma_self == pytest.approx(b.sigma_self, rel=1e-10)


def test_sigma_falls_with_k_on_the_fermat_quintic():
    # 5000 integration and 5000 fresh test points already separate sigma_1..sigma_4 by more
    # than 8 standard errors (5 x 10^4 points give the same ordering; docs/METHODS.md).
    r = run_donaldson(DonaldsonConfig(QUINTIC, ks=(1, 2, 3, 4), n_points=5000, n_test=5000, seed=2))
    assert list(r.n_sections) == [5, 15, 35, 70]
    assert r.converged.all()
    for a, b in ((r.sigma, r.sigma_se), (r.sigma_self, r.sigma_self_se)):
        drop = a[:-1] - a[1:]
        assert np.all(drop > 4 * np.hypot(b[:-1], b[1:])), (a, b)
    assert r.kappa_exact and r.kappa == pytest.approx(QUINTIC.exact_kappa())


@pytest.fixture(scope="module")
def optimised_k2():
    return run_donaldson(DonaldsonConfig(QUINTIC, ks=(2,), n_points=4000, n_test=4000, seed=4, optimise=True,
                                         opt_steps=40, opt_lr=5e-3, opt_points=2000))


def test_optimised_h_beats_the_balanced_h_on_fresh_points(optimised_k2):
    r = optimised_k2
    assert r.opt_train_sigma[0][-1] < r.opt_train_sigma[0][0]
    assert 0 < r.opt_best_step[0] <= 40  # chosen on the 2000 validation points
    assert r.opt_sigma[0] < r.sigma[0] - 4 * np.hypot(r.opt_sigma_se[0], r.sigma_se[0])
    assert np.isfinite(r.opt_seconds[0]) and r.summary()["per_k"][0]["opt_sigma"] == r.opt_sigma[0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ks": (0,)}, "degree k must be at least 1"),
        ({"ks": (3, 2)}, "increasing"),
        ({"ks": ()}, "at least one degree"),
        ({"ks": (1, 9)}, "at most 8"),
        ({"ks": (6,), "n_points": 1000}, "needs at least 2,050 points"),
        ({"tol": 0.5}, "below 0.1"),
        ({"tol": -1}, "positive"),
        ({"max_iterations": 0}, "max_iterations must be at least 1"),
        ({"optimise": "yes"}, "True or False"),
        ({"optimise": True, "opt_points": 10**6}, "must not exceed n_points"),
    ],
)
def test_config_rejects_bad_input_with_one_line(kwargs, message):
    with pytest.raises(MetricflowError, match=message) as err:
        DonaldsonConfig(**kwargs)
    assert "\n" not in str(err.value)


def test_k_max_means_one_to_k_max():
    assert DonaldsonConfig(ks=3).ks == (1, 2, 3)
    assert DonaldsonConfig(opt_steps=7) == DonaldsonConfig() != DonaldsonConfig(opt_steps=7, optimise=True)
    assert DonaldsonConfig(n_points=2000).opt_points == 1000 and DonaldsonConfig(n_points=10**5).opt_points == 5000


def test_cli_prints_per_k_rows(capsys):
    assert main(["donaldson", "--k", "1,2", "--points", "2000", "--no-cache", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["per_k"]
    assert [r["k"] for r in rows] == [1, 2] and [r["n_sections"] for r in rows] == [5, 15]
    for r in rows:
        assert {"sigma", "sigma_se", "sigma_self", "sigma_self_se", "iterations", "seconds"} <= set(r)
    assert rows[1]["sigma"] < rows[0]["sigma"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--k", "1,x", "--points", "2000"], "k must be"),
        (["--k", "7,2", "--points", "5000"], "increasing"),
        (["--k", "1", "--points", "2000", "--psi", "1"], "singular locus"),
        (["--k", "4", "--points", "100"], "needs at least"),
        (["--k", "1", "--points", "2000", "--tol", "2"], "below 0.1"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(capsys, args, message):
    assert main(["donaldson", *args, "--no-cache"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_sweep_fans_out_one_job_per_psi():
    psis = (0, 0.5)
    config = DonaldsonSweepConfig(psis=psis, k=2, n_points=3000, n_test=3000)
    refs = {complex(p): reference_kappa(Manifold(5, p)) if p == 0 else estimate_kappa(Manifold(5, p), 50_000, 0)
            for p in psis}
    seen = []

    def map_configs(function, configs):
        seen.extend(configs)
        return [run_donaldson(c, reference=refs[c.manifold.psi]) for c in configs]

    r = run_donaldson_sweep(config, map_configs=map_configs)
    assert [c.manifold.psi for c in seen] == [0, 0.5] and all(c.ks == (1, 2) for c in seen)
    assert r.sigma.shape == (2,) and np.all(r.sigma < r.sigma_fs)
    assert r.kappa[0] == pytest.approx(QUINTIC.exact_kappa()) and r.kappa_se[1] > 0
    assert [row["psi"] for row in r.summary()["per_psi"]] == [[0.0, 0.0], [0.5, 0.0]]
    with pytest.raises(MetricflowError, match="singular locus"):
        DonaldsonSweepConfig(psis=(0, 1))


def test_sweep_trains_the_phi_network_per_psi_in_the_same_map_call(monkeypatch):
    # phi on at a tiny size: one map_configs call gets the Donaldson and the phi configs, and
    # the phi sigma at each psi is that of train() run directly on the same TrainConfig.
    from metricflow.figures.donaldson import donaldson_sweep_figure
    from metricflow.geometry import reference
    from metricflow.networks.models import TrainConfig, train

    off = Manifold(5, 0.5)
    monkeypatch.setitem(reference._known, off, estimate_kappa(off, 50_000, 0))  # not 10^6 points
    config = DonaldsonSweepConfig(psis=(0, 0.5), k=2, n_points=300, n_test=200, phi_epochs=2, phi_points=100)
    calls = []

    def map_configs(function, configs):
        calls.append([type(c).__name__ for c in configs])
        return [function(c) for c in configs]

    r = run_donaldson_sweep(config, map_configs=map_configs)
    assert calls == [["DonaldsonConfig"] * 2 + ["TrainConfig"] * 2]
    for i, psi in enumerate((0, 0.5)):
        direct = train(TrainConfig(model="phi", n_points=100, epochs=2, val_fraction=0.2, ricci=False, seed=0,
                                   manifold=Manifold(5, psi)))
        assert (r.phi_sigma[i], r.phi_sigma_se[i]) == (direct.val_sigma[-1], direct.val_sigma_se[-1])
        assert direct.kappa.value == r.kappa[i] and 0 < r.phi_seconds[i] < np.inf
    row = r.summary()["per_psi"][1]
    assert (row["phi_sigma"], row["phi_sigma_se"], row["phi_seconds"]) == (r.phi_sigma[1], r.phi_sigma_se[1], r.phi_seconds[1])
    fig = donaldson_sweep_figure(r)
    assert [t.name for t in fig.data] == ["g_FS", "balanced, k = 2", "φ network, 2 epochs"]
    assert list(fig.data[2].y) == r.phi_sigma.tolist()


def test_sweep_without_the_network_keeps_its_canonical_json_and_nan_columns():
    from metricflow.hashing import canonical_json

    main_json = (  # DonaldsonSweepConfig() before the phi network was added
        '{"__type__":"metricflow.studies.moduli.DonaldsonSweepConfig","degree":5,"k":3,"max_iterations":200,'
        '"n_points":20000,"n_test":20000,"psis":[[0.0,0.0],[0.1,0.0],[0.3,0.0],[0.5,0.0],[0.8,0.0],[1.5,0.0],'
        '[10.0,3.0]],"seed":0,"tol":1e-06}'
    )
    assert canonical_json(DonaldsonSweepConfig()) == main_json
    assert canonical_json(DonaldsonSweepConfig(phi_epochs=0, phi_points=5000)) == main_json
    assert '"phi_epochs":3' in canonical_json(DonaldsonSweepConfig(phi_epochs=3))
    assert DonaldsonSweepConfig().configs() == DonaldsonSweepConfig().donaldson_configs()
    assert [c.model for c in DonaldsonSweepConfig(psis=(0, 2), phi_epochs=1).phi_configs()] == ["phi", "phi"]
    with pytest.raises(MetricflowError, match="phi points must be at least 50"):
        DonaldsonSweepConfig(phi_epochs=1, phi_points=10)
    from metricflow.studies.moduli import DonaldsonSweepResult

    off = DonaldsonSweepResult(DonaldsonSweepConfig(psis=(0, 2)), np.array([0, 2 + 0j]), *(np.ones(2),) * 8,
                               np.ones(2, np.int64), np.ones(2))
    assert off.phi_sigma.shape == (2,) and np.isnan([off.phi_sigma, off.phi_sigma_se, off.phi_seconds]).all()
    assert "phi_sigma" not in off.summary()["per_psi"][0] and "phi_epochs" not in off.summary()


# ---- the dashboard page ----------------------------------------------------------------


def test_donaldson_page_runs_a_small_job_and_shows_sigma_against_k(cache_dir):
    from apptest import figure, open_page, run_until_done, values

    at = open_page("pages/8_Donaldson.py")
    at.slider[0].set_value(3)  # k max
    at.number_input[0].set_value(2000)  # points for h
    at.number_input[1].set_value(2000)  # test points
    at.run()
    assert any("Estimate" in c.value for c in at.caption)
    next(b for b in at.button if b.key == "donaldson_run").click().run()
    run_until_done(at)
    assert not at.error
    charts = at.get("plotly_chart")
    assert len(charts) == 4
    sig = figure(at, 0)
    assert [t["name"] for t in sig["data"]] == ["balanced h", "g_FS"]
    s = values(sig["data"][0]["y"])
    assert list(values(sig["data"][0]["x"])) == [1, 2, 3] and np.all(np.diff(s) < 0)
    table = at.dataframe[0].value
    assert list(table["n_sections"]) == [5, 15, 35]

    # the same settings in a new session: the cached result shows at once
    again = open_page("pages/8_Donaldson.py")
    again.slider[0].set_value(3)
    again.number_input[0].set_value(2000)
    again.number_input[1].set_value(2000)
    again.run()
    assert [m.value for m in again.metric] == [m.value for m in at.metric]


def test_donaldson_page_shows_bad_input_as_an_error(cache_dir):
    from apptest import open_page

    at = open_page("pages/8_Donaldson.py")
    at.text_input[0].set_value("1").run()  # psi^5 = 1
    assert not at.exception and any("singular locus" in e.value for e in at.error)
    at.text_input[0].set_value("abc").run()
    assert any("psi must be a complex number" in e.value for e in at.error)
    at.text_input[0].set_value("0")
    at.text_input[1].set_value("0, 0.5, 1").run()  # the sweep's psi values
    assert [e.value for e in at.error if "singular locus" in e.value] and not at.exception
    at.text_input[1].set_value("0, 0.5").run()
    assert not at.error and any("for 2 jobs" in c.value for c in at.caption)


def test_figures_are_built_from_the_result_alone(optimised_k2):
    from metricflow.studies.moduli import DonaldsonSweepResult
    from metricflow.figures.donaldson import donaldson_figures, donaldson_sigma_figure, donaldson_sweep_figure

    r = optimised_k2
    figs = donaldson_figures(r)
    assert [t.name for t in figs["sigma"].data] == ["balanced h", "σ-optimised h", "g_FS"]
    assert list(figs["sigma"].data[0].y) == r.sigma.tolist() and list(figs["sigma"].data[0].error_y.array) == r.sigma_se.tolist()
    assert list(donaldson_sigma_figure(r, self_normalised=True).data[0].y) == r.sigma_self.tolist()
    assert list(figs["time"].data[1].x) == (r.seconds + r.opt_seconds).tolist()
    assert [len(t.x) for t in figs["convergence"].data[:1]] == r.iterations.tolist()
    config = DonaldsonSweepConfig(psis=(0, 10 + 3j), k=2, n_points=2000, n_test=2000)
    sweep = DonaldsonSweepResult(config, np.array([0, 10 + 3j]), *(np.array([0.3, 0.2]),) * 8,
                                 np.array([5, 6]), np.array([1.0, 2.0]))
    fig = donaldson_sweep_figure(sweep)
    assert list(fig.data[0].x) == ["0", "10+3i"] and [t.name for t in fig.data] == ["g_FS", "balanced, k = 2"]


def test_the_estimate_grows_like_n_k_squared_per_point():
    from metricflow.flows.donaldson import estimate_donaldson
    from metricflow.jobs import estimate

    small = DonaldsonConfig(ks=(3,), n_points=100_000, n_test=1000)
    large = DonaldsonConfig(ks=(6,), n_points=100_000, n_test=1000)
    assert estimate(large) == estimate_donaldson(large)  # registered as a job kind
    a, b = estimate_donaldson(small), estimate_donaldson(large)
    ratio = (205 / 35) ** 2
    assert 0.5 * ratio < (b.seconds - 7) / (a.seconds - 7) < 1.5 * ratio
    assert b.bytes > 16 * 100_000 * 205
    off_fermat = estimate_donaldson(DonaldsonConfig(Manifold(5, 0.5), ks=(3,), n_points=100_000, n_test=1000))
    assert off_fermat.seconds > a.seconds  # the reference kappa's 10^6 points
