"""The classical flows of appendix B in a space of Kahler potentials (metricflow.flows.classical).

Checked against independent computations: the tangent map against finite differences of phi,
the closed-form metric against the JAX Hessian of the potential, one step of the fixed-basis
flow against the kernel flow (2.8) with an explicit metric-NTK; and against the theory: the
functional falls at every step as dE = -dt |v|^2 / pi + O(dt^2), the step converges at first
order, the end is a critical point of E on the space, and sigma falls with k on the torus and K3.
"""

import math

import numpy as np
import pytest

from metricflow.errors import MetricflowError
from metricflow.flows.classical import (
    ClassicalFlowConfig,
    density,
    functional_of,
    run_classical_flow,
)
from metricflow.flows.classical_spaces import (
    hermitian_basis,
    metric_jax,
    potential_values,
    space_data,
    start_parameters,
    tangent_features,
)
from metricflow.flows.donaldson import monomial_exponents, sections
from metricflow.geometry.manifolds import manifold
from metricflow.geometry.points import SampleConfig, sample_points
from metricflow.geometry.reference import reference_kappa


def _random_point_in_space(space, basis, c0, seed, size=0.05):
    """Parameters near the start (a metric that is not g_FS), seeded."""
    rng = np.random.default_rng(seed)
    scale = np.max(np.abs(c0)) if space == "algebraic" else 1.0
    return c0 + size * scale * rng.standard_normal(len(basis))


def _ambient_phi(space, z, exps, m, k):
    """phi(z) on C^d (homogeneous of degree 0), straight from the definition."""
    s = sections(z, exps)
    p = np.real(np.einsum("nx,xy,ny->n", np.conj(s), m, s))
    q = np.sum(np.abs(z) ** 2, axis=1) ** k
    return p / q if space == "basis" else np.log(p / q) / k


