"""Progress reporting and fan-out: the two callables a study is handed.

A long computation takes ``progress(step, total, message)``; the job runner passes one that
writes to the store and raises ``JobCancelled`` once the job is cancelled. A study that runs
many configs (a sweep) takes ``map_configs(function, configs) -> list``; the default runs
them here, one after the other, and the job runner passes one that runs each config as a
cached job on its executor (local processes or Dask). Studies never import the job runner.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Protocol, Sequence

__all__ = ["Progress", "ConfigMap", "no_progress", "serial_map", "stored_flags"]


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


def serial_map(function: Callable[[Any], Any], configs: Iterable) -> list:
    """The default ``map_configs``: compute each config here, in order."""
    return [function(c) for c in configs]


def stored_flags(map_configs: Callable, configs: Sequence) -> list[bool]:
    """Whether ``map_configs`` already holds each config's result (False if it cannot tell)."""
    stored = getattr(map_configs, "stored", None)
    return list(stored(configs)) if stored is not None else [False] * len(configs)
