"""The text parsers of metricflow.parse: good input gives the value, bad input one line that names it."""

import argparse

import pytest

from metricflow import MetricflowError
from metricflow.cli.options import int_arg, psi_arg
from metricflow.parse import MAX_INT, complex_list, complex_number, exact_int, float_list, int_list


def _one_line_naming(err, text):
    message = str(err.value)
    assert "\n" not in message
    assert repr(text) in message
    return message


@pytest.mark.parametrize("text, value", [
    ("42", 42), (" 7 ", 7), ("-3", -3), ("1e5", 100_000), ("2.5e3", 2500), ("1_000", 1000),
    ("9007199254740993", 2**53 + 1), (str(MAX_INT), MAX_INT), ("-" + str(MAX_INT), -MAX_INT),
])
def test_exact_int(text, value):
    assert exact_int(text) == value and type(exact_int(text)) is int


@pytest.mark.parametrize("text", ["1.5", "1e-1", "nan", "inf", "", "lots", "0x10", str(2**63), "-" + str(2**63), "1e19"])
def test_exact_int_refuses(text):
    with pytest.raises(MetricflowError) as err:
        exact_int(text)
    message = _one_line_naming(err, text)
    assert message.startswith("expected an integer")
    if text in (str(2**63), "1e19"):
        assert "at most 2**63 - 1" in message


def test_exact_int_refuses_what_is_not_text():
    with pytest.raises(MetricflowError, match="must be given as text"):
        exact_int(5)


@pytest.mark.parametrize("text, value", [
    ("0.5", 0.5 + 0j), ("10+3i", 10 + 3j), ("1+0.2j", 1 + 0.2j), (" 1 + 2i ", 1 + 2j), ("-i", -1j), ("0", 0j),
])
def test_complex_number(text, value):
    assert complex_number(text) == value


@pytest.mark.parametrize("text", ["x", "", "1+", "1,2", "inf"])
def test_complex_number_refuses(text):
    with pytest.raises(MetricflowError) as err:
        complex_number(text)
    assert _one_line_naming(err, text).startswith("psi must be a complex number such as 0.5 or 1+0.2j")
    with pytest.raises(MetricflowError, match="sweep psi must be a complex number such as 2i"):
        complex_number(text, "sweep psi", example="2i")


def test_float_list():
    assert float_list("0,1e-6,1e-4", "noise") == (0.0, 1e-6, 1e-4)
    assert float_list(" 1, 2 ,", "noise") == (1.0, 2.0)  # empty pieces are skipped
    assert float_list("1;2, 3", "noise", sep=",;") == (1.0, 2.0, 3.0)


@pytest.mark.parametrize("text", ["abc", "0,x", "0;1"])
def test_float_list_refuses(text):
    with pytest.raises(MetricflowError) as err:
        float_list(text, "noise variances")
    assert _one_line_naming(err, text) == f"noise variances must be numbers separated by commas, such as 0,1e-6,1e-4; got {text!r}"


def test_float_list_needs_a_value():
    for text in ("", ",", " , "):
        with pytest.raises(MetricflowError, match="^give at least one value for noise$"):
            float_list(text, "noise")
    with pytest.raises(MetricflowError, match="^give one$"):
        float_list("", "noise", empty="give one")


def test_int_list():
    assert int_list("100,1e3,10_000", "points") == (100, 1000, 10_000)
    assert int_list(f"1,{MAX_INT}", "points") == (1, MAX_INT)


@pytest.mark.parametrize("text, kind", [("abc", "numbers"), ("1.5,10", "integers"), ("1e400", "integers"), ("nan", "integers")])
def test_int_list_refuses(text, kind):
    with pytest.raises(MetricflowError) as err:
        int_list(text, "points")
    message = _one_line_naming(err, text)
    if kind == "numbers":
        assert message == f"points must be numbers separated by commas, such as 100,1000; got {text!r}"
    else:
        assert message == f"points must be integers such as 100,1000,1e4; got {text!r}"
    with pytest.raises(MetricflowError, match="^give at least one value for points$"):
        int_list(",", "points")


def test_complex_list():
    assert complex_list("0, 0.5, 10+3i") == (0j, 0.5 + 0j, 10 + 3j)
    assert complex_list("1 + 2i;3", sep=";") == (1 + 2j, 3 + 0j)


def test_complex_list_refuses():
    for text in ("a", "1+i,x"):
        with pytest.raises(MetricflowError) as err:
            complex_list(text)
        assert _one_line_naming(err, text) == (
            f"psi values must be complex numbers separated by commas, such as 0,0.5,10+3j; got {text!r}")
    with pytest.raises(MetricflowError, match="^give at least one psi value$"):
        complex_list(",", empty="give at least one psi value")


def test_cli_types_give_argparse_one_line_errors():
    assert int_arg("1e2") == 100 and psi_arg("10+3i") == 10 + 3j
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer, got 'lots'"):
        int_arg("lots")
    with pytest.raises(argparse.ArgumentTypeError, match="psi must be a complex number such as 0.5 or 1\\+0.2j, got 'x'"):
        psi_arg("x")
