"""Running a job here and now (the CLI and the API), and the stored reference kappa."""

from __future__ import annotations


from metricflow.geometry import reference
from metricflow.geometry.reference import KappaConfig, set_kappa_loader
from metricflow.jobs.dask import inside_dask_task, scheduler_address, stderr_progress
from metricflow.jobs.kinds import check_estimate, job_kind
from metricflow.jobs.execute import run_here, run_many
from metricflow.jobs.status import NoExecutor
from metricflow.jobs.store import JobStore

__all__ = ["run_job"]


def run_job(config, cache: bool = True, store: JobStore | None = None, poll: float = 0.2):
    """Run the job for ``config`` in this process and return its result (for the CLI).

    With ``cache``, the job's record is the lease, as for ``JobStore.submit``: a stored
    result is returned; a job that another live process holds (a dashboard worker, another
    CLI run, a Dask client) is waited for and its result returned; otherwise this process
    takes the lease, computes, reporting progress to the store (so the dashboard shows it
    and can cancel it), and stores the result.

    Args:
      config: a registered config.
      cache: if True, use the store as above; if False, just compute.
      store: the store to use; default ``JobStore()``.
      poll: seconds between looks at a job another process is computing.

    Raises:
      MetricflowError: bad input, a store that cannot be opened, or a cancel from elsewhere.
    """
    kind = job_kind(config)
    check_estimate(config)
    if not cache:
        return kind.function(config, lambda *a, **k: None)
    if scheduler_address() is not None and not inside_dask_task():
        return run_many([config], store, progress=stderr_progress)[0]  # on the Dask cluster
    own = store is None
    store = store or JobStore(executor=NoExecutor())
    try:
        return run_here(config, store, poll)
    finally:
        if own:
            store.close()


def _stored_reference_kappa(m) -> object:
    """The default reference-kappa estimate for ``m``, computed once and kept in the job store."""
    return run_job(KappaConfig(m, reference.REFERENCE_POINTS, reference.REFERENCE_SEED))


set_kappa_loader(_stored_reference_kappa)
