"""Shared state passed into tasks on every backend: worker processes started by forkserver
and spawn, worker threads, and inline.

Every test makes its pools through ``make_pool`` (terminated at teardown) and releases its
shared objects, so the leak check of ``tests/conftest.py`` sees nothing left in
``/dev/shm``. The parent acts from a helper thread where it must act while a task runs,
which also covers the inline backend (the task runs inside ``submit``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from workerbridge import (
    RemoteTaskError,
    SerializationError,
    SharedCancellation,
    SharedCounter,
    SharedMemoryError,
    TaskCancelledError,
    WorkerCrashedError,
    WorkerPool,
    create_cancellation_token,
    create_progress_tracker,
)
from workerbridge._transport import segments_of
from workerbridge.testing import _shared_tasks as shared_tasks

from ._util import WAIT_S, exists, wait_until

KINDS = ("forkserver", "spawn", "thread", "inline")
PROCESSES = ("forkserver", "spawn")
#: S37 in the issue: 2 workers x 1,000,000 adds on one counter.
ADDS = 1_000_000


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_pool(kind: str) -> Iterator[Callable[[int], WorkerPool]]:
    pools: list[WorkerPool] = []

    def make(size: int) -> WorkerPool:
        if kind in PROCESSES:
            pool = WorkerPool(size, backend="process", start_method=kind)
        else:
            pool = WorkerPool(size, backend="thread" if kind == "thread" else "inline")
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.terminate()


def in_background(action: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=action, name="test-parent-action")
    thread.start()
    return thread


# -------------------------------------------------------------------------- counter


def test_two_workers_add_exactly(make_pool: Callable[[int], WorkerPool]) -> None:
    """S37: concurrent adds from two workers on one counter lose nothing."""
    pool = make_pool(2)
    with SharedCounter() as counter:
        handles = [pool.submit(shared_tasks.add_many, counter, ADDS) for _ in range(2)]
        assert [h.result(timeout=60) for h in handles] == [ADDS, ADDS]
        assert counter.load() == 2 * ADDS


def test_compare_exchange_races(make_pool: Callable[[int], WorkerPool]) -> None:
    pool = make_pool(2)
    n = 100_000
    with SharedCounter() as counter:
        handles = [pool.submit(shared_tasks.cas_increment_many, counter, n) for _ in range(2)]
        lost = [h.result(timeout=60) for h in handles]
        assert counter.load() == 2 * n  # every lost race was retried, none applied twice
        assert all(count >= 0 for count in lost)
    with SharedCounter() as slot:
        wins = [
            h.result(WAIT_S)
            for h in [pool.submit(shared_tasks.claim, slot, t) for t in range(1, 9)]
        ]
        assert wins.count(True) == 1
        assert slot.load() == wins.index(True) + 1


def test_a_task_called_many_times_maps_the_counter_once(
    kind: str, make_pool: Callable[[int], WorkerPool]
) -> None:
    pool = make_pool(1)
    with SharedCounter() as counter:
        results = [pool.submit(shared_tasks.touch_counter, counter) for _ in range(1000)]
        assert sorted(h.result(WAIT_S) for h in results) == list(range(1, 1001))
        mapped = pool.submit(shared_tasks.mapped_segments, counter.name).result(WAIT_S)
        # One mapping in the worker (in a thread or inline, the parent's own one).
        assert mapped == [counter.name]


def test_a_worker_unmaps_counters_released_by_the_parent(
    kind: str, make_pool: Callable[[int], WorkerPool]
) -> None:
    pool = make_pool(1)
    prefix = f"wb-{os.getpid()}-ctr-"
    for _ in range(20):
        with SharedCounter() as counter:
            assert pool.submit(shared_tasks.touch_counter, counter).result(WAIT_S) == 1
    with SharedCounter() as last:
        pool.submit(shared_tasks.touch_counter, last).result(WAIT_S)
        # The 20 released ones were unmapped when the next was attached.
        mapped = pool.submit(shared_tasks.mapped_segments, prefix).result(WAIT_S)
        assert mapped == [last.name]


def test_a_task_sees_the_release(make_pool: Callable[[int], WorkerPool]) -> None:
    pool = make_pool(1)
    counter = SharedCounter()
    started = SharedCounter()

    def release_once_started() -> None:
        wait_until(lambda: started.load() == 1, "the task to start")
        counter.close()

    helper = in_background(release_once_started)
    try:
        message = pool.submit(shared_tasks.use_until_released, counter, started).result(WAIT_S)
    finally:
        helper.join()
        started.close()
    assert "released by its owner" in message
    assert f"process {os.getpid()}" in message


def test_submitting_a_released_counter_fails_at_submit(
    make_pool: Callable[[int], WorkerPool],
) -> None:
    pool = make_pool(1)
    counter = SharedCounter()
    counter.close()
    with pytest.raises(SerializationError) as caught:
        pool.submit(shared_tasks.touch_counter, counter)
    assert isinstance(caught.value.__cause__, SharedMemoryError)


def test_a_counter_released_while_the_task_is_queued(
    kind: str, make_pool: Callable[[int], WorkerPool]
) -> None:
    if kind == "inline":
        pytest.skip("inline runs each task inside submit: nothing waits in a queue")
    pool = make_pool(1)
    counter = SharedCounter()
    with SharedCancellation() as gate, SharedCounter() as started:
        blocker = pool.submit(shared_tasks.wait_for_cancel, gate, started)
        wait_until(lambda: started.load() == 1, "the blocker to start")
        queued = pool.submit(shared_tasks.touch_counter, counter)  # pickled: name only
        counter.close()
        gate.cancel()
        blocker.result(WAIT_S)
        with pytest.raises((SerializationError, RemoteTaskError), match=r"released|gone"):
            queued.result(WAIT_S)


# -------------------------------------------------------------------------- progress


def test_progress_updated_by_a_task_is_read_by_the_parent(
    make_pool: Callable[[int], WorkerPool],
) -> None:
    pool = make_pool(2)
    progress, cleanup = create_progress_tracker(1000)
    try:
        handles = [pool.submit(shared_tasks.progress_steps, progress, 300) for _ in range(2)]
        for handle in handles:
            handle.result(WAIT_S)
        assert progress.current == 600
        assert progress.percent == 60.0
        assert pool.submit(shared_tasks.progress_steps, progress, 1000).result(WAIT_S) == 1000
        assert progress.done
        assert progress.percent_x100 == 10000
    finally:
        cleanup()


# ---------------------------------------------------------------------- cancellation


def test_cancel_in_the_parent_is_seen_by_a_running_task(
    make_pool: Callable[[int], WorkerPool],
) -> None:
    pool = make_pool(1)
    cancellation, cancel = create_cancellation_token()
    with cancellation, SharedCounter() as started:

        def cancel_once_started() -> None:
            wait_until(lambda: started.load() == 1, "the task to start")
            cancel()

        helper = in_background(cancel_once_started)
        try:
            handle = pool.submit(shared_tasks.wait_for_cancel, cancellation, started)
            seconds = handle.result(WAIT_S)
        finally:
            helper.join()
        assert 0 <= seconds < WAIT_S


def test_cancel_in_a_task_is_seen_by_the_parent(make_pool: Callable[[int], WorkerPool]) -> None:
    pool = make_pool(1)
    with SharedCancellation() as token:
        assert pool.submit(shared_tasks.cancel, token).result(WAIT_S) is True
        assert token.cancelled
        assert token.to_abort_signal().aborted


def test_the_abort_signal_cancels_a_pool_task(
    kind: str, make_pool: Callable[[int], WorkerPool]
) -> None:
    if kind == "inline":
        pytest.skip("inline runs each task inside submit: there is nothing left to cancel")
    pool = make_pool(1)
    cancellation, cancel = create_cancellation_token()
    with cancellation, SharedCounter() as started:
        handle = pool.submit(
            shared_tasks.wait_for_cancel,
            cancellation,
            started,
            signal=cancellation.to_abort_signal(),
        )
        wait_until(lambda: started.load() == 1, "the task to start")
        cancel()
        with pytest.raises(TaskCancelledError):
            handle.result(WAIT_S)


# ---------------------------------------------------------------------- crashes


def test_a_killed_worker_holding_attachments_leaks_nothing(kind: str) -> None:
    if kind not in PROCESSES:
        pytest.skip("only a worker process can be killed")
    with (
        WorkerPool(1, backend="process", start_method=kind) as pool,
        SharedCounter() as counter,
        SharedCancellation() as token,
    ):
        handle = pool.submit(shared_tasks.hold_until_cancelled, counter, token)
        wait_until(lambda: counter.load() != 0, "the task to attach")
        pid = counter.load()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerCrashedError):
            handle.result(WAIT_S)
        # The parent owns both segments: the dead worker's mappings went with it.
        assert exists(counter.name)
        assert exists(token.name)
        assert segments_of(pid) == []
        counter.store(0)
        assert pool.submit(shared_tasks.touch_counter, counter).result(WAIT_S) == 1
        token.cancel()
        assert pool.submit(shared_tasks.cancel, token).result(WAIT_S) is True
    assert not exists(counter.name)
    assert not exists(token.name)
