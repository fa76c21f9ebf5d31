"""Framing: length prefixes, any slicing of the stream, hostile lengths and garbage."""

from __future__ import annotations

import os
import struct
import tracemalloc
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from workerbridge import ProtocolError
from workerbridge._protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Cancel,
    ErrorInfo,
    FrameDecoder,
    FrameEncoder,
    FromWorker,
    Heartbeat,
    Progress,
    Ready,
    Request,
    Response,
    Shutdown,
    ToWorker,
    from_worker_decoder,
    to_worker_decoder,
)
from workerbridge._worker import error_info

FAST = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

TO_WORKER: list[ToWorker] = [
    Request(1, 1, 0, b"\x80\x04N."),
    Request(
        2**40,
        3,
        7,
        b"x" * 300,
        function="workerbridge.testing._tasks:add",
        chunked=True,
        deadline=123.5,
    ),
    Request(3, 1, 1, b"", channel="system", operation="ping"),
    Cancel(1, 1),
    Shutdown(),
]
FROM_WORKER: list[FromWorker] = [
    Ready(4242),
    Ready(1, ErrorInfo("raised", "builtins.ImportError", "no module named 'x'", "tb")),
    Heartbeat(4242),
    Progress(1, 1, 0.0, 100.0),
    Progress(2**40, 3, 1e300, 1e-300),
    Response(1, 1, True, b"r" * 200, run_ns=12345),
    Response(2, 1, False, error=ErrorInfo("cancelled", "workerbridge.TaskCancelledError", "")),
]
DIRECTIONS: list[Any] = [
    pytest.param(to_worker_decoder, TO_WORKER, id="to-worker"),
    pytest.param(from_worker_decoder, FROM_WORKER, id="from-worker"),
]


def header(size: int) -> bytes:
    return struct.pack("<I", size)


# --------------------------------------------------------------------- the encoder


@pytest.mark.parametrize("message", [*TO_WORKER, *FROM_WORKER])
def test_frame_is_little_endian_length_then_msgpack_body(message: object) -> None:
    frame = FrameEncoder().encode(message)
    body = msgspec.msgpack.encode(message)
    assert frame == header(len(body)) + body
    assert struct.unpack_from("<I", frame)[0] == len(frame) - 4


def test_encode_into_appends_after_existing_bytes() -> None:
    encoder = FrameEncoder()
    buf = bytearray(b"already here")
    encoder.encode_into(Heartbeat(1), buf)
    encoder.encode_into(Cancel(2, 3), buf)
    assert buf == b"already here" + encoder.encode(Heartbeat(1)) + encoder.encode(Cancel(2, 3))


def test_encode_batch_is_the_concatenation_of_frames() -> None:
    encoder = FrameEncoder()
    assert encoder.encode_batch(TO_WORKER) == b"".join(encoder.encode(m) for m in TO_WORKER)
    assert encoder.encode_batch([]) == b""


def test_encoder_refuses_a_body_above_the_limit_and_leaves_the_buffer_alone() -> None:
    message = Request(1, 1, 0, b"p" * 100)
    size = len(msgspec.msgpack.encode(message))
    at_limit = FrameEncoder(max_message_bytes=size)
    assert len(at_limit.encode(message)) == size + 4  # exactly the limit is fine

    encoder = FrameEncoder(max_message_bytes=size - 1)
    buf = bytearray(encoder.encode(Heartbeat(7)))
    before = bytes(buf)
    with pytest.raises(ProtocolError, match="exceeds max_message_bytes"):
        encoder.encode_into(message, buf)
    assert buf == before
    with pytest.raises(ProtocolError):
        encoder.encode(message)
    with pytest.raises(ProtocolError):
        encoder.encode_batch([Heartbeat(1), message])
    # The encoder is still usable, and the buffer still holds exactly one good frame.
    encoder.encode_into(Heartbeat(8), buf)
    assert from_worker_decoder().feed(buf) == [Heartbeat(7), Heartbeat(8)]


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(Heartbeat(object()), id="unsupported-type"),  # type: ignore[arg-type]
        pytest.param(
            Response(1, 1, False, error=ErrorInfo("raised", "builtins.OSError", "x\udc80")),
            id="lone-surrogate",
        ),
    ],
)
def test_encoder_leaves_the_buffer_alone_when_encoding_fails(message: object) -> None:
    encoder = FrameEncoder()
    buf = bytearray(encoder.encode(Heartbeat(7)))
    before = bytes(buf)
    with pytest.raises((TypeError, ValueError, ProtocolError)):
        encoder.encode_into(message, buf)
    assert buf == before


