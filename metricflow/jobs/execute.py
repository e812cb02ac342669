"""Executing jobs: what a worker runs (``execute``), running one job here under its lease
(``run_here``), and many jobs at once (``run_many``, ``StoreMap``, the ``map_configs`` of a
fan-out kind)."""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Optional, Sequence

from metricflow.errors import MetricflowError
from metricflow.jobs.keys import job_key
from metricflow.jobs.kinds import job_kind
from metricflow.jobs.status import ACTIVE, DONE, JobCancelled, NoExecutor, Task, one_line
from metricflow.jobs.store import JobStore
from metricflow.progress import Progress

__all__ = ["PROGRESS_INTERVAL", "StoreMap", "execute", "run_here", "run_many"]

_log = logging.getLogger("metricflow.jobs.execute")

# A worker writes progress, and checks for cancellation, at most this often (seconds).
PROGRESS_INTERVAL = 0.2




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
    """A job's progress callback: writes to the store, raises JobCancelled once cancelled.

    Its ``partial`` attribute takes a job's partial series (``metricflow.progress.publish``)
    and keeps it in the store, at most every PROGRESS_INTERVAL seconds: a series handed in
    sooner is kept back and written by the next call to either once the interval is over.
    """
    last, last_partial, pending = [0.0], [0.0], [None]

    def write_partial(make, now: float) -> None:
        last_partial[0], pending[0] = now, None
        try:
            kept = store.publish(key, make())
        except (MetricflowError, JobCancelled):
            raise
        except Exception:  # noqa: BLE001  (a partial view never fails the job)
            _log.warning("metricflow: job %s: its partial series could not be built", key[:12], exc_info=True)
            return
        if not kept:
            raise JobCancelled(key)

    def progress(step: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if pending[0] is not None and now - last_partial[0] >= PROGRESS_INTERVAL:
            write_partial(pending[0], now)
        if now - last[0] < PROGRESS_INTERVAL and step < total:
            return
        last[0] = now
        if not store.report(key, step, total, message):
            raise JobCancelled(key)

    def partial(make) -> None:
        now = time.monotonic()
        if now - last_partial[0] < PROGRESS_INTERVAL:
            pending[0] = make
            return
        write_partial(make, now)

    progress.partial = partial
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
# ---- many jobs ---------------------------------------------------------------------------


def run_many(
    configs: Sequence,
    store: Optional[JobStore] = None,
    progress: Optional[Callable[[int, int, str], None]] = None,
    poll: float = 0.2,
    each: Optional[Callable[[int, object], None]] = None,
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
      each: optional ``each(i, result)``, called as the result of ``configs[i]`` is done
        (a partial view of the whole, for ``metricflow.progress.map_each``).

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
                        if each is not None and status is not None and status.state == DONE:
                            result = store.result(key)
                            if result is not None:
                                for i in (i for i, k in enumerate(keys) if k == key):
                                    each(i, result)
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


def _first_here(configs: list, store: JobStore, each) -> list:
    """The first config here, under its lease (a fan-out job's own process is warm and would
    only wait), while the store's executor runs the rest; their results in order."""
    lock = threading.Lock()
    rest: dict = {}

    def done(i: int, result) -> None:
        if each is not None:
            with lock:
                each(i, result)

    def run_rest() -> None:
        try:
            rest["results"] = run_many(configs[1:], store, each=lambda i, r: done(i + 1, r))
        except BaseException as err:  # noqa: BLE001  (raised in the calling thread)
            rest["error"] = err

    thread = threading.Thread(target=run_rest, daemon=True) if len(configs) > 1 else None
    if thread is not None:
        thread.start()
    try:
        first = run_here(configs[0], store)
        done(0, first)
    finally:
        if thread is not None:
            thread.join()  # the others are cached jobs: let them end, so a rerun has them
    if "error" in rest:
        raise rest["error"]
    return [first, *rest.get("results", [])]


class StoreMap:
    """A ``map_configs`` (``metricflow.progress.ConfigMap``) that runs every config as a cached
    job: ``run_many`` on ``store``, or on a store opened on ``directory`` for each call. Its
    ``each(i, result)`` keyword is called as each piece is done (``map_each``). With a local
    executor the first config is computed in the calling process (``run_here``) while the
    pool runs the others: a fan-out job's own worker is warm, so its first piece starts at
    once instead of after a new worker's start-up.

    ``stored(configs)`` says which results the store already holds.
    """

    takes_each = True

    def __init__(self, store: "JobStore | str | Path | None" = None):
        self._store = store if isinstance(store, JobStore) else None
        self._directory = None if self._store is not None else store

    def _open(self):
        if self._store is not None:
            return self._store, False
        return JobStore(self._directory), True

    def __call__(self, function, configs, each: Optional[Callable[[int, object], None]] = None) -> list:
        configs = list(configs)
        store, own = self._open()
        try:
            if getattr(store.executor, "runs_elsewhere", False) or not configs:
                return run_many(configs, store, each=each)
            return _first_here(configs, store, each)
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
