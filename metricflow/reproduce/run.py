"""Running the plan: every piece through the job runner (``run_job``, or ``run_many`` at once),
a failing piece recorded rather than fatal, and a progress bar in estimated seconds."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass

from metricflow.errors import MetricflowError
from metricflow.jobs import DONE, JobStore, canonical_json, estimate, job_key, job_kind, run_job, run_many

__all__ = ["PieceRecord", "run_plan"]


@dataclass(frozen=True)
class PieceRecord:
    """How one piece went.

    Attributes:
      section, name, kind: the piece and its config type.
      key: the job key (the store's id of its result).
      settings: the config as plain JSON data (type tags removed).
      estimate: expected seconds (``metricflow.jobs.estimate``).
      seconds: wall time here (about 0 when served from the store).
      cached: True if the store already held the result.
      error: one line if the piece failed, else "".
    """

    section: str
    name: str
    kind: str
    key: str
    settings: dict
    estimate: float
    seconds: float
    cached: bool
    error: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "__type__"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _settings(config) -> dict:
    return _strip(json.loads(canonical_json(config)))


def _fmt_seconds(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


class _Bar:
    """A rich progress bar over the plan, in estimated seconds: the current piece advances
    with its elapsed time (up to 95 % of its estimate), and the time left is the estimate of
    what remains, scaled by how the finished pieces compared with their estimates."""

    def __init__(self, total: float, n: int, enabled: bool):
        self.enabled = enabled
        self.done = 0.0
        self.ratio_num = 0.0
        self.ratio_den = 0.0
        self.current = None  # (estimate, start)
        self.remaining = total
        self._stop = threading.Event()
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
        from rich.text import Text

        class Left(ProgressColumn):
            def render(self, task):
                return Text(f"~{task.fields.get('left', '?')} left", style="progress.remaining")

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(), Left(), console=Console(stderr=True), refresh_per_second=4,
        )
        self.task = self.progress.add_task(f"reproduce ({n} pieces)", total=max(total, 1e-9), left=_fmt_seconds(total))
        self.progress.start()
        self.thread = threading.Thread(target=self._tick, daemon=True)
        self.thread.start()

    def _ratio(self) -> float:
        return min(max(self.ratio_num / self.ratio_den, 0.5), 5.0) if self.ratio_den > 0 else 1.0

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._update()

    def _update(self) -> None:
        if not self.enabled:
            return
        inside, left_inside = 0.0, 0.0
        if self.current is not None:
            est, start = self.current
            elapsed = time.perf_counter() - start
            inside = min(elapsed / self._ratio(), 0.95 * est)
            left_inside = max(est * self._ratio() - elapsed, 0.05 * est)
        left = (self.remaining - (self.current[0] if self.current else 0.0)) * self._ratio() + left_inside
        self.progress.update(self.task, completed=self.done + inside, left=_fmt_seconds(left))

    def start(self, label: str, est: float) -> None:
        self.current = (est, time.perf_counter())
        if self.enabled:
            self.progress.update(self.task, description=label)
            self._update()

    def finish(self, est: float, seconds: float, cached: bool) -> None:
        self.done += est
        self.remaining -= est
        if not cached and est > 0:
            self.ratio_num += seconds
            self.ratio_den += est
        self.current = None
        self._update()

    def close(self) -> None:
        self._stop.set()
        if self.enabled:
            self.progress.update(self.task, completed=self.progress.tasks[0].total, left="0 s")
            self.progress.stop()


def run_plan(
    pieces, *, cache: bool = True, store=None, progress: bool = True, parallel: bool = False
) -> tuple[dict, tuple]:
    """Run every piece through ``run_job``; a failing piece is recorded, not fatal.

    Args:
      pieces: from ``plan``.
      cache: read and write the job store (False: compute everything afresh, store nothing).
      store: the JobStore; default ``JobStore()`` (``$METRICFLOW_CACHE`` or ``cache/``).
      progress: show a progress bar on stderr.
      parallel: first submit every piece not yet stored to the store's executor at once
        (worker processes, or a Dask cluster) with ``run_many``; the pieces are independent.
        Needs ``cache``. A piece that fails there is run again here, to record its error.

    Returns:
      (results, records): {piece name: result} of the pieces that finished, and one
      PieceRecord per piece.
    """
    own = store is None and cache
    if own:
        store = JobStore()  # read and written here only; it starts no workers
    try:
        plans = []
        for p in pieces:
            kind = job_kind(p.config)
            key = job_key(p.config, kind.schema_version)
            status = store.status(key) if cache else None
            cached = status is not None and status.state == DONE and store.result(key) is not None
            plans.append((p, key, cached, 0.0 if cached else float(estimate(p.config).seconds)))
        bar = _Bar(sum(e for *_, e in plans), len(plans), progress)
        results, records = {}, []
        try:
            todo = [(p, est) for p, _, cached, est in plans if not cached]
            if parallel and cache and todo:
                est = sum(e for _, e in todo)
                bar.start(f"{len(todo)} pieces in parallel", est)
                start = time.perf_counter()
                try:
                    run_many([p.config for p, _ in todo], store)
                except MetricflowError:
                    pass  # the failed pieces run again below, which records their errors
                bar.finish(est, time.perf_counter() - start, False)
                for p, _ in todo:  # their time is shown from the store; the bar has counted them
                    for j, (q, key, cached, e) in enumerate(plans):
                        if q is p:
                            plans[j] = (q, key, cached, 0.0)
            for i, (p, key, cached, est) in enumerate(plans, start=1):
                bar.start(f"[{i}/{len(plans)}] {p.section}: {p.name}" + (" (stored)" if cached else ""), est)
                start, error = time.perf_counter(), ""
                try:
                    results[p.name] = run_job(p.config, cache=cache, store=store if cache else None)
                except (MetricflowError, MemoryError, ArithmeticError, ValueError, RuntimeError) as err:
                    text = str(err).strip().splitlines()
                    error = f"{type(err).__name__}: {text[0] if text else ''}"
                seconds = time.perf_counter() - start
                status = store.status(key) if cache else None
                if parallel and not cached and status is not None and status.state == DONE:
                    seconds = status.seconds  # computed by a worker above
                bar.finish(est, seconds, cached)
                records.append(PieceRecord(p.section, p.name, type(p.config).__name__, key, _settings(p.config),
                                           est, seconds, cached, error))
        finally:
            bar.close()
        return results, tuple(records)
    finally:
        if own:
            store.close()

