"""The queue (priority, then earliest deadline, then FIFO; start deadlines; max_queue) and
the scheduler (round-robin, least-busy, affinity).

Order is observed on a one-worker pool whose worker is held by blockers until the test
creates the release file: everything submitted meanwhile waits in the pool's queue, and the
worker records what it runs in a ledger file.
"""

from __future__ import annotations

import pytest

from workerbridge import DeadlineExceededError, QueueFullError, TaskError
from workerbridge.testing import tasks

from ._helpers import WAIT_S, read_ledger, results, saturate
from .conftest import CONCURRENT, PoolFactory

NO_QUEUE = "inline runs each task inside submit(): no task ever waits in the queue"
ONE_WORKER = "an inline pool has one worker (the caller)"


def test_higher_priority_first_then_submission_order(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    ledger = pool_factory.path("ledger")
    with pool_factory(1) as pool:
        saturate(pool, pool_factory.release)
        plan = [("a", 0), ("b", 5), ("c", -1), ("d", 5), ("e", 10), ("f", 0)]
        handles = [
            pool.submit(tasks.record_and_return, ledger, label, priority=priority)
            for label, priority in plan
        ]
        assert pool.stats().queue_depth == len(plan) + 1  # and one blocker
        tasks.touch(pool_factory.release)
        assert results(handles) == [label for label, _ in plan]
    assert read_ledger(ledger) == ["e", "b", "d", "a", "f", "c"]


def test_earliest_deadline_first_within_a_priority(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    ledger = pool_factory.path("ledger")
    with pool_factory(1) as pool:
        saturate(pool, pool_factory.release)
        # Deadlines far enough away that none passes while the worker is held.
        plan: list[tuple[str, int, float | None]] = [
            ("late", 0, 300.0),
            ("none", 0, None),
            ("early", 0, 100.0),
            ("mid", 0, 200.0),
            ("low-but-urgent", -1, 50.0),
            ("high-no-deadline", 1, None),
            ("none-2", 0, None),
        ]
        handles = [
            pool.submit(tasks.record_and_return, ledger, label, priority=prio, deadline=dl)
            for label, prio, dl in plan
        ]
        tasks.touch(pool_factory.release)
        results(handles)
    assert read_ledger(ledger) == [
        "high-no-deadline",
        "early",
        "mid",
        "late",
        "none",
        "none-2",
        "low-but-urgent",
    ]


def test_task_whose_deadline_passes_in_the_queue_never_runs(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    ledger = pool_factory.path("ledger")
    with pool_factory(1) as pool:
        saturate(pool, pool_factory.release)
        late = pool.submit(tasks.record_and_return, ledger, "late", deadline=0.2)
        error = late.exception(WAIT_S)  # fails while the worker is still held
        assert isinstance(error, DeadlineExceededError)
        assert isinstance(error, TaskError)
        assert error.task_id == late.id
        tasks.touch(pool_factory.release)
        assert pool.submit(tasks.record_and_return, ledger, "after").result(WAIT_S) == "after"
        assert pool.stats().failed == 1
    assert read_ledger(ledger) == ["after"]


def test_deadline_does_not_limit_a_task_that_started(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    started = pool_factory.path("started")
    with pool_factory(1) as pool:
        assert pool.wait_ready(WAIT_S)
        handle = pool.submit(tasks.block, pool_factory.release, started, deadline=0.2)
        tasks.wait_for_file(started)
        # Tasks behind it with a later deadline are the clock: once the one left in the
        # queue has failed, the running task's deadline has passed too.
        clocks = [pool.submit(tasks.noop, deadline=0.3)]
        while not pool.stats().queue_depth:
            clocks.append(pool.submit(tasks.noop, deadline=0.3))
        assert isinstance(clocks[-1].exception(WAIT_S), DeadlineExceededError)
        tasks.touch(pool_factory.release)
        assert handle.result(WAIT_S) == "released"
        for clock in clocks:  # those already sent to the worker are refused there
            assert isinstance(clock.exception(WAIT_S), DeadlineExceededError)


def test_full_queue_rejects_at_once(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=NO_QUEUE)
    with pool_factory(1, max_queue=3) as pool:
        _, queued_blocker = saturate(pool, pool_factory.release)  # 1 waiting
        waiting = [pool.submit(tasks.square, i) for i in range(2)]  # 3 waiting
        with pytest.raises(QueueFullError):
            pool.submit(tasks.square, 9)
        with pytest.raises(QueueFullError):  # map queues all its chunks or none
            pool.map(tasks.square, range(4), chunksize=1)
        assert pool.stats().queue_depth == 3
        tasks.touch(pool_factory.release)
        assert results(waiting) == [0, 1]
        assert queued_blocker.result(WAIT_S) == "released"
        assert pool.submit(tasks.square, 3).result(WAIT_S) == 9  # room again


def test_tasks_that_start_at_once_do_not_count_against_max_queue(
    pool_factory: PoolFactory,
) -> None:
    with pool_factory(1, max_queue=0) as pool:
        assert pool.wait_ready(WAIT_S)
        # The worker is idle: the task starts at once, nothing waits in the queue.
        assert pool.submit(tasks.add, 1, 2).result(WAIT_S) == 3


def test_round_robin_takes_workers_in_turn(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=ONE_WORKER)
    with pool_factory(2, strategy="round-robin") as pool:
        assert pool.wait_ready(WAIT_S)
        # One at a time, so every worker is idle at each choice.
        seen = [pool.submit(tasks.worker_identity).result(WAIT_S) for _ in range(4)]
        assert [w.completed for w in pool.stats().workers] == [2, 2]
    assert seen[0] != seen[1]
    assert seen[2:] == seen[:2]


def test_least_busy_avoids_the_busy_worker(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=ONE_WORKER)
    with pool_factory(2, strategy="least-busy") as pool:
        assert pool.wait_ready(WAIT_S)
        busy = pool.submit(tasks.block, pool_factory.release)
        seen = {pool.submit(tasks.worker_identity).result(WAIT_S) for _ in range(4)}
        assert len(seen) == 1
        by_load = sorted(pool.stats().workers, key=lambda w: w.running)
        assert [(w.running, w.completed) for w in by_load] == [(0, 4), (1, 0)]
        tasks.touch(pool_factory.release)
        assert busy.result(WAIT_S) == "released"


@pytest.mark.parametrize("strategy", ["round-robin", "least-busy"])
def test_affinity_keeps_a_key_on_one_worker(pool_factory: PoolFactory, strategy: str) -> None:
    pool_factory.require(*CONCURRENT, reason=ONE_WORKER)
    with pool_factory(2, strategy=strategy) as pool:
        assert pool.wait_ready(WAIT_S)
        one_by_one = [
            pool.submit(tasks.worker_identity, affinity="a").result(WAIT_S) for _ in range(4)
        ]
        at_once = results([pool.submit(tasks.worker_identity, affinity=("b", 1)) for _ in range(8)])
    assert len(set(one_by_one)) == 1
    assert len(set(at_once)) == 1


def test_affinity_waits_for_its_busy_worker(pool_factory: PoolFactory) -> None:
    pool_factory.require(*CONCURRENT, reason=ONE_WORKER)
    ledger = pool_factory.path("ledger")
    with pool_factory(2) as pool:
        assert pool.wait_ready(WAIT_S)
        held = pool.submit(tasks.block, pool_factory.release, affinity="k")
        same_key = [
            pool.submit(tasks.record_and_return, ledger, f"k{i}", affinity="k") for i in range(3)
        ]
        # The other worker is idle, yet the key's tasks wait for the busy one.
        other = pool.submit(tasks.record_and_return, ledger, "free")
        assert other.result(WAIT_S) == "free"
        assert read_ledger(ledger) == ["free"]
        tasks.touch(pool_factory.release)
        assert held.result(WAIT_S) == "released"
        assert results(same_key) == ["k0", "k1", "k2"]
        busy_worker = [w for w in pool.stats().workers if w.completed == 4]
        assert len(busy_worker) == 1  # the held task and the three that followed its key
