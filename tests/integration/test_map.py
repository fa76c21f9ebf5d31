"""``map``: results in order or as chunks finish, errors, and leaving early."""

from __future__ import annotations

from typing import Any

import pytest

from workerbridge import RemoteTaskError, WorkerPool
from workerbridge.testing import tasks

from ._helpers import WAIT_S, read_ledger
from .conftest import CONCURRENT, PoolFactory


@pytest.mark.parametrize("chunksize", [1, 7, "auto"])
def test_results_come_in_input_order(pool_factory: PoolFactory, chunksize: Any) -> None:
    with pool_factory(2) as pool:
        out = list(pool.map(tasks.square, range(50), chunksize=chunksize))
    assert out == [x * x for x in range(50)]


def test_items_are_grouped_in_chunks(pool_factory: PoolFactory) -> None:
    with pool_factory(2) as pool:
        results = pool.map(tasks.square, range(10), chunksize=3)
        assert len(results) == 4
        assert list(results) == [x * x for x in range(10)]
        assert pool.stats().completed == 4


def test_map_over_nothing(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        assert list(pool.map(tasks.square, [])) == []
        assert pool.stats().submitted == 0


def test_map_with_a_lambda(pool_factory: PoolFactory) -> None:
    with pool_factory(2) as pool:
        assert list(pool.map(lambda x: x + 1, range(10), chunksize=2)) == list(range(1, 11))


def test_unordered_yields_chunks_as_they_finish(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason="inline runs every chunk inside map() itself")
    gate = pool_factory.path("gate")
    with pool_factory(2) as pool:
        assert pool.wait_ready(WAIT_S)  # so the two chunks go to different workers
        items = [("slow", gate, ""), ("fast", "", "")]
        results = pool.map(tasks.gated_record, items, chunksize=1, ordered=False)
        assert next(results) == "fast"  # while the first chunk still waits for its gate
        tasks.touch(gate)
        assert next(results) == "slow"
        assert list(results) == []


def test_unordered_yields_every_result(pool_factory: PoolFactory) -> None:
    with pool_factory(2) as pool:
        out = list(pool.map(tasks.square, range(30), chunksize=4, ordered=False))
    assert sorted(out) == [x * x for x in range(30)]


def test_failing_chunk_raises_when_reached(pool_factory: PoolFactory) -> None:
    items: list[Any] = [1, 2, "x", 4]
    with pool_factory(1) as pool:
        results = pool.map(tasks.square, items, chunksize=1)
        assert next(results) == 1
        assert next(results) == 4
        with pytest.raises(RemoteTaskError) as info:
            next(results)
        assert info.value.remote_type == "builtins.TypeError"
        assert pool.submit(tasks.add, 1, 1).result(WAIT_S) == 2


def _first_then_leave(pool: WorkerPool, items: list[tuple[Any, str, str]]) -> Any:
    for value in pool.map(tasks.gated_record, items, chunksize=1):
        return value  # leaves the loop with every other chunk unfinished
    raise AssertionError("map yielded nothing")


def test_leaving_the_loop_early_cancels_the_other_chunks(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason="inline runs every chunk inside map() itself")
    gate, ledger = pool_factory.path("gate"), pool_factory.path("ledger")
    with pool_factory(1) as pool:
        assert pool.wait_ready(WAIT_S)
        items = [("0", "", ledger)] + [(str(i), gate, ledger) for i in range(1, 5)]
        assert _first_then_leave(pool, items) == "0"
        tasks.touch(gate)  # a chunk that was not cancelled would now record itself
        # One worker takes tasks in order: whatever was left would have run before this.
        assert pool.submit(tasks.record_and_return, ledger, "after").result(WAIT_S) == "after"
    assert read_ledger(ledger) == ["0", "after"]


def test_close_cancels_the_unfinished_chunks(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason="inline runs every chunk inside map() itself")
    gate, ledger = pool_factory.path("gate"), pool_factory.path("ledger")
    with pool_factory(1) as pool:
        assert pool.wait_ready(WAIT_S)
        results = pool.map(
            tasks.gated_record, [(str(i), gate, ledger) for i in range(4)], chunksize=1
        )
        results.close()
        tasks.touch(gate)
        assert pool.submit(tasks.record_and_return, ledger, "after").result(WAIT_S) == "after"
        assert list(results) == []
    assert read_ledger(ledger) == ["after"]


def test_bad_chunksize_is_a_value_error() -> None:
    with WorkerPool(1, backend="thread") as pool:
        for bad in (0, -1, 1.5, "big", True):
            with pytest.raises(ValueError):
                pool.map(tasks.square, range(3), chunksize=bad)  # type: ignore[arg-type]
        assert pool.stats().submitted == 0
