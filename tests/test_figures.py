"""Figure builders hold the data of the result they draw."""

import numpy as np
import plotly.graph_objects as go
import pytest

from metricflow.studies.sample import SampleResult, run_sample
from metricflow.figures import (
    chart_bar,
    eta_histogram,
    figures_html,
    histogram,
    points_figures,
    points_scatter,
    weights_histogram,
)
from metricflow.geometry.manifolds import manifold
from metricflow.geometry.measures import SigmaReport
from metricflow.geometry.points import SampleConfig


@pytest.fixture(scope="module")
def synthetic() -> SampleResult:
    rng = np.random.default_rng(0)
    n = 1000
    eta = rng.normal(1.0, 0.3, n)
    return SampleResult(
        config=SampleConfig(manifold("quintic"), n_points=n, seed=0),
        sigma=SigmaReport(0.375, 0.001, 0.374, 0.001, 0.017619, 0.0, 0.0176, 0.0001, n),
        kappa_exact=0.017619,
        weights=rng.lognormal(0.0, 1.0, n), eta=eta,
        charts=np.array([[0, 1], [1, 0], [2, 4]]), chart_counts=np.array([500, 300, 200]),
        plot_index=np.arange(0, n, 5), abs_z=rng.uniform(0, 1, (200, 5)),
        lines_drawn=200, seconds=0.1,
    )


def test_histogram_counts_every_point(synthetic):
    for fig in (eta_histogram(synthetic), weights_histogram(synthetic)):
        assert isinstance(fig, go.Figure)
        bar = fig.data[0]
        assert bar.type == "bar"
        assert np.sum(bar.y) == synthetic.n_points
        assert len(bar.x) == len(bar.y) == 60


def test_eta_histogram_centres_span_the_data(synthetic):
    bar = eta_histogram(synthetic).data[0]
    assert min(bar.x) < synthetic.eta.min() + 0.1 and max(bar.x) > synthetic.eta.max() - 0.1
    assert "0.3750" in eta_histogram(synthetic).layout.title.text


def test_histogram_log_bins_skip_nonpositive():
    fig = histogram(np.array([0.0, -1.0, 1.0, 10.0, 100.0]), "t", "x", bins=4, log_x=True)
    assert np.sum(fig.data[0].y) == 3 and fig.layout.xaxis.type == "log"


def test_chart_bar(synthetic):
    bar = chart_bar(synthetic).data[0]
    assert list(bar.x) == ["(0,1)", "(1,0)", "(2,4)"]
    assert list(bar.y) == [500, 300, 200]


def test_points_scatter(synthetic):
    trace = points_scatter(synthetic).data[0]
    assert trace.type == "scatter3d"
    np.testing.assert_array_equal(trace.x, synthetic.abs_z[:, 0])
    np.testing.assert_array_equal(trace.z, synthetic.abs_z[:, 2])
    np.testing.assert_array_equal(trace.marker.color, synthetic.eta[synthetic.plot_index])


def test_figures_of_a_real_sample():
    result = run_sample(SampleConfig(manifold("quartic"), n_points=400, seed=2))
    figs = points_figures(result)
    assert set(figs) == {"eta", "weights", "charts", "scatter"}
    assert np.sum(figs["charts"].data[0].y) == 400
    assert np.all(np.asarray(figs["scatter"].data[0].x) <= 1.0 + 1e-12)
    html = figures_html(figs, title="test", offline=False)
    assert html.count("plotly-graph-div") >= 4 and "cdn.plot.ly" in html


# ---- kernel flow and theory lab ---------------------------------------------------------

from metricflow.flows.flow import flow_csv  # noqa: E402
from metricflow.figures import (  # noqa: E402
    flow_figures,
    flow_gain_figure,
    flow_label,
    flow_nonpd_figure,
    flow_sigma_figure,
    kernel_curves_figure,
    locality_profiles_figure,
    locality_width_figure,
    theory_figures,
    width_error_figure,
)
from metricflow.flows.flow import FlowConfig, FlowResult, flow_from_options  # noqa: E402
from metricflow.studies.theory import TheoryConfig, run_theory  # noqa: E402


