"""The Dask executor: a sweep on a 2-worker LocalCluster equals the single-process results
exactly; a worker killed mid-job is retried (or failed with a reason) and nothing partial is
stored; cancelling stops a remote job; an unreachable scheduler is one line; the tuner's batch
and the noise sweep fan out. One cluster serves the module (about 5 s to start, plus the JAX
import in each worker on its first job).
"""

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from metricflow.jobs import DaskExecutor, run_many  # noqa: E402
from metricflow.errors import MetricflowError  # noqa: E402
from metricflow.flows.flow import FlowConfig  # noqa: E402
from metricflow.jobs import JobStore, StoreMap, job_key, register, run_job  # noqa: E402

TIMEOUT = 60.0


@dataclass(frozen=True)
class SlowConfig:
    """A test job: log "start", then ``steps`` steps of ``sleep`` s, logging each, reporting progress."""

    log: str
    steps: int = 20
    sleep: float = 0.1


def slow_job(config: SlowConfig, progress) -> dict:
    with open(config.log, "a") as f:
        f.write(f"start {os.getpid()}\n")
    for i in range(config.steps):
        progress(i, config.steps, f"step {i}")
        time.sleep(config.sleep)
        with open(config.log, "a") as f:
            f.write("step\n")
    return {"steps": config.steps, "values": np.arange(config.steps, dtype=np.float64)}


register(SlowConfig, slow_job, 1)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
    c = Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def store(client, tmp_path):
    executor = DaskExecutor(client)
    s = JobStore(tmp_path / "store", executor=executor)
    yield s
    s.close()
    executor.close()


