"""Declarative validation: each constraint type, every registered config, and the CLI."""

import dataclasses
import math
from typing import ClassVar

import numpy as np
import pytest

from metricflow.constraints import SEED, Count, Flag, Maybe, OneOf, Points, Positive, Real, describe, validate
from metricflow.errors import MAX_POINTS, ConfigTypeError, MetricflowError
from metricflow.jobs import kinds


def refused(rule, value, name="field", kind=MetricflowError):
    """The message of ``rule`` refusing ``value``; a wrong type must be a ConfigTypeError."""
    with pytest.raises(kind) as err:
        rule.check(value, name)
    message = str(err.value)
    assert "\n" not in message
    return message


# ---- the constraint types -----------------------------------------------------------------


def test_count_accepts_integers_and_normalises_integral_floats():
    rule = Count("batches", minimum=1, maximum=10)
    assert rule.check(3, "n_batches") == 3 and type(rule.check(np.int64(3), "n")) is int
    assert rule.check(1e1, "n") == 10 and type(rule.check(4.0, "n")) is int
    assert refused(rule, 0) == "batches must be at least 1, got 0"
    assert refused(rule, 11) == "batches must be at most 10, got 11; use fewer"
    assert "must be an integer" in refused(rule, 2.5)
    assert not isinstance(pytest.raises(MetricflowError, rule.check, 2.5, "n").value, ConfigTypeError)
    for value in ("3", True, None, [3], 3j):
        assert "batches must be an integer" in refused(rule, value, kind=ConfigTypeError)
    refused(rule, float("nan"))
    refused(rule, float("inf"))
    assert Count().check(5, "steps") == 5 and "steps must be at least 1" in refused(Count(), 0, "steps")
    assert "(why not)" in refused(Count("k", minimum=2, why="why not"), 1)


def test_points_need_two_and_say_why():
    rule = Points("train points", maximum=3000)
    assert rule.check(2, "n") == 2 and rule.check(3e3, "n") == 3000
    assert "train points must be at least 2, got 1 (one point has no spread" in refused(rule, 1)
    assert "at most 3,000" in refused(rule, 3001)
    assert Points().check(MAX_POINTS, "n") == MAX_POINTS and "at most" in refused(Points(), MAX_POINTS + 1)
    refused(rule, "2", kind=ConfigTypeError)


def test_positive_floats_and_an_open_upper_end():
    rule = Positive("lr")
    assert rule.check(1, "x") == 1.0 and type(rule.check(1, "x")) is float and rule.check(np.float32(0.5), "x") == 0.5
    assert rule.check("1e-3", "x") == 1e-3  # a number written as text, as check_positive takes it
    for value in (0, -1.0, float("nan"), float("inf")):
        assert "lr must be a positive finite number" in refused(rule, value)
    for value in ("fast", True, None, [1.0]):
        assert "lr must be a positive number" in refused(rule, value, kind=ConfigTypeError)
    below = Positive("val_fraction", below=1, hint="the rest are trained on")
    assert below.check(0.5, "x") == 0.5
    assert refused(below, 1) == "val_fraction must be in (0, 1) (the rest are trained on), got 1.0"
    assert refused(Positive("f", below=1), 1.5) == "f must be in (0, 1), got 1.5"


def test_real_bounds_are_inclusive_and_either_may_be_open():
    rule = Real("noise", low=0, high=100)
    assert rule.check(0, "x") == 0.0 and rule.check(100, "x") == 100.0 and type(rule.check(3, "x")) is float
    assert refused(rule, -1e-3) == "noise must be in [0, 100], got -0.001"
    assert refused(rule, 101) == "noise must be in [0, 100], got 101"
    assert Real().check(-1e300, "x") == -1e300 and "[-inf, 1]" in refused(Real(high=1), 2)
    assert "must be a finite number" in refused(Real(), math.nan) and "finite" in refused(Real(), -math.inf)
    for value in ("1", True, None, 1j):
        assert "must be a number" in refused(rule, value, kind=ConfigTypeError)


def test_one_of_names_the_choices_and_keeps_the_value():
    rule = OneOf(("nearest", "greedy"), label="merge rule")
    assert rule.check("greedy", "merge") == "greedy"
    assert refused(rule, "closest") == "unknown merge rule 'closest'; expected one of nearest, greedy"
    assert "unknown merge 'x'" in refused(OneOf(("a",)), "x", "merge")
    assert OneOf((1, 2)).check(2, "n") == 2 and "expected one of 1, 2" in refused(OneOf((1, 2)), 3)


def test_flag_takes_python_and_numpy_bools_only():
    rule = Flag()
    assert rule.check(True, "x") is True and rule.check(np.bool_(False), "x") is False
    for value in (1, 0, "yes", None, np.int64(1)):
        assert "ricci must be True or False" in refused(rule, value, "ricci", kind=ConfigTypeError)


