"""The compression bridge: caller-side checks and dispatch; the work runs in
``workerbridge._channels._compression``."""

from __future__ import annotations

from typing import final

from .._pool import WorkerPool

__all__ = ["CompressionBridge"]


@final
class CompressionBridge:
    """Compression operations on the pool's workers."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
