"""Importable task functions for the shared-memory data path (``tests/shm``).

Large arguments and results travel through shared memory; these tasks make, describe,
hold, try to modify and move such values. They live in the package (not in test files) so
that every worker, under any start method, imports them by reference. The value builders
are deterministic: the caller and a worker that build ``make(kind, nbytes, seed)`` get the
same content, so a result made in a worker is checked against one made in the test.

None of them sleeps to synchronise: a task that must be caught in the middle creates a
marker file and waits for a release file (``tasks.touch`` / ``tasks.wait_for_file``).
numpy is imported only by the tasks that need it.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from typing import Any

from .._transport import SharedBuffer, transfer
from ._tasks import touch, wait_for_file

__all__ = [
    "KINDS",
    "NUMPY_KINDS",
    "break_fallocate",
    "describe",
    "describe_all",
    "fill_buffer",
    "fill_buffer_with",
    "granularity",
    "hold",
    "make",
    "make_after_marker",
    "make_shared_buffer",
    "mutate_copy",
    "read_stash",
    "stash",
    "unlock_array",
    "write_into",
]

#: Every kind of value ``make`` builds. The numpy kinds cover several dtypes and shapes:
#: 1-D and 2-D C-contiguous, 3-D Fortran-ordered, and a strided (non-contiguous) view.
KINDS = (
    "bytes",
    "bytearray",
    "memoryview",
    "float64",
    "int32-2d",
    "complex64-3d-F",
    "uint8-strided",
)
NUMPY_KINDS = KINDS[3:]

#: Bytes per step of each kind's size (an item, or a row of the 2-D array).
_STEP = {
    "bytes": 1,
    "bytearray": 1,
    "memoryview": 1,
    "float64": 8,
    "int32-2d": 4 * 64,
    "complex64-3d-F": 8 * 4 * 4,
    "uint8-strided": 1,
}


def granularity(kind: str) -> int:
    """The smallest change of size (in bytes) that ``make(kind, ...)`` can express."""
    return _STEP[kind]


def _random_bytes(nbytes: int, seed: int) -> bytes:
    import numpy as np

    data: bytes = np.random.default_rng(seed).bytes(nbytes)
    return data


def make(kind: str, nbytes: int, seed: int = 0) -> Any:
    """A value of ``kind`` holding ``nbytes`` bytes of content derived from ``seed``
    (``nbytes`` must be a multiple of ``granularity(kind)``)."""
    if nbytes % _STEP[kind]:
        raise ValueError(f"{kind} needs a multiple of {_STEP[kind]} bytes, got {nbytes}")
    data = _random_bytes(nbytes, seed)
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(bytearray(data))
    import numpy as np

    if kind == "float64":
        return np.frombuffer(data, dtype=np.uint64).astype(np.float64)
    if kind == "int32-2d":
        return np.frombuffer(data, dtype=np.int32).reshape(-1, 64).copy()
    if kind == "complex64-3d-F":
        flat = np.frombuffer(data, dtype=np.complex64)
        return np.asfortranarray(flat.reshape(-1, 4, 4))
    if kind == "uint8-strided":
        # Every other byte of a buffer twice as large: a view that is not contiguous.
        base = np.zeros(2 * nbytes, dtype=np.uint8)
        base[::2] = np.frombuffer(data, dtype=np.uint8)
        return base[::2]
    raise ValueError(f"unknown kind {kind!r}")


def _content_digest(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return hashlib.sha256(value).hexdigest()
    if isinstance(value, memoryview):
        if not value.c_contiguous:
            value = value.tobytes()
        return hashlib.sha256(value).hexdigest()
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(value).data).hexdigest()


def describe(value: Any) -> dict[str, Any]:
    """Type, layout, writability and a sha256 of the content of ``value`` (a buffer, an
    array or a ``SharedBuffer``), as plain data that compares equal across processes."""
    if isinstance(value, SharedBuffer):
        return {
            "type": "SharedBuffer",
            "nbytes": len(value.view),
            "sha256": hashlib.sha256(value.view).hexdigest(),
        }
    if isinstance(value, bytes | bytearray | memoryview):
        view = memoryview(value)
        return {
            "type": type(value).__name__,
            "nbytes": view.nbytes,
            "readonly": view.readonly,
            "sha256": _content_digest(value),
        }
    return {
        "type": type(value).__name__,
        "dtype": str(value.dtype),
        "shape": tuple(value.shape),
        "nbytes": int(value.nbytes),
        "readonly": not value.flags.writeable,
        "sha256": _content_digest(value),
    }


def describe_all(*values: Any) -> list[Any]:
    """``describe`` each buffer or array; other values come back as they are."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, bytes | bytearray | memoryview | SharedBuffer) or hasattr(
            value, "__array_interface__"
        ):
            out.append(describe(value))
        else:
            out.append(value)
    return out


