"""The Generalisation page under streamlit.testing.v1.AppTest, small sizes, fresh result store."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from apptest import open_page, run_until_done

PAGE = "pages/6_Generalisation.py"


pytestmark = pytest.mark.usefixtures("cache_dir")


def page() -> AppTest:
    return open_page(PAGE)


def small(at: AppTest) -> AppTest:
    at.number_input[0].set_value(80)  # train points
    at.text_input[0].set_value("0, 1e-7, 1e-4")  # noise variances
    at.number_input[1].set_value(10)  # steps
    at.selectbox[0].set_value(1000)  # largest N
    return at


def test_generalisation_page_runs_small_jobs_end_to_end():
    at = small(page())
    assert any("Estimate" in c.value and "3 jobs" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Run").click().run()
    assert len(at.session_state["generalisation_jobs"]) == 3
    run_until_done(at)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["fit exponent b (paper −0.184)"].split()[0]) < 0
    for kernel in ("delta", "gaussian"):
        gain, err = (float(x) for x in metrics[f"{kernel} train gain (covariant)"].split(" ± "))
        assert gain > 1 and 0 < err < gain
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert [len(c["data"]) for c in charts] == [2, 5]  # two kernels; max, mean, min, fit, paper
    assert charts[0]["layout"]["yaxis"]["type"] == "log" and charts[1]["layout"]["xaxis"]["type"] == "log"
    assert all(len(trace["error_y"]["array"]) == 2 for trace in charts[0]["data"])  # gains with errors
    assert any("reference κ" in c.value and "(exact)" in c.value for c in at.caption)
    levels = at.dataframe[0].value
    assert list(levels["noise v"]) == ["0", "1e-07", "0.0001"] * 2
    assert set(levels["non-PD fraction"]) == {"0.000"} and all(" ± " in g for g in levels["test gain"])
    table = at.dataframe[1].value
    assert list(table["kernel"]) == ["delta", "delta", "gaussian", "gaussian"]
    assert list(table["target gain"]) == ["100", "1e+06"]*2
    assert set(table["status"]) <= {"interpolated", "extrapolated", "unreachable"}
    assert (table["status"][table["target gain"] == "1e+06"] == "unreachable").all()  # above the train gain
    assert len(at.get("download_button")) == 2

    # another session with the same settings: the cached results show at once
    again = small(page())
    again.run()
    assert {m.label: m.value for m in again.metric} == metrics

    # the update rule and the chart rule reach the configs
    other = small(page())
    other.radio[0].set_value("euclidean")
    other.checkbox[0].uncheck()
    other.checkbox[1].check()
    next(b for b in other.button if b.label == "Run").click().run()
    run_until_done(other)
    configs = other.session_state["generalisation_configs"][:-1]
    assert [(c.update, c.in_chart, c.loss, c.precision) for c in configs] == [("euclidean", False, "ultralocal", "float32")] * 2


@pytest.mark.parametrize(
    "widget, value, message",
    [("text", "0, abc", "noise variances must be numbers"), ("kernels", [], "choose at least one kernel"),
     ("targets", "x", "target gains must be numbers")],
)
def test_generalisation_page_shows_bad_input_as_an_error(widget, value, message):
    at = page()
    if widget == "text":
        at.text_input[0].set_value(value)
    elif widget == "targets":
        at.text_input[1].set_value(value)
    else:
        at.multiselect[0].set_value(value)
    at.run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not any(b.label == "Run" for b in at.button)
