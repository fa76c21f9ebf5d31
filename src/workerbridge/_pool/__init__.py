"""Layer: the pool (queue, scheduler, supervisor, handles, statistics)."""

from ._map import MapIterator
from ._pool import WorkerPool
from ._stats import Percentiles, PoolStats, WorkerStats
from ._task import ProgressInfo, TaskHandle

__all__ = [
    "MapIterator",
    "Percentiles",
    "PoolStats",
    "ProgressInfo",
    "TaskHandle",
    "WorkerPool",
    "WorkerStats",
]
