"""TaskQueue: priority, then start deadline, then FIFO; lazy removal; a fake clock.

The queue never reads a clock: ``now`` is a plain float the test passes in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from workerbridge._pool._queue import QueueEntry, TaskQueue


def items(entries: list[QueueEntry[str]]) -> list[str]:
    return [e.item for e in entries]


def pop_all(queue: TaskQueue[str]) -> list[str]:
    out = []
    while (entry := queue.pop()) is not None:
        out.append(entry.item)
    return out


# --------------------------------------------------------------------------- ordering


def test_empty_queue() -> None:
    queue: TaskQueue[str] = TaskQueue()
    assert len(queue) == 0
    assert queue.pop() is None
    assert queue.next_deadline() is None
    assert queue.pop_expired(1e9) == []
    assert queue.drain() == []


def test_fifo_within_one_priority() -> None:
    queue: TaskQueue[str] = TaskQueue()
    for name in "abcde":
        queue.push(name)
    assert len(queue) == 5
    assert pop_all(queue) == list("abcde")
    assert len(queue) == 0


def test_higher_priority_leaves_first() -> None:
    queue: TaskQueue[str] = TaskQueue()
    queue.push("low", priority=-1)
    queue.push("normal")
    queue.push("high", priority=5)
    queue.push("normal2")
    queue.push("higher", priority=10)
    assert pop_all(queue) == ["higher", "high", "normal", "normal2", "low"]


def test_within_a_priority_earliest_deadline_first_and_none_last() -> None:
    queue: TaskQueue[str] = TaskQueue()
    queue.push("none-1")
    queue.push("late", deadline=30.0)
    queue.push("early", deadline=10.0)
    queue.push("none-2")
    queue.push("mid", deadline=20.0)
    queue.push("early-2", deadline=10.0)
    assert pop_all(queue) == ["early", "early-2", "mid", "late", "none-1", "none-2"]


def test_priority_beats_deadline() -> None:
    queue: TaskQueue[str] = TaskQueue()
    queue.push("urgent-but-low", priority=0, deadline=1.0)
    queue.push("important-no-deadline", priority=1)
    assert pop_all(queue) == ["important-no-deadline", "urgent-but-low"]


def test_entries_remember_what_they_were_pushed_with() -> None:
    queue: TaskQueue[str] = TaskQueue()
    first = queue.push("a", priority=3, deadline=7.5)
    second = queue.push("b")
    assert (first.item, first.priority, first.deadline, first.alive) == ("a", 3, 7.5, True)
    assert second.order > first.order
    assert queue.pop() is first
    assert not first.alive


# ------------------------------------------------------------------------ removal


def test_remove_is_lazy_and_skipped_on_pop() -> None:
    queue: TaskQueue[str] = TaskQueue()
    a, b, c = queue.push("a"), queue.push("b"), queue.push("c")
    assert queue.remove(a) is True
    assert len(queue) == 2
    assert queue.remove(a) is False  # already gone
    assert len(queue) == 2
    assert queue.pop() is b
    assert queue.remove(b) is False  # already left through pop
    assert queue.remove(c) is True
    assert len(queue) == 0
    assert queue.pop() is None


def test_removing_the_last_entry_empties_everything() -> None:
    queue: TaskQueue[str] = TaskQueue()
    entries = [queue.push(str(i), deadline=float(i)) for i in range(5)]
    for entry in entries:
        queue.remove(entry)
    assert len(queue) == 0
    assert queue.next_deadline() is None
    assert queue.pop_expired(100.0) == []
    assert queue.pop() is None
    queue.push("again", deadline=3.0)
    assert queue.next_deadline() == 3.0
    assert items(queue.drain()) == ["again"]


def test_next_deadline_skips_removed_and_popped_entries() -> None:
    queue: TaskQueue[str] = TaskQueue()
    first = queue.push("first", deadline=5.0)
    queue.push("no-deadline")
    second = queue.push("second", deadline=8.0)
    queue.push("third", deadline=12.0)
    assert queue.next_deadline() == 5.0
    queue.remove(first)
    assert queue.next_deadline() == 8.0
    assert queue.pop() is second  # earliest deadline leaves first
    assert queue.next_deadline() == 12.0
    assert len(queue) == 2


# ------------------------------------------------------------------------ reinsert


def test_reinsert_puts_an_entry_back_in_its_original_place() -> None:
    queue: TaskQueue[str] = TaskQueue()
    a = queue.push("a")
    queue.push("b")
    queue.push("c")
    popped = queue.pop()
    assert popped is a
    queue.push("d")
    queue.reinsert(a)
    assert a.alive
    assert len(queue) == 4
    assert pop_all(queue) == ["a", "b", "c", "d"]


def test_reinsert_keeps_priority_and_deadline() -> None:
    queue: TaskQueue[str] = TaskQueue()
    held = queue.push("held", priority=2, deadline=50.0)
    queue.push("later-same-priority", priority=2, deadline=50.0)
    assert queue.pop() is held
    queue.push("newcomer-lower", priority=1, deadline=1.0)
    queue.reinsert(held)
    assert queue.next_deadline() == 1.0
    assert [e.item for e in queue.pop_expired(51.0)] == [
        "newcomer-lower",
        "held",
        "later-same-priority",
    ]


def test_reinserted_entry_can_be_removed_and_reinserted_again() -> None:
    queue: TaskQueue[str] = TaskQueue()
    a = queue.push("a", deadline=4.0)
    b = queue.push("b", deadline=6.0)
    for _ in range(3):
        assert queue.pop() is a
        queue.reinsert(a)
    assert queue.remove(a)
    assert len(queue) == 1
    assert queue.next_deadline() == 6.0
    assert queue.pop_expired(10.0) == [b]
    assert len(queue) == 0


def test_push_with_an_explicit_order_takes_that_place() -> None:
    queue: TaskQueue[str] = TaskQueue()
    for name in "abc":
        queue.push(name)
    queue.push("last", order=10**9)
    queue.push("first", order=-1)
    assert pop_all(queue) == ["first", "a", "b", "c", "last"]


def test_an_explicit_order_puts_a_new_entry_back_in_line() -> None:
    queue: TaskQueue[str] = TaskQueue()
    queue.push("a")
    old = queue.push("b")
    queue.push("c")
    popped = pop_all(queue)
    assert popped == ["a", "b", "c"]
    for name in "ac":
        queue.push(name)
    queue.push("b", order=old.order)  # no stale tuple of `old` remains: it had no deadline
    assert pop_all(queue) == ["b", "a", "c"]


@pytest.mark.parametrize("leave", ["pop", "remove"])
def test_push_back_with_the_old_order_after_the_entry_left(leave: str) -> None:
    """What the push docstring offers: "pass an item's old order to put it back in its
    original place" (a retry, or a task returned from a dead worker)."""
    queue: TaskQueue[str] = TaskQueue()
    old = queue.push("task", priority=1, deadline=9.0)
    keep = queue.push("other", priority=1, deadline=9.0)  # keeps the queue non-empty
    if leave == "pop":
        assert queue.pop() is old
    else:
        assert queue.remove(old)
    again = queue.push("task", priority=1, deadline=9.0, order=old.order)
    assert queue.pop() is again
    assert queue.pop() is keep


