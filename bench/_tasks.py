"""Task functions that every contender runs, importable by reference in any worker.

They copy the bodies of ``workerbridge.testing.tasks`` but import only the standard
library: importing ``workerbridge.testing`` in a peer's worker would load workerbridge
(msgspec, cloudpickle, psutil) into it and charge that to the peer's first task.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time

__all__ = ["getpid", "hash_chunks", "kill_self", "noop", "sleep", "square"]


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
