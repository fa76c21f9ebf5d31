"""The wire messages: valid ones survive the trip, invalid ones are a ProtocolError.

Every message is framed with ``FrameEncoder`` and read back with the decoder of the
direction it travels in, so these tests cover the typed union of each direction as the
runtime uses it, not just ``msgspec`` on its own.
"""

from __future__ import annotations

import math
import struct
from typing import Any, get_args

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from workerbridge import ProtocolError
from workerbridge._protocol import (
    Cancel,
    ErrorInfo,
    ErrorKind,
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

# Hypothesis runs many examples inside one test, so the per-test `no_leaks` fixture is
# fine here; no example database, so running the suite leaves no files behind.
FAST = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NAN = float("nan")
INF = float("inf")
U64 = 2**64 - 1  # the largest integer MessagePack can carry

# ---------------------------------------------------------------- valid field values

task_ids = st.integers(min_value=0, max_value=U64)
attempts = st.integers(min_value=1, max_value=U64)
seqs = st.integers(min_value=0, max_value=U64)
pids = st.integers(min_value=1, max_value=U64)
counts = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
totals = st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False)
texts = st.text(max_size=40)
blobs = st.binary(max_size=64)

error_infos = st.builds(
    ErrorInfo,
    kind=st.sampled_from(get_args(ErrorKind)),
    type=texts,
    message=texts,
    traceback=texts,
)
requests = st.builds(
    Request,
    id=task_ids,
    attempt=attempts,
    seq=seqs,
    payload=blobs,
    function=texts,
    pickled_function=blobs,
    channel=texts,
    operation=texts,
    chunked=st.booleans(),
    deadline=st.none() | st.floats(allow_nan=False),
)
cancels = st.builds(Cancel, id=task_ids, attempt=attempts)
shutdowns = st.just(Shutdown())
readies = st.builds(Ready, pid=pids, error=st.none() | error_infos)
heartbeats = st.builds(Heartbeat, pid=pids)
progresses = st.builds(Progress, id=task_ids, attempt=attempts, current=counts, total=totals)
run_ns = st.integers(min_value=0, max_value=U64)
responses = st.builds(
    Response, id=task_ids, attempt=attempts, ok=st.just(True), data=blobs, run_ns=run_ns
) | st.builds(
    Response,
    id=task_ids,
    attempt=attempts,
    ok=st.just(False),
    data=blobs,
    error=error_infos,
    run_ns=run_ns,
)
to_worker_messages: st.SearchStrategy[ToWorker] = st.one_of(requests, cancels, shutdowns)
from_worker_messages: st.SearchStrategy[FromWorker] = st.one_of(
    readies, progresses, responses, heartbeats
)


def round_trip(message: object, decoder: FrameDecoder[Any]) -> list[Any]:
    out = decoder.feed(FrameEncoder().encode(message))
    assert decoder.buffered == 0
    return out


# ------------------------------------------------------------------------- round trips


@settings(FAST, max_examples=2000)
@given(requests)
def test_request_round_trips(message: Request) -> None:
    assert round_trip(message, to_worker_decoder()) == [message]


@settings(FAST, max_examples=400)
@given(cancels)
def test_cancel_round_trips(message: Cancel) -> None:
    assert round_trip(message, to_worker_decoder()) == [message]


def test_shutdown_round_trips() -> None:
    [decoded] = round_trip(Shutdown(), to_worker_decoder())
    assert type(decoded) is Shutdown


@settings(FAST, max_examples=1500)
@given(readies)
def test_ready_round_trips(message: Ready) -> None:
    assert round_trip(message, from_worker_decoder()) == [message]


@settings(FAST, max_examples=400)
@given(heartbeats)
def test_heartbeat_round_trips(message: Heartbeat) -> None:
    assert round_trip(message, from_worker_decoder()) == [message]


@settings(FAST, max_examples=1500)
@given(progresses)
def test_progress_round_trips(message: Progress) -> None:
    assert round_trip(message, from_worker_decoder()) == [message]


