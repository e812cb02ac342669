"""One command reproduces section 3 (metricflow.reproduce): a tiny plan end to end.

The tiny plan runs every experiment at minimal sizes (about 30-40 s on 2 loaded cores, most
of it the TensorFlow import of the ReLU NTK and the JIT of the networks); the second run is
served from the job store.
"""

import json
import math
import time

import pytest

from metricflow.cli.main import main
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
    rows = {n["id"]: n for n in data["numbers"]}
    assert " ± " in rows["noise-gain-0-delta"]["ours_text"] and " ± " in rows["noise-gain-far"]["ours_text"]


def test_fig3_rows_judge_a_curve_like_ours():
    """The fig. 3 rows of the table on a made-up curve of our shape: gain 0.31 / d below the
    train gain 1.8e8, ~1.1 far away; mean nearest distance 0.968 N^-0.184 exactly (eq. 3.7)."""
    import numpy as np

    from metricflow.studies.generalisation import NoiseConfig, NoiseResult, ScalingConfig, ScalingResult, fit_power_law
    from metricflow.reproduce import paper_numbers

    d = np.array([0.0, 1e-8, 1e-6, 1e-4, 1e-2, 0.1, 0.3, 0.85])
    gain = np.where(d > 0, np.minimum(0.31 / np.maximum(d, 1e-300), 1.8e8), 1.8e8)
    gain[-3:] = [2.2, 1.2, 1.1]
    z = np.zeros(len(d))
    noise = NoiseResult(
        config=NoiseConfig(kernel="delta", noise=tuple(range(len(d)))), noise=z, distance=d, distance_std=z,
        nearest_distance=d, gain=gain, gain_se=0.03 * gain, gain_pd=gain, gain_pd_se=0.03 * gain, nonpd_fraction=z,
        nonpd_max=z, diverged_step=np.full(len(d), -1), train_gain=1.8e8, train_gain_se=3e6, test_sigma_fs=z,
        test_sigma_fs_se=z, test_sigma=z, test_sigma_se=z, kappa_ref=0.0176, kappa_ref_se=0.0, steps_done=z.astype(int),
        redrawn=z.astype(int), max_residual=z, outside_chart=z, chart=(3, 4), points_drawn=0, seconds=0.0,
    )
    n = np.array([1e2, 1e3, 1e4, 1e5])
    mu = 0.968 * n**-0.184
    fit = fit_power_law(np.r_[n, n], np.r_[mu * 1.01, mu / 1.01])
    scaling = ScalingResult(ScalingConfig(points=tuple(int(x) for x in n), chart="one"), n.astype(int), mu, mu, mu,
                            mu[None], fit, ("3,4",) * 4, 0.0)
    rows = {r.id: r for r in paper_numbers({"noise-delta": noise, "scaling-one-chart": scaling})}
    assert rows["noise-gain-0-delta"].status == "differs" and rows["noise-gain-0-delta"].ours_text == "1.8e+08 ± 3e+06"
    assert rows["noise-gain-far"].status == "agrees" and rows["noise-gain-far"].ours_text.startswith("1.1 ± 0.033")
    assert rows["gain-at-1e3"].status == "differs"  # ~1.2 at 0.27, the paper ~5
    # gain 100 at 3.1e-3 (the paper's Gaussian 5e-3, not its delta 5e-2); 1e6 at 3.1e-7 -> ~1e35 with (3.7)
    assert rows["extrap-distance-100-delta"].ours == pytest.approx(3.1e-3, rel=1e-6)
    assert rows["extrap-distance-100-delta"].status == "differs"
    assert rows["extrap-points-1e6"].status == "agrees"
    assert rows["extrap-points-1e6"].ours == pytest.approx((3.1e-7 / 0.968) ** (1 / -0.184), rel=1e-3)


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
    assert (full["table1-gaussian"].n_train, full["table1-gaussian"].lr, full["table1-gaussian"].kernel.sigma) == (2500, 0.1583, 30.0)
    assert (full["table1-relu-ntk"].kernel.sigma_w, full["table1-relu-ntk"].kernel.sigma_b) == (5.716, 80.52)
    assert (full["table1-delta"].n_train, full["table1-delta"].lr, full["table1-delta"].steps) == (1000, 0.3162, 50)
    assert (full["fig2"].n_points, full["fig2"].n_clusters, full["fig2"].n_batches) == (1000, 10, 5)
    net = full["network-3x64"]
    assert (net.n_points, net.epochs, net.width, net.depth, net.activation) == (100_000, 50, 64, 3, "relu")
    assert max(full["scaling-one-chart"].points) == 100_000
    # fig. 3 left: the covariant update, test points in the train chart, distances 0 to ~1
    for name in ("noise-delta", "noise-gaussian"):
        c = full[name]
        assert (c.update, c.in_chart, c.n_train, c.steps, c.noise[0], c.noise[-1]) == ("covariant", True, 1000, 50, 0.0, 1.0)
        assert quick[name].update == "covariant" and quick[name].noise[-1] == 1.0
    assert full["stable-delta"].update == "euclidean" and full["stable-delta"].loss == "ultralocal"
    assert quick["network-3x64"].n_points < net.n_points and set(quick) <= set(full)
    assert plan_estimate(plan(ReproduceConfig(quick=True))) < plan_estimate(plan(ReproduceConfig())) <= 3600


def test_home_page_offers_the_latest_report(tiny):
    from apptest import open_app
    from dashboard import HOME

    at = open_app(HOME.path)
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
