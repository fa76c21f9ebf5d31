"""S07, S14: retry bounds, what is retried, and stale attempts.

``retries=N`` runs a task again after a crash, a timeout or an unresponsive worker, at most
N more times; after an exception only when its type is in ``retry_on``. Runs are counted by
a side-effect ledger written by the task itself, so "at most N + 1 runs" is checked against
what really executed. Every message carries its attempt number: the progress and the result
of an attempt the pool gave up on are dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workerbridge import (
    ProgressInfo,
    RemoteTaskError,
    TaskTimeoutError,
    WorkerCrashedError,
    WorkerPool,
)
from workerbridge.testing import _faults as faults, tasks

from ._util import START_METHODS, WAIT_S, wait_for_path, wait_until


def _runs(ledger: str) -> list[tuple[int, int]]:
    """``(pid, attempt)`` of every run ``faults.count_run`` recorded."""
    try:
        with open(ledger) as f:
            return [(int(p), int(a)) for p, a in (line.split() for line in f)]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("retries", [0, 2])
@pytest.mark.parametrize("start_method", START_METHODS)
def test_poison_task_runs_at_most_retries_plus_one_times(
    start_method: str, retries: int, tmp_path: Path
) -> None:
    ledger = str(tmp_path / "poison")
    with WorkerPool(2, start_method=start_method) as pool:
        assert pool.wait_ready(WAIT_S)
        poison = pool.submit(faults.misbehave_counted, ledger, "kill", retries=retries)
        others = [pool.submit(faults.spin, 0.005, i) for i in range(40)]
        error = poison.exception(WAIT_S)
        assert isinstance(error, WorkerCrashedError)
        assert error.attempts == retries + 1
        assert error.signal_name == "SIGKILL"
        assert error.reason == "died"
        assert error.task_id == poison.id
        runs = _runs(ledger)
        assert [attempt for _, attempt in runs] == list(range(1, retries + 2))
        assert len({pid for pid, _ in runs}) == retries + 1  # each attempt killed its worker
        assert error.pid == runs[-1][0]
        assert [h.result(WAIT_S) for h in others] == list(range(40))  # nobody else failed
        wait_until(lambda: pool.stats().restarts == retries + 1, "the workers to be replaced")
        stats = pool.stats()
        assert stats.failed == 1
        assert stats.completed == 40
        assert stats.state == "running"


@pytest.mark.parametrize(
    ("retry_on", "runs"),
    [
        ((), 1),  # default: an exception is the task's answer, never retried
        ((KeyError,), 1),  # not the type that was raised
        ((faults.FaultError,), 3),
        ((Exception,), 3),  # a base class of the raised type matches too
    ],
    ids=["none", "other-type", "same-type", "base-type"],
)
def test_exceptions_are_retried_only_when_listed(
    retry_on: tuple[type[BaseException], ...], runs: int, tmp_path: Path
) -> None:
    ledger = str(tmp_path / "runs")
    with WorkerPool(1) as pool:
        pid = pool.submit(faults.worker_pid).result(WAIT_S)
        handle = pool.submit(
            faults.misbehave_counted, ledger, "raise", retries=2, retry_on=retry_on
        )
        error = handle.exception(WAIT_S)
        assert isinstance(error, RemoteTaskError)
        assert error.remote_type == "workerbridge.testing._faults.FaultError"
        assert [a for _, a in _runs(ledger)] == list(range(1, runs + 1))
        assert pool.submit(faults.worker_pid).result(WAIT_S) == pid  # no worker was lost
        assert pool.stats().restarts == 0


@pytest.mark.parametrize("start_method", START_METHODS)
def test_timed_out_task_is_retried_then_fails_with_the_timeout(
    start_method: str, tmp_path: Path
) -> None:
    ledger = str(tmp_path / "runs")
    with WorkerPool(1, start_method=start_method, kill_grace=0.1) as pool:
        handle = pool.submit(faults.count_and_sleep, ledger, 60.0, timeout=0.2, retries=1)
        error = handle.exception(WAIT_S)
        assert isinstance(error, TaskTimeoutError)
        runs = _runs(ledger)
        assert [a for _, a in runs] == [1, 2]
        assert runs[0][0] != runs[1][0]  # attempt 1's worker was killed after the grace
        wait_until(lambda: pool.stats().restarts == 2, "both workers to be replaced")
        assert pool.submit(tasks.add, 1, 1).result(WAIT_S) == 2


@pytest.mark.parametrize("start_method", START_METHODS)
def test_task_on_an_unresponsive_worker_is_retried(start_method: str, tmp_path: Path) -> None:
    marker, started = str(tmp_path / "held-once"), str(tmp_path / "started")
    with WorkerPool(
        1, start_method=start_method, heartbeat_interval=0.1, heartbeat_timeout=0.5
    ) as pool:
        pid = pool.submit(faults.worker_pid).result(WAIT_S)
        handle = pool.submit(faults.hold_gil_once, marker, started, 60, retries=1)
        new_pid = handle.result(WAIT_S)  # attempt 2, on the replacement
        assert new_pid != pid
        assert pool.stats().restarts == 1


def test_retry_after_a_timeout_starts_at_once_on_an_idle_worker(tmp_path: Path) -> None:
    release, started = str(tmp_path / "release"), str(tmp_path / "started")
    with WorkerPool(2, kill_grace=3.0) as pool:
        assert pool.wait_ready(WAIT_S)
        handle = pool.submit(faults.stuck_first_attempt, release, started, timeout=0.2, retries=1)
        try:
            # Attempt 2 should run on the idle worker right after the timeout (0.2 s), long
            # before attempt 1's worker is killed (after kill_grace = 3 s).
            assert handle.result(1.5) > 0
        finally:
            tasks.touch(release)


def test_stale_attempt_progress_and_result_are_dropped() -> None:
    """S14: attempt 1 times out, then (cooperatively, so its worker lives and its messages
    do arrive) reports progress and returns a result; attempt 2 runs after it on the same
    worker. Only attempt 1's report from before the timeout and attempt 2's messages
    reach the caller, and the handle resolves once, with attempt 2's result."""
    reports: list[float] = []
    resolved: list[Any] = []
    with WorkerPool(1, kill_grace=10.0) as pool:
        handle = pool.submit(
            faults.report_across_attempts,
            timeout=0.3,
            retries=1,
            on_progress=lambda info: reports.append(info.current),
        )
        handle.add_done_callback(lambda h: resolved.append(h.result()))
        assert handle.result(WAIT_S) == "attempt-2"
        wait_until(lambda: bool(resolved), "the done-callback")
        # Whatever attempt 1 sent after the timeout arrived before attempt 2 started (one
        # worker, in order); the pool is idle again once it is drained.
        wait_until(lambda: pool.stats().running == 0, "the pool to drain")
        assert pool.submit(tasks.noop).result(WAIT_S) is None
    assert resolved == ["attempt-2"]
    assert reports == [1, 21], reports
    assert isinstance(handle.progress, ProgressInfo)
    assert handle.progress.current == 21


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_poison_task_bound_soak(tmp_path: Path) -> None:
    """RELIABILITY.md S07 at full size: the poison task, 1,000 times with retries=2, runs
    exactly 3 times each; no other task fails."""
    with WorkerPool(4) as pool:
        for i in range(1000):
            ledger = str(tmp_path / f"poison-{i}")
            poison = pool.submit(faults.misbehave_counted, ledger, "kill", retries=2)
            others = [pool.submit(tasks.square, j) for j in range(5)]
            error = poison.exception(WAIT_S)
            assert isinstance(error, WorkerCrashedError)
            assert error.attempts == 3
            assert len(_runs(ledger)) == 3
            assert [h.result(WAIT_S) for h in others] == [j * j for j in range(5)]
            wait_for_path(ledger)
