"""Job runner: cached, deduplicated, cancellable background computations.

A job is a frozen config dataclass and the pure function registered for its type. Its key is
the sha256 of the config's canonical JSON and the result's schema version, so the same config
is computed once, by whichever session asks first, and a change of schema recomputes it.

The store is a diskcache directory (``cache/`` at the repository root, or ``$METRICFLOW_CACHE``)
that holds, per key, a status record (state, progress, error), the result and the traceback
of a failure, and, while the job runs, its partial series (never taken for a result). Work runs in a spawned worker process (JAX does not survive fork); the executor
that starts workers is pluggable (``Executor``), so a Dask executor can be added.

A stored result is never returned unverified (docs/RELIABILITY.md): it is written in a plain
format (JSON for the structure, raw bytes for the arrays; nothing on load executes code)
with the sha256 of its bytes, the key and the canonical config it answers. On read the
checksum, the key, the config and the result's type are checked; any mismatch is a corrupt
entry, which is logged in one line, reset and recomputed. The record of a job is also its
lease: whoever computes a key (a worker, ``run_job`` in the CLI, a Dask client) holds it,
and everyone else waits for that result.

Example:
  >>> store = JobStore()
  >>> key = store.submit(SampleConfig(manifold("quintic"), n_points=1000, seed=0))
  >>> store.status(key).state            # "queued", "running", then "done"
  >>> store.result(key).sigma_fs         # once done
  >>> run_job(SampleConfig(n_points=1000))  # synchronous, for the CLI
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import signal
import sqlite3
import tempfile
import time
from pathlib import Path

from metricflow.errors import MetricflowError, StoreError
from metricflow.jobs.keys import canonical_json, job_key
from metricflow.jobs.kinds import check_estimate, job_kind, kinds
from metricflow.jobs.results import _type_name, decode_result, encode_result
from metricflow.jobs import status as _status
from metricflow.jobs.status import (
    ACTIVE, CANCELLED, DONE, FAILED, QUEUED, RUNNING, Executor, JobStatus, Task, _alive, _process_start, one_line,
)

__all__ = ["DEFAULT_CACHE", "JobStore", "StoreError", "cache_directory"]


DEFAULT_CACHE = Path(__file__).resolve().parents[2] / "cache"

_log = logging.getLogger("metricflow.jobs.store")


# ---- the store --------------------------------------------------------------------------


def cache_directory(directory=None) -> Path:
    """``directory``, else ``$METRICFLOW_CACHE``, else ``cache/`` at the repository root."""
    return Path(directory or os.environ.get("METRICFLOW_CACHE") or DEFAULT_CACHE)


def _open_cache(directory: Path):
    """The diskcache.Cache on ``directory``, after checking that it can be used.

    Raises StoreError (one line: the path, why, and the remedy) if the folder cannot be
    made or written, or if its cache.db is not an intact sqlite database.
    """
    import diskcache

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(directory, "it is a file, not a folder") from None
    except NotADirectoryError:
        raise StoreError(directory, "a part of the path is a regular file, not a folder") from None
    except OSError as err:
        raise StoreError(directory, f"the folder cannot be made ({err.strerror or err})") from None
    database = directory / "cache.db"
    if database.exists() and not database.is_file():
        raise StoreError(database, "it is not a file")
    # Never open cache.db with open(): closing that descriptor would drop the sqlite locks
    # this process holds on it. sqlite itself says "file is not a database" for garbage.
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise StoreError(directory, f"the folder is not writable ({err.strerror or err})") from None
    try:
        cache = diskcache.Cache(str(directory))
    except sqlite3.Error as err:
        raise StoreError(database, str(err)) from None
    except OSError as err:
        raise StoreError(directory, err.strerror or str(err)) from None
    try:
        problems = [row[0] for row in cache._sql("PRAGMA quick_check").fetchall()]
    except sqlite3.Error as err:
        problems = [str(err)]
    if problems != ["ok"]:
        cache.close()
        raise StoreError(database, f"database disk image is malformed ({problems[0] if problems else 'no answer'})")
    return cache


def _store_errors(method):
    """Turn sqlite's errors inside a store method into one-line StoreErrors."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as err:
            raise StoreError(self.directory / "cache.db", str(err)) from None

    return guarded


