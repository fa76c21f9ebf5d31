"""S15, S16: hung-but-alive workers, and no false alarms under load.

Each worker's heartbeat thread writes the time into shared memory every
``heartbeat_interval``; the pool kills a worker that has been silent for
``heartbeat_timeout``. A worker stopped by SIGSTOP, or stuck in a C call that holds the GIL,
goes silent: it is killed and its task fails with ``WorkerCrashedError(reason=
"unresponsive")`` (or is retried). A worker that is merely busy (pure-Python loops, hashlib,
large payloads on its pipe) or blocked in a C call that releases the GIL keeps beating and
is left alone.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from workerbridge import TaskHandle, WorkerCrashedError, WorkerPool
from workerbridge.testing import _faults as faults, tasks

from ._util import START_METHODS, WAIT_S, count, done_time, figure, wait_for_path, wait_gone

INTERVAL, TIMEOUT = 0.1, 0.5
#: RELIABILITY.md S15: detection <= heartbeat_timeout + one interval (tests: 100 ms x 3 ->
#: <= 400 ms; here 0.5 s + 0.1 s). CI bound: 3x.
DETECTION_TARGET, DETECTION_BOUND = "<= heartbeat_timeout + interval (600 ms)", 1.8


@pytest.mark.parametrize("how", ["sigstop", "gil-in-c"])
@pytest.mark.parametrize("start_method", START_METHODS)
def test_silent_worker_is_killed_and_its_task_fails(
    start_method: str, how: str, tmp_path: Path
) -> None:
    release, started = str(tmp_path / "release"), str(tmp_path / "started")
    with WorkerPool(
        2, start_method=start_method, heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT
    ) as pool:
        assert pool.wait_ready(WAIT_S)
        bystander = pool.submit(tasks.block, release, str(tmp_path / "bystander"))
        wait_for_path(str(tmp_path / "bystander"))
        pid = next(w.pid for w in pool.stats().workers if not w.running)
        assert pid is not None
        handle: TaskHandle[Any]
        try:
            if how == "sigstop":
                handle = pool.submit(tasks.block, release, started)
                wait_for_path(started)
                os.kill(pid, signal.SIGSTOP)
                silent_since = time.monotonic()
            else:
                handle = pool.submit(faults.hold_gil, started, 60)
                wait_for_path(started)
                silent_since = faults.read_stamp(started)
            done = done_time(handle)
            error = handle.exception(WAIT_S)
            assert isinstance(error, WorkerCrashedError), error
            assert error.reason == "unresponsive"
            assert error.pid == pid
            assert error.signal_name == "SIGKILL"
            assert "unresponsive" in str(error)
            wait_gone([pid])
            assert not bystander.done()  # the busy, healthy worker was left alone
            new_pid = pool.submit(faults.worker_pid).result(WAIT_S)
            assert new_pid not in (pid, None)
        finally:
            tasks.touch(release)
        assert bystander.result(WAIT_S) == "released"
        assert pool.stats().restarts == 1
    figure(
        f"S15 {start_method} {how}",
        "silence -> task failed (unresponsive)",
        done[0] - silent_since,
        DETECTION_TARGET,
        DETECTION_BOUND,
    )


def test_task_of_a_stopped_worker_is_retried(tmp_path: Path) -> None:
    release, started = str(tmp_path / "release"), str(tmp_path / "started")
    with WorkerPool(1, heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT) as pool:
        pid = pool.submit(faults.worker_pid).result(WAIT_S)
        handle = pool.submit(tasks.block, release, started, retries=1)
        wait_for_path(started)
        os.kill(pid, signal.SIGSTOP)
        wait_gone([pid])
        assert not handle.done()  # attempt 2 runs on the replacement
        tasks.touch(release)
        assert handle.result(WAIT_S) == "released"
        assert pool.stats().restarts == 1
        assert pool.stats().failed == 0


def test_blocked_in_c_with_the_gil_released_is_not_unresponsive(tmp_path: Path) -> None:
    """A task blocked in C that releases the GIL keeps its heartbeat: it is the per-task
    timeout's business, not the health check's."""
    with WorkerPool(1, heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT) as pool:
        pid = pool.submit(faults.worker_pid).result(WAIT_S)
        # 2 s = 4 heartbeat timeouts.
        assert pool.submit(faults.release_gil_c_sleep, str(tmp_path / "s"), 2).result(WAIT_S) == 0
        assert pool.submit(faults.worker_pid).result(WAIT_S) == pid
        assert pool.stats().restarts == 0


@pytest.mark.parametrize("start_method", START_METHODS)
def test_no_healthy_worker_is_killed_under_full_load(start_method: str) -> None:
    """S16, CI form: both workers (on this 2-core machine, every core) busy for ~3 s with
    pure-Python loops (they hold the GIL between switch intervals), hashlib (releases it)
    and 16 MiB payloads through their pipes, under a 100 ms / 500 ms heartbeat: zero
    restarts."""
    payload = os.urandom(16 << 20)
    with WorkerPool(
        2, start_method=start_method, heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT
    ) as pool:
        pids = pool.submit(faults.worker_pid).result(WAIT_S), None
        assert pool.wait_ready(WAIT_S)
        started = time.monotonic()
        handles: list[TaskHandle[Any]] = []
        for _ in range(6):
            handles.append(pool.submit(faults.burn_python, 0.5))
            handles.append(pool.submit(faults.burn_hashlib, 0.5))
            handles.append(pool.submit(tasks.echo, payload))
        for handle in handles:
            assert handle.exception(60) is None, handle.exception(0)
        busy = time.monotonic() - started
        stats = pool.stats()
        assert stats.restarts == 0, stats
        assert stats.failed == 0
        assert pids[0] in {w.pid for w in stats.workers}
    count(f"S16 {start_method}", "busy seconds with zero restarts", round(busy, 2), "0 false kills")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_no_false_kills_soak() -> None:
    """RELIABILITY.md S16 for 10 minutes, every core busy."""
    size = len(os.sched_getaffinity(0))
    with WorkerPool(size, heartbeat_interval=INTERVAL, heartbeat_timeout=TIMEOUT) as pool:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            handles: list[TaskHandle[Any]] = []
            handles += [pool.submit(faults.burn_python, 1.0) for _ in range(size)]
            handles += [pool.submit(faults.burn_hashlib, 1.0) for _ in range(size)]
            for handle in handles:
                assert handle.exception(60) is None
            assert pool.stats().restarts == 0