@settings(FAST, max_examples=2000)
@given(responses)
def test_response_round_trips(message: Response) -> None:
    [decoded] = round_trip(message, from_worker_decoder())
    assert decoded == message
    assert type(decoded.error) is type(message.error)


@settings(FAST, max_examples=300)
@given(st.lists(to_worker_messages, max_size=20))
def test_to_worker_batch_round_trips(messages: list[ToWorker]) -> None:
    buf = FrameEncoder().encode_batch(messages)
    assert to_worker_decoder().feed(buf) == messages


@settings(FAST, max_examples=300)
@given(st.lists(from_worker_messages, max_size=20))
def test_from_worker_batch_round_trips(messages: list[FromWorker]) -> None:
    buf = FrameEncoder().encode_batch(messages)
    assert from_worker_decoder().feed(buf) == messages


# --------------------------------------------------------------- wrong direction


@settings(FAST, max_examples=500)
@given(to_worker_messages)
def test_parent_side_decoder_rejects_every_parent_to_worker_message(message: ToWorker) -> None:
    decoder = from_worker_decoder()
    with pytest.raises(ProtocolError):
        decoder.feed(FrameEncoder().encode(message))


@settings(FAST, max_examples=500)
@given(from_worker_messages)
def test_worker_side_decoder_rejects_every_worker_to_parent_message(message: FromWorker) -> None:
    decoder = to_worker_decoder()
    with pytest.raises(ProtocolError):
        decoder.feed(FrameEncoder().encode(message))


# ------------------------------------------------------------------- bad messages


def _frame(raw: object) -> bytes:
    body = msgspec.msgpack.encode(raw)
    return struct.pack("<I", len(body)) + body


REQ = ["request", 1, 1, 0, b"payload"]  # the required fields of a Request
ERR = ["raised", "builtins.ValueError", "boom", ""]  # a valid ErrorInfo

