"""The local executor: a pool of warm worker processes on this machine."""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import queue
import select
import subprocess
import sys
import threading
import time
import traceback

from metricflow.errors import MetricflowError
from metricflow.jobs.execute import execute
from metricflow.jobs.status import QUEUED, NoExecutor, Task, _alive, one_line, resident_bytes
from metricflow.jobs.store import JobStore

__all__ = ["LocalProcessExecutor", "worker_main"]

_log = logging.getLogger("metricflow.jobs.local")

# Defaults of the settings (see LocalProcessExecutor).
MAX_JOBS = 50
MAX_RSS_MB = 2048
NESTED_IDLE_SECONDS = 60.0
# A job that finds no idle ready worker waits this long for a busy one before taking one
# still starting or starting another (a job is "done" in the store a moment before its
# worker is free for the next).
HANDOVER_SECONDS = 0.3
# Seconds between SIGTERM and SIGKILL when a job is cancelled, or a retired worker lingers.
GRACE_SECONDS = 5.0
# A worker checks this often whether its parent process is still there (``_exit_with_parent``).
PARENT_POLL_SECONDS = 1.0
# Modules a worker imports before its first job (never neural_tangents: ``metricflow._nt``
# loads it, and TensorFlow, only for the jobs that need it).
WARM_MODULES = ("metricflow._jax", "metricflow.jobs", "optax", "scipy.stats", "sklearn.cluster", "sklearn.metrics")

_WORKER_CODE = "from metricflow.jobs.local import worker_main; worker_main()"
_READY, _ACK = b"ready\n", b"done\n"
_IN_WORKER = [False]  # set by worker_main: a pool made inside a worker is a nested pool


class LocalProcessExecutor:
    """Runs tasks in warm worker processes on this machine, at most ``max_workers`` at a time.

    A worker is a fresh interpreter (``python -c ...``) started with subprocess: JAX does not
    survive fork, and Streamlit replaces ``sys.modules["__main__"]`` with the page script, so
    multiprocessing's spawn would run that page again. At start it imports JAX, the job kinds
    and the modules common jobs use (``WARM_MODULES``), never neural-tangents, and says it is
    ready. Then it loops (``worker_main``): read one task (a length-prefixed pickle) on stdin,
    ``execute`` it, acknowledge it on stdout. JAX's compiled functions stay cached in it
    between jobs. It exits when its stdin closes, so an idle worker never outlives this
    process (a busy one finishes its job first).

    Tasks wait in this process, in order (their jobs stay "queued"), for one of
    ``max_workers`` threads; that thread takes an idle worker (or starts one), records its
    pid in the job, sends the task and waits for the acknowledgement. A worker that dies
    during a job (killed, crashed, out of memory) fails that job and stores nothing; the next
    job gets a new worker. Cancelling a job kills its worker (SIGTERM, then SIGKILL after
    ``GRACE_SECONDS``). A worker of another process is not signalled, as it may have moved
    on to another job: that job stops at its next progress report.

    Executors with the same settings share one pool per process (every ``JobStore`` made
    without an executor gets its own ``LocalProcessExecutor``). Constructing one starts
    nothing. A job that finds no idle worker starts one; once a job has finished, the pool
    starts the rest of its ``max_workers`` (so that the first job has the CPUs to itself).
    ``warm()`` starts them all at once (the dashboard's server start).

    Args:
      max_workers: workers at most (default min(2, cpu count), or ``$METRICFLOW_WORKERS``).
      max_jobs: a worker is replaced after this many jobs (default 50, or
        ``$METRICFLOW_WORKER_JOBS``).
      max_rss_mb: a worker is replaced after a job that leaves its resident memory
        (VmRSS) above this many MiB (default 2048, or ``$METRICFLOW_WORKER_RSS_MB``).
      idle_seconds: an idle worker exits after this many seconds. Default: never, except in
        a pool made inside a worker (a fan-out job's pieces), where it is 60 s.

    Example:
      >>> executor = LocalProcessExecutor()
      >>> executor.warm()                      # the dashboard, at server start
      >>> store = JobStore(executor=executor)
    """

    def __init__(self, max_workers: int | None = None, max_jobs: int | None = None,
                 max_rss_mb: int | None = None, idle_seconds: float | None = None):
        self.max_workers = _setting(max_workers, "max_workers", "METRICFLOW_WORKERS", max(1, min(2, os.cpu_count() or 1)))
        self.max_jobs = _setting(max_jobs, "max_jobs", "METRICFLOW_WORKER_JOBS", MAX_JOBS)
        self.max_rss_mb = _setting(max_rss_mb, "max_rss_mb", "METRICFLOW_WORKER_RSS_MB", MAX_RSS_MB)
        if idle_seconds is None and _IN_WORKER[0]:
            idle_seconds = NESTED_IDLE_SECONDS
        if idle_seconds is not None and not idle_seconds > 0:
            raise MetricflowError(f"idle_seconds must be a positive number of seconds or None, got {idle_seconds!r}")
        self.idle_seconds = idle_seconds
        self._pool = _pool_for(self.max_workers, self.max_jobs, self.max_rss_mb, idle_seconds)

    def warm(self) -> None:
        """Start the pool's missing workers now, so that the next jobs find them ready."""
        self._pool.warm()

    def workers(self) -> list[int]:
        """The pids of the pool's live workers (idle and busy)."""
        return self._pool.pids()

    def close(self) -> None:
        """Stop the pool's idle workers, and the busy ones after their job; new jobs start new ones."""
        self._pool.close()

    def submit(self, task: Task) -> None:
        """Queue ``task`` for a worker; raises at once if it cannot be pickled."""
        blob = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)  # fail here, not in the worker
        self._pool.submit(task.directory, task.key, blob)

    def cancel(self, key: str, pid: int, pid_start: int) -> None:
        """Kill the worker running ``key`` if it is one of this process's workers."""
        self._pool.cancel(key, pid, pid_start)


