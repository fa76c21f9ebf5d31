"""The codecs behind the compression channel: streaming encoders, and decoders that never
produce more output than they are asked for.

Encoding feeds the input to the format's streaming compressor in slices of ``SLICE`` bytes
(the same bytes as a one-shot call, with a cancel check and a progress report between
slices). Decoding pulls input from a ``Source`` and yields output pieces of at most the size
asked for, so a caller can stop at ``max_output`` having allocated about that much: a
decompression bomb is stopped after one piece too many, not after it has been inflated.
Every format's decoder reads all the members or frames of its input (multi-member gzip,
concatenated bz2/xz/lz4/zstd streams) and raises ``FormatError`` for corrupt, truncated or
trailing data.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, Final, Protocol, cast

import brotli  # type: ignore[import-untyped]
import lz4.frame  # type: ignore[import-untyped]
import zstandard

from .._exceptions import FormatError
from ._compression_zstd import FrameWalker

__all__ = [
    "READ",
    "SLICE",
    "Encoder",
    "Source",
    "adler32_combine",
    "decode",
    "make_encoder",
    "zlib_header",
]

#: Input bytes given to a compressor at a time: between slices the task checks for cancel.
SLICE: Final = 1 << 20
#: Input bytes a decoder reads at a time; small enough that zlib's unconsumed tail (copied
#: on each call while output is capped) stays cheap, large enough to amortise the calls.
READ: Final = 256 << 10
#: The most output one decoding step produces.
PIECE: Final = 1 << 20

Buffer = bytes | bytearray | memoryview


class Source(Protocol):
    """Where a decoder pulls its input from; ``read`` returns b"" at the end."""

    def read(self, size: int, /) -> Buffer: ...


class Encoder(Protocol):
    """A streaming compressor: ``compress`` each piece of input, then ``finish`` once."""

    def compress(self, data: Buffer, /) -> bytes: ...
    def finish(self) -> bytes: ...


# --------------------------------------------------------------------------- encoding
class _Flushing:
    """zlib, zstd, bz2 and lzma compressors: ``compress`` and a final ``flush``."""

    __slots__ = ("_obj",)

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def compress(self, data: Buffer) -> bytes:
        out: bytes = self._obj.compress(data)
        return out

    def finish(self) -> bytes:
        out: bytes = self._obj.flush()
        return out


class _Brotli:
    __slots__ = ("_obj",)

    def __init__(self, level: int) -> None:
        self._obj = brotli.Compressor(quality=level)

    def compress(self, data: Buffer) -> bytes:
        out: bytes = self._obj.process(data)
        return out

    def finish(self) -> bytes:
        out: bytes = self._obj.finish()
        return out


class _Lz4:
    """lz4.frame writes the frame header in ``begin``: it is handed out with the first
    piece, so that the frame records the content size (as ``lz4`` the tool does)."""

    __slots__ = ("_head", "_obj")

    def __init__(self, level: int, size: int) -> None:
        self._obj = lz4.frame.LZ4FrameCompressor(compression_level=level, content_checksum=True)
        self._head: bytes = self._obj.begin(source_size=size)

    def compress(self, data: Buffer) -> bytes:
        out: bytes = self._obj.compress(data)
        if self._head:
            out, self._head = self._head + out, b""
        return out

    def finish(self) -> bytes:
        out: bytes = self._head + self._obj.flush()
        self._head = b""
        return out


def make_encoder(fmt: str, level: int, size: int) -> Encoder:
    """A compressor writing one complete ``fmt`` member/frame/stream of ``size`` input
    bytes (zstd and lz4 record the size in their frame header; the others ignore it).

    gzip is zlib with ``wbits=31``: a real gzip member (RFC 1952 header and CRC-32 trailer,
    mtime 0). zstd and lz4 frames carry a content checksum, as their tools write by default.
    """
    if fmt == "gzip":
        return _Flushing(zlib.compressobj(level, zlib.DEFLATED, 31))
    if fmt == "zlib":
        return _Flushing(zlib.compressobj(level, zlib.DEFLATED, 15))
    if fmt == "zstd":
        cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
        return _Flushing(cctx.compressobj(size=size))
    if fmt == "brotli":
        return _Brotli(level)
    if fmt == "lz4":
        return _Lz4(level, size)
    if fmt == "bz2":
        return _Flushing(bz2.BZ2Compressor(level))
    if fmt == "xz":
        return _Flushing(lzma.LZMACompressor(lzma.FORMAT_XZ, lzma.CHECK_CRC64, preset=level))
    raise AssertionError(f"unknown format {fmt!r}")  # the bridge checked it


def zlib_header(level: int) -> bytes:
    """The two-byte zlib header (RFC 1950) zlib itself writes at ``level``: deflate with a
    32 KiB window, the level class in FLEVEL, and the check bits."""
    flevel = 0 if level < 2 else 1 if level < 6 else 2 if level == 6 else 3
    cmf, flg = 0x78, flevel << 6
    flg += 31 - ((cmf << 8) | flg) % 31
    return bytes((cmf, flg))


_ADLER_BASE: Final = 65521


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two pieces of data from the checksums of each (as zlib's
    ``adler32_combine``): A = A1 + A2 - 1 and B = B1 + B2 + len2 * (A1 - 1), mod 65521."""
    a1, b1 = first & 0xFFFF, first >> 16
    a2, b2 = second & 0xFFFF, second >> 16
    a = (a1 + a2 - 1) % _ADLER_BASE
    b = (b1 + b2 + second_length * (a1 - 1)) % _ADLER_BASE
    return (b << 16) | a


