"""Argument types and options that several subcommands share.

The argparse types turn a parse error into ``argparse.ArgumentTypeError``, so that the
message reads 'argument --points: expected an integer, got ...' on one line.
"""

from __future__ import annotations

import argparse

from metricflow.errors import MetricflowError
from metricflow.parse import complex_number, exact_int

__all__ = ["int_arg", "psi_arg", "add_manifold"]


def int_arg(text: str) -> int:
    """An integer option, parsed exactly up to 2**63 - 1 ('1e5' and '1_000' too)."""
    try:
        return exact_int(text)
    except MetricflowError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def psi_arg(text: str) -> complex:
    """A complex option such as 0.5, 1+0.2j or 10+3i."""
    try:
        return complex_number(text)
    except MetricflowError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_manifold(p) -> None:
    """The options that choose the hypersurface, shared by the subcommands that sample points."""
    p.add_argument("--manifold", default="quintic", help="quintic, quartic or cubic")
    p.add_argument("--psi", type=psi_arg, default=0j, help="complex structure parameter (default 0)")
