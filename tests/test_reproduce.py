"""One command reproduces section 3 (metricflow.reproduce): a tiny plan end to end.

The tiny plan runs every experiment at minimal sizes (about 30-40 s on 2 loaded cores, most
of it the TensorFlow import of the ReLU NTK and the JIT of the networks); the second run is
served from the job store.
"""

import json
import math
import time

import pytest

from metricflow.cli import main
from metricflow.errors import MetricflowError
from metricflow.reproduce import (
    PAPER_NUMBERS,
    SECTIONS,
    ReproduceConfig,
    latest_report,
    plan,
    plan_estimate,
    reproduce,
)

TINY = ReproduceConfig(size="tiny")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    start = time.perf_counter()
    result = reproduce(TINY, out, progress=False)
    return out, result, time.perf_counter() - start


def test_report_holds_every_section_and_a_row_for_every_paper_number(tiny):
    out, result, _ = tiny
    assert not result.failed, result.failed
    page = (out / "report.html").read_text(encoding="utf-8")
    for key in SECTIONS:
        assert f"id='section-{key}'" in page
    for number in PAPER_NUMBERS:
        assert f"id='number-{number.id}'" in page
    assert "tiny test mode" in page
    # Self-contained: plotly.js inline once, no external script; one plot per figure.
    assert "<script src=" not in page and page.count("<script") >= 9
    assert page.count("Plotly.newPlot") >= 8
    data = json.loads((out / "report.json").read_text())
    assert data["mode"] == "tiny" and data["failed"] == []
    assert [n["id"] for n in data["numbers"]] == [n.id for n in PAPER_NUMBERS]
    assert {p["name"] for p in data["pieces"]} == {p.name for p in plan(TINY)}
    assert all(n["status"] in ("agrees", "differs", "claim", "missing") for n in data["numbers"])
    # Every number that the tiny plan can measure is measured.
    measured = {n["id"] for n in data["numbers"] if n["status"] != "missing"}
    assert {"silhouette-batched", "train-gain-delta", "test-gain-delta", "noise-gain-0-delta",
            "fit-exponent", "network-gain", "ntk-shift", "frozen-kernel-test-gain"} <= measured


def test_second_run_is_served_from_the_store(tiny, tmp_path):
    _, first, seconds = tiny
    assert first.computed == len(plan(TINY))
    start = time.perf_counter()
    second = reproduce(TINY, tmp_path, progress=True)  # also draws the bar once
    elapsed = time.perf_counter() - start
    assert second.computed == 0 and all(r.cached for r in second.records)
    assert elapsed < max(0.5 * seconds, 5.0)
    same = lambda a, b: (a is None and b is None) or (a is not None and b is not None and (a == b or math.isnan(a) and math.isnan(b)))  # noqa: E731
    assert all(same(a.ours, b.ours) for a, b in zip(first.numbers, second.numbers))
    assert latest_report()["html"] == str((tmp_path / "report.html").resolve())


def test_cli_bad_out_exits_2_with_one_line(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    for out in (a_file, a_file / "below"):
        assert main(["reproduce", "--out", str(out), "--quick"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and "\n" not in err


def test_config_and_plans():
    with pytest.raises(MetricflowError, match="size must be one of"):
        ReproduceConfig(size="huge")
    with pytest.raises(MetricflowError, match="contradicts"):
        ReproduceConfig(quick=True, size="full")
    assert ReproduceConfig(quick=True).size == "quick" and ReproduceConfig(size="tiny").quick
    full = {p.name: p.config for p in plan(ReproduceConfig())}
    quick = {p.name: p.config for p in plan(ReproduceConfig(quick=True))}
    # The full plan is the paper's: table 1, fig. 2's 1000 points / 10 clusters / 5 batches,
    # the 3 x 64 ReLU network on 1e5 points for 50 epochs, N up to 1e5.
    assert (full["table1-gaussian"].n_train, full["table1-gaussian"].lr, full["table1-gaussian"].sigma) == (2500, 0.1583, 30.0)
    assert (full["table1-relu-ntk"].sigma_w, full["table1-relu-ntk"].sigma_b) == (5.716, 80.52)
    assert (full["table1-delta"].n_train, full["table1-delta"].lr, full["table1-delta"].steps) == (1000, 0.3162, 50)
    assert (full["fig2"].n_points, full["fig2"].n_clusters, full["fig2"].n_batches) == (1000, 10, 5)
    net = full["network-3x64"]
    assert (net.n_points, net.epochs, net.width, net.depth, net.activation) == (100_000, 50, 64, 3, "relu")
    assert max(full["scaling-one-chart"].points) == 100_000
    assert quick["network-3x64"].n_points < net.n_points and set(quick) <= set(full)
    assert plan_estimate(plan(ReproduceConfig(quick=True))) < plan_estimate(plan(ReproduceConfig())) <= 3600


def test_home_page_offers_the_latest_report(tiny):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert any("Latest report" in m.value for m in at.markdown)
    assert len(at.get("download_button")) == 1


def test_parallel_run_gives_the_same_numbers(tiny, tmp_path, monkeypatch):
    """The pieces are independent: run at once on worker processes, in a store of their own,
    they give exactly the numbers of the sequential run."""
    _, sequential, _ = tiny
    monkeypatch.setenv("METRICFLOW_CACHE", str(tmp_path / "store"))
    result = reproduce(TINY, tmp_path / "out", progress=False, parallel=True)
    assert not result.failed, result.failed
    assert not any(r.cached for r in result.records)
    assert [(n.id, n.ours) for n in result.numbers] == [(n.id, n.ours) for n in sequential.numbers]