def synthetic_flow(seed: int, stop_after: int | None = None) -> FlowResult:
    """A FlowResult of 4 steps with made-up numbers; NaN after ``stop_after`` steps."""
    rng = np.random.default_rng(seed)
    config = FlowConfig(kernel="delta", n_train=100, n_test=50, steps=4, lr=1e-3, seed=seed)
    train = 0.4 * np.exp(-np.arange(5.0))
    test = 0.4 * np.exp(-0.1 * np.arange(5.0))
    nonpd_train, nonpd_test = rng.uniform(0, 0.1, 5), rng.uniform(0, 0.2, 5)
    done = 4 if stop_after is None else stop_after
    for a in (train, test, nonpd_train, nonpd_test):
        a[done + 1:] = np.nan
    return FlowResult(
        config=config, train_sigma=train, test_sigma=test, train_nonpd_fraction=nonpd_train,
        test_nonpd_fraction=nonpd_test, clipped_fraction=np.zeros(4), train_gain=train[0] / train[done],
        test_gain=test[0] / test[done], steps_done=done, chart=(0, 1), points_drawn=3000,
        kappa_train=0.0176, kappa_test=0.0177, isolated_test=0, kernel_seconds=0.01, seconds=0.1,
        stopped_reason=None if stop_after is None else f"stopped at step {stop_after + 1}: test",
    )


def test_flow_sigma_figure_overlays_train_and_test_of_each_run():
    runs = [synthetic_flow(0), synthetic_flow(1, stop_after=2)]
    fig = flow_sigma_figure(runs)
    assert len(fig.data) == 4 and fig.layout.yaxis.type == "log"
    for i, r in enumerate(runs):
        train, test = fig.data[2 * i], fig.data[2 * i + 1]
        np.testing.assert_array_equal(train.y, r.train_sigma)
        np.testing.assert_array_equal(test.y, r.test_sigma)
        np.testing.assert_array_equal(train.x, np.arange(5))
        assert train.line.color == test.line.color and test.line.dash == "dash"
        assert train.name.startswith("train · ") and flow_label(r.config) in train.name
    assert fig.data[0].line.color != fig.data[2].line.color
    assert np.isnan(fig.data[2].y[4])  # the stopped run leaves a gap


def test_flow_gain_and_nonpd_figures():
    runs = [synthetic_flow(0), synthetic_flow(1, stop_after=2)]
    gain = flow_gain_figure(runs, labels=["a", "b"])
    assert list(gain.data[0].x) == ["a", "b"] and gain.layout.yaxis.type == "log"
    np.testing.assert_allclose(gain.data[0].y, [r.train_gain for r in runs])
    np.testing.assert_allclose(gain.data[1].y, [r.test_gain for r in runs])
    assert gain.data[0].y[1] == pytest.approx(np.exp(2.0))
    nonpd = flow_nonpd_figure(runs)
    expected = (100 * runs[0].train_nonpd_fraction + 50 * runs[0].test_nonpd_fraction) / 150
    np.testing.assert_allclose(nonpd.data[0].y, expected)
    assert set(flow_figures(runs)) == {"sigma", "gain", "nonpd"}


def test_flow_label_names_the_options():
    assert flow_label(FlowConfig(kernel="delta", n_train=10, n_test=5, lr=0.5)) == "delta/log 10+5 lr 0.5 seed 0"
    assert flow_label(FlowConfig(kernel="delta", n_train=10, n_test=5, lr=0.5, update="euclidean")) == (
        "delta/sigma 10+5 lr 0.5 seed 0 (euclidean)")
    assert "unnormalised" in flow_label(FlowConfig(kernel="delta", normalise=False))
    label = flow_label(flow_from_options(kernel="gaussian", radius=0.3, clip=0.1, normalise=True, update="euclidean"))
    assert "σ 30" in label and "r 0.3" in label and "clip 0.1" in label and "normalised" in label
    assert "∞ width" in flow_label(FlowConfig(kernel="cosnet"))
    assert "σ_b 80.52" in flow_label(FlowConfig(kernel="relu-ntk"))


