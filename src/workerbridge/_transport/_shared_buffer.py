"""``SharedBuffer`` and ``transfer()``: handing a buffer to a task without copying it.

The seed's transferables, in Python: a ``SharedBuffer`` lives in shared memory, so a task
can receive it by name instead of by value. ``transfer(buf)`` marks it to be *moved*: when
the task's arguments are pickled, only the segment's name travels, and the sender's view
is detached (using it afterwards raises ``SharedMemoryError``, like the seed's neutered
ArrayBuffer). The task may write into it and return it (``return transfer(buf)`` or just
``return buf``); back in the process that created it, the same object comes alive again.

Ownership never moves: the creating process owns the segment and unlinks it when its
``SharedBuffer`` is released (``release()``, garbage collection, or interpreter exit). A
buffer that is transferred and not returned is released by the pool when its task ends.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, final

from .._exceptions import SharedMemoryError
from ._shm import Segment

__all__ = [
    "MovedBuffers",
    "SharedBuffer",
    "TaskSide",
    "adopted",
    "release_unreturned",
    "restore_moved",
    "transfer",
]

# Owned buffers whose view is detached because they are on their way to a task: kept alive
# here (the segment must not be unlinked under the task) until they come back or are freed.
_in_flight: dict[str, SharedBuffer] = {}
_in_flight_lock = threading.Lock()
# While the pool pickles a task's arguments, the names of the buffers moved by it.
_moves = threading.local()
# Set while a worker unpickles a task's arguments (``TaskSide``), or pickles its result.
_task_side = threading.local()
# Buffers a task created and moved out, now owned here: a dead worker's cleanup must spare
# their names (they start with the worker's pid).
_adopted: set[str] = set()


@final
class SharedBuffer:
    """A writable buffer of ``size`` bytes in shared memory.

    ``view`` is a writable ``memoryview`` (``buf.view[:4] = b"data"``, ``numpy.frombuffer
    (buf.view, ...)``). Pass it to a task with ``transfer(buf)`` to move it without a copy.

    Raises:
        SharedMemoryError: no shared memory is available.
    """

    __slots__ = (
        "__weakref__",
        "_finalizer",
        "_moving",
        "_owned",
        "_segment",
        "_size",
        "_view",
        "owner_pid",
    )

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            from .._exceptions import ValidationError

            raise ValidationError(f"SharedBuffer size must be a positive int, got {size!r}")
        self._segment = Segment.create(size, "b")
        self.owner_pid = os.getpid()
        self._view: memoryview | None = self._segment.view[:size]
        self._size = size
        self._moving = False
        self._owned = True
        self._finalizer = weakref.finalize(self, _release_segment, self._segment)

    @classmethod
    def _attached(
        cls, name: str, size: int, owner_pid: int, *, adopt: bool = False
    ) -> SharedBuffer:
        """A mapping of another object's buffer; with ``adopt``, this object becomes its
        owner (a buffer a task created and moved out)."""
        self = cls.__new__(cls)
        self._segment = Segment.attach(name)
        self.owner_pid = os.getpid() if adopt else owner_pid
        self._view = self._segment.view[:size]
        self._size = size
        self._moving = False
        self._owned = adopt
        release = _release_adopted if adopt else _close_segment
        self._finalizer = weakref.finalize(self, release, self._segment)
        if adopt:
            _adopted.add(name)
        return self

    @property
    def name(self) -> str:
        return self._segment.name

    @property
    def view(self) -> memoryview:
        """The writable view. Raises ``SharedMemoryError`` once transferred or released."""
        if self._view is None:
            raise SharedMemoryError(
                f"shared buffer {self._segment.name} was transferred or released; "
                "it can no longer be used here"
            )
        return self._view

    def __len__(self) -> int:
        return len(self.view)

    @property
    def owner(self) -> bool:
        """Whether this object unlinks the buffer when released (its creator, or the
        caller that received a buffer a task created)."""
        return self._owned and self.owner_pid == os.getpid()

    def release(self) -> None:
        """Drop this process's view; in the owning process also unlink the segment.
        Idempotent."""
        view, self._view = self._view, None
        if view is not None:
            view.release()
        with _in_flight_lock:
            _in_flight.pop(self._segment.name, None)
        self._finalizer()

    def __reduce__(self) -> tuple[Any, ...]:
        # In the owning process a buffer moves only when marked with transfer(); a task that
        # received one moves it back just by returning it.
        if not self._moving and self.owner:
            raise SharedMemoryError(
                "a SharedBuffer is passed to a task with transfer(buf) (moved, no copy); "
                "to send a copy, pass bytes(buf.view)"
            )
        size = len(self.view)
        # Detach the sender: from here on the buffer belongs to the receiver.
        view, self._view = self._view, None
        if view is not None:
            view.release()
        self._moving = False
        self._size = size
        if self.owner and getattr(_task_side, "returning", False):
            # A task moves out a buffer it created: ownership goes with it, to the caller.
            self._owned = False
            self._finalizer.detach()
            self._segment.close()
            return _receive_owned, (self._segment.name, size)
        if self.owner:
            with _in_flight_lock:
                _in_flight[self._segment.name] = self
            collector = getattr(_moves, "names", None)
            if collector is not None:
                collector.append(self._segment.name)
        return _receive, (self._segment.name, size, self.owner_pid)

    def _revive(self, size: int) -> SharedBuffer:
        self._view = self._segment.view[:size]
        return self

    def __repr__(self) -> str:
        state = "detached" if self._view is None else f"{len(self._view)} bytes"
        return f"<SharedBuffer {self._segment.name} {state}>"


def _close_segment(segment: Segment) -> None:
    segment.close()  # a mapping of another process's buffer: never unlinked here


def _release_segment(segment: Segment) -> None:
    segment.unlink()
    segment.close()


def _release_adopted(segment: Segment) -> None:
    _adopted.discard(segment.name)
    _release_segment(segment)


def adopted(name: str) -> bool:
    """Whether this process owns ``name`` although another process created it."""
    return name in _adopted


def _receive_owned(name: str, size: int) -> SharedBuffer:
    return SharedBuffer._attached(name, size, 0, adopt=True)


class TaskSide:
    """Marks the worker side of a task while its arguments are unpickled (``"arguments"``)
    or its result pickled (``"result"``): a buffer arriving in a task is a separate mapping
    even on in-process backends, and a buffer a task created leaves with its ownership."""

    def __init__(self, phase: str) -> None:
        self._attr = "receiving" if phase == "arguments" else "returning"

    def __enter__(self) -> None:
        setattr(_task_side, self._attr, True)

    def __exit__(self, *exc: object) -> None:
        setattr(_task_side, self._attr, False)


def _receive(name: str, size: int, owner_pid: int) -> SharedBuffer:
    """Unpickle a moved buffer: the owner's own object when it comes home, else a mapping."""
    if owner_pid == os.getpid() and not getattr(_task_side, "receiving", False):
        with _in_flight_lock:
            original = _in_flight.pop(name, None)
        if original is not None:
            return original._revive(size)
    return SharedBuffer._attached(name, size, owner_pid)


