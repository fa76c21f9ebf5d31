"""Hashing for the file and crypto bridges, and the checksum-file format of ``sha256sum``.

Operations (the crypto bridge calls them too, so their names and arguments are fixed):

- ``("file", "hash")``: ``(data, algorithm) -> hex str``, ``data`` a bytes-like object
  (large ones arrive through shared memory and are hashed in place);
- ``("file", "hash_file")``: ``(path: str, algorithm) -> hex str``; the worker reads the
  file itself, so its bytes never cross the pipe;
- ``("file", "hash_many")``: ``(paths, algorithm) -> [hex str, ...]``: many (small) files
  in one call;
- ``("file", "verify_many")``: ``([(path, expected hex), ...], algorithm) -> ["ok" |
  "failed" | "missing", ...]``: lines of a manifest (a vanished file is "missing", not an
  error).

All of them report progress in bytes and stop with ``TaskCancelledError`` within one buffer
of a cancel or timeout. A file that cannot be read raises ``OperationError`` naming it.

Algorithms: ``sha256``, ``sha512``, ``sha3_256``, ``blake2b`` (hashlib, i.e. OpenSSL; BLAKE2b
with its full 64-byte digest, as ``b2sum`` prints) and ``blake3`` (the ``blake3`` package,
single-threaded: a pool keeps every core busy with one file per worker, and BLAKE3's own
threads measured 7 % faster alone but slower than one thread when two workers hash at once).

The checksum-file format (``format_line``, ``parse_manifest``) is GNU coreutils' untagged
text format, ``<hex>  <name>``, for every algorithm: exactly what ``sha256sum``,
``sha512sum`` and ``b2sum`` (BLAKE2b-512) print and check (tested against coreutils 9.1),
and the format of BLAKE3's own ``b3sum``. SHA3-256 has no ``*sum`` tool in coreutils 9.1;
its manifests use the same format, with 64 hex digits, so the algorithm has to be known
when verifying (as for every format without tags).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol, final

import msgspec

from .._exceptions import ChecksumMismatchError, OperationError, ValidationError
from .._worker import current_task, operation

__all__ = [
    "ALGORITHMS",
    "HASH_BUFFER",
    "ManifestReport",
    "check_algorithm",
    "digest_length",
    "file_error",
    "format_line",
    "new_hasher",
    "parse_manifest",
]

#: The algorithms every hashing operation accepts, in the order the docs list them.
ALGORITHMS = ("sha256", "sha512", "sha3_256", "blake2b", "blake3")
#: Hex digits of each algorithm's digest (a manifest line is checked against it).
_HEX_DIGITS = {"sha256": 64, "sha512": 128, "sha3_256": 64, "blake2b": 128, "blake3": 64}
#: Bytes read and hashed per step. 1, 2, 4 and 8 MiB measured the same (3.5 GiB/s of
#: sha256 over two files on two cores, page cache warm); 2 MiB keeps a cancel within ~1 ms
#: of sha256 (~3 ms of sha3_256) and the buffer small, while each update is large enough
#: that hashlib releases the GIL for it (thread backend) and the loop's overhead vanishes.
HASH_BUFFER = 2 << 20


class Hasher(Protocol):
    def update(self, data: memoryview, /) -> object: ...
    def hexdigest(self) -> str: ...


def check_algorithm(algorithm: object, argument: str = "algorithm") -> str:
    """``algorithm`` if it is one of ``ALGORITHMS``.

    Raises:
        ValidationError: anything else (the message names ``argument`` and the choices).
    """
    if not isinstance(algorithm, str) or algorithm not in _HEX_DIGITS:
        raise ValidationError(
            f"{argument} must be one of {', '.join(ALGORITHMS)}; got {algorithm!r}"
        )
    return algorithm


def digest_length(algorithm: str) -> int:
    """Hex digits of ``algorithm``'s digest."""
    return _HEX_DIGITS[check_algorithm(algorithm)]


def new_hasher(algorithm: str) -> Hasher:
    """A fresh hash object of ``algorithm``.

    Raises:
        ValidationError: unknown algorithm.
    """
    check_algorithm(algorithm)
    if algorithm == "blake3":
        import blake3  # imported on first use: callers that never ask for it do not load it

        # One thread (the default): see the module docstring for the measurement.
        return blake3.blake3()
    return hashlib.new(algorithm)