# Raw messages, one table per direction. Each is encoded with plain msgpack and framed by
# hand, so nothing but the decoder stands between it and the runtime.
BAD_FROM_WORKER: list[Any] = [
    pytest.param(["ready", 0], id="ready-pid-0"),
    pytest.param(["ready", -1], id="ready-pid-negative"),
    pytest.param(["ready", "1"], id="ready-pid-str"),
    pytest.param(["ready", 1.0], id="ready-pid-float"),
    pytest.param(["ready", True], id="ready-pid-bool"),
    pytest.param(["ready", None], id="ready-pid-nil"),
    pytest.param(["ready"], id="ready-missing-pid"),
    pytest.param(["ready", 1, "failed"], id="ready-error-str"),
    pytest.param(["ready", 1, ["exploded", "T", "m", ""]], id="ready-error-unknown-kind"),
    pytest.param(["ready", 1, ["raised", "T"]], id="ready-error-missing-message"),
    pytest.param(["ready", 1, ["raised", 5, "m", ""]], id="ready-error-type-int"),
    pytest.param(["ready", 1, {"kind": "raised", "type": "T", "message": "m"}], id="ready-err-map"),
    pytest.param(["heartbeat", 0], id="heartbeat-pid-0"),
    pytest.param(["heartbeat", None], id="heartbeat-pid-nil"),
    pytest.param(["heartbeat"], id="heartbeat-missing-pid"),
    pytest.param(["progress", -1, 1, 0.0, 1.0], id="progress-id-negative"),
    pytest.param(["progress", 1, 0, 0.0, 1.0], id="progress-attempt-0"),
    pytest.param(["progress", 1, -1, 0.0, 1.0], id="progress-attempt-negative"),
    pytest.param(["progress", 1, 1, NAN, 1.0], id="progress-current-nan"),
    pytest.param(["progress", 1, 1, INF, 1.0], id="progress-current-inf"),
    pytest.param(["progress", 1, 1, -INF, 1.0], id="progress-current-neg-inf"),
    pytest.param(["progress", 1, 1, -1.0, 1.0], id="progress-current-negative"),
    pytest.param(["progress", 1, 1, -1, 1.0], id="progress-current-negative-int"),
    pytest.param(["progress", 1, 1, 0.5, 0.0], id="progress-total-0"),
    pytest.param(["progress", 1, 1, 0.5, 0], id="progress-total-int-0"),
    pytest.param(["progress", 1, 1, 0.5, -0.0], id="progress-total-neg-zero"),
    pytest.param(["progress", 1, 1, 0.5, -1.0], id="progress-total-negative"),
    pytest.param(["progress", 1, 1, 0.5, NAN], id="progress-total-nan"),
    pytest.param(["progress", 1, 1, 0.5, INF], id="progress-total-inf"),
    pytest.param(["progress", 1, 1, "half", 1.0], id="progress-current-str"),
    pytest.param(["progress", 1, 1, True, 1.0], id="progress-current-bool"),
    pytest.param(["progress", 1, 1, 0.5], id="progress-missing-total"),
    pytest.param(["progress", "1", 1, 0.5, 1.0], id="progress-id-str"),
    pytest.param(["response", 1, 1, True, b"", ERR], id="response-ok-with-error"),
    pytest.param(["response", 1, 1, False], id="response-not-ok-without-error"),
    pytest.param(["response", 1, 1, False, b"", None], id="response-not-ok-error-nil"),
    pytest.param(["response", 1, 1, 1], id="response-ok-int"),
    pytest.param(["response", 1, 1, None], id="response-ok-nil"),
    pytest.param(["response", 1, 1], id="response-missing-ok"),
    pytest.param(["response", 1, 1, True, "text"], id="response-data-str"),
    pytest.param(["response", 1, 1, True, b"", None, -1], id="response-run-ns-negative"),
    pytest.param(["response", 1, 1, True, b"", None, 1.5], id="response-run-ns-float"),
    pytest.param(["response", -1, 1, True], id="response-id-negative"),
    pytest.param(["response", 1, 0, True], id="response-attempt-0"),
    pytest.param(["response", 1.0, 1, True], id="response-id-float"),
    pytest.param(["response", 1, 1, False, b"", ["oops", "T", "m", ""]], id="response-bad-kind"),
    pytest.param(["response", 1, 1, False, b"", ["raised", "T", None, ""]], id="resp-msg-nil"),
    pytest.param([*REQ], id="request-to-parent"),
    pytest.param(["cancel", 1, 1], id="cancel-to-parent"),
    pytest.param(["shutdown"], id="shutdown-to-parent"),
    pytest.param(["bogus", 1], id="unknown-tag"),
    pytest.param(["Ready", 1], id="tag-wrong-case"),
    pytest.param(["", 1], id="tag-empty"),
    pytest.param([1, 1], id="tag-int"),
    pytest.param([None, 1], id="tag-nil"),
    pytest.param([], id="empty-array"),
    pytest.param({"type": "heartbeat", "pid": 1}, id="map-instead-of-array"),
    pytest.param("heartbeat", id="bare-str"),
    pytest.param(5, id="bare-int"),
    pytest.param(None, id="nil"),
    pytest.param(b"\x94\xa9heartbeat", id="bytes-instead-of-array"),
    pytest.param([["heartbeat", 1]], id="nested-array"),
]

