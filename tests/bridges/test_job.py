"""The job runner behind multi-call operations: results, order, progress, cancel, timeout."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from workerbridge import (
    ProgressInfo,
    TaskCancelledError,
    TaskHandle,
    TaskTimeoutError,
    WorkerBridge,
)
from workerbridge._bridge._job import Job, OperationOptions, start_job


def test_job_collects_results_in_order(bridge: WorkerBridge) -> None:
    def driver(job: Job[list[int]]) -> list[int]:
        calls = [lambda i=i: job.call("system", "echo", i, weight=1) for i in range(20)]
        return list(job.ordered(calls, window=3))

    seen: list[ProgressInfo] = []
    options = OperationOptions(seen.append, None, None)
    handle = start_job(bridge.pool, driver, options, total=20, name="test")
    assert handle.result(timeout=30) == list(range(20))
    assert seen
    assert seen[-1].current == 20


def test_job_error_is_raised_by_its_handle(bridge: WorkerBridge) -> None:
    def driver(job: Job[None]) -> None:
        raise ValueError("bad")

    handle = start_job(bridge.pool, driver, OperationOptions(None, None, None), total=1, name="t")
    with pytest.raises(ValueError, match="bad"):
        handle.result(timeout=30)


def test_cancel_waits_for_the_driver_to_clean_up(bridge: WorkerBridge) -> None:
    started = threading.Event()
    cleaned = threading.Event()

    def driver(job: Job[None]) -> None:
        started.set()
        try:
            while True:
                job.check()
                started.wait(0.001)
        finally:
            cleaned.set()

    handle = start_job(bridge.pool, driver, OperationOptions(None, None, None), total=1, name="t")
    assert started.wait(30)
    assert handle.cancel()
    assert cleaned.is_set()
    assert handle.cancelled()
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=30)


def test_timeout_ends_the_job(bridge: WorkerBridge) -> None:
    release = threading.Event()

    def driver(job: Job[None]) -> None:
        while True:
            job.check()
            release.wait(0.005)

    handle = start_job(bridge.pool, driver, OperationOptions(None, None, 0.05), total=1, name="t")
    with pytest.raises(TaskTimeoutError):
        handle.result(timeout=30)


def test_an_async_caller_sees_every_report_before_the_result(bridge: WorkerBridge) -> None:
    """Reports travel to the caller's loop; the awaiting coroutine resumes after them."""

    def driver(job: Job[int]) -> int:
        for _ in range(3):
            job.report(1)
        return 7

    async def main() -> tuple[int, list[float]]:
        seen: list[float] = []
        options = OperationOptions(lambda p: seen.append(p.current), None, None)
        handle = start_job(bridge.pool, driver, options, total=3, name="t")
        return await handle, seen

    result, seen = asyncio.run(main())
    assert result == 7
    assert seen[-1] == 3
    assert seen == sorted(seen)


def test_cancel_from_a_progress_callback_on_the_driver_thread_waits_for_clean_up(
    bridge: WorkerBridge,
) -> None:
    """Progress published by the driver is delivered on its own thread (no event loop), and
    on the process and inline backends so are its calls' reports: a callback that cancels
    from there must not resolve the handle before the driver's ``finally`` ran."""
    done_at_cleanup: list[bool] = []
    box: list[Job[None]] = []

    reports: list[ProgressInfo] = []

    def on_progress(info: ProgressInfo) -> None:
        reports.append(info)
        box[0].handle.cancel()

    def driver(job: Job[None]) -> None:
        try:
            job.report(1)
            job.report(1)  # after the cancel: not delivered
            job.check()
        finally:
            done_at_cleanup.append(job.handle.done())

    job = Job[None](bridge.pool, OperationOptions(on_progress, None, None), 2)
    box.append(job)
    handle = job.start(driver, "t")
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=30)
    assert handle.cancelled()
    assert done_at_cleanup == [False]
    assert len(reports) == 1


