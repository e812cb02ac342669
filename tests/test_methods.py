"""Methods compared: one tiny run of every method through one map_configs call, checked against
the same pieces run directly; Donaldson at k = 1 is g_FS; the figures, and the page."""

from dataclasses import replace

import numpy as np
import pytest

from metricflow.errors import MetricflowError
from metricflow.flows.classical import ClassicalFlowConfig, ClassicalFlowResult
from metricflow.flows.donaldson import DonaldsonConfig, run_donaldson
from metricflow.flows.flow import FlowConfig, run_flow
from metricflow.geometry.manifolds import Manifold
from metricflow.geometry.measures import measure_sigma
from metricflow.geometry.points import SampleConfig, sample_points
from metricflow.geometry.reference import reference_kappa
from metricflow.kernels.base import stream_seed
from metricflow.networks.models import TrainConfig, train
from metricflow.studies.feature_learning import TrainedKernelConfig
from metricflow.studies.methods import (
    MethodsConfig, estimate_methods, methods_so_far, run_method, run_methods, run_order,
)

# Small enough for CI; every method and both Donaldson series are in it, and the quick preset's
# classical flow (Kahler-Ricci in the algebraic family at k = 3: the page's widgets do not set it).
TINY = dict(n_test=2000, k_max=2, donaldson_points=20_000, opt_steps=20, flow_train=100, flow_steps=6,
            network_points=2500, epochs=3, phi_points=2100, phi_epochs=2, trained_kernel_points=20)


@pytest.fixture(scope="module")
def tiny():
    config = MethodsConfig.preset("quick", **TINY)
    calls, pieces = [], []

    def map_configs(function, configs):
        configs = list(configs)
        calls.append([type(c).__name__ for c in configs])
        ran = [function(c) for c in configs]
        pieces[:] = [ran[configs.index(c)] for c in config.configs()]  # in the order of config.configs()
        return ran

    return config, run_methods(config, map_configs=map_configs), calls, pieces


def test_every_method_goes_through_one_map_configs_call(tiny):
    config, result, calls, _ = tiny
    # In RUN_ORDER: the delta flow first (the first curve), the trained kernel (the longest) next.
    assert calls == [["FlowConfig", "TrainedKernelConfig", "FlowConfig", "TrainConfig", "DonaldsonConfig", "FlowConfig",
                      "TrainConfig", "ClassicalFlowConfig"]]
    assert run_order(config.configs()) == [1, 6, 2, 4, 0, 3, 5, 7]
    assert [s.name for s in result.series] == [
        "Donaldson balanced", "Donaldson σ-optimised", "delta flow", "Gaussian flow (cutoff)", "ReLU-NTK flow",
        "metric network", "phi network", "trained kernel", "Kähler–Ricci flow (degree 3)"]
    assert [s.family for s in result.series][-2:] == ["kernel", "classical"] and config.n_series == 9
    assert result.kappa == pytest.approx(Manifold().exact_kappa()) and result.kappa_exact
    for s in result.series:
        assert s.sigma.shape == s.seconds.shape == s.points.shape == s.sigma_se.shape == s.step.shape
        assert np.all(np.isfinite(s.sigma)) and np.all(s.sigma_se > 0) and np.all(np.diff(s.points) >= 0)
        assert s.test_points == 2000
    rows = result.table()
    assert [r["method"] for r in rows] == [s.name for s in result.series]
    assert all(r["best_sigma"] == pytest.approx(min(s.sigma)) for r, s in zip(rows, result.series))
    summary = result.summary()
    assert summary["table"] == rows and len(summary["series"]) == 9 and summary["test_points"] == 2000


