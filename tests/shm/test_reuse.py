"""Blocks come from a reused arena: once warm, calls create no new segment, neither in the
pool's process (argument blocks) nor in the workers (result blocks). And reuse never mixes
up contents, even with many large calls in flight at once."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from workerbridge import WorkerPool
from workerbridge._transport import _shm
from workerbridge.testing import tasks
from workerbridge.testing._shm_tasks import describe, make

from ._util import MIB, START_METHODS, WAIT_S, content, data_names, worker_pids
from .conftest import PoolMaker


def _calls(pool: WorkerPool, values: list[Any]) -> Callable[[], None]:
    """One round: every worker echoes a value (submitted together, so each worker gets
    one), the results are checked."""

    def run() -> None:
        handles = [pool.submit(tasks.echo, v) for v in values]
        for handle, value in zip(handles, values, strict=True):
            assert content(describe(handle.result(WAIT_S))) == content(describe(value))

    return run


@pytest.mark.parametrize("method", START_METHODS)
def test_warm_arena_creates_no_segments(
    make_pool: PoolMaker, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = make_pool(2, start_method=method)
    assert pool.wait_ready(WAIT_S)
    workers = worker_pids(pool)
    pids = [os.getpid(), *workers]
    # Two size classes (1 MiB and 4 MiB blocks), as arguments and as results.
    small_round = _calls(pool, [make("bytes", MIB - 1, 1), make("float64", MIB - 8, 2)])
    large_round = _calls(pool, [make("float64", 3 * MIB, 3), make("bytes", 3 * MIB, 4)])
    # Warm-up long enough to see the most blocks ever in use at once (a round's blocks
    # can still be in use while the next round starts on a loaded machine).
    for _ in range(10):
        small_round()
        large_round()
    warm = data_names(pids)
    for pid in workers:
        assert any(n.startswith(f"wb-{pid}-r-") for n in warm), "a worker was never used"
    assert any(n.startswith(f"wb-{os.getpid()}-a-") for n in warm)

    created: list[int] = []
    real_create = _shm.Segment.create.__func__  # type: ignore[attr-defined]

    def counting_create(cls: type[_shm.Segment], size: int, tag: str = "") -> _shm.Segment:
        created.append(size)
        segment: _shm.Segment = real_create(cls, size, tag)
        return segment

    monkeypatch.setattr(_shm.Segment, "create", classmethod(counting_create))
    for _ in range(10):
        small_round()
        large_round()
        assert data_names(pids) == warm  # the same blocks, nothing new in any process
    assert created == [], "the pool created segments once warm"
    assert worker_pids(pool) == workers  # the same workers all along


def test_reused_blocks_never_mix_up_contents(make_pool: PoolMaker) -> None:
    """Many large calls in flight at once on two workers, each with its own content, round
    after round over the same blocks: every task sees its own argument and every caller
    gets its own result."""
    pool = make_pool(2)
    for round_ in range(3):
        values = [make("bytes", MIB + i, 100 * round_ + i) for i in range(16)]
        seen = [pool.submit(describe, v) for v in values]
        echoed = [pool.submit(tasks.echo, v) for v in values]
        made = [pool.submit(make, "float64", 2 * MIB, 100 * round_ + i) for i in range(16)]
        for i, value in enumerate(values):
            assert content(seen[i].result(WAIT_S)) == content(describe(value)), (round_, i)
            assert echoed[i].result(WAIT_S) == value, (round_, i)
            got = made[i].result(WAIT_S)
            assert (
                describe(got)["sha256"]
                == describe(make("float64", 2 * MIB, 100 * round_ + i))["sha256"]
            ), (round_, i)
