"""The per-worker control block: a few int64 slots both sides read and write without messages.

The pool writes cancel requests into it and reads the worker's heartbeat and progress
through the queue of requests it sent; the worker writes its heartbeat and which request it
has started. Because these travel through memory, a cancel flag reaches a running task at
once and a heartbeat is never stuck behind a large payload in the pipe.

Layout (int64 each)::

    [0] heartbeat    time.monotonic_ns() of the worker's last heartbeat (0 before the first)
    [1] started      seq + 1 of the last request the worker started (0 before the first)
    [2] reserved
    [3] reserved
    [4 .. 4+RING)    cancel ring: slot seq % RING holds seq + 1 when request seq is cancelled

The ring lets several requests sent ahead to a busy worker be cancelled independently;
``MAX_IN_FLIGHT`` keeps the requests in flight on one worker below ``RING`` so their slots
never collide. Aligned 8-byte loads and stores are single instructions on the platforms we
support, so a reader never sees a torn value. Each slot has one writer.
"""

from __future__ import annotations

import time

__all__ = ["MAX_IN_FLIGHT", "RING", "SLOTS", "ControlBlock"]

RING = 1024
#: Upper bound on requests in flight on one worker (see the ring above).
MAX_IN_FLIGHT = RING
_HEARTBEAT = 0
_STARTED = 1
_RING_START = 4
SLOTS = _RING_START + RING


class ControlBlock:
    """A typed view over ``SLOTS`` int64 values in shared (or, for threads, local) memory."""

    __slots__ = ("_slots",)

    def __init__(self, buffer: memoryview | bytearray) -> None:
        view = memoryview(buffer).cast("B").cast("q")
        if len(view) < SLOTS:
            raise ValueError(f"control block needs {SLOTS} int64 slots, got {len(view)}")
        self._slots = view

    @classmethod
    def local(cls) -> ControlBlock:
        """A block in ordinary memory, for workers that share the parent's address space."""
        return cls(bytearray(8 * SLOTS))

    # worker side
    def beat(self) -> None:
        self._slots[_HEARTBEAT] = time.monotonic_ns()

    def mark_started(self, seq: int) -> None:
        self._slots[_STARTED] = seq + 1

    def is_cancelled(self, seq: int) -> bool:
        return bool(self._slots[_RING_START + seq % RING] == seq + 1)

    # pool side
    def request_cancel(self, seq: int) -> None:
        self._slots[_RING_START + seq % RING] = seq + 1

    def has_started(self, seq: int) -> bool:
        """Whether the worker has started request ``seq`` (or any later one)."""
        return bool(self._slots[_STARTED] > seq)

    def last_beat_ns(self) -> int:
        return int(self._slots[_HEARTBEAT])

    def release(self) -> None:
        self._slots.release()
