"""One command reproduces section 3 of the paper: every experiment, one report.

``python -m metricflow reproduce --out DIR [--quick] [--no-cache]`` runs the plan of a
``ReproduceConfig``: a list of ``Piece`` (section, name, config), each an ordinary job config
run through ``metricflow.jobs.run_job``. So every finished piece is stored: a second run is
served from the store, and an interrupted run continues with the first unfinished piece.

The plan covers section 3 of the paper; each section is a ``Section`` of its own module,
which owns its pieces, the paper's numbers it measures and its figures:

=================  ===============================================================  ==========
section (module)   what                                                             configs
=================  ===============================================================  ==========
clustering         fig. 2 and the silhouettes (.016, -.011, -.032), eq. 3.3          ClusterConfig
kernels            the three kernels of table 1: train and test gains (3.2.4)        FlowConfig
noise (gen.)       test gain against distance (fig. 3 left)                         NoiseConfig
scaling (gen.)     nearest-neighbour distance against N, eq. 3.7, extrapolation     ScalingConfig
network (nets)     3 x 64 ReLU network, 50 epochs, metric-NTK evolution (fig. 4)     TrainConfig
trained-kernel     the flow (3.5) with the metric-NTK frozen at init / after training TrainedKernelConfig
=================  ===============================================================  ==========

The shared machinery: ``section`` (Piece, Section, PaperNumber, NumberRow), ``plan`` (the
list of sections, ReproduceConfig, plan, plan_estimate), ``run`` (run_plan through the job
runner, the progress bar), ``numbers`` (PAPER_NUMBERS, paper_numbers) and ``report``
(report.html, report.json, reproduce, latest_report).

The results become ``DIR/report.html`` (one self-contained page: plotly.js embedded once,
every figure, a table of each of the paper's numbers next to ours with the settings used) and
``DIR/report.json`` (the same numbers). The path of the latest report is kept in
``<store>/reports/latest.json`` for the dashboard's home page (``latest_report``).

Example:
  >>> config = ReproduceConfig(quick=True)
  >>> [(p.section, p.name) for p in plan(config)]
  >>> result = reproduce(config, "out/")       # writes out/report.html and out/report.json
  >>> result.numbers[0]                        # a NumberRow: paper value, ours, settings
"""

from metricflow.reproduce.numbers import PAPER_NUMBERS, paper_numbers
from metricflow.reproduce.plan import MODES, SECTIONS, ReproduceConfig, plan, plan_estimate
from metricflow.reproduce.report import (
    REPORT_SCHEMA,
    ReproduceResult,
    latest_report,
    report_html,
    report_json,
    reproduce,
)
from metricflow.reproduce.run import PieceRecord, run_plan
from metricflow.reproduce.section import NumberRow, PaperNumber, Piece, Section

__all__ = [
    "MODES",
    "SECTIONS",
    "PAPER_NUMBERS",
    "REPORT_SCHEMA",
    "ReproduceConfig",
    "Piece",
    "PieceRecord",
    "PaperNumber",
    "NumberRow",
    "ReproduceResult",
    "Section",
    "plan",
    "plan_estimate",
    "run_plan",
    "paper_numbers",
    "report_html",
    "report_json",
    "reproduce",
    "latest_report",
]
