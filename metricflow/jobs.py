"""Job runner: cached, deduplicated, cancellable background computations.

A job is a frozen config dataclass and the pure function registered for its type. Its key is
the sha256 of the config's canonical JSON and the result's schema version, so the same config
is computed once, by whichever session asks first, and a change of schema recomputes it.

The store is a diskcache directory (``cache/`` at the repository root, or ``$METRICFLOW_CACHE``)
that holds, per key, a status record (state, progress, error), the pickled result and the
traceback of a failure. Work runs in a spawned worker process (JAX does not survive fork);
the executor that starts workers is pluggable (``Executor``), so a Dask executor can be added.

Example:
  >>> store = JobStore()
  >>> key = store.submit(SampleConfig(manifold("quintic"), n_points=1000, seed=0))
  >>> store.status(key).state            # "queued", "running", then "done"
  >>> store.result(key).sigma_fs         # once done
  >>> run_job(SampleConfig(n_points=1000))  # synchronous, for the CLI
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple, Protocol

import numpy as np

from metricflow.errors import MetricflowError, check_memory

__all__ = [
    "ACTIVE",
    "DEFAULT_CACHE",
    "Estimate",
    "Executor",
    "JobCancelled",
    "JobKind",
    "JobStatus",
    "JobStore",
    "LocalProcessExecutor",
    "Task",
    "cache_directory",
    "canonical_json",
    "estimate",
    "execute",
    "job_key",
    "job_kind",
    "register",
    "run_job",
    "worker_main",
]

DEFAULT_CACHE = Path(__file__).resolve().parent.parent / "cache"

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)

# A worker writes progress, and checks for cancellation, at most this often (seconds).
PROGRESS_INTERVAL = 0.2

Progress = Callable[..., None]  # progress(step: int, total: int, message: str = "")


# ---- job kinds --------------------------------------------------------------------------


class Estimate(NamedTuple):
    """Expected cost of a job: wall-clock ``seconds`` and peak memory ``bytes``."""

    seconds: float
    bytes: int


@dataclass(frozen=True)
class JobKind:
    """What runs for a config type.

    Attributes:
      function: ``function(config, progress) -> result``, pure; ``progress(step, total,
        message)`` reports progress and raises ``JobCancelled`` once the job is cancelled.
      schema_version: bump it when the result type or its meaning changes; cached results of
        other versions are then recomputed.
      estimate: ``estimate(config) -> Estimate``, or None for "cheap".
    """

    function: Callable[[Any, Progress], Any]
    schema_version: int
    estimate: Callable[[Any], Estimate] | None = None


_KINDS: dict[type, JobKind] = {}


def register(config_type: type, function, schema_version: int, estimate=None) -> None:
    """Run ``function`` for configs of ``config_type``; registering again replaces the kind.

    ``function`` must be importable by name (a module-level function) so a spawned worker
    can unpickle it. Built-in kinds are registered at the bottom of ``metricflow.experiments``.
    """
    if not (dataclasses.is_dataclass(config_type) and config_type.__dataclass_params__.frozen):
        raise MetricflowError(f"a job config must be a frozen dataclass, got {config_type.__name__}")
    _KINDS[config_type] = JobKind(function, int(schema_version), estimate)


def job_kind(config) -> JobKind:
    """The registered kind for ``config``'s type."""
    import metricflow.experiments  # noqa: F401  (registers the built-in kinds)

    kind = _KINDS.get(type(config))
    if kind is None:
        known = ", ".join(sorted(t.__name__ for t in _KINDS)) or "none"
        raise MetricflowError(
            f"no job kind is registered for {type(config).__name__}; registered: {known}. "
            "Call metricflow.jobs.register(ConfigType, function, schema_version)."
        )
    return kind


def estimate(config) -> Estimate:
    """Expected (seconds, bytes) of the job for ``config``, before launching it."""
    kind = job_kind(config)
    return kind.estimate(config) if kind.estimate else Estimate(0.0, 0)


def check_estimate(config) -> Estimate:
    """The estimate, after refusing a job whose memory estimate exceeds what is free."""
    cost = estimate(config)
    check_memory(cost.bytes, f"this {type(config).__name__} job")
    return cost


