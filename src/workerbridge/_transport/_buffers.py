"""Large buffers travel through shared memory: pickle protocol 5 out of band, plus a cache
of reused segments so no call pays for creating a segment or faulting in its pages.

```
sender:   pickle(args) --small--> in the message
                      \\--large buffers (bytes, bytearray, memoryview, numpy)--> a block of
                          the sender's BlockCache; the message carries ShmRef(name, 0, n)
receiver: attach(name) (cached) -> read-only memoryview slices -> pickle.loads(buffers=...)
```

Ownership: a block belongs to the process that created it (its name says so) and only that
process unlinks it. The receiver tells the owner when it is done with a block (the pool
frees argument blocks when the task's reply arrives; the worker frees result blocks when
the pool lists them in a later request), and the owner reuses it.
"""

from __future__ import annotations

import io
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from ._shm import Segment

__all__ = [
    "DEFAULT_SHM_THRESHOLD",
    "AttachmentCache",
    "BlockCache",
    "copied_on_load",
    "dumps_out_of_band",
    "has_large_buffer",
    "has_memoryview",
]

#: Buffers at least this large go through shared memory. Below it, copying into the pipe
#: message costs less than the bookkeeping of a block.
DEFAULT_SHM_THRESHOLD = 256 * 1024
#: Blocks come in powers of two from this size up, so a block freed by one call fits the
#: next call of a similar size.
_MIN_BLOCK = 1 << 20
#: Free blocks kept for reuse, in bytes per process; beyond that, freed blocks are unlinked.
_CACHE_BYTES = 1 << 30


def has_memoryview(values: Sequence[Any]) -> bool:
    """Whether a top-level value is a memoryview (plain pickle refuses those)."""
    return any(type(value) is memoryview for value in values)


def has_large_buffer(values: Sequence[Any], threshold: int) -> bool:
    """Whether a top-level value is a buffer of ``threshold`` bytes or more (a cheap check
    made before choosing the out-of-band pickler)."""
    for value in values:
        if isinstance(value, bytes | bytearray):
            if len(value) >= threshold:
                return True
        elif isinstance(value, memoryview):
            if value.nbytes >= threshold:
                return True
        elif getattr(value, "nbytes", 0) >= threshold and hasattr(value, "__array_interface__"):
            return True
    return False


def _rebuild_bytes(buffer: Any) -> bytes:
    return bytes(buffer)


def _rebuild_memoryview(buffer: Any) -> memoryview:
    return memoryview(buffer)


def _rebuild_bytearray(buffer: Any) -> bytearray:
    return bytearray(buffer)


class _OutOfBandPickler(pickle.Pickler):
    """Sends ``memoryview`` of ``threshold`` bytes or more out of band too (protocol 5
    does that on its own only for ``bytearray`` and numpy arrays)."""

    def __init__(self, file: io.BytesIO, threshold: int, buffers: list[pickle.PickleBuffer]):
        def keep_small_in_band(buffer: pickle.PickleBuffer) -> bool:
            if buffer.raw().nbytes < threshold:
                return True  # true: serialize in band
            buffers.append(buffer)
            return False

        super().__init__(file, protocol=5, buffer_callback=keep_small_in_band)
        self._threshold = threshold

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is memoryview:
            # Plain pickle refuses memoryviews; they arrive as (read-only) memoryviews,
            # out of band when large, else in the message.
            if obj.contiguous:
                return _rebuild_memoryview, (pickle.PickleBuffer(obj),)
            return _rebuild_memoryview, (obj.tobytes(),)
        return NotImplemented


