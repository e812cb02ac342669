"""What a section of the report is made of: its pieces, the paper's numbers it measures, its figures.

A section module (``clustering``, ``kernels``, ``generalisation``, ``networks``) defines the
names of its pieces once, as constants, and builds one ``Section`` per heading of the report
from three functions that read those constants:

  configs(config)          -> [(piece name, job config), ...]   what to run, in run order
  measure(results, rows)   fills ``rows`` (a ``Rows``) with one NumberRow per PaperNumber
  figures(results)         -> [plotly Figure, ...]

``results`` is {piece name: result} of the pieces that finished. Nothing outside the section's
module reads its piece names or its numbers' ids.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

__all__ = ["Piece", "Section", "PaperNumber", "NumberRow", "Rows", "judge", "fmt", "pm"]


class Piece(NamedTuple):
    """One job of the plan: ``config`` (a registered job config) for ``section``."""

    section: str
    name: str
    config: Any


class PaperNumber(NamedTuple):
    """One number (or claim) of section 3 and how ours is compared with it.

    Attributes:
      id: short name, unique.
      section: a key of SECTIONS.
      quantity: what it is.
      paper: the paper's value as printed.
      value: the paper's value as a number (None for a claim without a number).
      check: how ours agrees: ("abs", tol), ("factor", f), ("at_most", bound), ("range", lo, hi)
        or ("claim",) (judged in the note).
      why: why ours differs, when it does (from docs/*.md).
    """

    id: str
    section: str
    quantity: str
    paper: str
    value: Optional[float]
    check: tuple
    why: str = ""


@dataclass(frozen=True)
class NumberRow:
    """One row of the report's table: a paper number and ours.

    Attributes:
      id, section, quantity, paper: from the PaperNumber.
      ours: our value (None if not measured, e.g. the piece failed or the target is unreachable).
      ours_text: ours as shown in the report (with context such as "stopped at step 5").
      settings: the settings that produced it.
      status: "agrees", "differs", "claim" (judged in the note) or "missing".
      note: context; for "differs", why (from docs/*.md).
    """

    id: str
    section: str
    quantity: str
    paper: str
    ours: Optional[float]
    ours_text: str
    settings: str
    status: str
    note: str = ""

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if out["ours"] is not None and not math.isfinite(out["ours"]):
            out["ours"] = None
        return out


def fmt(value, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits, or "n/a" for None and non-finite values."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g}"


def pm(value, err) -> str:
    """'value ± err', or 'diverged' for a null gain."""
    if value is None or not math.isfinite(value):
        return "diverged"
    return f"{value:.3g} ± {fmt(err, 2)}"


def judge(number: PaperNumber, ours: Optional[float], err: float = 0.0) -> str:
    """The status of ``ours`` against ``number``: "agrees", "differs", "claim" or "missing"."""
    check = number.check
    if check[0] == "claim":
        return "claim"
    if ours is None or not math.isfinite(ours):
        return "missing"
    kind = check[0]
    if kind == "abs":
        ok = abs(ours - number.value) <= check[1]
    elif kind == "factor":
        ok = ours > 0 and abs(math.log(ours / number.value)) <= math.log(check[1])
    elif kind == "at_most":
        ok = ours <= check[1]
    elif kind == "range":
        ok = check[1] <= ours <= check[2]
    else:  # fit: within 2 standard errors and a small systematic allowance
        ok = abs(ours - number.value) <= 2 * (err if math.isfinite(err) else 0.0) + (0.05 if check[1] == "prefactor" else 0.01)
    return "agrees" if ok else "differs"


class Rows:
    """The rows of one section's table, filled by its ``measure`` function.

    Args:
      numbers: the section's PaperNumbers.
      failed: {piece name: one-line error} of the pieces that failed.
    """

    def __init__(self, numbers, failed: dict):
        self._numbers = {n.id: n for n in numbers}
        self._failed = failed
        self._rows: dict[str, NumberRow] = {}

    def add(self, nid: str, ours, ours_text: str, settings: str, note: str = "", err: float = 0.0,
            measured: bool = False) -> None:
        """The row of number ``nid``; measured=True: ours is None because the quantity does not
        exist here (unreachable), which is a difference, not a missing value."""
        number = self._numbers[nid]
        status = judge(number, ours, err)
        if status == "missing" and measured:
            status = "differs"
        if status == "differs" and number.why:
            note = (note + " " if note else "") + number.why
        self._rows[nid] = NumberRow(nid, number.section, number.quantity, number.paper,
                                    None if ours is None else float(ours), ours_text, settings, status, note)

    def missing(self, nid: str, piece: str) -> None:
        """The row of number ``nid`` when ``piece`` did not finish (its error) or did not run."""
        why = self._failed.get(piece, "not in this plan")
        number = self._numbers[nid]
        self._rows[nid] = NumberRow(nid, number.section, number.quantity, number.paper, None, "n/a", "", "missing",
                                    f"{piece}: {why}")

    def table(self) -> tuple:
        """The rows in the order of the section's numbers; KeyError names a number left unfilled."""
        return tuple(self._rows[nid] for nid in self._numbers)


@dataclass(frozen=True)
class Section:
    """One heading of the report: what it runs, which paper numbers it measures, its figures.

    Attributes:
      key: the section's id (``id='section-<key>'`` in the report, ``Piece.section``).
      title: its heading.
      paper: what the paper shows there.
      numbers: its PaperNumbers, in the report's order.
      configs: (ReproduceConfig) -> [(piece name, job config)], in run order.
      measure: (results, Rows) -> None: one row per number; results is {piece name: result}.
      figures: (results) -> [plotly Figure].
      runs_last: its pieces run after every other section's (the slowest: the network).
    """

    key: str
    title: str
    paper: str
    numbers: tuple
    configs: Callable[[Any], list]
    measure: Callable[[dict, Rows], None]
    figures: Callable[[dict], list]
    runs_last: bool = False

    def pieces(self, config) -> tuple:
        """The Pieces of this section for ``config`` (a ReproduceConfig), in run order."""
        return tuple(Piece(self.key, name, job) for name, job in self.configs(config))

    def rows(self, results: dict, failed: dict) -> tuple:
        """One NumberRow per entry of ``numbers``, from {piece name: result} and {piece name: error}."""
        rows = Rows(self.numbers, failed)
        self.measure(results, rows)
        return rows.table()