# ---- keys -------------------------------------------------------------------------------


def _plain(value):
    """``value`` as JSON-ready data: dataclasses typed, complex as [re, im], numpy unwrapped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # A field with metadata {"key": "omit-default"} is left out at its default, so adding
        # an option to a config keeps the keys of the results already stored.
        out = {
            f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
            if not (f.metadata.get("key") == "omit-default" and getattr(value, f.name) == f.default)
        }
        out["__type__"] = f"{type(value).__module__}.{type(value).__qualname__}"
        return out
    if isinstance(value, np.ndarray):
        return {"__array__": str(value.dtype), "shape": list(value.shape), "data": _plain(value.tolist())}
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, complex):
        return [_plain(value.real), _plain(value.imag)]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    raise MetricflowError(
        f"cannot make a job key from a {type(value).__name__} ({value!r}); "
        "configs may hold numbers, strings, tuples, arrays and dataclasses"
    )


def canonical_json(config) -> str:
    """The config as JSON with sorted keys and no spaces; the type name is included."""
    return json.dumps(_plain(config), sort_keys=True, separators=(",", ":"))


def job_key(config, schema_version: int | None = None) -> str:
    """sha256 hex of the config's canonical JSON and the schema version of its kind."""
    if schema_version is None:
        schema_version = job_kind(config).schema_version
    text = f"{canonical_json(config)}|schema={int(schema_version)}"
    return hashlib.sha256(text.encode()).hexdigest()


# ---- status records ---------------------------------------------------------------------


@dataclass(frozen=True)
class JobStatus:
    """The stored state of one job.

    Attributes:
      key: the job key (sha256 hex).
      kind: the config type name, for example "SampleConfig".
      config: the canonical JSON of the config.
      schema_version: the result schema this job writes.
      state: "queued", "running", "done", "failed" or "cancelled".
      step, total, message: the last progress report (step of total).
      error: one line saying why the job failed or was cancelled, else "".
      pid: the process responsible now (the submitter while queued, then the worker), or 0.
      pid_start: that process's start time (from /proc), to tell it from a reused pid.
      submitted, started, finished: Unix times, 0 if not yet.
    """

    key: str
    kind: str
    config: str
    schema_version: int
    state: str = QUEUED
    step: int = 0
    total: int = 0
    message: str = ""
    error: str = ""
    pid: int = 0
    pid_start: int = 0
    submitted: float = 0.0
    started: float = 0.0
    finished: float = 0.0

    @property
    def fraction(self) -> float:
        """Progress in [0, 1] (1 when done)."""
        if self.state == DONE:
            return 1.0
        return min(max(self.step / self.total, 0.0), 1.0) if self.total > 0 else 0.0

    @property
    def seconds(self) -> float:
        """Run time so far (or in total, once finished)."""
        if not self.started:
            return 0.0
        return (self.finished or time.time()) - self.started


