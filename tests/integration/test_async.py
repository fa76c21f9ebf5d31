"""The same pool and handles from asyncio code: ``await handle``, ``async with``,
``async for`` over ``map``, cancellation of the awaiting coroutine, progress on the loop.

Each test drives its coroutine with ``asyncio.run`` (no pytest plugin)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from workerbridge import (
    ProgressInfo,
    RemoteTaskError,
    TaskCancelledError,
    TaskHandle,
    WorkerPool,
)
from workerbridge.testing import tasks

from ._helpers import WAIT_S, read_ledger, saturate, wait_for_path, wait_until
from .conftest import CONCURRENT, PoolFactory

NO_QUEUE = "inline runs each task inside submit(): it is over before it can be cancelled"


def test_await_a_handle(pool_factory: PoolFactory) -> None:
    async def main() -> int:
        async with pool_factory(1) as pool:
            return await pool.submit(tasks.add, 2, 3)

    assert asyncio.run(main()) == 5


def test_await_raises_the_task_error(pool_factory: PoolFactory) -> None:
    async def main() -> None:
        async with pool_factory(1) as pool:
            with pytest.raises(RemoteTaskError) as info:
                await pool.submit(tasks.fail, "async boom")
            assert info.value.remote_type == "builtins.ValueError"

    asyncio.run(main())


def test_gather_many_handles(pool_factory: PoolFactory) -> None:
    async def main() -> list[int]:
        async with pool_factory(2) as pool:
            return await asyncio.gather(*(pool.submit(tasks.square, i) for i in range(20)))

    assert asyncio.run(main()) == [i * i for i in range(20)]


def test_await_with_a_timeout_of_asyncio(pool_factory: PoolFactory) -> None:
    async def main() -> int:
        async with pool_factory(1) as pool:
            return await asyncio.wait_for(pool.submit(tasks.add, 1, 1), WAIT_S)

    assert asyncio.run(main()) == 2


def test_async_with_closes_and_refuses_reentry(pool_factory: PoolFactory) -> None:
    async def main() -> WorkerPool:
        async with pool_factory(1) as pool:
            assert await pool.submit(tasks.add, 1, 1) == 2
        with pytest.raises(RuntimeError, match="closed"):
            async with pool:
                pass
        return pool

    pool = asyncio.run(main())
    assert pool.stats().state == "closed"


@pytest.mark.parametrize("ordered", [True, False])
def test_async_for_over_map(pool_factory: PoolFactory, ordered: bool) -> None:
    async def main() -> list[int]:
        async with pool_factory(2) as pool:
            return [x async for x in pool.map(tasks.square, range(30), ordered=ordered)]

    out = asyncio.run(main())
    expected = [x * x for x in range(30)]
    assert (out if ordered else sorted(out)) == expected


def test_async_for_unordered_yields_chunks_as_they_finish(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason="inline runs every chunk inside map() itself")
    gate = pool_factory.path("gate")

    async def main() -> list[str]:
        async with pool_factory(2) as pool:
            assert pool.wait_ready(WAIT_S)
            items = [("slow", gate, ""), ("fast", "", "")]
            seen = []
            async for value in pool.map(tasks.gated_record, items, chunksize=1, ordered=False):
                seen.append(value)
                tasks.touch(gate)  # only once the fast chunk has come back
            return seen

    assert asyncio.run(main()) == ["fast", "slow"]


def test_async_for_raises_the_failing_chunk(pool_factory: PoolFactory) -> None:
    items: list[Any] = [1, "x", 3]

    async def main() -> list[int]:
        seen: list[int] = []

        async def collect(pool: WorkerPool) -> None:
            async for value in pool.map(tasks.square, items, chunksize=1):
                seen.append(value)  # noqa: PERF401 - what came before the error is the point

        async with pool_factory(1) as pool:
            with pytest.raises(RemoteTaskError):
                await collect(pool)
        return seen

    assert asyncio.run(main()) == [1]


def test_cancelling_the_awaiting_coroutine_cancels_the_task(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    started, ledger = pool_factory.path("started"), pool_factory.path("ledger")
    pool = pool_factory(1, kill_grace=10.0)
    handle = pool.submit(tasks.wait_cancelled, started, ledger)

    async def main() -> None:
        waiter = asyncio.create_task(_await(handle))
        await asyncio.to_thread(wait_for_path, started)
        waiter.cancel()
        # The caller's own cancellation stays asyncio.CancelledError, never wrapped.
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(main())
    assert isinstance(handle.exception(WAIT_S), TaskCancelledError)
    wait_until(lambda: read_ledger(ledger) == ["saw-cancel"], "the task to see its flag")
    pool.close()


async def _await(handle: TaskHandle[Any]) -> Any:
    return await handle


def test_awaiting_a_cancelled_task_raises_task_cancelled_error(
    pool_factory: PoolFactory,
) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    with pool_factory(1) as pool:
        saturate(pool, pool_factory.release)
        handle = pool.submit(tasks.noop)

        async def main() -> None:
            waiter = asyncio.create_task(_await(handle))
            await asyncio.sleep(0)  # let it start awaiting
            handle.cancel()  # someone else cancels the task
            with pytest.raises(TaskCancelledError):
                await waiter
            assert not waiter.cancelled()

        asyncio.run(main())
        tasks.touch(pool_factory.release)


def test_asyncio_future_as_signal(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    started, ledger = pool_factory.path("started"), pool_factory.path("ledger")

    async def main() -> None:
        async with pool_factory(1, kill_grace=10.0) as pool:
            abort: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            handle = pool.submit(tasks.wait_cancelled, started, ledger, signal=abort)
            await asyncio.to_thread(wait_for_path, started)
            abort.set_result(None)
            with pytest.raises(TaskCancelledError):
                await handle

    asyncio.run(main())
    wait_until(lambda: read_ledger(ledger) == ["saw-cancel"], "the task to see its flag")


def test_on_progress_runs_on_the_callers_loop_in_order(pool_factory: PoolFactory) -> None:
    async def main() -> tuple[list[tuple[float, bool]], int]:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        seen: list[tuple[float, bool]] = []

        def on_progress(info: ProgressInfo) -> None:
            on_loop = threading.get_ident() == loop_thread
            seen.append((info.current, on_loop and asyncio.get_running_loop() is loop))

        async with pool_factory(1) as pool:
            assert await pool.submit(tasks.progress_steps, 4, on_progress=on_progress) == 4
            count_when_awaited = len(seen)
            await asyncio.sleep(0)  # a late callback would run now
        return seen, count_when_awaited

    seen, count_when_awaited = asyncio.run(main())
    assert seen == [(1.0, True), (2.0, True), (3.0, True), (4.0, True)]
    assert count_when_awaited == 4  # every report was delivered before the await returned


def test_on_progress_never_sees_a_done_handle_on_the_loop(pool_factory: PoolFactory) -> None:
    async def main() -> list[bool]:
        done_flags: list[bool] = []
        handles: list[TaskHandle[int]] = []

        def on_progress(info: ProgressInfo) -> None:
            done_flags.append(handles[0].done())

        async with pool_factory(1) as pool:
            # The last report is sent just before the result: both are in flight together.
            handles.append(pool.submit(tasks.progress_steps, 3, on_progress=on_progress))
            assert await handles[0] == 3
        return done_flags

    assert asyncio.run(main()) == [False, False, False]
