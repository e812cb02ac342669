"""The hyperparameter search page under streamlit.testing.v1.AppTest, with a fresh job store."""

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from apptest import open_page

PAGE = "pages/7_Hyperparameter_search.py"


pytestmark = pytest.mark.usefixtures("cache_dir")


def tune_page() -> AppTest:
    return open_page(PAGE)


def tiny_search(at: AppTest) -> AppTest:
    """delta kernel, 100 train and test points, 3 steps, 2 random + 2 optimiser settings."""
    at.number_input(key="tune_n_train_delta_low").set_value(100)
    at.number_input(key="tune_n_train_delta_high").set_value(100)
    at.number_input(key="tune_n_test").set_value(100)
    at.number_input(key="tune_steps").set_value(3)
    at.number_input(key="tune_init").set_value(2)
    at.number_input(key="tune_iterations").set_value(2)
    at.number_input(key="tune_spread").set_value(2)
    return at.run()


def test_search_page_runs_a_tiny_search_in_the_background():
    at = tune_page()
    assert any("Estimate" in c.value for c in at.caption)
    assert any("Choose a kernel" in i.value for i in at.info)
    tiny_search(at)
    assert not at.exception and not at.error
    next(b for b in at.button if b.label == "Run").click().run()
    assert "tune_job" in at.session_state
    end = time.monotonic() + 90
    while not at.metric:
        assert not at.exception, at.exception
        assert not at.error, [e.value for e in at.error]
        assert time.monotonic() < end, "the search did not finish"
        time.sleep(0.25)
        at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["evaluations"] == "4" and metrics["flows reused from the store"] == "0"
    assert float(metrics["best test gain σ₀/σ"]) > 0
    assert "±" in metrics["best setting, fresh points (log10 gain)"]
    table1, evaluations = at.dataframe[0].value, at.dataframe[1].value
    assert list(table1["parameter"]) == ["# Points", "Learning rate"]
    assert list(table1["paper (table 1)"]) == ["1000", "0.3162"]
    assert len(evaluations) == 4 and list(evaluations["phase"]) == ["random"] * 2 + ["optimiser"] * 2
    assert set(evaluations["n_train"]) == {100}
    convergence = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert any(t.get("name") == "best so far" for t in convergence["data"])
    assert len(at.get("download_button")) == 4
    assert at.selectbox(key="tune_update").value == "covariant" and at.selectbox(key="tune_loss_covariant").value == "log"

    # another session with the same settings shows the cached search at once
    again = tiny_search(tune_page())
    assert {m.label: m.value for m in again.metric} == metrics


def test_search_page_shows_bad_ranges_as_an_error():
    at = tune_page()
    at.number_input(key="tune_lr_delta_low").set_value(0.0).run()
    assert not at.exception
    assert any("log scale" in e.value for e in at.error)
    assert not any(b.label == "Run" for b in at.button)
