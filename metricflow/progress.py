"""Progress reporting and fan-out: the two callables a study is handed.

A long computation takes ``progress(step, total, message)``; the job runner passes one that
writes to the store and raises ``JobCancelled`` once the job is cancelled. A computation with
steps or epochs also hands its partial series to ``publish(progress, make)`` while it runs;
the job runner's callback writes it to the store (never as a result), where the dashboard
draws it as it grows; any other callback ignores it. A study that runs
many configs (a sweep) takes ``map_configs(function, configs) -> list``; the default runs
them here, one after the other, and the job runner passes one that runs each config as a
cached job on its executor (local processes or Dask). Studies never import the job runner.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

__all__ = ["Progress", "ConfigMap", "no_progress", "map_each", "panel", "publish", "serial_map", "stored_flags"]


class Progress(Protocol):
    """``progress(step, total, message)``: step of total done; may raise to stop the work."""

    def __call__(self, step: int, total: int, message: str = "") -> None: ...


class ConfigMap(Protocol):
    """``map_configs(function, configs)``: ``[function(c) for c in configs]``, in order,
    computed wherever the caller chooses. It may also have ``stored(configs) -> list[bool]``,
    whether each result was already stored before the call."""

    def __call__(self, function: Callable[[Any], Any], configs: Iterable) -> list: ...


def no_progress(step: int, total: int, message: str = "") -> None:
    """A progress callback that reports nothing."""


def serial_map(function: Callable[[Any], Any], configs: Iterable, each: Callable | None = None) -> list:
    """The default ``map_configs``: compute each config here, in order; ``each(i, result)``
    is called as each one is done."""
    results = []
    for i, config in enumerate(configs):
        results.append(function(config))
        if each is not None:
            each(i, results[-1])
    return results


def map_each(map_configs: Callable, function: Callable[[Any], Any], configs: Sequence,
             each: Callable[[int, Any], None]) -> list:
    """``map_configs(function, configs)``, calling ``each(i, result)`` as each result is done.

    ``serial_map`` and the job runner's ``StoreMap`` call it as the pieces finish (so a
    fan-out study can publish a partial series piece by piece); any other ``map_configs``
    is called plainly and ``each`` runs for every result once all are done.
    """
    if map_configs is serial_map or getattr(map_configs, "takes_each", False):
        return map_configs(function, configs, each=each)
    results = map_configs(function, configs)
    for i, result in enumerate(results):
        each(i, result)
    return results


def stored_flags(map_configs: Callable, configs: Sequence) -> list[bool]:
    """Whether ``map_configs`` already holds each config's result (False if it cannot tell)."""
    stored = getattr(map_configs, "stored", None)
    return list(stored(configs)) if stored is not None else [False] * len(configs)


# ---- partial series ----------------------------------------------------------------------
#
# A partial series is a plain JSON dict: {"panels": [panel, ...], "note": str (optional)},
# a panel {"title", "x", "y", "log_y", "log_x", "series": {name: {"x": [...], "y": [...]}}}, built with
# ``panel``. It is the part of a result computed so far, shown while the job runs; the job
# store keeps it beside the job's record and drops it when the job ends.


def publish(progress: Callable, make: Callable[[], dict]) -> None:
    """Hand the partial series ``make()`` to ``progress`` if it takes one, else do nothing.

    ``make`` is called only when the series is wanted (the job runner's callback calls it at
    most every PROGRESS_INTERVAL seconds), so building it may cost a little. The job
    runner's callback raises ``JobCancelled`` here once the job is cancelled.
    """
    sink = getattr(progress, "partial", None)
    if sink is not None:
        sink(make)


def _plain(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def panel(title: str, x: str, y: str, series: Mapping[str, tuple], log_y: bool = False,
          log_x: bool = False) -> dict:
    """One panel of a partial series: ``series`` maps a curve's name to (xs, ys), two
    sequences of numbers of one length (non-finite values become null)."""
    return {
        "title": title, "x": x, "y": y, "log_y": bool(log_y), "log_x": bool(log_x),
        "series": {str(name): {"x": [_plain(v) for v in xs], "y": [_plain(v) for v in ys]}
                   for name, (xs, ys) in series.items()},
    }
