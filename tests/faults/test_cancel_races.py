"""S12, S13: cancellation of queued and running tasks, forced cancellation, and the race
between a cancel and the task's completion.

Three ways to cancel: ``handle.cancel()``, a ``signal=`` future that fires, and cancelling
the asyncio task that awaits the handle. A queued task never runs (its ledger stays empty);
a running one sees ``current_task().cancelled`` at once, keeps its worker if it stops by
itself, and loses it after ``kill_grace`` if it does not. Whatever the timing, a task ends
in exactly one state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workerbridge import TaskCancelledError, TaskHandle, WorkerPool
from workerbridge.testing import _faults as faults, tasks

from ._util import (
    START_METHODS,
    WAIT_S,
    KnownBugError,
    count,
    figure,
    percentile,
    wait_for_path,
    wait_gone,
    wait_until,
)

WAYS = ("cancel", "signal", "asyncio")
#: S12: a queued task's handle is done <= 10 ms after the cancel. CI bound: 5x.
QUEUED_TARGET, QUEUED_BOUND = "<= 10 ms", 0.05
#: S12: a running task sees its flag <= check interval + 50 ms after the cancel. CI bound 5x.
RUNNING_TARGET, RUNNING_BOUND = "<= check interval + 50 ms", 0.3
#: S13: forced cancel -> worker dead <= kill_grace + 100 ms. CI bound: 5x.
KILL_TARGET, KILL_BOUND = "<= kill_grace + 100 ms", 0.5


def _read(path: str) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def _cancel_with(way: str, pool: WorkerPool, fn: Callable[..., Any], *args: Any, **options: Any):
    """Submit ``fn(*args)`` so it can be cancelled the ``way`` given; returns the handle
    and a function that cancels it (from this thread) and returns when the cancel was
    issued. ``asyncio`` runs a loop in a helper thread whose coroutine awaits the handle."""
    if way == "cancel":
        handle = pool.submit(fn, *args, **options)
        return handle, handle.cancel, lambda: None
    if way == "signal":
        trigger: concurrent.futures.Future[None] = concurrent.futures.Future()
        handle = pool.submit(fn, *args, signal=trigger, **options)
        return handle, lambda: trigger.set_result(None), lambda: None
    assert way == "asyncio"
    handle = pool.submit(fn, *args, **options)
    loop = asyncio.new_event_loop()
    executor = concurrent.futures.ThreadPoolExecutor(1)
    executor.submit(loop.run_forever)

    async def waiter() -> Any:
        return await handle

    awaiting = asyncio.run_coroutine_threadsafe(waiter(), loop)

    def cancel() -> None:
        # Cancelling the awaiting coroutine's task cancels the pool's task.
        awaiting.cancel()

    def cleanup() -> None:
        # The coroutine ends once the handle is done (or at once, if it was cancelled).
        concurrent.futures.wait([awaiting], WAIT_S)
        assert awaiting.done()
        loop.call_soon_threadsafe(loop.stop)
        executor.shutdown(wait=True)
        loop.close()

    return handle, cancel, cleanup


def _occupy(pool: WorkerPool, release: str, started: str) -> TaskHandle[str]:
    """Run a blocker on the (single) worker and fill its window, so the next task waits in
    the pool's queue."""
    assert pool.wait_ready(WAIT_S)
    blocker = pool.submit(tasks.block, release, started)
    wait_for_path(started)
    fillers = 0
    while not pool.stats().queue_depth:
        pool.submit(tasks.noop)
        fillers += 1
        assert fillers < 1000
    return blocker


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_cancelled_queued_task_never_runs(start_method: str, way: str, tmp_path: Path) -> None:
    release, started, ledger = (str(tmp_path / n) for n in ("release", "started", "ledger"))
    with WorkerPool(1, start_method=start_method) as pool:
        blocker = _occupy(pool, release, started)
        depth = pool.stats().queue_depth
        handle, cancel, cleanup = _cancel_with(way, pool, tasks.record_and_return, ledger, "victim")
        try:
            assert pool.stats().queue_depth == depth + 1
            before = time.monotonic()
            cancel()
            wait_until(handle.done, "the handle to be cancelled", interval=0.0002)
            latency = time.monotonic() - before
            assert handle.cancelled()
            assert isinstance(handle.exception(0), TaskCancelledError)
            assert pool.stats().queue_depth == depth
        finally:
            cleanup()
            tasks.touch(release)
        assert blocker.result(WAIT_S) == "released"
        # One worker runs its tasks in order: the victim would have run before this one.
        assert pool.submit(tasks.record_and_return, ledger, "after").result(WAIT_S) == "after"
        assert pool.stats().cancelled == 1
    assert _read(ledger) == ["after"]
    figure(
        f"S12 {start_method} {way}",
        "queued cancel -> handle done",
        latency,
        QUEUED_TARGET,
        QUEUED_BOUND,
    )


