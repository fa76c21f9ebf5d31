"""The compression channel: what runs in a worker for ``WorkerBridge.compression``.

Operations (the bridge checks every argument before it dispatches them):

- ``compress(data, fmt, level) -> bytes`` and ``decompress(data, fmt | None, max_output)
  -> bytes``: in memory; decompress detects the format from the magic bytes when ``fmt`` is
  None.
- ``compress_range(path, offset, length, fmt, level) -> bytes``: one chunk of a file as a
  complete member/frame/stream of ``fmt`` (the pieces of a parallel ``compress_file``).
- ``deflate_range(path, offset, length, level, last) -> bytes``: one chunk of a file as raw
  deflate blocks that continue a single zlib stream (sync-flushed, or final when ``last``),
  followed by the chunk's Adler-32 as 4 big-endian bytes, so that the caller can write one
  valid zlib stream: zlib streams, unlike gzip members, cannot be concatenated.
- ``compress_to(path, temp, fmt, level) -> int`` and ``decompress_to(path, temp, fmt |
  None, max_output) -> int``: a whole file, streaming, into ``temp`` (a file the caller
  created and will rename or remove); the number of bytes written.

Every operation reads its input itself (file data never crosses the pipe), checks for cancel
and reports progress in input bytes at least every ``SLICE`` (1 MiB) of input or output, and
raises ``FormatError`` for bad data, ``OutputLimitError`` beyond ``max_output`` and
``OperationError`` when a file cannot be read or written.
"""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Callable

from .._exceptions import OperationError, OutputLimitError
from .._worker import TaskContext, current_task, operation
from ._compression_codecs import SLICE, Buffer, Encoder, decode, make_encoder
from ._compression_formats import MAGIC_BYTES, detect_format

__all__ = [
    "compress",
    "compress_range",
    "compress_to",
    "decompress",
    "decompress_to",
    "deflate_range",
]

_CHANNEL = "compression"


def _view(data: Buffer) -> memoryview:
    """A flat byte view of ``data`` (slicing it copies nothing)."""
    view = memoryview(data)
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    return view


class _MemorySource:
    """A decoder's input from memory, handed out as views."""

    __slots__ = ("_view", "pos")

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self.pos = 0

    def read(self, size: int) -> memoryview:
        piece = self._view[self.pos : self.pos + size]
        self.pos += len(piece)
        return piece


class _FileSource:
    """A decoder's input from an open file."""

    __slots__ = ("_fd", "_path", "pos")

    def __init__(self, fd: int, path: str) -> None:
        self._fd = fd
        self._path = path
        self.pos = 0

    def read(self, size: int) -> bytes:
        try:
            data = os.read(self._fd, size)
        except OSError as exc:
            raise _io_error("read", self._path, exc) from None
        self.pos += len(data)
        return data


def _io_error(verb: str, path: str, exc: OSError) -> OperationError:
    return OperationError(f"cannot {verb} {path!r}: {exc.strerror or exc}")


def _open(path: str, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except OSError as exc:
        raise _io_error("open", path, exc) from None


def _write_all(fd: int, data: Buffer, path: str) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise _io_error("write", path, exc) from None


def _read_range(path: str, offset: int, length: int) -> bytes:
    """``length`` bytes of the file at ``offset``, read with ``pread``.

    Raises:
        OperationError: the file cannot be read, or it is now shorter than that (it changed
            after the operation measured it).
    """
    fd = _open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, length, offset)
        if len(data) < length:  # pread may stop short only at the end of the file
            parts = [data]
            got = len(data)
            while got < length:
                more = os.pread(fd, length - got, offset + got)
                if not more:
                    raise OperationError(
                        f"{path!r} is shorter than when the operation started: bytes "
                        f"{offset + got} to {offset + length} are gone"
                    )
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data
    except OSError as exc:
        raise _io_error("read", path, exc) from None
    finally:
        os.close(fd)


def _encode(
    encoder: Encoder, view: memoryview, ctx: TaskContext, write: Callable[[bytes], object]
) -> None:
    """Feed ``view`` to ``encoder`` a slice at a time, writing what it produces."""
    size = len(view)
    for start in range(0, size, SLICE):
        ctx.raise_if_cancelled()
        out = encoder.compress(view[start : start + SLICE])
        if out:
            write(out)
        ctx.report(min(start + SLICE, size), size)
    write(encoder.finish())


def _limit_error(limit: int) -> OutputLimitError:
    return OutputLimitError(
        f"decompressed output exceeds max_output={limit} bytes; stopped there "
        "(a decompression bomb, or raise max_output)"
    )


