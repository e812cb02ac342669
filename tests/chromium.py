"""What the chromium tests and benchmarks/bench_dashboard.py share: a dashboard server on a
loopback port, and Debian's chromium driven by Playwright (no browser download)."""

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(folder: Path, **env):
    """``streamlit run app.py`` on a free loopback port, its store in ``folder``/cache and its
    log in ``folder``/streamlit.log; yields (url, process). Extra environment variables go to
    the server. Raises RuntimeError, with the log, if it does not start within 60 s."""
    port = free_port()
    env = dict(os.environ, METRICFLOW_CACHE=str(folder / "cache"), **env)
    with open(folder / "streamlit.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.address", "127.0.0.1", "--server.port", str(port),
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        url, end = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > end:
                proc.kill()
                raise RuntimeError(f"streamlit did not start:\n{(folder / 'streamlit.log').read_text()}")
            time.sleep(0.3)
        try:
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def chromium():
    """Debian's chromium, headless, through Playwright; yields the Browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def fill(page, values: dict) -> None:
    """Type each value into the input labelled by its key, pressing Enter."""
    for label, value in values.items():
        box = page.get_by_label(label)
        box.fill(str(value))
        box.press("Enter")
        page.wait_for_timeout(300)


@contextmanager
def peak_memory(proc, every: float = 0.25):
    """Watch the resident memory of ``proc`` (a server) and its descendants (its workers) while
    the block runs; yields a dict that holds, once it ends, the peaks in MiB: "server" (the
    process alone) and "total" (with its descendants)."""
    import psutil

    peaks, stop = {"server": 0.0, "total": 0.0}, threading.Event()

    def watch():
        root = psutil.Process(proc.pid)
        while not stop.wait(every):
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            sizes = []
            for q in tree:
                try:
                    sizes.append(q.memory_info().rss / 2**20)
                except psutil.Error:
                    sizes.append(0.0)
            peaks["server"] = max(peaks["server"], sizes[0])
            peaks["total"] = max(peaks["total"], sum(sizes))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield peaks
    finally:
        stop.set()
        watcher.join(5)