class JobStore:
    """Submit jobs and read their status and results, shared by all processes on a directory.

    Args:
      directory: the diskcache directory; see ``cache_directory``.
      executor: starts workers; default ``LocalProcessExecutor()``, made on first submit.
    """

    def __init__(self, directory=None, executor: "Executor | None" = None):
        self.directory = cache_directory(directory)
        self._cache = _open_cache(self.directory)
        self._executor = executor

    @property
    def executor(self) -> "Executor":
        if self._executor is None:
            if _status._DEFAULT_EXECUTOR[0] is None:
                raise MetricflowError("no default executor is installed; import metricflow.jobs")
            self._executor = _status._DEFAULT_EXECUTOR[0]()  # $METRICFLOW_SCHEDULER or local
        return self._executor

    # -- reading --

    @_store_errors
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

    @_store_errors
    def result(self, key: str):
        """The finished result, or None if missing or corrupt.

        The stored bytes are checked (docs/RELIABILITY.md): their sha256, the key and config
        they answer, and the result's type. A corrupt entry (or one in an older format) is
        logged in one line, deleted and its job reset to failed, so that the next submit or
        ``run_job`` recomputes it; it is never returned.
        """
        record = self._read(key)
        if record is None or record.state != DONE:
            return None
        blob = self._get_blob(key)
        try:
            result, header = decode_result(blob, key, self._result_type(record))
            if record.key != key or header["config"] != record.config or header["schema"] != record.schema_version:
                raise MetricflowError("its job record is for another config or schema")
        except MetricflowError as err:
            self._reset_corrupt(key, blob, str(err))
            return None
        return result

    def _get_blob(self, key: str):
        try:
            return self._cache.get(f"result/{key}")
        except OSError:  # a large value's file has gone
            return None

    def _result_type(self, record: JobStatus) -> type | None:

        try:
            name = json.loads(record.config).get("__type__")
        except (ValueError, AttributeError):
            return None
        for config_type, kind in kinds().items():
            if _type_name(config_type) == name:
                return kind.result_type
        return None

    def _reset_corrupt(self, key: str, blob, reason: str) -> None:
        _log.warning("metricflow: the stored result of job %s in %s is corrupt (%s); it is reset and will be "
                     "recomputed", key[:12], self.directory, reason)
        with self._cache.transact():
            record = self._read(key)
            if self._get_blob(key) != blob or record is None or record.state != DONE:
                return  # rewritten meanwhile
            self._cache.delete(f"result/{key}")
            self._write(dataclasses.replace(
                record, state=FAILED, message=FAILED,
                error=f"the stored result was corrupt ({reason}); run it again",
            ))

    @_store_errors
    def runs(self, key: str) -> int:
        """How many times the job ``key`` has been started (by a worker, inline or on Dask)."""
        return int(self._cache.get(f"runs/{key}", 0))

    @_store_errors
    def traceback(self, key: str) -> str:
        """The full traceback of a failed job, or ""."""
        return self._cache.get(f"traceback/{key}", "")

    @_store_errors
    def jobs(self) -> list[JobStatus]:
        """All jobs in the store, newest first, as ``status`` gives them (dead owners failed)."""
        records = [self.status(k[len("job/"):]) for k in self._cache.iterkeys() if str(k).startswith("job/")]
        return sorted((r for r in records if r is not None), key=lambda r: r.submitted, reverse=True)

    # -- writing --

    @_store_errors
    def submit(self, config, owner: str = "") -> str:
        """Start the job for ``config`` unless it is done or in progress; return its key.

        ``owner`` names the session that asks (the dashboard's, for a ``FairQueue``); it goes
        to the executor with the task. A failed or cancelled job is started again (a retry). A done job whose result cannot
        be read back is recomputed. Raises MetricflowError if the memory estimate exceeds the
        free memory, or if the executor cannot start it (the job is then marked failed with
        that reason, never left queued).
        """
        kind = job_kind(config)
        key = job_key(config, kind.schema_version)
        record = self.status(key)
        if record is not None and record.state == DONE and self.result(key) is not None:
            return key
        check_estimate(config)
        executor = self.executor  # a scheduler that cannot be reached fails here, before any record
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
        try:
            executor.submit(Task(str(self.directory), key, kind.function, config, kind.schema_version, kind.fan_out, owner))
        except BaseException as err:
            reason = f"the executor could not start it: {one_line(err)}"
            self._finish(key, FAILED, error=reason, only_pid=os.getpid())
            if isinstance(err, MetricflowError):
                raise
            if isinstance(err, Exception):
                raise MetricflowError(reason) from err
            raise
        return key

    @_store_errors
    def claim(self, key: str, config, schema_version: int) -> bool:
        """Take the lease on ``key`` for this process, to compute it here (``run_job``).

        False if another live process holds it (queued or running) or it is done; then wait
        for that one (``wait``) and read its result.
        """
        with self._cache.transact():
            record = self._read(key)
            if record is not None and record.state in ACTIVE and record.pid and _alive(record.pid, record.pid_start):
                return False
            if record is not None and record.state == DONE and f"result/{key}" in self._cache:
                return False
            me, now = os.getpid(), time.time()
            self._write(JobStatus(
                key, type(config).__name__, canonical_json(config), int(schema_version),
                state=RUNNING, message=f"running in process {me}", pid=me, pid_start=_process_start(me) or 0,
                submitted=now, started=now, runner="inline",
            ))
            self._cache.delete(f"traceback/{key}")
            self._cache.incr(f"runs/{key}")
        return True

    def wait(self, key: str, poll: float = 0.2) -> JobStatus | None:
        """Block while ``key``'s job is queued or running (by anyone); return its final status."""
        while True:
            status = self.status(key)
            if status is None or status.state not in ACTIVE:
                return status
            time.sleep(poll)

    @_store_errors
    def cancel(self, key: str) -> bool:
        """Cancel a queued or running job; returns False if it was not active."""
        record = self._read(key)
        if record is None or record.state not in ACTIVE:
            return False
        cancelled = self._finish(key, CANCELLED, error="cancelled")
        if cancelled is None:
            return False
        if record.state == RUNNING and record.pid != os.getpid() and record.runner == "worker":
            self.executor.cancel(key, record.pid, record.pid_start)
        elif record.state == QUEUED and self._executor is not None:
            self._executor.cancel(key, 0, 0)  # a queue that holds it lets it go at once
        return True

    @_store_errors
    def forget(self, key: str) -> None:
        """Delete the job and its result (an active job is cancelled first)."""
        self.cancel(key)
        for slot in ("job", "result", "traceback", "partial", "runs"):
            self._cache.delete(f"{slot}/{key}")

    @_store_errors
    def check(self) -> None:
        """Raise StoreError if the open store can no longer be read (cheap: one query)."""
        self._cache._sql("SELECT count(*) FROM Settings").fetchall()

    def close(self) -> None:
        self._cache.close()

    # -- used by workers --

    @_store_errors
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
            self._cache.incr(f"runs/{key}")
        return True

    @_store_errors
    def set_worker(self, key: str, pid: int) -> None:
        """Record the worker process of a queued job (called by the executor)."""
        with self._cache.transact():
            record = self._read(key)
            if record is not None and record.state == QUEUED:
                self._write(dataclasses.replace(record, pid=pid, pid_start=_process_start(pid) or 0))

    @_store_errors
    def report(self, key: str, step: int, total: int, message: str = "") -> bool:
        """Store progress; returns False if the job is no longer running (cancelled)."""
        with self._cache.transact():
            record = self._read(key)
            if record is None or record.state != RUNNING or record.pid != os.getpid():
                return False
            self._write(dataclasses.replace(record, step=int(step), total=int(total), message=str(message)))
        return True

    @_store_errors
    def publish(self, key: str, partial: dict) -> bool:
        """Keep the running job's partial series (``metricflow.progress``), replacing the last.

        A partial series is never a result: ``partial`` returns it only while this run of
        the job is running, and it is dropped when the job ends. Returns False if the job is
        no longer running in this process (cancelled).
        """
        with self._cache.transact():
            record = self._read(key)
            if record is None or record.state != RUNNING or record.pid != os.getpid():
                return False
            self._cache.set(f"partial/{key}", json.dumps({"started": record.started, "data": partial}))
        return True

    @_store_errors
    def partial(self, key: str) -> dict | None:
        """The partial series of the job while it runs, or None (not running, none yet)."""
        record = self.status(key)
        text = self._cache.get(f"partial/{key}") if record is not None and record.state == RUNNING else None
        if text is None:
            return None
        try:
            stored = json.loads(text)
        except ValueError:
            return None
        if not isinstance(stored, dict) or stored.get("started") != record.started:
            return None  # left from an earlier run of the same key
        return stored.get("data")

    @_store_errors
    def store_result(self, key: str, result, schema_version: int) -> bool:
        """Store the result and mark the job done, unless it was cancelled meanwhile.

        Raises MetricflowError if the result holds a type that cannot be stored.
        """
        record = self._read(key)
        if record is None or record.state != RUNNING or record.pid != os.getpid():
            return False
        blob = encode_result(result, key, record.config, schema_version)
        with self._cache.transact():
            record = self._read(key)
            if record is None or record.state != RUNNING or record.pid != os.getpid():
                return False
            self._cache.set(f"result/{key}", blob)
            self._cache.delete(f"partial/{key}")
            self._write(dataclasses.replace(
                record, state=DONE, step=record.total, message="done", finished=time.time(),
            ))
        return True

    @_store_errors
    def store_failure(self, key: str, error: str, trace: str) -> None:
        with self._cache.transact():
            if self._finish(key, FAILED, error=error, only_pid=os.getpid()) is not None:
                self._cache.set(f"traceback/{key}", trace)

    @_store_errors
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
            record = JobStatus(**json.loads(text))
        except (TypeError, ValueError):
            return None  # a record from an incompatible version: treat as absent
        return record if record.key == key else None  # a record copied from another key

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
            self._cache.delete(f"partial/{key}")
        return record