def test_flow_csv_has_one_row_per_step():
    r = synthetic_flow(3, stop_after=2)
    rows = [line.split(",") for line in flow_csv(r).strip().splitlines()]
    assert rows[0][:6] == ["step", "train_sigma", "test_sigma", "train_nonpd_fraction", "test_nonpd_fraction",
                           "clipped_fraction"]
    assert len(rows) == 6 and rows[1][5] == "" and rows[2][5] == "0.0"
    assert float(rows[3][1]) == r.train_sigma[2] and rows[4][1] == ""
    for name in rows[0][6:]:  # the optional columns, where the result has them
        column = rows[0].index(name)
        assert float(rows[3][column]) == getattr(r, name)[2]


def test_flow_csv_writes_every_sigma_of_a_real_flow():
    from metricflow.flows.flow import run_flow

    r = run_flow(FlowConfig(kernel="delta", n_train=40, n_test=20, steps=2))
    rows = [line.split(",") for line in flow_csv(r).strip().splitlines()]
    assert {"train_sigma_se", "test_sigma_self", "test_sigma_pd", "test_nonpd_count"} <= set(rows[0])
    column = rows[0].index("test_sigma_se")
    assert float(rows[2][column]) == r.test_sigma_se[1] > 0


@pytest.fixture(scope="module")
def theory():
    return run_theory(TheoryConfig(widths=(10, 100, 1000), trials=2, locality_sigma_w=(2.0, 20.0)))


def test_kernel_curves_figure_holds_each_width_and_the_analytic_kernel(theory):
    fig = kernel_curves_figure(theory)
    assert len(fig.data) == 4
    for trace, curve in zip(fig.data[:3], theory.empirical):
        np.testing.assert_array_equal(trace.y, curve)
        np.testing.assert_array_equal(trace.x, theory.t)
    np.testing.assert_array_equal(fig.data[3].y, theory.analytic)


def test_width_error_figure_is_log_log_with_the_sqrt_reference(theory):
    fig = width_error_figure(theory)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    np.testing.assert_array_equal(fig.data[0].x, [10, 100, 1000])
    np.testing.assert_array_equal(fig.data[0].y, theory.error)
    np.testing.assert_allclose(fig.data[1].y, theory.reference / np.sqrt([10, 100, 1000]))


def test_locality_figures(theory):
    fig = locality_profiles_figure(theory)
    assert len(fig.data) == 2
    for trace, profile, peak in zip(fig.data, theory.profiles, theory.peak):
        np.testing.assert_allclose(trace.y, profile / peak)
        assert max(trace.y) == pytest.approx(1.0, abs=1e-3)
    width = locality_width_figure(theory)
    np.testing.assert_array_equal(width.data[0].y, theory.width_measured)
    np.testing.assert_array_equal(width.data[1].y, theory.width_eq237)
    assert set(theory_figures(theory)) == {"kernel_curves", "width_error", "locality_profiles", "locality_width"}


def _mantissa_125(values) -> bool:
    return all(round(v / 10.0 ** np.floor(np.log10(v) + 1e-9), 6) in (1.0, 2.0, 5.0) for v in values)


