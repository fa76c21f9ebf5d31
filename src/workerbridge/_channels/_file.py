"""The file channel: what a worker does for ``WorkerBridge.file`` (and for the crypto
bridge's hashing, whose operations live in ``_hashing`` and are registered with this channel).

Operations (paths are ``str``; the worker opens the files itself, so file data never crosses
the pipe; results of 256 KiB or more come back through shared memory):

- ``("file", "read")``: ``(path, offset, length | None) -> bytes``: the range, shorter if
  the file ends first;
- ``("file", "write")``: ``(path, data) -> bytes written``; ``data`` (large ones arrive in
  shared memory) is written into the existing empty file ``path``;
- ``("file", "copy")``: ``(src, dst) -> bytes copied``: all of ``src`` into the existing
  empty file ``dst``;
- ``("file", "copy_range")``: ``(src, src_offset, length, dst, dst_offset) -> length``: one
  range, for split and join (parts are copied in parallel, each by one call).

Output files are temporaries that the caller created and renames when every call has
succeeded: a worker never creates a file (``O_CREAT`` is not used), so a call that starts
after its operation was cancelled and its temporary removed fails instead of leaving a file
behind. Every operation reports progress in bytes and checks for a cancel between chunks.

Copies go through the kernel: ``copy_file_range`` (no copy through user space; a reflink on
file systems that have them), else ``sendfile``, else ``pread``/``pwrite`` with one buffer.

Raises (all operations): ``OperationError`` naming the file for any ``OSError`` (a file that
vanished or changed after the caller's checks, a full disk), ``TaskCancelledError`` on
cancel or timeout.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from .._exceptions import OperationError
from .._worker import current_task, operation
from . import _hashing  # noqa: F401  # registers ("file", "hash"), ("file", "hash_file"), ...
from ._hashing import advise_sequential, file_error

__all__ = ["copy", "copy_range", "read", "write"]

#: Bytes per read, write or in-kernel copy step: the unit of progress and of cancel checks.
#: 8 MiB keeps a cancel within a few ms at page-cache speed and makes the per-step
#: overhead (a syscall, a progress report) negligible.
CHUNK = 8 << 20

#: ``copy_file_range`` / ``sendfile`` refuse some pairs of files (another file system on
#: older kernels, file systems without support, seccomp sandboxes): then the next method
#: is used.
_UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM}


def _open(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC)


@operation("file", "read")
def read(path: str, offset: int, length: int | None) -> bytes:
    """``length`` bytes (to the end of the file if None) of ``path`` from ``offset``;
    fewer if the file ends first, empty at or beyond its end."""
    ctx = current_task()
    try:
        fd = _open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            end = size if length is None else min(size, offset + length)
            want = max(0, end - offset)
            advise_sequential(fd)
            buffer = bytearray(want)
            done = 0
            with memoryview(buffer) as view:
                while done < want:
                    ctx.raise_if_cancelled()
                    count = os.preadv(fd, [view[done : done + CHUNK]], offset + done)
                    if count == 0:
                        break  # the file shrank since fstat
                    done += count
                    ctx.report(done, want)
        finally:
            os.close(fd)
    except OSError as exc:
        raise file_error(exc, path) from None
    if done < want:
        del buffer[done:]
    return bytes(buffer)


@operation("file", "write")
def write(path: str, data: Any) -> int:
    """Write the bytes-like ``data`` into the existing file ``path`` from its start."""
    ctx = current_task()
    with memoryview(data) as given:
        view = given if given.c_contiguous else memoryview(given.tobytes())
        with view.cast("B") as raw:
            total = raw.nbytes
            try:
                fd = _open(path, os.O_WRONLY)
                try:
                    done = 0
                    while done < total:
                        ctx.raise_if_cancelled()
                        done += os.write(fd, raw[done : done + CHUNK])
                        ctx.report(done, total)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise file_error(exc, path, "write") from None
    return done


@operation("file", "copy")
def copy(src: str, dst: str) -> int:
    """Copy all of ``src`` into the existing empty file ``dst``; the bytes copied (to the
    end of ``src`` as it is while copying)."""
    return _copy_files(src, 0, None, dst, 0)


@operation("file", "copy_range")
def copy_range(src: str, src_offset: int, length: int, dst: str, dst_offset: int) -> int:
    """Copy ``length`` bytes of ``src`` from ``src_offset`` to ``dst`` (an existing file)
    at ``dst_offset``.

    Raises:
        OperationError: ``src`` ends before the range does (it changed after the caller
            measured it).
    """
    copied = _copy_files(src, src_offset, length, dst, dst_offset)
    if copied < length:
        raise OperationError(
            f"{src!r} ended after {src_offset + copied} bytes, before the end of its range "
            f"{src_offset}..{src_offset + length}: it changed while it was being copied"
        )
    return copied


def _copy_files(src: str, src_offset: int, length: int | None, dst: str, dst_offset: int) -> int:
    try:
        src_fd = _open(src, os.O_RDONLY)
    except OSError as exc:
        raise file_error(exc, src) from None
    try:
        try:
            dst_fd = _open(dst, os.O_WRONLY)
        except OSError as exc:
            raise file_error(exc, dst, "write") from None
        try:
            try:
                total = length
                if total is None:
                    total = max(0, os.fstat(src_fd).st_size - src_offset)
                advise_sequential(src_fd)
                return _copy_fds(src_fd, src_offset, length, total, dst_fd, dst_offset)
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise OperationError(f"cannot copy {src!r} to {dst!r}: {reason}") from None
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _copy_fds(
    src: int, src_offset: int, length: int | None, total: int, dst: int, dst_offset: int
) -> int:
    """Copy from ``src`` to ``dst`` until ``length`` bytes (None: the end of ``src``) are
    done; returns the bytes copied. Tries the kernel's ways first, falling back only
    before the first byte was copied by them (so no range is copied twice or skipped)."""
    ctx = current_task()
    done = 0
    methods = [_step_copy_file_range, _step_sendfile, _step_read_write]
    method = methods.pop(0)
    buffer: bytearray | None = None
    while length is None or done < length:
        ctx.raise_if_cancelled()
        count = CHUNK if length is None else min(CHUNK, length - done)
        try:
            if method is _step_read_write and buffer is None:
                buffer = bytearray(CHUNK)
            copied = method(src, src_offset + done, dst, dst_offset + done, count, buffer)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED or not methods:
                raise
            method = methods.pop(0)
            continue
        if copied == 0:
            break  # end of src
        methods = []  # it works: never fall back in the middle of a file
        done += copied
        if total > 0:
            ctx.report(done, max(total, done))
    return done


def _step_copy_file_range(
    src: int, src_at: int, dst: int, dst_at: int, count: int, _buffer: bytearray | None
) -> int:
    return os.copy_file_range(src, dst, count, src_at, dst_at)


def _step_sendfile(
    src: int, src_at: int, dst: int, dst_at: int, count: int, _buffer: bytearray | None
) -> int:
    os.lseek(dst, dst_at, os.SEEK_SET)  # sendfile writes at the output's position
    return os.sendfile(dst, src, src_at, count)


def _step_read_write(
    src: int, src_at: int, dst: int, dst_at: int, count: int, buffer: bytearray | None
) -> int:
    assert buffer is not None
    with memoryview(buffer) as view:
        got = os.preadv(src, [view[:count]], src_at)
        written = 0
        while written < got:
            written += os.pwrite(dst, view[written:got], dst_at + written)
    return got
