"""The job runner: keys, dedupe, errors and retry, cancellation, bad cache entries, restarts.

The test job kind ``CountConfig`` appends a line to a log file each time it runs, so a test
can count executions. Workers are separate processes (about 1-2 s each to start).
"""

import dataclasses
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from metricflow.errors import MetricflowError
from metricflow.jobs import DONE, JobStatus, JobStore, LocalProcessExecutor, canonical_json, estimate, job_key, register, run_job
from metricflow.estimates import Estimate
from metricflow.geometry.manifolds import manifold
from metricflow.geometry.points import SampleConfig

TIMEOUT = 40.0


@dataclass(frozen=True)
class CountConfig:
    """A test job: log a line, maybe fail or crash, take ``steps`` steps of ``sleep`` s."""

    log: str
    value: float = 1.0
    steps: int = 0
    sleep: float = 0.0
    fail_while: str = ""  # raise while this file exists
    crash: bool = False  # kill the worker with SIGKILL


def count_job(config: CountConfig, progress) -> dict:
    with open(config.log, "a") as f:
        f.write("start\n")
    if config.fail_while and os.path.exists(config.fail_while):
        raise ValueError("asked to fail\nsecond line of the message")
    if config.crash:
        os.kill(os.getpid(), signal.SIGKILL)
    for i in range(config.steps):
        progress(i, config.steps, f"step {i}")
        with open(config.log, "a") as f:
            f.write("step\n")
        time.sleep(config.sleep)
    return {"value": 2 * config.value}


def count_estimate(config: CountConfig) -> Estimate:
    return Estimate(config.steps * config.sleep, 1000 if config.value < 1e6 else 10**18)


def runs(config: CountConfig) -> int:
    path = Path(config.log)
    return path.read_text().count("start") if path.exists() else 0


