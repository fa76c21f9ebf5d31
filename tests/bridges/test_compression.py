"""The compression bridge on every backend: round trips of all formats (in memory and as
files, at chunk boundaries), format detection, corrupt and truncated data, decompression
bombs, cancel and timeout, progress, and the checks made before dispatch.

The files the standard tools write and read are in ``test_compression_tools.py``; the
codecs' own pieces (the zstd frame walker, Adler-32 combining, suffixes) in
``test_compression_codecs.py``.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import os
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

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
    TaskHandle,
    TaskTimeoutError,
    ValidationError,
    WorkerBridge,
    WorkerPool,
    create_cancellation_token,
)
from workerbridge._bridge._compression import _publish
from workerbridge._channels._compression import _read_range
from workerbridge._channels._results import FileResult

T = TypeVar("T")

FORMATS = ("gzip", "zlib", "zstd", "brotli", "lz4", "bz2", "xz")
#: Fast levels for the slow formats, so that the sweeps stay quick.
FAST = {"brotli": 4, "bz2": 1, "xz": 1}
SUFFIX = {
    "gzip": ".gz",
    "zlib": ".zz",
    "zstd": ".zst",
    "brotli": ".br",
    "lz4": ".lz4",
    "bz2": ".bz2",
    "xz": ".xz",
}
TIMEOUT = 60
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
CHUNK = 64 * KiB  # the smallest chunk_size: many chunks from small files


def _mixed(size: int, seed: int = 7) -> bytes:
    """Deterministic data with text, incompressible bytes and zeros in it."""
    text = b"".join(b"line %d of the sample, status=%d\n" % (i, i % 7) for i in range(4000))
    noise = zstandard.ZstdCompressor(level=1).compress(text * 3)  # looks random enough
    block = text[: 40 * KiB] + noise[: 20 * KiB] + bytes(4 * KiB) + bytes([seed])
    return (block * (size // len(block) + 1))[:size]


def _reference_decompress(fmt: str, blob: bytes) -> bytes:
    """Decompress with the formats' own libraries (not the code under test)."""
    if fmt == "gzip":
        return gzip.decompress(blob)
    if fmt == "zlib":
        return zlib.decompress(blob)
    if fmt == "zstd":
        dctx = zstandard.ZstdDecompressor()
        return dctx.decompressobj(read_across_frames=True).decompress(blob)
    if fmt == "brotli":
        out: bytes = brotli.decompress(blob)
        return out
    if fmt == "lz4":
        parts, rest = [], blob
        while rest:
            d = lz4.frame.LZ4FrameDecompressor()
            parts.append(d.decompress(rest))
            assert d.eof
            rest = d.unused_data or b""
        return b"".join(parts)
    if fmt == "bz2":
        return bz2.decompress(blob)
    return lzma.decompress(blob, lzma.FORMAT_XZ)


def _result(handle: TaskHandle[T]) -> T:
    return handle.result(timeout=TIMEOUT)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(params=["process", "thread", "inline"])
def fresh_bridge(request: pytest.FixtureRequest) -> Iterator[WorkerBridge]:
    """A bridge over a pool of its own, for tests that move 256 KiB or more through shared
    memory (a pool keeps those blocks for reuse until it is closed, which the leak check
    would count against the module's pool). The other tests stay below that size."""
    pool = WorkerPool(2, backend=request.param)
    try:
        yield WorkerBridge(pool=pool)
    finally:
        pool.terminate()


# --------------------------------------------------------------------------- round trips
SIZES = (0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 12345)