@pytest.mark.parametrize("space", ["basis", "algebraic"])
@pytest.mark.parametrize("name,k,symmetry", [("quartic", 2, "full"), ("quintic", 3, "invariant")])
def test_tangent_maps_are_finite_differences_of_phi(space, name, k, symmetry):
    m_ = manifold(name)
    pts = sample_points(SampleConfig(m_, 40, seed=5))
    data = space_data(pts, k)
    basis = hermitian_basis(m_.degree, k, symmetry)
    c = _random_point_in_space(space, basis, start_parameters(space, basis, k, m_.degree), seed=1)
    f, df = tangent_features(space, c, basis, data, k)
    h = 1e-6
    for a in range(0, len(basis), max(1, len(basis) // 7)):
        e = np.zeros(len(basis))
        e[a] = h
        fd = (potential_values(space, c + e, basis, data, k) - potential_values(space, c - e, basis, data, k)) / (2 * h)
        assert np.max(np.abs(fd - f[:, a])) < 1e-7 * max(1.0, np.max(np.abs(f[:, a])))
    # d_a f in the chart: sum_i J_ai d f / d z_i, with the Wirtinger derivative by differences in C^d
    exps = monomial_exponents(m_.degree, k)
    a = len(basis) // 2
    m = np.tensordot(c, basis, axes=1)

    def tangent(z):  # d phi / d c_a along B_a, from phi itself
        return (_ambient_phi(space, z, exps, m + 1e-4 * basis[a], k) - _ambient_phi(space, z, exps, m - 1e-4 * basis[a], k)) / 2e-4

    eps = 1e-4
    grad = np.zeros(pts.z.shape, dtype=complex)
    for i in range(m_.degree):
        step = np.zeros(m_.degree)
        step[i] = eps
        dx = (tangent(pts.z + step) - tangent(pts.z - step)) / (2 * eps)
        dy = (tangent(pts.z + 1j * step) - tangent(pts.z - 1j * step)) / (2 * eps)
        grad[:, i] = 0.5 * (dx - 1j * dy)
    expected = np.einsum("nai,ni->na", pts.jacobian, grad)
    assert np.max(np.abs(expected - df[:, :, a])) < 1e-5 * np.max(np.abs(df[:, :, a]))


@pytest.mark.parametrize("space", ["basis", "algebraic"])
def test_the_metric_is_the_hessian_of_the_potential(space):
    """g = g_FS + (1/pi) d dbar phi against the JAX Hessian of (1/pi)(log|z|^2 + phi) in C^d, pulled back."""
    from metricflow._jax import jax, jnp
    from metricflow.networks.outputs import ddbar

    m_, k = manifold("quintic"), 2
    pts = sample_points(SampleConfig(m_, 30, seed=6))
    basis = hermitian_basis(m_.degree, k, "full")
    c = _random_point_in_space(space, basis, start_parameters(space, basis, k, m_.degree), seed=2, size=0.02)
    data = space_data(pts, k)
    g = np.asarray(metric_jax(space, jnp.asarray(c), basis, *data[:5], k))
    exps = jnp.asarray(monomial_exponents(m_.degree, k))
    mat = jnp.asarray(np.tensordot(c, basis, axes=1))

    def potential(zr):
        z = zr[:5] + 1j * zr[5:]
        s = jnp.prod(z[None, :] ** exps, axis=1)
        p = jnp.real(jnp.conj(s) @ mat @ s)
        q = jnp.sum(jnp.abs(z) ** 2)
        phi = p / q**k if space == "basis" else jnp.log(p / q**k) / k
        return (jnp.log(q) + phi) / jnp.pi

    zr = np.concatenate([pts.z.real, pts.z.imag], axis=1)
    expected = np.asarray(jax.vmap(lambda x, j: ddbar(potential, x, j))(zr, pts.jacobian))
    assert np.max(np.abs(expected - g)) < 1e-8 * np.max(np.abs(g))
    if space == "basis":  # c = 0 is g_FS
        g0 = np.asarray(metric_jax(space, jnp.zeros(len(basis)), basis, *data[:5], k))
        assert np.max(np.abs(g0 - pts.g_fs)) < 1e-13


def _config(**kw):
    base = dict(manifold=manifold("quintic"), space="algebraic", k=2, flow="ricci", n_points=2000, n_test=2000,
                seed=3, n_steps=8)
    base.update(kw)
    return ClassicalFlowConfig(**base)


@pytest.mark.parametrize("flow", ["ricci", "two-derivative"])
def test_halving_the_step_gives_the_same_sigma_of_t(flow):
    """First order in dt: the largest difference of sigma(t) over the common times halves with dt
    (ratio 1.6-2.6; measured 2.0-2.2), and between dt/2 and dt/4 it is below 0.04 sigma_FS
    (measured 0.011 = 0.03 sigma_FS for both flows, at a quarter of the default step)."""
    dt = 0.5 * _config(flow=flow).dt
    runs = [run_classical_flow(_config(flow=flow, dt=dt / 2**i, n_steps=4 * 2**i)) for i in range(3)]
    assert all(r.stopped_reason is None for r in runs)
    diffs = [np.max(np.abs(runs[i].sigma - runs[i + 1].sigma[::2])) for i in range(2)]
    assert diffs[1] < 0.04 * runs[0].sigma[0], diffs
    assert 1.6 < diffs[0] / diffs[1] < 2.6, diffs


@pytest.mark.parametrize("flow,space,steps", [("ricci", "algebraic", 12), ("calabi", "algebraic", 20),
                                              ("two-derivative", "basis", 12), ("ricci", "basis", 12)])
def test_the_functional_falls_at_every_step(flow, space, steps):
    """The flow descends E: dE/dt = -|v|_A^2 / pi. At the default step E falls at every step and
    by at most the first-order prediction -dt |v|^2 / pi (an Euler step on a locally quadratic E
    gives the prediction times 1 - tau/2, tau = dt * rate < 2); at a quarter of the step the
    discretisation error |dE / prediction - 1| is below 0.3 at every step."""
    for scale in (1.0, 0.25):
        config = _config(flow=flow, space=space, k=3)
        r = run_classical_flow(_config(flow=flow, space=space, k=3, dt=scale * config.dt, n_steps=steps))
        assert r.stopped_reason is None
        e = r.functional
        drop = np.diff(e)
        predicted = -r.dt * r.velocity[:-1] ** 2 / math.pi
        big = np.abs(predicted) > 1e-8 * e[0]  # above the rounding of E
        assert big[:3].all() and np.all(drop[big] < 0), drop
        ratio = drop[big] / predicted[big]
        if scale == 1.0:
            assert np.all((ratio > 0) & (ratio < 1.02)), ratio
        else:
            assert np.all(np.abs(ratio - 1) < 0.3), ratio
        if flow != "two-derivative":  # KR and Calabi descend the relative entropy int eta ln eta - eta + 1
            assert e[0] > 0 and e[-1] < e[0]


def test_the_end_is_stationary_and_ricci_and_calabi_share_it():
    """At the end the velocity is orthogonal to the space: |v|_A fell below 1e-5 of its start, and
    central differences of E (recomputed in NumPy) along every parameter are below 1e-6 of the
    gradient at g_FS. KR and Calabi are gradient flows of the same E: the same fixed point."""
    from metricflow._jax import jnp

    ricci = run_classical_flow(_config(k=3, n_steps=30))
    calabi = run_classical_flow(_config(k=2, flow="calabi", n_steps=40))
    ricci2 = run_classical_flow(_config(k=2, n_steps=20))
    assert ricci.velocity[-1] < 1e-5 * ricci.velocity[0]
    c = ricci.params
    cfg = ricci.config
    train_cfg, _ = cfg.sample_configs()
    pts = sample_points(train_cfg)
    data = space_data(pts, cfg.k)
    kap = reference_kappa(cfg.manifold).value

    def energy(x):
        g = np.asarray(metric_jax("algebraic", jnp.asarray(x), ricci.basis, *data[:5], cfg.k))
        return functional_of("ricci", g, data, kap)

    assert abs(energy(c) - ricci.functional[-1]) < 1e-12
    h = 1e-5 * np.max(np.abs(c))
    start = ricci.start

    def gradient(x):
        return np.array([(energy(x + h * e) - energy(x - h * e)) / (2 * h) for e in np.eye(len(x))])

    g_end, g_start = gradient(c), gradient(start)
    assert np.max(np.abs(g_end)) < 1e-6 * np.max(np.abs(g_start)), (g_end, g_start)
    assert calabi.velocity[-1] < 1e-3 * calabi.velocity[0]
    assert abs(calabi.functional[-1] - ricci2.functional[-1]) < 1e-6 * ricci2.functional[-1]
    assert abs(calabi.sigma[-1] - ricci2.sigma[-1]) < 1e-4


@pytest.mark.parametrize("flow", ["calabi", "ricci"])
def test_the_fixed_basis_flow_is_the_kernel_flow_of_its_reproducing_kernel(flow):
    """One step of the basis flow on the cubic (full basis at k = 2, 36 functions) equals the
    NN metric flow (2.8), dg(x)/dt = -pi sum_x' Theta(x, x') . D(x'), with D = mu F'(eta) eta g^-1
    (docs/FLOWS.md) and the explicit metric-NTK Theta(x, x') = sum_ab dg(x)/dc_a A+_ab dg(x')/dc_b,
    dg/dc_a = (1/pi) d dbar f_a by the JAX Hessian: in phi, the kernel K(x, x') = f(x) A+ f(x')
    reproducing the span in the flow's metric A. To rounding, on the flow's points and on test points."""
    from metricflow._jax import jax, jnp
    from metricflow.networks.outputs import ddbar

    m_, k = manifold("cubic"), 2
    config = ClassicalFlowConfig(m_, space="basis", k=k, flow=flow, symmetry="full", n_points=400, n_test=50,
                                 n_steps=1, seed=4)
    r = run_classical_flow(config)
    train_cfg, test_cfg = config.sample_configs()
    train, test = sample_points(train_cfg), sample_points(test_cfg)
    kap = reference_kappa(m_).value
    basis = r.basis
    exps = jnp.asarray(monomial_exponents(3, k))

    def f(x, b):  # f_b(z) = s^dagger B s / |z|^(2k) on C^3, x = (Re z, Im z)
        z = x[:3] + 1j * x[3:]
        s = jnp.prod(z[None, :] ** exps, axis=1)
        return jnp.real(jnp.conj(s) @ b @ s) / jnp.sum(jnp.abs(z) ** 2) ** k

    b_all = jnp.asarray(basis)
    hess_fn = jax.jit(jax.vmap(jax.vmap(lambda x, j, b: ddbar(lambda y: f(y, b), x, j), (None, None, 0)), (0, 0, None)))
    val_fn = jax.jit(jax.vmap(jax.vmap(f, (None, 0)), (0, None)))
    grad_fn = jax.jit(jax.vmap(jax.vmap(jax.grad(f), (None, 0)), (0, None)))

    def ddbar_features(pts):  # d dbar f_a by the JAX Hessian (N, P, n, n), f (N, P), d f (N, n, P)
        zr = np.concatenate([pts.z.real, pts.z.imag], axis=1)
        hess = np.asarray(hess_fn(zr, pts.jacobian, b_all))
        wirt = np.asarray(grad_fn(zr, b_all))
        dz = 0.5 * (wirt[:, :, :3] - 1j * wirt[:, :, 3:])  # d f / d z_i
        return hess, np.asarray(val_fn(zr, b_all)), np.einsum("nai,npi->nap", pts.jacobian, dz)

    h_tr, f_tr, df_tr = ddbar_features(train)
    h_te, _, _ = ddbar_features(test)
    g = train.g_fs  # the flow starts at g_FS (c = 0)
    eta = np.real(np.linalg.det(g)) / train.omega_sq / kap
    mu = train.weights / np.sum(train.weights)
    rho = mu * eta
    if flow == "calabi":
        a = (f_tr * rho[:, None]).T @ f_tr
    else:
        ginv = np.linalg.inv(g)
        a = np.real(np.einsum("n,nbp,nba,naq->pq", rho, np.conj(df_tr), ginv, df_tr))
    lam, v = np.linalg.eigh(a)
    keep = lam > 1e-11 * max(lam[-1], np.sum(rho[:, None] * f_tr**2))
    a_plus = v[:, keep] @ np.diag(1 / lam[keep]) @ v[:, keep].T
    d = (mu * np.log(eta) * eta)[:, None, None] * np.linalg.inv(g)  # delta E / delta g at each train point
    dg_tr, dg_te = h_tr / np.pi, h_te / np.pi  # dg(x)/dc_a
    source = np.real(np.einsum("npab,nba->p", dg_tr, d))  # sum_x' tr(dg(x')/dc_b D(x'))
    for dg, pts in ((dg_tr, train), (dg_te, test)):
        theta_applied = np.einsum("npab,pq,q->nab", dg, a_plus, source)  # sum_x' Theta(x, x') . D(x')
        expected = -np.pi * theta_applied
        data = space_data(pts, k)
        # the result keeps c after its one step; g is linear in c: (g(c_1) - g(c_0)) / dt
        moved = np.asarray(metric_jax("basis", jnp.asarray(r.params), basis, *data[:5], k))
        got = (moved - pts.g_fs) / r.dt
        assert np.max(np.abs(got - expected)) < 1e-9 * np.max(np.abs(expected)), flow


def test_sigma_falls_with_k_on_the_torus_and_k3():
    """At the Kahler-Ricci fixed point of the invariant algebraic family: cubic k = 1, 2 and quartic
    k = 1, 2, 3, each sigma below the one before by more than 10 standard errors (measured: cubic
    0.096, 0.0009; quartic 0.228, 0.019, 0.011 at 3000 points, 15 steps)."""
    for name, ks in (("cubic", (1, 2)), ("quartic", (1, 2, 3))):
        sig, se = [], []
        for k in ks:
            r = run_classical_flow(ClassicalFlowConfig(manifold(name), k=k, n_points=3000, n_test=3000, n_steps=12, seed=0))
            assert r.stopped_reason is None
            sig.append(r.sigma[-1])
            se.append(r.sigma_se[-1])
        for i in range(len(ks) - 1):
            assert sig[i + 1] < sig[i] - 10 * math.hypot(se[i], se[i + 1]), (name, sig, se)


def test_configs_refuse_bad_input_in_one_line():
    for kw, text in (({"flow": "heat"}, "unknown flow"), ({"space": "b"}, "space must be"),
                     ({"k": 5}, "needs k < d"), ({"k": 3, "symmetry": "full"}, "over the limit"),
                     ({"n_points": 10, "k": 1, "symmetry": "full"}, "needs at least"), ({"dt": -1.0}, "dt must be")):
        with pytest.raises(MetricflowError) as err:
            _config(**kw)
        assert text in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_a_too_large_step_stops_with_the_reason():
    r = run_classical_flow(_config(flow="calabi", k=3, dt=5e-3, n_steps=5))
    assert r.stopped_reason is not None and r.stopped_reason.startswith("stopped at step")
    assert "use a smaller dt" in r.stopped_reason
    assert np.isnan(r.sigma[-1]) and np.isfinite(r.sigma[0]) and r.steps_done < 5


def test_the_density_is_the_entropy_and_hellinger():
    eta = np.array([0.5, 1.0, 2.0])
    assert np.allclose(density("ricci", eta), eta * np.log(eta) - eta + 1)
    assert np.allclose(density("two-derivative", eta), (1 - np.sqrt(eta)) ** 2)
    assert density("ricci", np.array([1.0]))[0] == 0.0


def test_the_cli_prints_sigma_and_the_functional_per_step(capsys, tmp_path, monkeypatch):
    from metricflow.cli.main import main

    monkeypatch.setenv("METRICFLOW_CACHE", str(tmp_path / "cache"))
    assert main(["classical-flow", "--flow", "ricci", "--space", "basis", "--k", "2", "--points", "500",
                 "--steps", "3", "--seed", "1", "--json", "--no-cache"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert len(out["sigma"]) == len(out["sigma_se"]) == len(out["functional"]) == 4
    assert out["sigma"][-1] < out["sigma"][0] and out["functional"][-1] < out["functional"][0]
    assert main(["classical-flow", "--flow", "heat", "--points", "500"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown flow 'heat'") and err.count("\n") == 1


def _independent_kernel(r, params, probe: int):
    """K = f A^+ f on the first ``probe`` flow points at ``params`` of result ``r``, built here:
    f_a = d phi / d c_a and its Wirtinger derivatives by JAX autodiff of phi written from the
    sections, A the Gram matrix of the flow's metric against w eta, numpy's pseudo-inverse."""
    from metricflow._jax import jax, jnp

    cfg = r.config
    k, d = cfg.k, cfg.manifold.degree
    pts = sample_points(cfg.sample_configs()[0])
    exps = jnp.asarray(monomial_exponents(d, k))
    basis = jnp.asarray(r.basis)

    def phi(c, x):  # x = (Re z, Im z) in C^d
        z = x[:d] + 1j * x[d:]
        s = jnp.prod(z[None, :] ** exps, axis=1)
        p = jnp.real(jnp.conj(s) @ jnp.tensordot(c.astype(complex), basis, axes=1) @ s)
        q = jnp.sum(jnp.abs(z) ** 2) ** k
        return p / q if cfg.space == "basis" else jnp.log(p / q) / k

    zr = np.concatenate([pts.z.real, pts.z.imag], axis=1)
    c = jnp.asarray(params)
    f = np.asarray(jax.vmap(lambda x: jax.grad(phi)(c, x))(zr))  # (N, P)
    data = space_data(pts, k)
    g = np.asarray(metric_jax(cfg.space, c, r.basis, *data[:5], k))
    eta = np.real(np.linalg.det(g)) / pts.omega_sq / r.kappa
    rho = pts.weights * eta / np.sum(pts.weights)
    if cfg.flow == "calabi":  # L2(dV)
        a = (f * rho[:, None]).T @ f
    else:  # H1(dV): Re conj(d f_b)^T g^-1 d f_a, d f in the chart from d/dz_i = (d/dx_i - i d/dy_i) / 2
        jac = np.asarray(jax.vmap(lambda x: jax.jacfwd(jax.grad(phi), argnums=1)(c, x))(zr))  # (N, P, 2d)
        dz = 0.5 * (jac[:, :, :d] - 1j * jac[:, :, d:])
        df = np.einsum("nai,npi->nap", pts.jacobian, dz)
        a = np.real(np.einsum("n,nbp,nba,naq->pq", rho, np.conj(df), np.linalg.inv(g), df))
    kernel = f[:probe] @ np.linalg.pinv(a, rcond=1e-9, hermitian=True) @ f[:probe].T
    return kernel


@pytest.mark.parametrize("name,space,flow,k,symmetry", [("quintic", "algebraic", "ricci", 3, "invariant"),
                                                       ("cubic", "basis", "calabi", 2, "full")])
def test_the_kernel_spectrum_is_that_of_an_independently_built_kernel(name, space, flow, k, symmetry):
    """The recorded eigenvalues of K = f A^+ f on the probe points (the first 100 flow points) at
    the first and the last step are numpy's eigvalsh of K built independently (above), to
    rounding: H1 with the constant as null direction (rank P - 1 = 2), and L2 (rank P = 36)."""
    from metricflow.flows.classical import KERNEL_PROBE

    config = ClassicalFlowConfig(manifold(name), space=space, k=k, flow=flow, symmetry=symmetry, n_points=600,
                                 n_test=200, n_steps=3, seed=7)
    r = run_classical_flow(config)
    assert r.stopped_reason is None and r.kernel_probe == KERNEL_PROBE == 100
    rank = r.kernel_spectra.shape[1]
    assert rank == (2 if flow == "ricci" else 36)
    for step, params in ((0, r.start), (r.steps_done, r.params)):
        expected = np.linalg.eigvalsh(_independent_kernel(r, params, 100))
        assert np.all(np.abs(expected[:-rank]) < 1e-9 * expected[-1])  # no other nonzero eigenvalue
        np.testing.assert_allclose(r.kernel_spectra[step], expected[-rank:], rtol=1e-8, atol=1e-10 * expected[-1])


def test_the_kernel_moves_with_h_and_in_the_fixed_basis_only_through_the_volume_form():
    """Fixed basis: f never moves, so the range of K on the probe points stays step 0's (sine of
    the largest angle below 1e-10) while its eigenvalues move through A (the volume form).
    Algebraic family (same flow, points and degree): the range turns (sine > 0.01). The spectral
    distance is the metric-NTK page's (``networks.metric_ntk.wasserstein_to_first``)."""
    from metricflow.networks.metric_ntk import wasserstein_to_first

    runs = {space: run_classical_flow(_config(space=space, k=3, n_points=600, n_test=200, n_steps=4))
            for space in ("basis", "algebraic")}
    for space, r in runs.items():
        assert r.stopped_reason is None
        raw, log = wasserstein_to_first(r.kernel_spectra)
        np.testing.assert_allclose(r.kernel_wasserstein, raw, rtol=1e-12, atol=0)
        np.testing.assert_allclose(r.kernel_wasserstein_log, log, rtol=1e-12, atol=0)
        assert r.kernel_wasserstein[0] == 0 and np.all(r.kernel_wasserstein[1:] > 0)
        assert r.kernel_range_sine[0] < 1e-12
    assert np.max(runs["basis"].kernel_range_sine) < 1e-10
    assert np.all(runs["algebraic"].kernel_range_sine[1:] > 0.01)
    assert np.all(np.diff(runs["algebraic"].kernel_range_sine) > 0)  # it keeps turning as H moves
