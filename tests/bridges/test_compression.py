"""The compression bridge on every backend: round trips of all formats (in memory and as
files, at chunk boundaries), the file layout of each format, format detection and progress.

Bad data, bombs, cancel, timeout and the checks before dispatch are in
``test_compression_errors.py``; the files the standard tools write and read in
``test_compression_tools.py``; the codecs' own pieces (the zstd frame walker, Adler-32
combining, names) in ``test_compression_codecs.py``. The helpers here are shared with them.
"""

from __future__ import annotations

import bz2
import gzip
import itertools
import lzma
import os
import zlib
from pathlib import Path
from typing import TypeVar

import brotli  # type: ignore[import-untyped]
import lz4.frame  # type: ignore[import-untyped]
import pytest
import zstandard

from workerbridge import (
    FormatError,
    ProgressInfo,
    TaskHandle,
    ValidationError,
    WorkerBridge,
)
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


def test_large_data_in_memory(bridge: WorkerBridge) -> None:
    # Arguments and results through shared memory; several 1 MiB slices and pieces.
    c = bridge.compression
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
    data = data[: 200 * KiB]  # below the shared-memory threshold (see bridge)
    packed = _result(c.compress(data, "gzip", on_progress=seen.append))
    assert seen[-1].current == seen[-1].total
    seen = []
    _result(c.decompress(packed, on_progress=seen.append))
    assert seen[-1].current == seen[-1].total