def _process_start(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live process, or None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        if not Path("/proc/self/stat").exists():  # no /proc: fall back on signal 0
            try:
                os.kill(pid, 0)
                return 0
            except OSError:
                return None
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _alive(pid: int, pid_start: int) -> bool:
    start = _process_start(pid) if pid > 0 else None
    return start is not None and (pid_start == 0 or start == pid_start)


class JobCancelled(Exception):
    """Raised inside a job by its progress callback once the job has been cancelled."""


# ---- the store --------------------------------------------------------------------------


def cache_directory(directory=None) -> Path:
    """``directory``, else ``$METRICFLOW_CACHE``, else ``cache/`` at the repository root."""
    return Path(directory or os.environ.get("METRICFLOW_CACHE") or DEFAULT_CACHE)


class JobStore:
    """Submit jobs and read their status and results, shared by all processes on a directory.

    Args:
      directory: the diskcache directory; see ``cache_directory``.
      executor: starts workers; default ``LocalProcessExecutor()``, made on first submit.
    """

    def __init__(self, directory=None, executor: "Executor | None" = None):
        import diskcache

        self.directory = cache_directory(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(self.directory))
        self._executor = executor

    @property
    def executor(self) -> "Executor":
        if self._executor is None:
            from metricflow.dask_executor import default_executor  # $METRICFLOW_SCHEDULER or local

            self._executor = default_executor()
        return self._executor

    # -- reading --

    def status(self, key: str) -> JobStatus | None:
        """The job's status, or None if never submitted. A dead worker is marked failed here."""
        record = self._read(key)
        if record is not None and record.state in ACTIVE and record.pid and not _alive(record.pid, record.pid_start):
            reason = (
                "the worker process died without reporting (crashed, out of memory or killed)"
                if record.state == RUNNING
                else "the process holding this queued job exited before starting it"
            )
            record = self._finish(key, FAILED, error=reason, only_pid=record.pid) or self._read(key)
        return record

    def lookup(self, config) -> JobStatus | None:
        """The status of ``config``'s job, without submitting it."""
        return self.status(job_key(config))

    def result(self, key: str):
        """The finished result, or None if missing, unreadable or of another schema version.

        An unreadable result is deleted and its job reset, so that the next submit recomputes.
        """
        record = self._read(key)
        if record is None or record.state != DONE:
            return None
        blob = self._cache.get(f"result/{key}")
        try:
            schema_version, result = pickle.loads(blob)
        except Exception:
            schema_version, result = None, None
        if schema_version != record.schema_version:
            with self._cache.transact():
                self._cache.delete(f"result/{key}")
                self._write(dataclasses.replace(record, state=FAILED, error="the stored result could not be read; run it again"))
            return None
        return result

    def traceback(self, key: str) -> str:
        """The full traceback of a failed job, or ""."""
        return self._cache.get(f"traceback/{key}", "")

    def jobs(self) -> list[JobStatus]:
        """All jobs in the store, newest first."""
        records = [self._read(k[len("job/"):]) for k in self._cache.iterkeys() if str(k).startswith("job/")]
        return sorted((r for r in records if r is not None), key=lambda r: r.submitted, reverse=True)

    # -- writing --

    def submit(self, config) -> str:
        """Start the job for ``config`` unless it is done or in progress; return its key.

        A failed or cancelled job is started again (a retry). A done job whose result cannot
        be read back is recomputed. Raises MetricflowError if the memory estimate exceeds the
        free memory.
        """
        kind = job_kind(config)
        key = job_key(config, kind.schema_version)
        record = self.status(key)
        if record is not None and record.state == DONE and self.result(key) is not None:
            return key
        check_estimate(config)
        with self._cache.transact():
            record = self._read(key)
            if record is not None and record.state in ACTIVE:
                return key  # someone else's submission got there first
            if record is not None and record.state == DONE and f"result/{key}" in self._cache:
                return key
            me = os.getpid()
            self._write(JobStatus(
                key, type(config).__name__, canonical_json(config), kind.schema_version,
                state=QUEUED, message="queued", pid=me, pid_start=_process_start(me) or 0,
                submitted=time.time(),
            ))
            self._cache.delete(f"traceback/{key}")
        self.executor.submit(Task(str(self.directory), key, kind.function, config, kind.schema_version))
        return key

    def cancel(self, key: str) -> bool:
        """Cancel a queued or running job; returns False if it was not active."""
        record = self._read(key)
        if record is None or record.state not in ACTIVE:
            return False
        cancelled = self._finish(key, CANCELLED, error="cancelled")
        if cancelled is None:
            return False
        if record.state == RUNNING and record.pid != os.getpid():
            self.executor.cancel(key, record.pid, record.pid_start)
        return True

    def forget(self, key: str) -> None:
        """Delete the job and its result (an active job is cancelled first)."""
        self.cancel(key)
        for slot in ("job", "result", "traceback"):
            self._cache.delete(f"{slot}/{key}")

    def close(self) -> None:
        self._cache.close()

    # -- used by workers --

    def mark_running(self, key: str) -> bool:
        """Claim a queued job for this process; False if it is no longer queued."""
        with self._cache.transact():
            record = self._read(key)
            if record is None or record.state != QUEUED:
                return False
            me = os.getpid()
            self._write(dataclasses.replace(
                record, state=RUNNING, message="started", pid=me,
                pid_start=_process_start(me) or 0, started=time.time(),
            ))
        return True

    def set_worker(self, key: str, pid: int) -> None:
        """Record the worker process of a queued job (called by the executor)."""
        with self._cache.transact():
            record = self._read(key)
            if record is not None and record.state == QUEUED:
                self._write(dataclasses.replace(record, pid=pid, pid_start=_process_start(pid) or 0))

    def report(self, key: str, step: int, total: int, message: str = "") -> bool:
        """Store progress; returns False if the job is no longer running (cancelled)."""
        with self._cache.transact():
            record = self._read(key)
            if record is None or record.state != RUNNING or record.pid != os.getpid():
                return False
            self._write(dataclasses.replace(record, step=int(step), total=int(total), message=str(message)))
        return True

    def store_result(self, key: str, result, schema_version: int) -> bool:
        """Store the result and mark the job done, unless it was cancelled meanwhile."""
        blob = pickle.dumps((schema_version, result), protocol=pickle.HIGHEST_PROTOCOL)
        with self._cache.transact():
            record = self._read(key)
            if record is None or record.state != RUNNING or record.pid != os.getpid():
                return False
            self._cache.set(f"result/{key}", blob)
            self._write(dataclasses.replace(
                record, state=DONE, step=record.total, message="done", finished=time.time(),
            ))
        return True

    def store_failure(self, key: str, error: str, trace: str) -> None:
        with self._cache.transact():
            if self._finish(key, FAILED, error=error, only_pid=os.getpid()) is not None:
                self._cache.set(f"traceback/{key}", trace)

    def worker_exited(self, key: str, pid: int, exitcode: int | None) -> None:
        """Mark the job failed if its worker ``pid`` exited without finishing it."""
        if exitcode is not None and exitcode < 0:
            try:
                name = signal.Signals(-exitcode).name
            except ValueError:
                name = f"signal {-exitcode}"
            reason = f"the worker process was killed by {name}"
        else:
            reason = f"the worker process exited with code {exitcode} before finishing"
        self._finish(key, FAILED, error=reason, only_pid=pid)

    # -- internals --

    def _read(self, key: str) -> JobStatus | None:
        text = self._cache.get(f"job/{key}")
        if text is None:
            return None
        try:
            return JobStatus(**json.loads(text))
        except (TypeError, ValueError):
            return None  # a record from an incompatible version: treat as absent

    def _write(self, record: JobStatus) -> None:
        self._cache.set(f"job/{record.key}", json.dumps(dataclasses.asdict(record)))

    def _finish(self, key: str, state: str, error: str = "", only_pid: int | None = None) -> JobStatus | None:
        """Move an active job to ``state``; None if it was not active (or not ``only_pid``'s)."""
        with self._cache.transact():
            record = self._read(key)
            if record is None or record.state not in ACTIVE:
                return None
            if only_pid is not None and record.pid != only_pid:
                return None
            record = dataclasses.replace(record, state=state, error=error, message=state, finished=time.time())
            self._write(record)
        return record


# ---- executing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """Everything a worker needs, picklable: run ``function(config, progress)`` for ``key``."""

    directory: str
    key: str
    function: Callable
    config: Any
    schema_version: int


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def execute(task: Task) -> None:
    """Run one task in this process, writing status, progress and the result to the store.

    This is what every executor runs in its worker. The progress callback given to the job
    raises JobCancelled once the job has been cancelled, so cancellation also works where
    the executor cannot kill the worker.
    """
    import metricflow.experiments  # noqa: F401  (the kinds, and the stored reference kappa)

    store = JobStore(task.directory, executor=_NoExecutor())
    try:
        if not store.mark_running(task.key):
            return  # cancelled (or taken) before it started
        last = [0.0]

        def progress(step: int, total: int, message: str = "") -> None:
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL and step < total:
                return
            last[0] = now
            if not store.report(task.key, step, total, message):
                raise JobCancelled(task.key)

        try:
            result = task.function(task.config, progress)
        except JobCancelled:
            return
        except BaseException as err:  # noqa: BLE001  (kept, with its traceback, in the store)
            store.store_failure(task.key, _one_line(err), traceback.format_exc())
            if not isinstance(err, Exception):
                raise
            return
        store.store_result(task.key, result, task.schema_version)
    finally:
        store.close()


class Executor(Protocol):
    """Starts tasks in the background. ``submit`` returns at once; the worker calls
    ``execute(task)``. ``cancel`` stops the worker of a cancelled job if it can (the store
    has already marked it cancelled, which the job sees at its next progress report)."""

    def submit(self, task: Task) -> None: ...

    def cancel(self, key: str, pid: int, pid_start: int) -> None: ...


class _NoExecutor:
    def submit(self, task: Task) -> None:
        raise RuntimeError("a worker does not start jobs")

    def cancel(self, key: str, pid: int, pid_start: int) -> None:
        pass


class LocalProcessExecutor:
    """Runs each task in a fresh Python process, at most ``max_workers`` at a time.

    The worker is a new interpreter (``python -c ...``), as with multiprocessing's "spawn"
    (JAX does not survive fork), but started with subprocess: Streamlit replaces
    ``sys.modules["__main__"]`` with the page script, and multiprocessing's spawn would run
    that page again inside the worker. The task goes to the worker pickled, on stdin, and
    the worker gets this process's ``sys.path``.

    Tasks beyond ``max_workers`` wait in this process (their jobs stay "queued"). A thread
    per task starts the worker, waits for it, and marks the job failed if the worker died
    without finishing it. Cancelling terminates the worker (SIGTERM).
    """

    def __init__(self, max_workers: int | None = None):
        self.max_workers = max_workers or max(1, min(2, os.cpu_count() or 1))
        self._slots = threading.Semaphore(self.max_workers)
        self._processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def submit(self, task: Task) -> None:
        blob = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)  # fail here, not in the worker
        threading.Thread(target=self._run, args=(task.directory, task.key, blob), daemon=True).start()

    def _run(self, directory: str, key: str, blob: bytes) -> None:
        store = JobStore(directory, executor=_NoExecutor())
        try:
            with self._slots:
                record = store._read(key)
                if record is None or record.state != QUEUED:
                    return
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
                process = subprocess.Popen(
                    [sys.executable, "-c", "from metricflow.jobs import worker_main; worker_main()"],
                    stdin=subprocess.PIPE, env=env,
                )
                with self._lock:
                    self._processes[key] = process
                store.set_worker(key, process.pid)
                try:
                    process.stdin.write(blob)
                    process.stdin.close()
                except OSError:
                    pass  # the worker died at once; its exit code tells
                process.wait()
                with self._lock:
                    self._processes.pop(key, None)
                store.worker_exited(key, process.pid, process.returncode)
        finally:
            store.close()

    def cancel(self, key: str, pid: int, pid_start: int) -> None:
        with self._lock:
            process = self._processes.get(key)
        if process is not None and process.pid == pid:
            process.terminate()
        elif _alive(pid, pid_start):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass


def worker_main() -> None:
    """Entry point of a LocalProcessExecutor worker: read a pickled Task on stdin, run it."""
    execute(pickle.load(sys.stdin.buffer))


# ---- synchronous ------------------------------------------------------------------------


def run_job(config, cache: bool = True, store: JobStore | None = None):
    """Run the job for ``config`` in this process and return its result (for the CLI).

    Args:
      config: a registered config.
      cache: if True, return a stored result when there is one, and store the new one.
      store: the store to use; default ``JobStore()``.
    """
    kind = job_kind(config)
    check_estimate(config)
    if not cache:
        return kind.function(config, lambda *a, **k: None)
    from metricflow.dask_executor import _inside_dask_task, run_many, scheduler_address, stderr_progress

    if scheduler_address() is not None and not _inside_dask_task():
        return run_many([config], store, progress=stderr_progress)[0]  # on the Dask cluster
    own = store is None
    store = store or JobStore(executor=_NoExecutor())
    try:
        key = job_key(config, kind.schema_version)
        result = store.result(key)
        if result is None:
            started = time.time()
            result = kind.function(config, lambda *a, **k: None)
            blob = pickle.dumps((kind.schema_version, result), protocol=pickle.HIGHEST_PROTOCOL)
            with store._cache.transact():
                store._cache.set(f"result/{key}", blob)
                store._write(JobStatus(
                    key, type(config).__name__, canonical_json(config), kind.schema_version,
                    state=DONE, message="done", submitted=started, started=started, finished=time.time(),
                ))
        return result
    finally:
        if own:
            store.close()
