"""Run the job runner's jobs on a Dask cluster, and fan a sweep out over whatever executes jobs.

``DaskExecutor`` is an ``Executor`` for ``JobStore``: it sends ``function(config, progress)``
to a ``dask.distributed`` worker and keeps the bookkeeping in this process. The worker needs
no access to the store (on another machine it usually has none): it computes and *returns*
the result, and sends progress and "started" messages as worker events on the topic
``PROGRESS_TOPIC``. This process (the client: the CLI, the dashboard server, a sweep driver)
writes status, progress and the result into its local diskcache, so the dashboard and the
CLI see remote jobs like local ones. The job record's pid is the client's: if the client
dies, ``JobStore.status`` marks its unfinished jobs failed, as it does for a dead local worker.

The job record is the lease on a key (docs/RELIABILITY.md): the client writes it when it
submits, so a CLI ``run_job`` or a dashboard session asking for the same key meanwhile waits
for the cluster's result instead of computing it again. Results come back through Dask's
pickle (what this process sent, not stored data) and are stored in the checked plain format.

Faults:
  * A worker that dies during a job (killed, out of memory, machine lost): the scheduler
    reruns the task on another worker, up to ``distributed.scheduler.allowed-failures``
    times (default 3); then the job is marked failed with the reason (KilledWorker). Only a
    complete result returned by a worker is ever stored.
  * A job that raises is failed at once with its one-line reason and traceback (no retry).
  * Cancelling (``JobStore.cancel``, from any process) is seen by this executor's monitor
    thread: a queued task is dropped, a running one raises ``JobCancelled`` at its next
    progress report.
  * A scheduler that cannot be reached raises a one-line ``MetricflowError`` naming it.

Which executor a ``JobStore`` uses: the one it was given, else ``default_executor()``: a
``DaskExecutor`` when ``$METRICFLOW_SCHEDULER`` (``tcp://host:port``) is set (the CLI's
``--scheduler`` sets it, the dashboard's sidebar passes it to ``dashboard.job_store``), else
the local process pool. Inside a Dask task it is always the local pool, so a job that itself
submits jobs never waits on the cluster slot it occupies.

``run_many(configs, store)`` submits many configs and waits for all of them; each is an
ordinary cached job, so a rerun reuses the finished pieces. The tuner (``TuneConfig.batch``)
and the noise study (``run_noise_sweep``) use it. Other sweeps should too::

    from metricflow.jobs.dask import run_many
    results = run_many([WidthConfig(width=w, ...) for w in widths], store)   # in order

Example:
  >>> store = JobStore(executor=DaskExecutor("tcp://10.0.0.5:8786"))
  >>> results = run_many([FlowConfig(kernel="delta", n_train=1000, seed=s) for s in range(8)], store)
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
import uuid
from typing import Optional

from metricflow.errors import MetricflowError
from metricflow.jobs.local import LocalProcessExecutor
from metricflow.jobs.execute import PROGRESS_INTERVAL, StoreMap, run_many
from metricflow.jobs.status import CANCELLED, JobCancelled, NoExecutor, Task, one_line, set_default_executor
from metricflow.jobs.store import JobStore

__all__ = [
    "SCHEDULER_ENV",
    "PROGRESS_TOPIC",
    "CONNECT_TIMEOUT",
    "DaskExecutor",
    "default_executor",
    "executor_for",
    "run_many",
    "scheduler_address",
]

SCHEDULER_ENV = "METRICFLOW_SCHEDULER"
PROGRESS_TOPIC = "metricflow-progress"
# Seconds to wait for the scheduler before giving up.
CONNECT_TIMEOUT = 10.0
# How often the monitor thread looks for jobs cancelled in the store (seconds).
MONITOR_INTERVAL = 0.5

_LOCAL_HINT = "unset METRICFLOW_SCHEDULER or drop --scheduler to run locally"


def scheduler_address(address: Optional[str] = None) -> Optional[str]:
    """``address``, else ``$METRICFLOW_SCHEDULER``, else None; checked to be ``proto://host:port``."""
    text = (address if address is not None else os.environ.get(SCHEDULER_ENV, "")).strip()
    if not text:
        return None
    proto, sep, rest = text.partition("://")
    if not sep or proto not in ("tcp", "tls", "inproc", "ucx", "ws", "wss") or not rest:
        raise MetricflowError(
            f"the Dask scheduler address must look like tcp://host:8786, got {text!r}; {_LOCAL_HINT}"
        )
    return text


