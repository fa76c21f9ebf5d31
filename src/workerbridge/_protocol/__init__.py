"""Layer 0: typed messages and their framing. Pure data: no I/O, no asyncio, no processes."""

from ._codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FrameDecoder,
    FrameEncoder,
    from_worker_decoder,
    to_worker_decoder,
)
from ._messages import (
    Cancel,
    ErrorInfo,
    ErrorKind,
    FromWorker,
    Heartbeat,
    Progress,
    Ready,
    Request,
    Response,
    ShmRef,
    Shutdown,
    ToWorker,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "Cancel",
    "ErrorInfo",
    "ErrorKind",
    "FrameDecoder",
    "FrameEncoder",
    "FromWorker",
    "Heartbeat",
    "Progress",
    "Ready",
    "Request",
    "Response",
    "ShmRef",
    "Shutdown",
    "ToWorker",
    "from_worker_decoder",
    "to_worker_decoder",
]