# --------------------------------------------------------------------------- decoding
class _Member(Protocol):
    """The decompressor interface of bz2, lzma and lz4.frame (zlib's is adapted to it):
    ``decompress(data, max_length)``, ``needs_input``, ``eof``, ``unused_data``."""

    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: Buffer, max_length: int, /) -> bytes: ...


class _ZlibMember:
    """zlib's decompressobj in the bz2 style: output beyond ``max_length`` waits in
    ``unconsumed_tail`` (or inside zlib, when a call filled its output exactly)."""

    __slots__ = ("_full", "_obj", "_tail")

    def __init__(self, wbits: int) -> None:
        self._obj = zlib.decompressobj(wbits)
        self._tail = b""
        self._full = False

    @property
    def eof(self) -> bool:
        return bool(self._obj.eof)

    @property
    def needs_input(self) -> bool:
        return not self._tail and not self._full and not self._obj.eof

    @property
    def unused_data(self) -> bytes:
        return bytes(self._obj.unused_data)

    def decompress(self, data: Buffer, max_length: int) -> bytes:
        out: bytes = self._obj.decompress(data if data else self._tail, max_length)
        self._tail = self._obj.unconsumed_tail
        self._full = len(out) == max_length
        return out


_MEMBERS: Final[dict[str, Callable[[], _Member]]] = {
    "gzip": lambda: _ZlibMember(31),
    "zlib": lambda: _ZlibMember(15),
    "bz2": bz2.BZ2Decompressor,
    "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
    "lz4": lz4.frame.LZ4FrameDecompressor,
}
#: Formats whose files may carry zero bytes between or after members (tape padding for
#: gzip, the 4-byte stream padding of the xz format).
_PADDED: Final = frozenset({"gzip", "xz"})
#: Formats made of exactly one stream: anything after it is an error.
_SINGLE: Final = frozenset({"zlib"})
#: What each format's library raises for bad data.
_ERRORS: Final = (
    zlib.error,
    OSError,  # bz2
    EOFError,
    lzma.LZMAError,
    RuntimeError,  # lz4.frame
    brotli.error,
    zstandard.ZstdError,
)


def decode(fmt: str, source: Source, limit: int | None) -> Iterator[bytes]:
    """Yield the decompressed pieces of the ``fmt`` data that ``source`` holds, never
    more than ``limit + 1`` bytes in all (the caller raises ``OutputLimitError`` when it
    gets more than ``limit``).

    Raises:
        FormatError: empty, corrupt or truncated input, or data after the last member.
    """
    produced = 0

    def want() -> int:
        return PIECE if limit is None else max(1, min(PIECE, limit + 1 - produced))

    if fmt == "zstd":
        pieces = _decode_zstd(source, want)
    elif fmt == "brotli":
        pieces = _decode_brotli(source, want)
    else:
        pieces = _decode_members(fmt, source, want)
    try:
        for piece in pieces:
            produced += len(piece)
            yield piece
    except _ERRORS as exc:
        raise FormatError(f"corrupt {fmt} data: {exc}") from None


