"""S09b and friends: workers replaced between tasks, failing none.

``max_memory_per_worker`` (RSS, checked every ``heartbeat_interval``), ``max_tasks_per_worker``
and ``max_errors`` (task errors in a row) retire a worker once it has finished what it
holds; the tasks queued behind go to the replacement.
"""

from __future__ import annotations

from collections import Counter

import pytest

from workerbridge import RemoteTaskError, WorkerPool
from workerbridge.testing import _faults as faults, tasks

from ._util import START_METHODS, WAIT_S, count, wait_until

MB = 1 << 20


@pytest.mark.parametrize("start_method", START_METHODS)
def test_leaking_workers_are_recycled_without_failing_a_task(start_method: str) -> None:
    """S09b, CI form: 120 tasks each leak 3 MiB (and run ~10 ms, so a check interval sees a
    handful of them); the limit is the worker's start-up RSS + 60 MiB."""
    interval = 0.05
    with WorkerPool(2, start_method=start_method, heartbeat_interval=interval) as probe:
        baseline = max(probe.submit(faults.leak_memory, 0).result(WAIT_S)[1] for _ in range(2))
    limit = baseline + 60 * MB
    with WorkerPool(
        2,
        start_method=start_method,
        heartbeat_interval=interval,
        max_memory_per_worker=limit,
    ) as pool:
        handles = [pool.submit(faults.leak_memory, 3, 0.01) for _ in range(120)]
        outcomes = [h.result(WAIT_S) for h in handles]  # none failed
        stats = pool.stats()
        assert stats.failed == 0
        assert stats.completed == 120
        assert stats.restarts >= 1
    pids = Counter(pid for pid, _ in outcomes)
    assert len(pids) >= 3  # at least one worker was replaced
    peak = max(rss for _, rss in outcomes)
    test = f"S09b {start_method}"
    count(test, "recycles", stats.restarts)
    count(test, "worker RSS limit (MiB)", round(limit / MB, 1))
    count(test, "peak worker RSS seen by a task (MiB)", round(peak / MB, 1))
    # A worker is retired at the first check after it crosses the limit: it may have run
    # the tasks of one interval beyond (each leaks 3 MiB). Bound: well above that.
    assert peak <= limit + 45 * MB


@pytest.mark.parametrize("start_method", START_METHODS)
def test_max_tasks_per_worker_replaces_workers_without_failing_a_task(start_method: str) -> None:
    with WorkerPool(2, start_method=start_method, max_tasks_per_worker=5) as pool:
        pids = [h.result(WAIT_S) for h in [pool.submit(faults.worker_pid) for _ in range(40)]]
        wait_until(lambda: pool.stats().restarts >= 2, "the replacements to start")
        assert pool.stats().failed == 0
        assert pool.stats().completed == 40
    assert len(set(pids)) >= 4


def test_max_tasks_per_worker_is_a_bound() -> None:
    with WorkerPool(2, max_tasks_per_worker=5) as pool:
        pids = [h.result(WAIT_S) for h in [pool.submit(faults.worker_pid) for _ in range(200)]]
    per_worker = Counter(pids)
    assert max(per_worker.values()) <= 5, per_worker


def test_max_errors_replaces_a_failing_worker_and_fails_only_the_failing_tasks() -> None:
    with WorkerPool(1, max_errors=3) as pool:
        first = pool.submit(faults.worker_pid).result(WAIT_S)
        errors = [pool.submit(tasks.fail, f"e{i}") for i in range(3)]
        behind = [pool.submit(tasks.square, i) for i in range(5)]
        for handle in errors:
            error = handle.exception(WAIT_S)
            assert isinstance(error, RemoteTaskError)
            assert error.remote_type == "builtins.ValueError"
        assert [h.result(WAIT_S) for h in behind] == [0, 1, 4, 9, 16]
        assert pool.submit(faults.worker_pid).result(WAIT_S) != first
        stats = pool.stats()
        assert stats.failed == 3
        assert stats.restarts == 1
