"""S10, S11: per-task timeouts, cooperative and forced.

``TaskTimeoutError`` is raised when the timeout expires, whatever the task is doing; the
task's cancel flag is raised at the same time, and a task still running ``kill_grace``
later is killed with its worker, which is replaced. The uncooperative tasks here ignore the
flag, ignore SIGTERM, sit in a C call that holds the GIL (``ctypes.PyDLL``: not even the
worker's heartbeat thread runs) or block in ``read()``.

Latencies are measured against the task's own start stamp (``time.monotonic()`` is
system-wide on Linux, so the worker's reading and the parent's compare).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workerbridge import TaskHandle, TaskTimeoutError, WorkerPool
from workerbridge.testing import _faults as faults

from ._util import (
    START_METHODS,
    WAIT_S,
    count,
    done_time,
    figure,
    percentile,
    wait_for_path,
    wait_gone,
    wait_until,
)

TIMEOUT = 0.3
GRACE = 0.3
#: RELIABILITY.md S10: the error is raised at timeout + <= 100 ms (p99). CI bound: 5x.
EXPIRY_TARGET, EXPIRY_BOUND = "<= 100 ms after the timeout", 0.5
#: S11: the worker is dead <= kill_grace + 100 ms after the deadline. CI bound: 5x.
KILL_TARGET, KILL_BOUND = "<= 100 ms after kill_grace", 0.5


def _stubborn(kind: str, started: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """A task that does not stop at its cancel flag, and its arguments."""
    if kind == "ignores-flag":
        return faults.sleep_stamped, (started, 60.0)
    if kind == "ignores-sigterm":
        return faults.ignore_sigterm_and_sleep, (started, 60.0)
    if kind == "holds-gil-in-c":
        return faults.hold_gil, (started, 60)
    if kind == "releases-gil-in-c":
        return faults.release_gil_c_sleep, (started, 60)
    assert kind == "blocks-in-read"
    return faults.read_forever, (started,)


@pytest.mark.parametrize("start_method", START_METHODS)
def test_cooperative_task_gets_the_error_at_expiry_and_keeps_its_worker(
    start_method: str, tmp_path: Path
) -> None:
    started, noticed = str(tmp_path / "started"), str(tmp_path / "noticed")
    with WorkerPool(1, start_method=start_method, kill_grace=10.0) as pool:
        pid = pool.submit(faults.worker_pid).result(WAIT_S)
        handle = pool.submit(faults.notice_cancel, started, noticed, timeout=TIMEOUT)
        done = done_time(handle)
        error = handle.exception(WAIT_S)
        assert isinstance(error, TaskTimeoutError)
        assert isinstance(error, TimeoutError)
        assert error.timeout == TIMEOUT
        assert error.task_id == handle.id
        wait_for_path(noticed)
        start = faults.read_stamp(started)
        figure(
            f"S10 {start_method} cooperative",
            "timeout error latency (error - start - timeout)",
            done[0] - start - TIMEOUT,
            EXPIRY_TARGET,
            EXPIRY_BOUND,
        )
        # The flag went up with the error: the task saw it at its next check.
        figure(
            f"S10 {start_method} cooperative",
            "cancel flag seen after expiry",
            faults.read_stamp(noticed) - start - TIMEOUT,
            "<= check interval + 50 ms",
            EXPIRY_BOUND,
        )
        assert pool.submit(faults.worker_pid).result(WAIT_S) == pid
        assert error.forced is False
        assert pool.stats().restarts == 0


@pytest.mark.parametrize(
    "kind",
    ["ignores-flag", "ignores-sigterm", "holds-gil-in-c", "releases-gil-in-c", "blocks-in-read"],
)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_uncooperative_task_times_out_and_its_worker_is_killed(
    start_method: str, kind: str, tmp_path: Path
) -> None:
    started = str(tmp_path / "started")
    fn, args = _stubborn(kind, started)
    # A heartbeat timeout far above the grace: the GIL-holding task must be stopped by the
    # timeout's kill, not by the health check.
    with WorkerPool(1, start_method=start_method, kill_grace=GRACE, heartbeat_timeout=30.0) as pool:
        pid = pool.submit(faults.worker_pid).result(WAIT_S)
        handle = pool.submit(fn, *args, timeout=TIMEOUT)
        done = done_time(handle)
        error = handle.exception(WAIT_S)
        assert isinstance(error, TaskTimeoutError), error
        wait_gone([pid])
        gone = time.monotonic()
        start = faults.read_stamp(started)
        test = f"S10/S11 {start_method} {kind}"
        figure(
            test, "timeout error latency", done[0] - start - TIMEOUT, EXPIRY_TARGET, EXPIRY_BOUND
        )
        # An upper bound of the kill latency (polling adds up to a few ms).
        figure(
            test,
            "kill latency after the grace",
            gone - start - TIMEOUT - GRACE,
            KILL_TARGET,
            KILL_BOUND,
        )
        assert gone - start >= TIMEOUT + GRACE - 0.05  # not killed before its grace ran out
        wait_until(lambda: pool.stats().restarts == 1, "the worker to be replaced")
        assert error.forced is True
        new_pid = pool.submit(faults.worker_pid).result(WAIT_S)
        assert new_pid != pid
        assert pool.stats().failed == 1


def _expiry_mix(
    start_method: str, tmp_path: Path, n_tasks: int, slow_every: int, timeouts: tuple[float, float]
) -> None:
    """S10's mix: every ``slow_every``-th task sleeps 10x past its timeout (in
    ``timeouts``); the others finish well within theirs. The slow ones fail with
    ``TaskTimeoutError`` and cost their worker; every other task succeeds; every handle's
    callbacks run."""
    rng = random.Random(10)
    with WorkerPool(2, start_method=start_method, kill_grace=0.1) as pool:
        assert pool.wait_ready(WAIT_S)
        handles: list[tuple[TaskHandle[Any], bool, float, str]] = []
        callbacks: list[list[float]] = []
        for i in range(n_tasks):
            if i % slow_every == slow_every // 2:
                timeout = rng.uniform(*timeouts)
                started = str(tmp_path / f"started-{i}")
                handle = pool.submit(faults.sleep_stamped, started, 10 * timeout, timeout=timeout)
                handles.append((handle, True, timeout, started))
            else:
                handle = pool.submit(faults.spin, 0.002, i, timeout=5.0)
                handles.append((handle, False, 5.0, ""))
            callbacks.append(done_time(handle))
        latencies = []
        for i, (handle, slow, timeout, started) in enumerate(handles):
            error = handle.exception(WAIT_S)
            if slow:
                assert isinstance(error, TaskTimeoutError), (i, error)
                latencies.append(callbacks[i][0] - faults.read_stamp(started) - timeout)
            else:
                assert error is None, (i, error)
                assert handle.result() == i
        wait_until(lambda: all(callbacks), "every done-callback to run")
        n_slow = len(latencies)
        wait_until(lambda: pool.stats().restarts == n_slow, "every slow task's worker replaced")
        stats = pool.stats()
        assert stats.failed == n_slow
        assert stats.completed == n_tasks - n_slow
    test = f"S10 {start_method} mix of {n_tasks}"
    count(test, "timed-out tasks", n_slow)
    figure(
        test, "timeout error latency p50", percentile(latencies, 50), EXPIRY_TARGET, EXPIRY_BOUND
    )
    figure(
        test, "timeout error latency p99", percentile(latencies, 99), EXPIRY_TARGET, EXPIRY_BOUND
    )


@pytest.mark.parametrize("start_method", START_METHODS)
def test_timeouts_in_a_mix_fail_only_the_slow_tasks(start_method: str, tmp_path: Path) -> None:
    _expiry_mix(start_method, tmp_path, n_tasks=60, slow_every=10, timeouts=(0.1, 0.3))


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_timeouts_in_a_mix_soak(start_method: str, tmp_path: Path) -> None:
    """RELIABILITY.md S10 at full size: 1,000 tasks, 10% slow, timeouts 100 ms - 2 s."""
    _expiry_mix(start_method, tmp_path, n_tasks=1000, slow_every=10, timeouts=(0.1, 2.0))
