"""The compression bridge's failures on every backend: corrupt, truncated and trailing data
(``FormatError``), real decompression bombs stopped at ``max_output`` with little memory
(``OutputLimitError``), cancel and timeout in the middle of a file (nothing left behind), and
the arguments refused before anything is dispatched (``ValidationError``)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]
import lz4.frame  # type: ignore[import-untyped]
import pytest
import zstandard

from workerbridge import (
    FormatError,
    OperationError,
    OutputLimitError,
    ProgressInfo,
    TaskCancelledError,
    TaskTimeoutError,
    ValidationError,
    WorkerBridge,
    WorkerPool,
    create_cancellation_token,
)
from workerbridge._bridge._compression import _publish
from workerbridge._channels._compression import _read_range

from .test_compression import (
    CHUNK,
    FORMATS,
    TIMEOUT,
    GiB,
    KiB,
    MiB,
    _files,
    _mixed,
    _reference_decompress,
    _result,
)


# --------------------------------------------------------------------------- bad data
def _reference_compress(fmt: str, data: bytes) -> bytes:
    """Compress with the formats' own libraries (not the code under test)."""
    out: bytes
    if fmt == "gzip":
        out = gzip.compress(data, 6)
    elif fmt == "zlib":
        out = zlib.compress(data, 6)
    elif fmt == "zstd":
        out = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)
    elif fmt == "brotli":
        out = brotli.compress(data, quality=4)
    elif fmt == "lz4":
        out = lz4.frame.compress(data, content_checksum=True)
    elif fmt == "bz2":
        out = bz2.compress(data, 1)
    else:
        out = lzma.compress(data, lzma.FORMAT_XZ, preset=1)
    return out


