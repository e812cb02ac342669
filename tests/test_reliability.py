"""Fault injection on the result store, in the spirit of sqlite's own tests (docs/RELIABILITY.md).

Damaged stored bytes, a swapped entry, broken cache.db files and folders, a killed worker, a
cancel, a killed inline run, an executor that cannot start, and two identical requests at
once from the CLI and the Python API. What must hold: no wrong result is ever returned, a
broken store is one line (exit 2 on the CLI, an error on every page), and every key is
computed once however many callers ask.
"""

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from metricflow.errors import MetricflowError, StoreError
from metricflow.flows.flow import FlowConfig
from metricflow.jobs import JobStore, LocalProcessExecutor, job_key, register, run_job
from metricflow.geometry.manifolds import manifold
from metricflow.geometry.points import SampleConfig
from test_jobs import CountConfig, count_estimate, count_job, runs, same, wait

ROOT = Path(__file__).resolve().parent.parent
MUTATIONS = 240  # per stored result
REMEDY = "move it away, or run with --no-cache"


def env_for(cache) -> dict:
    return dict(os.environ, METRICFLOW_CACHE=str(cache), PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


@pytest.fixture
def store(tmp_path):
    register(CountConfig, count_job, 1, count_estimate)
    s = JobStore(tmp_path / "cache", LocalProcessExecutor(max_workers=2))
    yield s
    s.close()


# ---- damaged stored results -------------------------------------------------------------


def mutate(blob: bytes, rng) -> bytes:
    """One seeded damage: flip a bit, set a byte, cut, drop or insert a run of bytes, or repeat a run."""
    b = bytearray(blob)
    i = int(rng.integers(len(b)))
    how = int(rng.integers(6))
    if how == 0:
        b[i] ^= 1 << int(rng.integers(8))
    elif how == 1:
        b[i] = int(rng.integers(256))
    elif how == 2:
        del b[i:]
    elif how == 3:
        del b[i:i + int(rng.integers(1, 64))]
    elif how == 4:
        b[i:i] = rng.integers(0, 256, int(rng.integers(1, 16))).astype(np.uint8).tobytes()
    else:
        b[i:i] = b[i:i + int(rng.integers(1, 64))]
    return bytes(b)


def test_fuzzed_stored_bytes_never_come_back_wrong(tmp_path, caplog):
    s = JobStore(tmp_path / "cache")
    configs = [SampleConfig(manifold("quintic"), n_points=300, seed=1),
               FlowConfig(kernel="delta", n_train=100, n_test=100, steps=3, lr=0.05)]
    rng = np.random.default_rng(15)
    counts = {"tried": 0, "refused": 0, "unchanged": 0, "wrong": 0}
    for config in configs:
        truth = run_job(config, store=s)
        key = job_key(config)
        blob = s._cache.get(f"result/{key}")
        record = s._cache.get(f"job/{key}")
        for _ in range(MUTATIONS):
            bad = mutate(blob, rng)
            s._cache.set(f"result/{key}", bad)
            s._cache.set(f"job/{key}", record)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="metricflow.jobs.store"):
                got = s.result(key)
            counts["tried"] += 1
            if got is None:
                counts["refused"] += 1
                assert s.status(key).state == "failed" and "corrupt" in s.status(key).error
                assert f"result/{key}" not in s._cache
                assert len(caplog.records) == 1 and "corrupt" in caplog.records[0].getMessage()
            else:
                try:
                    same(got, truth)
                    counts["unchanged"] += 1
                    assert bad == blob  # only a no-op mutation may read back
                except AssertionError:
                    counts["wrong"] += 1
        s._cache.set(f"job/{key}", record)
        s._cache.set(f"result/{key}", blob)
        same(s.result(key), truth)  # and the intact bytes still read
    print(counts)
    assert counts["tried"] == 2 * MUTATIONS and counts["wrong"] == 0
    assert counts["refused"] >= counts["tried"] - 10
    s.close()


def test_a_swapped_entry_is_refused_and_recomputed(tmp_path):
    s = JobStore(tmp_path / "cache")
    one, two = (SampleConfig(manifold("cubic"), n_points=200, seed=k) for k in (1, 2))
    truth = run_job(one, store=s)
    run_job(two, store=s)
    k1, k2 = job_key(one), job_key(two)
    s._cache.set(f"result/{k1}", s._cache.get(f"result/{k2}"))  # seed 2's bytes under seed 1's key
    assert s.result(k1) is None
    again = run_job(one, store=s)
    assert again.config.seed == 1
    same(dataclasses.replace(again, seconds=0.0), dataclasses.replace(truth, seconds=0.0))  # all but the timing
    s._cache.set(f"job/{k1}", s._cache.get(f"job/{k2}"))  # and a swapped record
    s._cache.set(f"result/{k1}", s._cache.get(f"result/{k2}"))
    assert s.result(k1) is None and s.status(k1) is None
    s.close()


