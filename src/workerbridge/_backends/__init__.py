"""Layer: backends, the things that run a pool's workers behind one small interface."""

from ._base import (
    Backend,
    BackendOptions,
    ExitReason,
    SharedMemoryChannel,
    Worker,
    WorkerEvents,
    WorkerExit,
    signal_name,
)
from ._inline import InlineBackend
from ._process import ProcessBackend, default_start_method
from ._thread import ThreadBackend

__all__ = [
    "Backend",
    "BackendOptions",
    "ExitReason",
    "InlineBackend",
    "ProcessBackend",
    "SharedMemoryChannel",
    "ThreadBackend",
    "Worker",
    "WorkerEvents",
    "WorkerExit",
    "default_start_method",
    "signal_name",
]
