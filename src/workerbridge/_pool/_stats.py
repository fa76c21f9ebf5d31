"""Pool statistics: frozen snapshots built from counters the pool keeps as it works."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Percentiles", "PoolStats", "Reservoir", "WorkerStats"]

#: How many recent wait and run times the percentiles are computed over: enough for a stable
#: p99, small enough that ``stats()`` stays cheap and memory flat under any load.
RESERVOIR_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Seconds, over the most recent tasks (``count`` of them)."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float


class Reservoir:
    """The most recent ``RESERVOIR_SIZE`` durations."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: deque[float] = deque(maxlen=RESERVOIR_SIZE)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def percentiles(self) -> Percentiles:
        values = sorted(self._values)
        if not values:
            return Percentiles(0, 0.0, 0.0, 0.0, 0.0)
        n = len(values)

        def at(q: float) -> float:
            return values[min(n - 1, int(q * n))]

        return Percentiles(n, at(0.50), at(0.90), at(0.99), values[-1])


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """One worker position: its current process (or thread) and what it has done."""

    index: int
    pid: int | None
    state: str  # "starting", "ready", "stopping", "dead"
    running: int  # tasks in flight on it now
    completed: int  # tasks answered by the current worker at this position
    failed: int
    restarts: int  # how many workers at this position were replaced


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of the pool (``WorkerPool.stats()``)."""

    backend: str
    state: str
    workers: tuple[WorkerStats, ...]
    queue_depth: int
    running: int
    submitted: int
    completed: int
    failed: int
    cancelled: int
    restarts: int
    utilization: float  # share of worker time spent running tasks since the pool started
    wait_time: Percentiles  # submit -> start
    run_time: Percentiles  # start -> result, as measured in the worker