def wait(store: JobStore, key: str, timeout: float = TIMEOUT) -> JobStatus:
    """Poll until the job is no longer queued or running."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = store.status(key)
        if status is not None and status.state not in ("queued", "running"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {key[:8]} still {store.status(key)} after {timeout} s")


@pytest.fixture
def store(tmp_path):
    register(CountConfig, count_job, 1, count_estimate)
    s = JobStore(tmp_path / "cache", LocalProcessExecutor(max_workers=2))
    yield s
    s.close()


# ---- keys -------------------------------------------------------------------------------


def test_canonical_json_types_complex_and_numpy():
    c = SampleConfig(manifold("quartic", 0.5 + 0.25j), n_points=100, seed=3)
    text = canonical_json(c)
    assert '"__type__":"metricflow.geometry.points.SampleConfig"' in text
    assert '"psi":[0.5,0.25]' in text
    assert text == canonical_json(SampleConfig(manifold("quartic", 0.5 + 0.25j), np.int64(100), 3))
    assert job_key(c) == job_key(SampleConfig(manifold("quartic", 0.5 + 0.25j), 100, 3))
    assert job_key(c) != job_key(SampleConfig(manifold("quartic", 0.5 + 0.25j), 100, 4))
    assert job_key(c, 1) != job_key(c, 2)
    assert len(job_key(c)) == 64


def test_unregistered_config_is_refused():
    @dataclass(frozen=True)
    class Unknown:
        x: int = 1

    with pytest.raises(MetricflowError, match="no job kind is registered for Unknown"):
        job_key(Unknown())


# ---- synchronous ------------------------------------------------------------------------


def test_run_job_caches_unless_told_not_to(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"), value=3.0)
    assert run_job(config, store=store) == {"value": 6.0}
    assert run_job(config, store=store) == {"value": 6.0}
    assert runs(config) == 1
    assert store.status(job_key(config)).state == DONE
    assert run_job(config, cache=False) == {"value": 6.0}
    assert runs(config) == 2


def test_sample_job_kind(tmp_path):
    config = SampleConfig(manifold("cubic"), n_points=300, seed=1)
    seconds, nbytes = estimate(config)
    assert seconds > 0 and nbytes > 0
    result = run_job(config, store=JobStore(tmp_path / "c"))
    assert result.weights.shape == (300,) and result.eta.shape == (300,)
    assert result.abs_z.shape == (300, 3) and result.chart_counts.sum() == 300
    assert 0 < result.sigma_fs < 1
    assert result.kappa == pytest.approx(result.kappa_exact, rel=0.2)


def test_memory_estimate_refuses(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"), value=1e9)
    with pytest.raises(MetricflowError, match="needs about"):
        store.submit(config)
    assert store.status(job_key(config)) is None and runs(config) == 0


# ---- background -------------------------------------------------------------------------


def test_concurrent_identical_submissions_compute_once(tmp_path):
    register(CountConfig, count_job, 1, count_estimate)
    config = CountConfig(str(tmp_path / "log"), steps=3, sleep=0.05)
    stores = [JobStore(tmp_path / "cache") for _ in range(4)]  # four sessions, own connections
    barrier = threading.Barrier(len(stores))
    keys = []

    def session(s):
        barrier.wait()
        keys.append(s.submit(config))

    threads = [threading.Thread(target=session, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1
    assert wait(stores[0], keys[0]).state == DONE
    assert all(s.result(keys[0]) == {"value": 2.0} for s in stores)
    stores[1].submit(config)  # done: returns at once, no new run
    assert runs(config) == 1
    for s in stores:
        s.close()


def test_failure_keeps_error_and_retry_works(tmp_path, store):
    flag = tmp_path / "fail"
    flag.touch()
    config = CountConfig(str(tmp_path / "log"), fail_while=str(flag))
    key = store.submit(config)
    status = wait(store, key)
    assert status.state == "failed"
    assert status.error == "ValueError: asked to fail"
    assert "Traceback" in store.traceback(key) and "count_job" in store.traceback(key)
    assert store.result(key) is None
    flag.unlink()
    assert store.submit(config) == key  # a retry
    assert wait(store, key).state == DONE
    assert store.result(key) == {"value": 2.0} and store.traceback(key) == ""
    assert runs(config) == 2


def test_cancel_stops_the_work(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"), steps=200, sleep=0.05)
    key = store.submit(config)
    end = time.monotonic() + TIMEOUT
    while store.status(key).state != "running" or store.status(key).step < 2:
        assert time.monotonic() < end, store.status(key)
        time.sleep(0.05)
    pid = store.status(key).pid
    assert store.cancel(key)
    assert store.status(key).state == "cancelled"
    time.sleep(0.5)
    steps = Path(config.log).read_text().count("step")
    time.sleep(0.5)
    assert Path(config.log).read_text().count("step") == steps < 200
    with pytest.raises(OSError):  # the worker is gone
        os.kill(pid, 0)
    assert store.result(key) is None
    assert not store.cancel(key)  # nothing left to cancel


def test_killed_worker_is_marked_failed(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"), crash=True)
    key = store.submit(config)
    status = wait(store, key)
    assert status.state == "failed"
    assert "SIGKILL" in status.error or "died" in status.error


def test_dead_worker_seen_by_another_process_is_marked_failed(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"))
    key = job_key(config)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store._write(JobStatus(key, "CountConfig", canonical_json(config), 1, state="running", pid=gone.pid, started=time.time()))
    status = store.status(key)
    assert status.state == "failed" and "died" in status.error


def test_corrupt_result_is_recomputed(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"), value=5.0)
    key = store.submit(config)
    assert wait(store, key).state == DONE
    store._cache.set(f"result/{key}", b"not a pickle")
    assert store.result(key) is None  # never shown wrong
    assert store.status(key).state == "failed"
    store.submit(config)
    assert wait(store, key).state == DONE
    assert store.result(key) == {"value": 10.0}
    assert runs(config) == 2


def test_older_schema_is_recomputed(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"), value=1.5)
    key = store.submit(config)
    assert wait(store, key).state == DONE
    # a result slot written by older code under the same key
    store._cache.set(f"result/{key}", pickle.dumps((0, {"value": "old"})))
    assert store.result(key) is None
    assert wait(store, store.submit(config)).state == DONE
    assert store.result(key) == {"value": 3.0}
    # a new schema version of the kind: a new key, computed again
    register(CountConfig, count_job, 2, count_estimate)
    try:
        key2 = store.submit(config)
        assert key2 != key
        assert wait(store, key2).state == DONE
    finally:
        register(CountConfig, count_job, 1, count_estimate)
    assert runs(config) == 3


def test_restart_sees_finished_result(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"), value=21.0)
    key = store.submit(config)
    assert wait(store, key).state == DONE
    code = (
        "import sys; from metricflow.jobs.store import JobStore; "
        f"s = JobStore({str(store.directory)!r}); print(s.status({key!r}).state, s.result({key!r}))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.stdout.strip() == "done {'value': 42.0}", out.stderr
    assert [j.key for j in JobStore(store.directory).jobs()] == [key]


# ---- stored results round-trip exactly --------------------------------------------------


def same(a, b, where="result") -> None:
    """Assert that a and b are the same value: types, array dtypes and shapes, NaNs, -0.0."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (float, complex, np.floating, np.complexfloating)):
        assert np.array(a).tobytes() == np.array(b).tobytes(), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def small_configs() -> list:
    """One small config of every registered job kind."""
    from metricflow.studies.clustering import ClusterConfig, ClusterFlowConfig
    from metricflow.flows.donaldson import DonaldsonConfig
    from metricflow.studies.moduli import DonaldsonSweepConfig
    from metricflow.flows.flow import FlowConfig
    from metricflow.studies.generalisation import NoiseConfig, ScalingConfig
    from metricflow.studies.feature_learning import TrainedKernelConfig, WidthSweepConfig
    from metricflow.networks.family import FamilyTrainConfig
    from metricflow.networks.models import TrainConfig
    from metricflow.geometry.reference import KappaConfig
    from metricflow.studies.theory import TheoryConfig
    from metricflow.studies.methods import MethodsConfig
    from metricflow.studies.tuning import TuneConfig
    from metricflow.flows.classical import ClassicalFlowConfig

    flow = FlowConfig(kernel="delta", n_train=100, n_test=100, steps=3, lr=0.05)
    return [
        SampleConfig(manifold("quintic"), n_points=200, seed=3),
        KappaConfig(manifold("quintic", 0.5 + 0.1j), n_points=300, seed=3),
        flow,
        TheoryConfig(d=4, widths=(10, 30), trials=2, n_inputs=5, locality_sigma_w=(2.0,)),
        NoiseConfig(kernel="delta", noise=(0.0, 1e-4), n_train=100, steps=3),
        ScalingConfig(points=(100, 200), chart="one"),
        TuneConfig(kernel="delta", init_points=1, iterations=1, steps=3, n_test=100, bounds=(("n_train", 100, 100),),
                   spread_seeds=1),
        ClusterConfig(n_points=200, n_clusters=3, n_batches=2, methods=("batched", "birch")),
        ClusterFlowConfig(flow=flow, method="batched", n_clusters=2, n_batches=2),
        TrainConfig(n_points=200, epochs=2, width=8, depth=1, ntk_probe=3, ntk_every=1, ricci=False),
        FamilyTrainConfig(psis=(0, 0.5), n_points=100, epochs=1, width=8, depth=1),
        WidthSweepConfig(widths=(8, 16), n_points=200, epochs=1, ntk_probe=3),
        TrainedKernelConfig(train=TrainConfig(n_points=200, epochs=1, width=8, depth=1, ricci=False),
                            n_train=20, n_test=20, steps=3),
        DonaldsonConfig(ks=(1, 2), n_points=300, n_test=200, optimise=True, opt_steps=3),
        DonaldsonSweepConfig(psis=(0, 0.5), k=2, n_points=300, n_test=200, phi_epochs=1, phi_points=100, family=True),
        MethodsConfig.preset("quick", n_test=100, k_max=1, donaldson_points=300, optimise=False, flow_train=40,
                             flow_steps=2, network_points=200, epochs=1, phi=False, trained_kernel=False),
        ClassicalFlowConfig(manifold("quintic"), k=2, n_points=300, n_test=200, n_steps=2),
    ]


