"""The fair queue: turns by session, a bound per session, shared jobs, memory, leaving sessions.

The queue runs in front of a recording executor; the test plays the worker, marking each job
running and ended in the store, so the queue sees ends exactly as it would from a worker.
"""

import time

import pytest

from metricflow.geometry.manifolds import manifold
from metricflow.geometry.points import SampleConfig
from metricflow.jobs import CANCELLED, RUNNING, FairQueue, JobStore, QueueFull, estimate, job_key
from metricflow.jobs import queue as queue_module


class Recorder:
    """An executor that only records what it is asked to start and stop."""

    def __init__(self):
        self.started, self.cancelled = [], []

    def submit(self, task):
        self.started.append(task.key)

    def cancel(self, key, pid, pid_start):
        self.cancelled.append(key)


def config(seed: int, n: int = 1000) -> SampleConfig:
    return SampleConfig(manifold("quintic"), n_points=n, seed=seed)


def until(condition, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def finish(store: JobStore, key: str) -> None:
    """Play the worker: run the job and end it (a failure ends it as well as a result)."""
    assert store.mark_running(key)
    store.store_failure(key, "ended by the test", "")


@pytest.fixture
def queued(tmp_path):
    made = []

    def make(**kwargs):
        inner = Recorder()
        queue = FairQueue(inner, **{"slots": 1, **kwargs})
        store = JobStore(tmp_path / "cache", executor=queue)
        made.append((queue, store))
        return inner, queue, store

    yield make
    for queue, store in made:
        queue.close()
        store.close()


def test_sessions_take_turns(queued):
    inner, queue, store = queued()
    a = [store.submit(config(s), owner="A") for s in range(4)]
    b = [store.submit(config(10 + s), owner="B") for s in range(2)]
    expected = [a[0], b[0], a[1], b[1], a[2], a[3]]
    for i, key in enumerate(expected):
        until(lambda: len(inner.started) == i + 1)
        assert inner.started[i] == key, f"start {i}"
        time.sleep(0.15)  # a slot is never filled twice
        assert len(inner.started) == i + 1
        finish(store, key)


def test_within_a_turn_the_shortest_starts_first(queued):
    inner, queue, store = queued()
    blocker = store.submit(config(0), owner="A")
    until(lambda: inner.started == [blocker])
    long_b = store.submit(config(1, n=200_000), owner="B")  # the older, but the longer
    short_c = store.submit(config(2, n=1000), owner="C")
    second_a = store.submit(config(3, n=1000), owner="A")  # A's second turn: after B and C
    assert estimate(config(1, n=200_000)).seconds > estimate(config(2)).seconds
    for i, key in enumerate([short_c, long_b, second_a]):
        finish(store, inner.started[-1])
        until(lambda: len(inner.started) == i + 2)
        assert inner.started[-1] == key


def test_a_session_back_after_a_pause_saves_no_turns(queued):
    inner, queue, store = queued()
    keys = [store.submit(config(s), owner="A") for s in range(3)]
    until(lambda: inner.started == keys[:1])
    for i in range(2):
        finish(store, inner.started[-1])
        until(lambda: len(inner.started) == i + 2)
    # A has had three turns alone; B arrives with three jobs, then A with one more.
    b = [store.submit(config(10 + s), owner="B") for s in range(3)]
    a = store.submit(config(20), owner="A")
    expected = [b[0], b[1], a, b[2]]  # B's first at the current turn; then b[1] and a share a turn
    for i, key in enumerate(expected):
        finish(store, inner.started[-1])
        until(lambda: len(inner.started) == 4 + i)
        assert inner.started[-1] == key, i


def test_place_follows_the_estimates(queued):
    inner, queue, store = queued(slots=2)
    keys = [store.submit(config(s, n=1000 * (s + 1)), owner=f"S{s % 3}") for s in range(6)]
    until(lambda: len(inner.started) == 2)
    seconds = {k: estimate(config(s, n=1000 * (s + 1))).seconds for s, k in enumerate(keys)}
    places = {k: queue.place(k) for k in keys}
    assert [places[k].position for k in keys[:2]] == [0, 0]
    waiting = sorted(keys[2:], key=lambda k: places[k].position)
    assert [places[k].position for k in waiting] == [1, 2, 3, 4]
    assert waiting == [keys[2], keys[3], keys[4], keys[5]]  # S2, S0, S1, S2 after S0 and S1 started
    # Two slots, each busy for its job's estimate: replay the list by hand.
    slots = sorted([seconds[keys[0]], seconds[keys[1]]])
    for k in waiting:
        start = slots.pop(0)
        assert places[k].start_in == pytest.approx(start, abs=0.5)
        slots = sorted(slots + [start + seconds[k]])
    assert places[waiting[0]].reason.startswith("next in line")


def test_a_session_may_have_few_waiting(queued):
    inner, queue, store = queued(max_waiting=2)
    first = store.submit(config(0), owner="A")
    until(lambda: inner.started == [first])
    for s in (1, 2):
        queue.admit(config(s), "A")
        store.submit(config(s), owner="A")
    queue.admit(config(1), "A")  # already waiting for A: not one more
    with pytest.raises(QueueFull, match="you have 2 jobs waiting and one session may have 2; .*expected in about [0-9]+ s"):
        queue.admit(config(3), "A")
    with pytest.raises(QueueFull):
        queue.admit([config(1), config(3)], "A")
    queue.admit(config(3), "B")  # another session has its own bound
    finish(store, first)
    until(lambda: len(inner.started) == 2)
    queue.admit(config(3), "A")  # one of A's started: room again
    with pytest.raises(QueueFull):
        queue.admit([config(3), config(4)], "A")  # but not for two
    queue.admit([config(s) for s in range(10, 20)], "C")  # a session with none waiting: one Run's batch


def test_a_shared_job_runs_once_and_for_whoever_waits(queued):
    inner, queue, store = queued()
    blocker = store.submit(config(99), owner="C")
    shared = config(5)
    key = store.submit(shared, owner="A")
    assert store.submit(shared, owner="B") == key
    queue.join(key, "B")
    assert queue.owners(key) == ["A", "B"]
    assert queue.release(key, "A") is False  # B still waits: it goes on
    assert store.status(key).state == "queued"
    finish(store, blocker)
    until(lambda: key in inner.started)
    assert inner.started.count(key) == 1
    assert store.mark_running(key)
    assert store.runs(key) == 1
    assert queue.release(key, "B") is True  # no one left
    store.cancel(key)
    assert store.status(key).state == CANCELLED


def test_sessions_counts_whoever_waits_for_a_job(queued):
    inner, queue, store = queued()
    assert queue.sessions() == 0
    running = store.submit(config(0), owner="A")
    until(lambda: inner.started == [running])
    store.submit(config(1), owner="B")
    shared = store.submit(config(2), owner="C")
    store.submit(config(2), owner="A")
    queue.join(shared, "A")
    store.submit(config(3))  # no owner (the CLI): no page polls it
    assert queue.sessions() == 3  # A (running and shared), B, C
    finish(store, running)
    until(lambda: len(inner.started) == 2)
    assert queue.sessions() == 3  # A still waits for the shared job


def test_many_sessions_poll_more_slowly_within_the_servers_budget():
    from dashboard import (
        LIVE_POLL_SECONDS, PERIODS, POLL_SECONDS, POLLS_PER_SECOND, SHARED_POLL_SECONDS, WAIT_POLL_SECONDS, poll_seconds,
    )

    for base in (POLL_SECONDS, WAIT_POLL_SECONDS, SHARED_POLL_SECONDS, LIVE_POLL_SECONDS):
        assert poll_seconds(base, 0) == poll_seconds(base, 1) == base[0]  # a quiet server: the quickest
        periods = [poll_seconds(base, n) for n in range(1, 200)]
        assert periods == sorted(periods) and set(periods) <= set(PERIODS)
        assert periods[-1] == base[1]  # never slower than the slowest
        for n, period in enumerate(periods, 1):
            # n sessions at this period poll at most the budget a second, unless at a bound
            assert n / period <= POLLS_PER_SECOND + 1e-9 or period in base
            # and no slower than needed: the next quicker period would exceed the budget
            quicker = [p for p in PERIODS if p < period]
            assert period == base[0] or not quicker or n / quicker[-1] > POLLS_PER_SECOND
    assert poll_seconds(WAIT_POLL_SECONDS, 30) == 3.0  # thirty sessions: 10 polls a second
    assert poll_seconds(POLL_SECONDS, 30) == 1.0  # a job running for one session alone: at most 1 s


def test_cancelling_a_waiting_job_frees_the_slot_in_line(queued):
    inner, queue, store = queued()
    first = store.submit(config(0), owner="A")
    second = store.submit(config(1), owner="A")
    third = store.submit(config(2), owner="A")
    until(lambda: inner.started == [first])
    assert queue.place(third).position == 2
    store.cancel(second)
    assert queue.place(second) is None and queue.place(third).position == 1
    finish(store, first)
    until(lambda: inner.started == [first, third])


def test_a_job_waits_while_the_running_peaks_leave_too_little_memory(queued):
    need = estimate(config(0)).bytes
    inner, queue, store = queued(slots=2, memory=lambda: int(1.5 * need), resident=lambda pid: 0)
    first = store.submit(config(0), owner="A")
    second = store.submit(config(1), owner="B")
    until(lambda: inner.started == [first])
    assert store.mark_running(first)
    time.sleep(0.3)
    assert inner.started == [first]  # a slot is free, but the memory is not
    assert "waiting for memory" in queue.place(second).reason
    store.store_failure(first, "ended by the test", "")
    until(lambda: inner.started == [first, second])


def test_the_jobs_of_a_session_that_left_are_cancelled_unless_shared(queued, monkeypatch):
    monkeypatch.setattr(queue_module, "GONE_SECONDS", 0.2)
    monkeypatch.setattr(queue_module, "CHECK_SECONDS", 0.05)
    here = {"A", "B"}
    inner, queue, store = queued(slots=1, alive=lambda owner: owner in here)
    running = store.submit(config(0), owner="A")
    until(lambda: inner.started == [running])
    assert store.mark_running(running)
    waiting = store.submit(config(1), owner="A")
    shared = store.submit(config(2), owner="A")
    store.submit(config(2), owner="B")
    queue.join(shared, "B")
    here.discard("A")  # A closes the tab
    until(lambda: store.status(waiting).state == CANCELLED)
    until(lambda: store.status(running).state == CANCELLED)
    assert inner.cancelled == [running]
    until(lambda: inner.started == [running, shared])
    assert store.status(shared).state == "queued" and queue.owners(shared) == ["B"]
    assert store.mark_running(shared) and store.status(shared).state == RUNNING


def test_the_store_counts_runs(tmp_path):
    store = JobStore(tmp_path / "cache", executor=Recorder())
    key = store.submit(config(0))
    assert store.runs(key) == 0
    assert store.mark_running(key) and not store.mark_running(key)
    assert store.runs(key) == 1
    assert job_key(config(0)) == key
    store.close()
