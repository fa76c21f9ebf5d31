"""Task functions that every contender runs, importable by reference in any worker.

They copy the bodies of ``workerbridge.testing.tasks`` but import only the standard
library: importing ``workerbridge.testing`` in a peer's worker would load workerbridge
(msgspec, cloudpickle, psutil) into it and charge that to the peer's first task.

The two ``*_shared`` tasks take a workerbridge ``SharedBuffer`` and hand it back with
``transfer()``; only workerbridge's workers run them, and they import workerbridge inside
the function (it is loaded there already: the buffer was unpickled by it).
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from typing import Any

__all__ = [
    "echo",
    "getpid",
    "hash_chunks",
    "kill_self",
    "length",
    "noop",
    "sha256_hex",
    "sha256_shared",
    "sleep",
    "square",
    "touch_shared",
]


def noop() -> None:
    return None


def square(x: int) -> int:
    return x * x


def hash_chunks(total_bytes: int, chunk_bytes: int) -> str:
    """sha256 over ``total_bytes`` made in ``chunk_bytes`` pieces inside the worker.

    The block is 4 KiB of random bytes repeated: ``os.urandom`` of a whole 8 MiB block
    costs about as long as hashing it (~250 MB/s), which would drown the hashing.
    """
    block = (os.urandom(4096) * (chunk_bytes // 4096 + 1))[:chunk_bytes]
    digest = hashlib.sha256()
    for _ in range(total_bytes // chunk_bytes):
        digest.update(block)
    return digest.hexdigest()


def length(data: Any) -> int:
    """The size of a data argument (it has crossed one way)."""
    return len(data)


def echo(data: Any) -> Any:
    """The argument itself, sent back (it crosses both ways)."""
    return data


def sha256_hex(data: Any) -> str:
    """sha256 of a chunk sent by the caller."""
    return hashlib.sha256(data).hexdigest()


def sha256_shared(buffer: Any) -> tuple[str, Any]:
    """sha256 of a ``SharedBuffer`` moved in with ``transfer()``; the buffer moves back."""
    from workerbridge import transfer

    return hashlib.sha256(buffer.view).hexdigest(), transfer(buffer)


def touch_shared(buffer: Any) -> Any:
    """Add 1 to the first byte of a ``SharedBuffer`` moved in with ``transfer()`` (the
    caller sees it: no copy was made) and move it back."""
    from workerbridge import transfer

    view = buffer.view
    view[0] = (view[0] + 1) & 0xFF
    return transfer(buffer)


def getpid() -> int:
    return os.getpid()


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def kill_self(path: str) -> None:
    """Write ``time.monotonic()`` to ``path``, then SIGKILL this worker.

    CLOCK_MONOTONIC is one clock for the whole system, so the caller can subtract this
    instant from its own ``time.monotonic()``. The file is opened before the clock is read;
    only a small ``write`` and the ``close`` lie between the reading and the kill.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    killed_at = time.monotonic()
    os.write(fd, repr(killed_at).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
