"""A fair queue in front of an executor: the jobs of a served dashboard's sessions take turns.

``FairQueue`` is an ``Executor`` that holds tasks back from the executor it wraps (the local
pool, or a Dask cluster) and lets them start one slot at a time:

* **Turns.** Every job has owners: the sessions that asked for it. A session's i-th waiting
  job has turn s + i, where s counts the jobs started on its turns so far; the job with the
  earliest turn starts next, so sessions alternate (round robin). Among jobs of one turn the
  shortest estimate starts first, then the oldest. A session that arrives, or comes back after
  a pause, saves no turns up: its count is raised to the turn of the job started last. A job that
  several sessions asked for is computed once (the store's key already says so) and takes
  the earliest turn of its owners.
* **A bound per session.** A session may have ``max_waiting`` jobs waiting; past that,
  ``admit`` raises ``QueueFull``, which says when its next waiting job should start.
* **Memory.** A job starts only while the estimated peaks of the running jobs and its own fit
  in the memory available (``memory``); otherwise it waits, and nothing else overtakes it. A
  job that could never fit was refused at submit (``check_estimate``) as before.
* **Leaving.** ``release(key, owner)`` takes the owner off the job; a job left with no owner
  is cancelled, waiting or running, and one that others still wait for goes on. A session
  that ``alive`` says has gone (a closed tab) for ``GONE_SECONDS`` releases all its jobs.
* **Where a job stands.** ``place(key)`` gives its position and expected start, by
  simulating the turns on the slots with the jobs' cost estimates.

Jobs submitted without an owner (the CLI, tests) form a lane of their own. Nothing here is
shared between processes: the queue is the server's, in memory; the store stays the truth
about each job's state, so a job cancelled, finished or failed elsewhere leaves the queue.

Example:
  >>> queue = FairQueue(LocalProcessExecutor())
  >>> store = JobStore(executor=queue)
  >>> queue.admit(config, "session-1")            # QueueFull past the bound
  >>> key = store.submit(config, owner="session-1")
  >>> queue.place(key)                            # Place(position=2, start_in=14.0, ...)
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from metricflow.errors import MetricflowError, available_memory_bytes
from metricflow.jobs.keys import job_key
from metricflow.jobs.kinds import estimate
from metricflow.jobs.status import ACTIVE, QUEUED, NoExecutor, Task, one_line, resident_bytes
from metricflow.jobs.store import JobStore

__all__ = ["FairQueue", "Place", "QueueFull", "MAX_WAITING"]

_log = logging.getLogger("metricflow.jobs.queue")

MAX_WAITING = 4  # jobs one session may have waiting
GONE_SECONDS = 5.0  # a session not alive for this long has left (a reload reconnects sooner)
TICK_SECONDS = 0.1  # how often running jobs are checked for their end
CHECK_SECONDS = 1.0  # how often waiting jobs and sessions are checked


class QueueFull(MetricflowError):
    """A session already has its most jobs waiting; the message says when one should start."""


@dataclass(frozen=True)
class Place:
    """Where a job held by a ``FairQueue`` stands.

    Attributes:
      position: 1 for the next job to start, 0 once it runs.
      waiting: jobs waiting in all.
      start_in: expected seconds until it starts, from the cost estimates (0 once running).
      reason: why it waits, in a few words ("" once running).
      owners: the sessions waiting for it.
    """

    position: int
    waiting: int
    start_in: float
    reason: str
    owners: int


@dataclass
class _Entry:
    task: Task
    owners: list  # session ids, first submitter first
    seconds: float  # estimated run time
    bytes: int  # estimated peak memory
    since: float = field(default_factory=time.monotonic)
    started: float = 0.0  # monotonic time it was handed to the executor, 0 while waiting


class FairQueue:
    """Hold tasks from ``inner`` and start them in turns by session, within slots and memory.

    Args:
      inner: the executor that runs a task once it starts (``LocalProcessExecutor``,
        ``DaskExecutor``).
      slots: jobs running at once; default the inner executor's ``max_workers``, or its
        ``slots()``, else 2.
      max_waiting: waiting jobs per session (default ``MAX_WAITING``).
      memory: ``memory() -> bytes`` available now, for admission by memory; default the
        machine's available memory for a local executor, and no admission for one that
        ``runs_elsewhere``.
      alive: ``alive(owner) -> bool``, whether a session is still there; None: always.
      resident: ``resident(pid) -> bytes | None``, the memory a running job's process holds
        now (the part of its estimated peak already taken from ``memory``).
    """

    def __init__(self, inner, slots: int | None = None, max_waiting: int = MAX_WAITING,
                 memory: Callable[[], int] | None = None, alive: Callable[[str], bool] | None = None,
                 resident: Callable[[int], int | None] | None = None):
        self.inner = inner
        if slots is None:
            slots = getattr(inner, "max_workers", None) or (inner.slots() if hasattr(inner, "slots") else 2)
        if int(slots) < 1 or int(max_waiting) < 1:
            raise MetricflowError(f"a fair queue needs at least 1 slot and 1 waiting job, got {slots} and {max_waiting}")
        self.slots, self.max_waiting = int(slots), int(max_waiting)
        if memory is None and not getattr(inner, "runs_elsewhere", False):
            memory = available_memory_bytes
        self.memory, self.alive = memory, alive
        self.resident = resident or resident_bytes
        self._lock = threading.Condition()
        self._entries: dict[str, _Entry] = {}  # waiting and running, in submission order
        self._turns: list[str] = []  # owners in the order they first submitted
        self._served: dict[str, int] = {}  # owner -> jobs started on its turns
        self._now = 0  # the turn of the job started last
        self._gone: dict[str, float] = {}  # owner -> monotonic time it was first seen gone
        self._stores: dict[str, JobStore] = {}
        self._blocked = ""  # the key held back for memory, if any
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="metricflow-fair-queue", daemon=True)
        self._thread.start()

    # -- the executor interface --

    runs_elsewhere = property(lambda self: getattr(self.inner, "runs_elsewhere", False))

    def warm(self) -> None:
        """Start the inner executor's workers now, if it has any."""
        if hasattr(self.inner, "warm"):
            self.inner.warm()

    def submit(self, task: Task) -> None:
        """Hold ``task`` until its turn; its owner is ``task.owner`` ("" for none)."""
        cost = estimate(task.config)
        with self._lock:
            entry = self._entries.get(task.key)
            if entry is not None and not entry.started:
                entry.task = task  # a resubmission after a cancel: the newer task
            else:
                self._entries[task.key] = _Entry(task, [], cost.seconds, int(cost.bytes))
            self._join(task.key, task.owner)
            self._lock.notify_all()

    def cancel(self, key: str, pid: int, pid_start: int) -> None:
        """The store has cancelled ``key``: drop it if waiting, else stop its worker."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and not entry.started:
                del self._entries[key]
                self._lock.notify_all()
                return
        self.inner.cancel(key, pid, pid_start)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        for store in self._stores.values():
            store.close()

    # -- sessions --

    def admit(self, configs, owner: str) -> None:
        """Raise QueueFull if ``owner`` may not add the jobs of ``configs`` (one config or a
        list, submitted by one Run) to its waiting ones. A Run's jobs are let in together if
        they fit in the bound, or if the session has none waiting."""
        keys = [job_key(c) for c in (configs if isinstance(configs, (list, tuple)) else [configs])]
        with self._lock:
            new = [k for k in dict.fromkeys(keys)
                   if not (k in self._entries and (self._entries[k].started or owner in self._entries[k].owners))]
            mine = [k for k, e in self._entries.items() if not e.started and owner in e.owners]
            if not new or not mine or len(mine) + len(new) <= self.max_waiting:
                return
            plan = self._plan()
        soonest = min(plan[k][1] for k in mine)
        raise QueueFull(
            f"you have {len(mine)} job{'s' if len(mine) > 1 else ''} waiting and one session may have "
            f"{self.max_waiting}; Run again once one of them starts (expected in about {_seconds(soonest)}), "
            "or cancel one")

    def join(self, key: str, owner: str) -> None:
        """Add ``owner`` to the waiting or running job ``key`` (a config another session asked for)."""
        with self._lock:
            if key in self._entries:
                self._join(key, owner)

    def release(self, key: str, owner: str) -> bool:
        """``owner`` no longer waits for ``key``. Returns whether the job should be cancelled:
        it is one of this queue's jobs and no session waits for it any more."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return True
            if owner in entry.owners:
                entry.owners.remove(owner)
            return not entry.owners

    def owners(self, key: str) -> list[str]:
        """The sessions waiting for ``key`` (empty if the queue does not hold it)."""
        with self._lock:
            entry = self._entries.get(key)
            return list(entry.owners) if entry else []

    def sessions(self) -> int:
        """How many sessions wait for a job here (waiting or running): the pages that poll."""
        with self._lock:
            return len({o for e in self._entries.values() for o in e.owners if o})

    def place(self, key: str) -> Place | None:
        """Where ``key`` stands, or None if the queue does not hold it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.started:
                return Place(0, self._waiting(), 0.0, "", len(entry.owners))
            plan = self._plan()
            position, start_in = plan[key]
            if key == self._blocked:
                reason = "waiting for memory: the running jobs' estimated peaks leave too little for it"
            elif position == 1 and self._running() >= self.slots:
                reason = f"next in line, waiting for a free slot ({self.slots} in all)"
            else:
                reason = f"waiting for its turn: {position - 1} job{'s' if position != 2 else ''} before it"
            return Place(position, self._waiting(), start_in, reason, len(entry.owners))

    # -- internals (the lock is held) --

    def _join(self, key: str, owner: str) -> None:
        entry = self._entries[key]
        if owner in entry.owners:
            return
        if not any(owner in e.owners for e in self._entries.values() if not e.started):
            self._served[owner] = max(self._served.get(owner, 0), self._now)  # no turns saved up
        entry.owners.append(owner)
        if owner not in self._turns:
            self._turns.append(owner)

    def _waiting(self) -> int:
        return sum(1 for e in self._entries.values() if not e.started)

    def _running(self) -> int:
        return sum(1 for e in self._entries.values() if e.started)

    def _ranks(self) -> dict[str, tuple[int, str]]:
        """key -> (its turn, the owner whose turn it is) for every waiting job. An owner's
        i-th waiting job has turn ``served + i``, ``served`` being the jobs started on its turns."""
        ranks = {}
        for owner in self._turns:
            lane = [k for k, e in self._entries.items() if not e.started and owner in e.owners]
            for i, key in enumerate(lane):
                turn = self._served.get(owner, 0) + i
                if key not in ranks or turn < ranks[key][0]:
                    ranks[key] = (turn, owner)
        return ranks

    def _order(self) -> list[str]:
        """The waiting keys in the order they would start: by turn; within a turn, the
        shortest estimate first (then the oldest)."""
        ranks = self._ranks()
        last = len(self._turns) + max((t for t, _ in ranks.values()), default=0) + 1  # jobs without owner
        waiting = [k for k, e in self._entries.items() if not e.started]
        return sorted(waiting, key=lambda k: (ranks.get(k, (last, ""))[0], self._entries[k].seconds, self._entries[k].since))

    def _plan(self) -> dict[str, tuple[int, float]]:
        """key -> (position, expected seconds to start) for every waiting job."""
        now = time.monotonic()
        busy = [max(0.0, e.seconds - (now - e.started)) for e in self._entries.values() if e.started]
        free = sorted(busy + [0.0] * max(0, self.slots - len(busy)))  # when each slot is next free
        plan = {}
        for position, key in enumerate(self._order(), 1):
            start = free.pop(0)
            plan[key] = (position, start)
            free.append(start + self._entries[key].seconds)
            free.sort()
        return plan

    def _fits(self, entry: _Entry) -> bool:
        """Whether ``entry``'s estimated peak fits beside the running jobs' (always, if none runs)."""
        running = [e for e in self._entries.values() if e.started]
        if self.memory is None or not running:
            return True
        still = 0
        for e in running:
            pid = self._store(e.task.directory)._read(e.task.key)
            held = self.resident(pid.pid) if pid is not None and pid.pid else None
            still += max(0, e.bytes - (held or 0))
        return entry.bytes + still <= self.memory()

    def _store(self, directory: str) -> JobStore:
        store = self._stores.get(directory)
        if store is None:
            store = self._stores[directory] = JobStore(directory, executor=NoExecutor())
        return store

    # -- the dispatcher thread --

    def _loop(self) -> None:
        last_check = 0.0
        while True:
            with self._lock:
                if self._closed:
                    return
                self._lock.wait(TICK_SECONDS)
                try:
                    check = time.monotonic() - last_check >= CHECK_SECONDS
                    self._end_finished(waiting=check)
                    if check:
                        last_check = time.monotonic()
                        self._drop_gone()
                    self._start_next()
                except Exception:  # noqa: BLE001  (a store that cannot be read now: try again next tick)
                    _log.exception("metricflow: the fair queue could not dispatch")

    def _end_finished(self, waiting: bool) -> None:
        """Forget the running jobs the store says have ended and, if ``waiting``, the waiting
        ones it says are no longer queued (cancelled or finished elsewhere)."""
        for key, entry in list(self._entries.items()):
            if not (entry.started or waiting):
                continue
            record = self._store(entry.task.directory)._read(key)
            if entry.started and (record is None or record.state not in ACTIVE):
                del self._entries[key]
            elif not entry.started and (record is None or record.state != QUEUED):
                del self._entries[key]

    def _drop_gone(self) -> None:
        """Release the jobs of sessions that have left; cancel the jobs no one waits for."""
        if self.alive is None:
            return
        now = time.monotonic()
        for owner in list(self._turns):
            if self.alive(owner):
                self._gone.pop(owner, None)
                continue
            if now - self._gone.setdefault(owner, now) < GONE_SECONDS:
                continue
            self._turns.remove(owner)
            self._gone.pop(owner, None)
            for key, entry in list(self._entries.items()):
                if owner in entry.owners:
                    entry.owners.remove(owner)
                    if not entry.owners:
                        _log.info("metricflow: job %s cancelled: its session has left", key[:12])
                        self._cancel(key)

    def _cancel(self, key: str) -> None:
        """Cancel ``key`` in the store, then drop it if waiting, else stop its worker."""
        entry = self._entries[key]
        store = self._store(entry.task.directory)
        record = store._read(key)
        store.cancel(key)  # marks it cancelled; this store's executor starts and stops nothing
        if entry.started and record is not None:
            self.inner.cancel(key, record.pid, record.pid_start)
        else:
            del self._entries[key]

    def _start_next(self) -> None:
        """Hand waiting jobs to the inner executor while a slot is free and the next fits."""
        self._blocked = ""
        while self._running() < self.slots:
            order = self._order()
            if not order:
                return
            key = order[0]
            entry = self._entries[key]
            if not self._fits(entry):
                self._blocked = key
                return
            turn, owner = self._ranks().get(key, (self._now, ""))
            self._served[owner] = self._served.get(owner, 0) + 1
            self._now = max(self._now, turn)
            entry.started = time.monotonic()
            try:
                self.inner.submit(entry.task)
            except Exception as err:  # noqa: BLE001  (the job fails with the reason; the queue goes on)
                self._store(entry.task.directory).store_failure(key, f"the executor could not start it: {one_line(err)}", "")
                del self._entries[key]


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
