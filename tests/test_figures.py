"""Figure builders hold the data of the result they draw."""

import numpy as np
import plotly.graph_objects as go
import pytest

from metricflow.experiments import SampleResult, run_sample
from metricflow.figures import (
    chart_bar,
    eta_histogram,
    figures_html,
    histogram,
    points_figures,
    points_scatter,
    weights_histogram,
)
from metricflow.manifolds import manifold
from metricflow.points import SampleConfig


@pytest.fixture(scope="module")
def synthetic() -> SampleResult:
    rng = np.random.default_rng(0)
    n = 1000
    eta = rng.normal(1.0, 0.3, n)
    return SampleResult(
        config=SampleConfig(manifold("quintic"), n_points=n, seed=0),
        sigma_fs=0.375, kappa=0.0176, kappa_exact=0.017619,
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