def _setting(value, name: str, env: str, default: int) -> int:
    """``value``, else the integer in ``$env``, else ``default``; checked to be at least 1."""
    where = name
    if value is None and os.environ.get(env, "").strip():
        value, where = os.environ[env].strip(), f"${env}"
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or str(number) != str(value).strip():
        raise MetricflowError(
            f"{where} must be a whole number of at least 1, got {value!r}; leave it unset for {default}")
    return number


# ---- the pool -----------------------------------------------------------------------------


class _Worker:
    """One worker process and its count of jobs."""

    def __init__(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.process = subprocess.Popen([sys.executable, "-c", _WORKER_CODE],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.pid = self.process.pid
        self.jobs = 0
        self.idle_since = time.monotonic()
        self.retiring = False  # set by close() while busy: retire after this job
        self.warm = False  # its ready line has been read

    def alive(self) -> bool:
        return self.process.poll() is None

    def ready(self) -> bool:
        """Whether it has finished its imports (it says so once, before any acknowledgement)."""
        if not self.warm and select.select([self.process.stdout], [], [], 0)[0]:
            self.warm = self.process.stdout.readline() == _READY
        return self.warm

    def run(self, frame: bytes) -> bool:
        """Send one task and wait for its acknowledgement; False if the worker died."""
        try:
            self.process.stdin.write(len(frame).to_bytes(8, "big"))
            self.process.stdin.write(frame)
            self.process.stdin.flush()
            if not self.warm:
                self.warm = self.process.stdout.readline() == _READY
            return self.warm and self.process.stdout.readline() == _ACK
        except (OSError, ValueError):  # a broken pipe, or stdin closed by close()
            return False

    def rss_mb(self) -> float | None:
        """Resident memory (VmRSS) in MiB, or None where /proc cannot tell."""
        held = resident_bytes(self.pid)
        return None if held is None else held / 2**20

    def retire(self) -> None:
        """Close stdin: the worker exits once it has finished its job."""
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def stop(self) -> int:
        """Retire the worker and wait for it (SIGKILL after GRACE_SECONDS); its exit code."""
        self.retire()
        try:
            return self.process.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def terminate(self) -> None:
        """SIGTERM now, SIGKILL after GRACE_SECONDS if it is still there."""
        self.process.terminate()
        timer = threading.Timer(GRACE_SECONDS, self.process.kill)  # a no-op once it has exited
        timer.daemon = True
        timer.start()


class _Pool:
    """The workers of one setting, shared by the executors that have it."""

    def __init__(self, max_workers: int, max_jobs: int, max_rss_mb: int, idle_seconds: float | None):
        self.max_workers, self.max_jobs, self.max_rss_mb = max_workers, max_jobs, max_rss_mb
        self.idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._runners = 0  # threads that take tasks from the queue, one per worker slot
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)  # notified when a worker becomes idle
        self._idle: list[_Worker] = []
        self._busy: dict[str, _Worker] = {}
        self._reaper: threading.Thread | None = None

    def _start(self) -> _Worker:
        """A new worker (the lock is held)."""
        if self.idle_seconds is not None and self._reaper is None:
            self._reaper = threading.Thread(target=self._reap, daemon=True)
            self._reaper.start()
        return _Worker()

    def warm(self) -> None:
        with self._lock:
            while len(self._idle) + len(self._busy) < self.max_workers:
                self._idle.insert(0, self._start())
            self._returned.notify_all()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._idle + list(self._busy.values()) if w.alive()]

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            for worker in self._busy.values():
                worker.retiring = True
        for worker in idle:
            worker.stop()

    def _take(self, key: str) -> _Worker:
        """A worker for ``key``: the last used of the idle ready ones; else, after waiting up to
        HANDOVER_SECONDS for a busy one to finish, one still starting, or a new one."""
        deadline = time.monotonic() + HANDOVER_SECONDS
        with self._lock:
            while True:
                for worker in [w for w in self._idle if not w.alive()]:
                    self._idle.remove(worker)
                    worker.process.wait()  # died while idle: reap it
                ready = [w for w in self._idle if w.ready()]
                if ready or (self._idle and (not self._busy or time.monotonic() >= deadline)):
                    worker = (ready or self._idle)[-1]
                    self._idle.remove(worker)
                    break
                if not self._busy or time.monotonic() >= deadline:
                    worker = self._start()
                    break
                self._returned.wait(deadline - time.monotonic())  # a busy one may be about to finish
            self._busy[key] = worker
            return worker

    def submit(self, directory: str, key: str, blob: bytes) -> None:
        """Queue a task; the runner threads (at most ``max_workers``) take tasks in order."""
        self._queue.put((directory, key, blob))
        with self._lock:
            if self._runners < self.max_workers:
                self._runners += 1
                threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                self._run(*self._queue.get())
            except Exception:  # noqa: BLE001  (a store that cannot be opened: logged, the slot kept)
                _log.exception("metricflow: a local worker's task could not be run")

    def _run(self, directory: str, key: str, blob: bytes) -> None:
        """Run one task on a worker and keep the pool's books."""
        store = JobStore(directory, executor=NoExecutor())
        retired = None
        try:
            record = store._read(key)
            if record is None or record.state != QUEUED:
                return
            worker = self._take(key)
            finished = False
            try:
                store.set_worker(key, worker.pid)
                frame = pickle.dumps((list(sys.path), dict(os.environ), directory, key, blob),
                                     protocol=pickle.HIGHEST_PROTOCOL)
                finished = worker.run(frame)
            finally:
                with self._lock:
                    self._busy.pop(key, None)
                if not finished:
                    code = worker.stop()
            if not finished:
                store.worker_exited(key, worker.pid, code)
                return
            worker.jobs += 1
            rss = worker.rss_mb()
            if worker.retiring or worker.jobs >= self.max_jobs or (rss is not None and rss > self.max_rss_mb):
                retired = worker
                worker.retire()
            else:
                with self._lock:
                    worker.idle_since = time.monotonic()
                    self._idle.append(worker)
                    self._returned.notify()
                    while len(self._idle) + len(self._busy) < self.max_workers:
                        self._idle.insert(0, self._start())  # the rest, now that this one is warm; last in line
        finally:
            store.close()
            if retired is not None:
                retired.stop()  # before the next task, so old and new never hold memory at once

    def cancel(self, key: str, pid: int, pid_start: int) -> None:
        with self._lock:  # held, so that the worker cannot move on to another job meanwhile
            worker = self._busy.get(key)
            if worker is not None and worker.pid == pid and _alive(pid, pid_start):
                worker.terminate()

    def _reap(self) -> None:
        """Stop workers idle for more than ``idle_seconds`` (a thread, when that is set)."""
        while True:
            time.sleep(max(0.1, min(self.idle_seconds / 2, 5.0)))
            now = time.monotonic()
            with self._lock:
                old = [w for w in self._idle if now - w.idle_since > self.idle_seconds]
                self._idle = [w for w in self._idle if w not in old]
            for worker in old:
                worker.stop()