def _damaged(fmt: str) -> Iterator[tuple[str, bytes]]:
    packed = _reference_compress(fmt, _mixed(200 * KiB))
    yield "truncated", packed[: len(packed) // 2]
    yield "last byte missing", packed[:-1]
    yield "header only", packed[:3]
    yield "trailing garbage", packed + b"garbage after the end"
    if fmt != "brotli":  # brotli has no checksum: a flipped byte may decode to other data
        flipped = bytearray(packed)
        flipped[len(flipped) // 2] ^= 0x5A
        yield "flipped byte", bytes(flipped)
        yield "flipped checksum", packed[:-2] + bytes([packed[-2] ^ 1]) + packed[-1:]


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupt_or_truncated_data_is_a_format_error(
    bridge: WorkerBridge, fmt: str, tmp_path: Path
) -> None:
    c = bridge.compression
    for what, blob in _damaged(fmt):
        with pytest.raises(FormatError, match=fmt) as caught:
            _result(c.decompress(blob, fmt))
        assert str(caught.value), what
        path = tmp_path / f"bad-{fmt}.bin"
        path.write_bytes(blob)
        out = tmp_path / "out.bin"
        with pytest.raises(FormatError, match=fmt):
            _result(c.decompress_file(path, out, format=fmt))
        assert not out.exists()
        assert _files(tmp_path) == [path.name], what  # the temporary file is gone


@cache
def _bomb(fmt: str, size: int = GiB) -> bytes:
    """A real ``size`` bytes of zeros (1 GiB) in ``fmt`` (``gzip -dc`` and friends would
    inflate all of it), built without compressing 1 GiB where the format allows: a full
    flush makes deflate's output repeat, and concatenated streams are valid bz2 and xz."""
    zeros = bytes(16 * MiB)
    repeats = size // len(zeros)
    if fmt in ("gzip", "zlib"):
        raw = zlib.compressobj(9, zlib.DEFLATED, -15)
        block = raw.compress(zeros) + raw.flush(zlib.Z_FULL_FLUSH)
        body = block * repeats + raw.flush()
        if fmt == "zlib":
            adler = ((size % 65521) << 16) | 1  # Adler-32 of n zero bytes: A = 1, B = n
            return zlib.compress(b"", 9)[:2] + body + adler.to_bytes(4, "big")
        crc = 0
        for _ in range(repeats):
            crc = zlib.crc32(zeros, crc)
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"
        return header + body + crc.to_bytes(4, "little") + (size % (1 << 32)).to_bytes(4, "little")
    if fmt == "zstd":
        zobj = zstandard.ZstdCompressor(level=1).compressobj(size=size)
        return b"".join([zobj.compress(zeros) for _ in range(repeats)]) + zobj.flush()
    if fmt == "brotli":
        bobj = brotli.Compressor(quality=1)
        out: bytes = b"".join([bobj.process(zeros) for _ in range(repeats)]) + bobj.finish()
        return out
    if fmt == "lz4":
        lobj = lz4.frame.LZ4FrameCompressor()
        head = lobj.begin(source_size=size)
        out = head + b"".join([lobj.compress(zeros) for _ in range(repeats)]) + lobj.flush()
        return out
    part = min(size, 64 * MiB)
    if fmt == "bz2":
        return bz2.compress(bytes(part), 9) * (size // part)
    return lzma.compress(bytes(part), lzma.FORMAT_XZ, preset=0) * (size // part)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_bombs_are_real(fmt: str) -> None:
    # The same construction at 64 MiB, inflated by the formats' own libraries.
    size = 64 * MiB
    assert _reference_decompress(fmt, _bomb(fmt, size)) == bytes(size)
    assert len(_bomb(fmt)) < GiB // 200


@pytest.mark.parametrize("fmt", FORMATS)
def test_decompression_bomb_file_stops_at_max_output(
    bridge: WorkerBridge, fmt: str, tmp_path: Path
) -> None:
    c = bridge.compression
    path = tmp_path / "bomb.bin"
    path.write_bytes(_bomb(fmt))
    out = tmp_path / "out.bin"
    limit = 10 * MiB
    with pytest.raises(OutputLimitError, match=f"max_output={limit}"):
        _result(c.decompress_file(path, out, format=fmt, max_output=limit))
    assert _files(tmp_path) == ["bomb.bin"]  # neither the output nor the temporary file
    # Exactly at the limit is allowed, one byte more is not.
    small = _result(c.compress(bytes(1000), fmt))
    assert _result(c.decompress(small, fmt, max_output=1000)) == bytes(1000)
    with pytest.raises(OutputLimitError):
        _result(c.decompress(small, fmt, max_output=999))
    assert _result(c.decompress(_result(c.compress(b"", fmt)), fmt, max_output=0)) == b""


def test_decompression_bomb_in_memory_stops_at_max_output(bridge: WorkerBridge) -> None:
    c = bridge.compression
    limit = 10 * MiB
    for fmt in FORMATS:
        with pytest.raises(OutputLimitError, match=f"max_output={limit}"):
            _result(c.decompress(_bomb(fmt), fmt, max_output=limit))
        if fmt != "brotli":
            with pytest.raises(OutputLimitError):
                _result(c.decompress(_bomb(fmt), max_output=limit))  # detected format


@pytest.mark.parametrize("fmt", FORMATS)
def test_bomb_is_stopped_with_little_memory(fmt: str) -> None:
    # Inline, so that tracemalloc sees the worker's allocations (its output pieces).
    pool = WorkerPool(1, backend="inline")
    try:
        c = WorkerBridge(pool=pool).compression
        bomb = _bomb(fmt)
        tracemalloc.start()
        try:
            with pytest.raises(OutputLimitError):
                _result(c.decompress(bomb, fmt, max_output=10 * MiB))
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # The output held (10 MiB), a piece or two in flight, and the pool's two copies of
        # the argument (pickled, then unpickled: every backend does that); nothing like the
        # 1 GiB the bomb inflates to.
        bound = 10 * MiB + 4 * MiB + 2 * len(bomb)
        assert peak < bound, f"{fmt}: peak {peak / MiB:.1f} MiB"
    finally:
        pool.terminate()


# --------------------------------------------------------------------------- cancel, timeout
def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)  # zeros that cost no disk: a long job to stop in the middle
    return path


def _cancel_after_first_progress(start: Callable[[Callable[[ProgressInfo], None]], Any]) -> None:
    progressed = threading.Event()
    handle = start(lambda _info: progressed.set())
    assert progressed.wait(TIMEOUT)
    assert handle.cancel()
    with pytest.raises(TaskCancelledError):
        _result(handle)


def _long(bridge: WorkerBridge) -> int:
    """The size of a job long enough to be cancelled in the middle. The inline backend
    does not interrupt a call that is running (it skips a Cancel for it), so there a
    one-call job runs to its end before its driver sees the cancel: keep that short."""
    return 64 * MiB if bridge.pool.backend == "inline" else GiB


@pytest.mark.parametrize("fmt", ["gzip", "zlib", "brotli"])
def test_cancel_mid_compress_file_leaves_nothing(
    bridge: WorkerBridge, fmt: str, tmp_path: Path
) -> None:
    src = _sparse(tmp_path / "big.bin", _long(bridge))
    _cancel_after_first_progress(
        lambda cb: bridge.compression.compress_file(
            src, format=fmt, level=1, chunk_size=CHUNK, on_progress=cb
        )
    )
    assert _files(tmp_path) == ["big.bin"]


def test_cancel_mid_decompress_file_leaves_nothing(bridge: WorkerBridge, tmp_path: Path) -> None:
    path = tmp_path / "zeros.gz"
    path.write_bytes(_bomb("gzip", _long(bridge)))
    _cancel_after_first_progress(
        lambda cb: bridge.compression.decompress_file(path, on_progress=cb)
    )
    assert _files(tmp_path) == ["zeros.gz"]


def test_cancel_in_memory(bridge: WorkerBridge) -> None:
    if bridge.pool.backend == "inline":
        pytest.skip("an inline one-call operation has finished when its handle is returned")
    # max_output: should the cancel not stop it, the test fails without inflating 1 GiB.
    _cancel_after_first_progress(
        lambda cb: bridge.compression.decompress(_bomb("zstd"), max_output=GiB // 4, on_progress=cb)
    )


def test_timeout_leaves_nothing(bridge: WorkerBridge, tmp_path: Path) -> None:
    src = _sparse(tmp_path / "big.bin", GiB)
    with pytest.raises(TaskTimeoutError):
        _result(
            bridge.compression.compress_file(src, format="gzip", chunk_size=CHUNK, timeout=0.05)
        )
    assert _files(tmp_path) == ["big.bin"]


# --------------------------------------------------------------------------- before dispatch
def test_bad_arguments_are_refused_before_dispatch(bridge: WorkerBridge, tmp_path: Path) -> None:
    c = bridge.compression
    src = tmp_path / "in.txt"
    src.write_bytes(b"hello")
    bad: list[tuple[Callable[[], object], str]] = [
        (lambda: c.compress(b"x", "rar"), r"format must be one of gzip, zlib, zstd"),
        (lambda: c.compress(b"x", "GZIP"), "format must be one of"),
        (lambda: c.decompress(b"x", "zip"), "format must be one of"),
        (lambda: c.compress("text", "gzip"), "data must be bytes"),  # type: ignore[arg-type]
        (lambda: c.decompress(None), "data must be bytes"),  # type: ignore[arg-type]
        (
            lambda: c.compress(b"x", "gzip", 10),
            r"level 10 is out of range for gzip: allowed 0 to 9",
        ),
        (lambda: c.compress(b"x", "gzip", -1), "level -1 is out of range for gzip"),
        (lambda: c.compress(b"x", "zstd", 23), "level 23 is out of range for zstd"),
        (lambda: c.compress(b"x", "brotli", 12), "allowed 0 to 11"),
        (lambda: c.compress(b"x", "lz4", 17), "allowed 0 to 16"),
        (lambda: c.compress(b"x", "bz2", 0), "allowed 1 to 9"),
        (lambda: c.compress(b"x", "xz", 10), "allowed 0 to 9"),
        (lambda: c.compress(b"x", "gzip", True), "level must be an int"),
        (lambda: c.compress(b"x", "gzip", "6"), "level must be an int"),  # type: ignore[arg-type]
        (lambda: c.decompress(b"x", max_output=-1), "max_output must be an int >= 0"),
        (lambda: c.decompress(b"x", max_output=1.5), "max_output"),  # type: ignore[arg-type]
        (lambda: c.compress(b"x", timeout=-1), "timeout"),
        (lambda: c.compress_file(tmp_path / "missing"), "does not exist"),
        (lambda: c.compress_file(tmp_path), "not a regular file"),
        (lambda: c.compress_file(src, level=99), "level 99 is out of range for gzip"),
        (lambda: c.compress_file(src, format="7z"), "format must be one of"),
        (lambda: c.compress_file(src, chunk_size=1000), "chunk_size must be from 65536"),
        (lambda: c.compress_file(src, chunk_size=2.0), "chunk_size must be an int"),  # type: ignore[arg-type]
        (lambda: c.compress_file(src, src), "is the input file"),
        (lambda: c.compress_file(src, src, overwrite=True), "is the input file"),
        (lambda: c.compress_file(src, tmp_path), "is a directory"),
        (lambda: c.compress_file(src, tmp_path / "no" / "x.gz"), "folder .* does not exist"),
        (lambda: c.compress_file(src, overwrite=1), "overwrite must be a bool"),  # type: ignore[arg-type]
        (lambda: c.decompress_file(src), "cannot be derived from"),
        (lambda: c.decompress_file(src, tmp_path / "o", max_output=-5), "max_output"),
        (lambda: c.decompress_file(src, tmp_path / "o", format="tar"), "format must be"),
        (lambda: c.decompress_file(src, src, format="gzip"), "is the input file"),
    ]
    for call, message in bad:
        with pytest.raises(ValidationError, match=message):
            call()  # raises at once: no handle, nothing dispatched
    (tmp_path / "in.txt.gz").write_bytes(b"existing")
    with pytest.raises(ValidationError, match="already exists"):
        c.compress_file(src)
    with pytest.raises(ValidationError, match="already exists"):
        c.decompress_file(tmp_path / "in.txt.gz")
    assert _files(tmp_path) == ["in.txt", "in.txt.gz"]


def test_output_that_appears_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    temp, out = tmp_path / "t.wb-tmp", tmp_path / "out"
    temp.write_bytes(b"new")
    out.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        _publish(str(temp), str(out), overwrite=False)
    assert out.read_bytes() == b"someone else's"
    _publish(str(temp), str(out), overwrite=True)
    assert out.read_bytes() == b"new"
    assert not temp.exists()


def test_input_that_shrinks_or_vanishes_is_an_operation_error(tmp_path: Path) -> None:
    # compress_file takes the size before dispatch; a chunk that is no longer there fails
    # with a message saying so, not with a short output.
    src = tmp_path / "in.bin"
    src.write_bytes(_mixed(3 * CHUNK))
    assert _read_range(str(src), CHUNK, CHUNK) == src.read_bytes()[CHUNK : 2 * CHUNK]
    with pytest.raises(OperationError, match="shorter than when the operation started"):
        _read_range(str(src), 2 * CHUNK, 2 * CHUNK)
    with pytest.raises(OperationError, match="cannot open"):
        _read_range(str(tmp_path / "nope"), 0, 1)


def test_signal_cancels_a_file_job(bridge: WorkerBridge, tmp_path: Path) -> None:
    src = _sparse(tmp_path / "big.bin", GiB)
    cancellation, cancel = create_cancellation_token()
    try:
        progressed = threading.Event()
        handle = bridge.compression.compress_file(
            src,
            chunk_size=CHUNK,
            on_progress=lambda _i: progressed.set(),
            signal=cancellation.to_abort_signal(),
        )
        assert progressed.wait(TIMEOUT)
        cancel()
        with pytest.raises(TaskCancelledError):
            _result(handle)
        assert _files(tmp_path) == ["big.bin"]
    finally:
        cancellation.close()