def test_a_sanitized_error_can_always_be_framed() -> None:
    # A name from os.listdir() on bytes that are not UTF-8, put into a message with an
    # f-string, as application code does.
    name = os.fsdecode(b"data-\xff.bin")
    exc = ValueError(f"cannot parse {name}")
    response = Response(1, 1, False, error=error_info("raised", exc, False))
    [decoded] = from_worker_decoder().feed(FrameEncoder().encode(response))
    assert isinstance(decoded, Response)
    assert decoded.error is not None
    assert "data-" in decoded.error.message


# ------------------------------------------------------------- slicing the stream


@pytest.mark.parametrize(("make_decoder", "messages"), DIRECTIONS)
def test_split_at_every_offset_decodes_the_same(make_decoder: Any, messages: list[Any]) -> None:
    stream = FrameEncoder().encode_batch(messages)
    for cut in range(len(stream) + 1):
        decoder: FrameDecoder[Any] = make_decoder()
        out = decoder.feed(stream[:cut])
        out += decoder.feed(stream[cut:])
        assert out == messages, cut
        assert decoder.buffered == 0


@pytest.mark.parametrize(("make_decoder", "messages"), DIRECTIONS)
def test_one_byte_at_a_time(make_decoder: Any, messages: list[Any]) -> None:
    encoder = FrameEncoder()
    frame_ends = []
    stream = bytearray()
    for message in messages:
        encoder.encode_into(message, stream)
        frame_ends.append(len(stream))
    decoder: FrameDecoder[Any] = make_decoder()
    seen: list[tuple[int, Any]] = []
    for i in range(len(stream)):
        seen.extend((i + 1, message) for message in decoder.feed(stream[i : i + 1]))
        assert decoder.buffered == (i + 1) - max([0, *(e for e in frame_ends if e <= i + 1)])
    # Each message comes out exactly when its last byte arrives, in order.
    assert seen == list(zip(frame_ends, messages, strict=True))


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_feed_accepts_any_bytes_like(kind: Any) -> None:
    stream = FrameEncoder().encode_batch(FROM_WORKER)
    assert from_worker_decoder().feed(kind(stream)) == FROM_WORKER


def test_empty_feed_returns_nothing() -> None:
    decoder = to_worker_decoder()
    assert decoder.feed(b"") == []
    assert decoder.buffered == 0


def test_a_large_batch_decodes_in_order() -> None:
    messages: list[FromWorker] = []
    for i in range(5000):
        messages.append(Progress(i, 1, float(i), 5000.0))
        messages.append(Response(i, 1, True, i.to_bytes(8, "little")))
    stream = FrameEncoder().encode_batch(messages)
    assert from_worker_decoder().feed(stream) == messages