def file_error(exc: OSError, path: str, action: str = "read") -> OperationError:
    """The ``OperationError`` for an ``OSError`` met while working on ``path`` (the file
    vanished, a permission changed, a disk failed after the caller's checks)."""
    reason = exc.strerror or type(exc).__name__
    return OperationError(f"cannot {action} {path!r}: {reason}")


def advise_sequential(fd: int) -> None:
    """Tell the kernel ``fd`` will be read front to back (larger read-ahead on a cold
    cache). Only a hint: unsupported platforms and file systems are ignored."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        try:
            advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError:
            pass


def _byte_view(data: Any) -> memoryview:
    view = memoryview(data)
    if not view.c_contiguous:  # hashlib takes only contiguous buffers
        view = memoryview(view.tobytes())
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


_local = threading.local()


def _hash_path(path: str, algorithm: str, base: int = 0, total: int = 0) -> tuple[str, int]:
    """The digest of the file at ``path`` and its bytes; raises the ``OSError`` of a
    failed open or read. Progress is reported as ``base`` + bytes hashed of ``total`` (of
    the file's size when ``total`` is 0): a batch of files reports as one."""
    ctx = current_task()
    hasher = new_hasher(algorithm)
    # The thread's buffer is made once: a fresh 2 MiB bytearray per file is zero-filled each
    # time, which costs more than hashing a small file. It is taken while in use, so a
    # nested call on the same thread (an inline task started from a progress callback)
    # gets a buffer of its own.
    buffer: bytearray = getattr(_local, "buffer", None) or bytearray(HASH_BUFFER)
    _local.buffer = None
    try:
        # buffering=0: readinto goes straight to read(2) into our buffer, no second copy.
        with open(path, "rb", buffering=0) as file, memoryview(buffer) as view:
            fd = file.fileno()
            if not total:
                total = os.fstat(fd).st_size
            advise_sequential(fd)
            done = base
            while True:
                ctx.raise_if_cancelled()
                count = file.readinto(view)
                if not count:
                    break
                hasher.update(view[:count] if count < HASH_BUFFER else view)
                done += count
                ctx.report(done, max(total, done))
    finally:
        _local.buffer = buffer
    return hasher.hexdigest(), done - base


def _sizes(paths: Sequence[str]) -> list[int]:
    sizes = []
    for path in paths:
        try:
            sizes.append(os.stat(path).st_size)
        except OSError:
            sizes.append(0)  # reported when it is opened
    return sizes


@operation("file", "hash")
def hash_data(data: Any, algorithm: str) -> str:
    """The hex digest of the bytes-like ``data``; progress in bytes, a cancel seen
    between buffers."""
    ctx = current_task()
    hasher = new_hasher(algorithm)
    with _byte_view(data) as view:
        total = view.nbytes
        for start in range(0, total, HASH_BUFFER):
            ctx.raise_if_cancelled()
            end = min(start + HASH_BUFFER, total)
            hasher.update(view[start:end])
            ctx.report(end, total)
    return hasher.hexdigest()


@operation("file", "hash_file")
def hash_file(path: str, algorithm: str) -> str:
    """The hex digest of the file at ``path``, read by this worker.

    Raises:
        OperationError: the file cannot be opened or read (it vanished after the caller
            checked it, permissions, I/O error).
    """
    try:
        return _hash_path(path, algorithm)[0]
    except OSError as exc:
        raise file_error(exc, path) from None


@operation("file", "hash_many")
def hash_many(paths: Sequence[str], algorithm: str) -> list[str]:
    """The hex digests of the files at ``paths``, in order: one call for many small files,
    whose cost would otherwise be the round trip per file. Progress counts the bytes of
    all of them.

    Raises:
        OperationError: a file cannot be opened or read (the message names it).
    """
    total = sum(_sizes(paths))
    digests = []
    done = 0
    for path in paths:
        try:
            digest, size = _hash_path(path, algorithm, done, total)
        except OSError as exc:
            raise file_error(exc, path) from None
        digests.append(digest)
        done += size
    return digests


@operation("file", "verify_many")
def verify_many(entries: Sequence[tuple[str, str]], algorithm: str) -> list[str]:
    """For each ``(path, expected hex digest)``: ``"ok"`` if the file's digest is the
    expected one (any case), ``"failed"`` if it differs or the file cannot be read (a
    directory, no permission, an I/O error: what ``sha256sum -c`` calls FAILED),
    ``"missing"`` if it does not exist (any more)."""
    total = sum(_sizes([path for path, _ in entries]))
    statuses = []
    done = 0
    for path, expected in entries:
        try:
            digest, size = _hash_path(path, algorithm, done, total)
        except (FileNotFoundError, NotADirectoryError):
            statuses.append("missing")
            continue
        except OSError:
            statuses.append("failed")
            continue
        statuses.append("ok" if digest == expected.lower() else "failed")
        done += size
    return statuses


# --------------------------------------------------------------------- checksum files
#: What ``sha256sum`` escapes in a file name (coreutils 9.1: backslash, newline and
#: carriage return); a line with an escaped name starts with a backslash.
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\\\": "\\", "\\n": "\n", "\\r": "\r"}
_NEEDS_ESCAPE = re.compile(r"[\\\n\r]")
_ESCAPE_SEQUENCE = re.compile(r"\\(.?)", re.DOTALL)
_HEX = re.compile(r"[0-9a-fA-F]+")


def format_line(digest: str, name: str) -> str:
    """One line of a checksum file, exactly as ``sha256sum`` prints it for ``name`` (text
    mode: two spaces), ending in a newline."""
    if _NEEDS_ESCAPE.search(name) is None:
        return f"{digest}  {name}\n"
    escaped = _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], name)
    return f"\\{digest}  {escaped}\n"