@pytest.mark.parametrize("start_method", START_METHODS)
def test_cancelled_tasks_already_sent_to_the_worker_never_run(
    start_method: str, tmp_path: Path
) -> None:
    """Tasks the pool has already written to the busy worker's pipe are skipped by it.

    ``map`` queues all its chunks at once. The idle worker gets the first (instant); when
    it answers, the pool tops the worker up with a window of chunks: a blocker that ignores
    its cancel flag until ``release`` exists, and behind it chunks waiting in the worker's
    pipe. Closing the iterator cancels every unfinished chunk; none behind the blocker may
    run, and the blocker, which stops within the grace, keeps its worker."""
    release, ledger = str(tmp_path / "release"), str(tmp_path / "ledger")
    started = str(tmp_path / "started")
    items = [(0, "", "", ""), (1, release, "", started)]
    items += [(i, "", ledger, "") for i in range(2, 20)]
    with WorkerPool(1, start_method=start_method, kill_grace=10.0) as pool:
        assert pool.wait_ready(WAIT_S)
        # The pool sends tasks ahead to a busy worker only once tasks have proved short;
        # warm it up with tiny ones so its in-flight window grows.
        assert sum(pool.map(tasks.square, range(300), chunksize=1)) == sum(
            x * x for x in range(300)
        )
        try:
            results = pool.map(faults.gate_then_record, items, chunksize=1)
            assert next(results) == 0
            # The blocker runs (so the chunks behind it cannot start while close() cancels
            # them one by one, see the next test) and at least one chunk waits in the
            # worker's pipe behind it.
            wait_for_path(started)
            wait_until(lambda: pool.stats().running >= 2, "a chunk sent ahead to the worker")
            results.close()
        finally:
            tasks.touch(release)
        assert pool.submit(tasks.record_and_return, ledger, "after").result(WAIT_S) == "after"
        stats = pool.stats()
        assert stats.cancelled == len(items) - 1
        assert stats.restarts == 0
    assert _read(ledger) == ["after"]


