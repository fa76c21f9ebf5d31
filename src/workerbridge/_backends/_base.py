"""The interface between the pool and the things that run its tasks.

A backend starts workers; a worker takes messages and reports back through two callbacks.
That is all the pool needs, so a backend can be processes on this machine, threads, the
caller itself, or actors on a cluster:

```
pool --start_worker(id, events)--> Backend --> Worker
pool --worker.send([Request | Cancel | Shutdown])--> Worker
Worker --events.on_messages(worker, [Ready | Progress | Response | Heartbeat])--> pool
Worker --events.on_exit(worker, WorkerExit)--> pool      (exactly once per worker)
```

Callbacks arrive on a backend thread (or, inline, on the caller's). ``send`` never blocks on
a busy worker; ``kill`` is immediate and idempotent and is always followed by ``on_exit``.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from .._protocol import ErrorInfo, FromWorker, ToWorker
    from .._transport import AttachmentCache, BlockCache
    from .._worker import ControlBlock

__all__ = [
    "Backend",
    "BackendOptions",
    "ExitReason",
    "SharedMemoryChannel",
    "Worker",
    "WorkerEvents",
    "WorkerExit",
    "signal_name",
]

#: Why a worker ended: ``died`` (crashed or exited on its own), ``killed`` (by the pool:
#: timeout, cancel, unresponsive, recycle), ``stopped`` (after ``Shutdown``), ``protocol``
#: (it sent a malformed frame), ``boot`` (its initializer or imports failed).
ExitReason = Literal["died", "killed", "stopped", "protocol", "boot"]


def signal_name(exitcode: int | None) -> str | None:
    """``"SIGKILL"`` for exit code -9, ``None`` for a normal exit."""
    if exitcode is None or exitcode >= 0:
        return None
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


@dataclass(frozen=True)
class WorkerExit:
    """How a worker ended."""

    pid: int | None
    exitcode: int | None
    reason: ExitReason = "died"
    error: ErrorInfo | None = None
    detail: str = ""

    @property
    def signal_name(self) -> str | None:
        return signal_name(self.exitcode)

    def describe(self) -> str:
        if self.detail:
            return self.detail
        sig = self.signal_name
        how = f"killed by {sig}" if sig else f"exit code {self.exitcode}"
        return f"worker pid {self.pid} {how}"


@dataclass(frozen=True)
class SharedMemoryChannel:
    """How a backend moves large buffers: blocks the pool owns (arguments), mappings of
    blocks workers own (results), and the size from which a buffer goes that way."""

    threshold: int
    blocks: BlockCache
    attachments: AttachmentCache


@dataclass(frozen=True)
class BackendOptions:
    """Settings every backend receives from the pool."""

    debug: bool = False
    heartbeat_interval: float = 0.5
    max_message_bytes: int = 1 << 30
    initializer: Callable[..., Any] | None = None
    initargs: tuple[Any, ...] = field(default=())
    shm_threshold: int = 0  # 0: large buffers go through the pipe like everything else


class WorkerEvents(Protocol):
    """What the pool implements to hear from its workers."""

    def on_messages(self, worker: Worker, messages: list[FromWorker]) -> None: ...

    def on_exit(self, worker: Worker, exit: WorkerExit) -> None: ...


class Worker(Protocol):
    """One worker as the pool sees it."""

    @property
    def worker_id(self) -> int: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def control(self) -> ControlBlock: ...

    def send(self, messages: Sequence[ToWorker]) -> None:
        """Queue messages for the worker, in order; never blocks on a busy worker."""

    def kill(self) -> None:
        """Stop the worker now (SIGKILL for a process). ``on_exit`` follows."""

    def heartbeat_age(self, now_ns: int) -> float:
        """Seconds since the worker's last heartbeat."""


class Backend(Protocol):
    """Starts workers of one kind."""

    name: str

    def start_worker(self, worker_id: int, events: WorkerEvents) -> Worker:
        """Start a worker; it sends ``Ready`` (or exits) on its own.

        Raises:
            OSError: the worker could not be created at all (no processes, no fds).
        """

    def close(self) -> None:
        """Release what the backend holds; every worker must have exited or been killed."""
