"""The file bridge: caller-side checks and dispatch; the work runs in
``workerbridge._channels._file``."""

from __future__ import annotations

from typing import final

from .._pool import WorkerPool

__all__ = ["FileBridge"]


@final
class FileBridge:
    """File operations on the pool's workers."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
