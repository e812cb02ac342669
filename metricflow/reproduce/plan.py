"""The plan of a reproduction: which sections there are, and the pieces (job configs) each runs.

The report's sections are listed once, here, in the report's order; each is a ``Section`` of
its own module (``clustering``, ``kernels``, ``generalisation``, ``networks``), which alone
knows its piece names and its numbers. A new section is a ``Section`` in a module and one
entry of ``SECTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from metricflow.errors import MetricflowError, check_count
from metricflow.jobs import estimate
from metricflow.reproduce.clustering import CLUSTERING_SECTION
from metricflow.reproduce.generalisation import NOISE_SECTION, SCALING_SECTION
from metricflow.reproduce.kernels import KERNELS_SECTION
from metricflow.reproduce.networks import NETWORK_SECTION, TRAINED_KERNEL_SECTION
from metricflow.reproduce.section import Piece

__all__ = ["MODES", "SECTIONS", "ReproduceConfig", "Piece", "plan", "plan_estimate"]

# "full" is the paper's settings; "quick" fits in 10 minutes on 2 cores; "tiny" is for tests.
MODES = ("full", "quick", "tiny")

# Section key -> Section, in the report's order.
SECTIONS = {
    section.key: section
    for section in (
        CLUSTERING_SECTION,
        KERNELS_SECTION,
        NOISE_SECTION,
        SCALING_SECTION,
        NETWORK_SECTION,
        TRAINED_KERNEL_SECTION,
    )
}


@dataclass(frozen=True)
class ReproduceConfig:
    """What to reproduce. Validated on construction; computes nothing.

    Attributes:
      quick: smaller sizes (about 5-10 minutes on 2 cores) instead of the paper's.
      size: "full", "quick" or "tiny" (a seconds-long plan for tests); None = from ``quick``.
        Giving both is allowed only when they agree.
      seed: the seed of every experiment.
    """

    quick: bool = False
    size: Optional[str] = None
    seed: int = 0

    def __post_init__(self):
        quick = bool(self.quick)
        size = ("quick" if quick else "full") if self.size is None else self.size
        if size not in MODES:
            raise MetricflowError(f"size must be one of {', '.join(MODES)}, got {self.size!r}")
        if quick and size == "full":
            raise MetricflowError("quick=True contradicts size='full'; give one of them")
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "quick", size != "full")
        object.__setattr__(self, "seed", check_count(self.seed, "seed", minimum=0, maximum=2**63))

    @property
    def mode(self) -> str:
        return self.size


def plan(config: ReproduceConfig) -> tuple:
    """The pieces of ``config``, in the order they run (cheap first, the network last): each
    section's pieces in the report's order, those of sections marked ``runs_last`` at the end.

    Returns:
      tuple of Piece.
    """
    ordered = sorted(SECTIONS.values(), key=lambda section: section.runs_last)  # stable
    return tuple(piece for section in ordered for piece in section.pieces(config))


def plan_estimate(pieces) -> float:
    """Sum of ``metricflow.jobs.estimate`` over the pieces (seconds on 2 unloaded cores)."""
    return float(sum(estimate(p.config).seconds for p in pieces))