def test_closing_a_map_cancels_every_chunk_at_once(tmp_path: Path) -> None:
    release, ledger = str(tmp_path / "release"), str(tmp_path / "ledger")
    # Chunk 0 is instant; chunk 1 logs its start and waits (cooperatively) for ``release``;
    # chunk 2, sent to the worker behind it, logs its start.
    items = [(0, "", ""), (1, release, ledger), (2, "", ledger)]
    with WorkerPool(1, kill_grace=10.0) as pool:
        assert pool.wait_ready(WAIT_S)
        # The pool sends tasks ahead to a busy worker only once tasks have proved short:
        # warm it up with tiny ones so its in-flight window grows.
        assert sum(pool.map(tasks.square, range(300), chunksize=1)) == sum(
            x * x for x in range(300)
        )
        try:
            results = pool.map(faults.record_unless_cancelled, items, chunksize=1)
            assert next(results) == 0
            wait_until(lambda: _read(ledger) == ["1"], "chunk 1 to start")
            wait_until(lambda: pool.stats().running == 2, "chunk 2 sent behind it")

            def hold_close(_handle: object) -> None:
                # Runs inside close(), right after chunk 1 is cancelled and before chunk 2
                # is: a close that cancels all chunks at once leaves chunk 2 no chance.
                deadline = time.monotonic() + 1.0
                while "2" not in _read(ledger) and time.monotonic() < deadline:
                    time.sleep(0.002)

            # White-box: the iterator's chunk handles, to hold close() between two chunks.
            results._handles[1].add_done_callback(hold_close)
            results.close()
        finally:
            tasks.touch(release)
        pool.submit(tasks.noop).result(WAIT_S)
    if _read(ledger) != ["1"]:
        raise KnownBugError(f"a chunk started while the map was being closed: {_read(ledger)}")


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_running_cooperative_task_stops_and_keeps_its_worker(
    start_method: str, way: str, tmp_path: Path
) -> None:
    started, noticed = str(tmp_path / "started"), str(tmp_path / "noticed")
    late: list[float] = []

    with WorkerPool(1, start_method=start_method, kill_grace=10.0) as pool:
        pid = pool.submit(faults.worker_pid).result(WAIT_S)
        holder: list[TaskHandle[Any]] = []

        def on_progress(info: Any) -> None:
            if holder and holder[0].done():
                late.append(info.current)

        handle, cancel, cleanup = _cancel_with(
            way, pool, faults.progress_until_cancelled, started, noticed, on_progress=on_progress
        )
        holder.append(handle)
        try:
            wait_for_path(started)
            wait_until(lambda: handle.progress is not None, "the first progress report")
            before = time.monotonic()
            cancel()
            assert isinstance(handle.exception(WAIT_S), TaskCancelledError)
            assert handle.cancelled()
            wait_for_path(noticed)
        finally:
            cleanup()
        # The task reported three more steps after it saw the flag, then returned: once its
        # (dropped) reply is in, the same worker takes the next task.
        assert pool.submit(faults.worker_pid).result(WAIT_S) == pid
        assert pool.stats().restarts == 0
    assert late == [], "progress delivered after the handle was cancelled"
    figure(
        f"S12 {start_method} {way}",
        "running cancel -> flag seen",
        faults.read_stamp(noticed) - before,
        RUNNING_TARGET,
        RUNNING_BOUND,
    )


def test_no_progress_callback_after_a_cancel_mid_batch(tmp_path: Path) -> None:
    """Deterministic form of the race: the first callback holds the I/O thread while the
    task writes 20 reports into its pipe (so the I/O thread reads them as one batch); the
    second callback (the first of that batch) holds it again while the test cancels."""
    burst, sent = str(tmp_path / "burst"), str(tmp_path / "sent")
    gates = [threading.Event(), threading.Event()]
    proceed = [threading.Event(), threading.Event()]
    seen: list[float] = []
    late: list[float] = []
    holder: list[TaskHandle[Any]] = []

    def on_progress(info: Any) -> None:
        if holder[0].done():
            late.append(info.current)
        n = len(seen)
        seen.append(info.current)
        if n < 2:
            gates[n].set()
            proceed[n].wait(WAIT_S)

    with WorkerPool(1, kill_grace=10.0) as pool:
        try:
            handle = pool.submit(faults.report_burst, burst, sent, 20, on_progress=on_progress)
            holder.append(handle)
            assert gates[0].wait(WAIT_S)  # the I/O thread is inside the first callback
            tasks.touch(burst)
            wait_for_path(sent)  # 20 more reports wait in the pipe
            proceed[0].set()
            assert gates[1].wait(WAIT_S)  # ... and are being delivered, as one batch
            assert handle.cancel()
            assert handle.done()
        finally:
            for event in proceed:
                event.set()
        wait_until(lambda: pool.stats().running == 0, "the task to stop")
    assert seen[:2] == [1, 2]
    assert late == [], f"{len(late)} progress callbacks ran after the handle was cancelled"