@pytest.mark.parametrize("fmt", FORMATS)
def test_compress_round_trips_in_memory(bridge: WorkerBridge, fmt: str) -> None:
    c = bridge.compression
    for size in (0, 1, 100, 100 * KiB):
        data = _mixed(size)
        packed = _result(c.compress(data, fmt, FAST.get(fmt)))
        assert type(packed) is bytes
        assert _reference_decompress(fmt, packed) == data
        assert _result(c.decompress(packed, fmt)) == data
        if fmt != "brotli":
            assert _result(c.decompress(packed)) == data  # detected
    # bytearray and memoryview inputs, and a non-contiguous view
    data = _mixed(50 * KiB)
    assert _result(c.decompress(bytearray(_result(c.compress(bytearray(data), fmt))), fmt)) == data
    assert _result(c.decompress(memoryview(_result(c.compress(data, fmt))), fmt)) == data
    strided = memoryview(data)[::2]
    packed = _result(c.compress(strided, fmt, FAST.get(fmt)))
    assert _reference_decompress(fmt, packed) == data[::2]


def test_large_data_in_memory(fresh_bridge: WorkerBridge) -> None:
    # Arguments and results through shared memory; several 1 MiB slices and pieces.
    c = fresh_bridge.compression
    data = _mixed(3 * MiB + 17)
    for fmt in FORMATS:
        packed = _result(c.compress(data, fmt, FAST.get(fmt)))
        assert type(packed) is bytes
        assert _reference_decompress(fmt, packed) == data
        unpacked = _result(c.decompress(packed, fmt))
        assert type(unpacked) is bytes
        assert unpacked == data


@pytest.mark.parametrize("fmt", FORMATS)
def test_compress_file_round_trips_at_chunk_boundaries(
    bridge: WorkerBridge, fmt: str, tmp_path: Path
) -> None:
    c = bridge.compression
    for size in SIZES:
        data = _mixed(size, seed=size & 0xFF)
        src = tmp_path / f"in-{size}.bin"
        src.write_bytes(data)
        result = _result(c.compress_file(src, format=fmt, level=FAST.get(fmt), chunk_size=CHUNK))
        assert isinstance(result, FileResult)
        packed_path = Path(str(src) + SUFFIX[fmt])
        assert result.path == str(packed_path)
        assert (result.bytes_in, result.bytes_out) == (size, packed_path.stat().st_size)
        packed = packed_path.read_bytes()
        assert _reference_decompress(fmt, packed) == data, (fmt, size)
        back = tmp_path / f"back-{size}.bin"
        fmt_arg = "brotli" if fmt == "brotli" else None
        restored = _result(c.decompress_file(packed_path, back, format=fmt_arg))
        assert back.read_bytes() == data
        assert restored == FileResult(str(back), len(packed), size)
    assert not [name for name in _files(tmp_path) if name.endswith(".wb-tmp")]


