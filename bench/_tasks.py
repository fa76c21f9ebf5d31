"""Task functions that every contender runs, importable by reference in any worker.

They copy the bodies of ``workerbridge.testing.tasks`` but import only the standard
library: importing ``workerbridge.testing`` in a peer's worker would load workerbridge
(msgspec, cloudpickle, psutil) into it and charge that to the peer's first task.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["hash_chunks", "noop", "square"]


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
