"""One small shared-memory segment per shared object, with a header and a per-process cache.

Layout of a block (``SIZE`` bytes, every field a 64-bit word)::

    offset  0   magic << 32 | kind     what the block holds (checked on attach)
    offset  8   state                  0 while live, 1 once the owner released it
    offset 16   slot 0                 the object's own values (counter, progress, flag)
    offset 24   slot 1 ...

Ownership. The process that creates a block owns it: only its ``release()`` sets the state
word, unlinks the name and unmaps. Every other process *attaches* by name (unpickling a
shared object does that) and never unlinks. A crash of an attaching process therefore
leaks nothing; a crash of the owner leaves a ``wb-<pid>-`` name behind, which
``remove_orphans()`` (run by the pool on start) reclaims.

Attaching. Each process keeps one mapping per name: a task that receives the same counter a
thousand times maps it once. Mappings of blocks this process owns are found through
``_owned``; those of other processes' blocks stay in ``_attached`` until the owner releases
the block (they are pruned at the next attach) or the process exits.

Released blocks. The owner sets the state word before unlinking, so a process that still has
the block mapped sees it released on its next operation (``check()`` raises
``SharedMemoryError``) instead of silently working on orphaned memory. Nothing is ever
unmapped under an operation: the atomic view keeps its buffer exported while it is open.
"""

from __future__ import annotations

import atexit
import enum
import os
import threading
import weakref
from typing import Any, Self, final

import atomicshm

from .._exceptions import SharedMemoryError
from .._transport import _shm
from ._atomic import SLOT_SIZE, Int64Slot

__all__ = ["SIZE", "Block", "Kind", "SharedObject"]

#: Bytes per block: the header and six slots, one cache line. The kernel rounds the mapping
#: up to a page anyway; a larger block would only make ``fallocate`` reserve more.
SIZE = 64
MAGIC = 0x57425348  # "WBSH"
_KIND_OFFSET = 0
_STATE_OFFSET = 8
_FIRST_SLOT = 16
MAX_SLOTS = (SIZE - _FIRST_SLOT) // SLOT_SIZE

_LIVE = 0
_RELEASED = 1


class Kind(enum.IntEnum):
    """What a block holds; stored in its header so a name cannot be attached as the wrong
    type."""

    COUNTER = 1  # SharedCounter: slot 0 is the value
    PROGRESS = 2  # SharedProgress: slot 0 current, slot 1 total
    CANCELLATION = 3  # SharedCancellation: slot 0 is the flag