def inside_dask_task() -> bool:
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def default_executor():
    """The executor a ``JobStore`` gets when none is given (see the module docstring)."""
    address = scheduler_address()
    if address is None or inside_dask_task():
        return LocalProcessExecutor()
    return executor_for(address)


_EXECUTORS: dict[str, "DaskExecutor"] = {}
_EXECUTORS_LOCK = threading.Lock()


def executor_for(address: str) -> "DaskExecutor":
    """One shared ``DaskExecutor`` per scheduler address in this process."""
    address = scheduler_address(address)
    with _EXECUTORS_LOCK:
        executor = _EXECUTORS.get(address)
        if executor is None or executor.closed:
            executor = _EXECUTORS[address] = DaskExecutor(address)
        return executor


# ---- the worker side --------------------------------------------------------------------

# Dask keys (one per submission) of jobs cancelled while running in this worker process.
_CANCELLED: set = set()


def _flag_cancelled(dask_key: str) -> None:
    _CANCELLED.add(dask_key)


def _run_remote(function, config, key: str, dask_key: str, fan_out: bool = False):
    """What a Dask worker runs: ``function(config, progress)``, returning (state, value, trace).

    A fan-out kind's pieces run as cached jobs of the worker's own default store.

    A job's own exception comes back as ("failed", one-line reason, traceback) rather than
    raising, so that Dask does not retry it; only the death of the worker makes Dask retry.
    """
    from distributed import get_worker

    worker = get_worker()
    event = lambda **msg: worker.log_event(PROGRESS_TOPIC, {"key": key, **msg})  # noqa: E731
    event(kind="started", worker=worker.address, pid=os.getpid())
    last = [0.0]

    def progress(step: int, total: int, message: str = "") -> None:
        if dask_key in _CANCELLED:
            raise JobCancelled(key)
        now = time.monotonic()
        if now - last[0] < PROGRESS_INTERVAL and step < total:
            return
        last[0] = now
        event(kind="progress", step=int(step), total=int(total), message=str(message))

    last_partial = [0.0]

    def partial(make) -> None:
        if dask_key in _CANCELLED:
            raise JobCancelled(key)
        now = time.monotonic()
        if now - last_partial[0] < PROGRESS_INTERVAL:
            return
        last_partial[0] = now
        event(kind="partial", data=make())

    progress.partial = partial

    try:
        extra = {"map_configs": StoreMap()} if fan_out else {}
        return ("done", function(config, progress, **extra), "")
    except JobCancelled:
        return ("cancelled", None, "")
    except Exception as err:  # noqa: BLE001  (kept, with its traceback, in the client's store)
        return ("failed", one_line(err), traceback.format_exc())
    finally:
        _CANCELLED.discard(dask_key)


# ---- the client side --------------------------------------------------------------------


