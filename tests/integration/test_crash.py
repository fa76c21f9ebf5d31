"""Workers that die: the task they held fails with ``WorkerCrashedError``, the worker is
replaced and the pool keeps serving. Only worker processes can die on their own; the
thread and inline variants are skipped (a task's ``SystemExit``, the one way a task there
could try to end its worker, is covered in ``test_submit.py`` on every backend)."""

from __future__ import annotations

import pytest

from workerbridge import WorkerCrashedError
from workerbridge.testing import tasks

from ._helpers import WAIT_S, results, wait_for_path, wait_until
from .conftest import PROCESSES, PoolFactory


@pytest.fixture(autouse=True)
def _processes_only(pool_factory: PoolFactory) -> None:
    pool_factory.require(*PROCESSES, reason="a thread or inline worker cannot die on its own")


@pytest.mark.parametrize(
    ("how", "exitcode", "signal_name"),
    [("kill", -9, "SIGKILL"), ("segv", -11, "SIGSEGV"), ("exit", 0, None)],
)
def test_crash_fails_the_task_and_the_pool_keeps_serving(
    pool_factory: PoolFactory, how: str, exitcode: int, signal_name: str | None
) -> None:
    with pool_factory(1) as pool:
        pid = pool.submit(tasks.getpid).result(WAIT_S)
        handle = pool.submit(tasks.crash, how)
        error = handle.exception(WAIT_S)
        assert isinstance(error, WorkerCrashedError)
        assert error.task_id == handle.id
        assert error.pid == pid
        assert error.exitcode == exitcode
        assert error.signal_name == signal_name
        assert error.reason == "died"
        assert str(pid) in str(error)
        new_pid = pool.submit(tasks.getpid).result(WAIT_S)
        assert new_pid != pid
        stats = pool.stats()
        assert stats.restarts == 1
        assert stats.failed == 1
        assert stats.workers[0].pid == new_pid
        assert stats.workers[0].restarts == 1


def test_crash_fails_only_the_tasks_of_that_worker(pool_factory: PoolFactory) -> None:
    started = pool_factory.path("started")
    with pool_factory(2) as pool:
        assert pool.wait_ready(WAIT_S)
        survivor = pool.submit(tasks.block, pool_factory.release, started)
        wait_for_path(started)
        victim = pool.submit(tasks.crash, "kill")  # goes to the idle worker
        assert isinstance(victim.exception(WAIT_S), WorkerCrashedError)
        assert not survivor.done()
        tasks.touch(pool_factory.release)
        assert survivor.result(WAIT_S) == "released"
        assert pool.wait_ready(WAIT_S)  # the replacement, before the pool closes


def test_tasks_waiting_behind_a_crash_still_run(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        assert pool.wait_ready(WAIT_S)
        victim = pool.submit(tasks.crash, "kill")
        behind = [pool.submit(tasks.square, i) for i in range(4)]
        assert isinstance(victim.exception(WAIT_S), WorkerCrashedError)
        assert results(behind) == [0, 1, 4, 9]


def test_retries_run_a_crashed_task_again(pool_factory: PoolFactory) -> None:
    marker = pool_factory.path("crashed-once")
    with pool_factory(1) as pool:
        first_pid = pool.submit(tasks.getpid).result(WAIT_S)
        handle = pool.submit(tasks.crash_once, marker, "kill", retries=1)
        assert handle.result(WAIT_S) != first_pid  # it ran again, on the replacement


def test_retries_give_up_after_the_last_attempt(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        handle = pool.submit(tasks.crash, "kill", retries=1)
        error = handle.exception(WAIT_S)
        assert isinstance(error, WorkerCrashedError)
        assert error.attempts == 2
        wait_until(lambda: pool.stats().restarts == 2, "both workers to be replaced")
        assert pool.submit(tasks.add, 1, 1).result(WAIT_S) == 2


def test_unresponsive_worker_is_killed_and_replaced(pool_factory: PoolFactory) -> None:
    with pool_factory(1, heartbeat_interval=0.1, heartbeat_timeout=1.0) as pool:
        pid = pool.submit(tasks.getpid).result(WAIT_S)
        handle = pool.submit(tasks.stop_self)  # SIGSTOP: its heartbeat stops too
        error = handle.exception(WAIT_S)
        assert isinstance(error, WorkerCrashedError)
        assert error.reason == "unresponsive"
        assert error.pid == pid
        assert error.signal_name == "SIGKILL"
        assert pool.submit(tasks.getpid).result(WAIT_S) != pid


def test_many_crashes_in_a_row_do_not_break_the_pool(pool_factory: PoolFactory) -> None:
    with pool_factory(2) as pool:
        crashes = [pool.submit(tasks.crash, "kill") for _ in range(4)]
        for handle in crashes:
            assert isinstance(handle.exception(WAIT_S), WorkerCrashedError)
        assert results([pool.submit(tasks.square, i) for i in range(6)]) == [
            0,
            1,
            4,
            9,
            16,
            25,
        ]
        assert pool.stats().state == "running"
        assert pool.wait_ready(WAIT_S)  # the replacements, before the pool closes
