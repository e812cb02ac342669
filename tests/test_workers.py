"""The local executor's warm workers: reused between jobs, never importing neural-tangents
unasked, replaced after a crash, a cancel, N jobs or too much memory, stopped when idle.

A worker takes about 2 s to start (more on busy cores); a job on a warm one, milliseconds.
So the tests of a single worker share one pool (``SHARED``: executors with the same
settings share their workers), which is closed at the end of the module; the others have
pools of their own (distinct settings), closed at the end of each test.
"""

import os
import signal
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from metricflow.errors import MetricflowError
from metricflow.jobs import DONE, JobStore, LocalProcessExecutor, register

TIMEOUT = 40.0
SHARED = dict(max_workers=1, max_jobs=40)


@dataclass(frozen=True)
class ProbeConfig:
    """A test job: ``steps`` steps of ``sleep`` s, then where it ran."""

    log: str
    seed: int = 0
    steps: int = 0
    sleep: float = 0.0


def probe_job(config: ProbeConfig, progress) -> dict:
    for i in range(config.steps):
        progress(i, config.steps, f"step {i}")
        time.sleep(config.sleep)
    with open(config.log, "a") as f:
        f.write(f"{os.getpid()}\n")
    return {"pid": os.getpid(), "neural_tangents": "neural_tangents" in sys.modules}


@pytest.fixture
def make(tmp_path):
    """``make(**settings)``: a store on the pool of ``settings``, closed after the test (but SHARED)."""
    register(ProbeConfig, probe_job, 1)
    opened = []

    def make(**settings):
        executor = LocalProcessExecutor(**settings)
        store = JobStore(tmp_path / "cache", executor)
        opened.append((store, executor, settings))
        return store, executor

    yield make
    for store, executor, settings in opened:
        if settings != SHARED:
            executor.close()
        store.close()


@pytest.fixture(scope="module", autouse=True)
def close_shared():
    yield
    LocalProcessExecutor(**SHARED).close()


def wait(store: JobStore, key: str, timeout: float = TIMEOUT):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = store.status(key)
        if status is not None and status.state not in ("queued", "running"):
            return status
        time.sleep(0.02)
    raise AssertionError(f"job {key[:8]} still {store.status(key)} after {timeout} s")


def running(store: JobStore, key: str, step: int = 2):
    end = time.monotonic() + TIMEOUT
    while (status := store.status(key)).state != "running" or status.step < step:
        assert time.monotonic() < end, status
        time.sleep(0.02)
    return status


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return False
    except OSError:
        return True


def run(store: JobStore, config: ProbeConfig) -> tuple[dict, float]:
    """The result of ``config`` and the seconds from submit to done."""
    start = time.monotonic()
    key = store.submit(config)
    assert wait(store, key).state == DONE
    return store.result(key), time.monotonic() - start


def test_jobs_in_a_row_share_a_warm_worker_without_neural_tangents(tmp_path, make):
    store, executor = make(**SHARED)
    first, cold = run(store, ProbeConfig(str(tmp_path / "log"), seed=1))
    second, warm = run(store, ProbeConfig(str(tmp_path / "log"), seed=2))
    assert second["pid"] == first["pid"] and executor.workers() == [first["pid"]]
    assert warm < 1.5, (cold, warm)
    assert not first["neural_tangents"] and not second["neural_tangents"]


def test_a_killed_worker_fails_its_job_and_is_replaced(tmp_path, make):
    store, executor = make(**SHARED)
    config = ProbeConfig(str(tmp_path / "log"), steps=400, sleep=0.05)
    key = store.submit(config)
    pid = running(store, key).pid
    os.kill(pid, signal.SIGKILL)
    status = wait(store, key)
    assert status.state == "failed" and ("SIGKILL" in status.error or "died" in status.error)
    assert store.result(key) is None and not Path(config.log).exists()  # nothing stored
    result, _ = run(store, ProbeConfig(str(tmp_path / "log"), seed=1))
    assert result["pid"] != pid and executor.workers() == [result["pid"]]


def test_a_task_the_worker_cannot_load_fails_and_the_worker_goes_on(tmp_path, make, monkeypatch):
    ghost = types.ModuleType("ghost_jobs")  # importable here, not in the worker
    ghost.ghost_job = lambda config, progress: {}
    ghost.ghost_job.__module__, ghost.ghost_job.__qualname__ = "ghost_jobs", "ghost_job"
    monkeypatch.setitem(sys.modules, "ghost_jobs", ghost)
    store, _ = make(**SHARED)
    before, _ = run(store, ProbeConfig(str(tmp_path / "log")))
    register(ProbeConfig, ghost.ghost_job, 1)
    try:
        status = wait(store, store.submit(ProbeConfig(str(tmp_path / "log"), seed=1)))
    finally:
        register(ProbeConfig, probe_job, 1)
    assert status.state == "failed" and status.error == (
        "the worker could not load the job: ModuleNotFoundError: No module named 'ghost_jobs'")
    after, _ = run(store, ProbeConfig(str(tmp_path / "log"), seed=2))
    assert after["pid"] == before["pid"]


