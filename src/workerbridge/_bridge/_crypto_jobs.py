"""The file jobs of ``CryptoBridge``: the drivers of ``encrypt_file`` and ``decrypt_file``.

A driver cuts the chunked format (docs/format.md) into ranges of whole chunks, runs one
``crypto.seal_range`` / ``crypto.open_range`` call per range on the workers, a bounded
number in flight, and puts the results together: joined behind the header for a bytes
result, or written by the workers themselves (``pwrite`` at each range's offset) into a
preallocated temporary file that is renamed over the output at the end and removed on any
error, cancel or timeout. How many chunks go to one call is the bridge's choice
(``chunks_per_call``). The arguments were checked by the bridge before the job started.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias, final

from .._channels._aead_stream import (
    HEADER_SIZE,
    TAG_SIZE,
    Header,
    chunk_count,
    ciphertext_size,
    derive_subkey,
    encode_header,
    layout_of,
    parse_header,
)
from .._channels._results import FileResult
from .._exceptions import OperationError
from .._pool import TaskHandle
from ._job import Job

__all__ = ["ChunksPerCall", "open_job", "seal_job"]

#: ``(chunks, chunk_size, workers) -> chunks per channel call`` (at least 1).
ChunksPerCall: TypeAlias = Callable[[int, int, int], int]

#: One channel call of a file job: the operation's leading arguments, where its input
#: starts in the source and how long it is, and where its output goes in the destination.
_Range: TypeAlias = tuple[tuple[Any, ...], int, int, int]


def seal_job(
    job: Job[Any],
    *,
    key: bytes,
    file_nonce: bytes,
    aad: bytes,
    chunk_size: int,
    source: memoryview | str,
    size: int,
    output: str | None,
    chunks_per_call: ChunksPerCall,
) -> bytes | FileResult:
    """Seal every range of chunks on the workers; the header is written here."""
    header = encode_header(chunk_size, file_nonce)
    subkey = derive_subkey(key, header)
    chunks = chunk_count(size, chunk_size)
    per = chunks_per_call(chunks, chunk_size, job.pool.size)
    stride = chunk_size + TAG_SIZE

    def ranges() -> Iterator[_Range]:
        for first in range(0, chunks, per):
            count = min(per, chunks - first)
            start = first * chunk_size
            n = min(count * chunk_size, size - start)
            final = first + count == chunks
            args = (subkey, aad, chunk_size, first, count, final, n)
            yield args, start, n, HEADER_SIZE + first * stride

    out_size = ciphertext_size(size, chunk_size)
    return _run_ranges(job, "seal_range", ranges(), source, size, output, out_size, header)


def open_job(
    job: Job[Any],
    *,
    key: bytes,
    aad: bytes,
    source: memoryview | str,
    size: int,
    output: str | None,
    chunks_per_call: ChunksPerCall,
) -> bytes | FileResult:
    """Parse the header and the layout here, then open every range of chunks on the
    workers (FormatError / TruncationError / IntegrityError of the first bad chunk)."""
    header = _read_header(source)
    layout = layout_of(size, header)
    subkey = derive_subkey(key, header.raw)
    job.report(HEADER_SIZE)
    chunks, chunk_size, stride = layout.chunks, layout.chunk_size, layout.stride
    per = chunks_per_call(chunks, chunk_size, job.pool.size)

    def ranges() -> Iterator[_Range]:
        for first in range(0, chunks, per):
            count = min(per, chunks - first)
            final = first + count == chunks
            last_size = layout.last_size if final else stride
            args = (subkey, aad, chunk_size, first, count, final, last_size)
            yield args, layout.offset(first), (count - 1) * stride + last_size, first * chunk_size

    out_size = layout.plaintext_size
    return _run_ranges(job, "open_range", ranges(), source, size, output, out_size, b"")


def _run_ranges(
    job: Job[Any],
    operation: str,
    ranges: Iterator[_Range],
    source: memoryview | str,
    size: int,
    output: str | None,
    out_size: int,
    header: bytes,
) -> bytes | FileResult:
    """Run one ``crypto.<operation>`` call per range, ``2 * pool.size`` in flight, in order.

    To bytes: the results are joined behind ``header``, and only once every call succeeded.
    To a file: every call writes its part of a preallocated temporary file itself, which
    is renamed over ``output`` at the end and removed on any error, cancel or timeout (the
    first failing range's error is raised, the calls still in flight are cancelled).
    """

    def calls(dest: str | None) -> Iterator[Callable[[], TaskHandle[Any]]]:
        for args, start, length, dest_offset in ranges:
            if isinstance(source, str):  # the worker reads its part of the file itself
                src: memoryview | str = source
                src_offset = start
            else:  # the range's bytes (through shared memory when large)
                src, src_offset = source[start : start + length], 0
            call_args = (*args, src, src_offset, dest, dest_offset)  # the subkey is args[0]

            def begin(call_args: tuple[Any, ...] = call_args, weight: int = length) -> Any:
                return job.call("crypto", operation, *call_args, weight=weight)

            yield begin

    window = 2 * job.pool.size
    if output is None:
        return b"".join([header, *job.ordered(calls(None), window)])
    with _TempOutput(output, out_size) as temp:
        if header:
            temp.write_at(header, 0)
        for _ in job.ordered(calls(temp.path), window):
            pass
        if isinstance(source, str):
            _check_unchanged(source, size)
        temp.commit()
    return FileResult(output, size, out_size)


def _read_header(source: memoryview | str) -> Header:
    if not isinstance(source, str):
        return parse_header(source)
    try:
        with open(source, "rb") as file:
            head = file.read(HEADER_SIZE)
    except OSError as exc:
        raise OperationError(f"cannot read {source}: {exc.strerror}") from None
    return parse_header(head)


def _check_unchanged(path: str, size: int) -> None:
    """A file that changed size while it was being read was not read consistently."""
    try:
        now = os.stat(path).st_size
    except OSError as exc:
        raise OperationError(f"cannot stat {path}: {exc.strerror}") from None
    if now != size:
        raise OperationError(
            f"{path} changed while being read (size {size} -> {now}); output discarded"
        )


@final
class _TempOutput:
    """The output's temporary file: ``<name>.<random>.wb-tmp`` beside it, created 0600 and
    preallocated to its final size (so workers can ``pwrite`` their ranges and a full disk
    fails at once); renamed over the output by ``commit``, removed otherwise."""

    def __init__(self, output: str, size: int) -> None:
        folder, name = os.path.split(output)
        self.output = output
        self.path = os.path.join(folder, f"{name}.{secrets.token_hex(6)}.wb-tmp")
        self._committed = False
        try:
            self._fd: int | None = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:
            raise OperationError(f"cannot create {self.path}: {exc.strerror}") from None
        try:
            _preallocate(self._fd, size)
        except BaseException:
            self._remove()
            raise

    def write_at(self, data: bytes, offset: int) -> None:
        assert self._fd is not None
        try:
            os.pwrite(self._fd, data, offset)
        except OSError as exc:
            raise OperationError(f"cannot write {self.path}: {exc.strerror}") from None

    def commit(self) -> None:
        self._close()
        try:
            os.replace(self.path, self.output)
        except OSError as exc:
            raise OperationError(f"cannot rename to {self.output}: {exc.strerror}") from None
        self._committed = True

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _remove(self) -> None:
        self._close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> _TempOutput:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._committed:
            self._remove()


def _preallocate(fd: int, size: int) -> None:
    """Give the file its final size, allocated where the file system can (writes into
    allocated blocks are faster on ext4 and xfs, and ENOSPC comes now, not mid-way)."""
    if size == 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise OperationError(f"no room for the {size}-byte output: {exc.strerror}") from None
        # EOPNOTSUPP, EINVAL: a file system without allocation; a sparse file works too.
    except AttributeError:  # pragma: no cover - platforms without posix_fallocate
        pass
    try:
        os.ftruncate(fd, size)
    except OSError as exc:
        raise OperationError(f"cannot size the output file: {exc.strerror}") from None
