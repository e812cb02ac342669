"""Dashboard pages under streamlit.testing.v1.AppTest, with a fresh result store each test."""

import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from apptest import ROOT, TIMEOUT, figure, open_app, open_page, run_until_done, values, wait_for
from dashboard import HOME

pytestmark = pytest.mark.usefixtures("cache_dir")


def points_page() -> AppTest:
    return open_page("pages/1_Points.py")


def test_home_page_renders_and_lists_cached_results():
    at = open_app(HOME.path)
    text = " ".join(m.value for m in at.markdown)
    assert "metric-NTK" in text and "Points" in text and "Kernel flow" in text
    assert any("No results yet" in i.value for i in at.info)


def test_points_page_runs_a_small_job_end_to_end(cache_dir):
    at = points_page()
    assert any("Estimate" in c.value for c in at.caption)
    at.number_input[0].set_value(200)
    at.button[0].click().run()  # Run: submits and returns at once
    assert "points_job" in at.session_state
    run_until_done(at)
    metrics = {m.label: m.value for m in at.metric}
    s, _, se = metrics["σ of g_FS (reference κ)"].partition(" ± ")
    assert 0 < float(s) < 1 and 0 < float(se) < 0.1
    assert metrics["reference κ"] == "0.017619"
    assert metrics["points · time"].startswith("200 ·")
    eta = figure(at, 0)
    assert eta["data"][0]["type"] == "bar" and values(eta["data"][0]["y"]).sum() == 200
    charts = figure(at, 2)
    assert values(charts["data"][0]["y"]).sum() == 200
    assert len(at.get("download_button")) == 3

    # another session with the same settings: the cached result shows at once
    again = points_page()
    again.number_input[0].set_value(200).run()
    assert {m.label: m.value for m in again.metric} == metrics

    home = open_app(HOME.path)
    rows = home.dataframe[0].value
    assert list(rows["state"]) == ["done"] and "n_points: 200" in rows["settings"][0]


@pytest.mark.parametrize("psi, message", [("abc", "psi must be a complex number"), ("1", "singular locus")])
def test_points_page_shows_bad_input_as_an_error(psi, message):
    at = points_page()
    at.text_input[0].set_value(psi).run()
    assert not at.exception
    assert any(message in e.value for e in at.error)
    assert not at.button  # nothing to run