class MovedBuffers:
    """Collects the names of buffers moved while pickling in this thread (``with``)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __enter__(self) -> list[str]:
        _moves.names = self.names
        return self.names

    def __exit__(self, *exc: object) -> None:
        _moves.names = None


def restore_moved(names: tuple[str, ...] | list[str], *, moving: bool) -> None:
    """Give moved buffers back to the caller: the task that was to receive them was never
    sent (its submit failed), or its arguments are being pickled again (``moving``)."""
    for name in names:
        with _in_flight_lock:
            buffer = _in_flight.pop(name, None)
        if buffer is not None:
            buffer._revive(buffer._size)
            buffer._moving = moving


def release_unreturned(names: tuple[str, ...] | list[str]) -> None:
    """Release owned buffers that a finished task did not return (called by the pool)."""
    for name in names:
        with _in_flight_lock:
            buffer = _in_flight.pop(name, None)
        if buffer is not None:
            buffer.release()


def transfer(buffer: SharedBuffer) -> SharedBuffer:
    """Mark ``buffer`` to be moved, not copied, into the task (or out of it) it is passed
    to. After the task's arguments are sent, the sender's view is detached.

    Raises:
        TypeError: ``buffer`` is not a ``SharedBuffer`` (allocate one with
            ``SharedBuffer(n)`` or ``pool.alloc(n)`` and fill ``buf.view``).
    """
    if not isinstance(buffer, SharedBuffer):
        raise TypeError(
            f"transfer() moves a SharedBuffer, not {type(buffer).__name__}; allocate one "
            "with SharedBuffer(n) or pool.alloc(n)"
        )
    buffer.view  # noqa: B018 - raises if it was already transferred or released
    buffer._moving = True
    return buffer
