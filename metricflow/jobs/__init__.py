"""The job runner: cached, deduplicated, cancellable computations of registered configs.

  kinds    the registration table: config type -> function, schema version, estimate
  keys     job keys (sha256 of the canonical config JSON and the schema version)
  status   status records, process liveness, ``Task`` and the ``Executor`` interface
  results  the checked plain format of stored results
  store    the store: records, leases, results, partial series
  execute  what a worker runs, ``run_here``, ``run_many`` and ``StoreMap``
  local    the local executor: a pool of warm worker processes (JAX imported, kept between jobs)
  dask     the Dask executor, and the choice of the default one
  queue    ``FairQueue``: a served dashboard's sessions take turns, within slots and memory
  runner   ``run_job``: one job here and now (the CLI, the API)
"""

from metricflow.jobs.kinds import JobKind, check_estimate, estimate, job_kind, kinds, register
from metricflow.jobs.keys import canonical_json, job_key
from metricflow.jobs.results import decode_result, encode_result
from metricflow.jobs.status import (
    ACTIVE, CANCELLED, DONE, FAILED, QUEUED, RUNNING, Executor, JobCancelled, JobStatus, NoExecutor, Task, one_line,
)
from metricflow.jobs.store import DEFAULT_CACHE, JobStore, StoreError, cache_directory
from metricflow.jobs.execute import StoreMap, execute, run_many
from metricflow.jobs.local import LocalProcessExecutor, worker_main
from metricflow.jobs.dask import DaskExecutor, default_executor, executor_for, scheduler_address, stderr_progress
from metricflow.jobs.queue import FairQueue, Place, QueueFull
from metricflow.jobs.runner import run_job
from metricflow.estimates import Estimate

__all__ = [
    "ACTIVE", "CANCELLED", "DEFAULT_CACHE", "DONE", "FAILED", "QUEUED", "RUNNING",
    "DaskExecutor", "Estimate", "Executor", "FairQueue", "Place", "QueueFull", "JobCancelled", "JobKind", "JobStatus", "JobStore",
    "LocalProcessExecutor", "NoExecutor", "StoreError", "StoreMap", "Task",
    "cache_directory", "canonical_json", "check_estimate", "decode_result", "default_executor",
    "encode_result", "estimate", "execute", "executor_for", "job_key", "job_kind", "kinds",
    "one_line", "register", "run_job", "run_many", "scheduler_address", "stderr_progress",
    "worker_main",
]
