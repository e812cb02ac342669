"""Command line: ``python -m metricflow SUBCOMMAND ...``.

Each subcommand lives in its own module of this package, which exposes ``add_parser(sub)``:
it declares the subcommand's options and sets its ``run`` function (args -> a JSON-ready
dict) and its ``show`` function (that dict -> a summary). ``--json`` prints the dict,
otherwise the summary. Bad input exits with status 2 and a one-line message, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from metricflow.cli import classical_flow, cluster, donaldson, flow, methods, noise, reproduce, sample, train, tune
from metricflow.cli.options import int_arg
from metricflow.errors import MetricflowError

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

# The subcommand modules, in the order --help lists them.
SUBCOMMANDS = (sample, flow, noise, cluster, train, tune, reproduce, donaldson, methods, classical_flow)


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (and exit 2), like every other bad input."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand, with the options they all have."""
    parser = _OneLineParser(prog="python -m metricflow", description="Neural-network metric flows on Calabi-Yau manifolds.")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="run jobs on this Dask scheduler (default: $METRICFLOW_SCHEDULER, else locally)")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(sub)
    for p in sub.choices.values():  # options every subcommand has
        p.add_argument("--seed", type=int_arg, default=0)
        p.add_argument("--no-cache", action="store_true", help="compute afresh; do not read or write the result store")
        p.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, or 2 for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        if args.scheduler is not None:  # jobs (run_job, run_many, JobStore) read it from here
            from metricflow.jobs.dask import SCHEDULER_ENV, executor_for

            os.environ[SCHEDULER_ENV] = args.scheduler
            executor_for(args.scheduler)  # fail now, in one line, if it cannot be reached
        result = args.run(args)
    except MetricflowError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory; use fewer points", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else args.show(result))
    return 0