@settings(FAST, max_examples=300)
@given(data=st.data())
def test_any_slicing_of_a_batch_decodes_the_same(data: st.DataObject) -> None:
    to_worker = data.draw(st.booleans())
    pool: list[Any] = TO_WORKER if to_worker else FROM_WORKER
    messages = data.draw(st.lists(st.sampled_from(pool), max_size=12))
    stream = FrameEncoder().encode_batch(messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder: FrameDecoder[Any] = to_worker_decoder() if to_worker else from_worker_decoder()
    out: list[Any] = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out += decoder.feed(stream[start:stop])
    assert out == messages
    assert decoder.buffered == 0


# ------------------------------------------------------------------- the length prefix


@pytest.mark.parametrize("make_decoder", [to_worker_decoder, from_worker_decoder])
@pytest.mark.parametrize("size", [2**31, 2**32 - 1, DEFAULT_MAX_MESSAGE_BYTES + 1])
def test_oversized_length_fails_on_the_header_alone(make_decoder: Any, size: int) -> None:
    decoder: FrameDecoder[Any] = make_decoder()
    prefix = header(size)
    # Three bytes of a header are not yet a length: nothing to check, nothing decoded.
    assert decoder.feed(prefix[:3]) == []
    with pytest.raises(ProtocolError, match="exceeds max_message_bytes"):
        decoder.feed(prefix[3:])  # no body bytes needed to refuse it
    assert decoder.buffered == 0


@pytest.mark.parametrize("size", [65, 1000, 2**31, 2**32 - 1])
def test_length_above_a_custom_limit_fails_at_once(size: int) -> None:
    decoder = from_worker_decoder(max_message_bytes=64)
    with pytest.raises(ProtocolError, match="frame length"):
        decoder.feed(header(size))


def test_length_at_the_limit_waits_for_the_body_without_allocating_it() -> None:
    decoder = from_worker_decoder()
    tracemalloc.start()
    try:
        assert decoder.feed(header(DEFAULT_MAX_MESSAGE_BYTES)) == []
        assert decoder.feed(b"\x00" * 1000) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.buffered == 1004
    assert peak < 1 << 20  # nowhere near the announced GiB


def test_a_body_exactly_at_the_limit_is_accepted() -> None:
    message = Response(1, 1, True, b"d" * 50)
    frame = FrameEncoder().encode(message)
    assert from_worker_decoder(max_message_bytes=len(frame) - 4).feed(frame) == [message]
    with pytest.raises(ProtocolError):
        from_worker_decoder(max_message_bytes=len(frame) - 5).feed(frame)


def test_oversized_length_after_good_frames_in_the_same_chunk() -> None:
    decoder = from_worker_decoder(max_message_bytes=64)
    good = FrameEncoder().encode(Heartbeat(1))
    assert decoder.feed(good) == [Heartbeat(1)]
    with pytest.raises(ProtocolError):
        decoder.feed(good + header(65))


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(header(0), id="empty-body"),
        pytest.param(header(1) + b"\xc1", id="reserved-byte"),
        pytest.param(header(3) + b"\x92\xa1x", id="truncated-inside-frame"),
        pytest.param(
            header(len(b := msgspec.msgpack.encode(Heartbeat(1))) + 1) + b + b"\x00",
            id="trailing-byte-inside-frame",
        ),
    ],
)
def test_bodies_that_are_not_one_msgpack_value(stream: bytes) -> None:
    decoder = from_worker_decoder()
    with pytest.raises(ProtocolError, match="malformed"):
        decoder.feed(stream)


@pytest.mark.parametrize("make_decoder", [to_worker_decoder, from_worker_decoder])
def test_after_an_error_the_decoder_refuses_all_input(make_decoder: Any) -> None:
    decoder: FrameDecoder[Any] = make_decoder()
    with pytest.raises(ProtocolError):
        decoder.feed(header(2**32 - 1))
    assert decoder.buffered == 0
    for data in (b"", FrameEncoder().encode(Shutdown()), FrameEncoder().encode(Heartbeat(1))):
        with pytest.raises(ProtocolError, match="already failed"):
            decoder.feed(data)
        assert decoder.buffered == 0


# ------------------------------------------------------------------------- garbage

TO_WORKER_TYPES = (Request, Cancel, Shutdown)
FROM_WORKER_TYPES = (Ready, Progress, Response, Heartbeat)


def _feed_garbage(to_worker: bool, chunks: list[bytes]) -> None:
    decoder: FrameDecoder[Any] = to_worker_decoder() if to_worker else from_worker_decoder()
    allowed = TO_WORKER_TYPES if to_worker else FROM_WORKER_TYPES
    try:
        for chunk in chunks:
            for message in decoder.feed(chunk):
                assert isinstance(message, allowed)
    except ProtocolError:
        with pytest.raises(ProtocolError):
            decoder.feed(b"")


@settings(FAST, max_examples=1000)
@given(to_worker=st.booleans(), chunks=st.lists(st.binary(max_size=64), max_size=6))
def test_random_bytes_only_ever_raise_protocol_error(to_worker: bool, chunks: list[bytes]) -> None:
    _feed_garbage(to_worker, chunks)


@settings(FAST, max_examples=1000)
@given(to_worker=st.booleans(), bodies=st.lists(st.binary(max_size=64), min_size=1, max_size=4))
def test_well_framed_random_bodies_only_ever_raise_protocol_error(
    to_worker: bool, bodies: list[bytes]
) -> None:
    _feed_garbage(to_worker, [header(len(b)) + b for b in bodies])


TAGS = ["request", "cancel", "shutdown", "ready", "progress", "response", "heartbeat"]
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
almost_messages = st.builds(
    lambda tag, rest: [tag, *rest],
    st.sampled_from(TAGS) | st.text(max_size=10),
    st.lists(values, max_size=8),
)


@settings(FAST, max_examples=1000)
@given(to_worker=st.booleans(), raw=almost_messages | values)
def test_msgpack_values_of_any_shape_only_ever_raise_protocol_error(
    to_worker: bool, raw: object
) -> None:
    body = msgspec.msgpack.encode(raw)
    _feed_garbage(to_worker, [header(len(body)) + body])
