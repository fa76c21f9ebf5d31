"""Starting, readiness, closing and terminating a pool, and what a closed pool refuses."""

from __future__ import annotations

import multiprocessing
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from workerbridge import PoolBrokenError, PoolClosedError, TaskHandle, WorkerPool
from workerbridge.testing import tasks

from ._helpers import WAIT_S, read_ledger, saturate, wait_for_path, wait_until
from .conftest import CONCURRENT, PROCESSES, PoolFactory


def test_wait_ready_makes_every_worker_ready(pool_factory: PoolFactory) -> None:
    pool = pool_factory(2)
    assert pool.wait_ready(WAIT_S) is True
    assert pool.backend == pool_factory.backend
    expected = 1 if pool_factory.kind == "inline" else 2  # inline runs in the caller alone
    assert pool.size == expected
    assert [w.state for w in pool.stats().workers] == ["ready"] * expected
    pool.close()


def test_initializer_runs_before_the_first_task(pool_factory: PoolFactory) -> None:
    token = f"init-{uuid.uuid4()}"
    with pool_factory(1, initializer=tasks.set_worker_value, initargs=(token,)) as pool:
        # Submitted at once: the task may reach the worker only after it is ready.
        assert pool.submit(tasks.get_worker_value).result(WAIT_S) == token