class ThreadExecutor:
    """Runs each task in a thread of this process (no JAX import per worker): for fan-outs."""

    def submit(self, task) -> None:
        from metricflow.jobs import execute

        threading.Thread(target=execute, args=(task,), daemon=True).start()

    def cancel(self, key, pid, pid_start) -> None:
        pass


def test_every_registered_kind_round_trips_exactly(tmp_path, monkeypatch):
    from metricflow.jobs import dask as dask_executor
    from metricflow.jobs import decode_result, encode_result, job_kind, kinds

    monkeypatch.setattr(dask_executor, "default_executor", ThreadExecutor)  # tuning and width sweeps fan out

    configs = small_configs()
    builtin = {t for t in kinds() if t.__module__.startswith("metricflow.")}
    assert {type(c) for c in configs} == builtin, "a kind without a test config"
    store = JobStore(tmp_path / "cache")
    for config in configs:
        kind = job_kind(config)
        key = job_key(config)
        start = time.perf_counter()
        result = run_job(config, store=store)
        assert isinstance(result, kind.result_type), type(config).__name__
        blob = encode_result(result, key, canonical_json(config), kind.schema_version)
        same(decode_result(blob, key, kind.result_type)[0], result, type(result).__name__)
        again = JobStore(tmp_path / "cache")  # another handle reads the stored bytes
        same(again.result(key), result, type(result).__name__)
        again.close()
        print(f"{type(config).__name__}: {len(blob):,} bytes, {time.perf_counter() - start:.1f} s")
    store.close()


def test_stored_bytes_never_load_code(store):
    from metricflow.jobs import decode_result, encode_result

    config = CountConfig("log")
    key = job_key(config)
    value = {"a": (1, 2.5, float("nan"), -0.0, 1 + 2j, None, True, "x", b"\x00"), 3: [np.arange(3), np.float32(1.5)],
             "big": 2**70, "s": np.array(["a", "bc"])}
    blob = encode_result(value, key, canonical_json(config), 1)
    assert b"pickle" not in blob and pickle.PROTO not in blob[:2]
    same(decode_result(blob, key, dict)[0], value)
    with pytest.raises(MetricflowError, match="cannot store an array of dtype object"):
        encode_result({"x": np.array([object()])}, key, canonical_json(config), 1)
    with pytest.raises(MetricflowError, match="cannot store a .*Path"):
        encode_result({"x": Path(".")}, key, canonical_json(config), 1)
    with pytest.raises(MetricflowError, match="the job kind makes SampleResult"):
        from metricflow.studies.sample import SampleResult

        decode_result(blob, key, SampleResult)
    old = pickle.dumps((1, {"value": 2.0}))  # the format before: recomputed, never unpickled
    with pytest.raises(MetricflowError, match="older format"):
        decode_result(old, key, dict)
