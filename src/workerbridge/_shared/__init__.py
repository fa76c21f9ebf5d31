"""Shared state on shared memory: counters, progress and cancellation flags that every
process and thread reads and updates atomically.

Each object owns one small ``/dev/shm`` segment (``_block``) and reaches its values through
64-bit atomic slots (``_atomic``, on ``atomicshm``). The objects pickle as the segment's
name, so they travel into tasks as ordinary arguments on every backend.
"""

from ._cancellation import AbortSignal, SharedCancellation, create_cancellation_token
from ._counter import SharedCounter
from ._progress import SharedProgress, create_progress_tracker

__all__ = [
    "AbortSignal",
    "SharedCancellation",
    "SharedCounter",
    "SharedProgress",
    "create_cancellation_token",
    "create_progress_tracker",
]