# --------------------------------------------------------------------- deadlines


def test_pop_expired_with_a_fake_clock() -> None:
    queue: TaskQueue[str] = TaskQueue()
    queue.push("t10", deadline=10.0)
    queue.push("t20", deadline=20.0)
    queue.push("never")
    queue.push("t15-high", priority=9, deadline=15.0)
    queue.push("t10-b", deadline=10.0)

    assert queue.pop_expired(now=5.0) == []
    assert queue.pop_expired(now=10.0) == []  # strictly before now
    assert items(queue.pop_expired(now=10.5)) == ["t10", "t10-b"]
    assert len(queue) == 3
    assert queue.next_deadline() == 15.0
    assert items(queue.pop_expired(now=1e9)) == ["t15-high", "t20"]
    assert items(queue.drain()) == ["never"]


def test_pop_expired_skips_removed_and_popped_entries() -> None:
    queue: TaskQueue[str] = TaskQueue()
    gone = queue.push("removed", deadline=1.0)
    ran = queue.push("popped", priority=1, deadline=2.0)
    waiting = queue.push("waiting", deadline=3.0)
    queue.remove(gone)
    assert queue.pop() is ran
    assert queue.pop_expired(100.0) == [waiting]
    assert len(queue) == 0
    assert not waiting.alive


def test_expired_entries_do_not_come_out_of_pop() -> None:
    queue: TaskQueue[str] = TaskQueue()
    queue.push("a", deadline=1.0)
    queue.push("b", deadline=2.0)
    queue.pop_expired(1.5)
    assert pop_all(queue) == ["b"]


@pytest.mark.parametrize("deadline", [-math.inf, -1.0, 0.0, 1e-300, 1e308, math.inf])
def test_extreme_deadlines(deadline: float) -> None:
    queue: TaskQueue[str] = TaskQueue()
    queue.push("x", deadline=deadline)
    queue.push("none")
    assert queue.next_deadline() == deadline
    assert pop_all(queue)[0] == "x"


# ------------------------------------------------------------------------- drain