def test_a_call_that_finishes_as_the_job_times_out_ends_in_task_timeout_error(
    bridge: WorkerBridge,
) -> None:
    """``wait`` gives up on a call when the job's time runs out; if the call finishes just
    then, the job still ends in ``TaskTimeoutError``, not the bare ``TimeoutError`` of the
    wait that gave up."""

    # The interleaving forced by hand: a handle whose wait times out and that finishes
    # right after (TaskHandle is final for users; a test may still subclass it).
    class FinishesAsTheWaitGivesUp(TaskHandle[int]):  # type: ignore[misc]
        def result(self, timeout: float | None = None) -> int:
            try:
                return super().result(timeout)
            except TimeoutError:
                self.set_result(1)  # between the wait's timeout and the job's look at it
                raise

    call = FinishesAsTheWaitGivesUp(1, lambda _h: False)

    def driver(job: Job[int]) -> int:
        result: int = job.wait(call)
        return result

    handle = start_job(bridge.pool, driver, OperationOptions(None, None, 0.05), total=1, name="t")
    with pytest.raises(TaskTimeoutError):
        handle.result(timeout=30)


def test_a_timeout_that_passes_after_the_driver_finished_does_not_fail_it(
    bridge: WorkerBridge,
) -> None:
    """Past its last check the driver may have committed its output (renamed the file):
    a timeout noticed only then must not turn that into ``TaskTimeoutError``, which
    promises that no output was left."""
    committed = threading.Event()

    def driver(job: Job[int]) -> int:
        job.check()
        committed.set()  # what a driver does last: os.replace of its output
        deadline = job._expires
        assert deadline is not None
        pause = threading.Event()
        while time.monotonic() < deadline:  # the job's time runs out, unnoticed by the job
            pause.wait(0.005)
        return 7

    handle = start_job(bridge.pool, driver, OperationOptions(None, None, 0.05), total=1, name="t")
    assert handle.result(timeout=30) == 7
    assert committed.is_set()


def test_cancel_that_loses_to_the_result_returns_false(bridge: WorkerBridge) -> None:
    """A cancel that comes after the driver's last stop check, while the job is setting
    its result, cannot cancel it: ``cancel()`` must then say False, as for a task."""
    job = Job[int](bridge.pool, OperationOptions(None, None, None), 1)
    returned: list[bool] = []
    halted = threading.Event()
    cancellers: list[threading.Thread] = []
    cancel_calls = job._cancel_calls

    def cancel_in_between() -> None:
        # Runs in _run's finally, after the stop check and before the result is set: a
        # cancel from another thread lands right there.
        if threading.current_thread() is job._thread and not returned:
            canceller = threading.Thread(target=lambda: returned.append(job.handle.cancel()))
            cancellers.append(canceller)
            canceller.start()
            while job._stop is None:
                halted.wait(0.001)
            cancel_calls()
            job._cancel_calls = cancel_calls  # type: ignore[method-assign]
            return
        cancel_calls()

    job._cancel_calls = cancel_in_between  # type: ignore[method-assign]
    handle = job.start(lambda _job: 7, "t")
    assert handle.result(timeout=30) == 7
    cancellers[0].join(30)
    assert returned == [handle.cancelled()] == [False]


def test_a_signal_that_fired_before_the_start_does_not_run_the_driver(
    bridge: WorkerBridge,
) -> None:
    """The handle is cancelled as the signal is linked; a driver started after that would
    make its temporary output while the caller already holds the cancelled handle."""
    fired: Future[None] = Future()
    fired.set_result(None)
    ran: list[bool] = []
    job = Job[None](bridge.pool, OperationOptions(None, fired, None), 1)
    handle = job.start(lambda j: ran.append(j.handle.done()), "t")
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=30)
    if job._thread is not None:
        job._thread.join(30)
    assert ran == []


def test_cancel_from_on_progress_on_the_pool_io_thread_waits_for_clean_up(
    process_bridge: WorkerBridge, tmp_path: Path
) -> None:
    """On the process backend a call's progress may be delivered by the pool's I/O thread,
    which the driver needs to see its calls end: a cancel from ``on_progress`` there used
    to wait for the driver (which waited for that thread) until the 5 s clean-up wait ran
    out, then resolve the handle with the temporary output still on disk. Which thread
    delivers a report varies, so the round is repeated."""
    source = tmp_path / "in"
    with open(source, "wb") as file:
        file.truncate(64 << 20)
    key = process_bridge.crypto.generate_key()
    for round_ in range(6):
        out = tmp_path / f"out{round_}"
        box: list[TaskHandle[Any]] = []

        def on_progress(_info: ProgressInfo, box: list[TaskHandle[Any]] = box) -> None:
            box[0].cancel()

        handle = process_bridge.crypto.encrypt_file(
            source, key, output=out, on_progress=on_progress
        )
        box.append(handle)
        with pytest.raises(TaskCancelledError):
            handle.result(timeout=30)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