_POOLS: dict[tuple, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool_for(*settings) -> _Pool:
    """The one pool of this process with these settings."""
    with _POOLS_LOCK:
        if settings not in _POOLS:
            _POOLS[settings] = _Pool(*settings)
        return _POOLS[settings]


# ---- the worker ---------------------------------------------------------------------------


def worker_main() -> None:
    """Entry point of a LocalProcessExecutor worker: run the tasks sent on stdin until it closes.

    After its imports it writes ``ready`` on stdout. Each frame is 8 bytes of length
    (big-endian) and a pickle of (the parent's ``sys.path``, its environment, the store
    directory, the job key, the pickled ``Task``); each is acknowledged with ``done`` once
    ``execute`` has returned. A task it cannot unpickle fails its job, and the worker goes on.
    The job's own prints go to stderr, so that they cannot garble the acknowledgements.
    """
    tasks = os.fdopen(os.dup(0), "rb")
    acks = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    _IN_WORKER[0] = True
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    for name in WARM_MODULES:
        importlib.import_module(name)
    compile_cache = importlib.import_module("metricflow._jax").use_compile_cache
    if not _say(acks, _READY):
        return
    while (frame := _read_frame(tasks)) is not None:
        paths, environ, directory, key, blob = pickle.loads(frame)
        sys.path.extend(p for p in paths if p not in sys.path)
        os.environ.clear()
        os.environ.update(environ)
        compile_cache(directory)  # the first job's store keeps this worker's programs
        try:
            task = pickle.loads(blob)
        except Exception as err:  # noqa: BLE001  (a function this interpreter cannot import)
            _fail_unreadable(directory, key, err)
        else:
            execute(task)
        if not _say(acks, _ACK):
            break
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
    for pool in pools:  # nested workers (of fan-out jobs): stop and reap them
        pool.close()


def _exit_with_parent(parent: int) -> None:
    """End this worker, even in the middle of a job, once its parent process has gone (a
    server stopped or killed): its job's record then shows a dead worker and is failed.
    Nested workers of a fan-out job see their own parent go in turn."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(3)


def _say(acks, line: bytes) -> bool:
    """Write one line to the parent; False if it has gone."""
    try:
        acks.write(line)
        return True
    except BrokenPipeError:
        return False


def _read_frame(stream) -> bytes | None:
    """One length-prefixed frame, or None at the end of the stream."""
    header = stream.read(8)
    if len(header) < 8:
        return None
    size = int.from_bytes(header, "big")
    frame = stream.read(size)
    return frame if len(frame) == size else None


def _fail_unreadable(directory: str, key: str, err: Exception) -> None:
    """Mark the job failed: the worker could not unpickle its task."""
    store = JobStore(directory, executor=NoExecutor())
    try:
        store.store_failure(key, f"the worker could not load the job: {one_line(err)}", traceback.format_exc())
    finally:
        store.close()