@pytest.mark.parametrize("start_method", START_METHODS)
def test_forced_cancel_kills_the_worker_after_the_grace(start_method: str, tmp_path: Path) -> None:
    started = str(tmp_path / "started")
    grace = 0.3
    with WorkerPool(1, start_method=start_method, kill_grace=grace) as pool:
        pid = pool.submit(faults.worker_pid).result(WAIT_S)
        handle = pool.submit(faults.sleep_stamped, started, 60.0)
        wait_for_path(started)
        before = time.monotonic()
        assert handle.cancel() is True
        assert handle.done()  # at once, not after the grace
        assert isinstance(handle.exception(0), TaskCancelledError)
        wait_gone([pid])
        killed = time.monotonic() - before
        assert killed >= grace - 0.05
        wait_until(lambda: pool.stats().restarts == 1, "the worker to be replaced")
        assert pool.submit(faults.worker_pid).result(WAIT_S) != pid
        assert pool.stats().cancelled == 1
    figure(
        f"S13 {start_method}",
        "forced cancel: worker dead after the grace",
        killed - grace,
        KILL_TARGET,
        KILL_BOUND,
    )


def _race(start_method: str, iterations: int, way: str) -> None:
    """Cancel tasks of 0-1 ms at a random instant 0-3 ms after submitting them (so around
    their completion): each ends as a result or as cancelled, never both, never neither,
    and ``cancel()``'s answer agrees with the outcome."""
    rng = random.Random(13)
    outcomes = {"result": 0, "cancelled": 0}
    with WorkerPool(2, start_method=start_method, kill_grace=5.0) as pool:
        assert pool.wait_ready(WAIT_S)
        for i in range(iterations):
            resolutions: list[object] = []
            handle, cancel, cleanup = _cancel_with(way, pool, faults.spin, rng.uniform(0, 0.001), i)
            handle.add_done_callback(resolutions.append)
            faults.spin(rng.uniform(0, 0.003))
            try:
                answer = cancel()
                error = handle.exception(WAIT_S)
            finally:
                cleanup()
            if error is None:
                assert handle.result(0) == i
                assert not handle.cancelled()
                assert answer is not True
                outcomes["result"] += 1
            else:
                assert isinstance(error, TaskCancelledError), error
                assert handle.cancelled()
                assert answer is not False
                outcomes["cancelled"] += 1
            wait_until(functools.partial(bool, resolutions), "the done-callback")
            assert resolutions == [handle]
            assert handle.cancel() is handle.cancelled()  # a second cancel changes nothing
        wait_until(lambda: pool.stats().running == 0, "the pool to drain")
        stats = pool.stats()
        assert stats.completed == outcomes["result"]
        assert stats.cancelled == outcomes["cancelled"]
        assert stats.restarts == 0  # every cancelled task stopped within the grace
    for outcome, n in outcomes.items():
        count(f"S13 {start_method} {way} race x{iterations}", outcome, n)


@pytest.mark.parametrize("way", WAYS)
def test_cancel_racing_completion_has_one_outcome(way: str) -> None:
    _race("forkserver", 150 if way != "asyncio" else 60, way)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_cancel_racing_completion_soak(start_method: str, way: str) -> None:
    """RELIABILITY.md S13 at soak size: 10,000 race iterations."""
    _race(start_method, 10_000, way)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_cancelled_queued_tasks_soak(tmp_path: Path) -> None:
    """RELIABILITY.md S12 at soak size: 10,000 cancels of queued tasks, 0 executions."""
    release, started, ledger = (str(tmp_path / n) for n in ("release", "started", "ledger"))
    latencies = []
    with WorkerPool(1) as pool:
        blocker = _occupy(pool, release, started)
        for i in range(10_000):
            handle = pool.submit(tasks.record_and_return, ledger, i)
            before = time.monotonic()
            assert handle.cancel()
            latencies.append(time.monotonic() - before)
            assert handle.done()
        tasks.touch(release)
        assert blocker.result(WAIT_S) == "released"
        assert pool.submit(tasks.noop).result(WAIT_S) is None
    assert not os.path.exists(ledger)
    figure("S12 soak", "queued cancel p99", percentile(latencies, 99), QUEUED_TARGET, QUEUED_BOUND)