def _decode_members(fmt: str, source: Source, want: Callable[[], int]) -> Iterator[bytes]:
    new = _MEMBERS[fmt]
    member = new()
    members = 0
    fed = False  # the current member has been given input
    pending: Buffer = b""
    while True:
        if member.needs_input:
            if not pending:
                pending = source.read(READ)
                if not pending:
                    if members == 0 and not fed:
                        raise FormatError(f"empty input: no {fmt} data")
                    raise FormatError(
                        f"truncated {fmt} data: the input ends inside "
                        f"{'member' if fmt == 'gzip' else 'stream'} {members + 1}"
                    )
            out = member.decompress(pending, want())
            pending = b""
            fed = True
        else:
            out = member.decompress(b"", want())
            if not out and not member.eof and not member.needs_input:
                # Asked to drain, it produced nothing and still wants no input: it would
                # loop forever (a decoder bug or a state bad data led it into).
                raise FormatError(f"corrupt {fmt} data: the decoder stopped making progress")
        if out:
            yield out
        if not member.eof:
            continue
        members += 1
        rest = bytes(member.unused_data or b"")  # lz4.frame gives None for none
        while True:  # find the start of the next member, or the clean end of the input
            if fmt in _PADDED:
                rest = rest.lstrip(b"\0")
            if rest and (len(rest) >= _MAGIC_LENGTH[fmt] or fmt in _SINGLE):
                break
            more = source.read(READ)
            if not more:
                break
            rest += more
        if not rest:
            return
        if fmt in _SINGLE or not _starts_member(fmt, rest):
            raise FormatError(
                f"trailing data after the end of the {fmt} data ({_describe(rest)} that "
                f"{'follow the stream' if fmt in _SINGLE else f'are not another {fmt} member'})"
            )
        pending = rest
        member = new()
        fed = False


#: The magic bytes each member/stream of a multi-member format starts with.
_MAGIC_LENGTH: Final = {"gzip": 2, "zlib": 2, "bz2": 4, "xz": 6, "lz4": 4}


def _starts_member(fmt: str, head: bytes) -> bool:
    if fmt == "gzip":
        return head[:2] == b"\x1f\x8b"
    if fmt == "bz2":
        return head[:3] == b"BZh" and head[3:4].isdigit()
    if fmt == "xz":
        return head[:6] == b"\xfd7zXZ\x00"
    # lz4: a frame, or a skippable frame (which lz4.frame passes over).
    return head[:4] == b"\x04\x22\x4d\x18" or (head[1:4] == b"\x2a\x4d\x18" and head[0] >> 4 == 5)


def _describe(rest: bytes) -> str:
    shown = rest[:8].hex()
    return f"bytes {shown}{'...' if len(rest) > 8 else ''}"


def _decode_brotli(source: Source, want: Callable[[], int]) -> Iterator[bytes]:
    # brotli streams cannot be concatenated: one stream, then the end of the input.
    decoder = brotli.Decompressor()
    started = False
    # After a call that produced output, more may be waiting even when the decoder says it
    # can accept input: drain it with empty input before reading more.
    draining = False
    while not decoder.is_finished():
        if draining or not decoder.can_accept_more_data():
            out = decoder.process(b"", output_buffer_limit=want())
        else:
            data = source.read(READ)
            if not data:
                if not started:
                    raise FormatError("empty input: no brotli data")
                raise FormatError("truncated brotli data: the input ends inside the stream")
            started = True
            out = decoder.process(data, output_buffer_limit=want())
        if not out and not decoder.can_accept_more_data() and not decoder.is_finished():
            # It holds input it cannot turn into output: it would loop forever.
            raise FormatError("corrupt brotli data: the decoder stopped making progress")
        draining = bool(out)
        if out:
            yield out
    if source.read(READ):
        raise FormatError("trailing data after the end of the brotli stream")


def _decode_zstd(source: Source, want: Callable[[], int]) -> Iterator[bytes]:
    walker = FrameWalker()

    class Tap:
        """The source as the zstd reader sees it, with the walker following along."""

        def read(self, size: int) -> Buffer:
            data = source.read(size)
            walker.feed(data)
            return data

    # The stream reader is zstandard's only decoder that bounds its output per call; it
    # reads all frames (read_across_frames) and checks each frame's checksum.
    reader = zstandard.ZstdDecompressor().stream_reader(
        cast(IO[bytes], Tap()), read_size=READ, read_across_frames=True, closefd=False
    )
    with reader:
        while True:
            try:
                out = reader.read(want())
            except zstandard.ZstdError as exc:
                # The walker, a step ahead of libzstd, may say where the problem is.
                where = f" ({walker.error})" if walker.error else ""
                raise FormatError(f"corrupt zstd data: {exc}{where}") from None
            if not out:
                break
            yield out
    walker.finish()
