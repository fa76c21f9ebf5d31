"""The compression bridge: caller-side checks and dispatch; the work runs in
``workerbridge._channels._compression``.

Formats: ``"gzip"``, ``"zlib"``, ``"zstd"``, ``"brotli"``, ``"lz4"``, ``"bz2"``, ``"xz"``.

``compress_file`` splits its input into ``chunk_size`` ranges that the workers read and
compress in parallel, each into a complete member of the format; a job thread in the caller
writes them in order to a temporary file beside the output and renames it at the end::

    job thread:  compress_range(path, 0, 4 MiB) ---> worker 1: pread, compress -> member 1
                 compress_range(path, 4 MiB, ..) --> worker 2: pread, compress -> member 2
                 ...  (2 * pool.size in flight; results in order)
                 write member 1, member 2, ...  ->  <output>.<random>.wb-tmp  -> rename

- gzip: a multi-member file (RFC 1952 allows it; ``gzip -d``, pigz and Python's gzip read
  it as one stream of data).
- zstd: one frame per chunk, each with its content size and checksum (``zstd -d`` reads
  them all).
- lz4, bz2, xz: one frame/stream per chunk; their tools decompress concatenations.
- zlib: one zlib stream, as ``pigz -z`` writes it: the chunks are raw deflate blocks ended
  by a sync flush, and the caller writes the header and the Adler-32 it combines from the
  chunks' (zlib streams cannot be concatenated).
- brotli: the format cannot be concatenated, so a brotli file is compressed in one call,
  by one worker, streaming (no parallelism).

``decompress_file`` is one call (decompression is sequential): the worker reads the input
and writes the temporary file itself, streaming. Every file operation refuses to replace an
existing output unless ``overwrite=True``; the rename at the end never replaces a file that
appeared meanwhile in that case (it links the temporary file, which fails if the name
exists). On any error, cancel or timeout the temporary file is removed before the handle
resolves, and the output is left untouched.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any, final

from .._channels._compression_codecs import adler32_combine, zlib_header
from .._channels._compression_formats import SUFFIXES, check_format, check_level, strip_suffix
from .._channels._results import FileResult
from .._exceptions import OperationError, ValidationError
from .._pool import ProgressInfo, TaskHandle, WorkerPool
from ._job import Job, OperationOptions, call_once, start_job

__all__ = ["CompressionBridge"]

Data = bytes | bytearray | memoryview
PathLike = str | os.PathLike[str]
ProgressCallback = Callable[[ProgressInfo], object]

_CHANNEL = "compression"
#: Bounds of ``chunk_size``: smaller chunks cost ratio and per-call overhead for nothing,
#: larger ones hold that much per worker in memory.
_MIN_CHUNK = 64 << 10
_MAX_CHUNK = 1 << 30


def _check_data(data: object) -> Data:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError(
            f"data must be bytes, bytearray or memoryview, got {type(data).__name__}"
        )
    return data


def _check_max_output(max_output: object) -> int | None:
    if max_output is not None and (
        isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 0
    ):
        raise ValidationError(f"max_output must be an int >= 0 or None, got {max_output!r}")
    return max_output


def _check_input(path: object) -> tuple[str, int]:
    """The input file's path as a str, and its size."""
    if not isinstance(path, str | os.PathLike):
        raise ValidationError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    name = os.fspath(path)
    if not isinstance(name, str):
        raise ValidationError(f"path must be a str path, got {name!r}")
    try:
        info = os.stat(name)
    except FileNotFoundError:
        raise ValidationError(f"path {name!r} does not exist") from None
    except OSError as exc:
        raise ValidationError(f"path {name!r} cannot be read: {exc.strerror}") from None
    if not os.path.isfile(name):
        raise ValidationError(f"path {name!r} is not a regular file")
    if not os.access(name, os.R_OK):
        raise ValidationError(f"path {name!r} is not readable")
    return name, info.st_size


def _check_output(output: object, source: str, overwrite: object) -> str:
    """The output path as a str, checked: its folder exists, it is not the input, and it
    does not exist unless ``overwrite``."""
    if not isinstance(overwrite, bool):
        raise ValidationError(f"overwrite must be a bool, got {overwrite!r}")
    if not isinstance(output, str | os.PathLike):
        raise ValidationError(
            f"output must be a str, os.PathLike or None, got {type(output).__name__}"
        )
    name = os.fspath(output)
    if not isinstance(name, str) or not name:
        raise ValidationError(f"output must be a non-empty str path, got {name!r}")
    folder = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(folder):
        raise ValidationError(f"output folder {folder!r} does not exist")
    if os.path.lexists(name):
        if os.path.isdir(name):
            raise ValidationError(f"output {name!r} is a directory")
        if os.path.exists(name) and os.path.samefile(name, source):
            raise ValidationError(f"output {name!r} is the input file")
        if not overwrite:
            raise ValidationError(
                f"output {name!r} already exists; pass overwrite=True to replace it"
            )
    return name


