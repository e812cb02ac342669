"""Declarative validation of config fields: constraints as data, checked by one routine.

A config lists its constraints in a class attribute, in the spirit of scikit-learn's
``_parameter_constraints``, and calls ``validate(self)`` in ``__post_init__``::

    @dataclass(frozen=True)
    class SampleConfig:
        n_points: int = 1000
        seed: int = 0
        constraints: ClassVar[dict] = {"n_points": Points("points"), "seed": SEED}

        def __post_init__(self):
            validate(self)

Each constraint checks one value and returns it normalised (an integral float 1e5 becomes
the int 100000). A value of the wrong type raises ``ConfigTypeError`` (a TypeError and a
MetricflowError); one out of range raises MetricflowError. Both say which field and how to
fix it, in one line. ``Maybe(c)`` also allows None.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from metricflow.errors import MAX_POINTS, ConfigTypeError, MetricflowError, check_count, check_points, check_positive

__all__ = [
    "Constraint", "Count", "Points", "Positive", "Real", "OneOf", "Flag", "Maybe", "SEED", "validate", "describe",
]


class Constraint:
    """One rule for one field: ``check(value, name) -> normalised value`` or raise."""

    label: str = ""

    def check(self, value: Any, name: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _name(self, name: str) -> str:
        return self.label or name


@dataclass(frozen=True)
class Count(Constraint):
    """An integer in [minimum, maximum]."""

    label: str = ""
    minimum: int = 1
    maximum: int = MAX_POINTS
    why: str = ""

    def check(self, value, name):
        return check_count(value, self._name(name), minimum=self.minimum, maximum=self.maximum, why=self.why)


@dataclass(frozen=True)
class Points(Constraint):
    """A number of points a sigma-measure is taken on: at least 2, at most ``maximum``."""

    label: str = ""
    maximum: int = MAX_POINTS

    def check(self, value, name):
        return check_points(value, self._name(name), maximum=self.maximum)


@dataclass(frozen=True)
class Positive(Constraint):
    """A positive finite float, optionally below ``below`` (exclusive; ``below_text`` names it
    in the message, such as "pi/2")."""

    label: str = ""
    below: float | None = None
    hint: str = ""
    below_text: str = ""

    def check(self, value, name):
        value = check_positive(value, self._name(name))
        if self.below is not None and not value < self.below:
            hint = f" ({self.hint})" if self.hint else ""
            bound = self.below_text or f"{self.below:g}"
            raise MetricflowError(f"{self._name(name)} must be in (0, {bound}){hint}, got {value}")
        return value


@dataclass(frozen=True)
class Real(Constraint):
    """A finite float in [low, high] (either end may be None)."""

    label: str = ""
    low: float | None = None
    high: float | None = None

    def check(self, value, name):
        label = self._name(name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigTypeError(f"{label} must be a number, got {value!r} ({type(value).__name__})")
        value = float(value)
        if not math.isfinite(value):
            raise MetricflowError(f"{label} must be a finite number, got {value!r}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            raise MetricflowError(f"{label} must be in [{lo}, {hi}], got {value:g}")
        return value


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of ``values`` (strings): an unknown one names the choices (or, with ``either``,
    says "NAME must be 'a' or 'b'")."""

    values: tuple = ()
    label: str = ""
    either: bool = False

    def check(self, value, name):
        if value not in self.values and self.either:
            names = [repr(v) for v in self.values]
            choices = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 2 else names)
            raise MetricflowError(f"{self._name(name)} must be {choices}, got {value!r}")
        if value not in self.values:
            raise MetricflowError(
                f"unknown {self._name(name)} {value!r}; expected one of {', '.join(map(str, self.values))}"
            )
        return value


@dataclass(frozen=True)
class Flag(Constraint):
    """A bool (numpy bools too)."""

    label: str = ""

    def check(self, value, name):
        if not isinstance(value, (bool, np.bool_)):  # numpy bools too (named "bool" in numpy 2)
            raise ConfigTypeError(f"{self._name(name)} must be True or False, got {value!r} ({type(value).__name__})")
        return bool(value)


@dataclass(frozen=True)
class Maybe(Constraint):
    """None, or a value that passes ``inner``."""

    inner: Constraint = None

    def check(self, value, name):
        return None if value is None else self.inner.check(value, name)


# Seeds of every config: an integer in [0, 2**63].
SEED = Count("seed", minimum=0, maximum=2**63)


def validate(config, constraints: dict | None = None) -> None:
    """Check every field named in ``constraints`` (default ``type(config).constraints``) and
    store its normalised value on the frozen ``config``."""
    rules = type(config).constraints if constraints is None else constraints
    for name, rule in rules.items():
        object.__setattr__(config, name, rule.check(getattr(config, name), name))


def describe(rule: Constraint) -> dict:
    """A constraint as plain data (for generated widgets and CLI flags): kind, label, bounds."""
    inner = rule.inner if isinstance(rule, Maybe) else rule
    out = {"kind": type(inner).__name__, "optional": isinstance(rule, Maybe), "label": getattr(inner, "label", "")}
    for attr in ("minimum", "maximum", "low", "high", "below", "values"):
        if hasattr(inner, attr):
            out[attr] = getattr(inner, attr)
    return out