def test_drain_returns_everything_in_leaving_order() -> None:
    queue: TaskQueue[str] = TaskQueue()
    queue.push("c", deadline=3.0)
    gone = queue.push("gone")
    queue.push("a", priority=1)
    queue.push("d")
    queue.push("b", deadline=2.0)
    queue.remove(gone)
    drained = queue.drain()
    assert items(drained) == ["a", "b", "c", "d"]
    assert not any(e.alive for e in drained)
    assert len(queue) == 0
    assert queue.next_deadline() is None
    assert queue.pop() is None


# ------------------------------------------------------------ against a reference


@dataclass
class Model:
    """The obvious implementation: a list, sorted on every question."""

    alive: list[QueueEntry[int]] = field(default_factory=list)

    @staticmethod
    def key(entry: QueueEntry[int]) -> tuple[int, float, int]:
        deadline = math.inf if entry.deadline is None else entry.deadline
        return (-entry.priority, deadline, entry.order)

    def ordered(self) -> list[QueueEntry[int]]:
        return sorted(self.alive, key=self.key)

    def take(self, entry: QueueEntry[int]) -> None:
        self.alive = [e for e in self.alive if e is not entry]


priorities = st.integers(min_value=-2, max_value=2)
# Few distinct deadlines, so ties between deadlines are common.
deadlines = st.none() | st.sampled_from([0.0, 1.0, 1.5, 2.0, 5.0, 9.0])
clock_steps = st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0])


class QueueMachine(RuleBasedStateMachine):
    """Random interleavings of every operation, checked against ``Model``."""

    entries = Bundle("entries")
    popped = Bundle("popped")

    def __init__(self) -> None:
        super().__init__()
        self.queue: TaskQueue[int] = TaskQueue()
        self.model = Model()
        self.counter = 0
        self.now = 0.0

    @rule(target=entries, priority=priorities, deadline=deadlines)
    def push(self, priority: int, deadline: float | None) -> QueueEntry[int]:
        self.counter += 1
        entry = self.queue.push(self.counter, priority, deadline)
        self.model.alive.append(entry)
        return entry

    @rule(target=popped)
    def pop(self) -> QueueEntry[int] | None:
        ordered = self.model.ordered()
        entry = self.queue.pop()
        if not ordered:
            assert entry is None
            return None
        assert entry is ordered[0]
        assert not entry.alive
        self.model.take(entry)
        return entry

    @rule(entry=entries)
    def remove(self, entry: QueueEntry[int]) -> None:
        expected = any(e is entry for e in self.model.alive)
        assert self.queue.remove(entry) is expected
        self.model.take(entry)

    @rule(entry=consumes(popped))
    def reinsert(self, entry: QueueEntry[int] | None) -> None:
        if entry is None or entry.alive:
            return
        self.queue.reinsert(entry)
        self.model.alive.append(entry)

    @rule(step=clock_steps)
    def pop_expired(self, step: float) -> None:
        self.now += step
        expected = sorted(
            (e for e in self.model.alive if e.deadline is not None and e.deadline < self.now),
            key=lambda e: (e.deadline, e.order),
        )
        got = self.queue.pop_expired(self.now)
        assert [e.item for e in got] == [e.item for e in expected]
        for entry in got:
            assert not entry.alive
            self.model.take(entry)

    @precondition(lambda self: len(self.model.alive) < 3)
    @rule()
    def drain(self) -> None:
        got = self.queue.drain()
        assert [e.item for e in got] == [e.item for e in self.model.ordered()]
        self.model.alive.clear()

    @invariant()
    def length_matches(self) -> None:
        assert len(self.queue) == len(self.model.alive)

    @invariant()
    def next_deadline_matches(self) -> None:
        pending = [e.deadline for e in self.model.alive if e.deadline is not None]
        assert self.queue.next_deadline() == (min(pending) if pending else None)

    @invariant()
    def alive_flags_match(self) -> None:
        assert all(e.alive for e in self.model.alive)


QueueMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
test_queue_matches_a_sorted_list = QueueMachine.TestCase


@settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    specs=st.lists(st.tuples(priorities, deadlines, st.booleans()), max_size=40),
    with_removals=st.booleans(),
)
def test_pop_order_is_the_sorted_order(
    specs: list[tuple[int, float | None, bool]], with_removals: bool
) -> None:
    queue: TaskQueue[int] = TaskQueue()
    kept = []
    for i, (priority, deadline, drop) in enumerate(specs):
        entry = queue.push(i, priority, deadline)
        if with_removals and drop:
            queue.remove(entry)
        else:
            kept.append((-priority, math.inf if deadline is None else deadline, i))
    assert len(queue) == len(kept)
    assert [e.item for e in queue.drain()] == [k[2] for k in sorted(kept)]