def test_series_agree_with_the_pieces_run_directly(tiny):
    # The same methods, configured here by hand and run on their own.
    _, result, _, _ = tiny
    m = Manifold()
    test = SampleConfig(m, 2000, stream_seed(0, 7, 0))  # the shared test points, named by hand
    d = run_donaldson(DonaldsonConfig(m, (1, 2), 20_000, 2000, 0, optimise=True, opt_steps=20, opt_points=2000,
                                      test=test))
    bal = result.by_name("Donaldson balanced")
    np.testing.assert_array_equal(bal.sigma, d.sigma)
    np.testing.assert_array_equal(bal.sigma_se, d.sigma_se)
    np.testing.assert_array_equal(bal.points, d.iterations * 20_000)
    np.testing.assert_array_equal(result.by_name("Donaldson σ-optimised").sigma, d.opt_sigma)
    assert bal.parameters == (15**2 if bal.best == 1 else 5**2)

    f = run_flow(FlowConfig(kernel="delta", n_train=100, n_test=2000, steps=6, seed=0, coordinates="all", test=test))
    delta = result.by_name("delta flow")
    np.testing.assert_array_equal(delta.sigma, f.test_sigma[1:])
    np.testing.assert_array_equal(delta.points, 100 * np.arange(1, 7))
    assert np.all(np.diff(delta.seconds) > 0) and delta.seconds[0] > 0

    t = train(TrainConfig(model="metric", n_points=2500, epochs=3, val_fraction=0.8, ricci=False, seed=0, test=test))
    net = result.by_name("metric network")
    np.testing.assert_allclose(net.sigma, t.val_sigma[1:], rtol=1e-10)
    np.testing.assert_array_equal(net.points, 500 * np.arange(1, 4))
    assert net.parameters == t.n_params and net.test_points == 2000


def test_every_method_measures_on_the_one_shared_set_of_points(tiny):
    # sigma of g_FS on the shared points, computed here from the sample itself: every method's
    # first measurement (its g_FS, before any step) must be exactly this, on the same points.
    config, result, _, pieces = tiny
    pts = sample_points(SampleConfig(Manifold(), 2000, stream_seed(0, 7, 0)))
    kappa = reference_kappa(Manifold())
    expected = measure_sigma(pts.g_fs, pts.omega_sq, pts.weights, kappa)
    assert result.sigma_fs == expected.sigma and result.sigma_fs_se == expected.sigma_se
    for c in config.configs():
        assert c.test == SampleConfig(Manifold(), 2000, stream_seed(0, 7, 0))
    donaldson, delta, gauss, relu, metric, phi, trained, classical = pieces
    assert donaldson.sigma_fs == metric.sigma_fs == phi.sigma_fs == expected.sigma
    assert delta.test_sigma[0] == gauss.test_sigma[0] == relu.test_sigma[0] == expected.sigma
    assert classical.sigma[0] == expected.sigma and classical.sigma_se[0] == expected.sigma_se
    assert trained.initial_test_sigma[0] == pytest.approx(expected.sigma, rel=1e-12)
    # None of the methods trains on them: no train point of a flow or network is a test point.
    train_pts = sample_points(SampleConfig(Manifold(), 100, stream_seed(0, 0, 0)))
    assert np.min(np.abs(train_pts.z[:, None, :] - pts.z[None, :, :]).sum(-1)) > 1e-6
    flow_pts = sample_points(config.configs()[7].sample_configs()[0])  # the classical flow's own points
    assert np.min(np.abs(flow_pts.z[:, None, :] - pts.z[None, :, :]).sum(-1)) > 1e-6


def test_the_classical_series_is_sigma_on_the_shared_points(tiny):
    """The classical flow's last sigma, recomputed here: Donaldson's closed-form metric g_k of
    H = sum c_a B_a (``donaldson.metric``, not the flow's) on the shared points, measured against
    the manifold's reference kappa, the one of every other series."""
    from metricflow.flows.donaldson import metric

    config, result, _, pieces = tiny
    r = pieces[7]
    assert isinstance(r, ClassicalFlowResult) and r.config == config.configs()[7]
    assert r.config.flow == "ricci" and r.config.space == "algebraic" and r.config.k == 3 and r.stopped_reason is None
    series = result.by_name("Kähler–Ricci flow (degree 3)")
    pts = sample_points(SampleConfig(Manifold(), 2000, stream_seed(0, 7, 0)))
    kappa = reference_kappa(Manifold())
    assert r.kappa == result.kappa == kappa.value
    g = metric(pts, np.tensordot(r.params, r.basis, axes=1), 3)
    again = measure_sigma(g, pts.omega_sq, pts.weights, kappa)
    assert again.sigma == pytest.approx(series.sigma[-1], rel=1e-9)
    assert again.sigma_se == pytest.approx(series.sigma_se[-1], rel=1e-9)
    np.testing.assert_array_equal(series.step, np.arange(1, r.config.n_steps + 1))
    np.testing.assert_array_equal(series.points, r.n_points * series.step)
    assert series.parameters == r.n_params == 3 and series.test_points == 2000
    assert series.sigma[-1] < 0.5 * result.sigma_fs  # it learns: well below g_FS after its steps

