"""``SharedCounter``: a signed 64-bit integer that every process and thread updates
atomically."""

from __future__ import annotations

import weakref
from typing import final

from .._exceptions import SharedMemoryError
from ._atomic import check_int64
from ._block import Block, Kind, SharedObject

__all__ = ["SharedCounter"]


@final
class SharedCounter(SharedObject):
    """A signed 64-bit integer in shared memory, updated with hardware atomic instructions.

    Create it in the parent and pass it to tasks as an argument: it pickles as the name of its
    segment, and the worker maps that segment (once per process, however many tasks receive
    it). Every copy, in any process or thread, reads and writes the same 8 bytes, so
    ``add`` from two workers never loses an update. Arithmetic wraps around at 64 bits.

    The creator owns the memory. ``close()`` on it (or its garbage collection) releases the
    segment, after which every copy everywhere raises ``SharedMemoryError`` instead of
    working on stale memory; ``close()`` on a copy does nothing. A worker that crashes while
    holding a copy loses nothing and leaks nothing: its mapping dies with it, and an operation
    it had under way either happened or did not (each is a single instruction). If the
    creator's process is killed, its segment is removed by the next pool that starts.

    Args:
        value: the initial value.

    Raises:
        ValidationError: ``value`` is not an int or does not fit in 64 bits.
        SharedMemoryError: no shared memory is available.
    """

    __slots__ = ("__weakref__", "_block", "_finalizer", "_value")

    _block: Block
    _finalizer: weakref.finalize[[], SharedCounter] | None

    def __init__(self, value: int = 0) -> None:
        value = check_int64(value, "value")
        self._bind(Block.create(Kind.COUNTER, "ctr"))
        self._value.store(value)
        self._finalizer = weakref.finalize(self, self._block.release)

    def _bind(self, block: Block) -> None:
        self._block = block
        self._value = block.slot(0)

    @classmethod
    def _attach(cls, name: str) -> SharedCounter:
        counter = cls.__new__(cls)
        counter._bind(Block.attach(name, Kind.COUNTER))
        counter._finalizer = None
        return counter

    def __reduce__(self) -> tuple[object, tuple[str]]:
        self._block.check()  # pickling a released counter would only fail later, elsewhere
        return (_attach_counter, (self._block.name,))

    # ------------------------------------------------------------------ operations

    def load(self) -> int:
        """The current value."""
        self._block.check()
        return self._value.load()

    def store(self, value: int) -> None:
        """Set the value."""
        value = check_int64(value, "value")
        self._block.check()
        self._value.store(value)

    def add(self, n: int = 1) -> int:
        """Add ``n`` (which may be negative) and return the **new** value.

        The returned value is the one this call produced, so ``counter.add(1)`` hands out
        distinct numbers to concurrent callers.
        """
        n = check_int64(n, "n")
        self._block.check()
        return _wrap(self._value.fetch_add(n) + n)

    def exchange(self, value: int) -> int:
        """Set the value and return the one it replaced."""
        value = check_int64(value, "value")
        self._block.check()
        return self._value.exchange(value)

    def compare_exchange(self, expected: int, desired: int) -> tuple[bool, int]:
        """Set the value to ``desired`` only if it is ``expected``.

        Returns:
            ``(True, expected)`` if the value was replaced, else ``(False, actual)`` with the
            value found, ready for the next attempt of a retry loop. Never fails spuriously.
        """
        expected = check_int64(expected, "expected")
        desired = check_int64(desired, "desired")
        self._block.check()
        return self._value.compare_exchange(expected, desired)

    def __repr__(self) -> str:
        try:
            self._block.check()
            state = f"value={self._value.load()}"
        except SharedMemoryError:
            state = "closed"
        return f"<SharedCounter {self._block.name} {state}>"


def _wrap(value: int) -> int:
    # fetch_add wrapped in 64 bits; the sum computed here in Python must wrap the same way.
    return (value + (1 << 63)) % (1 << 64) - (1 << 63)


def _attach_counter(name: str) -> SharedCounter:
    return SharedCounter._attach(name)
