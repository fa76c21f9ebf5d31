"""The network bridge: caller-side checks and dispatch; the work runs in
``workerbridge._channels._network``."""

from __future__ import annotations

from typing import final

from .._pool import WorkerPool

__all__ = ["NetworkBridge"]


@final
class NetworkBridge:
    """Network operations on the pool's workers."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