@final
class Block:
    """A mapped block: its segment, an atomic view over it, and its slots."""

    __slots__ = ("_lock", "_pid", "_segment", "_view", "kind", "name", "owner")

    def __init__(self, segment: _shm.Segment, kind: Kind, owner: bool) -> None:
        self._segment = segment
        self._view = atomicshm.AtomicView(segment.view)
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self.name = segment.name
        self.kind = kind
        self.owner = owner

    # ------------------------------------------------------------------ creating

    @classmethod
    def create(cls, kind: Kind, tag: str) -> Block:
        """A new zeroed block owned by this process.

        Raises:
            SharedMemoryError: no shared memory (``/dev/shm`` missing or full).
        """
        segment = _shm.Segment.create(SIZE, tag)
        try:
            block = cls(segment, kind, owner=True)
            block._view.store_u64(_KIND_OFFSET, MAGIC << 32 | kind)
        except BaseException:
            segment.unlink()
            segment.close()
            raise
        with _lock:
            _owned[block.name] = block
        return block

    @classmethod
    def attach(cls, name: str, kind: Kind) -> Block:
        """The block named ``name``, mapped once per process.

        Raises:
            SharedMemoryError: the owner released it, it does not exist, or it holds
                something other than ``kind``.
        """
        if not isinstance(name, str) or not name.startswith(_shm.PREFIX) or "/" in name:
            raise SharedMemoryError(f"not a workerbridge shared object name: {name!r}")
        with _lock:
            block = _owned.get(name) or _attached.get(name)
            if block is None:
                _prune_released()
                block = _attached[name] = cls._map(name)
        block.check()
        if block.kind != kind:
            raise SharedMemoryError(
                f"shared memory {name} holds a {block.kind.name.lower()}, not a {kind.name.lower()}"
            )
        return block

    @classmethod
    def _map(cls, name: str) -> Block:
        try:
            segment = _shm.Segment.attach(name)
        except SharedMemoryError as exc:
            raise SharedMemoryError(
                f"shared memory {name} is gone: its owner (process {_pid_of(name)}) "
                "released it or exited"
            ) from exc
        if segment.size < SIZE:
            segment.close()
            raise SharedMemoryError(f"shared memory {name} is not a workerbridge shared object")
        view = atomicshm.AtomicView(segment.view)
        header = view.load_u64(_KIND_OFFSET)
        view.close()
        try:
            if header >> 32 != MAGIC:
                raise ValueError(header)
            kind = Kind(header & 0xFFFFFFFF)
        except ValueError:
            segment.close()
            raise SharedMemoryError(
                f"shared memory {name} is not a workerbridge shared object"
            ) from None
        return cls(segment, kind, owner=False)

    # ------------------------------------------------------------------ using

    def slot(self, index: int) -> Int64Slot:
        if not 0 <= index < MAX_SLOTS:
            raise IndexError(index)
        return Int64Slot(self._view, _FIRST_SLOT + index * SLOT_SIZE, self.name)

    def check(self) -> None:
        """Raise ``SharedMemoryError`` if the owner has released the block."""
        try:
            state = self._view.load_u64(_STATE_OFFSET)
        except ValueError:  # the view is closed: released (or pruned) in this process
            raise self._released_error() from None
        if state != _LIVE:
            raise self._released_error()

    def is_released(self) -> bool:
        try:
            return self._view.load_u64(_STATE_OFFSET) != _LIVE
        except ValueError:
            return True

    def _released_error(self) -> SharedMemoryError:
        return SharedMemoryError(
            f"shared memory {self.name} was released by its owner (process "
            f"{_pid_of(self.name)}): the shared {self.kind.name.lower()} was closed or "
            "garbage-collected there"
        )

    # ------------------------------------------------------------------ releasing

    def release(self) -> None:
        """Owner: mark released, unlink and unmap (idempotent). Elsewhere: unmap only.

        A process forked from the owner inherits the block but never releases it: only the
        process that created it does.
        """
        with self._lock:
            if self._view.closed:
                return
            if self.owner and os.getpid() == self._pid:
                self._view.store_u64(_STATE_OFFSET, _RELEASED)
                self._segment.unlink()
            self._view.close()
            self._segment.close()
        with _lock:
            if _owned.get(self.name) is self:
                del _owned[self.name]
            if _attached.get(self.name) is self:
                del _attached[self.name]

    def __repr__(self) -> str:
        role = "owner" if self.owner else "attached"
        return f"<Block {self.name} {self.kind.name.lower()} {role}>"


def _pid_of(name: str) -> str:
    return name[len(_shm.PREFIX) :].split("-", 1)[0]


# ---------------------------------------------------------------------- per-process state

#: Guards the two maps below. Replaced in a forked child, where another thread of the parent
#: may have held it at the moment of the fork.
_lock = threading.Lock()
#: Blocks this process created and has not released, so that unpickling one here (thread and
#: inline backends, copies) uses the owner's mapping instead of mapping it again. Strong
#: references: the creator's finalizer holds its block until it is released anyway, and
#: ``release()`` removes the entry.
_owned: dict[str, Block] = {}
#: Mappings of blocks owned by other processes.
_attached: dict[str, Block] = {}


def _prune_released() -> None:
    """Unmap cached blocks whose owner released them (called with ``_lock`` held).

    Without this, a long-lived worker that receives a fresh token per task would keep one
    mapping per token ever seen.
    """
    for name, block in list(_attached.items()):
        if block.is_released():
            del _attached[name]
            block._view.close()
            block._segment.close()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


@atexit.register
def _close_attached() -> None:
    # Processes started by multiprocessing leave through os._exit and skip this; the kernel
    # unmaps then. It matters for ordinary interpreters that attached (a script that
    # unpickled a token), so that nothing is left exported during shutdown.
    with _lock:
        blocks = list(_attached.values())
        _attached.clear()
    for block in blocks:
        block.release()


os.register_at_fork(after_in_child=_after_fork_in_child)


class SharedObject:
    """What the shared-state classes have in common: one block, owned by the creator's
    object (``_finalizer`` releases it), borrowed by every copy made by unpickling."""

    __slots__ = ()
    _block: Block
    _finalizer: weakref.finalize[[], Any] | None

    @property
    def name(self) -> str:
        """The name of the shared-memory segment (``wb-<creator pid>-...``)."""
        return self._block.name

    @property
    def closed(self) -> bool:
        """True once the creator has released it."""
        return self._block.is_released()

    def close(self) -> None:
        """Release the shared memory if this is the creator's object (idempotent).

        Every copy, in every process, raises ``SharedMemoryError`` from then on. On a copy
        received in a task this does nothing: only the creator releases.
        """
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
