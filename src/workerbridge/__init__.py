"""workerbridge: move CPU-heavy and blocking work onto a self-healing pool of workers.

The package has two tiers. Private modules hold the code, one folder per layer, imports
only pointing down::

    _bridge/     WorkerBridge and its crypto, file, compression and network bridges
    _channels/   the bridges' work, as channel operations that run inside workers
    _pool/       WorkerPool, queue, scheduler, supervisor, handles, statistics
    _backends/   process (default), thread (fallback), inline (tests)
    _worker/     what runs inside a worker: loop, task runner, current_task(), registry
    _shared/     SharedCounter, SharedProgress, SharedCancellation on shared memory
    _transport/  pipes, shared-memory segments and blocks, SharedBuffer and transfer()
    _protocol/   typed messages and framing: pure data, no I/O
    _exceptions  the error tree

This module re-exports the public names and rewrites their ``__module__`` so tracebacks and
pickles say ``workerbridge.X``. It loads them lazily (PEP 562): a worker process imports
only the layers it runs (protocol, runtime), not the pool and asyncio, which keeps worker
start-up fast; type checkers see ordinary imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._bridge import (
        CompressionBridge as CompressionBridge,
        CryptoBridge as CryptoBridge,
        FileBridge as FileBridge,
        NetworkBridge as NetworkBridge,
        WorkerBridge as WorkerBridge,
    )
    from ._channels._hashing import ManifestReport as ManifestReport
    from ._channels._network import Response as Response
    from ._channels._results import FileResult as FileResult
    from ._exceptions import (
        ChecksumMismatchError as ChecksumMismatchError,
        DeadlineExceededError as DeadlineExceededError,
        FormatError as FormatError,
        HTTPStatusError as HTTPStatusError,
        IntegrityError as IntegrityError,
        NetworkError as NetworkError,
        NonceReuseError as NonceReuseError,
        OperationError as OperationError,
        OutputLimitError as OutputLimitError,
        PoolBrokenError as PoolBrokenError,
        PoolClosedError as PoolClosedError,
        PoolError as PoolError,
        ProtocolError as ProtocolError,
        QueueFullError as QueueFullError,
        RemoteTaskError as RemoteTaskError,
        RemoteTraceback as RemoteTraceback,
        SerializationError as SerializationError,
        SharedMemoryError as SharedMemoryError,
        TaskCancelledError as TaskCancelledError,
        TaskError as TaskError,
        TaskTimeoutError as TaskTimeoutError,
        TruncationError as TruncationError,
        ValidationError as ValidationError,
        WorkerBridgeError as WorkerBridgeError,
        WorkerCrashedError as WorkerCrashedError,
    )
    from ._pool import (
        MapIterator as MapIterator,
        Percentiles as Percentiles,
        PoolStats as PoolStats,
        ProgressInfo as ProgressInfo,
        TaskHandle as TaskHandle,
        WorkerPool as WorkerPool,
        WorkerStats as WorkerStats,
    )
    from ._shared import (
        AbortSignal as AbortSignal,
        SharedCancellation as SharedCancellation,
        SharedCounter as SharedCounter,
        SharedProgress as SharedProgress,
        create_cancellation_token as create_cancellation_token,
        create_progress_tracker as create_progress_tracker,
    )
    from ._transport import SharedBuffer as SharedBuffer, transfer as transfer
    from ._worker import (
        TaskContext as TaskContext,
        current_task as current_task,
        operation as operation,
        register_channel as register_channel,
    )

__version__ = "0.1.0"

__all__ = [
    "AbortSignal",
    "ChecksumMismatchError",
    "CompressionBridge",
    "CryptoBridge",
    "DeadlineExceededError",
    "FileBridge",
    "FileResult",
    "FormatError",
    "HTTPStatusError",
    "IntegrityError",
    "ManifestReport",
    "MapIterator",
    "NetworkBridge",
    "NetworkError",
    "NonceReuseError",
    "OperationError",
    "OutputLimitError",
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
    "Response",
    "SerializationError",
    "SharedBuffer",
    "SharedCancellation",
    "SharedCounter",
    "SharedMemoryError",
    "SharedProgress",
    "TaskCancelledError",
    "TaskContext",
    "TaskError",
    "TaskHandle",
    "TaskTimeoutError",
    "TruncationError",
    "ValidationError",
    "WorkerBridge",
    "WorkerBridgeError",
    "WorkerCrashedError",
    "WorkerPool",
    "WorkerStats",
    "create_cancellation_token",
    "create_progress_tracker",
    "current_task",
    "operation",
    "register_channel",
    "transfer",
]


_SOURCES = {
    "._exceptions": (
        "ChecksumMismatchError",
        "DeadlineExceededError",
        "FormatError",
        "HTTPStatusError",
        "IntegrityError",
        "NetworkError",
        "NonceReuseError",
        "OperationError",
        "OutputLimitError",
        "PoolBrokenError",
        "PoolClosedError",
        "PoolError",
        "ProtocolError",
        "QueueFullError",
        "RemoteTaskError",
        "RemoteTraceback",
        "SerializationError",
        "SharedMemoryError",
        "TaskCancelledError",
        "TaskError",
        "TaskTimeoutError",
        "TruncationError",
        "ValidationError",
        "WorkerBridgeError",
        "WorkerCrashedError",
    ),
    "._bridge": (
        "CompressionBridge",
        "CryptoBridge",
        "FileBridge",
        "NetworkBridge",
        "WorkerBridge",
    ),
    "._channels._hashing": ("ManifestReport",),
    "._channels._network": ("Response",),
    "._channels._results": ("FileResult",),
    "._pool": (
        "MapIterator",
        "Percentiles",
        "PoolStats",
        "ProgressInfo",
        "TaskHandle",
        "WorkerPool",
        "WorkerStats",
    ),
    "._shared": (
        "AbortSignal",
        "SharedCancellation",
        "SharedCounter",
        "SharedProgress",
        "create_cancellation_token",
        "create_progress_tracker",
    ),
    "._transport": ("SharedBuffer", "transfer"),
    "._worker": ("TaskContext", "current_task", "operation", "register_channel"),
}
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    if getattr(value, "__module__", "").startswith(f"{__name__}._"):
        try:
            value.__module__ = __name__
        except (AttributeError, TypeError):
            pass
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