# ---- a store that cannot be opened ------------------------------------------------------


def broken_stores(tmp_path) -> dict:
    good = tmp_path / "good"
    s = JobStore(good)
    run_job(SampleConfig(manifold("cubic"), n_points=200, seed=0), store=s)
    s.close()
    data = (good / "cache.db").read_bytes()
    cases = {}
    for name, content in [("garbage", np.random.default_rng(0).bytes(8192)), ("truncated", data[: len(data) // 2]),
                          ("header-only", data[:100])]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "cache.db").write_bytes(content)
        cases[name] = tmp_path / name
    (tmp_path / "a-file").write_text("not a folder")
    cases["file"] = tmp_path / "a-file"
    cases["under-file"] = tmp_path / "a-file" / "cache"
    return cases


def test_a_broken_store_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    from metricflow.cli.main import main

    for name, path in broken_stores(tmp_path).items():
        with pytest.raises(StoreError, match=REMEDY):
            JobStore(path)
        monkeypatch.setenv("METRICFLOW_CACHE", str(path))
        assert main(["sample", "--points", "100", "--manifold", "cubic"]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and REMEDY in err, (name, err)
        assert main(["sample", "--points", "100", "--manifold", "cubic", "--no-cache", "--json"]) == 0
        capsys.readouterr()
    out = subprocess.run([sys.executable, "-m", "metricflow", "sample", "--points", "100"], capture_output=True,
                         text=True, env=env_for(tmp_path / "garbage"), timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.count("\n") == 1
    assert "file is not a database" in out.stderr


def test_a_read_only_folder_is_one_line_and_exit_2(tmp_path):
    JobStore(tmp_path / "cache").close()
    os.chmod(tmp_path / "cache", 0o555)
    command = [sys.executable, "-m", "metricflow", "sample", "--points", "100"]
    if os.geteuid() == 0:  # root writes to read-only folders unless it drops that capability
        if not os.path.exists("/usr/bin/setpriv"):
            pytest.skip("running as root without setpriv: a read-only folder is writable")
        command = ["/usr/bin/setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]
    try:
        out = subprocess.run(command, capture_output=True, text=True, env=env_for(tmp_path / "cache"), timeout=120)
    finally:
        os.chmod(tmp_path / "cache", 0o755)
    assert out.returncode == 2, out.stderr
    assert "not writable" in out.stderr and REMEDY in out.stderr and out.stderr.count("\n") == 1, out.stderr


PAGES = ["app.py", "pages/0_Home.py", "pages/1_Points.py", "pages/2_Kernel_flow.py", "pages/3_Theory_lab.py", "pages/4_Clustering.py",
         "pages/5_NTK_evolution.py", "pages/6_Generalisation.py", "pages/7_Hyperparameter_search.py",
         "pages/8_Donaldson.py", "pages/9_Methods_compared.py"]


def test_every_page_shows_a_broken_store_as_an_error(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    path = broken_stores(tmp_path)["garbage"]
    monkeypatch.setenv("METRICFLOW_CACHE", str(path))
    for page in PAGES:
        at = AppTest.from_file(str(ROOT / page), default_timeout=90)
        at.run()
        assert not at.exception, (page, at.exception)
        errors = [e.value for e in at.error]
        assert any("cannot be used" in e and "file is not a database" in e for e in errors), (page, errors)


# ---- workers killed, jobs cancelled, executors that never start -------------------------


def test_killed_worker_and_cancel_lose_nothing(tmp_path, store):
    killed, cancelled = (CountConfig(str(tmp_path / name), value=4.0, steps=40, sleep=0.05) for name in ("k", "c"))
    keys = [store.submit(killed), store.submit(cancelled)]  # two workers at once

    def running(key):
        end = time.monotonic() + 90
        while store.status(key).state != "running" or store.status(key).step < 2:
            assert time.monotonic() < end, store.status(key)
            time.sleep(0.02)
        return store.status(key)

    os.kill(running(keys[0]).pid, signal.SIGKILL)
    running(keys[1])
    assert store.cancel(keys[1]) and store.status(keys[1]).state == "cancelled"
    status = wait(store, keys[0])
    assert status.state == "failed" and ("SIGKILL" in status.error or "died" in status.error)
    assert store.result(keys[0]) is None and store.result(keys[1]) is None  # nothing partial
    for config in (killed, cancelled):  # and the next run computes them
        assert run_job(config, store=store) == {"value": 8.0} and runs(config) == 2


def test_a_killed_inline_run_is_taken_over(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"), value=3.0, steps=400, sleep=0.05)
    code = textwrap.dedent(f"""
        from metricflow.jobs import register, run_job
        from test_jobs import CountConfig, count_job, count_estimate
        register(CountConfig, count_job, 1, count_estimate)
        run_job({config!r}, store=__import__("metricflow.jobs.store").jobs.JobStore({str(store.directory)!r}))
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env_for(store.directory), cwd=ROOT / "tests")
    key = job_key(config)
    end = time.monotonic() + 60
    while store.status(key) is None or store.status(key).step < 2:
        assert time.monotonic() < end and proc.poll() is None
        time.sleep(0.05)
    assert store.status(key).runner == "inline" and store.status(key).pid == proc.pid
    proc.kill()
    proc.wait()
    assert "died" in store.status(key).error
    fast = CountConfig(config.log, value=3.0)
    assert run_job(fast, store=store) == {"value": 6.0}


def test_an_executor_that_cannot_start_leaves_a_failed_record(tmp_path):
    class Broken:
        def submit(self, task):
            raise OSError("cannot reach the scheduler")

        def cancel(self, key, pid, pid_start):
            pass

    register(CountConfig, count_job, 1, count_estimate)
    s = JobStore(tmp_path / "cache", executor=Broken())
    config = CountConfig(str(tmp_path / "log"))
    with pytest.raises(MetricflowError, match="the executor could not start it: OSError: cannot reach the scheduler"):
        s.submit(config)
    status = s.status(job_key(config))
    assert status.state == "failed" and "could not start" in status.error
    assert [(j.key, j.state) for j in s.jobs()] == [(status.key, "failed")]  # the job table agrees
    s.close()


# ---- one lease per key ------------------------------------------------------------------

COUNTING = '''
import os, time
from metricflow.studies.sample import SAMPLE_SCHEMA, SampleResult, estimate_sample, run_sample
from metricflow.jobs import register
from metricflow.geometry.points import SampleConfig

def counted(config, progress=None):
    with open(os.environ["COUNT_LOG"], "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(1.0)  # a wide window for the other caller
    return run_sample(config, progress)

register(SampleConfig, counted, SAMPLE_SCHEMA, estimate_sample, SampleResult)
'''


def test_cli_and_api_at_once_compute_once(tmp_path):
    (tmp_path / "counting.py").write_text(COUNTING)
    env = dict(env_for(tmp_path / "cache"), COUNT_LOG=str(tmp_path / "count"))
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    cli = "import counting, sys; from metricflow.cli.main import main; sys.exit(main(sys.argv[1:]))"
    api = ("import counting, json; from metricflow import SampleConfig, manifold; from metricflow.jobs import run_job; "
           "print(json.dumps(run_job(SampleConfig(manifold('cubic'), 2000, 7)).summary()))")
    procs = [subprocess.Popen([sys.executable, "-c", cli, "sample", "--points", "2000", "--manifold", "cubic",
                               "--seed", "7", "--json"], env=env, stdout=subprocess.PIPE, text=True),
             subprocess.Popen([sys.executable, "-c", api], env=env, stdout=subprocess.PIPE, text=True)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    a, b = (json.loads(o) for o in outs)
    assert a == b and a["points"] == 2000
    assert len((tmp_path / "count").read_text().split()) == 1  # one computation


def test_a_cli_run_waits_for_the_dashboard_job(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"), value=5.0, steps=30, sleep=0.05)
    key = store.submit(config)  # a dashboard session's job, in a worker
    other = JobStore(store.directory)  # the CLI's own handle
    assert run_job(config, store=other) == {"value": 10.0}
    assert runs(config) == 1 and other.status(key).runner == "worker"
    other.close()


def test_threads_of_one_process_share_the_lease(tmp_path, store):
    config = CountConfig(str(tmp_path / "log"), value=1.0, steps=10, sleep=0.05)
    handles = [JobStore(store.directory) for _ in range(3)]
    results, barrier = [], threading.Barrier(3)

    def call(s):
        barrier.wait()
        results.append(run_job(config, store=s))

    threads = [threading.Thread(target=call, args=(s,)) for s in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"value": 2.0}] * 3 and runs(config) == 1
    for s in handles:
        s.close()
