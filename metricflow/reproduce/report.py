"""The report of a reproduction: report.html, report.json and the pointer to the latest report;
``reproduce`` runs a plan from start to finish and writes them."""

from __future__ import annotations

import html
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from metricflow.errors import MetricflowError
from metricflow.jobs import cache_directory
from metricflow.reproduce.numbers import paper_numbers
from metricflow.reproduce.plan import SECTIONS, ReproduceConfig, plan, plan_estimate
from metricflow.reproduce.run import run_plan

__all__ = ["REPORT_SCHEMA", "ReproduceResult", "report_html", "report_json", "reproduce", "latest_report"]

# 2: fig. 3 with the covariant update, test points in the train chart, gains with errors.
REPORT_SCHEMA = 2


@dataclass(frozen=True)
class ReproduceResult:
    """What one reproduction produced.

    Attributes:
      config: the ReproduceConfig.
      records: one PieceRecord per piece of the plan.
      numbers: one NumberRow per PAPER_NUMBERS entry.
      seconds: wall time of the whole run.
      estimate: the plan's estimate (seconds), before subtracting stored pieces.
      load: (load average over 1 minute at the start, at the end), and the CPU count.
      created: Unix time.
      out: the directory written (report.html, report.json).
    """

    config: ReproduceConfig
    records: tuple
    numbers: tuple
    seconds: float
    estimate: float
    load: dict
    created: float
    out: str = ""
    schema_version: int = REPORT_SCHEMA

    @property
    def computed(self) -> int:
        """Pieces computed in this run (not served from the store)."""
        return sum(1 for r in self.records if not r.cached and not r.error)

    @property
    def failed(self) -> tuple:
        return tuple(r for r in self.records if r.error)

    def summary(self) -> dict:
        """The JSON of report.json (and of ``metricflow reproduce --json``)."""
        return {
            "schema_version": self.schema_version,
            "mode": self.config.size,
            "seed": self.config.seed,
            "created": self.created,
            "seconds": self.seconds,
            "plan_estimate_seconds": self.estimate,
            "load": self.load,
            "computed": self.computed,
            "stored": sum(1 for r in self.records if r.cached),
            "failed": [f"{r.name}: {r.error}" for r in self.failed],
            "out": self.out,
            "pieces": [r.to_dict() for r in self.records],
            "numbers": [n.to_dict() for n in self.numbers],
        }


def report_json(result: ReproduceResult) -> str:
    """report.json: the numbers, the settings of every piece and the run's time and load."""

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(result.summary()), indent=1)



