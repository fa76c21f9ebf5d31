"""The compression channel's own pieces, without a pool: the zstd frame walker (fed at
every split point), Adler-32 combining, the zlib header, format detection, level ranges
and output names."""

from __future__ import annotations

import os
import zlib

import pytest
import zstandard

from workerbridge import FormatError, ValidationError
from workerbridge._channels._compression_codecs import adler32_combine, zlib_header
from workerbridge._channels._compression_formats import (
    FORMATS,
    LEVELS,
    check_format,
    check_level,
    detect_format,
    strip_suffix,
)
from workerbridge._channels._compression_zstd import FrameWalker


def _walk(blob: bytes, split: int | None = None) -> None:
    walker = FrameWalker()
    if split is None:
        for i in range(len(blob)):  # a byte at a time: every header split everywhere
            walker.feed(blob[i : i + 1])
    else:
        walker.feed(blob[:split])
        walker.feed(memoryview(blob)[split:])
    walker.finish()


def _frames() -> bytes:
    data = os.urandom(3000) + b"abc" * 70000 + bytes(200000)
    with_checksum = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)
    without = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(data[:5000])
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"hello"
    streamed = zstandard.ZstdCompressor(level=3).compressobj()
    stream = streamed.compress(data[:100000]) + streamed.flush()
    empty = zstandard.ZstdCompressor().compress(b"")
    return with_checksum + skippable + without + stream + empty


def test_walker_follows_frames_however_the_input_is_split() -> None:
    blob = _frames()
    _walk(blob)
    for split in range(0, len(blob), 97):
        _walk(blob, split)


def test_walker_finds_truncation_and_garbage() -> None:
    blob = _frames()
    for cut in (1, 2, 3, 4, 5, 100, len(blob) // 2, len(blob) - 1):
        with pytest.raises(FormatError, match="truncated zstd data"):
            _walk(blob[:cut], cut // 2)
    with pytest.raises(FormatError, match="trailing data after the end of the last zstd frame"):
        _walk(blob + b"\x00\x01\x02\x03", 10)
    with pytest.raises(FormatError, match="not zstd data"):
        _walk(b"PK\x03\x04 a zip file", 3)
    with pytest.raises(FormatError, match="empty input"):
        FrameWalker().finish()


def test_adler32_combine_matches_zlib() -> None:
    for a_len, b_len in ((0, 0), (0, 10), (10, 0), (1, 1), (5552, 65521), (100000, 70000)):
        a, b = os.urandom(a_len), os.urandom(b_len)
        combined = adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b))
        assert combined == zlib.adler32(a + b)


@pytest.mark.parametrize("level", range(10))
def test_zlib_header_is_the_one_zlib_writes(level: int) -> None:
    assert zlib_header(level) == zlib.compress(b"x", level)[:2]


def test_detection_and_checks() -> None:
    assert detect_format(b"\x1f\x8b\x08") == "gzip"
    assert detect_format(b"\x28\xb5\x2f\xfd\x00") == "zstd"
    assert detect_format(b"\x50\x2a\x4d\x18\x00") == "zstd"  # a skippable frame
    assert detect_format(b"\xfd7zXZ\x00") == "xz"
    assert detect_format(b"BZh9") == "bz2"
    assert detect_format(b"\x04\x22\x4d\x18") == "lz4"
    assert detect_format(b"\x78\x9c") == "zlib"
    assert detect_format(b"\x78\x01") == "zlib"
    for junk in (b"BZh0", b"\x78\x9d", b"\x1f", b"hello", b"\x04\x22\x4d"):
        with pytest.raises(FormatError, match="unknown compression format"):
            detect_format(junk)
    for fmt in FORMATS:
        assert check_format(fmt) == fmt
        low, high, default = LEVELS[fmt]
        assert check_level(fmt, None) == default
        assert check_level(fmt, low) == low
        assert check_level(fmt, high) == high
        with pytest.raises(ValidationError, match=f"level {high + 1} is out of range for {fmt}"):
            check_level(fmt, high + 1)
        with pytest.raises(ValidationError, match=f"allowed {low} to {high}"):
            check_level(fmt, low - 1)


def test_output_names() -> None:
    assert strip_suffix("a.txt.gz") == "a.txt"
    assert strip_suffix("/d/a.ZST") == "/d/a"
    assert strip_suffix("a.tgz") == "a.tar"
    assert strip_suffix("a.tar.bz2") == "a.tar"
    assert strip_suffix("a.txz") == "a.tar"
    assert strip_suffix("a.br") == "a"
    for name in ("a.txt", ".gz", "/d/.gz", "a.gzx", "data"):
        assert strip_suffix(name) is None, name