def test_maybe_allows_none_and_checks_the_rest():
    rule = Maybe(Count("batch size"))
    assert rule.check(None, "batch_size") is None and rule.check(5.0, "batch_size") == 5
    assert "batch size must be at least 1" in refused(rule, 0)
    refused(rule, "5", kind=ConfigTypeError)


def test_seed_is_an_integer_up_to_2_to_the_63():
    assert SEED.check(0, "seed") == 0 and SEED.check(2**63, "seed") == 2**63 and SEED.check(1e3, "seed") == 1000
    assert refused(SEED, -1) == "seed must be at least 0, got -1"
    assert "seed must be at most" in refused(SEED, 2**63 + 1)
    refused(SEED, "7", kind=ConfigTypeError)


@dataclasses.dataclass(frozen=True)
class _Example:
    n_points: int = 1000
    lr: float = 1
    mode: str = "a"
    on: bool = True
    limit: object = None
    constraints: ClassVar[dict] = {
        "n_points": Points("points"), "lr": Positive("lr"), "mode": OneOf(("a", "b"), label="mode"),
        "on": Flag(), "limit": Maybe(Count("limit")),
    }

    def __post_init__(self):
        validate(self)


def test_validate_stores_normalised_values_on_a_frozen_config():
    c = _Example(n_points=1e4, lr=2, on=np.bool_(True), limit=3.0)
    assert (c.n_points, c.lr, c.on, c.limit) == (10_000, 2.0, True, 3)
    assert (type(c.n_points), type(c.lr), type(c.on), type(c.limit)) == (int, float, bool, int)
    assert "constraints" not in {f.name for f in dataclasses.fields(_Example)}  # not part of a job key
    with pytest.raises(MetricflowError, match="unknown mode 'c'; expected one of a, b"):
        _Example(mode="c")
    with pytest.raises(ConfigTypeError, match="points must be an integer"):
        _Example(n_points="many")
    # an explicit dict: the cross-field bounds of a config, checked after its own
    validate(c, {"limit": Count("limit", maximum=c.n_points)})
    with pytest.raises(MetricflowError, match="limit must be at most 2, got 3"):
        validate(c, {"limit": Count("limit", maximum=2)})


def test_describe_gives_plain_data():
    assert describe(Maybe(Count("batch size", maximum=50))) == {
        "kind": "Count", "optional": True, "label": "batch size", "minimum": 1, "maximum": 50,
    }
    assert describe(OneOf(("a", "b"), label="mode"))["values"] == ("a", "b")
    assert describe(Positive("lr", below=1))["below"] == 1 and describe(Flag())["kind"] == "Flag"


# ---- every registered config ----------------------------------------------------------------


def _integer_fields(config_type) -> dict:
    """field -> the name its messages use, for every Count or Points field of ``config_type``."""
    rules = config_type.constraints
    out = {}
    for name, rule in rules.items():
        inner = rule.inner if isinstance(rule, Maybe) else rule
        if isinstance(inner, (Count, Points)):
            out[name] = inner.label or name
    return out


def _config_types():
    return sorted(kinds(), key=lambda t: t.__name__)


@pytest.mark.parametrize("config_type", _config_types(), ids=lambda t: t.__name__)
def test_every_config_refuses_text_and_negatives_in_its_integer_fields(config_type):
    config_type()  # the defaults are valid
    fields = _integer_fields(config_type)
    assert fields, f"{config_type.__name__} has no integer field"
    assert set(fields) <= {f.name for f in dataclasses.fields(config_type)}
    for name, label in fields.items():
        with pytest.raises(ConfigTypeError) as err:
            config_type(**{name: "100"})
        assert isinstance(err.value, MetricflowError) and isinstance(err.value, TypeError)
        assert label in str(err.value) and "'100'" in str(err.value), (name, str(err.value))
        with pytest.raises(MetricflowError) as err:
            config_type(**{name: -1})
        assert not isinstance(err.value, ConfigTypeError), (name, str(err.value))
        assert str(err.value).startswith(f"{label} must be at least"), (name, str(err.value))
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("config_type", _config_types(), ids=lambda t: t.__name__)
def test_declared_constraints_name_real_fields_and_pass_the_defaults(config_type):
    rules = config_type.constraints
    names = {f.name for f in dataclasses.fields(config_type)}
    assert set(rules) <= names and "constraints" not in names
    default = config_type()
    for name, rule in rules.items():
        value = getattr(default, name)
        assert rule.check(value, name) == value  # stored values are already normal


# ---- the command line ---------------------------------------------------------------------


def test_cli_reports_a_config_type_error_in_one_line_with_exit_2(monkeypatch, capsys):
    from metricflow.cli import main as cli
    from metricflow.cli import sample

    # --points read as text, as a flag without a parser would pass it: SampleConfig refuses it.
    monkeypatch.setattr(sample, "int_arg", str)
    status = cli.main(["sample", "--points", "100", "--no-cache"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err == "error: points must be an integer, got '100' (str)\n"
