"""Which worker gets the next task: sans-I/O, synchronous, never blocks.

``assign`` pairs queued tasks with workers that have room and returns the pairs; the pool
carries them out after releasing its lock. A strategy is one small class: given the workers
that can take a task, pick one.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Generic, Protocol, TypeVar

from ._queue import QueueEntry, TaskQueue

__all__ = ["STRATEGIES", "LeastBusy", "RoundRobin", "Schedulable", "Strategy", "assign"]


class WorkerLike(Protocol):
    @property
    def worker_index(self) -> int: ...
    @property
    def load(self) -> int: ...
    @property
    def has_room(self) -> bool: ...
    def reserve(self) -> None:
        """Count one more task towards ``load`` (the pool records it right after)."""


class Schedulable(Protocol):
    @property
    def affinity(self) -> Hashable | None: ...


W = TypeVar("W", bound=WorkerLike)
T = TypeVar("T", bound=Schedulable)


class Strategy(Protocol, Generic[W]):
    def choose(self, candidates: Sequence[W]) -> W:
        """Pick one of the non-empty ``candidates``."""


class RoundRobin(Generic[W]):
    """Each worker in turn (by position), skipping those without room."""

    def __init__(self) -> None:
        self._last = -1

    def choose(self, candidates: Sequence[W]) -> W:
        after = [w for w in candidates if w.worker_index > self._last]
        chosen = min(after or candidates, key=lambda w: w.worker_index)
        self._last = chosen.worker_index
        return chosen


class LeastBusy(Generic[W]):
    """The worker with the fewest tasks in flight; ties go to the lowest position."""

    def choose(self, candidates: Sequence[W]) -> W:
        return min(candidates, key=lambda w: (w.load, w.worker_index))


STRATEGIES: dict[str, type[RoundRobin[WorkerLike]] | type[LeastBusy[WorkerLike]]] = {
    "round-robin": RoundRobin,
    "least-busy": LeastBusy,
}


def assign(
    queue: TaskQueue[T],
    workers: Sequence[W],
    strategy: Strategy[W],
    affinity: dict[Hashable, W],
    one_each: bool = False,
) -> list[tuple[QueueEntry[T], W]]:
    """Take tasks from ``queue`` for workers with room, in queue order.

    A task with an ``affinity`` key goes to the worker that key is bound to (binding it to
    the chosen worker the first time); if that worker has no room the task waits, keeping
    its place, while tasks behind it may go elsewhere. With ``one_each``, each worker gets
    at most one task.
    """
    pairs: list[tuple[QueueEntry[T], W]] = []
    held: list[QueueEntry[T]] = []
    open_workers = [w for w in workers if w.has_room]
    while open_workers and len(queue):
        entry = queue.pop()
        if entry is None:
            break
        key = entry.item.affinity
        if key is not None and key in affinity:
            bound = affinity[key]
            if not bound.has_room:
                held.append(entry)
                continue
            worker = bound
        else:
            worker = strategy.choose(open_workers)
            if key is not None:
                affinity[key] = worker
        pairs.append((entry, worker))
        worker.reserve()
        if one_each:
            open_workers = [w for w in open_workers if w is not worker]
        elif not worker.has_room:
            open_workers = [w for w in open_workers if w.has_room]
    for entry in held:
        queue.reinsert(entry)
    return pairs