_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:.9em;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .5em;vertical-align:top}
th{background:#f3f3f3}.agrees{background:#e7f6e7}.differs{background:#fdeaea}.missing{background:#eee}.claim{background:#eef3fb}
.banner{padding:.6em 1em;background:#fff4d6;border:1px solid #e0c060;margin:1em 0}code{font-size:.85em}
"""


def report_html(result: ReproduceResult, results: dict) -> str:
    """The report as one self-contained HTML page (plotly.js embedded once, inline)."""
    e = html.escape
    s = result.summary()
    mode = result.config.size
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>metricflow: reproduction of section 3 "
             f"({mode})</title><style>{_CSS}</style></head><body>",
             "<h1>Reproduction of <i>Metric flows with neural networks</i>, section 3</h1>"]
    if mode != "full":
        what = ("the quick mode: smaller sizes than the paper (see the settings of each number)" if mode == "quick"
                else "the tiny test mode: minimal sizes, the numbers mean nothing")
        parts.append(f"<div class='banner' id='mode'><b>This report is {e(what)}.</b> "
                     "Run without <code>--quick</code> for the paper's settings.</div>")
    else:
        parts.append("<div class='banner' id='mode'>Full mode: the paper's settings.</div>")
    load = s["load"]
    parts.append(
        "<p>" + e(f"Created {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(result.created))}; "
                  f"{result.seconds:.0f} s wall time ({s['computed']} pieces computed, {s['stored']} from the store); "
                  f"plan estimate {result.estimate:.0f} s; {load.get('cpus')} CPUs, load average "
                  f"{load.get('start')} at the start and {load.get('end')} at the end; seed {result.config.seed}; "
                  f"Python {platform.python_version()}.") + "</p>")
    if result.failed:
        parts.append("<p class='differs'><b>Failed pieces:</b> "
                     + e("; ".join(f"{r.name}: {r.error}" for r in result.failed)) + "</p>")
    counts = {k: sum(1 for n in result.numbers if n.status == k) for k in ("agrees", "differs", "claim", "missing")}
    parts.append("<h2 id='numbers'>The paper's numbers and ours</h2><p>"
                 + e(", ".join(f"{v} {k}" for k, v in counts.items())) + ". ‘agrees’ means within the tolerance "
                 "of the paper's own rounding (~ values: within a factor; fits: within two standard errors).</p>")
    parts.append("<table><tr><th>section</th><th>quantity</th><th>paper</th><th>ours</th><th>status</th>"
                 "<th>settings</th><th>note</th></tr>")
    for n in result.numbers:
        parts.append(f"<tr class='{n.status}' id='number-{e(n.id)}'><td>{e(n.section)}</td><td>{e(n.quantity)}</td>"
                     f"<td>{e(n.paper)}</td><td>{e(n.ours_text)}</td><td>{e(n.status)}</td><td>{e(n.settings)}</td>"
                     f"<td>{e(n.note)}</td></tr>")
    parts.append("</table>")
    first = True
    for key, section in SECTIONS.items():
        parts.append(f"<h2 id='section-{key}'>{e(section.title)}</h2><p><b>Paper:</b> {e(section.paper)}</p>")
        for fig in section.figures(results):
            parts.append(fig.to_html(full_html=False, include_plotlyjs=True if first else False))
            first = False
        parts.append("<table><tr><th>piece</th><th>config</th><th>seconds</th><th>estimate</th><th>from store</th>"
                     "<th>error</th><th>settings</th></tr>")
        for r in result.records:
            if r.section != key:
                continue
            settings = json.dumps(r.settings, separators=(", ", ": "))
            parts.append(f"<tr><td>{e(r.name)}</td><td>{e(r.kind)}</td><td>{r.seconds:.1f}</td><td>{r.estimate:.0f}</td>"
                         f"<td>{'yes' if r.cached else 'no'}</td><td>{e(r.error)}</td><td><code>{e(settings)}</code></td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _check_out(out) -> Path:
    """The output directory, created; MetricflowError if it cannot be."""
    if out is None or str(out).strip() == "":
        raise MetricflowError("--out must name a directory for report.html and report.json, got an empty path")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise MetricflowError(f"--out {str(out)!r} is an existing file, not a directory; give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MetricflowError(f"cannot create the output directory {str(out)!r}: {err.strerror or err}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise MetricflowError(f"the output directory {str(out)!r} is not writable")
    return path


def _load() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def reproduce(
    config: ReproduceConfig, out, *, cache: bool = True, store=None, progress: bool = True, parallel: bool = False
) -> ReproduceResult:
    """Run the plan of ``config`` and write ``out/report.html`` and ``out/report.json``.

    Args:
      config: a ReproduceConfig.
      out: the output directory (created if needed); MetricflowError if it is a file or
        cannot be created, before anything runs.
      cache: use the job store (False: compute everything afresh and store nothing).
      store: the JobStore; default ``JobStore()``.
      progress: show a progress bar on stderr.
      parallel: run the pieces not yet stored in parallel on the store's executor.

    Returns:
      ReproduceResult (``.failed`` names pieces that failed; their numbers are "missing").
    """
    path = _check_out(out)
    pieces = plan(config)
    total = plan_estimate(pieces)
    load_start, start, created = _load(), time.perf_counter(), time.time()
    results, records = run_plan(pieces, cache=cache, store=store, progress=progress, parallel=parallel)
    numbers = paper_numbers(results, records)
    result = ReproduceResult(
        config=config, records=records, numbers=numbers, seconds=time.perf_counter() - start, estimate=total,
        load={"cpus": os.cpu_count(), "start": load_start, "end": _load()}, created=created, out=str(path.resolve()),
    )
    try:
        (path / "report.html").write_text(report_html(result, results), encoding="utf-8")
        (path / "report.json").write_text(report_json(result), encoding="utf-8")
    except OSError as err:
        raise MetricflowError(f"could not write the report in {str(path)!r}: {err.strerror or err}") from None
    try:  # the pointer the dashboard's home page reads; a failure here must not lose the report
        pointer = Path(store.directory if store is not None else cache_directory()) / "reports" / "latest.json"
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_text(json.dumps({"html": str((path / "report.html").resolve()), "json": str((path / "report.json").resolve()),
                                       "mode": config.size, "created": created, "seconds": result.seconds}))
    except OSError:
        pass
    return result


def latest_report(directory=None) -> Optional[dict]:
    """The latest report written with this store: {"html", "json", "mode", "created",
    "seconds"}, or None if there is none (or its file is gone).

    Args:
      directory: the store directory; default ``metricflow.jobs.cache_directory()``.
    """
    pointer = Path(cache_directory(directory)) / "reports" / "latest.json"
    try:
        info = json.loads(pointer.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not Path(str(info.get("html", ""))).is_file():
        return None
    return info
