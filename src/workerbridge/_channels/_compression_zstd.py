"""Following zstd's frame structure, to know where the input's frames end.

libzstd's streaming reader (``ZstdDecompressor.stream_reader``, the only zstandard API
that bounds how much it outputs per call) stops silently when its input ends inside a frame:
a truncated ``.zst`` file would decompress to a shorter output without an error. The
``FrameWalker`` is fed the same bytes the reader consumes and tracks the frame layout of
RFC 8878 (frame headers, block headers, checksums, skippable frames) without decompressing
anything: a few operations per block of up to 128 KiB. At the end of the input it must be
exactly at a frame boundary, or the input was cut short.
"""

from __future__ import annotations

from typing import Final

from .._exceptions import FormatError

__all__ = ["FrameWalker"]

_ZSTD_MAGIC: Final = 0xFD2FB528
_SKIPPABLE_MASK: Final = 0xFFFFFFF0
_SKIPPABLE_MAGIC: Final = 0x184D2A50
_DICT_ID_BYTES: Final = (0, 1, 2, 4)
_BLOCK_RESERVED: Final = 3
_BLOCK_RLE: Final = 1

# What the walker waits for next (the bytes are gathered in ``_buf``).
_MAGIC: Final = 0  # 4 bytes: a frame's magic number
_SKIP_SIZE: Final = 1  # 4 bytes: the length of a skippable frame's content
_DESCRIPTOR: Final = 2  # 1 byte: the frame header descriptor
_BLOCK: Final = 3  # 3 bytes: a block header


class FrameWalker:
    """Feed it the input in order (``feed``); ``finish()`` at the end of the input checks
    that it ended on a frame boundary after at least one frame."""

    __slots__ = ("_buf", "_checksum", "_error", "_frames", "_offset", "_skip", "_state", "_want")

    def __init__(self) -> None:
        self._state = _MAGIC
        self._want = 4
        self._buf = bytearray()
        self._skip = 0  # bytes of content to pass over before the next header
        self._checksum = False  # the current frame ends with a 4-byte checksum
        self._frames = 0
        self._offset = 0  # input bytes seen, for the error messages
        self._error: str | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Follow the structure through ``data``. Never raises: a malformed stream is
        reported by ``finish`` (libzstd reports it too, usually first)."""
        view = memoryview(data)
        end = len(view)
        pos = 0
        while pos < end and self._error is None:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            step = min(self._want - len(self._buf), end - pos)
            self._buf += view[pos : pos + step]
            pos += step
            if len(self._buf) == self._want:
                self._advance(self._offset + pos - self._want)
        self._offset += end

    @property
    def error(self) -> str | None:
        """What is wrong with the structure seen so far, if anything."""
        return self._error

    def finish(self) -> None:
        """Check the end of the input.

        Raises:
            FormatError: no frame at all, a malformed frame, or the input ends inside one.
        """
        if self._error is not None:
            raise FormatError(self._error)
        if self._frames == 0 and self._offset == 0:
            raise FormatError("empty input: no zstd frame")
        if self._state != _MAGIC or self._buf or self._skip:
            raise FormatError(
                f"truncated zstd data: the input ends inside a frame after {self._offset} bytes"
            )

    def _advance(self, at: int) -> None:
        """Act on the complete header in ``_buf``, which started at input offset ``at``."""
        buf = self._buf
        value = int.from_bytes(buf, "little")
        buf.clear()
        state = self._state
        if state == _MAGIC:
            if value == _ZSTD_MAGIC:
                self._state, self._want = _DESCRIPTOR, 1
            elif value & _SKIPPABLE_MASK == _SKIPPABLE_MAGIC:
                self._state, self._want = _SKIP_SIZE, 4
            elif self._frames:
                self._error = (
                    f"trailing data after the end of the last zstd frame, at offset {at}: "
                    f"bytes {value.to_bytes(4, 'little').hex()}"
                )
            else:
                self._error = f"not zstd data (first bytes {value.to_bytes(4, 'little').hex()})"
        elif state == _SKIP_SIZE:
            self._skip = value
            self._frames += 1
            self._state, self._want = _MAGIC, 4
        elif state == _DESCRIPTOR:
            fcs_flag, single_segment = value >> 6, (value >> 5) & 1
            if value & 0x08:
                self._error = f"corrupt zstd data: reserved bit set in the frame header at {at}"
                return
            self._checksum = bool(value & 0x04)
            fcs_bytes = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
            window_bytes = 0 if single_segment else 1
            self._skip = window_bytes + _DICT_ID_BYTES[value & 0x03] + fcs_bytes
            self._state, self._want = _BLOCK, 3
        else:  # _BLOCK
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            if kind == _BLOCK_RESERVED:
                self._error = f"corrupt zstd data: reserved block type at offset {at}"
                return
            self._skip = 1 if kind == _BLOCK_RLE else size
            if last:
                self._skip += 4 if self._checksum else 0
                self._frames += 1
                self._state, self._want = _MAGIC, 4
