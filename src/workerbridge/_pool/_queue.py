"""The pool's wait queue: priority first, then the earliest start deadline, then FIFO.

Pure data structure (no clock, no threads): the pool passes ``now`` in, so tests drive it
with a fake clock. Removal is lazy (an entry is marked dead and skipped when it surfaces),
which keeps ``cancel`` O(1) and ``pop`` amortised O(log n).
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Generic, TypeVar

__all__ = ["QueueEntry", "TaskQueue"]

T = TypeVar("T")


class QueueEntry(Generic[T]):
    """A place in the queue; keep it to ``remove`` the item later."""

    __slots__ = ("alive", "deadline", "item", "order", "priority")

    def __init__(self, item: T, priority: int, deadline: float | None, order: int) -> None:
        self.item = item
        self.priority = priority
        self.deadline = deadline
        self.order = order
        self.alive = True


class TaskQueue(Generic[T]):
    """Priority queue of waiting items with start deadlines."""

    def __init__(self) -> None:
        # Heap items end with a unique push number before the entry, so two items never
        # compare their entries (an entry put back keeps its order; stale items of the
        # same entry may still sit in the heaps until they surface).
        self._heap: list[tuple[int, float, int, int, QueueEntry[T]]] = []
        self._deadlines: list[tuple[float, int, int, QueueEntry[T]]] = []
        self._pushes = itertools.count()
        self._order = itertools.count()
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def push(
        self, item: T, priority: int = 0, deadline: float | None = None, order: int | None = None
    ) -> QueueEntry[T]:
        """Add ``item``. Higher ``priority`` leaves first; among equals the earliest
        ``deadline`` (None counts as never), then the lowest ``order`` (submission order;
        pass an item's old order to put it back in its original place)."""
        if order is None:
            order = next(self._order)
        entry = QueueEntry(item, priority, deadline, order)
        self._insert(entry)
        return entry

    def reinsert(self, entry: QueueEntry[T]) -> None:
        """Put a popped entry back in its original place (same object, same order)."""
        entry.alive = True
        self._insert(entry)

    def _insert(self, entry: QueueEntry[T]) -> None:
        deadline = entry.deadline
        push = next(self._pushes)
        heapq.heappush(
            self._heap,
            (-entry.priority, math.inf if deadline is None else deadline, entry.order, push, entry),
        )
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, entry.order, push, entry))
        self._len += 1

    def pop(self) -> QueueEntry[T] | None:
        """Remove and return the entry that leaves next, or None when empty."""
        heap = self._heap
        while heap:
            entry = heapq.heappop(heap)[4]
            if entry.alive:
                entry.alive = False
                self._len -= 1
                return entry
        return None

    def remove(self, entry: QueueEntry[T]) -> bool:
        """Take ``entry`` out; False if it already left."""
        if not entry.alive:
            return False
        entry.alive = False
        self._len -= 1
        if self._len == 0:
            self._heap.clear()
            self._deadlines.clear()
        return True

    def next_deadline(self) -> float | None:
        """The earliest deadline of a waiting item."""
        deadlines = self._deadlines
        while deadlines and not deadlines[0][3].alive:
            heapq.heappop(deadlines)
        return deadlines[0][0] if deadlines else None

    def pop_expired(self, now: float) -> list[QueueEntry[T]]:
        """Remove and return every waiting entry whose deadline is before ``now``."""
        expired: list[QueueEntry[T]] = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] < now:
            entry = heapq.heappop(deadlines)[3]
            if entry.alive:
                entry.alive = False
                self._len -= 1
                expired.append(entry)
        return expired

    def drain(self) -> list[QueueEntry[T]]:
        """Remove and return everything, in leaving order."""
        out = []
        while (entry := self.pop()) is not None:
            out.append(entry)
        self._deadlines.clear()
        return out