BAD_TO_WORKER: list[Any] = [
    pytest.param(["request", -1, 1, 0, b""], id="request-id-negative"),
    pytest.param(["request", 1, 0, 0, b""], id="request-attempt-0"),
    pytest.param(["request", 1, -5, 0, b""], id="request-attempt-negative"),
    pytest.param(["request", 1, 1, -1, b""], id="request-seq-negative"),
    pytest.param(["request", 1, 1, 0, "payload"], id="request-payload-str"),
    pytest.param(["request", 1, 1, 0, None], id="request-payload-nil"),
    pytest.param(["request", 1, 1, 0], id="request-missing-payload"),
    pytest.param(["request", 1, 1], id="request-missing-seq"),
    pytest.param([*REQ, 7], id="request-function-int"),
    pytest.param([*REQ, "m:f", "pickled"], id="request-pickled-function-str"),
    pytest.param([*REQ, "", b"", 3], id="request-channel-int"),
    pytest.param([*REQ, "", b"", "", None], id="request-operation-nil"),
    pytest.param([*REQ, "", b"", "", "", 1], id="request-chunked-int"),
    pytest.param([*REQ, "", b"", "", "", "yes"], id="request-chunked-str"),
    pytest.param([*REQ, "", b"", "", "", False, "soon"], id="request-deadline-str"),
    pytest.param(["request", True, 1, 0, b""], id="request-id-bool"),
    pytest.param(["cancel", -1, 1], id="cancel-id-negative"),
    pytest.param(["cancel", 1, 0], id="cancel-attempt-0"),
    pytest.param(["cancel", 1], id="cancel-missing-attempt"),
    pytest.param(["cancel", "1", 1], id="cancel-id-str"),
    pytest.param(["response", 1, 1, True], id="response-to-worker"),
    pytest.param(["ready", 1], id="ready-to-worker"),
    pytest.param(["progress", 1, 1, 0.0, 1.0], id="progress-to-worker"),
    pytest.param(["heartbeat", 1], id="heartbeat-to-worker"),
    pytest.param(["bogus"], id="unknown-tag"),
    pytest.param(["SHUTDOWN"], id="tag-wrong-case"),
    pytest.param([], id="empty-array"),
    pytest.param({"type": "shutdown"}, id="map-instead-of-array"),
    pytest.param(True, id="bare-bool"),
]


def _assert_rejected(decoder: FrameDecoder[Any], raw: object) -> None:
    with pytest.raises(ProtocolError, match="malformed message"):
        decoder.feed(_frame(raw))
    # The stream cannot be trusted past a bad frame: the decoder is done for good.
    assert decoder.buffered == 0
    with pytest.raises(ProtocolError):
        decoder.feed(_frame(["heartbeat", 1]))


@pytest.mark.parametrize("raw", BAD_FROM_WORKER)
def test_parent_side_decoder_rejects(raw: object) -> None:
    _assert_rejected(from_worker_decoder(), raw)


@pytest.mark.parametrize("raw", BAD_TO_WORKER)
def test_worker_side_decoder_rejects(raw: object) -> None:
    _assert_rejected(to_worker_decoder(), raw)


def test_the_tables_build_on_valid_messages() -> None:
    """The bad messages above change one thing of a valid one; check the valid ones."""
    assert to_worker_decoder().feed(_frame(REQ)) == [Request(1, 1, 0, b"payload")]
    assert from_worker_decoder().feed(_frame(["response", 1, 1, False, b"", ERR])) == [
        Response(1, 1, False, error=ErrorInfo(*ERR))  # type: ignore[arg-type]
    ]


# ----------------------------------------------------- schema evolution (msgspec rules)
#
# msgspec's documented schema evolution for ``array_like`` structs: fields are only ever
# appended, a shorter array takes the defaults of the missing trailing fields, and extra
# trailing items (fields of a newer peer) are skipped without being decoded. So extra
# items are *not* an error; the messages module relies on this ("an older peer ignores
# them").

EXTRA_TRAILING: list[Any] = [
    pytest.param("to", [*REQ, "m:f", b"", "", "", True, 5.0, [], [], "new"], Request, id="request"),
    pytest.param("to", ["cancel", 1, 2, "new", [1, 2]], Cancel, id="cancel"),
    pytest.param("to", ["shutdown", {"new": 1}], Shutdown, id="shutdown"),
    pytest.param("from", ["ready", 9, None, "new"], Ready, id="ready"),
    pytest.param("from", ["ready", 9, [*ERR, "new"]], Ready, id="ready-errorinfo"),
    pytest.param("from", ["heartbeat", 9, 1.5], Heartbeat, id="heartbeat"),
    pytest.param("from", ["progress", 1, 1, 0.5, 1.0, b"x"], Progress, id="progress"),
    pytest.param(
        "from", ["response", 1, 1, True, b"r", None, 3, [], None], Response, id="response"
    ),
]


