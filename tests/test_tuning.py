"""Hyperparameter search (metricflow.studies.tuning): the optimiser wrapper, seeds, resuming, CLI."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from metricflow.cli.main import main
from metricflow.errors import MetricflowError
from metricflow.figures import tuning_figures
from metricflow.flows.flow import FlowConfig, run_flow
from metricflow.jobs import JobStore, StoreMap, job_key, job_kind, register, run_job
from metricflow.studies.tuning import (
    FLOOR, TUNE_SCHEMA, Bound, Dimension, TuneConfig, bayes_search, evaluation_seed, evaluations_csv, objective,
    run_tune, spread_seed, table1_comparison,
)

# A search small enough for a test: 100 train and test points (fixed, so JAX compiles once),
# 3 steps, 2 random settings and 4 optimiser iterations of the learning rate.
TINY = dict(kernel="delta", init_points=2, iterations=4, steps=3, n_test=100, bounds=(("n_train", 100, 100),), spread_seeds=2)


@pytest.fixture(scope="module")
def tiny():
    """The TINY search, its flows in the session's job store (the store a TuneConfig job uses)."""
    store = JobStore()
    yield run_tune(TuneConfig(**TINY), map_configs=StoreMap(store)), store
    store.close()


def test_bayes_search_finds_the_optimum_of_a_smooth_function():
    """Maximum of -(x - 0.7)^2 - (log10 y + 1)^2 at x = 0.7, y = 0.1, searched in [-2, 2] x [1e-3, 10]."""
    dims = [Dimension("x", -2.0, 2.0, "linear"), Dimension("y", 1e-3, 10.0, "log")]
    calls = []

    def f(index, params):
        calls.append(index)
        return -(params["x"] - 0.7) ** 2 - (math.log10(params["y"]) + 1.0) ** 2

    trials = bayes_search(f, dims, iterations=12, init_points=5, seed=0)
    assert calls == list(range(17)) and [t.index for t in trials] == calls
    best = max(trials, key=lambda t: t.value)
    assert abs(best.params["x"] - 0.7) < 0.15 and abs(math.log10(best.params["y"]) + 1.0) < 0.15, best.params
    assert best.index >= 5  # found by the optimiser, not by a random setting
    assert all(t.raw["y"] == pytest.approx(math.log10(t.params["y"])) for t in trials)  # searched in log10


def test_dimension_scales():
    assert Dimension("n", 100, 1000, "int").value(math.log10(316.4)) == 316
    assert Dimension("n", 100, 1000, "int").internal() == (2.0, 3.0)
    assert Dimension("b", 0, 1, "bool").value(0.49) is False and Dimension("b", 0, 1, "bool").value(0.5) is True
    with pytest.raises(MetricflowError, match="finite"):
        bayes_search(lambda i, p: math.nan, [Dimension("x", 0, 1)], 0, 1, seed=0)


def test_config_resolves_and_validates_bounds():
    c = TuneConfig(kernel="gaussian", bounds=(("lr", 0.1, 0.1), ("normalise", 0, 0)))
    assert [b.name for b in c.bounds] == ["n_train", "lr", "sigma", "normalise"]
    assert c.fixed() == {"lr": 0.1, "normalise": False}
    assert [d.name for d in c.dimensions()] == ["n_train", "sigma"]
    assert [d.scale for d in c.dimensions()] == ["int", "log"]
    flow = c.flow_config({"n_train": 300, "sigma": 0.05}, seed=7)
    assert (flow.lr, flow.normalise, flow.n_train, flow.kernel.sigma, flow.seed, flow.n_test) == (0.1, False, 300, 0.05, 7, 1000)
    assert TuneConfig(kernel="delta").bounds == (Bound("n_train", 250, 2500), Bound("lr", 0.01, 3.0))
    # the flows use the covariant update with the log loss unless told otherwise
    assert (c.update, c.loss, flow.update, flow.loss) == ("covariant", "log", "covariant", "log")
    e = TuneConfig(kernel="delta", update="euclidean").flow_config({"n_train": 300, "lr": 0.1}, seed=1)
    assert (e.update, e.loss, e.normalise) == ("euclidean", "sigma", False)
    with pytest.raises(MetricflowError, match="unknown update 'newton'"):
        TuneConfig(kernel="delta", update="newton")
    for bounds, message in [
        ((("sigma", 1, 2),), "cannot be searched for the delta kernel"),
        ((("lr", 1, 0.1),), "low <= high"),
        ((("lr", 0, 1),), "log scale"),
        ((("lr", 1),), r"\(name, low, high\)"),
    ]:
        with pytest.raises(MetricflowError, match=message):
            TuneConfig(kernel="delta", bounds=bounds)
    with pytest.raises(MetricflowError, match="search it"):
        TuneConfig(kernel="gaussian", bounds=(("normalise", 0, 0.5),))
    with pytest.raises(MetricflowError, match="unknown kernel"):
        TuneConfig(kernel="rbf")
    with pytest.raises(MetricflowError, match="init points"):
        TuneConfig(init_points=0)
    assert job_kind(TuneConfig()).schema_version == TUNE_SCHEMA


def test_objective_is_log10_test_gain_with_a_floor():
    ok = SimpleNamespace(test_gain=10.0, stopped_reason=None)
    stopped = SimpleNamespace(test_gain=3.0, stopped_reason="stopped at step 4")
    assert objective(ok) == (1.0, False)
    assert objective(stopped) == (pytest.approx(math.log10(3.0)), False)
    assert objective(stopped, diverged="floor") == (FLOOR, True)
    assert objective(SimpleNamespace(test_gain=1e-5, stopped_reason=None)) == (FLOOR, True)
    assert objective(SimpleNamespace(test_gain=math.nan, stopped_reason=None)) == (FLOOR, True)


