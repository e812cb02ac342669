"""The local executor: each job in a fresh Python process on this machine."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading

from metricflow.jobs.execute import execute
from metricflow.jobs.status import QUEUED, NoExecutor, Task, _alive
from metricflow.jobs.store import JobStore

__all__ = ["LocalProcessExecutor", "worker_main"]


class LocalProcessExecutor:
    """Runs each task in a fresh Python process, at most ``max_workers`` at a time.

    The worker is a new interpreter (``python -c ...``), as with multiprocessing's "spawn"
    (JAX does not survive fork), but started with subprocess: Streamlit replaces
    ``sys.modules["__main__"]`` with the page script, and multiprocessing's spawn would run
    that page again inside the worker. The task goes to the worker pickled, on stdin, and
    the worker gets this process's ``sys.path``.

    Tasks beyond ``max_workers`` wait in this process (their jobs stay "queued"). A thread
    per task starts the worker, waits for it, and marks the job failed if the worker died
    without finishing it. Cancelling terminates the worker (SIGTERM).
    """

    def __init__(self, max_workers: int | None = None):
        self.max_workers = max_workers or max(1, min(2, os.cpu_count() or 1))
        self._slots = threading.Semaphore(self.max_workers)
        self._processes: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def submit(self, task: Task) -> None:
        blob = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)  # fail here, not in the worker
        threading.Thread(target=self._run, args=(task.directory, task.key, blob), daemon=True).start()

    def _run(self, directory: str, key: str, blob: bytes) -> None:
        store = JobStore(directory, executor=NoExecutor())
        try:
            with self._slots:
                record = store._read(key)
                if record is None or record.state != QUEUED:
                    return
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
                process = subprocess.Popen(
                    [sys.executable, "-c", "from metricflow.jobs.local import worker_main; worker_main()"],
                    stdin=subprocess.PIPE, env=env,
                )
                with self._lock:
                    self._processes[key] = process
                store.set_worker(key, process.pid)
                try:
                    process.stdin.write(blob)
                    process.stdin.close()
                except OSError:
                    pass  # the worker died at once; its exit code tells
                process.wait()
                with self._lock:
                    self._processes.pop(key, None)
                store.worker_exited(key, process.pid, process.returncode)
        finally:
            store.close()

    def cancel(self, key: str, pid: int, pid_start: int) -> None:
        with self._lock:
            process = self._processes.get(key)
        if process is not None and process.pid == pid:
            process.terminate()
        elif _alive(pid, pid_start):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass


def worker_main() -> None:
    """Entry point of a LocalProcessExecutor worker: read a pickled Task on stdin, run it."""
    execute(pickle.load(sys.stdin.buffer))


