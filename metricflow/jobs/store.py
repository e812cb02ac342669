"""Job runner: cached, deduplicated, cancellable background computations.

A job is a frozen config dataclass and the pure function registered for its type. Its key is
the sha256 of the config's canonical JSON and the result's schema version, so the same config
is computed once, by whichever session asks first, and a change of schema recomputes it.

The store is a diskcache directory (``cache/`` at the repository root, or ``$METRICFLOW_CACHE``)
that holds, per key, a status record (state, progress, error), the result and the traceback
of a failure. Work runs in a spawned worker process (JAX does not survive fork); the executor
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
import hashlib
import json
import logging
import math
import os
import signal
import sqlite3
import sys
import tempfile
import time
import traceback
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

import numpy as np

from metricflow.errors import MetricflowError, StoreError
from metricflow.jobs.keys import canonical_json, job_key, key_of
from metricflow.jobs.kinds import check_estimate, generation, job_kind, kinds
from metricflow.progress import Progress

__all__ = [
    "ACTIVE",
    "DEFAULT_CACHE",
    "Executor",
    "JobCancelled",
    "JobStatus",
    "JobStore",
    "NoExecutor",
    "StoreError",
    "StoreMap",
    "Task",
    "cache_directory",
    "decode_result",
    "encode_result",
    "execute",
    "one_line",
    "run_here",
    "run_many",
    "set_default_executor",
]


DEFAULT_CACHE = Path(__file__).resolve().parents[2] / "cache"

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)

# A worker writes progress, and checks for cancellation, at most this often (seconds).
PROGRESS_INTERVAL = 0.2

# The format of stored results; 1 was a pickle, which is never loaded now (it is recomputed).
RESULT_FORMAT = 2
_MAGIC = b"metricflow-result/%d\n" % RESULT_FORMAT

_log = logging.getLogger("metricflow.jobs.store")



# ---- stored results ---------------------------------------------------------------------
#
# A stored result is  MAGIC  sha256-hex(body) "\n"  body,  body = header-JSON "\n" array-bytes.
# The header holds the key, the config JSON, the schema version, the result's type name and
# the result as a tree of tagged JSON nodes; arrays point at (offset, nbytes) in array-bytes.
# Decoding builds only plain values, numpy arrays of numeric or string dtypes, and the
# dataclasses of the registered job kinds' modules: nothing is imported or executed.

_ARRAY_KINDS = "biufcSU"  # bool, ints, floats, complex, bytes and str; never object


class _Corrupt(Exception):
    """A stored result that fails a check; the message says which."""


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_record_type(cls) -> bool:
    """A dataclass or a NamedTuple: the structured types a stored result may hold."""
    return isinstance(cls, type) and (
        dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    )


def _stored_types() -> dict:
    """Dataclasses and NamedTuples a stored result may hold, by name: the registered configs
    and result types, the types their fields name, and those defined in their modules."""
    return _stored_types_of(generation())


@functools.lru_cache(maxsize=1)
def _stored_types_of(generation: int) -> dict:
    found: dict[str, type] = {}

    def add(cls) -> None:
        if not _is_record_type(cls) or _type_name(cls) in found:
            return
        found[_type_name(cls)] = cls
        for sub in cls.__subclasses__():  # a field typed by a base holds its subclasses (kernel specs)
            add(sub)
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # noqa: BLE001
            hints = {}
        for hint in hints.values():
            walk(hint)

    def walk(hint) -> None:
        add(hint)
        for arg in typing.get_args(hint):
            walk(arg)

    for config_type, kind in kinds().items():
        add(config_type)
        add(kind.result_type)
        for owner in (config_type, kind.result_type, kind.function):
            module = sys.modules.get(getattr(owner, "__module__", None) or "")
            for value in list(vars(module).values()) if module is not None else ():
                if isinstance(value, type) and value.__module__ == module.__name__:
                    add(value)
    return found


def _storable_name(t: type) -> str:
    """The stored name of a dataclass or NamedTuple type, if a result may hold it."""
    name = _type_name(t)
    if _stored_types().get(name) is not t:
        raise MetricflowError(f"cannot store a {name} in a result: define it in the module of a registered job kind")
    return name


def _encode(value, parts: list, size: list):
    """``value`` as a JSON-ready tree; array bytes are appended to ``parts``."""
    t = type(value)
    if value is None or t in (bool, int, float, str):
        return value
    if t is list:
        return [_encode(v, parts, size) for v in value]
    if t is tuple:
        return {"$": "tuple", "v": [_encode(v, parts, size) for v in value]}
    if isinstance(value, tuple) and hasattr(t, "_fields"):
        return {"$": "namedtuple", "type": _storable_name(t), "v": [_encode(v, parts, size) for v in value]}
    if t is dict:
        return {"$": "dict", "v": [[_encode(k, parts, size), _encode(v, parts, size)] for k, v in value.items()]}
    if t is complex:
        return {"$": "complex", "v": [value.real, value.imag]}
    if t is bytes:
        return {"$": "bytes", "v": value.hex()}
    if t is np.ndarray or isinstance(value, np.generic):
        array = np.asarray(value)
        if array.dtype.kind not in _ARRAY_KINDS or array.dtype.fields is not None:
            raise MetricflowError(f"cannot store an array of dtype {array.dtype} in a result; use numbers or strings")
        data = np.ascontiguousarray(array).tobytes()
        node = {"$": "array" if t is np.ndarray else "scalar", "dtype": array.dtype.str,
                "shape": list(array.shape), "offset": size[0], "nbytes": len(data)}
        parts.append(data)
        size[0] += len(data)
        return node
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"$": "dataclass", "type": _storable_name(t),
                "v": {f.name: _encode(getattr(value, f.name), parts, size) for f in dataclasses.fields(value)}}
    raise MetricflowError(
        f"cannot store a {t.__name__} in a result; results hold numbers, strings, None, lists, tuples, "
        "dicts, numpy arrays and dataclasses"
    )


def _decode(node, data: bytes, types: dict):
    t = type(node)
    if node is None or t in (bool, int, float, str):
        return node
    if t is list:
        return [_decode(v, data, types) for v in node]
    if t is not dict:
        raise _Corrupt(f"unexpected {t.__name__} node")
    tag, v = node.get("$"), node.get("v")
    if tag == "tuple":
        return tuple(_decode(x, data, types) for x in v)
    if tag == "namedtuple":
        cls = types.get(node["type"])
        if cls is None or dataclasses.is_dataclass(cls) or len(v) != len(cls._fields):
            raise _Corrupt(f"a {node['type']} that is not a registered NamedTuple of {len(v)} fields")
        return tuple.__new__(cls, [_decode(x, data, types) for x in v])
    if tag == "dict":
        return {_decode(k, data, types): _decode(x, data, types) for k, x in v}
    if tag == "complex":
        re, im = v
        if type(re) is not float or type(im) is not float:
            raise _Corrupt("a complex number with non-float parts")
        return complex(re, im)
    if tag == "bytes":
        return bytes.fromhex(v)
    if tag in ("array", "scalar"):
        dtype = np.dtype(node["dtype"])
        shape = tuple(int(n) for n in node["shape"])
        offset, nbytes = int(node["offset"]), int(node["nbytes"])
        if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or min(shape, default=0) < 0:
            raise _Corrupt(f"an array of dtype {dtype} and shape {shape}")
        count = math.prod(shape)
        if count * dtype.itemsize != nbytes or offset < 0 or offset + nbytes > len(data):
            raise _Corrupt("an array whose size does not match its bytes")
        array = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
        return array if tag == "array" else array[()]
    if tag == "dataclass":
        cls = types.get(node["type"])
        if cls is None or not dataclasses.is_dataclass(cls):
            raise _Corrupt(f"a {node['type']}, which is not a registered result type")
        names = [f.name for f in dataclasses.fields(cls)]
        if sorted(v) != sorted(names):
            raise _Corrupt(f"a {cls.__name__} with fields {sorted(v)}")
        obj = object.__new__(cls)  # no __init__ / __post_init__: the fields as they were stored
        for name in names:
            object.__setattr__(obj, name, _decode(v[name], data, types))
        return obj
    raise _Corrupt(f"unknown node tag {tag!r}")


def encode_result(result, key: str, config_json: str, schema_version: int) -> bytes:
    """The stored bytes of ``result``, the answer for the job ``key`` of ``config_json``.

    Raises MetricflowError if the result holds a type that cannot be stored.
    """
    if key_of(config_json, schema_version) != key:
        raise MetricflowError(f"job {key[:12]} is not the key of the config it is stored with")
    parts: list = []
    tree = _encode(result, parts, [0])
    header = {"key": key, "config": config_json, "schema": int(schema_version),
              "type": _type_name(type(result)), "tree": tree}
    body = json.dumps(header, separators=(",", ":")).encode() + b"\n" + b"".join(parts)
    return _MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def decode_result(blob, key: str, result_type: type | None = None):
    """The result stored in ``blob`` for the job ``key``, after checking it.

    Returns (result, header): header has "config" (canonical JSON) and "schema".
    Raises MetricflowError naming the first check that fails: the format, the sha256 of the
    bytes, the key, the config the key belongs to, the result's type (``result_type`` if
    given) and the config inside the result.
    """
    try:
        return _decode_checked(blob, key, result_type)
    except _Corrupt as err:
        raise MetricflowError(str(err)) from None
    except Exception as err:  # noqa: BLE001  (any malformed piece is a corrupt entry)
        raise MetricflowError(f"malformed ({one_line(err)})") from None


def _decode_checked(blob, key: str, result_type):
    if not isinstance(blob, bytes):
        raise _Corrupt("no stored bytes" if blob is None else f"a stored {type(blob).__name__}, not bytes")
    if not blob.startswith(_MAGIC):
        older = blob.startswith(b"\x80") or blob.startswith(b"metricflow-result/")
        raise _Corrupt("written in an older format" if older else "not a metricflow result")
    digest, _, body = blob[len(_MAGIC):].partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        raise _Corrupt("its sha256 does not match its bytes")
    text, _, data = body.partition(b"\n")
    header = json.loads(text)
    if header["key"] != key:
        raise _Corrupt(f"it is the result of job {str(header['key'])[:12]}, not of {key[:12]}")
    if key_of(header["config"], header["schema"]) != key:
        raise _Corrupt("its config and schema do not give its key")
    result = _decode(header["tree"], data, _stored_types())
    if _type_name(type(result)) != header["type"]:
        raise _Corrupt(f"it holds a {type(result).__name__}, its header says {header['type']}")
    if result_type is not None and not isinstance(result, result_type):
        raise _Corrupt(f"it holds a {type(result).__name__}, the job kind makes {result_type.__name__}")
    inner = getattr(result, "config", None)
    if dataclasses.is_dataclass(inner) and canonical_json(inner) != header["config"]:
        raise _Corrupt("the result inside answers another config")
    return result, header


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
      runner: "worker" (an executor's worker, which cancelling terminates) or "inline"
        (``run_job`` in the caller's own process, which stops at its next progress report).
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
    runner: str = "worker"

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
            if _DEFAULT_EXECUTOR[0] is None:
                raise MetricflowError("no default executor is installed; import metricflow.jobs")
            self._executor = _DEFAULT_EXECUTOR[0]()  # $METRICFLOW_SCHEDULER or local
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
    def submit(self, config) -> str:
        """Start the job for ``config`` unless it is done or in progress; return its key.

        A failed or cancelled job is started again (a retry). A done job whose result cannot
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
            executor.submit(Task(str(self.directory), key, kind.function, config, kind.schema_version, kind.fan_out))
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
        return True

    @_store_errors
    def forget(self, key: str) -> None:
        """Delete the job and its result (an active job is cancelled first)."""
        self.cancel(key)
        for slot in ("job", "result", "traceback"):
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
    fan_out: bool = False


