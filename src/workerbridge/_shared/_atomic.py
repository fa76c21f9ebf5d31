"""Signed 64-bit atomic slots in a buffer: a thin typed layer over ``atomicshm``.

``atomicshm`` performs the hardware instruction (``lock xadd``, ``lock cmpxchg`` on x86-64,
the LSE or LL/SC forms on AArch64) on an 8-byte aligned address inside any writable buffer,
so the same slot is atomic for every thread and every process that maps it. Its results are
unsigned; this module speaks signed ``int64``, checks the range of what goes in, and turns
"the mapping was closed" into ``SharedMemoryError``.

Every operation is sequentially consistent: the cost is the same as the weaker orders on
x86-64, and nothing here is hot enough on AArch64 to justify a subtler contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from .._exceptions import SharedMemoryError, ValidationError

if TYPE_CHECKING:
    import atomicshm

__all__ = ["INT64_MAX", "INT64_MIN", "SLOT_SIZE", "Int64Slot", "check_int64"]

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
#: Width of one slot in bytes; slots must start at a multiple of it.
SLOT_SIZE = 8

_WRAP = 1 << 64
_SIGN = 1 << 63


def check_int64(value: object, what: str) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) that fits in a signed 64-bit slot.

    Raises:
        ValidationError: anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be an int, got {value!r}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValidationError(f"{what} must fit in a signed 64-bit integer, got {value}")
    return value


def _signed(raw: int) -> int:
    return raw - _WRAP if raw >= _SIGN else raw


@final
class Int64Slot:
    """One signed 64-bit integer at ``offset`` in an ``atomicshm.AtomicView``.

    Arithmetic wraps around at 64 bits, as C's does on two's-complement machines. Once the
    view is closed every operation raises ``SharedMemoryError`` (the view keeps its buffer
    exported while open, so the memory can never be unmapped under an operation).
    """

    __slots__ = ("_cell", "_name")

    def __init__(self, view: atomicshm.AtomicView, offset: int, name: str) -> None:
        if offset % SLOT_SIZE:
            raise ValueError(f"slot offset {offset} is not {SLOT_SIZE}-byte aligned")
        self._cell = view.cell_u64(offset)
        self._name = name

    def _closed(self) -> SharedMemoryError:
        return SharedMemoryError(f"shared memory {self._name} is closed in this process")

    def load(self) -> int:
        try:
            return _signed(self._cell.load())
        except ValueError:
            raise self._closed() from None

    def store(self, value: int) -> None:
        try:
            self._cell.store(value)
        except ValueError:
            raise self._closed() from None

    def fetch_add(self, value: int) -> int:
        """Add ``value``; return the value *before* the addition."""
        try:
            return _signed(self._cell.fetch_add(value))
        except ValueError:
            raise self._closed() from None

    def exchange(self, value: int) -> int:
        """Store ``value``; return the value it replaced."""
        try:
            return _signed(self._cell.exchange(value))
        except ValueError:
            raise self._closed() from None

    def compare_exchange(self, expected: int, desired: int) -> tuple[bool, int]:
        """Store ``desired`` if the slot holds ``expected`` (strong form: no spurious
        failure). Return ``(stored, value found)``."""
        try:
            found = _signed(self._cell.cas(expected, desired))
        except ValueError:
            raise self._closed() from None
        return found == expected, found