def test_methods_figure_log_axes_read_1_2_5():
    # sigma within one decade: plotly's own labels would read "5, 4, 3, 2, 0.1, 9, 8 ...".
    from metricflow.figures.methods import methods_figures
    from metricflow.studies.methods import MethodsConfig, MethodsResult, Series

    def series(name, family, sigma):
        n = len(sigma)
        return Series(name, family, step=np.arange(1, n + 1), seconds=np.geomspace(0.3, 40, n),
                      points=1000 * np.arange(1, n + 1), sigma=np.asarray(sigma), sigma_se=np.full(n, 0.002),
                      sigma_self=np.full(n, np.nan), train_points=1000, parameters=1000, memory_bytes=2**20,
                      memory_estimated=True, test_points=2000)

    result = MethodsResult(MethodsConfig(), (series("delta flow", "kernel", [0.34, 0.33, 0.33]),
                                             series("metric network", "network", [0.2, 0.12, 0.08])),
                           kappa=0.0176, kappa_se=0.0, kappa_exact=True, sigma_fs=0.376, sigma_fs_se=0.004, seconds=9.0)
    figs = methods_figures(result)
    for fig in (figs["time"], figs["points"]):
        for axis in (fig.layout.xaxis, fig.layout.yaxis):
            assert axis.type == "log" and axis.tickvals and _mantissa_125(axis.tickvals)
            labels = [float(t[:-1]) * {"k": 1e3, "M": 1e6}[t[-1]] if t[-1] in "kM" else float(t) for t in axis.ticktext]
            assert labels == pytest.approx(list(axis.tickvals))  # plain numbers, "5k" for 5000
        y = list(fig.layout.yaxis.tickvals)
        assert min(y) <= 0.08 and max(y) >= 0.376 and "0.1" in fig.layout.yaxis.ticktext


def test_every_log_axis_gets_readable_ticks():
    from plotly.subplots import make_subplots

    from metricflow.figures.common import readable_log_axes

    runs = [synthetic_flow(0), synthetic_flow(1, stop_after=2)]
    for fig in (flow_sigma_figure(runs), flow_gain_figure(runs), histogram(np.geomspace(0.01, 30, 500), "w", "w", log_x=True)):
        axes = [a for a in (fig.layout.xaxis, fig.layout.yaxis) if a.type == "log"]
        assert axes and all(a.tickvals and _mantissa_125(a.tickvals) for a in axes)
    fig = make_subplots(rows=1, cols=2)
    fig.add_trace(go.Scatter(x=[1, 2], y=[1, 2]), row=1, col=1)
    fig.add_trace(go.Scatter(x=[0.003, 0.04], y=[1, 2]), row=1, col=2)
    fig.update_xaxes(type="log", row=1, col=2)
    readable_log_axes(fig)
    assert fig.layout.xaxis.tickvals is None and list(fig.layout.xaxis2.tickvals)[:5] == [0.002, 0.005, 0.01, 0.02, 0.05]


def test_a_narrow_log_axis_is_widened_to_two_labelled_ticks():
    from metricflow.figures.common import readable_log_axes

    fig = go.Figure(go.Scatter(x=[1000, 50_000, 1_000_000], y=[0.31, 0.35, 0.39]))
    fig.update_layout(xaxis_type="log", yaxis_type="log")
    readable_log_axes(fig)
    assert list(fig.layout.yaxis.tickvals) == [0.2, 0.3, 0.4, 0.5, 0.7]  # a span under 3x: 3, 4 and 7 too
    assert list(fig.layout.yaxis.ticktext) == ["0.2", "0.3", "0.4", "0.5", "0.7"]
    low, high = fig.layout.yaxis.range
    assert low < np.log10(0.3) < np.log10(0.31) and np.log10(0.39) < np.log10(0.4) < high
    assert fig.layout.xaxis.range is None and "1M" in fig.layout.xaxis.ticktext and "5k" in fig.layout.xaxis.ticktext

    fig = go.Figure(go.Scatter(x=[1, 2], y=[0.33, 0.34]))  # between two ticks: widened to both
    fig.update_layout(yaxis_type="log")
    readable_log_axes(fig)
    low, high = fig.layout.yaxis.range
    assert low < np.log10(0.3) and np.log10(0.4) < high