def test_a_method_measured_elsewhere_is_refused(tiny):
    config, _, _, pieces = tiny

    def elsewhere(function, configs):
        configs = list(configs)
        out = [pieces[config.configs().index(c)] for c in configs]
        i = configs.index(config.configs()[1])  # the delta flow
        out[i] = function(replace(configs[i], test=SampleConfig(Manifold(), 2000, 12345)))
        return out

    with pytest.raises(MetricflowError, match="did not measure on the shared test points"):
        run_methods(config, map_configs=elsewhere)


def test_the_test_field_keeps_old_keys_and_is_checked():
    from metricflow.hashing import canonical_json

    shared = SampleConfig(Manifold(), 3000, 99)
    for plain in (DonaldsonConfig(), FlowConfig(), TrainConfig(), TrainedKernelConfig()):
        assert '"test"' not in canonical_json(plain)  # keys of the results stored before are kept
    assert '"test"' in canonical_json(DonaldsonConfig(n_test=3000, test=shared))
    t = TrainConfig(n_points=5000, val_fraction=0.6, test=shared)
    assert TrainConfig.from_dict(t.to_dict()) == t and t.to_dict()["test"] == {"n_points": 3000, "seed": 99}
    with pytest.raises(MetricflowError, match="has only 3,000"):
        TrainConfig(n_points=5000, val_fraction=0.8, test=shared)
    with pytest.raises(MetricflowError, match="psi = 0.5"):
        DonaldsonConfig(Manifold(5, 0.5), n_test=100, test=shared)
    with pytest.raises(TypeError, match="must be a SampleConfig"):
        TrainedKernelConfig(test=(3000, 99))


def test_donaldson_at_k1_is_the_fs_sigma(tiny):
    # The balanced H at k = 1 is 1 up to the sampling noise of its 2 x 10^4 points, so sigma_1
    # is sigma_FS on the same fresh points (as in test_donaldson.py).
    _, result, _, _ = tiny
    bal = result.by_name("Donaldson balanced")
    assert bal.step[0] == 1 and bal.parameters in (25, 225)
    assert abs(bal.sigma[0] - result.sigma_fs) < 0.003
    assert result.sigma_fs == pytest.approx(0.373, abs=4 * result.sigma_fs_se)


def test_configs_are_ordinary_configs_and_validated():
    c = MethodsConfig.preset("quick")
    kinds = [type(x) for x in c.configs()]
    assert kinds == [DonaldsonConfig, FlowConfig, FlowConfig, FlowConfig, TrainConfig, TrainConfig, TrainedKernelConfig,
                     ClassicalFlowConfig]
    donaldson, delta, gauss, relu, metric, phi, tk, classical = c.configs()
    assert (classical.flow, classical.space, classical.k, classical.symmetry) == ("ricci", "algebraic", 3, "invariant")
    assert classical.test == delta.test and classical.n_test == c.n_test and classical.seed == c.seed
    full = MethodsConfig.preset("full").configs()[7:]
    assert [(x.flow, x.space, x.k) for x in full] == [
        (f, "algebraic", k) for k in (2, 3, 4) for f in ("ricci", "two-derivative", "calabi")] + [("ricci", "basis", 4)]
    assert all(x.test == MethodsConfig.preset("full").configs()[1].test for x in full)
    assert donaldson.ks == (1, 2, 3, 4) and donaldson.n_test == c.n_test and donaldson.optimise
    assert [f.kernel.name for f in (delta, gauss, relu)] == ["delta", "gaussian", "relu-ntk"]
    assert gauss.kernel.radius == c.gaussian_radius and all(f.n_test == c.n_test for f in (delta, gauss, relu))
    assert metric.n_val == c.n_test and phi.n_val == c.n_test and phi.model == "phi" and tk.train == metric
    cost, serial = estimate_methods(c), estimate_methods(c, workers=1)
    assert 0 < cost.seconds < 300 and cost.bytes > 0
    from metricflow.jobs import estimate as job_estimate

    assert serial.seconds == pytest.approx(sum(job_estimate(p).seconds for p in c.configs()))  # one after another
    assert serial.seconds / 2 <= cost.seconds < serial.seconds  # 2 workers
    with pytest.raises(MetricflowError, match="must exceed the 5,000 test points"):
        MethodsConfig(network_points=5000)
    with pytest.raises(MetricflowError, match="unknown preset"):
        MethodsConfig.preset("slow")
    with pytest.raises(MetricflowError, match="singular locus"):
        MethodsConfig(manifold=Manifold(5, 1))
    with pytest.raises(TypeError):
        MethodsConfig(optimise="yes")
    with pytest.raises(MetricflowError, match="no method runs"):
        run_method(TINY)
    with pytest.raises(MetricflowError, match="unknown classical flow 'heat'"):
        MethodsConfig(classical_flows=("heat",), classical_ks=(2,))
    with pytest.raises(MetricflowError, match="needs k < d"):
        MethodsConfig(classical_flows=("ricci",), classical_ks=(5,))