def _unescape(name: str) -> str | None:
    bad = False

    def replace(match: re.Match[str]) -> str:
        nonlocal bad
        sequence = match.group()
        if sequence not in _UNESCAPES:
            bad = True
            return sequence
        return _UNESCAPES[sequence]

    result = _ESCAPE_SEQUENCE.sub(replace, name)
    return None if bad else result


def parse_manifest(text: str, algorithm: str) -> list[tuple[str, str]]:
    """The ``(name, lower-case hex digest)`` pairs of a checksum file, in its order.

    Reads what ``format_line`` writes and what ``sha256sum`` & co. print, in text mode
    (``<hex>  <name>``) or binary mode (``<hex> *<name>``), with escaped names (a leading
    backslash). Empty lines are skipped. The BSD ``--tag`` format is not read.

    Raises:
        ValidationError: a line that is not in that format, or whose digest does not have
            the length of ``algorithm``'s (the message says which line, counting from 1).
    """
    width = digest_length(algorithm)
    entries: list[tuple[str, str]] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw
        if not line:
            continue
        escaped = line.startswith("\\")
        if escaped:
            line = line[1:]
        digest, mark, name = line[:width], line[width : width + 2], line[width + 2 :]
        problem = None
        if _HEX.fullmatch(digest) is None or mark not in ("  ", " *"):
            shown = line.split(" ", 1)[0]
            if _HEX.fullmatch(shown) is not None and len(shown) != width:
                problem = f"a digest of {len(shown)} hex digits ({algorithm} has {width})"
            else:
                problem = f"not '<{algorithm} hex>  <name>'"
        elif not name:
            problem = "no file name"
        elif escaped:
            unescaped = _unescape(name)
            if unescaped is None:
                problem = "an unknown escape sequence in the file name"
            else:
                name = unescaped
        if problem is not None:
            raise ValidationError(f"manifest line {number}: {problem}: {raw[:200]!r}")
        entries.append((name, digest.lower()))
    return entries


#: File names shown in a ``ChecksumMismatchError`` message at most (the report has all).
_NAMES_IN_MESSAGE = 10


@final
class ManifestReport(msgspec.Struct, frozen=True):
    """What ``verify_manifest`` found: the names of the manifest (as written in it) whose
    files matched (``ok``), did not match or could not be read (``failed``) or do not exist
    (``missing``), each in manifest order."""

    ok: tuple[str, ...]
    failed: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """True when every file of the manifest matched."""
        return not self.failed and not self.missing

    def raise_for_failures(self) -> ManifestReport:
        """Return this report if it ``passed``.

        Raises:
            ChecksumMismatchError: some files failed or are missing; the message counts them
                and names the first few of each.
        """
        if self.passed:
            return self
        parts = []
        for label, names in (("failed", self.failed), ("missing", self.missing)):
            if names:
                shown = ", ".join(repr(n) for n in names[:_NAMES_IN_MESSAGE])
                more = len(names) - _NAMES_IN_MESSAGE
                parts.append(
                    f"{len(names)} {label}: {shown}" + (f" and {more} more" if more > 0 else "")
                )
        checked = len(self.ok) + len(self.failed) + len(self.missing)
        raise ChecksumMismatchError(f"{checked} files checked, " + "; ".join(parts))