class DaskExecutor:
    """Runs ``JobStore`` tasks on a ``dask.distributed`` cluster; results land in the local store.

    Args:
      scheduler: a scheduler address ``tcp://host:port``, or a ``distributed.Client``.
      timeout: seconds to wait for the scheduler.

    Raises:
      MetricflowError: if the scheduler cannot be reached (one line, with the address).
    """

    runs_elsewhere = True  # a StoreMap sends even a single piece to the cluster

    def __init__(self, scheduler, timeout: Optional[float] = None):
        from distributed import Client

        if isinstance(scheduler, Client):
            self.client, self._own_client = scheduler, False
            self.address = scheduler.scheduler.address
        else:
            self.address = scheduler_address(scheduler)
            if self.address is None:
                raise MetricflowError("DaskExecutor needs a scheduler address such as tcp://host:8786")
            try:
                self.client = Client(self.address, timeout=CONNECT_TIMEOUT if timeout is None else timeout, set_as_default=False)
            except Exception as err:  # noqa: BLE001  (OSError, TimeoutError, comm errors)
                reason = " ".join(str(err).split()) or type(err).__name__
                raise MetricflowError(f"cannot reach the Dask scheduler at {self.address}: {reason}; {_LOCAL_HINT}") from None
            self._own_client = True
        self.closed = False
        self._lock = threading.Lock()
        self._tasks: dict[str, tuple] = {}  # key -> (directory, future, schema_version)
        self._stores: dict[str, JobStore] = {}
        self.client.subscribe_topic(PROGRESS_TOPIC, self._on_event)
        self._monitor = threading.Thread(target=self._watch, name="metricflow-dask-monitor", daemon=True)
        self._monitor.start()

    # -- Executor --

    def submit(self, task: Task) -> None:
        if self.closed:
            raise MetricflowError(f"the Dask executor for {self.address} is closed")
        dask_key = f"metricflow-{task.key[:16]}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(_run_remote, task.function, task.config, task.key, dask_key, task.fan_out,
                                    key=dask_key, pure=False)
        with self._lock:
            self._tasks[task.key] = (task.directory, future, task.schema_version)
        future.add_done_callback(lambda f, key=task.key: self._finished(key, f))

    def cancel(self, key: str, pid: int, pid_start: int) -> None:
        self._drop(key)

    def slots(self) -> int:
        """The cluster's worker threads: how many jobs it runs at once."""
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001  (a scheduler gone quiet: one slot until it answers)
            return 1

    def close(self) -> None:
        self.closed = True
        if self._own_client:
            self.client.close()
        for store in self._stores.values():
            store.close()

    # -- bookkeeping (in this process) --

    def _store(self, directory: str) -> JobStore:
        with self._lock:
            store = self._stores.get(directory)
            if store is None:
                store = self._stores[directory] = JobStore(directory, executor=NoExecutor())
            return store

    def _task(self, key: str):
        with self._lock:
            return self._tasks.get(key)

    def _on_event(self, event) -> None:
        """A worker event (runs on the client's event loop: writes only to the local store)."""
        _, msg = event
        task = self._task(msg.get("key", "")) if isinstance(msg, dict) else None
        if task is None:
            return
        store, key = self._store(task[0]), msg["key"]
        if msg.get("kind") == "started":
            store.mark_running(key)
            record = store._read(key)
            # A retry after a lost worker starts at step 0 again; say where it runs now.
            store.report(key, 0, record.total if record else 0, f"running on {msg['worker']} (pid {msg['pid']})")
        elif msg.get("kind") == "progress":
            # Refused once cancelled; the monitor thread then tells the worker (client calls
            # made from the event loop would only return coroutines).
            store.report(key, msg["step"], msg["total"], msg["message"])
        elif msg.get("kind") == "partial":
            store.publish(key, msg["data"])

    def _finished(self, key: str, future) -> None:
        """The task's future finished: store the result or the failure (a client thread)."""
        task = self._task(key)
        if task is None or task[1] is not future:
            return
        directory, _, schema_version = task
        store = self._store(directory)
        try:
            if future.status == "finished":
                state, value, trace = future.result()
                if state == "done":
                    store.mark_running(key)  # the "started" event may not have arrived yet
                    store.store_result(key, value, schema_version)
                elif state == "failed":
                    store.store_failure(key, value, trace)
                else:  # stopped by a cancel flag: the store says cancelled already, or should
                    store._finish(key, CANCELLED, error="cancelled", only_pid=os.getpid())
            elif future.status == "error":
                err = future.exception()
                reason = one_line(err)
                if type(err).__name__ == "KilledWorker":
                    reason = f"the Dask worker running it died too often ({reason})"
                store.store_failure(key, reason, "".join(traceback.format_exception(err)))
            else:
                store._finish(key, "failed", error=f"the Dask scheduler at {self.address} dropped the task ({future.status})",
                              only_pid=os.getpid())
        except Exception as err:  # noqa: BLE001  (e.g. the result cannot be unpickled here)
            store.store_failure(key, f"could not collect the result from Dask: {one_line(err)}", traceback.format_exc())
        finally:
            with self._lock:
                if self._tasks.get(key, (None, None))[1] is future:
                    del self._tasks[key]

    def _drop(self, key: str) -> None:
        """Stop a job the store no longer wants (cancelled): drop it, tell its worker."""
        with self._lock:
            task = self._tasks.pop(key, None)
        if task is None:
            return
        task[1].cancel()
        try:
            self.client.run(_flag_cancelled, task[1].key)
        except Exception:  # noqa: BLE001  (the job's result would be refused by the store anyway)
            pass

    def _watch(self) -> None:
        """Drop jobs that were cancelled in the store, by any process."""
        while not self.closed:
            time.sleep(MONITOR_INTERVAL)
            with self._lock:
                tasks = list(self._tasks.items())
            for key, (directory, _, _) in tasks:
                try:
                    record = self._store(directory)._read(key)
                except Exception:  # noqa: BLE001
                    continue
                if record is not None and record.state == CANCELLED:
                    self._drop(key)


# ---- fan-out ----------------------------------------------------------------------------


def stderr_progress(done: int, total: int, message: str) -> None:
    """A ``run_many`` progress callback for the command line (stderr, only on a terminal)."""
    if sys.stderr.isatty():
        print(f"[{done}/{total}] {message}", file=sys.stderr)


set_default_executor(lambda: default_executor())  # looked up per call: a test may replace it
