"""The paper's numbers and ours: every section's PaperNumbers, and the table of one run."""

from __future__ import annotations

from metricflow.reproduce.plan import SECTIONS
from metricflow.reproduce.section import NumberRow, PaperNumber

__all__ = ["PAPER_NUMBERS", "PaperNumber", "NumberRow", "paper_numbers"]

# Every number (or claim) of section 3, section by section in the report's order.
PAPER_NUMBERS = tuple(number for section in SECTIONS.values() for number in section.numbers)


def paper_numbers(results: dict, records=()) -> tuple:
    """One NumberRow per PAPER_NUMBERS entry, from the results of ``run_plan``.

    Args:
      results: {piece name: result}.
      records: the PieceRecords, to name a failed piece in a missing row.

    Returns:
      tuple of NumberRow, in PAPER_NUMBERS order.
    """
    failed = {r.name: r.error for r in records if r.error}
    return tuple(row for section in SECTIONS.values() for row in section.rows(results, failed))