def test_with_block_closes_the_pool(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        assert pool.submit(tasks.add, 1, 2).result(WAIT_S) == 3
    assert pool.stats().state == "closed"
    assert "closed" in repr(pool)
    with pytest.raises(PoolClosedError):
        pool.submit(tasks.noop)

    def enter_again() -> None:
        with pool:
            pass

    with pytest.raises(RuntimeError, match="closed"):
        enter_again()


def test_close_and_terminate_are_idempotent(pool_factory: PoolFactory) -> None:
    pool = pool_factory(1)
    assert pool.submit(tasks.noop).result(WAIT_S) is None
    pool.close()
    pool.close()
    pool.terminate()
    pool.terminate()
    assert pool.stats().state == "closed"


def test_close_finishes_running_tasks_and_fails_queued_ones(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason="inline tasks finish inside submit(); none queue")
    pool = pool_factory(1)
    started, ledger = pool_factory.path("started"), pool_factory.path("ledger")
    sent, queued_blocker = saturate(pool, pool_factory.release, started)
    queued = [pool.submit(tasks.record_and_return, ledger, i) for i in range(3)]
    wait_for_path(started)  # sent[0] is running
    closer = threading.Thread(target=pool.close)
    closer.start()
    for handle in [queued_blocker, *queued]:
        assert isinstance(handle.exception(WAIT_S), PoolClosedError)
    assert not sent[0].done()  # still running: close() waits for it
    tasks.touch(pool_factory.release)
    closer.join(WAIT_S)
    assert not closer.is_alive()
    assert sent[0].result(0) == "released"
    for handle in sent[1:]:  # sent ahead to the worker: finished, or failed by close()
        assert handle.done()
        if handle.exception(0) is not None:
            assert isinstance(handle.exception(0), PoolClosedError)
    assert read_ledger(ledger) == []
    assert pool.stats().state == "closed"


def test_close_with_a_timeout_is_bounded(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason="an inline task occupies the caller itself")
    pool = pool_factory(1)
    started = pool_factory.path("started")
    stuck = pool.submit(tasks.ignore_cancel_until_file, started, pool_factory.release)
    wait_for_path(started)
    pool.close(timeout=0.2)  # returns although the task never stops on its own
    assert isinstance(stuck.exception(0), PoolClosedError)
    assert pool.stats().state == "closed"
    tasks.touch(pool_factory.release)  # an abandoned worker thread may end now


def test_terminate_fails_every_unfinished_task(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason="inline tasks finish inside submit(); none queue")
    pool = pool_factory(1)
    started, ledger = pool_factory.path("started"), pool_factory.path("ledger")
    sent, queued_blocker = saturate(pool, pool_factory.release, started)
    queued = [pool.submit(tasks.record_and_return, ledger, i) for i in range(3)]
    wait_for_path(started)
    terminator = threading.Thread(target=pool.terminate)
    terminator.start()
    for handle in [*sent, queued_blocker, *queued]:
        assert isinstance(handle.exception(WAIT_S), PoolClosedError)
    tasks.touch(pool_factory.release)  # lets an abandoned worker thread end
    terminator.join(WAIT_S)
    assert not terminator.is_alive()
    assert read_ledger(ledger) == []
    assert pool.stats().state == "closed"
    with pytest.raises(PoolClosedError):
        pool.submit(tasks.noop)


def test_close_while_a_replacement_worker_starts_leaves_nothing_behind(
    pool_factory: PoolFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool_factory.require(*CONCURRENT, reason="an inline worker is never replaced")
    me = psutil.Process()
    children, threads, fds = (
        set(me.children(recursive=True)),
        set(threading.enumerate()),
        me.num_fds(),
    )
    pool = pool_factory(2, kill_grace=0.1)
    assert pool.wait_ready(WAIT_S)
    # Hold the supervisor inside start_worker (a private seam, used only to make the race
    # window wide and deterministic) until close() has stopped the healthy worker.
    backend = pool._core.backend
    start_worker: Callable[..., Any] = backend.start_worker
    entered, proceed = threading.Event(), threading.Event()

    def paused_start_worker(*args: Any) -> Any:
        entered.set()
        proceed.wait(WAIT_S)
        return start_worker(*args)

    monkeypatch.setattr(backend, "start_worker", paused_start_worker)
    started = pool_factory.path("started")
    stuck = pool.submit(tasks.ignore_cancel_until_file, started, pool_factory.release)
    wait_for_path(started)
    stuck.cancel()  # killed (abandoned, for a thread) after kill_grace, then replaced
    assert entered.wait(WAIT_S)
    healthy = next(w.index for w in pool.stats().workers if w.state == "ready")
    closer = threading.Thread(target=pool.close)
    closer.start()
    wait_until(
        lambda: pool.stats().workers[healthy].state == "dead", "close() to stop the healthy worker"
    )
    proceed.set()  # the replacement comes up only now, while close() is under way
    closer.join(WAIT_S)
    assert not closer.is_alive()
    tasks.touch(pool_factory.release)  # the abandoned thread of a thread pool ends
    assert [w.state for w in pool.stats().workers] == ["dead", "dead"]

    def clean() -> bool:
        multiprocessing.active_children()
        return (
            not set(me.children(recursive=True)) - children
            and not set(threading.enumerate()) - threads
            and me.num_fds() <= fds
        )

    wait_until(clean, "every worker, thread and descriptor to be released", timeout=5.0)


def test_initializer_failure_breaks_the_pool(pool_factory: PoolFactory) -> None:
    pool = pool_factory(1, initializer=tasks.fail_initializer, initargs=("no database",))
    with pytest.raises(PoolBrokenError) as info:
        pool.wait_ready(WAIT_S)
    cause = info.value.__cause__
    assert cause is not None
    assert "ValueError" in str(cause)
    assert "no database" in str(cause)
    with pytest.raises(PoolBrokenError) as again:
        pool.submit(tasks.noop)
    assert "no database" in str(again.value.__cause__)
    pool.close()


def test_task_submitted_to_a_pool_that_breaks_fails_with_the_cause(
    pool_factory: PoolFactory,
) -> None:
    pool = pool_factory(1, initializer=tasks.fail_initializer, initargs=("bad config",))
    error: BaseException | None
    try:
        handle: TaskHandle[None] = pool.submit(tasks.noop)  # before the pool knows
    except PoolBrokenError as exc:
        error = exc
    else:
        error = handle.exception(WAIT_S)
    assert isinstance(error, PoolBrokenError)
    assert "bad config" in str(error.__cause__)
    pool.close()


def test_worker_that_never_gets_ready_breaks_the_pool(pool_factory: PoolFactory) -> None:
    pool_factory.require(*PROCESSES, reason="a thread stuck in its initializer cannot be killed")
    pool = pool_factory(
        1,
        initializer=tasks.slow_initializer,
        initargs=(60.0,),
        ready_timeout=0.3,
        heartbeat_interval=0.1,
    )
    with pytest.raises(PoolBrokenError) as info:
        pool.wait_ready(WAIT_S)
    assert "not ready" in str(info.value.__cause__)
    pool.close()


# --- configuration, independent of the backend ------------------------------------------


@pytest.mark.parametrize("backend", ["process", "thread"])
def test_default_size_is_the_usable_cpus(backend: Any) -> None:
    with WorkerPool(backend=backend) as pool:
        assert pool.size == len(os.sched_getaffinity(0))
        assert pool.wait_ready(WAIT_S)
        assert len(pool.stats().workers) == pool.size


@pytest.mark.parametrize(("start_method", "child_of_caller"), [(None, False), ("spawn", True)])
def test_process_backend_defaults_to_forkserver(
    start_method: str | None, child_of_caller: bool
) -> None:
    # A forkserver worker is a child of the fork server; a spawned one is our own child.
    with WorkerPool(1, start_method=start_method) as pool:
        assert pool.backend == "process"
        parent = pool.submit(os.getppid).result(WAIT_S)
    assert (parent == os.getpid()) is child_of_caller


def test_fork_start_method_is_refused() -> None:
    with pytest.raises(ValueError, match="fork"):
        WorkerPool(1, start_method="fork")


@pytest.mark.parametrize(
    "options",
    [
        {"size": 0},
        {"size": True},
        {"backend": "gpu"},
        {"strategy": "random"},
        {"max_queue": -1},
        {"kill_grace": -1.0},
        {"heartbeat_interval": 1.0, "heartbeat_timeout": 0.5},
        {"ready_timeout": 0},
        {"initializer": 3},
    ],
)
def test_bad_pool_arguments_raise_value_error(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WorkerPool(**options)


def test_submit_options_are_checked_before_anything_is_queued() -> None:
    bad_options: list[dict[str, Any]] = [
        {"timeout": -1},
        {"timeout": 0},
        {"deadline": -1},
        {"priority": "high"},
        {"priority": 1.5},
        {"retries": -1},
        {"retry_on": (int,)},
        {"on_progress": 3},
        {"affinity": []},
        {"signal": object()},
    ]
    with WorkerPool(1, backend="thread") as pool:
        for bad in bad_options:
            with pytest.raises(ValueError):
                pool.submit(tasks.noop, **bad)
        assert pool.stats().submitted == 0
