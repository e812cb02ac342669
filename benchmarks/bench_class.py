"""A class on one server: many chromium sessions at once, measured.

Starts ``streamlit run app.py`` on a loopback port with a fresh store, stores one Points
result (2,000 points, seed 0), then opens every session at once, each in its own browser
context of one Debian chromium:

  small     sessions that each run a distinct small configuration at the page's defaults
            (Points at 2,000 points, Kernel flow, Theory lab, in turn; distinct seeds)
  landing   sessions that open the landing page, which runs the same quick comparison

Meanwhile a visitor opens the stored Points result every 2 s, in a chromium of its own at
normal priority. In a class the students' browsers run on their own machines, not on the
server: ``--weight W`` puts the students' chromium in a cgroup of CPU weight W against the
rest of the machine (needs root). Where Linux groups a terminal session's processes
(``/proc/sys/kernel/sched_autogroup_enabled``), the server, its workers and the visitor count
as one group of weight 100: W = 10 gives the thirty browsers together about a tenth of the
CPU while the server's side wants all of it, and the rest whenever it does not. ``--nice``
sets the students' niceness (chromium raises its browser and GPU processes to nice -8
whatever starts it, so nice alone does not hold it back).
Reports whether every session got its result, how often each configuration was computed (the
store's run count: the shared one must be once), time to result (p50, p95) of the small jobs
and of the comparison, time to open the stored page (p50, p95; also to the server's last
message, which leaves out the browser's own drawing), the server's and its workers' peak
memory, the errors the pages showed, and the jobs' seconds by kind. The machine's load
average before the run comes first.

  python benchmarks/bench_class.py [--small 20] [--landing 10] [--stagger 0.1] [--nice 10] [--weight W]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from chromium import peak_memory, serve  # noqa: E402
from classroom import percentile, run_class, server_errors, students  # noqa: E402

VISIT = "Points?points_n=2000&points_seed=0"


def store_visit_result(cache: Path) -> None:
    """Compute the visitor's Points result into the server's store, before the class."""
    from metricflow.geometry.manifolds import manifold
    from metricflow.geometry.points import SampleConfig
    from metricflow.jobs import JobStore, LocalProcessExecutor, run_job

    store = JobStore(cache, executor=LocalProcessExecutor(max_workers=1))
    run_job(SampleConfig(manifold("quintic"), n_points=2000, seed=0), store=store)
    store.close()


def runs(cache: Path) -> tuple[Counter, Counter]:
    """How many times each job in the store was started, counted by job kind and runs; and
    the jobs' seconds (in their workers) summed by kind."""
    from metricflow.jobs import JobStore

    store = JobStore(cache)
    counts, seconds = Counter(), Counter()
    for job in store.jobs():
        counts[(job.kind, store.runs(job.key))] += 1
        seconds[job.kind] += job.seconds if job.started else 0.0
    store.close()
    return counts, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20, help="sessions with a distinct small job")
    parser.add_argument("--landing", type=int, default=10, help="sessions on the landing page (one shared job)")
    parser.add_argument("--stagger", type=float, default=0.1, help="seconds between sessions' arrivals")
    parser.add_argument("--nice", type=int, default=10,
                        help="niceness of the students' chromium (0: as the server's), standing for their own machines")
    parser.add_argument("--weight", type=int, default=0,
                        help="CPU weight of a cgroup for the students' chromium (1-10000, a normal process has 100; "
                             "0: no cgroup); needs root")
    args = parser.parse_args()
    import jax

    print(f"device: {jax.devices()[0]}; load average before: {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}; "
          f"students' chromium at nice {args.nice}" + (f", in a cgroup of CPU weight {args.weight}" if args.weight else ""),
          flush=True)
    third = args.small // 3
    roster = students(args.small - 2 * third, third, third, args.landing)
    roster = [roster[i] for i in sorted(range(len(roster)), key=lambda i: (i % 7, i))]  # pages interleaved
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        store_visit_result(folder / "cache")
        with serve(folder, METRICFLOW_AUTOSTART="1") as (url, proc), peak_memory(proc) as peaks:
            start = time.perf_counter()
            outcomes, opens, answers = run_class(url, roster, visit=VISIT, stagger=args.stagger, nice=args.nice,
                                       weight=args.weight)
            wall = time.perf_counter() - start
        log = (folder / "streamlit.log").read_text()
        (Path(tempfile.gettempdir()) / "bench-class.log").write_text(log)
        counts, seconds = runs(folder / "cache")
    small = [o for o in outcomes if o.student.run]
    landing = [o for o in outcomes if not o.student.run]
    got = [o for o in outcomes if o.failure == "" and o.seconds == o.seconds]
    queued = sum(any("queued: number" in w for w in o.waited) for o in outcomes)
    print(f"sessions: {len(outcomes)}; got their result: {len(got)}; wall {wall:.0f} s", flush=True)
    for o in outcomes:
        if o.failure:
            print(f"  failed: {o.student.path or 'landing'} {o.student.query}: {o.failure}")
    print("| measure | target | measured |")
    print("| --- | --- | --- |")
    print(f"| sessions that got their result | all {len(outcomes)} | {len(got)} |")
    twice = sum(n for (kind, r), n in counts.items() if r > 1)
    print(f"| configurations computed more than once | 0 | {twice} (jobs by kind and runs: "
          + ", ".join(f"{kind} ×{r}: {n}" for (kind, r), n in sorted(counts.items())) + ") |")
    t = [o.seconds for o in small if not o.failure]
    print(f"| small job, Run to result drawn, p50 / p95 | p95 ≤ 30 s | {percentile(t, 50):.1f} s / {percentile(t, 95):.1f} s "
          f"(max {max(t, default=float('nan')):.1f} s) |")
    t = [o.seconds for o in landing if not o.failure]
    if t:
        print(f"| landing comparison, open to whole result, p50 / p95 | | {percentile(t, 50):.1f} s / {percentile(t, 95):.1f} s |")
    print(f"| open a stored result while the class runs, p50 / p95 ({len(opens)} opens) | p95 ≤ 2 s | "
          f"{percentile(opens, 50):.2f} s / {percentile(opens, 95):.2f} s |")
    answered = [a for a in answers if a == a]  # nan: no message came
    print(f"| the same, to the server's last message before the result was drawn, p50 / p95 | | "
          f"{percentile(answered, 50):.2f} s / {percentile(answered, 95):.2f} s |")
    print(f"| peak memory: server / server and workers | | {peaks['server']:,.0f} MiB / {peaks['total']:,.0f} MiB |")
    errors = sum(len(o.errors) for o in outcomes)
    print(f"| errors shown on pages; errors in the server log | 0 | {errors}; {len(server_errors(log))} |")
    for text in sorted({e for o in outcomes for e in o.errors}):
        print(f"  error shown: {text!r}")
    print("job seconds by kind (in the workers): " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.most_common()))
    print(f"sessions that saw their place in the queue: {queued}")
    for o in small[:3]:
        print(f"  e.g. {o.student.path}: {o.waited[-1] if o.waited else 'never waited'}")


if __name__ == "__main__":
    main()