def write_into(value: Any) -> str:
    """Write into the first item of the argument (it should be read-only: raises)."""
    if isinstance(value, memoryview):
        value[0] = (value[0] + 1) % 256
    else:
        value[(0,) * value.ndim] = 1
    return "written"


def unlock_array(value: Any) -> str:
    """Try to make a read-only array argument writable (numpy refuses: raises)."""
    value.setflags(write=True)
    return "unlocked"


def mutate_copy(value: bytearray) -> dict[str, Any]:
    """Flip the first byte of a ``bytearray`` argument (the worker's own copy) and describe
    the result."""
    value[0] ^= 0xFF
    return describe(value)


def hold(value: Any, started: str, release: str, timeout: float = 30.0) -> dict[str, Any]:
    """Create ``started`` while holding ``value``, wait for ``release``, then describe it."""
    touch(started)
    wait_for_file(release, timeout)
    return describe(value)


_stash: list[Any] = []


def stash(value: Any) -> int:
    """Keep the argument past the task's end (against the rules: it is valid only until the
    task returns); return how many are kept."""
    _stash.append(value)
    return len(_stash)


def read_stash() -> list[str]:
    """Read every kept argument (their blocks may hold other calls' data by now) and
    forget them; return their sha256."""
    digests = [_content_digest(value) for value in _stash]
    _stash.clear()
    return digests


def make_after_marker(kind: str, nbytes: int, seed: int, marker: str) -> Any:
    """Create ``marker``, then build and return ``make(kind, nbytes, seed)``."""
    touch(marker)
    return make(kind, nbytes, seed)


def fill_buffer(buffer: SharedBuffer, byte: int, give_back: str = "transfer") -> Any:
    """Describe the transferred ``buffer`` as received, then fill it with ``byte``.

    ``give_back``: ``"transfer"`` returns ``(description, transfer(buffer))``, ``"plain"``
    returns ``(description, buffer)``, ``"none"`` returns only the description (the buffer
    is not given back).
    """
    seen = describe(buffer)
    buffer.view[:] = bytes([byte]) * len(buffer.view)
    if give_back == "transfer":
        return seen, transfer(buffer)
    if give_back == "plain":
        return seen, buffer
    return seen


def fill_buffer_with(buffer: SharedBuffer, byte: Callable[[], int]) -> Any:
    """``fill_buffer(buffer, byte(), "transfer")``: ``byte`` is a callable, so that the
    arguments need cloudpickle (a lambda)."""
    return fill_buffer(buffer, byte(), "transfer")


def make_shared_buffer(nbytes: int, byte: int) -> SharedBuffer:
    """A ``SharedBuffer`` created in the worker, filled with ``byte``, moved to the caller."""
    buffer = SharedBuffer(nbytes)
    buffer.view[:] = bytes([byte]) * nbytes
    return transfer(buffer)


def _no_space(fd: int, offset: int, length: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def break_fallocate() -> None:
    """An initializer: make this worker's ``/dev/shm`` look full (``posix_fallocate``
    fails with ENOSPC), as a full tmpfs would."""
    os.posix_fallocate = _no_space
