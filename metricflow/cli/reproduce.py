"""The ``reproduce`` subcommand: every experiment of section 3, one report (DIR/report.html, report.json)."""

from __future__ import annotations

from metricflow.errors import MetricflowError


def add_parser(sub) -> None:
    """Declare the ``reproduce`` subcommand on ``sub`` (an argparse subparsers action)."""
    p = sub.add_parser("reproduce", help="run every experiment of section 3 and write DIR/report.html and report.json")
    p.add_argument("--out", required=True, help="directory for report.html and report.json (created if needed)")
    p.add_argument("--quick", action="store_true", help="smaller sizes: about 10 minutes on 2 cores")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--parallel", action="store_true", help="run the independent pieces at once on the job runner's workers (or --scheduler)")
    p.set_defaults(run=run_reproduce, show=show_reproduce)


def run_reproduce(args) -> dict:
    from metricflow.reproduce import ReproduceConfig, reproduce

    config = ReproduceConfig(quick=args.quick, seed=args.seed)
    if args.parallel and args.no_cache:
        raise MetricflowError("--parallel runs the pieces as stored jobs; drop --no-cache")
    result = reproduce(config, args.out, cache=not args.no_cache, progress=not args.no_progress, parallel=args.parallel)
    return result.summary()


def show_reproduce(r: dict) -> str:
    counts = {}
    for n in r["numbers"]:
        counts[n["status"]] = counts.get(n["status"], 0) + 1
    lines = [f"{r['mode']} mode: {r['computed']} pieces computed, {r['stored']} from the store, {r['seconds']:.0f} s "
             f"(plan estimate {r['plan_estimate_seconds']:.0f} s); load {r['load']['start']} -> {r['load']['end']} "
             f"on {r['load']['cpus']} CPUs",
             f"{'quantity':<62} {'paper':>14}  {'ours':<28} status"]
    lines += [f"{n['quantity'][:62]:<62} {n['paper'][:14]:>14}  {n['ours_text'][:28]:<28} {n['status']}" for n in r["numbers"]]
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items()))
    if r["failed"]:
        lines.append("failed: " + "; ".join(r["failed"]))
    lines.append(f"report: {r['out']}/report.html and report.json")
    return "\n".join(lines)