@pytest.mark.parametrize(("direction", "raw", "cls"), EXTRA_TRAILING)
def test_extra_trailing_items_are_skipped(direction: str, raw: list[Any], cls: type) -> None:
    decoder: FrameDecoder[Any] = to_worker_decoder() if direction == "to" else from_worker_decoder()
    [decoded] = decoder.feed(_frame(raw))
    assert type(decoded) is cls
    fields = msgspec.structs.fields(cls)
    values = raw[1 : 1 + len(fields)]
    for field, value in zip(fields, values, strict=False):
        got = getattr(decoded, field.name)
        if isinstance(got, ErrorInfo):
            assert got == ErrorInfo(*value[:4])
        else:
            assert got == (tuple(value) if isinstance(got, tuple) else value)


def test_missing_trailing_fields_take_their_defaults() -> None:
    assert to_worker_decoder().feed(_frame(REQ)) == [
        Request(1, 1, 0, b"payload", "", b"", "", "", False, None)
    ]
    assert from_worker_decoder().feed(
        _frame(["response", 4, 2, True]) + _frame(["ready", 3]) + _frame(["ready", 3, [*ERR[:3]]])
    ) == [
        Response(4, 2, True, b"", None, 0),
        Ready(3, None),
        Ready(3, ErrorInfo("raised", "builtins.ValueError", "boom", "")),
    ]


# ---------------------------------------------------------- the structs themselves


def test_each_message_has_the_documented_direction() -> None:
    assert set(get_args(ToWorker)) == {Request, Cancel, Shutdown}
    assert set(get_args(FromWorker)) == {Ready, Progress, Response, Heartbeat}


@pytest.mark.parametrize(
    "cls", [Request, Cancel, Shutdown, Ready, Progress, Response, Heartbeat, ErrorInfo]
)
def test_messages_are_frozen_array_like(cls: type[msgspec.Struct]) -> None:
    config = cls.__struct_config__
    assert config.frozen
    assert config.array_like
    # New fields must always get defaults; every field after the first defaulted one does.
    fields = msgspec.structs.fields(cls)
    defaulted = [
        f.default is not msgspec.NODEFAULT or f.default_factory is not msgspec.NODEFAULT
        for f in fields
    ]
    assert defaulted == sorted(defaulted)


def test_tags_are_distinct_and_lowercase() -> None:
    tags = [
        cls.__struct_config__.tag
        for cls in (Request, Cancel, Shutdown, Ready, Progress, Response, Heartbeat)
    ]
    assert len(set(tags)) == len(tags)
    assert all(isinstance(t, str) and t == t.lower() for t in tags)


def test_response_constructor_checks_ok_against_error() -> None:
    error = ErrorInfo("raised", "builtins.ValueError", "boom")
    with pytest.raises(ValueError, match="either a result or an error"):
        Response(1, 1, True, error=error)
    with pytest.raises(ValueError, match="either a result or an error"):
        Response(1, 1, False)


@pytest.mark.parametrize(("current", "total"), [(INF, 1.0), (0.0, INF), (INF, INF)])
def test_progress_constructor_rejects_infinity(current: float, total: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        Progress(1, 1, current, total)


def test_progress_int_values_decode_as_floats() -> None:
    [decoded] = from_worker_decoder().feed(_frame(["progress", 1, 1, 3, 4]))
    assert decoded == Progress(1, 1, 3.0, 4.0)
    assert type(decoded.current) is float
    assert type(decoded.total) is float
    assert not math.isnan(decoded.current)
