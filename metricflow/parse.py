"""Text parsers shared by the command line, the dashboard pages and the configs.

Each parser turns user text into a value or raises ``MetricflowError`` with a one-line
message that names the text it got and gives an example of what it takes:

    >>> complex_number("10+3i")
    (10+3j)
    >>> int_list("100,1e3")
    (100, 1000)
    >>> exact_int("9007199254740993")  # 2**53 + 1, exact: never through a float
    9007199254740993
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from metricflow.errors import MetricflowError

__all__ = ["MAX_INT", "exact_int", "complex_number", "float_list", "int_list", "complex_list"]

# The largest integer taken from text (a signed 64-bit integer, the widest seed NumPy's
# generators and the job keys carry exactly).
MAX_INT = 2**63 - 1


def _parts(text: str, sep: str) -> list[str]:
    """``text`` split at any character of ``sep``, without the empty pieces."""
    return [t for t in re.split(f"[{re.escape(sep)}]", text) if t.strip()]


def _need_text(text, name: str) -> None:
    if not isinstance(text, str):
        raise MetricflowError(f"{name} must be given as text, got {text!r} ({type(text).__name__})")


def exact_int(text: str) -> int:
    """'42', '1e5', '1_000' -> an int, parsed exactly (as a decimal, never through float).

    Args:
      text: an integer, possibly in exponent notation ('2.5e3') or with underscores.

    Returns:
      The int, in [-MAX_INT, MAX_INT].

    Raises:
      MetricflowError: ``text`` is not an integer (1.5, nan, '') or is too large.
    """
    _need_text(text, "an integer")
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        raise MetricflowError(f"expected an integer, got {text!r}") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise MetricflowError(f"expected an integer, got {text!r}")
    if abs(value) > MAX_INT:
        raise MetricflowError(f"expected an integer of at most 2**63 - 1 = {MAX_INT}, got {text!r}")
    return int(value)


def complex_number(text: str, name: str = "psi", example: str = "0.5 or 1+0.2j") -> complex:
    """'0.5', '1+0.2j', '10+3i' or '1 + 2i' -> complex (spaces dropped, i read as j).

    Args:
      text: the number.
      name: what it is, for the message.
      example: valid input shown in the message.

    Raises:
      MetricflowError: ``text`` is not a complex number.
    """
    _need_text(text, name)
    try:
        return complex(text.replace(" ", "").replace("i", "j"))
    except ValueError:
        raise MetricflowError(f"{name} must be a complex number such as {example}, got {text!r}") from None


def float_list(text: str, name: str, example: str = "0,1e-6,1e-4", sep: str = ",", empty: str | None = None) -> tuple[float, ...]:
    """'0,1e-6,1e-4' -> (0.0, 1e-06, 0.0001); empty pieces are skipped.

    Args:
      text: numbers separated by any character of ``sep``.
      name: what they are, for the message.
      example: valid input shown in the message.
      sep: the separator characters (',' or ',;').
      empty: the message when no value is given (default: 'give at least one value for NAME').

    Raises:
      MetricflowError: a piece is not a number, or there is none.
    """
    _need_text(text, name)
    try:
        values = tuple(float(t) for t in _parts(text, sep))
    except ValueError:
        raise MetricflowError(f"{name} must be numbers separated by commas, such as {example}; got {text!r}") from None
    if not values:
        raise MetricflowError(empty or f"give at least one value for {name}")
    return values


def int_list(text: str, name: str, example: str = "100,1000", sep: str = ",", empty: str | None = None) -> tuple[int, ...]:
    """'100,1e3,10_000' -> (100, 1000, 10000), each parsed exactly by ``exact_int``.

    Args and the messages are those of ``float_list``; a number that is not an integer
    gives 'NAME must be integers such as EXAMPLE,1e4'.
    """
    float_list(text, name, example=example, sep=sep, empty=empty)  # numbers at all, and at least one
    try:
        return tuple(exact_int(t) for t in _parts(text, sep))
    except MetricflowError:
        raise MetricflowError(f"{name} must be integers such as {example},1e4; got {text!r}") from None


def complex_list(text: str, name: str = "psi values", example: str = "0,0.5,10+3j", sep: str = ",",
                 empty: str | None = None) -> tuple[complex, ...]:
    """'0, 0.5, 10+3i' -> (0j, (0.5+0j), (10+3j)), each read as ``complex_number`` reads it.

    Args:
      text: complex numbers separated by any character of ``sep``.
      name: what they are, for the message.
      example: valid input shown in the message.
      sep: the separator characters.
      empty: the message when no value is given (default: 'give at least one value for NAME').

    Raises:
      MetricflowError: a piece is not a complex number, or there is none.
    """
    _need_text(text, name)
    try:
        values = tuple(complex(t.replace(" ", "").replace("i", "j")) for t in _parts(text, sep))
    except ValueError:
        raise MetricflowError(f"{name} must be complex numbers separated by commas, such as {example}; got {text!r}") from None
    if not values:
        raise MetricflowError(empty or f"give at least one value for {name}")
    return values
