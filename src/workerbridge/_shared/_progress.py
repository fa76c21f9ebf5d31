"""``SharedProgress``: how much of a known amount of work is done, readable from anywhere
without messages; and ``create_progress_tracker``, the seed's constructor."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import final

from .._exceptions import SharedMemoryError, ValidationError
from ._atomic import check_int64
from ._block import Block, Kind, SharedObject

__all__ = ["SharedProgress", "create_progress_tracker"]

#: ``percent_x100`` is percent in fixed point with two decimals: 7550 means 75.50 %.
_SCALE = 100 * 100


@final
class SharedProgress(SharedObject):
    """Progress of ``total`` units of work, in shared memory.

    Workers ``update`` or ``advance`` it; the parent (or any process holding a copy) reads
    ``current``, ``percent`` and ``done`` at any time, without messages and without waiting.
    ``total`` is fixed at creation. ``current`` never exceeds ``total``: ``update`` refuses a
    larger value, ``advance`` stops at ``total``.

    It pickles as the name of its segment, so it can be passed to tasks; each process maps
    it once. The creator owns the memory: ``close()`` (the ``cleanup`` of
    ``create_progress_tracker``) or its garbage collection releases it, after which every
    copy raises ``SharedMemoryError``; ``close()`` on a copy does nothing. A worker that
    crashes mid-update leaves either the old or the new value, never a torn one.

    Args:
        total: the amount of work, a positive int.

    Raises:
        ValidationError: ``total`` is not a positive int that fits in 64 bits.
        SharedMemoryError: no shared memory is available.
    """

    __slots__ = ("__weakref__", "_block", "_current", "_finalizer", "_total")

    _block: Block
    _finalizer: weakref.finalize[[], SharedProgress] | None
    _total: int

    def __init__(self, total: int) -> None:
        total = check_int64(total, "total")
        if total <= 0:
            raise ValidationError(f"total must be positive, got {total}")
        block = Block.create(Kind.PROGRESS, "prg")
        block.slot(1).store(total)
        self._bind(block)
        self._finalizer = weakref.finalize(self, block.release)

    def _bind(self, block: Block) -> None:
        self._block = block
        self._current = block.slot(0)
        self._total = block.slot(1).load()

    @classmethod
    def _attach(cls, name: str) -> SharedProgress:
        progress = cls.__new__(cls)
        progress._bind(Block.attach(name, Kind.PROGRESS))
        progress._finalizer = None
        return progress

    def __reduce__(self) -> tuple[object, tuple[str]]:
        self._block.check()
        return (_attach_progress, (self._block.name,))

    # ------------------------------------------------------------------ writing

    def update(self, current: int) -> None:
        """Set the amount done to ``current`` (it may go down, to start over).

        Raises:
            ValidationError: ``current`` is not an int in ``0 .. total``.
        """
        current = check_int64(current, "current")
        if not 0 <= current <= self._total:
            raise ValidationError(f"current must be in 0..{self._total}, got {current}")
        self._block.check()
        self._current.store(current)

    def advance(self, n: int = 1) -> int:
        """Add ``n`` units done, stopping at ``total``; return the new ``current``.

        Concurrent callers never lose an update (a compare-and-exchange loop).

        Raises:
            ValidationError: ``n`` is not a non-negative int.
        """
        n = check_int64(n, "n")
        if n < 0:
            raise ValidationError(f"n must not be negative, got {n}")
        self._block.check()
        total = self._total
        seen = self._current.load()
        while True:
            new = min(seen + n, total)
            stored, seen = self._current.compare_exchange(seen, new)
            if stored:
                return new

    # ------------------------------------------------------------------ reading

    @property
    def current(self) -> int:
        """Units done so far."""
        self._block.check()
        return self._current.load()

    @property
    def total(self) -> int:
        """Units of work in all (fixed at creation)."""
        return self._total

    @property
    def percent_x100(self) -> int:
        """Percent done in fixed point, two decimals: ``7550`` is 75.50 % (rounded down)."""
        return self.current * _SCALE // self._total

    @property
    def percent(self) -> float:
        """Percent done, ``0.0`` to ``100.0``, to two decimals (``percent_x100 / 100``)."""
        return self.percent_x100 / 100

    @property
    def done(self) -> bool:
        """Whether ``current`` has reached ``total``."""
        return self.current >= self._total

    def __repr__(self) -> str:
        try:
            state = f"{self.current}/{self._total}"
        except SharedMemoryError:
            state = "closed"
        return f"<SharedProgress {self._block.name} {state}>"


def _attach_progress(name: str) -> SharedProgress:
    return SharedProgress._attach(name)


def create_progress_tracker(total: int) -> tuple[SharedProgress, Callable[[], None]]:
    """A new ``SharedProgress`` and the function that releases it (the seed's
    ``createProgressTracker``)::

        progress, cleanup = create_progress_tracker(1000)
        pool.submit(work, progress)   # the task calls progress.advance()
        print(progress.percent)       # read any time, in the parent
        cleanup()

    Raises:
        ValidationError: ``total`` is not a positive int.
        SharedMemoryError: no shared memory is available.
    """
    progress = SharedProgress(total)
    return progress, progress.close
