"""The NTK evolution page under streamlit.testing.v1.AppTest, with tiny jobs."""


import pytest
from streamlit.testing.v1 import AppTest

from apptest import ROOT, TIMEOUT, wait_for


pytestmark = pytest.mark.usefixtures("cache_dir")


def number(at: AppTest, label: str):
    return next(n for n in at.number_input if n.label == label)


def test_ntk_page_trains_sweeps_and_flows(cache_dir):
    at = AppTest.from_file(str(ROOT / "pages" / "5_NTK_evolution.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    assert any("Estimate" in c.value for c in at.caption)
    for label, value in [("Points", 500), ("Epochs", 2), ("Width", 8), ("Depth", 1), ("NTK probe points", 4),
                         ("NTK every (epochs)", 1), ("Points ", 500), ("Epochs ", 1), ("Flow train points", 8),
                         ("Flow test points", 8), ("Flow steps", 3)]:
        number(at, label).set_value(value)
    at.text_input[0].set_value("8, 64")
    at.run()
    assert not at.error, [e.value for e in at.error]
    for key in ("ntk_train_run", "ntk_sweep_run", "ntk_kernel_run", "ntk_classical_run"):
        at.button(key=key).click().run()
        assert not at.exception, at.exception
    wait_for(at, lambda a: any(m.label == "gain" for m in a.metric) and any(m.label == "test gain, trained Θ" for m in a.metric)
             and any(m.label == "W1 of the spectrum to step 0" for m in a.metric)
             and len(a.get("plotly_chart")) >= 8 and not any("still computing" in c.value for c in a.caption),
             timeout=400)  # four jobs, each imports JAX (and TensorFlow); no partial series left
    labels = {m.label for m in at.metric}
    assert {"validation σ before", "validation σ after", "gain", "test gain, initial Θ"} <= labels
    # sigma by epoch and time, spectrum, wasserstein, sweep, trained kernel, the classical kernel's spectrum and movement
    assert len(at.get("plotly_chart")) == 8
    import json

    spectrum = json.loads(at.get("plotly_chart")[6].proto.spec)
    assert [t["name"] for t in spectrum["data"]][0] == "step 0 (t = 0)" and len(spectrum["data"]) == 2
    sine = next(m for m in at.metric if m.label == "sin ∠ of its range to step 0")
    assert float(sine.value) > 0.01  # the default: Kähler–Ricci in the algebraic family, whose kernel turns
    buttons = at.get("download_button")
    assert len(buttons) == 3  # summary, figures, trained model
    assert buttons[2].proto.label == "Trained model (.npz)"
    assert {"validation σ after", "self-normalised σ after"} <= {m.label for m in at.metric}
    after = next(m for m in at.metric if m.label == "validation σ after")
    assert "±" in after.value

    # bad input shows an error, not a traceback
    at.text_input[0].set_value("8, eight")
    at.run()
    assert not at.exception
    assert any("widths" in e.value for e in at.error)
