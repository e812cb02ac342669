"""A running job's partial series in the store: kept only while that run runs, never a result.

Jobs run in this process under the store's lease (``run_here``), so these tests start no
worker; tests/test_partial.py checks what each study publishes, tests/test_browser.py that
the page draws it.
"""

import dataclasses
import json
import threading
import time
from dataclasses import dataclass

import pytest

from metricflow.estimates import Estimate
from metricflow.jobs import JobStore, NoExecutor, job_key, register
from metricflow.jobs.execute import PROGRESS_INTERVAL, run_here
from metricflow.jobs.status import RUNNING
from metricflow.progress import panel, publish


@dataclass(frozen=True)
class SeriesConfig:
    """A test job: ``steps`` steps of ``sleep`` s, publishing the squares so far after each."""

    steps: int = 5
    sleep: float = 0.0
    gate: str = ""  # a file: wait while it exists before the last step


def series_job(config: SeriesConfig, progress) -> dict:
    import os

    values = []
    for i in range(config.steps):
        if i == config.steps - 1:
            while config.gate and os.path.exists(config.gate):
                time.sleep(0.02)
        values.append(float(i * i))
        progress(i + 1, config.steps, f"step {i + 1}")
        publish(progress, lambda: {"panels": [panel("squares", "step", "i²", {"s": (range(len(values)), values)})]})
        time.sleep(config.sleep)
    return {"values": values}


def series_estimate(config: SeriesConfig) -> Estimate:
    return Estimate(config.steps * config.sleep, 1000)


register(SeriesConfig, series_job, 1, series_estimate)


def test_publish_is_kept_only_while_the_run_runs(tmp_path):
    store = JobStore(tmp_path, executor=NoExecutor())
    config = SeriesConfig(steps=3)
    key = job_key(config)
    assert not store.publish(key, {"panels": []})  # no such job: refused
    assert store.claim(key, config, 1)
    data = {"panels": [panel("p", "x", "y", {"a": ([0, 1], [1.0, float("nan")])})]}
    assert store.publish(key, data)
    got = store.partial(key)
    assert got == json.loads(json.dumps(data)) and got["panels"][0]["series"]["a"]["y"] == [1.0, None]
    # a partial left by an earlier run of the same key is not this run's
    record = store.status(key)
    store._write(dataclasses.replace(record, started=record.started + 1.0))
    assert store.partial(key) is None
    store._write(record)
    assert store.partial(key) is not None
    assert store.store_result(key, {"values": [0.0]}, 1)
    assert store.partial(key) is None and f"partial/{key}" not in store._cache  # dropped with the end
    assert not store.publish(key, data)  # done: refused
    store.close()


def test_a_failed_or_cancelled_run_leaves_no_partial(tmp_path):
    store = JobStore(tmp_path, executor=NoExecutor())
    for end in ("failed", "cancelled"):
        config = SeriesConfig(steps=2 if end == "failed" else 3)
        key = job_key(config)
        assert store.claim(key, config, 1)
        assert store.publish(key, {"panels": []})
        if end == "failed":
            store.store_failure(key, "ValueError: x", "trace")
        else:
            store.cancel(key)
        assert store.status(key).state == end
        assert store.partial(key) is None and f"partial/{key}" not in store._cache
        assert store.result(key) is None
    store.close()


def test_a_running_job_publishes_through_its_progress(tmp_path):
    """run_here hands the job the store's progress callback: its partial series is readable
    from another store handle while the job runs, and gone with the result."""
    gate = tmp_path / "gate"
    gate.write_text("")
    config = SeriesConfig(steps=4, gate=str(gate))
    key = job_key(config)
    store = JobStore(tmp_path / "store", executor=NoExecutor())
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("result", run_here(config, store)))
    worker.start()
    reader = JobStore(tmp_path / "store", executor=NoExecutor())
    try:
        end = time.monotonic() + 20
        seen = None
        while time.monotonic() < end and seen is None:
            seen = reader.partial(key)
            time.sleep(0.02)
        assert seen is not None and reader.status(key).state == RUNNING
        ys = seen["panels"][0]["series"]["s"]["y"]
        assert ys == [float(i * i) for i in range(len(ys))] and 1 <= len(ys) <= 3
        gate.unlink()
        worker.join(20)
        assert out["result"] == {"values": [0.0, 1.0, 4.0, 9.0]}
        assert reader.partial(key) is None
        assert reader.result(key) == {"values": [0.0, 1.0, 4.0, 9.0]}  # the result, never the partial
    finally:
        reader.close()
        store.close()


def test_the_reporter_throttles_and_stops_a_cancelled_job(tmp_path):
    from metricflow.jobs.execute import _reporter
    from metricflow.jobs.status import JobCancelled

    store = JobStore(tmp_path, executor=NoExecutor())
    config = SeriesConfig(steps=9)
    key = job_key(config)
    assert store.claim(key, config, 1)
    progress = _reporter(store, key)
    calls = []

    def make():
        calls.append(1)
        return {"panels": [], "note": str(len(calls))}

    publish(progress, make)
    publish(progress, make)  # within PROGRESS_INTERVAL: kept back, not built yet
    assert len(calls) == 1 and store.partial(key)["note"] == "1"
    time.sleep(PROGRESS_INTERVAL * 1.5)
    progress(1, 9)  # the next call after the interval writes the one kept back
    assert len(calls) == 2 and store.partial(key)["note"] == "2"
    progress(2, 9)
    assert len(calls) == 2  # nothing kept back: nothing built
    time.sleep(PROGRESS_INTERVAL * 1.5)
    publish(progress, make)
    assert len(calls) == 3 and store.partial(key)["note"] == "3"
    store.cancel(key)
    time.sleep(PROGRESS_INTERVAL * 1.5)
    with pytest.raises(JobCancelled):
        publish(progress, make)
    store.close()


def test_publish_without_a_sink_does_nothing():
    publish(None, lambda: pytest.fail("built for nobody"))
    publish(lambda *a: None, lambda: pytest.fail("built for nobody"))


def test_a_store_map_computes_its_first_piece_here_and_the_rest_on_the_pool(tmp_path):
    """A fan-out job's own process is warm: StoreMap runs the first config there (under its
    lease) while the pool runs the others; results in order, ``each`` once per piece."""
    from metricflow.jobs import LocalProcessExecutor, StoreMap

    executor = LocalProcessExecutor(max_workers=1, max_jobs=7)
    store = JobStore(tmp_path, executor)
    configs = [SeriesConfig(steps=s) for s in (2, 3, 4)]
    seen = []
    try:
        results = StoreMap(store)(series_job, configs, each=lambda i, r: seen.append(i))
        assert [r["values"] for r in results] == [[float(i * i) for i in range(s)] for s in (2, 3, 4)]
        assert sorted(seen) == [0, 1, 2]
        records = [store.status(job_key(c)) for c in configs]
        assert records[0].runner == "inline" and records[0].pid == __import__("os").getpid()
        assert all(r.runner == "worker" and r.pid != records[0].pid for r in records[1:])
    finally:
        executor.close()
        store.close()
