"""The expected cost of a computation, stated before it runs."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Estimate"]


class Estimate(NamedTuple):
    """Expected cost of a job: wall-clock ``seconds`` and peak memory ``bytes``.

    Every study defines ``estimate_<study>(config) -> Estimate`` beside the function it
    estimates; the job runner refuses a job whose bytes exceed the free memory.
    """

    seconds: float
    bytes: int