def test_figures_and_sentences_come_from_the_result(tiny):
    from metricflow.figures.methods import methods_figures, methods_sentences, methods_table_rows

    _, result, _, _ = tiny
    figs = methods_figures(result)
    names = [t.name for t in figs["time"].data]
    assert names == [s.name for s in result.series] + ["g_FS"]
    delta = result.by_name("delta flow")
    trace = figs["points"].data[names.index("delta flow")]
    assert list(trace.x) == delta.points.tolist() and list(trace.y) == delta.sigma.tolist()
    assert figs["time"].layout.xaxis.type == "log" and figs["time"].layout.yaxis.type == "log"
    rows = methods_table_rows(result)
    assert [r["method"] for r in rows] == names[:-1]
    sentences = methods_sentences(result)
    assert len(sentences) == 3
    v = result.verdict()
    assert f"{v['networks']['sigma']:.4f}" in sentences[1] and f"{v['fixed_kernels']['sigma']:.4f}" in sentences[0]
    best, nets = v["classical"], v["networks"]
    assert best["method"] == "Kähler–Ricci flow (degree 3)" and v["fixed_basis"] is None
    ratio = best["sigma"] / nets["sigma"]
    times = f"{1 / ratio:.1f} times below" if ratio < 1 else f"{ratio:.1f} times above"
    assert f"σ = {best['sigma']:.4f} ± {best['sigma_se']:.4f}, {times} the {nets['method']}" in sentences[2]
    trace = figs["time"].data[names.index("Kähler–Ricci flow (degree 3)")]
    assert trace.line.color == "#2ca02c"


def test_sentences_follow_the_numbers(tiny):
    # Fixed kernels that never improve after half-way, one that rises 3-fold, networks that halve.
    from metricflow.figures.methods import methods_sentences

    _, result, _, _ = tiny

    def with_sigma(s, values):
        values = np.asarray(values, dtype=float)
        n = len(values)
        return replace(s, sigma=values, sigma_se=np.full(n, 0.001), step=np.arange(1, n + 1), seconds=np.ones(n),
                       points=np.arange(1, n + 1), sigma_self=np.full(n, np.nan))

    curves = {"delta flow": [0.3, 0.3, 0.3], "Gaussian flow (cutoff)": [0.3, 0.2, 0.6], "ReLU-NTK flow": [0.4, 0.4, 0.4],
              "metric network": [0.2, 0.1, 0.05], "phi network": [0.3, 0.2, 0.1]}
    series = tuple(with_sigma(s, curves[s.name]) if s.name in curves else s for s in result.series)
    fixed, nets, _ = methods_sentences(replace(result, series=series))
    assert "none of the delta, Gaussian and ReLU-NTK flows lowered σ" in fixed
    assert "the Gaussian flow (cutoff)'s σ rose 3.0-fold" in fixed and "0.2000 ± 0.0010, by the Gaussian flow" in fixed
    assert nets.startswith("The networks keep learning") and "fell by 50.0 %" in nets and "4.0 times below" in nets


def test_methods_page_shows_the_stored_result(tiny, cache_dir, monkeypatch):
    from apptest import figure, open_page

    monkeypatch.setenv("METRICFLOW_AUTOSTART", "0")
    from metricflow.jobs import JobStore, job_key
    from metricflow.studies.methods import METHODS_SCHEMA

    config, result, _, _ = tiny
    store = JobStore(cache_dir)
    key = job_key(config)
    assert store.claim(key, config, METHODS_SCHEMA)
    store.store_result(key, result, METHODS_SCHEMA)
    store.close()

    at = open_page("pages/9_Methods_compared.py")
    at.number_input(key="methods_n_test_quick").set_value(TINY["n_test"])
    for name, value in TINY.items():
        if name != "n_test":
            at.number_input(key=f"methods_{name}_quick").set_value(value)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    assert [t["name"] for t in figure(at, 0)["data"]][:3] == ["Donaldson balanced", "Donaldson σ-optimised", "delta flow"]
    assert list(at.dataframe[0].value["method"]) == [s.name for s in result.series]
    text = " ".join(m.value for m in at.markdown)
    assert "fixed kernels" in text and "networks" in text and f"{result.sigma_fs:.4f}" in text