def test_points_page_cancels_a_running_job():
    at = points_page()
    at.number_input[0].set_value(300_000)
    at.button[0].click().run()
    end = time.monotonic() + TIMEOUT
    while not at.get("progress"):
        assert time.monotonic() < end, "no progress bar"
        time.sleep(0.2)
        at.run()
    cancel = next(b for b in at.button if b.label == "Cancel")
    cancel.click().run()
    assert not at.exception
    assert any("cancelled" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not at.get("progress") and not at.metric


# ---- kernel flow ------------------------------------------------------------------------


def flow_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / "2_Kernel_flow.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def small_flow(at: AppTest, seed: int = 0) -> AppTest:
    """Delta kernel, 100 + 100 points, 5 steps at a learning rate that does not blow up."""
    at.selectbox(key="flow_kernel").set_value("delta").run()
    at.number_input(key="flow_n_train_delta").set_value(100)
    at.number_input(key="flow_n_test_delta").set_value(100)
    at.number_input(key="flow_steps_delta").set_value(5)
    at.number_input(key="flow_lr_delta").set_value(1e-4)
    at.number_input(key="flow_seed_delta").set_value(seed)
    return at


def test_kernel_flow_page_runs_and_overlays_small_flows(cache_dir):
    from metricflow.jobs import JobStore

    at = small_flow(flow_page())
    assert any("Estimate" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Run").click().run()
    run_until_done(at)
    key = at.session_state["flow_job"]
    result = JobStore(cache_dir).result(key)
    assert result.config.n_train == 100 and result.config.steps == 5 and result.stopped_reason is None
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["steps done"] == "5 of 5"
    assert metrics["train gain σ₀/σ"] == f"{result.train_gain:.3g} ± {result.train_gain_se:.2g}"
    assert result.config.update == "covariant" and result.config.loss == "log"
    table = at.dataframe[0].value
    assert list(table["set"]) == ["train", "train", "test", "test"] and "σ self-normalised" in table.columns
    sigma = figure(at, 0)
    assert sigma["layout"]["yaxis"]["type"] == "log"
    assert len(sigma["data"]) == 2
    np.testing.assert_allclose(values(sigma["data"][0]["y"]), result.train_sigma)
    np.testing.assert_allclose(values(sigma["data"][1]["y"]), result.test_sigma)
    gain = figure(at, 1)
    np.testing.assert_allclose(values(gain["data"][0]["y"]), [result.train_gain])
    nonpd = figure(at, 2)
    np.testing.assert_allclose(values(nonpd["data"][0]["y"]), result.nonpd_fraction)
    assert len(at.get("download_button")) == 4

    # a second run with another seed is overlaid on the first
    small_flow(at, seed=1)
    next(b for b in at.button if b.label == "Run").click().run()
    run_until_done(at)
    end = time.monotonic() + TIMEOUT
    while len(figure(at, 0)["data"]) < 4:
        assert time.monotonic() < end, "the second run was not overlaid"
        time.sleep(0.25)
        at.run()
    assert at.session_state["flow_runs"][0] == key and len(at.session_state["flow_runs"]) == 2
    assert len(at.dataframe[1].value) == 2
    next(b for b in at.button if b.label == "Clear comparison").click().run()
    assert not at.exception
    assert len(figure(at, 0)["data"]) == 2 and len(at.session_state["flow_runs"]) == 1


def test_kernel_flow_page_resets_defaults_when_the_kernel_changes():
    from metricflow.flows.flow import TABLE1

    at = flow_page()
    assert at.number_input(key="flow_lr_delta").value == TABLE1["delta"]["lr"]
    at.number_input(key="flow_lr_delta").set_value(1e-3).run()
    at.selectbox(key="flow_kernel").set_value("gaussian").run()
    assert not at.exception
    assert at.number_input(key="flow_lr_gaussian").value == TABLE1["gaussian"]["lr"]
    assert at.number_input(key="flow_sigma_gaussian").value == TABLE1["gaussian"]["sigma"]
    assert at.number_input(key="flow_n_train_gaussian").value == TABLE1["gaussian"]["n_train"]
    at.selectbox(key="flow_kernel").set_value("relu-ntk").run()
    assert at.number_input(key="flow_sigma_b_relu-ntk").value == TABLE1["relu-ntk"]["sigma_b"]
    at.selectbox(key="flow_kernel").set_value("delta").run()
    assert at.number_input(key="flow_lr_delta").value == TABLE1["delta"]["lr"]


def test_kernel_flow_page_defaults_are_table_1_with_the_covariant_update(cache_dir):
    """The page's default flow is FlowConfig(kernel="delta") (table 1, covariant, log loss) and runs;
    the preset switches to table 1 as printed with the coordinate update, and says why it diverges."""
    from metricflow.flows.flow import FlowConfig
    from metricflow.jobs import JobStore, job_key

    at = flow_page()
    assert at.selectbox(key="flow_update").value == "covariant"
    assert at.selectbox(key="flow_loss_covariant").value == "log"
    assert at.checkbox(key="flow_normalise_covariant_delta").value is True
    assert any("diverge" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Run").click().run()
    run_until_done(at)
    key = at.session_state["flow_job"]
    assert key == job_key(FlowConfig(kernel="delta"))
    result = JobStore(cache_dir).result(key)
    assert result.stopped_reason is None and result.train_gain > 1e6
    at.selectbox(key="flow_kernel").set_value("gaussian").run()
    next(b for b in at.button if b.label == "Table 1 as printed, coordinate update").click().run()
    assert not at.exception and not at.warning
    assert at.selectbox(key="flow_update").value == "euclidean"
    assert at.selectbox(key="flow_loss_euclidean").value == "sigma"
    assert at.checkbox(key="flow_normalise_euclidean_gaussian").value is False
    assert at.number_input(key="flow_lr_gaussian").value == 0.1583
    # a diverged flow shows the step and no gain
    at.selectbox(key="flow_kernel").set_value("delta").run()
    next(b for b in at.button if b.label == "Table 1 as printed, coordinate update").click().run()
    at.number_input(key="flow_n_train_delta").set_value(100)
    at.number_input(key="flow_n_test_delta").set_value(30)
    at.number_input(key="flow_lr_delta").set_value(30.0).run()
    next(b for b in at.button if b.label == "Run").click().run()
    wait_for(at, lambda a: any(w.value.startswith("diverged at step") for w in a.warning), 150)
    result = JobStore(cache_dir).result(at.session_state["flow_job"])
    assert result.config.update == "euclidean" and result.diverged_step is not None
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["train gain σ₀/σ"] == "diverged" and metrics["test gain σ₀/σ"] == "diverged"
    assert any(w.value.startswith(f"diverged at step {result.diverged_step}:") for w in at.warning)


def test_kernel_flow_page_refuses_a_dense_kernel_that_does_not_fit():
    at = flow_page()
    at.selectbox(key="flow_kernel").set_value("gaussian").run()
    at.number_input(key="flow_n_train_gaussian").set_value(30_000).run()
    assert not at.exception
    assert any("over the limit" in e.value for e in at.error), [e.value for e in at.error]
    assert not any(b.label == "Run" for b in at.button)


# ---- theory lab -------------------------------------------------------------------------


def test_theory_lab_runs_small_sizes_end_to_end(cache_dir):
    from metricflow.jobs import JobStore

    at = AppTest.from_file(str(ROOT / "pages" / "3_Theory_lab.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    assert any("Perelman" in m.value and "(2.42)" in m.value for m in at.markdown)
    at.selectbox[0].set_value(100)
    at.number_input[2].set_value(2)  # draws per width
    at.text_input[0].set_value("2, 20")
    next(b for b in at.button if b.label == "Run").click().run()
    run_until_done(at)
    result = JobStore(cache_dir).result(at.session_state["theory_job"])
    assert result.config.widths == (10, 32, 100) and result.config.trials == 2
    curves = figure(at, 0)
    assert len(curves["data"]) == 4
    np.testing.assert_allclose(values(curves["data"][-1]["y"]), result.analytic)
    np.testing.assert_allclose(values(curves["data"][0]["y"]), result.empirical[0])
    error = figure(at, 1)
    assert error["layout"]["xaxis"]["type"] == "log" and error["layout"]["yaxis"]["type"] == "log"
    np.testing.assert_allclose(values(error["data"][0]["y"]), result.error)
    profiles = figure(at, 2)
    np.testing.assert_allclose(values(profiles["data"][1]["y"]), result.profiles[1] / result.peak[1])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["mass ∫Θ dx"] == "1.0000" and metrics["width / (√d/σ_w)"] == "1.0000"
    assert len(at.get("download_button")) == 4


def test_theory_lab_shows_bad_input_as_an_error():
    at = AppTest.from_file(str(ROOT / "pages" / "3_Theory_lab.py"), default_timeout=TIMEOUT)
    at.run()
    at.text_input[0].set_value("1, x").run()
    assert not at.exception
    assert any("σ_w values must be numbers" in e.value for e in at.error)
