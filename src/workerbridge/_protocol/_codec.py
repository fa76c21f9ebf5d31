"""Length-prefixed framing of protocol messages; pure, no I/O.

A frame is a 4-byte little-endian body length followed by the MessagePack body. The length
is checked against ``max_message_bytes`` before anything is buffered for it, so a hostile or
corrupt length can never make the reader allocate. Several messages encode into one buffer,
so a batch for one worker goes out as a single write.

After a ``ProtocolError`` the byte stream can no longer be trusted (there is no way to find
the next frame boundary), so the decoder refuses further input and the owner of the channel
drops it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import msgspec

from .._exceptions import ProtocolError
from ._messages import FromWorker, ToWorker

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "FrameDecoder",
    "FrameEncoder",
    "from_worker_decoder",
    "to_worker_decoder",
]

M = TypeVar("M")

_HEADER = struct.Struct("<I")
HEADER_SIZE = _HEADER.size

#: Largest body accepted by default. Payloads above a few MiB belong in shared memory; this
#: bound only has to stop absurd lengths (a corrupt prefix) before they are allocated.
DEFAULT_MAX_MESSAGE_BYTES = 1 << 30


class FrameEncoder:
    """Encodes messages into length-prefixed frames, many per buffer."""

    __slots__ = ("_encoder", "max_message_bytes")

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self.max_message_bytes = max_message_bytes

    def encode(self, message: object) -> bytes:
        """One frame for one message."""
        buf = bytearray()
        self.encode_into(message, buf)
        return bytes(buf)

    def encode_into(self, message: object, buf: bytearray) -> None:
        """Append one frame to ``buf``.

        On any error ``buf`` is left as it was.

        Raises:
            ProtocolError: the body exceeds ``max_message_bytes``.
            TypeError, UnicodeEncodeError: the message holds a value msgspec cannot encode.
        """
        start = len(buf)
        buf += b"\0\0\0\0"
        try:
            self._encoder.encode_into(message, buf, -1)
        except BaseException:
            del buf[start:]  # never leave half a frame in a batch
            raise
        size = len(buf) - start - HEADER_SIZE
        if size > self.max_message_bytes:
            del buf[start:]
            raise ProtocolError(
                f"message of {size} bytes exceeds max_message_bytes={self.max_message_bytes}"
            )
        _HEADER.pack_into(buf, start, size)

    def encode_batch(self, messages: Iterable[object]) -> bytearray:
        """All messages, framed back to back in one buffer."""
        buf = bytearray()
        for message in messages:
            self.encode_into(message, buf)
        return buf


class FrameDecoder(Generic[M]):
    """Splits a byte stream into frames and decodes each against one message type.

    ``feed`` may be given any slicing of the stream (one byte at a time included) and
    returns the messages completed so far.
    """

    __slots__ = ("_broken", "_buf", "_decoder", "max_message_bytes")

    def __init__(self, message_type: Any, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self._decoder: msgspec.msgpack.Decoder[M] = msgspec.msgpack.Decoder(message_type)
        self._buf = bytearray()
        self._broken = False
        self.max_message_bytes = max_message_bytes

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[M]:
        """Add received bytes; return every message they complete.

        Raises:
            ProtocolError: a length above ``max_message_bytes``, or a body that is not a
                valid message of this direction. The decoder is unusable afterwards.
        """
        if self._broken:
            raise ProtocolError("channel already failed; no further input is accepted")
        buf = self._buf
        try:
            buf += data
        except BufferError:
            # A view of the buffer outlived an interrupted feed (kept by a traceback):
            # carry on in a fresh buffer rather than fail every read from now on.
            buf = self._buf = bytearray(buf)
            buf += data
        view = memoryview(buf)
        out: list[M] = []
        pos = 0
        end = len(buf)
        decode = self._decoder.decode
        try:
            while end - pos >= HEADER_SIZE:
                (size,) = _HEADER.unpack_from(view, pos)
                if size > self.max_message_bytes:
                    raise ProtocolError(
                        f"frame length {size} exceeds max_message_bytes={self.max_message_bytes}"
                    )
                stop = pos + HEADER_SIZE + size
                if stop > end:
                    break
                try:
                    out.append(decode(view[pos + HEADER_SIZE : stop]))
                except (msgspec.DecodeError, ValueError, TypeError) as exc:
                    raise ProtocolError(f"malformed message: {exc}") from None
                pos = stop
        except ProtocolError:
            self._broken = True
            view.release()
            buf.clear()
            raise
        finally:
            # Also on KeyboardInterrupt (a caller thread may be running the I/O loop):
            # frames not yet consumed stay buffered and are decoded by the next feed.
            try:
                view.release()
            except BufferError:
                pass  # a slice is still referenced (by a traceback); see the top of feed
        if pos:
            del buf[:pos]
        return out


def to_worker_decoder(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> FrameDecoder[ToWorker]:
    """The worker's decoder: accepts only messages the parent may send."""
    return FrameDecoder(ToWorker, max_message_bytes)


def from_worker_decoder(
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> FrameDecoder[FromWorker]:
    """The parent's decoder: accepts only messages a worker may send."""
    return FrameDecoder(FromWorker, max_message_bytes)