def test_gzip_and_zstd_files_are_one_member_per_chunk(bridge: WorkerBridge, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(_mixed(3 * CHUNK + 1))
    c = bridge.compression
    _result(c.compress_file(src, tmp_path / "o.gz", format="gzip", chunk_size=CHUNK))
    assert (tmp_path / "o.gz").read_bytes().count(b"\x1f\x8b\x08") >= 4
    _result(c.compress_file(src, tmp_path / "o.zst", format="zstd", chunk_size=CHUNK))
    blob = (tmp_path / "o.zst").read_bytes()
    frames = 0
    while blob:
        params = zstandard.get_frame_parameters(blob)
        assert params.content_size in (CHUNK, 1)  # every frame records its size
        assert params.has_checksum
        dobj = zstandard.ZstdDecompressor().decompressobj()
        dobj.decompress(blob)
        blob = dobj.unused_data
        frames += 1
    assert frames == 4


def test_zlib_file_is_a_single_stream(bridge: WorkerBridge, tmp_path: Path) -> None:
    data = _mixed(5 * CHUNK + 3)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    for level in (0, 1, 6, 9):
        out = tmp_path / f"o{level}.zz"
        _result(
            bridge.compression.compress_file(src, out, format="zlib", level=level, chunk_size=CHUNK)
        )
        blob = out.read_bytes()
        assert blob[:2] == zlib.compress(b"", level)[:2]  # the header zlib itself writes
        d = zlib.decompressobj()
        assert d.decompress(blob) == data
        assert d.eof
        assert not d.unused_data


def test_default_levels_and_overwrite(bridge: WorkerBridge, tmp_path: Path) -> None:
    data = _mixed(100 * KiB)
    c = bridge.compression
    for fmt in FORMATS:
        assert _reference_decompress(fmt, _result(c.compress(data, fmt))) == data
    params = zstandard.get_frame_parameters(_result(c.compress(data)))  # zstd by default
    assert (params.content_size, params.has_checksum) == (len(data), True)
    src = tmp_path / "a.txt"
    src.write_bytes(data)
    first = _result(c.compress_file(src))  # gzip by default
    assert first == FileResult(str(src) + ".gz", len(data), first.bytes_out)
    with pytest.raises(ValidationError, match=r"already exists; pass overwrite=True"):
        c.compress_file(src)
    src.write_bytes(data * 2)
    _result(c.compress_file(src, overwrite=True))
    assert gzip.decompress(Path(str(src) + ".gz").read_bytes()) == data * 2
    os.unlink(src)
    restored = _result(c.decompress_file(str(src) + ".gz"))  # the suffix is removed
    assert restored.path == str(src)
    assert src.read_bytes() == data * 2
    tgz = tmp_path / "b.tgz"
    tgz.write_bytes(gzip.compress(b"tar bytes"))
    assert _result(c.decompress_file(tgz)).path == str(tmp_path / "b.tar")


# --------------------------------------------------------------------------- detection
def test_format_is_detected_from_magic_bytes(bridge: WorkerBridge, tmp_path: Path) -> None:
    data = _mixed(70 * KiB)
    c = bridge.compression
    for fmt in FORMATS:
        packed = _result(c.compress(data, fmt, FAST.get(fmt)))
        if fmt == "brotli":
            with pytest.raises(FormatError, match="brotli has no magic bytes"):
                _result(c.decompress(packed))
            continue
        assert _result(c.decompress(packed)) == data
        path = tmp_path / f"x.{fmt}"
        path.write_bytes(packed)
        _result(c.decompress_file(path, tmp_path / f"x-{fmt}.out"))
        assert (tmp_path / f"x-{fmt}.out").read_bytes() == data
    for junk in (b"not compressed data at all", b"\x00" * 10, b"Q"):
        with pytest.raises(FormatError, match="unknown compression format"):
            _result(c.decompress(junk))
    with pytest.raises(FormatError, match="empty input"):
        _result(c.decompress(b""))


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


def test_decompression_bomb_in_memory_stops_at_max_output(fresh_bridge: WorkerBridge) -> None:
    c = fresh_bridge.compression
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


# --------------------------------------------------------------------------- progress
def test_progress_reaches_the_total(bridge: WorkerBridge, tmp_path: Path) -> None:
    data = _mixed(20 * CHUNK + 5)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    c = bridge.compression
    for fmt in ("gzip", "zlib", "zstd", "brotli"):
        seen: list[ProgressInfo] = []
        out = tmp_path / f"o.{fmt}"
        _result(
            c.compress_file(
                src, out, format=fmt, level=FAST.get(fmt), chunk_size=CHUNK, on_progress=seen.append
            )
        )
        assert seen, fmt
        assert seen[-1].current == seen[-1].total == len(data)
        assert all(a.current <= b.current for a, b in itertools.pairwise(seen))
        unpacked: list[ProgressInfo] = []
        fmt_arg = fmt if fmt == "brotli" else None
        _result(
            c.decompress_file(
                out, tmp_path / f"back.{fmt}", format=fmt_arg, on_progress=unpacked.append
            )
        )
        assert unpacked[-1].current == unpacked[-1].total == out.stat().st_size
    seen = []
    data = data[: 200 * KiB]  # below the shared-memory threshold (see fresh_bridge)
    packed = _result(c.compress(data, "gzip", on_progress=seen.append))
    assert seen[-1].current == seen[-1].total
    seen = []
    _result(c.decompress(packed, on_progress=seen.append))
    assert seen[-1].current == seen[-1].total


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
