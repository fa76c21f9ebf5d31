"""Helpers shared by the integration tests: waiting on files and predicates (never on
sleeps), reading ledgers, and filling a pool's workers so that further tasks queue."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from workerbridge import TaskHandle, WorkerPool
from workerbridge.testing import tasks

R = TypeVar("R")

#: Bound on every wait in the suite: generous, it only turns a hang into a failure.
WAIT_S = 20.0
#: Priority of the tasks that occupy the workers: above anything a test queues, so a
#: blocker left in the queue never takes part in the order under test.
BLOCKER_PRIORITY = 1_000_000


def wait_for_path(path: str, timeout: float = WAIT_S) -> None:
    """Wait until a task has created the file ``path``."""
    tasks.wait_for_file(path, timeout)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``predicate`` (pool state that changes asynchronously) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)  # polling a condition, not synchronising with a task


def read_ledger(path: str) -> list[str]:
    """The values ``tasks.record_and_return`` appended to ``path``, in order."""
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def results(handles: Iterable[TaskHandle[R]], timeout: float = WAIT_S) -> list[R]:
    return [h.result(timeout) for h in handles]


def saturate(
    pool: WorkerPool, release: str, started: str = ""
) -> tuple[list[TaskHandle[str]], TaskHandle[str]]:
    """Occupy every worker with ``tasks.block(release)`` until one more stays queued.

    Returns the blockers that went to workers and the one left in the queue; from then on
    every task submitted waits in the pool's queue until ``release`` is created. The pool
    may send a worker more than one task ahead, so blockers are added until the queue
    holds one, whatever that window is. ``started`` (if given) is created by the first
    blocker when it starts running.
    """
    assert pool.wait_ready(WAIT_S)
    sent: list[TaskHandle[str]] = []
    for i in range(1000):
        handle = pool.submit(
            tasks.block, release, started if i == 0 else "", priority=BLOCKER_PRIORITY
        )
        if pool.stats().queue_depth:
            return sent, handle
        sent.append(handle)
    raise AssertionError("the pool never queued a task")