def one_line(err: BaseException) -> str:
    """``TypeName: first line of the message``, for status records and the CLI."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def execute(task: Task) -> None:
    """Run one task in this process, writing status, progress and the result to the store.

    This is what every executor runs in its worker. The progress callback given to the job
    raises JobCancelled once the job has been cancelled, so cancellation also works where
    the executor cannot kill the worker.
    """
    store = JobStore(task.directory, executor=NoExecutor())
    try:
        if not store.mark_running(task.key):
            return  # cancelled (or taken) before it started
        try:
            _compute(store, task.key, task.function, task.config, task.schema_version, task.fan_out)
        except (JobCancelled, Exception):
            return  # the store has the failure (or the cancel)
    finally:
        store.close()


def _reporter(store: "JobStore", key: str) -> Progress:
    """A job's progress callback: writes to the store, raises JobCancelled once cancelled."""
    last = [0.0]

    def progress(step: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_INTERVAL and step < total:
            return
        last[0] = now
        if not store.report(key, step, total, message):
            raise JobCancelled(key)

    return progress


def _compute(store: "JobStore", key: str, function, config, schema_version: int, fan_out: bool = False):
    """Run the job whose lease this process holds; store its result or its failure.

    A fan-out kind also gets ``map_configs``: a ``StoreMap`` on the same store directory, so
    its pieces are cached jobs run by the default executor (local processes or Dask).
    Returns the result. Raises JobCancelled if it was cancelled, else whatever the job
    raised (after storing it as the failure).
    """
    extra = {"map_configs": StoreMap(store.directory)} if fan_out else {}
    try:
        result = function(config, _reporter(store, key), **extra)
    except JobCancelled:
        raise
    except BaseException as err:  # noqa: BLE001  (kept, with its traceback, in the store)
        store.store_failure(key, one_line(err), traceback.format_exc())
        raise
    try:
        store.store_result(key, result, schema_version)
    except MetricflowError as err:
        store.store_failure(key, f"the result cannot be stored: {err}", traceback.format_exc())
        raise
    return result


class Executor(Protocol):
    """Starts tasks in the background. ``submit`` returns at once; the worker calls
    ``execute(task)``. ``cancel`` stops the worker of a cancelled job if it can (the store
    has already marked it cancelled, which the job sees at its next progress report)."""

    def submit(self, task: Task) -> None: ...

    def cancel(self, key: str, pid: int, pid_start: int) -> None: ...


class NoExecutor:
    """The executor of a worker's own store: a worker never starts jobs."""

    def submit(self, task: Task) -> None:
        raise RuntimeError("a worker does not start jobs")

    def cancel(self, key: str, pid: int, pid_start: int) -> None:
        pass




def run_here(config, store: "JobStore", poll: float = 0.2):
    """Compute ``config`` in this process under the store's lease, or wait for whoever holds it.

    A stored result is returned; a job another live process holds is waited for; otherwise
    this process takes the lease, computes (progress and cancels go through the store) and
    stores the result. ``metricflow.jobs.run_job`` is this plus the choice of the store and
    of a Dask cluster.
    """
    kind = job_kind(config)
    key = job_key(config, kind.schema_version)
    told = False
    while True:
        result = store.result(key)
        if result is not None:
            return result
        if store.claim(key, config, kind.schema_version):
            try:
                return _compute(store, key, kind.function, config, kind.schema_version, kind.fan_out)
            except JobCancelled:
                raise MetricflowError(
                    f"the {type(config).__name__} job {key[:12]} was cancelled from another session; run it again"
                ) from None
        if not told and sys.stderr.isatty():
            print(f"waiting for job {key[:12]}, which another process is computing", file=sys.stderr)
            told = True
        store.wait(key, poll)  # then read its result, or take the lease if it failed


# The factory of the executor a JobStore gets when it is given none; metricflow.jobs.dask
# installs ``default_executor`` ($METRICFLOW_SCHEDULER, else local processes).
_DEFAULT_EXECUTOR: list = [None]


def set_default_executor(factory: Callable[[], Executor]) -> None:
    """Make ``factory()`` the executor of every JobStore created without one."""
    _DEFAULT_EXECUTOR[0] = factory


# ---- many jobs ---------------------------------------------------------------------------


def run_many(
    configs: Sequence,
    store: Optional[JobStore] = None,
    progress: Optional[Callable[[int, int, str], None]] = None,
    poll: float = 0.2,
):
    """Submit every config as a job of ``store`` and wait for all; return their results in order.

    Each config is an ordinary cached job: a finished one comes back at once, an active one
    (submitted by anyone) is waited for, a failed one is retried. The store's executor runs
    them (the local process pool, or a Dask cluster), so they run in parallel there.

    Args:
      configs: registered configs (duplicates are computed once).
      store: the JobStore (default ``JobStore()``, with ``default_executor()``).
      progress: optional ``progress(done, total, message)``, called when a job finishes.
      poll: seconds between looks at the store.

    Returns:
      The results, in the order of ``configs``.

    Raises:
      MetricflowError: once all have finished, if any failed or was cancelled (the others
        stay stored, so a rerun computes only those).
    """
    own = store is None
    store = store or JobStore()
    try:
        keys = [store.submit(c) for c in configs]
        unique = list(dict.fromkeys(keys))
        finished: dict = {}
        while True:
            for key in unique:
                if key not in finished:
                    status = store.status(key)
                    if status is None or status.state not in ACTIVE:
                        finished[key] = status
                        if progress is not None:
                            what = status.state if status is not None else "lost"
                            progress(len(finished), len(unique), f"{status.kind if status else 'job'} {key[:12]} {what}")
            if len(finished) == len(unique):
                break
            time.sleep(poll)
        bad = [(k, s) for k, s in finished.items() if s is None or s.state != DONE]
        results = {k: store.result(k) for k in unique if k not in dict(bad)}
        bad += [(k, finished[k]) for k, r in results.items() if r is None]
        if bad:
            key, status = bad[0]
            why = f"{status.state}: {status.error}" if status is not None else "its record disappeared"
            raise MetricflowError(
                f"{len(bad)} of {len(unique)} jobs did not finish; the first, {status.kind if status else ''} "
                f"{key[:12]}, {why}. The finished ones are stored; run again to retry the rest"
            )
        return [results[k] for k in keys]
    finally:
        if own:
            store.close()


class StoreMap:
    """A ``map_configs`` (``metricflow.progress.ConfigMap``) that runs every config as a cached
    job: ``run_many`` on ``store``, or on a store opened on ``directory`` for each call.

    ``stored(configs)`` says which results the store already holds.
    """

    def __init__(self, store: "JobStore | str | Path | None" = None):
        self._store = store if isinstance(store, JobStore) else None
        self._directory = None if self._store is not None else store

    def _open(self):
        if self._store is not None:
            return self._store, False
        return JobStore(self._directory), True

    def __call__(self, function, configs) -> list:
        configs = list(configs)
        store, own = self._open()
        try:
            if len(configs) == 1 and not getattr(store.executor, "runs_elsewhere", False):
                return [run_here(configs[0], store)]  # one piece: here, under its lease
            return run_many(configs, store)
        finally:
            if own:
                store.close()

    def stored(self, configs) -> list[bool]:
        store, own = self._open()
        try:
            out = []
            for config in configs:
                key = job_key(config)
                status = store.status(key)
                out.append(status is not None and status.state == DONE and store.result(key) is not None)
            return out
        finally:
            if own:
                store.close()
