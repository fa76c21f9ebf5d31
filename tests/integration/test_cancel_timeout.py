"""Cancelling queued and running tasks, ``signal=``, and per-task timeouts."""

from __future__ import annotations

import concurrent.futures

import pytest

from workerbridge import (
    DeadlineExceededError,
    TaskCancelledError,
    TaskTimeoutError,
)
from workerbridge.testing import tasks

from ._helpers import WAIT_S, read_ledger, saturate, wait_for_path, wait_until
from .conftest import CONCURRENT, PROCESSES, PoolFactory

NO_QUEUE = "inline runs each task inside submit(): it is over before it can be cancelled"


def test_cancelled_waiting_tasks_never_run(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    started, ledger = pool_factory.path("started"), pool_factory.path("ledger")
    with pool_factory(1) as pool:
        assert pool.wait_ready(WAIT_S)
        running = pool.submit(tasks.block, pool_factory.release, started)
        wait_for_path(started)
        # Waiting behind the running task: in the pool's queue, or already at the worker.
        victims = [pool.submit(tasks.record_and_return, ledger, f"v{i}") for i in range(4)]
        for victim in victims:
            assert victim.cancel() is True
            assert victim.cancelled()
            assert victim.done()
            with pytest.raises(TaskCancelledError):
                victim.result(0)
            assert isinstance(victim.exception(0), concurrent.futures.CancelledError)
        tasks.touch(pool_factory.release)
        assert running.result(WAIT_S) == "released"
        # One worker runs tasks in order: a victim that was going to run would come first.
        assert pool.submit(tasks.record_and_return, ledger, "after").result(WAIT_S) == "after"
        assert pool.stats().cancelled == 4
    assert read_ledger(ledger) == ["after"]


def test_cancel_sets_the_running_tasks_flag(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    started, ledger = pool_factory.path("started"), pool_factory.path("ledger")
    with pool_factory(1, kill_grace=10.0) as pool:  # it stops by itself, long before
        before = pool.submit(tasks.worker_identity).result(WAIT_S)
        handle = pool.submit(tasks.wait_cancelled, started, ledger)
        wait_for_path(started)
        assert handle.cancel() is True
        assert isinstance(handle.exception(WAIT_S), TaskCancelledError)
        wait_until(lambda: read_ledger(ledger) == ["saw-cancel"], "the task to see its flag")
        # The task stopped on its own: same worker, no restart.
        assert pool.submit(tasks.worker_identity).result(WAIT_S) == before
        assert pool.stats().restarts == 0


def test_raise_if_cancelled_stops_the_task(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    started = pool_factory.path("started")
    with pool_factory(1, kill_grace=10.0) as pool:
        handle = pool.submit(tasks.raise_if_cancelled_loop, started)
        wait_for_path(started)
        handle.cancel()
        assert isinstance(handle.exception(WAIT_S), TaskCancelledError)
        assert pool.submit(tasks.add, 1, 1).result(WAIT_S) == 2
        assert pool.stats().restarts == 0


def test_task_ignoring_cancel_is_killed_after_the_grace(pool_factory: PoolFactory) -> None:
    pool_factory.require(*PROCESSES, reason="only a worker process can be killed")
    started = pool_factory.path("started")
    with pool_factory(1, kill_grace=0.2) as pool:
        old_pid = pool.submit(tasks.getpid).result(WAIT_S)
        handle = pool.submit(tasks.ignore_cancel_until_file, started, pool_factory.release)
        wait_for_path(started)
        handle.cancel()
        assert isinstance(handle.exception(WAIT_S), TaskCancelledError)
        wait_until(lambda: pool.stats().restarts == 1, "the worker to be replaced")
        assert pool.submit(tasks.getpid).result(WAIT_S) != old_pid


def test_thread_ignoring_cancel_is_abandoned_and_replaced(pool_factory: PoolFactory) -> None:
    pool_factory.require("thread", reason="the thread backend's stand-in for a kill")
    started = pool_factory.path("started")
    with pool_factory(1, kill_grace=0.2) as pool:
        old = pool.submit(tasks.worker_identity).result(WAIT_S)
        handle = pool.submit(tasks.ignore_cancel_until_file, started, pool_factory.release)
        wait_for_path(started)
        handle.cancel()
        assert isinstance(handle.exception(WAIT_S), TaskCancelledError)
        wait_until(lambda: pool.stats().restarts == 1, "the worker to be replaced")
        assert pool.submit(tasks.worker_identity).result(WAIT_S) != old
        tasks.touch(pool_factory.release)  # the abandoned thread ends with its task


def test_cancel_after_the_end_changes_nothing(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        handle = pool.submit(tasks.add, 1, 1)
        assert handle.result(WAIT_S) == 2
        assert handle.cancel() is False
        assert not handle.cancelled()
        assert handle.result(0) == 2


def test_signal_cancels_a_waiting_task(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    ledger = pool_factory.path("ledger")
    with pool_factory(1) as pool:
        saturate(pool, pool_factory.release)
        trigger: concurrent.futures.Future[None] = concurrent.futures.Future()
        handle = pool.submit(tasks.record_and_return, ledger, "victim", signal=trigger)
        assert not handle.done()
        trigger.set_result(None)
        assert isinstance(handle.exception(WAIT_S), TaskCancelledError)
        tasks.touch(pool_factory.release)
        assert pool.submit(tasks.record_and_return, ledger, "after").result(WAIT_S) == "after"
    assert read_ledger(ledger) == ["after"]


def test_another_handle_as_signal(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    started, ledger = pool_factory.path("started"), pool_factory.path("ledger")
    with pool_factory(1, kill_grace=10.0) as pool:
        first = pool.submit(tasks.wait_cancelled, started, ledger)
        wait_for_path(started)
        follower = pool.submit(tasks.noop, signal=first)
        first.cancel()  # ends `first`, which fires the follower's signal
        assert isinstance(follower.exception(WAIT_S), TaskCancelledError)


def test_timeout_asks_the_task_to_stop(pool_factory: PoolFactory) -> None:
    started = pool_factory.path("started")
    with pool_factory(1, kill_grace=10.0) as pool:
        before = pool.submit(tasks.worker_identity).result(WAIT_S)
        handle = pool.submit(tasks.raise_if_cancelled_loop, started, timeout=0.3)
        error = handle.exception(WAIT_S)
        assert isinstance(error, TaskTimeoutError)
        assert isinstance(error, TimeoutError)
        assert error.timeout == 0.3
        assert error.task_id == handle.id
        assert error.forced is False
        assert not handle.cancelled()
        # It stopped at its flag, so the worker was kept.
        assert pool.submit(tasks.worker_identity).result(WAIT_S) == before
        assert pool.stats().restarts == 0


def test_timeout_kills_a_task_that_ignores_it(pool_factory: PoolFactory) -> None:
    pool_factory.require(*PROCESSES, reason="only a worker process can be killed")
    started = pool_factory.path("started")
    with pool_factory(1, kill_grace=0.2) as pool:
        old_pid = pool.submit(tasks.getpid).result(WAIT_S)
        handle = pool.submit(
            tasks.ignore_cancel_until_file, started, pool_factory.release, timeout=0.3
        )
        error = handle.exception(WAIT_S)
        assert isinstance(error, TaskTimeoutError)
        wait_until(lambda: pool.stats().restarts == 1, "the worker to be replaced")
        assert error.forced is True
        assert pool.submit(tasks.getpid).result(WAIT_S) != old_pid


def test_timeout_counts_from_the_start_not_from_submit(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    with pool_factory(1) as pool:
        saturate(pool, pool_factory.release)
        timed = pool.submit(tasks.add, 1, 2, timeout=0.3)
        # A queued task with a longer deadline is the clock: once it has failed, `timed`
        # has waited in the queue for longer than its timeout.
        clock = pool.submit(tasks.noop, deadline=0.6)
        assert isinstance(clock.exception(WAIT_S), DeadlineExceededError)
        assert not timed.done()
        tasks.touch(pool_factory.release)
        assert timed.result(WAIT_S) == 3