@operation(_CHANNEL, "compress")
def compress(data: Buffer, fmt: str, level: int) -> bytes:
    """``data`` compressed as one ``fmt`` member/frame/stream."""
    ctx = current_task()
    view = _view(data)
    # BytesIO grows in place and hands its buffer over in getvalue(): no second copy.
    out = io.BytesIO()
    _encode(make_encoder(fmt, level, len(view)), view, ctx, out.write)
    return out.getvalue()


@operation(_CHANNEL, "decompress")
def decompress(data: Buffer, fmt: str | None, max_output: int | None) -> bytes:
    """``data`` decompressed (every member or frame of it), at most ``max_output`` bytes."""
    ctx = current_task()
    view = _view(data)
    if fmt is None:
        fmt = detect_format(bytes(view[:MAGIC_BYTES]))
    source = _MemorySource(view)
    out = io.BytesIO()
    produced = 0
    size = len(view)
    for piece in decode(fmt, source, max_output):
        produced += len(piece)
        if max_output is not None and produced > max_output:
            raise _limit_error(max_output)
        out.write(piece)
        ctx.raise_if_cancelled()
        ctx.report(source.pos, size)
    ctx.report(size, size)  # all of it was read, whatever the last piece saw
    return out.getvalue()


@operation(_CHANNEL, "compress_range")
def compress_range(path: str, offset: int, length: int, fmt: str, level: int) -> bytes:
    """Bytes ``offset`` to ``offset + length`` of the file as one complete ``fmt``
    member/frame/stream."""
    ctx = current_task()
    data = _read_range(path, offset, length)
    out = io.BytesIO()
    _encode(make_encoder(fmt, level, length), memoryview(data), ctx, out.write)
    return out.getvalue()


@operation(_CHANNEL, "deflate_range")
def deflate_range(path: str, offset: int, length: int, level: int, last: bool) -> bytes:
    """Bytes ``offset`` to ``offset + length`` as raw deflate that continues a zlib stream,
    then their Adler-32 (4 bytes, big-endian)."""
    ctx = current_task()
    data = _read_range(path, offset, length)
    view = memoryview(data)
    obj = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = io.BytesIO()
    for start in range(0, length, SLICE):
        ctx.raise_if_cancelled()
        out.write(obj.compress(view[start : start + SLICE]))
        ctx.report(min(start + SLICE, length), length)
    # A sync flush ends the chunk on a byte boundary without the final-block bit, so the
    # next chunk's blocks can follow it; the last chunk ends the deflate stream.
    out.write(obj.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
    out.write(zlib.adler32(view).to_bytes(4, "big"))
    return out.getvalue()


@operation(_CHANNEL, "compress_to")
def compress_to(path: str, temp: str, fmt: str, level: int) -> int:
    """The whole file compressed into ``temp`` as one ``fmt`` stream, reading and writing
    ``SLICE`` bytes at a time; the number of bytes written."""
    ctx = current_task()
    src = _open(path, os.O_RDONLY)
    try:
        dst = _open(temp, os.O_WRONLY)  # the caller created it: never create it here
        try:
            size = os.fstat(src).st_size
            encoder = make_encoder(fmt, level, size)
            written = done = 0
            while True:
                ctx.raise_if_cancelled()
                try:
                    data = os.read(src, SLICE)
                except OSError as exc:
                    raise _io_error("read", path, exc) from None
                out = encoder.compress(data) if data else encoder.finish()
                _write_all(dst, out, temp)
                written += len(out)
                if not data:
                    return written
                done += len(data)
                ctx.report(min(done, size), max(size, done))
        finally:
            os.close(dst)
    finally:
        os.close(src)


@operation(_CHANNEL, "decompress_to")
def decompress_to(path: str, temp: str, fmt: str | None, max_output: int | None) -> int:
    """The whole file decompressed into ``temp``, streaming; the number of bytes written.
    Progress counts input bytes."""
    ctx = current_task()
    src = _open(path, os.O_RDONLY)
    try:
        dst = _open(temp, os.O_WRONLY)  # the caller created it: never create it here
        try:
            size = os.fstat(src).st_size
            if fmt is None:
                try:
                    head = os.pread(src, MAGIC_BYTES, 0)
                except OSError as exc:
                    raise _io_error("read", path, exc) from None
                fmt = detect_format(head)
            source = _FileSource(src, path)
            produced = 0
            for piece in decode(fmt, source, max_output):
                produced += len(piece)
                if max_output is not None and produced > max_output:
                    raise _limit_error(max_output)
                _write_all(dst, piece, temp)
                ctx.raise_if_cancelled()
                ctx.report(min(source.pos, size), max(size, 1))
            ctx.report(size, max(size, 1))
            return produced
        finally:
            os.close(dst)
    finally:
        os.close(src)