def test_cli_builds_the_preset_with_the_flags_and_prints_the_summary(tiny, monkeypatch, capsys):
    import json

    from metricflow.cli.main import main
    from metricflow.jobs import runner

    config, result, _, _ = tiny
    seen = []

    def fake_run_job(c, cache=True):
        seen.append(c)
        return result

    monkeypatch.setattr(runner, "run_job", fake_run_job)
    argv = ["methods", "--test", "2000", "--k-max", "2", "--donaldson-points", "20000", "--flow-train", "100",
            "--flow-steps", "6", "--network-points", "2500", "--epochs", "3", "--no-phi", "--json"]
    assert main(argv) == 0
    expected = MethodsConfig.preset("quick", n_test=2000, k_max=2, donaldson_points=20_000, flow_train=100,
                                    flow_steps=6, network_points=2500, epochs=3, phi=False)
    assert seen == [expected]
    out = json.loads(capsys.readouterr().out)
    assert out["table"] == json.loads(json.dumps(result.summary()["table"]))
    assert main(["methods", "--preset", "huge"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_the_comparison_so_far_holds_the_finished_pieces(tiny):
    from metricflow.figures.methods import methods_figures, methods_sentences

    config, result, _, pieces = tiny
    assert methods_so_far(config, [None] * 8) is None
    with pytest.raises(MetricflowError, match="expected 8 results"):
        methods_so_far(config, pieces[:3])
    delta_only = methods_so_far(config, [None, pieces[1]] + [None] * 6)
    assert [s.name for s in delta_only.series] == ["delta flow"]
    assert delta_only.sigma_fs == result.sigma_fs and delta_only.kappa == result.kappa
    np.testing.assert_array_equal(delta_only.series[0].sigma, result.by_name("delta flow").sigma)
    assert methods_sentences(delta_only, provisional=True) == []  # no Donaldson, no network yet
    figs = methods_figures(delta_only)
    assert [t.name for t in figs["time"].data] == ["delta flow", "g_FS"]
    # Donaldson, the flows and the metric network in: provisional sentences.
    some = methods_so_far(config, list(pieces[:5]) + [None, None, None])
    assert [s.name for s in some.series] == [s.name for s in result.series][:6]
    assert some.sigma_fs_se == result.sigma_fs_se and some.kappa_exact
    sentences = methods_sentences(some, provisional=True)
    assert len(sentences) == 2 and all(s.startswith("So far (provisional, 6 of 9 series in): the ") for s in sentences)
    classical_only = methods_so_far(config, [None] * 7 + [pieces[7]])  # it records kappa: a view of its own
    assert [s.name for s in classical_only.series] == ["Kähler–Ricci flow (degree 3)"]
    assert classical_only.sigma_fs == result.sigma_fs and classical_only.kappa == result.kappa
    whole = methods_so_far(config, list(pieces))
    assert [s.name for s in whole.series] == [s.name for s in result.series]
    assert whole.table() == result.table() and whole.sigma_fs == result.sigma_fs


def test_running_pieces_draw_their_partial_series(tiny):
    from metricflow.figures.methods import methods_figures, running_curve
    from metricflow.flows.flow import flow_partial
    from metricflow.networks.models import train_partial

    config, result, _, pieces = tiny
    delta, metric = config.configs()[1], config.configs()[4]
    f = pieces[1]
    curve = running_curve(delta, flow_partial(f.train_sigma, f.test_sigma, 3))
    assert curve["name"] == "delta flow" and curve["family"] == "kernel"
    assert curve["points"] == [100.0, 200.0, 300.0] and curve["sigma"] == f.test_sigma[1:4].tolist()
    t = pieces[4]
    curve = running_curve(metric, train_partial(list(t.val_sigma[:3]), np.ones(3)))
    assert curve["name"] == "metric network" and curve["points"] == [500.0, 1000.0]
    assert curve["sigma"] == t.val_sigma[1:3].tolist()
    assert running_curve(metric, None) is None and running_curve(config.configs()[0], {"panels": []}) is None
    c = pieces[7]
    from metricflow.progress import panel

    curve_c = running_curve(config.configs()[7], {"panels": [panel("σ per step", "step", "σ", {"test": (range(3), c.sigma[:3])})]})
    assert curve_c["name"] == "Kähler–Ricci flow (degree 3)" and curve_c["family"] == "classical"
    assert curve_c["points"] == [3000.0, 6000.0] and curve_c["sigma"] == c.sigma[1:3].tolist()
    figs = methods_figures(methods_so_far(config, [pieces[0]] + [None] * 7), [curve])
    names = [t.name for t in figs["points"].data]
    assert "metric network (running)" in names and "metric network (running)" not in [t.name for t in figs["time"].data]


def _store_pieces(store, config, pieces, which):
    from metricflow.jobs import job_key, job_kind

    for i in which:
        piece = config.configs()[i]
        kind = job_kind(piece)
        key = job_key(piece, kind.schema_version)
        assert store.claim(key, piece, kind.schema_version)
        store.store_result(key, pieces[i], kind.schema_version)


def test_methods_page_draws_the_finished_methods_while_the_comparison_runs(tiny, cache_dir, monkeypatch):
    from apptest import open_page

    from metricflow.jobs import JobStore, job_key
    from metricflow.studies.methods import METHODS_SCHEMA

    monkeypatch.setenv("METRICFLOW_AUTOSTART", "0")
    config, result, _, pieces = tiny
    store = JobStore(cache_dir)
    assert store.claim(job_key(config), config, METHODS_SCHEMA)  # running, in this process
    _store_pieces(store, config, pieces, range(5))  # Donaldson, the three flows, the metric network
    store.close()

    at = open_page("pages/9_Methods_compared.py")
    assert not at.get("plotly_chart")  # nothing runs for this session: the autostart is off
    at.number_input(key="methods_n_test_quick").set_value(TINY["n_test"])
    for name, value in TINY.items():
        if name != "n_test":
            at.number_input(key=f"methods_{name}_quick").set_value(value)
    at.run()
    at.button(key="methods_run").click().run()  # the job is running: Run just follows it
    assert not at.exception and not at.error, [e.value for e in at.error]
    captions = " ".join(c.value for c in at.caption)
    assert "Partial results: 5 of 8 methods finished, still computing" in captions
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    import json

    names = [t["name"] for t in json.loads(charts[0].proto.spec)["data"]]
    assert names == [s.name for s in result.series][:6] + ["g_FS"]
    text = " ".join(m.value for m in at.markdown)
    assert "So far (provisional, 6 of 9 series in)" in text


def test_the_page_starts_the_quick_comparison_once_per_session(cache_dir, monkeypatch):
    from apptest import open_page

    from metricflow.jobs import JobStore, job_key
    from metricflow.studies.methods import METHODS_SCHEMA

    submitted = []

    def fake_submit(self, config, owner=""):  # records the jobs it would start, as JobStore.submit would
        status = self.status(job_key(config))
        if status is None or status.state not in ("queued", "running"):
            submitted.append(config)
        return job_key(config)

    monkeypatch.setattr(JobStore, "submit", fake_submit)
    monkeypatch.setenv("METRICFLOW_AUTOSTART", "0")
    open_page("pages/9_Methods_compared.py")
    assert submitted == []  # turned off by the operator

    monkeypatch.setenv("METRICFLOW_AUTOSTART", "1")
    at = open_page("pages/9_Methods_compared.py")
    assert submitted == [MethodsConfig.preset("quick")]  # the preset, whatever the widgets say
    at.number_input(key="methods_seed").set_value(3).run()
    assert not at.exception and submitted == [MethodsConfig.preset("quick")]  # once per session

    # A second visitor while it runs: joins the running job, starts nothing.
    quick = MethodsConfig.preset("quick")
    store = JobStore(cache_dir)
    assert store.claim(job_key(quick), quick, METHODS_SCHEMA)
    store.close()
    at = open_page("pages/9_Methods_compared.py")
    assert len(submitted) == 1
    assert at.session_state["methods_job"] == job_key(quick)
    captions = " ".join(c.value for c in at.caption)
    assert "Partial results: 0 of 8 methods finished" in captions
