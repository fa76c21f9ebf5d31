"""Progress: ``current_task().report()`` in the task, ``on_progress`` and ``handle.progress``
in the caller (the asyncio side is in ``test_async.py``)."""

from __future__ import annotations

import logging
import threading

import pytest

from workerbridge import ProgressInfo, RemoteTaskError, current_task
from workerbridge.testing import tasks

from ._helpers import WAIT_S, wait_until
from .conftest import CONCURRENT, PoolFactory


def test_reports_arrive_in_order_and_before_the_result(pool_factory: PoolFactory) -> None:
    events: list[tuple[str, ProgressInfo | None]] = []
    lock = threading.Lock()

    def on_progress(info: ProgressInfo) -> None:
        with lock:
            events.append(("progress", info))

    def on_done(_: object) -> None:
        with lock:
            events.append(("done", None))

    with pool_factory(1) as pool:
        handle = pool.submit(tasks.progress_steps, 5, on_progress=on_progress)
        handle.add_done_callback(on_done)
        assert handle.result(WAIT_S) == 5
    with lock:
        seen = list(events)
    # Every report, in order, and none after the handle was done.
    assert seen[-1] == ("done", None)
    reports = [info for kind, info in seen[:-1]]
    assert [kind for kind, _ in seen[:-1]] == ["progress"] * 5
    assert [(p.current, p.total) for p in reports if p] == [(i, 5) for i in range(1, 6)]
    assert [p.progress for p in reports if p] == [20.0, 40.0, 60.0, 80.0, 100.0]
    assert handle.progress == ProgressInfo(5, 5)


def test_progress_property_shows_the_last_report(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason="an inline task has ended when submit() returns")
    with pool_factory(1) as pool:
        handle = pool.submit(tasks.report_and_wait, 3, 4, pool_factory.release)
        wait_until(lambda: handle.progress is not None, "the first report")
        assert handle.progress == ProgressInfo(3, 4)
        assert handle.progress is not None
        assert handle.progress.progress == 75.0
        assert not handle.done()
        tasks.touch(pool_factory.release)
        assert handle.result(WAIT_S) == "done"


def test_progress_without_a_callback(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        handle = pool.submit(tasks.progress_steps, 3)
        assert handle.result(WAIT_S) == 3
        assert handle.progress == ProgressInfo(3, 3)


def test_failing_callback_does_not_fail_the_task(
    pool_factory: PoolFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(info: ProgressInfo) -> None:
        raise RuntimeError("bug in the callback")

    with caplog.at_level(logging.ERROR, logger="workerbridge"), pool_factory(1) as pool:
        assert pool.submit(tasks.progress_steps, 2, on_progress=broken).result(WAIT_S) == 2
    assert any("on_progress" in record.getMessage() for record in caplog.records)


def test_bad_report_values_fail_the_task(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        handle = pool.submit(lambda: current_task().report(-1, 10))
        error = handle.exception(WAIT_S)
    assert isinstance(error, RemoteTaskError)
    assert error.is_instance_of(ValueError)