class _BufferBox:
    """Carries a large ``bytes`` or ``bytearray`` out of band: the C pickler writes exact
    instances of both in band and never asks ``reducer_override`` about them, so the value
    is boxed before pickling."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        rebuild = _rebuild_bytes if type(self.data) is bytes else _rebuild_bytearray
        return rebuild, (pickle.PickleBuffer(self.data),)


def _box(value: Any, threshold: int) -> Any:
    if type(value) in (bytes, bytearray) and len(value) >= threshold:
        return _BufferBox(value)
    return value


def dumps_out_of_band(value: Any, threshold: int) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """Pickle ``value``; buffers of ``threshold`` bytes or more are returned apart.

    Large ``bytes`` are found at the top level and inside a top-level tuple (the arguments
    of a task); ``bytearray``, ``memoryview`` and numpy arrays anywhere."""
    if type(value) is tuple:
        value = tuple(_box(item, threshold) for item in value)
    else:
        value = _box(value, threshold)
    file = io.BytesIO()
    buffers: list[pickle.PickleBuffer] = []
    _OutOfBandPickler(file, threshold, buffers).dump(value)
    return file.getvalue(), buffers


def copied_on_load(buffer: pickle.PickleBuffer) -> bool:
    """Whether unpickling rebuilds this buffer as a copy (``bytes``, ``bytearray``) rather
    than as a view of it (``memoryview``, numpy arrays)."""
    return type(buffer.raw().obj) in (bytes, bytearray)


class BlockCache:
    """Segments this process owns, handed out as blocks and reused when freed."""

    def __init__(self, tag: str) -> None:
        self._tag = tag
        self._lock = threading.Lock()
        self._free: dict[int, list[Segment]] = {}
        self._free_bytes = 0
        self._in_use: dict[str, Segment] = {}

    @staticmethod
    def _size_class(nbytes: int) -> int:
        size = _MIN_BLOCK
        while size < nbytes:
            size <<= 1
        return size

    def store(self, buffer: pickle.PickleBuffer) -> Segment:
        """A block holding a copy of ``buffer``.

        Raises:
            SharedMemoryError: no shared memory left.
        """
        raw = buffer.raw()
        size = self._size_class(raw.nbytes)
        with self._lock:
            free = self._free.get(size)
            segment = free.pop() if free else None
            if segment is not None:
                self._free_bytes -= size
        if segment is None:
            segment = Segment.create(size, self._tag)
        segment.view[: raw.nbytes] = raw
        with self._lock:
            self._in_use[segment.name] = segment
        return segment

    def free(self, name: str) -> None:
        """The receiver is done with block ``name``: keep it for reuse (or unlink it)."""
        with self._lock:
            segment = self._in_use.pop(name, None)
            if segment is None:
                return
            if self._free_bytes + segment.size <= _CACHE_BYTES:
                self._free.setdefault(segment.size, []).append(segment)
                self._free_bytes += segment.size
                return
        segment.unlink()
        segment.close()

    def close(self) -> None:
        """Unlink every block, free or in use."""
        with self._lock:
            segments = list(self._in_use.values())
            for free in self._free.values():
                segments.extend(free)
            self._in_use.clear()
            self._free.clear()
            self._free_bytes = 0
        for segment in segments:
            segment.unlink()
            segment.close()


class AttachmentCache:
    """Mappings of other processes' segments, kept so a reused block is mapped once."""

    def __init__(self, capacity: int = 64) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._segments: OrderedDict[str, Segment] = OrderedDict()

    def view(self, name: str, offset: int, length: int) -> memoryview:
        """A read-only view of ``length`` bytes at ``offset`` of segment ``name``."""
        with self._lock:
            segment = self._segments.get(name)
            if segment is not None:
                self._segments.move_to_end(name)
        if segment is None:
            segment = Segment.attach(name)
            with self._lock:
                self._segments[name] = segment
                while len(self._segments) > self._capacity:
                    _, old = self._segments.popitem(last=False)
                    old.close()
        return segment.view[offset : offset + length].toreadonly()

    def forget(self, predicate: Callable[[str], bool]) -> None:
        """Unmap the segments whose names match (their owner is gone)."""
        with self._lock:
            names = [n for n in self._segments if predicate(n)]
            segments = [self._segments.pop(n) for n in names]
        for segment in segments:
            segment.close()

    def close(self) -> None:
        self.forget(lambda _name: True)