def test_every_evaluation_draws_new_points(tiny):
    result, store = tiny
    seeds = [e.seed for e in result.evaluations]
    assert seeds == [evaluation_seed(0, i) for i in range(6)]
    assert len(set(seeds)) == 6
    assert [e.seed for e in result.spread] == [spread_seed(0, k) for k in range(2)]
    assert not set(seeds) & {e.seed for e in result.spread}
    # the evaluations are flow jobs in the store, each with its own seed
    for e in result.evaluations:
        flow = store.result(e.key)
        assert flow.config.seed == e.seed and flow.config.lr == e.params["lr"] and flow.config.n_train == 100
        assert e.objective == objective(flow)[0]
    # different seeds, different point sets: the same setting scores differently
    assert len({round(e.objective, 12) for e in result.spread}) == 2


def test_result_reports_best_spread_and_table1(tiny):
    result, _ = tiny
    objectives = result.objectives
    assert result.best_index == int(np.argmax(objectives)) and result.best_objective == objectives.max()
    assert result.best_params == {"n_train": 100, "lr": result.evaluations[result.best_index].params["lr"]}
    assert result.best_gain == pytest.approx(10**result.best_objective)
    assert np.all(np.diff(result.best_so_far) >= 0) and result.best_so_far[-1] == objectives.max()
    spread = [e.objective for e in result.spread]
    assert result.spread_mean == pytest.approx(np.mean(spread)) and result.spread_std == pytest.approx(np.std(spread, ddof=1))
    assert all(e.params == result.evaluations[result.best_index].params for e in result.spread)
    rows = {r["parameter"]: r for r in table1_comparison(result)}
    assert rows["Learning rate"]["paper (table 1)"] == 0.3162 and rows["# Points"]["searched"] == "100"
    d = json.loads(json.dumps(result.to_dict()))
    assert {"best_params", "best_gain", "evaluations", "seconds", "spread_mean", "spread_std"} <= set(d)
    assert len(evaluations_csv(result).splitlines()) == 1 + 6 + 2
    figs = tuning_figures(result)
    best = next(t for t in figs["convergence"].data if t.name == "best so far")
    np.testing.assert_array_equal(best.y, result.best_so_far)


class Stop(Exception):
    pass


def test_an_interrupted_search_resumes_without_recomputing(tmp_path):
    """Stop after 3 evaluations, rerun: the 3 flows come from the store, the rest are computed,
    and the settings are those of an uninterrupted search."""
    computed = []

    def counting_flow(config, progress=None):
        computed.append(job_key(config))
        return run_flow(config, progress)

    kind = job_kind(FlowConfig())
    register(FlowConfig, counting_flow, kind.schema_version, kind.estimate)
    try:
        config = TuneConfig(**{**TINY, "seed": 5})
        store = JobStore(tmp_path / "a")

        def stop_after_three(step, total, message=""):
            if step == 3:
                raise Stop

        with pytest.raises(Stop):
            run_tune(config, stop_after_three, map_configs=StoreMap(store))
        assert len(computed) == 3
        first = list(computed)
        finished = {k: store.status(k).finished for k in first}

        result = run_tune(config, map_configs=StoreMap(store))
        assert len(computed) == 3 + 3 + 2  # the other 3 evaluations and 2 spread reruns
        assert not set(computed[3:]) & set(first)
        assert [e.reused for e in result.evaluations] == [True] * 3 + [False] * 3
        assert [e.key for e in result.evaluations[:3]] == first
        assert {k: store.status(k).finished for k in first} == finished

        fresh = run_tune(config, map_configs=StoreMap(JobStore(tmp_path / "b")))  # the same search, never interrupted
        assert [e.params for e in fresh.evaluations] == [e.params for e in result.evaluations]
        assert [e.key for e in fresh.evaluations] == [e.key for e in result.evaluations]
    finally:
        register(FlowConfig, kind.function, kind.schema_version, kind.estimate)


def test_tune_config_is_a_job(tiny):
    result, store = tiny
    again = run_job(TuneConfig(**TINY), store=store)  # runs the search again: every flow is in the store
    assert again.reused == 8 and [e.objective for e in again.evaluations] == [e.objective for e in result.evaluations]
    assert run_job(TuneConfig(**TINY), store=store).seconds == again.seconds  # now the search itself is cached


def test_cli_tune_json_keys(capsys):
    argv = ["tune", "--kernel", "delta", "--iterations", "1", "--init", "1", "--steps", "2", "--points", "100",
            "--test", "100", "--spread", "1", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"best_params", "best_gain", "evaluations", "seconds"} <= set(out)
    assert set(out["best_params"]) == {"n_train", "lr"} and out["best_params"]["n_train"] == 100
    assert [set(e) >= {"params", "gain", "seed"} for e in out["evaluations"]] == [True, True]
    assert main(argv[:-1] + ["--no-cache"]) == 0
    text = capsys.readouterr().out
    assert "best:" in text and "table 1" in text and "0 reused" in text


@pytest.mark.parametrize("argv, message", [
    (["--kernel", "rbf", "--iterations", "1"], "unknown kernel"),
    (["--kernel", "delta", "--iterations", "-1"], "iterations must be at least 0"),
    (["--kernel", "delta", "--iterations", "1", "--lr", "1,0.1"], "low <= high"),
    (["--kernel", "delta", "--iterations", "1", "--sigma", "1"], "cannot be searched"),
    (["--kernel", "gaussian", "--iterations", "1", "--normalise", "maybe"], "search, on or off"),
    (["--kernel", "delta", "--iterations", "1", "--points", "1,2,3"], "LOW,HIGH"),
])
def test_cli_tune_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert main(["tune", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
