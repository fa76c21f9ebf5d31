"""The argument checks of ``CryptoBridge``: each returns the value as it is dispatched
(bytes, a flat view, an absolute path) or raises ``ValidationError`` naming the argument.

They run in the caller before anything is dispatched, so a bad argument never reaches a
worker. A message names the argument and what was wrong with it, never key bytes.
"""

from __future__ import annotations

import os
import stat
from typing import TypeAlias

from .._channels._aead_stream import KEY_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, NONCE_SIZE
from .._exceptions import ValidationError
from ._paths import absolute_path

__all__ = [
    "HASH_ALGORITHMS",
    "Data",
    "PathLike",
    "check_aad",
    "check_algorithm",
    "check_bytes",
    "check_chunk_size",
    "check_data",
    "check_input_file",
    "check_int",
    "check_key",
    "check_nonce",
    "check_output",
    "check_source",
]

Data: TypeAlias = bytes | bytearray | memoryview
PathLike: TypeAlias = str | os.PathLike[str]

#: What ``hash`` and ``hash_file`` accept (the file channel's hashing ops implement them).
HASH_ALGORITHMS = frozenset({"sha256", "sha512", "sha3_256", "blake2b", "blake3"})


def check_data(name: str, value: object, limit: int | None) -> Data:
    """``value`` checked as bytes-like: bytes and bytearray as they are (they pickle
    without a copy of their own), a memoryview as a flat view of its bytes."""
    if isinstance(value, bytes | bytearray):
        size = len(value)
    elif isinstance(value, memoryview):
        if not value.c_contiguous:
            raise ValidationError(f"{name} must be a contiguous buffer")
        if value.format != "B" or value.ndim != 1:
            value = value.cast("B")
        size = value.nbytes
    else:
        raise ValidationError(
            f"{name} must be bytes, bytearray or memoryview, got {type(value).__name__}"
        )
    if limit is not None and size > limit:
        raise ValidationError(f"{name} must be at most {limit} bytes, got {size}")
    return value


def check_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise ValidationError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def check_key(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise ValidationError(f"key must be bytes, got {type(value).__name__}")
    if len(value) != KEY_SIZE:
        raise ValidationError(f"key must be {KEY_SIZE} bytes (AES-256), got {len(value)}")
    return bytes(value)


def check_nonce(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise ValidationError(f"nonce must be bytes or None, got {type(value).__name__}")
    if len(value) != NONCE_SIZE:
        raise ValidationError(f"nonce must be {NONCE_SIZE} bytes, got {len(value)}")
    return bytes(value)


def check_aad(value: object, limit: int) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValidationError(f"aad must be bytes or None, got {type(value).__name__}")
    view = check_data("aad", value, limit)
    return bytes(view)


def check_int(name: str, value: object, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValidationError(f"{name} must be {bounds}, got {value}")
    return value


def check_chunk_size(value: object) -> int:
    return check_int("chunk_size", value, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)


def check_algorithm(value: object) -> str:
    if not isinstance(value, str) or value not in HASH_ALGORITHMS:
        raise ValidationError(
            f"algorithm must be one of {', '.join(sorted(HASH_ALGORITHMS))}, got {value!r}"
        )
    return value


def check_input_file(name: str, value: object) -> tuple[str, int]:
    path = absolute_path(name, value)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ValidationError(f"{name}: cannot open {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(f"{name}: {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise ValidationError(f"{name}: {path} is not readable")
    return path, info.st_size


def check_source(value: object) -> tuple[memoryview | str, int]:
    if isinstance(value, bytes | bytearray | memoryview):
        view = memoryview(check_data("data_or_path", value, None))  # sliced per range, no copies
        return view, len(view)
    if isinstance(value, str | os.PathLike):
        return check_input_file("data_or_path", value)
    raise ValidationError(
        f"data_or_path must be bytes, bytearray, memoryview or a path, got {type(value).__name__}"
    )


def check_output(value: object) -> str:
    path = absolute_path("output", value)
    if os.path.isdir(path):
        raise ValidationError(f"output: {path} is a directory")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise ValidationError(f"output: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValidationError(f"output: folder {folder} is not writable")
    return path