def wait(store, key, timeout=TIMEOUT, until=lambda s: s.state not in ("queued", "running")):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = store.status(key)
        if status is not None and until(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {key[:12]} still {store.status(key)} after {timeout} s")


def small_flows():
    return [FlowConfig(kernel="delta", n_train=100, n_test=100, steps=3, seed=s) for s in range(3)]


def test_sweep_equals_single_process(store):
    configs = small_flows()
    results = run_many(configs, store)
    for config, remote in zip(configs, results):
        local = run_job(config, cache=False)
        for name in ("train_sigma", "test_sigma", "train_nonpd_fraction", "clipped_fraction"):
            np.testing.assert_array_equal(getattr(remote, name), getattr(local, name))
        assert remote.test_gain == local.test_gain and remote.chart == local.chart
        status = store.lookup(config)
        assert status.state == "done" and status.pid == os.getpid()  # the client wrote it
    start = time.monotonic()
    again = run_many(configs, store)  # every piece is cached now
    assert time.monotonic() - start < 2.0
    np.testing.assert_array_equal(again[1].test_sigma, results[1].test_sigma)


def test_killed_worker_is_retried_and_nothing_partial_is_stored(client, store, tmp_path):
    config = SlowConfig(str(tmp_path / "slow.log"), steps=25, sleep=0.1)
    key = store.submit(config)
    status = wait(store, key, until=lambda s: s.state == "running" and s.step >= 3)
    assert "running on tcp://127.0.0.1" in status.message or status.message.startswith("step")
    pids = client.run(os.getpid)  # worker address -> pid
    first_pid = int(Path(config.log).read_text().split()[1])
    assert first_pid in pids.values()
    assert store.result(key) is None
    os.kill(first_pid, signal.SIGKILL)
    final = wait(store, key)
    starts = [line for line in Path(config.log).read_text().splitlines() if line.startswith("start")]
    if final.state == "done":  # retried on the other worker
        assert len(starts) == 2 and int(starts[1].split()[1]) != first_pid
        result = store.result(key)
        assert result["steps"] == 25
        np.testing.assert_array_equal(result["values"], np.arange(25.0))
    else:
        assert final.state == "failed" and final.error, final
        assert store.result(key) is None


def test_cancel_stops_a_remote_job(store, tmp_path):
    config = SlowConfig(str(tmp_path / "cancel.log"), steps=100, sleep=0.05)
    key = store.submit(config)
    wait(store, key, until=lambda s: s.state == "running" and s.step >= 2)
    assert store.cancel(key)
    time.sleep(1.5)
    steps = Path(config.log).read_text().count("step")
    time.sleep(0.5)
    assert Path(config.log).read_text().count("step") == steps < 100  # the worker stopped
    assert store.status(key).state == "cancelled" and store.result(key) is None


def test_unreachable_scheduler_is_one_clear_line(monkeypatch, capsys):
    with pytest.raises(MetricflowError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9: .*run locally"):
        DaskExecutor("tcp://127.0.0.1:9", timeout=1)
    with pytest.raises(MetricflowError, match="tcp://host:8786"):
        DaskExecutor("localhost:8786")
    from metricflow.cli import main as cli
    from metricflow.jobs import dask as dask_executor

    monkeypatch.setattr(dask_executor, "CONNECT_TIMEOUT", 1.0)
    monkeypatch.delenv("METRICFLOW_SCHEDULER", raising=False)
    try:
        assert cli.main(["--scheduler", "tcp://127.0.0.1:9", "sample", "--points", "100"]) == 2
    finally:
        os.environ.pop("METRICFLOW_SCHEDULER", None)
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9") and "\n" not in err


def test_tune_batch_fans_out_and_replays(store):
    from metricflow.studies.tuning import TuneConfig, run_tune

    from metricflow.jobs import canonical_json

    assert '"batch"' not in canonical_json(TuneConfig())  # batch=1 is left out: stored keys stay as they were
    assert '"batch":2' in canonical_json(TuneConfig(batch=2))
    config = TuneConfig(kernel="delta", init_points=2, iterations=2, steps=3, n_test=100, bounds=(("n_train", 100, 100),),
                        spread_seeds=1, batch=2)
    assert job_key(config) != job_key(TuneConfig(kernel="delta", init_points=2, iterations=2, steps=3, n_test=100,
                                                 bounds=(("n_train", 100, 100),), spread_seeds=1))
    remote = run_tune(config, map_configs=StoreMap(store))
    serial = run_tune(config)  # the same batches, evaluated one by one in this process
    assert [e.params for e in remote.evaluations] == [e.params for e in serial.evaluations]
    assert [e.objective for e in remote.evaluations] == [e.objective for e in serial.evaluations]
    assert remote.spread[0].objective == serial.spread[0].objective and len(remote.evaluations) == 4


def test_noise_sweep_runs_kernels_in_parallel(store):
    from metricflow.studies.generalisation import NoiseConfig, run_noise, run_noise_sweep

    results = run_noise_sweep(["delta", "gaussian"], map_configs=StoreMap(store), noise=(0.0, 1e-6), n_train=100, steps=3)
    assert list(results) == ["delta", "gaussian"]
    for kernel, remote in results.items():
        local = run_noise(NoiseConfig(kernel=kernel, noise=(0.0, 1e-6), n_train=100, steps=3))
        np.testing.assert_array_equal(remote.gain, local.gain)
        np.testing.assert_array_equal(remote.distance, local.distance)


def test_a_dask_job_and_an_inline_run_share_the_lease(store, tmp_path):
    config = SlowConfig(str(tmp_path / "log"), steps=10, sleep=0.1)
    key = store.submit(config)  # on the cluster: this client holds the lease
    other = JobStore(store.directory)  # a CLI run in another session, its own handle
    result = run_job(config, store=other)
    assert result["steps"] == 10 and np.array_equal(result["values"], np.arange(10.0))
    assert Path(config.log).read_text().count("start") == 1  # computed once, on the cluster
    assert other.status(key).state == "done"
    other.close()


@dataclass(frozen=True)
class SeriesSlowConfig:
    """A test job that publishes its partial series (the values so far) after each step."""

    steps: int = 30
    sleep: float = 0.1


def series_slow_job(config: SeriesSlowConfig, progress) -> dict:
    from metricflow.progress import panel, publish

    values = []
    for i in range(config.steps):
        values.append(float(i))
        progress(i + 1, config.steps, f"step {i + 1}")
        publish(progress, lambda: {"panels": [panel("values", "step", "v", {"v": (range(len(values)), values)})]})
        time.sleep(config.sleep)
    return {"values": np.asarray(values)}


register(SeriesSlowConfig, series_slow_job, 1)


def test_a_remote_job_publishes_its_partial_series_through_the_client(store):
    """The worker sends the partial series as events; the client keeps it in its store while
    the job runs and drops it with the result."""
    key = store.submit(SeriesSlowConfig())
    seen, end = [], time.monotonic() + TIMEOUT
    while time.monotonic() < end and store.status(key).state in ("queued", "running"):
        partial = store.partial(key)
        if partial is not None:
            seen.append(len(partial["panels"][0]["series"]["v"]["y"]))
        time.sleep(0.1)
    assert store.status(key).state == "done"
    assert len(set(seen)) >= 3 and seen == sorted(seen)  # it grew while it ran
    assert store.partial(key) is None
    assert list(store.result(key)["values"]) == [float(i) for i in range(30)]