def test_a_cancelled_job_frees_its_slot_for_the_next(tmp_path, make):
    store, executor = make(**SHARED)
    slow = store.submit(ProbeConfig(str(tmp_path / "slow"), steps=400, sleep=0.05))
    nxt = store.submit(ProbeConfig(str(tmp_path / "next"), seed=1))
    pid = running(store, slow).pid
    assert store.status(nxt).state == "queued"  # waits here for the one worker
    assert store.cancel(slow)
    assert wait(store, nxt).state == DONE
    assert store.result(nxt)["pid"] != pid and store.status(slow).state == "cancelled"
    assert gone(pid)  # the cancelled job's worker
    assert store.result(slow) is None


def test_workers_are_recycled_after_n_jobs_and_above_the_memory_limit(tmp_path, make):
    store, _ = make(max_workers=1, max_jobs=2)
    pids = [run(store, ProbeConfig(str(tmp_path / "log"), seed=s))[0]["pid"] for s in range(3)]
    assert pids[0] == pids[1] != pids[2]
    assert gone(pids[0])  # the retired worker exited
    store, executor = make(max_workers=1, max_jobs=15, max_rss_mb=1)  # every job leaves more than 1 MiB
    pid = run(store, ProbeConfig(str(tmp_path / "log"), seed=3))[0]["pid"]
    end = time.monotonic() + TIMEOUT
    while not gone(pid):  # retired once it has acknowledged the job
        assert time.monotonic() < end
        time.sleep(0.05)
    assert executor.workers() == []


def test_warm_starts_the_workers_and_idle_ones_exit(make):
    _, executor = make(max_workers=2, max_jobs=16, idle_seconds=2.0)
    executor.warm()
    pids = executor.workers()
    assert len(pids) == 2
    executor.warm()  # no more than max_workers
    assert executor.workers() == pids
    end = time.monotonic() + TIMEOUT
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < end
        time.sleep(0.1)
    assert executor.workers() == []


def test_settings_are_checked(monkeypatch):
    monkeypatch.setenv("METRICFLOW_WORKER_JOBS", "ten")
    with pytest.raises(MetricflowError, match=r"\$METRICFLOW_WORKER_JOBS must be a whole number of at least 1, got 'ten'"):
        LocalProcessExecutor()
    monkeypatch.setenv("METRICFLOW_WORKER_JOBS", "3")
    monkeypatch.setenv("METRICFLOW_WORKER_RSS_MB", "500")
    monkeypatch.setenv("METRICFLOW_WORKERS", "1")
    executor = LocalProcessExecutor()
    assert (executor.max_workers, executor.max_jobs, executor.max_rss_mb) == (1, 3, 500)
    assert LocalProcessExecutor(max_workers=2, max_jobs=4).max_jobs == 4  # arguments win
    with pytest.raises(MetricflowError, match="max_workers must be a whole number of at least 1, got 0"):
        LocalProcessExecutor(max_workers=0)


def test_a_task_that_cannot_be_pickled_fails_in_submit(tmp_path, make):
    store, executor = make(max_workers=1, max_jobs=17)
    register(ProbeConfig, lambda config, progress: {}, 1)
    try:
        with pytest.raises(MetricflowError, match="the executor could not start it"):
            store.submit(ProbeConfig(str(tmp_path / "log")))
    finally:
        register(ProbeConfig, probe_job, 1)
    assert executor.workers() == []  # nothing started


def test_a_worker_ends_with_its_parent_even_in_a_job(tmp_path):
    """A server killed while its worker computes: the worker ends too (it does not compute
    on for nobody), and the job's record says its worker died."""
    import subprocess

    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_workers import ProbeConfig, probe_job
from metricflow.jobs import JobStore, LocalProcessExecutor, register
register(ProbeConfig, probe_job, 1)
store = JobStore({str(tmp_path / 'cache')!r}, LocalProcessExecutor(max_workers=1))
key = store.submit(ProbeConfig({str(tmp_path / 'log')!r}, steps=600, sleep=0.1))
while store.status(key).state != "running":
    time.sleep(0.05)
print(key, store.status(key).pid, flush=True)
time.sleep(600)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        key, pid = parent.stdout.readline().split()
        pid = int(pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        from metricflow.jobs.status import _alive  # a zombie counts as gone

        end = time.monotonic() + 10
        while time.monotonic() < end and _alive(pid, 0):
            time.sleep(0.1)
        assert not _alive(pid, 0), "the worker outlived its parent"
        store = JobStore(tmp_path / "cache")
        try:
            assert store.status(key).state == "failed" and store.result(key) is None
        finally:
            store.close()
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_worker_keeps_its_compiled_programs_in_its_store(tmp_path, make):
    """A pool worker keeps what XLA compiles under <store>/compiled/<host>-jax<version>
    (tests/test_compile_cache.py checks that another process reuses it)."""
    from metricflow.networks.models import TrainConfig

    store, _ = make(max_workers=1, max_jobs=1)
    key = store.submit(TrainConfig(model="metric", n_points=300, epochs=1, batch_size=100, seed=3))
    assert wait(store, key, timeout=120).state == DONE
    folders = list((tmp_path / "cache" / "compiled").iterdir())
    assert len(folders) == 1 and any(folders[0].iterdir())
