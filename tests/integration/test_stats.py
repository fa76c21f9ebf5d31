"""``stats()`` snapshots and ``repr(pool)``."""

from __future__ import annotations

import os

from workerbridge import PoolStats
from workerbridge.testing import tasks

from ._helpers import WAIT_S, results, saturate
from .conftest import CONCURRENT, PoolFactory


def _check_percentiles(stats: PoolStats, count: int) -> None:
    for name, pct in (("wait", stats.wait_time), ("run", stats.run_time)):
        assert pct.count == count, name
        assert 0.0 <= pct.p50 <= pct.p90 <= pct.p99 <= pct.max, name


def test_counts_after_successes_and_failures(pool_factory: PoolFactory) -> None:
    with pool_factory(2) as pool:
        ok = [pool.submit(tasks.square, i) for i in range(6)]
        bad = [pool.submit(tasks.fail) for _ in range(2)]
        assert results(ok) == [i * i for i in range(6)]
        for handle in bad:
            handle.exception(WAIT_S)
        stats = pool.stats()
    assert stats.backend == pool_factory.backend
    assert stats.state == "running"
    assert stats.submitted == 8
    assert stats.completed == 6
    assert stats.failed == 2
    assert stats.cancelled == 0
    assert stats.restarts == 0
    assert stats.queue_depth == 0
    assert stats.running == 0
    assert sum(w.completed for w in stats.workers) == 6
    assert sum(w.failed for w in stats.workers) == 2
    assert 0.0 <= stats.utilization <= 1.0
    _check_percentiles(stats, 8)


def test_worker_stats_describe_each_worker(pool_factory: PoolFactory) -> None:
    with pool_factory(2) as pool:
        assert pool.wait_ready(WAIT_S)
        workers = pool.stats().workers
    assert [w.index for w in workers] == list(range(pool.size))
    assert all(w.state == "ready" for w in workers)
    assert all(w.running == 0 and w.restarts == 0 for w in workers)
    pids = [w.pid for w in workers]
    if pool_factory.is_process:
        assert len(set(pids)) == len(pids)
        assert os.getpid() not in pids
    else:
        assert pids == [os.getpid()] * len(pids)


def test_stats_and_repr_while_busy(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason="inline tasks finish inside submit(); none queue")
    pool = pool_factory(1)
    sent, queued_blocker = saturate(pool, pool_factory.release)
    extra = [pool.submit(tasks.noop) for _ in range(3)]
    busy = pool.stats()
    assert busy.queue_depth == 4
    assert busy.running == len(sent)
    assert busy.workers[0].running == len(sent)
    text = repr(pool)
    assert f"backend={pool_factory.backend}" in text
    assert "workers=1/1" in text
    assert f"running={len(sent)}" in text
    assert "queued=4" in text
    tasks.touch(pool_factory.release)
    assert results([*sent, queued_blocker]) == ["released"] * (len(sent) + 1)
    results(extra)
    idle = pool.stats()
    assert (idle.queue_depth, idle.running, idle.completed) == (0, 0, len(sent) + 4)
    assert idle.utilization > 0.0  # the blockers kept the worker busy
    assert idle.wait_time.max > 0.0
    _check_percentiles(idle, len(sent) + 4)
    assert "running=0" in repr(pool)
    assert "queued=0" in repr(pool)
    pool.close()
    assert pool.stats().state == "closed"
    assert "closed" in repr(pool)


def test_cancelled_tasks_are_counted(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason="inline tasks finish inside submit(); none queue")
    with pool_factory(1) as pool:
        saturate(pool, pool_factory.release)
        doomed = [pool.submit(tasks.noop) for _ in range(3)]
        for handle in doomed:
            handle.cancel()
        stats = pool.stats()
        assert stats.cancelled == 3
        assert stats.failed == 0
        tasks.touch(pool_factory.release)
