"""workerbridge: move CPU-heavy and blocking work onto a self-healing pool of workers.

The package has two tiers. Private modules hold the code, one folder per layer, imports
only pointing down::

    _pool/       WorkerPool, queue, scheduler, supervisor, handles, statistics
    _backends/   process (default), thread (fallback), inline (tests)
    _worker/     what runs inside a worker: loop, task runner, current_task(), registry
    _transport/  pipes (and, later, shared memory)
    _protocol/   typed messages and framing: pure data, no I/O
    _exceptions  the error tree

This module re-exports the public names and rewrites their ``__module__`` so tracebacks and
pickles say ``workerbridge.X``.
"""

from __future__ import annotations

from ._exceptions import (
    DeadlineExceededError as DeadlineExceededError,
)
from ._exceptions import (
    PoolBrokenError as PoolBrokenError,
)
from ._exceptions import (
    PoolClosedError as PoolClosedError,
)
from ._exceptions import (
    PoolError as PoolError,
)
from ._exceptions import (
    ProtocolError as ProtocolError,
)
from ._exceptions import (
    QueueFullError as QueueFullError,
)
from ._exceptions import (
    RemoteTaskError as RemoteTaskError,
)
from ._exceptions import (
    RemoteTraceback as RemoteTraceback,
)
from ._exceptions import (
    SerializationError as SerializationError,
)
from ._exceptions import (
    TaskCancelledError as TaskCancelledError,
)
from ._exceptions import (
    TaskError as TaskError,
)
from ._exceptions import (
    TaskTimeoutError as TaskTimeoutError,
)
from ._exceptions import (
    ValidationError as ValidationError,
)
from ._exceptions import (
    WorkerBridgeError as WorkerBridgeError,
)
from ._exceptions import (
    WorkerCrashedError as WorkerCrashedError,
)
from ._pool import (
    MapIterator as MapIterator,
)
from ._pool import (
    Percentiles as Percentiles,
)
from ._pool import (
    PoolStats as PoolStats,
)
from ._pool import (
    ProgressInfo as ProgressInfo,
)
from ._pool import (
    TaskHandle as TaskHandle,
)
from ._pool import (
    WorkerPool as WorkerPool,
)
from ._pool import (
    WorkerStats as WorkerStats,
)
from ._worker import (
    TaskContext as TaskContext,
)
from ._worker import (
    current_task as current_task,
)
from ._worker import (
    operation as operation,
)
from ._worker import (
    register_channel as register_channel,
)

__version__ = "0.1.0"

__all__ = [
    "DeadlineExceededError",
    "MapIterator",
    "Percentiles",
    "PoolBrokenError",
    "PoolClosedError",
    "PoolError",
    "PoolStats",
    "ProgressInfo",
    "ProtocolError",
    "QueueFullError",
    "RemoteTaskError",
    "RemoteTraceback",
    "SerializationError",
    "TaskCancelledError",
    "TaskContext",
    "TaskError",
    "TaskHandle",
    "TaskTimeoutError",
    "ValidationError",
    "WorkerBridgeError",
    "WorkerCrashedError",
    "WorkerPool",
    "WorkerStats",
    "current_task",
    "operation",
    "register_channel",
]


def _fixup_module_metadata() -> None:
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("workerbridge._"):
            try:
                obj.__module__ = __name__
            except (AttributeError, TypeError):
                pass


_fixup_module_metadata()
del _fixup_module_metadata
