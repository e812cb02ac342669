"""Status records of jobs, the liveness of the processes that hold them, and what an
executor is handed (``Task``) and must do (``Executor``)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

__all__ = ["ACTIVE", "CANCELLED", "DONE", "FAILED", "QUEUED", "RUNNING", "Executor", "JobCancelled",
           "JobStatus", "NoExecutor", "Task", "one_line", "resident_bytes", "set_default_executor"]

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)

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


def resident_bytes(pid: int) -> int | None:
    """The resident memory (VmRSS) of process ``pid`` in bytes, or None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _alive(pid: int, pid_start: int) -> bool:
    start = _process_start(pid) if pid > 0 else None
    return start is not None and (pid_start == 0 or start == pid_start)


class JobCancelled(Exception):
    """Raised inside a job by its progress callback once the job has been cancelled."""



# ---- executing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """Everything a worker needs, picklable: run ``function(config, progress)`` for ``key``.
    ``owner`` is the session that submitted it ("" for none), for a ``FairQueue``."""

    directory: str
    key: str
    function: Callable
    config: Any
    schema_version: int
    fan_out: bool = False
    owner: str = ""


def one_line(err: BaseException) -> str:
    """``TypeName: first line of the message``, for status records and the CLI."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


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


# The factory of the executor a JobStore gets when it is given none; metricflow.jobs.dask
# installs ``default_executor`` ($METRICFLOW_SCHEDULER, else local processes).
_DEFAULT_EXECUTOR: list = [None]


def set_default_executor(factory: Callable[[], Executor]) -> None:
    """Make ``factory()`` the executor of every JobStore created without one."""
    _DEFAULT_EXECUTOR[0] = factory