def _create_temp(output: str) -> tuple[int, str]:
    """A new, empty file beside ``output`` (so that the final rename stays on one file
    system): its descriptor and name."""
    while True:
        temp = f"{output}.{secrets.token_hex(4)}.wb-tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OperationError(f"cannot create {temp!r}: {exc.strerror}") from None
        return fd, temp


def _remove(temp: str) -> None:
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass


def _publish(temp: str, output: str, overwrite: bool) -> None:
    """Give the finished temporary file its final name.

    Raises:
        FileExistsError: ``overwrite`` is False and ``output`` appeared since the checks.
    """
    if overwrite:
        os.replace(temp, output)
        return
    try:
        os.link(temp, output)  # atomic, and fails if the name exists: never clobbers
    except FileExistsError:
        raise FileExistsError(
            errno.EEXIST, "output appeared while the operation ran; not replaced", output
        ) from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(output):
            raise FileExistsError(
                errno.EEXIST, "output appeared while the operation ran; not replaced", output
            ) from None
        os.replace(temp, output)
        return
    os.unlink(temp)


def _write_all(fd: int, data: Data, temp: str) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise OperationError(f"cannot write {temp!r}: {exc.strerror}") from None


@final
class CompressionBridge:
    """Compression operations on the pool's workers.

    Every method checks its arguments before anything is dispatched (``ValidationError``
    naming the argument: an unknown format, a level outside the format's range, a missing
    input file, an existing output) and returns a ``TaskHandle`` at once. Data errors come
    through the handle: ``FormatError`` for corrupt, truncated or unrecognised compressed
    data, ``OutputLimitError`` when decompression would exceed ``max_output``,
    ``OperationError`` when a file cannot be read or written. ``on_progress`` receives
    input bytes done of input bytes in all; ``signal``, ``cancel()`` and ``timeout`` stop
    the work within about a megabyte of input or output, and a file operation that stops
    (or fails) leaves neither a temporary file nor a partial output behind.

    Levels (``None``: the default): gzip and zlib 0-9 (6), zstd -131072-22 (3; negative
    levels are zstd's fast levels, 0 means 3), brotli 0-11 (6, not the tool's 11, which
    runs at under 1 MB/s), lz4 0-16 (0), bz2 1-9 (9), xz 0-9 (6).
    """

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    # ------------------------------------------------------------ in memory
    def compress(
        self,
        data: Data,
        format: str = "zstd",
        level: int | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes]:
        """``data`` compressed as one ``format`` stream (a gzip member, a zstd or lz4 frame
        with content size and checksum, ...), in one worker."""
        options = OperationOptions(on_progress, signal, timeout)
        _check_data(data)
        fmt = check_format(format)
        chosen = check_level(fmt, level)
        return call_once(self._pool, _CHANNEL, "compress", (data, fmt, chosen), options)

    def decompress(
        self,
        data: Data,
        format: str | None = None,
        *,
        max_output: int | None = None,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes]:
        """``data`` decompressed: all members or frames of it (multi-member gzip,
        concatenated zstd, lz4, bz2 or xz streams).

        ``format`` None detects it from the magic bytes (brotli has none: name it).
        ``max_output`` bounds the output; the worker stops as soon as it is exceeded, having
        held at most about ``max_output`` plus 1 MiB, and the handle raises
        ``OutputLimitError``. Corrupt, truncated, unrecognised or trailing data:
        ``FormatError`` (brotli has no checksum, so only damage that breaks its structure
        is detected).
        """
        options = OperationOptions(on_progress, signal, timeout)
        _check_data(data)
        fmt = None if format is None else check_format(format)
        limit = _check_max_output(max_output)
        return call_once(self._pool, _CHANNEL, "decompress", (data, fmt, limit), options)

    # ------------------------------------------------------------ files
    def compress_file(
        self,
        path: PathLike,
        output: PathLike | None = None,
        *,
        format: str = "gzip",
        level: int | None = None,
        chunk_size: int = 4 << 20,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[FileResult]:
        """Compress the file at ``path`` into ``output`` (default: ``path`` plus ``.gz``,
        ``.zz``, ``.zst``, ``.br``, ``.lz4``, ``.bz2`` or ``.xz``), ``chunk_size`` bytes per
        worker call, in parallel: see the module's documentation for what each format's
        file looks like (the standard tools read all of them). brotli files are compressed
        in one call. The input's size is taken when the operation starts; if the file
        shrinks meanwhile, the operation fails with ``OperationError``.

        ``overwrite`` False (default): an existing ``output`` is a ``ValidationError``, and
        one that appears while the operation runs is left alone (``FileExistsError``).
        """
        options = OperationOptions(on_progress, signal, timeout)
        source, size = _check_input(path)
        fmt = check_format(format)
        chosen = check_level(fmt, level)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
            raise ValidationError(f"chunk_size must be an int, got {chunk_size!r}")
        if not _MIN_CHUNK <= chunk_size <= _MAX_CHUNK:
            raise ValidationError(
                f"chunk_size must be from {_MIN_CHUNK} to {_MAX_CHUNK} bytes, got {chunk_size}"
            )
        target = _check_output(
            source + SUFFIXES[fmt] if output is None else output, source, overwrite
        )
        window = 2 * self._pool.size

        def driver(job: Job[FileResult]) -> FileResult:
            fd, temp = _create_temp(target)
            published = False
            try:
                if fmt == "brotli":
                    os.close(fd)
                    fd = -1
                    written = job.wait(
                        job.call(_CHANNEL, "compress_to", source, temp, fmt, chosen, weight=size)
                    )
                elif fmt == "zlib":
                    written = _write_zlib(job, fd, temp, source, size, chosen, chunk_size, window)
                else:
                    ranges = _ranges(size, chunk_size)
                    calls = [
                        _starter(job, "compress_range", source, start, length, fmt, chosen)
                        for start, length in ranges
                    ]
                    written = 0
                    for member in job.ordered(calls, window):
                        _write_all(fd, member, temp)
                        written += len(member)
                if fd >= 0:
                    os.close(fd)
                    fd = -1
                job.check()  # cancelled while finishing: do not publish the output
                _publish(temp, target, overwrite)
                published = True
                return FileResult(target, size, written)
            finally:
                if fd >= 0:
                    os.close(fd)
                if not published:
                    _remove(temp)

        return start_job(self._pool, driver, options, total=size, name="compress_file")

    def decompress_file(
        self,
        path: PathLike,
        output: PathLike | None = None,
        *,
        format: str | None = None,
        max_output: int | None = None,
        overwrite: bool = False,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[FileResult]:
        """Decompress the file at ``path`` into ``output`` (default: ``path`` without its
        suffix: ``a.txt.gz`` -> ``a.txt``, ``a.tgz`` -> ``a.tar``; a ``ValidationError`` if
        it has no known suffix). One worker reads and writes the files itself, streaming;
        progress counts input bytes. Every member or frame is read (files from ``gzip``,
        ``pigz``, ``zstd -T``, ``cat a.gz b.gz``, ...). ``format`` and ``max_output`` as
        for ``decompress``: beyond ``max_output`` bytes the worker stops, the temporary file
        is removed and the handle raises ``OutputLimitError``. ``overwrite`` as for
        ``compress_file``.
        """
        options = OperationOptions(on_progress, signal, timeout)
        source, size = _check_input(path)
        fmt = None if format is None else check_format(format)
        limit = _check_max_output(max_output)
        if output is None:
            stem = strip_suffix(source)
            if stem is None:
                raise ValidationError(
                    f"output cannot be derived from {source!r}: it has no compression suffix "
                    f"({', '.join(sorted(set(SUFFIXES.values())))}); pass output="
                )
            output = stem
        target = _check_output(output, source, overwrite)

        def driver(job: Job[FileResult]) -> FileResult:
            fd, temp = _create_temp(target)
            os.close(fd)  # the worker opens it by name (never creating it: see _channels)
            published = False
            try:
                written = job.wait(
                    job.call(_CHANNEL, "decompress_to", source, temp, fmt, limit, weight=size)
                )
                job.check()
                _publish(temp, target, overwrite)
                published = True
                return FileResult(target, size, written)
            finally:
                if not published:
                    _remove(temp)

        return start_job(self._pool, driver, options, total=size, name="decompress_file")


def _ranges(size: int, chunk_size: int) -> list[tuple[int, int]]:
    """(offset, length) of each chunk; one empty chunk for an empty file, so that the
    output is still a valid (empty) member."""
    return [(start, min(chunk_size, size - start)) for start in range(0, size, chunk_size)] or [
        (0, 0)
    ]


def _starter(job: Job[Any], op: str, *args: Any) -> Callable[[], TaskHandle[Any]]:
    """A zero-argument function that starts ``op(*args)``; its weight is the chunk's length
    (``args[2]``)."""
    length = args[2]
    return lambda: job.call(_CHANNEL, op, *args, weight=length)


def _write_zlib(
    job: Job[Any],
    fd: int,
    temp: str,
    source: str,
    size: int,
    level: int,
    chunk_size: int,
    window: int,
) -> int:
    """Write one zlib stream made of the chunks' deflate blocks; the bytes written."""
    ranges = _ranges(size, chunk_size)
    last = len(ranges) - 1
    calls = [
        _starter(job, "deflate_range", source, start, length, level, i == last)
        for i, (start, length) in enumerate(ranges)
    ]
    header = zlib_header(level)
    _write_all(fd, header, temp)
    written = len(header)
    checksum = 1  # the Adler-32 of no data
    blocks: Iterator[bytes] = job.ordered(calls, window)
    for (_start, length), blob in zip(ranges, blocks, strict=True):
        body = memoryview(blob)[:-4]
        checksum = adler32_combine(checksum, int.from_bytes(blob[-4:], "big"), length)
        _write_all(fd, body, temp)
        written += len(body)
    _write_all(fd, checksum.to_bytes(4, "big"), temp)
    return written + 4
