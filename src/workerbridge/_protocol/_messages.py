"""The typed messages that cross between the pool and its workers.

Every message is a frozen, tagged msgspec Struct encoded as a MessagePack array, and each
direction decodes against one union of the messages that may travel that way, so a message
sent in the wrong direction is as invalid as garbage. New fields must always get defaults
(schema evolution: an older peer ignores them, a newer one fills them in).

```
parent -> worker:  Request, Cancel, Shutdown
worker -> parent:  Ready, Progress, Response, Heartbeat
```

Flow of one task: ``Request(id, attempt, seq, ...)`` -> zero or more ``Progress(id, attempt,
current, total)`` -> ``Response(id, attempt, ok, data | error)``. ``attempt`` lets the pool
drop anything that a superseded attempt (timed out, retried) still sends; ``seq`` is the
per-worker sequence number the worker's control block refers to.

The process backend carries the cancel flag and the heartbeat through the worker's shared
control block rather than as messages, so that neither waits behind a large payload in the
pipe; ``Cancel`` and ``Heartbeat`` are the same signals for channels without shared memory.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import msgspec

__all__ = [
    "Cancel",
    "ErrorInfo",
    "ErrorKind",
    "FromWorker",
    "Heartbeat",
    "Progress",
    "Ready",
    "Request",
    "Response",
    "ShmRef",
    "Shutdown",
    "ToWorker",
]

TaskId = Annotated[int, msgspec.Meta(ge=0)]
Attempt = Annotated[int, msgspec.Meta(ge=1)]
Count = Annotated[float, msgspec.Meta(ge=0.0)]
Pid = Annotated[int, msgspec.Meta(gt=0)]

#: Why a task failed inside the worker:
#: ``raised``: the task raised an exception (``type``/``message`` describe it);
#: ``cancelled``: it stopped because it saw its cancel flag, or was skipped before starting;
#: ``serialization``: its function, arguments or result could not be (un)pickled;
#: ``deadline``: its start deadline had passed when the worker reached it (never ran);
#: ``lookup``: its function or channel operation could not be found.
ErrorKind = Literal["raised", "cancelled", "deadline", "serialization", "lookup"]


class ErrorInfo(msgspec.Struct, frozen=True, array_like=True):
    """A sanitized exception: type name and message, never its arguments.

    ``traceback`` is empty unless the pool runs with ``debug=True``.
    """

    kind: ErrorKind
    type: str
    message: str
    traceback: str = ""


class ShmRef(msgspec.Struct, frozen=True, array_like=True):
    """``length`` bytes at ``offset`` of the shared-memory segment ``name``: one
    out-of-band buffer of a pickled payload (pickle protocol 5), in payload order.

    ``copied`` says the unpickled object copies the buffer anyway (``bytes``,
    ``bytearray``), so the receiver may hand over the shared view itself."""

    name: str
    offset: Annotated[int, msgspec.Meta(ge=0)]
    length: Annotated[int, msgspec.Meta(ge=0)]
    copied: bool = False


class Request(msgspec.Struct, tag="request", frozen=True, array_like=True):
    """Run one task.

    Exactly one of ``function`` (``"module:qualname"``), ``pickled_function`` (cloudpickle)
    or ``channel``/``operation`` (a registered channel operation) names what to run. ``payload``
    is the pickled tuple of positional arguments; with ``chunked`` it is ``(items,)`` and
    the function runs once per item (``map`` groups items into one request). ``deadline``
    is an absolute ``time.monotonic()`` value (the clock is system-wide on Linux) after
    which the task must not start.
    """

    id: TaskId
    attempt: Attempt
    seq: Annotated[int, msgspec.Meta(ge=0)]
    payload: bytes
    function: str = ""
    pickled_function: bytes = b""
    channel: str = ""
    operation: str = ""
    chunked: bool = False
    deadline: float | None = None
    buffers: tuple[ShmRef, ...] = ()
    released: tuple[str, ...] = ()  # the worker's result blocks the pool is done with
    cancel_token: str = ""  # a SharedCancellation the task also stops for (its segment)


class Cancel(msgspec.Struct, tag="cancel", frozen=True, array_like=True):
    """Stop task ``id`` (attempt ``attempt``): skip it if it has not started."""

    id: TaskId
    attempt: Attempt


class Shutdown(msgspec.Struct, tag="shutdown", frozen=True, array_like=True):
    """Finish what was sent, then exit with status 0."""


class Ready(msgspec.Struct, tag="ready", frozen=True, array_like=True):
    """The worker finished booting (imports, initializer) and takes requests.

    With ``error`` set, booting failed: the worker exits right after sending it, and the
    pool counts it towards breaking (a failing initializer fails every worker alike).
    """

    pid: Pid
    error: ErrorInfo | None = None


class Progress(msgspec.Struct, tag="progress", frozen=True, array_like=True):
    """The running task reported ``current`` out of ``total``."""

    id: TaskId
    attempt: Attempt
    current: Count
    total: Annotated[float, msgspec.Meta(gt=0.0)]

    def __post_init__(self) -> None:
        # Meta(ge=0) already rejects NaN; infinity is the remaining way to break percentages.
        if math.isinf(self.current) or math.isinf(self.total):
            raise ValueError("progress values must be finite")


class Response(msgspec.Struct, tag="response", frozen=True, array_like=True):
    """Task ``id`` finished: ``data`` is the pickled result when ``ok``, else ``error``
    says why. ``run_ns`` is the time the worker spent running it."""

    id: TaskId
    attempt: Attempt
    ok: bool
    data: bytes = b""
    error: ErrorInfo | None = None
    run_ns: Annotated[int, msgspec.Meta(ge=0)] = 0
    buffers: tuple[ShmRef, ...] = ()  # out-of-band buffers of ``data``

    def __post_init__(self) -> None:
        if self.ok == (self.error is not None):
            raise ValueError("a response carries either a result or an error")


class Heartbeat(msgspec.Struct, tag="heartbeat", frozen=True, array_like=True):
    """The worker is alive (sent from a thread of its own)."""

    pid: Pid


ToWorker = Request | Cancel | Shutdown
FromWorker = Ready | Progress | Response | Heartbeat
