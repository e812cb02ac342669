"""The one exception type that users see, and the checks that raise it."""

from __future__ import annotations

import math
import numbers
import os

__all__ = ["MetricflowError", "ConfigTypeError", "StoreError", "check_count", "check_points", "check_positive", "check_memory", "available_memory_bytes"]

# A point count above this is refused whatever the memory says: it is a typo, not a run.
MAX_POINTS = 10**8

# The fewest points a sigma-measure is taken on. One point has no standard error, and once
# measured a self-normalised kappa (eq. B.10) from that point makes eta = 1 there: sigma = 0.
MIN_POINTS = 2
WHY_MIN_POINTS = "one point has no spread, so sigma and its standard error are not defined"


class MetricflowError(ValueError):
    """Bad input or a failed computation, with a one-line message that says how to fix it."""


class ConfigTypeError(MetricflowError, TypeError):
    """A config field of the wrong type (a string for a count, a number for a flag)."""


class StoreError(MetricflowError):
    """The result store cannot be used: a broken cache.db, a read-only folder, a file in the way.

    Attributes:
      path: the file or folder at fault.
      reason: why, in a few words.
    """

    REMEDY = "move it away, or run with --no-cache (the dashboard: set METRICFLOW_CACHE to another folder)"

    def __init__(self, path, reason: str):
        self.path, self.reason = str(path), " ".join(str(reason).split())
        super().__init__(f"the result store {self.path} cannot be used: {self.reason}; {self.REMEDY}")


def check_count(value, name: str, minimum: int = 1, maximum: int = MAX_POINTS, why: str = "") -> int:
    """Return ``value`` as an int if it is an integer in [minimum, maximum], else raise.

    Args:
      value: the count as given (an int, or an integral float such as 1e5).
      name: what the count is, for the message (for example "points").
      minimum, maximum: the allowed range, inclusive.
      why: the reason for the minimum, added to its message.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value) or value != int(value):
        raise MetricflowError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise MetricflowError(f"{name} must be at least {minimum}, got {value}" + (f" ({why})" if why else ""))
    if value > maximum:
        raise MetricflowError(f"{name} must be at most {maximum:,}, got {value:,}; use fewer")
    return value


def check_points(value, name: str, maximum: int = MAX_POINTS) -> int:
    """``check_count`` for a set of points that a sigma-measure is taken on: at least MIN_POINTS."""
    return check_count(value, name, minimum=MIN_POINTS, maximum=maximum, why=WHY_MIN_POINTS)


def check_positive(value, name: str) -> float:
    """Return ``value`` as a float if it is a positive finite number, else raise."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise ConfigTypeError(f"{name} must be a positive number, got {value!r} ({type(value).__name__})")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigTypeError(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise MetricflowError(f"{name} must be a positive finite number, got {value!r}")
    return value


def available_memory_bytes() -> int:
    """Memory that can be allocated now without swapping (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(needed_bytes: float, what: str) -> None:
    """Refuse, before allocating, work whose memory estimate exceeds what is free."""
    free = available_memory_bytes()
    if needed_bytes > free:
        raise MetricflowError(
            f"{what} needs about {needed_bytes / 2**30:.1f} GiB but only "
            f"{free / 2**30:.1f} GiB is free; use fewer points"
        )
