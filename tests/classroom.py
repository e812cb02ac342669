"""A class in chromium: many sessions against one dashboard server at once, each in its own
browser context (its own Streamlit session), driven by Playwright's async API.

Used by tests/test_class.py (6 sessions, in CI) and benchmarks/bench_class.py (30 sessions).
A student opens a page whose address holds their inputs (a link, as a teacher would hand
out), presses Run, and waits for the result to be drawn. Meanwhile a visitor keeps opening a
page whose result is already stored and times how soon it is drawn.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from chromium import ARGS, CHROMIUM

# Errors a page shows: an uncaught exception, or an st.error box (their texts).
ERRORS = ("Array.from(document.querySelectorAll('[data-testid=\"stException\"], [data-testid=\"stAlertContentError\"]'))"
          ".map(e => e.innerText.slice(0, 300))")
PLOTS = "document.querySelectorAll('.js-plotly-plot').length"
# A result of each page, drawn: its own text (never a partial result's).
DONE = {
    "Points": "σ of g_FS",
    "Kernel_flow": "steps done",
    "Theory_lab": "error slope (theory −0.5)",
    "": "memory is each job's estimated peak",  # the landing page's comparison, whole
}


@dataclass(frozen=True)
class Student:
    """One session: the page (its address path) and the query string of its inputs; ``run``
    False for the landing page, which starts its comparison by itself."""

    path: str
    query: str = ""
    run: bool = True


@dataclass
class Outcome:
    student: Student
    seconds: float = float("nan")  # Run (or, for the landing page, opening it) to the result drawn
    errors: list = field(default_factory=list)  # texts of the errors the page showed at the end
    waited: list = field(default_factory=list)  # texts of the queue's progress bar seen meanwhile
    failure: str = ""


def students(points: int, flows: int, theory: int, landing: int, seed: int = 100) -> list[Student]:
    """Distinct small configurations (their seeds differ) and ``landing`` visitors of the landing page."""
    out = [Student("Points", f"points_n=2000&points_seed={seed + i}") for i in range(points)]
    out += [Student("Kernel_flow", f"flow_seed_delta={seed + i}") for i in range(flows)]
    out += [Student("Theory_lab", f"theory_seed={seed + i}") for i in range(theory)]
    out += [Student("", "", run=False) for _ in range(landing)]
    return out


async def _text(page, text: str) -> bool:
    return await page.get_by_text(text, exact=False).count() > 0


async def _attend(browser, url: str, student: Student, timeout: float) -> Outcome:
    outcome = Outcome(student)
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    try:
        address = f"{url}/{student.path}" + (f"?{student.query}" if student.query else "")
        start = time.perf_counter()
        await page.goto(address, timeout=timeout * 1000)
        if student.run:
            run = page.get_by_role("button", name="Run", exact=True)
            await run.wait_for(timeout=timeout * 1000)
            while not await run.is_enabled():
                if time.perf_counter() - start > timeout:
                    raise TimeoutError(f"Run stayed disabled for {timeout:.0f} s")
                await page.wait_for_timeout(100)
            await page.wait_for_timeout(300)  # the address has set the widgets
            await run.click(timeout=timeout * 1000)
            start = time.perf_counter()
        done = DONE[student.path]
        while not await _text(page, done):
            if time.perf_counter() - start > timeout:
                outcome.failure = f"no result within {timeout:.0f} s"
                break
            bar = page.locator("[data-testid='stProgress']")
            if await bar.count():
                outcome.waited.append(" ".join(await bar.all_inner_texts()))
            await page.wait_for_timeout(250)
        else:
            outcome.seconds = time.perf_counter() - start
        outcome.errors = await page.evaluate(ERRORS)
    except Exception as err:  # noqa: BLE001  (a page that did not load counts as a failure)
        outcome.failure = f"{type(err).__name__}: {str(err).splitlines()[0]}"
        try:
            outcome.errors = await page.evaluate(ERRORS)
        except Exception:  # noqa: BLE001
            pass
    finally:
        await context.close()
    return outcome


async def _visit(browser, url: str, path: str, stop: asyncio.Event, every: float, times: list, answers: list,
                 timeout: float) -> None:
    """Open ``path`` (a stored result) again and again until ``stop``: the seconds to each drawn
    result go to ``times``, and to ``answers`` the seconds to the server's last message before
    it was drawn (the server's part; the rest is the browser loading and drawing the page)."""
    done = DONE[path.split("?")[0]]
    while not stop.is_set():
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        page = await context.new_page()
        last = [float("nan")]
        page.on("websocket", lambda ws: ws.on("framereceived", lambda _: last.__setitem__(0, time.perf_counter())))
        try:
            start = time.perf_counter()
            await page.goto(f"{url}/{path}", timeout=timeout * 1000)
            while not await _text(page, done):
                if time.perf_counter() - start > timeout:
                    break
                await page.wait_for_timeout(50)
            times.append(time.perf_counter() - start)
            answers.append(last[0] - start)
        except Exception:  # noqa: BLE001
            times.append(float("inf"))
        finally:
            await context.close()
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


def _cpu_group(weight: int) -> tuple[Path, str] | None:
    """A new cgroup of CPU weight ``weight`` (cgroup v2's cpu.weight, 1-10000; 100 is the
    default, which the machine's other processes share as one group or, with autogroup, one
    group per terminal session): (its folder, the file a process joins it by). None where this
    machine lets no one make one (not root, no cpu controller)."""
    name = f"metricflow-class-{os.getpid()}"
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    for root, knob, value in ((Path("/sys/fs/cgroup"), "cpu.weight", weight),
                              (Path("/sys/fs/cgroup/cpu"), "cpu.shares", max(2, weight * 1024 // 100))):
        if knob == "cpu.weight" and not (v2.exists() and "cpu" in v2.read_text().split()):
            continue
        folder = root / name
        try:
            folder.mkdir(exist_ok=True)
            if not (folder / knob).exists():  # not a cgroup after all (a plain folder)
                folder.rmdir()
                continue
            (folder / knob).write_text(str(value))
            return folder, str(folder / "cgroup.procs")
        except OSError:
            continue
    return None


def _students_chromium(nice: int, weight: int, folder: str) -> tuple[str, Path | None]:
    """A script that runs chromium at ``nice`` and, if ``weight``, in a cgroup of that CPU
    weight (a Playwright executable_path); and the cgroup's folder, to remove afterwards.

    Chromium raises its browser and GPU processes to nice -8 whatever nice starts it, so only a
    cgroup really holds the students' browsers below the server."""
    group = _cpu_group(weight) if weight else None
    if weight and group is None:
        raise RuntimeError("this machine lets no one make a cgroup with a CPU weight (root and a cpu controller are needed)")
    join = f"echo $$ > {group[1]}\n" if group else ""
    path = os.path.join(folder, "chromium-students")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\n{join}exec nice -n {int(nice)} {CHROMIUM} "$@"\n')
    os.chmod(path, 0o755)
    return path, group[0] if group else None


async def _class(url: str, roster: list[Student], visit: str | None, timeout: float, stagger: float, nice: int,
                 weight: int):
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        with tempfile.TemporaryDirectory() as folder:
            students_path, group = _students_chromium(nice, weight, folder) if nice or weight else (CHROMIUM, None)
            browser = await p.chromium.launch(executable_path=students_path, args=ARGS)
            own = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS) if visit else None
            try:
                return await _lesson(browser, own, url, roster, visit, timeout, stagger)
            finally:
                await browser.close()
                if own is not None:
                    await own.close()
                if group is not None:
                    for _ in range(50):  # its processes take a moment to leave
                        try:
                            group.rmdir()
                            break
                        except OSError:
                            await asyncio.sleep(0.1)


async def _lesson(browser, own, url, roster, visit, timeout, stagger):
    """The students in ``browser`` and the visitor in ``own``, at once."""
    stop, opens, answers = asyncio.Event(), [], []
    visitor = asyncio.create_task(_visit(own, url, visit, stop, 2.0, opens, answers, timeout)) if visit else None

    async def late(i, s):
        await asyncio.sleep(i * stagger)
        return await _attend(browser, url, s, timeout)

    outcomes = await asyncio.gather(*(late(i, s) for i, s in enumerate(roster)))
    stop.set()
    if visitor is not None:
        await visitor
    return outcomes, opens, answers


def run_class(url: str, roster: list[Student], visit: str | None = None, timeout: float = 600.0,
              stagger: float = 0.1, nice: int = 0, weight: int = 0) -> tuple[list[Outcome], list[float], list[float]]:
    """Every student of ``roster`` at once (one every ``stagger`` s), and a visitor opening
    ``visit`` (a path and query whose result is stored) every 2 s until the last is done.

    The students share one chromium, run at ``nice`` if it is not 0, and in a cgroup of CPU
    weight ``weight`` if it is not 0 (their browsers stand for the students' own machines,
    which a real class does not run on the server); the visitor has a chromium of its own at
    normal priority.

    Returns:
      (each student's Outcome, the visitor's seconds from opening to the result drawn, and
      to the server's last message before it).
    """
    return asyncio.run(_class(url, roster, visit, timeout, stagger, nice, weight))


def percentile(values, q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; nan for no values."""
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def server_errors(log: str) -> list[str]:
    """The tracebacks in a server's log, by their last line, less the websocket ones that a
    browser context closing in the middle of a message leaves (Streamlit's server, not ours)."""
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", log)
    errors = []
    for block in plain.split("Traceback (most recent call last)")[1:]:
        lines = [ln.strip() for ln in block.splitlines() if re.match(r"\s*[\w.]+(Error|Exception|Disconnected)\b", ln)]
        last = lines[-1] if lines else block.strip().splitlines()[-1]
        if "WebSocketDisconnected" not in block:
            errors.append(last)
    return errors
