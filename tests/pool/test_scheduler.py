"""assign(): which queued task goes to which worker. Sans-I/O: fake workers, no pool."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from workerbridge._pool._queue import QueueEntry, TaskQueue
from workerbridge._pool._scheduler import STRATEGIES, LeastBusy, RoundRobin, Strategy, assign


@dataclass
class FakeWorker:
    worker_index: int
    capacity: int = 1
    load: int = 0

    @property
    def has_room(self) -> bool:
        return self.load < self.capacity

    def reserve(self) -> None:
        assert self.has_room, "assign() reserved a worker without room"
        self.load += 1


@dataclass(frozen=True)
class FakeTask:
    name: str
    affinity: Hashable | None = None


def workers(*capacities: int) -> list[FakeWorker]:
    return [FakeWorker(i, c) for i, c in enumerate(capacities)]


def queue_of(*tasks: FakeTask | str) -> TaskQueue[FakeTask]:
    queue: TaskQueue[FakeTask] = TaskQueue()
    for task in tasks:
        queue.push(FakeTask(task) if isinstance(task, str) else task)
    return queue


def names(pairs: Sequence[tuple[QueueEntry[FakeTask], FakeWorker]]) -> list[tuple[str, int]]:
    return [(entry.item.name, worker.worker_index) for entry, worker in pairs]


def run(
    queue: TaskQueue[FakeTask],
    pool: list[FakeWorker],
    strategy: Strategy[FakeWorker] | None = None,
    affinity: dict[Hashable, FakeWorker] | None = None,
) -> list[tuple[str, int]]:
    return names(
        assign(
            queue,
            pool,
            strategy if strategy is not None else LeastBusy(),
            affinity if affinity is not None else {},
        )
    )


def finish(worker: FakeWorker, n: int = 1) -> None:
    worker.load -= n


# ---------------------------------------------------------------------- strategies


def test_strategy_names() -> None:
    assert set(STRATEGIES) == {"round-robin", "least-busy"}
    assert STRATEGIES["round-robin"] is RoundRobin
    assert STRATEGIES["least-busy"] is LeastBusy


def test_round_robin_takes_each_worker_in_turn() -> None:
    pool = workers(10, 10, 10)
    rr: RoundRobin[FakeWorker] = RoundRobin()
    assert [rr.choose(pool).worker_index for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_round_robin_skips_workers_that_are_not_candidates() -> None:
    pool = workers(10, 10, 10, 10)
    rr: RoundRobin[FakeWorker] = RoundRobin()
    assert rr.choose(pool).worker_index == 0
    assert rr.choose([pool[0], pool[2], pool[3]]).worker_index == 2
    assert rr.choose([pool[0], pool[1]]).worker_index == 0  # wraps around
    assert rr.choose(pool).worker_index == 1


def test_round_robin_follows_worker_index_not_list_position() -> None:
    pool = list(reversed(workers(10, 10, 10)))
    rr: RoundRobin[FakeWorker] = RoundRobin()
    assert [rr.choose(pool).worker_index for _ in range(4)] == [0, 1, 2, 0]


def test_least_busy_picks_the_lowest_load_then_the_lowest_index() -> None:
    pool = workers(10, 10, 10)
    lb: LeastBusy[FakeWorker] = LeastBusy()
    assert lb.choose(pool) is pool[0]
    pool[0].load = 2
    pool[1].load = 1
    pool[2].load = 1
    assert lb.choose(pool) is pool[1]
    pool[1].load = 3
    assert lb.choose(pool) is pool[2]
    assert lb.choose(list(reversed(pool))) is pool[2]


# ------------------------------------------------------------------------- assign


def test_assign_fills_workers_with_room_in_queue_order() -> None:
    queue = queue_of("a", "b", "c", "d")
    pool = workers(1, 1)
    assert run(queue, pool) == [("a", 0), ("b", 1)]
    assert len(queue) == 2
    assert [w.load for w in pool] == [1, 1]


def test_assign_follows_priority_order() -> None:
    queue: TaskQueue[FakeTask] = TaskQueue()
    queue.push(FakeTask("low"), priority=-1)
    queue.push(FakeTask("high"), priority=3)
    queue.push(FakeTask("normal"))
    assert run(queue, workers(1, 1)) == [("high", 0), ("normal", 1)]
    assert [e.item.name for e in queue.drain()] == ["low"]


def test_no_assignment_when_no_worker_has_room() -> None:
    queue = queue_of("a", "b")
    pool = workers(1, 2)
    pool[0].load = 1
    pool[1].load = 2
    assert run(queue, pool) == []
    assert len(queue) == 2
    assert [w.load for w in pool] == [1, 2]


def test_no_workers_at_all() -> None:
    queue = queue_of("a")
    assert run(queue, []) == []
    assert len(queue) == 1


def test_empty_queue() -> None:
    pool = workers(1)
    assert run(queue_of(), pool) == []
    assert pool[0].load == 0


def test_round_robin_assignment_spreads_tasks() -> None:
    pool = workers(2, 2, 2)
    queue = queue_of(*"abcdefgh")
    assert run(queue, pool, RoundRobin()) == [
        ("a", 0),
        ("b", 1),
        ("c", 2),
        ("d", 0),
        ("e", 1),
        ("f", 2),
    ]
    assert len(queue) == 2


def test_round_robin_skips_full_workers() -> None:
    pool = workers(3, 1, 3)
    pool[1].load = 1
    assert run(queue_of(*"abcd"), pool, RoundRobin()) == [("a", 0), ("b", 2), ("c", 0), ("d", 2)]


def test_round_robin_remembers_its_place_across_calls() -> None:
    pool = workers(5, 5, 5)
    rr: RoundRobin[FakeWorker] = RoundRobin()
    assert run(queue_of("a"), pool, rr) == [("a", 0)]
    assert run(queue_of("b"), pool, rr) == [("b", 1)]
    assert run(queue_of("c", "d"), pool, rr) == [("c", 2), ("d", 0)]


def test_least_busy_assignment_balances_load() -> None:
    pool = workers(4, 4, 4)
    pool[0].load = 2
    assert run(queue_of(*"abcde"), pool, LeastBusy()) == [
        ("a", 1),
        ("b", 2),
        ("c", 1),
        ("d", 2),
        ("e", 0),
    ]
    assert [w.load for w in pool] == [3, 2, 2]


def test_a_worker_that_fills_up_drops_out() -> None:
    pool = workers(1, 3)
    assert run(queue_of(*"abcde"), pool, RoundRobin()) == [
        ("a", 0),
        ("b", 1),
        ("c", 1),
        ("d", 1),
    ]


# ------------------------------------------------------------------------ affinity


def test_same_key_goes_to_the_same_worker() -> None:
    pool = workers(5, 5, 5)
    affinity: dict[Hashable, FakeWorker] = {}
    queue = queue_of(FakeTask("a1", "A"), FakeTask("b1", "B"), FakeTask("a2", "A"), "free")
    assert run(queue, pool, RoundRobin(), affinity) == [
        ("a1", 0),
        ("b1", 1),
        ("a2", 0),
        ("free", 2),
    ]
    assert affinity == {"A": pool[0], "B": pool[1]}
    # Later calls keep the binding, whatever the strategy would choose.
    queue = queue_of(FakeTask("b2", "B"), FakeTask("a3", "A"))
    assert run(queue, pool, LeastBusy(), affinity) == [("b2", 1), ("a3", 0)]


def test_binding_is_made_by_the_strategy_the_first_time() -> None:
    pool = workers(5, 5)
    pool[0].load = 3
    affinity: dict[Hashable, FakeWorker] = {}
    assert run(queue_of(FakeTask("k", "key")), pool, LeastBusy(), affinity) == [("k", 1)]
    assert affinity["key"] is pool[1]


def test_task_waits_for_its_full_worker_while_others_proceed() -> None:
    pool = workers(1, 2)
    affinity: dict[Hashable, FakeWorker] = {"A": pool[0]}
    pool[0].load = 1  # the bound worker is busy
    queue = queue_of(FakeTask("a1", "A"), "x", FakeTask("a2", "A"), "y", "z")
    assert run(queue, pool, LeastBusy(), affinity) == [("x", 1), ("y", 1)]
    # The held tasks kept their places: they are first in line, in their old order.
    assert [e.item.name for e in _peek_all(queue)] == ["a1", "a2", "z"]


def test_held_task_goes_first_once_its_worker_frees_up() -> None:
    pool = workers(1, 1)
    affinity: dict[Hashable, FakeWorker] = {"A": pool[0]}
    pool[0].load = 1
    queue = queue_of(FakeTask("a1", "A"), "x", "y")
    assert run(queue, pool, LeastBusy(), affinity) == [("x", 1)]
    finish(pool[0])
    finish(pool[1])
    assert run(queue, pool, LeastBusy(), affinity) == [("a1", 0), ("y", 1)]
    assert len(queue) == 0


def test_held_task_keeps_its_deadline_place() -> None:
    pool = workers(1, 1)
    affinity: dict[Hashable, FakeWorker] = {"A": pool[0]}
    pool[0].load = 1
    queue: TaskQueue[FakeTask] = TaskQueue()
    held = queue.push(FakeTask("a", "A"), deadline=5.0)
    queue.push(FakeTask("b"), deadline=9.0)
    queue.push(FakeTask("c"), deadline=7.0)
    assert run(queue, pool, LeastBusy(), affinity) == [("c", 1)]
    assert held.alive
    assert queue.next_deadline() == 5.0
    assert [e.item.name for e in queue.pop_expired(8.0)] == ["a"]
    assert len(queue) == 1


def test_all_queued_tasks_bound_to_a_full_worker() -> None:
    pool = workers(1, 1)
    affinity: dict[Hashable, FakeWorker] = {"A": pool[0]}
    pool[0].load = 1
    queue = queue_of(*(FakeTask(f"a{i}", "A") for i in range(4)))
    assert run(queue, pool, LeastBusy(), affinity) == []
    assert len(queue) == 4
    assert pool[1].load == 0
    assert [e.item.name for e in _peek_all(queue)] == ["a0", "a1", "a2", "a3"]


def test_bound_worker_fills_up_during_one_assign() -> None:
    pool = workers(2, 5)
    affinity: dict[Hashable, FakeWorker] = {}
    queue = queue_of(*(FakeTask(f"a{i}", "A") for i in range(4)), "x")
    assert run(queue, pool, RoundRobin(), affinity) == [("a0", 0), ("a1", 0), ("x", 1)]
    assert [e.item.name for e in _peek_all(queue)] == ["a2", "a3"]


def _peek_all(queue: TaskQueue[FakeTask]) -> list[QueueEntry[FakeTask]]:
    """Everything in the queue in leaving order, leaving the queue as it was."""
    entries = []
    while (entry := queue.pop()) is not None:
        entries.append(entry)
    for entry in entries:
        queue.reinsert(entry)
    return entries


# ----------------------------------------------------------------- properties

task_specs = st.lists(
    st.tuples(st.integers(-1, 1), st.none() | st.sampled_from(["A", "B", "C"])), max_size=25
)


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    specs=task_specs,
    capacities=st.lists(st.integers(0, 3), min_size=1, max_size=4),
    loads=st.lists(st.integers(0, 3), min_size=4, max_size=4),
    round_robin=st.booleans(),
)
def test_assign_invariants(
    specs: list[tuple[int, str | None]],
    capacities: list[int],
    loads: list[int],
    round_robin: bool,
) -> None:
    pool = [
        FakeWorker(i, c, min(load, c))
        for i, (c, load) in enumerate(zip(capacities, loads, strict=False))
    ]
    before = {w.worker_index: w.load for w in pool}
    queue: TaskQueue[FakeTask] = TaskQueue()
    entries = [
        queue.push(FakeTask(str(i), key), priority) for i, (priority, key) in enumerate(specs)
    ]
    affinity: dict[Hashable, FakeWorker] = {}
    strategy: Strategy[FakeWorker] = RoundRobin() if round_robin else LeastBusy()
    pairs = assign(queue, pool, strategy, affinity)

    assigned = [entry for entry, _ in pairs]
    # Nothing lost or duplicated; what was assigned left the queue, the rest is queued.
    assert len({id(e) for e in assigned}) == len(assigned)
    assert len(queue) + len(assigned) == len(specs)
    assert all(not e.alive for e in assigned)
    assert sum(e.alive for e in entries) == len(queue)
    # Workers got exactly what they were reserved for, never beyond capacity.
    for worker in pool:
        got = sum(1 for _, w in pairs if w is worker)
        assert worker.load == before[worker.worker_index] + got <= worker.capacity
    # One worker per affinity key.
    for entry, worker in pairs:
        key = entry.item.affinity
        if key is not None:
            assert affinity[key] is worker
    # Leaving order follows queue order.
    order = sorted(entries, key=lambda e: (-e.priority, e.order))
    ranks = {id(e): i for i, e in enumerate(order)}
    assert [ranks[id(e)] for e in assigned] == sorted(ranks[id(e)] for e in assigned)
    # Tasks stay queued only while some worker they could use has room... or none has.
    if len(queue):
        waiting = [e for e in order if e.alive]
        for entry in waiting:
            key = entry.item.affinity
            if key is not None and key in affinity:
                assert not affinity[key].has_room
            else:
                assert not any(w.has_room for w in pool)


@pytest.mark.parametrize("strategy", [RoundRobin, LeastBusy])
def test_assign_never_calls_choose_without_candidates(strategy: type) -> None:
    calls: list[int] = []

    class Spy:
        def __init__(self) -> None:
            self.inner = strategy()

        def choose(self, candidates: Sequence[FakeWorker]) -> FakeWorker:
            assert candidates
            assert all(w.has_room for w in candidates)
            calls.append(len(candidates))
            chosen: FakeWorker = self.inner.choose(candidates)
            return chosen

    pool = workers(1, 2, 1)
    assert len(run(queue_of(*"abcdef"), pool, Spy())) == 4
    assert calls == [3, 2, 2, 1]
