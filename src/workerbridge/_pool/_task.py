"""Task handles (what ``submit`` returns) and the pool's record of each task."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from concurrent.futures._base import CANCELLED, FINISHED, PENDING, RUNNING
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, final

from .._exceptions import TaskCancelledError

if TYPE_CHECKING:
    from collections.abc import Generator

    from ._queue import QueueEntry

__all__ = ["ProgressInfo", "TaskHandle", "TaskRecord", "TaskState"]

R = TypeVar("R")


@final
@dataclass(frozen=True, slots=True)
class ProgressInfo:
    """A progress report: ``current`` of ``total`` done, ``progress`` in percent."""

    current: float
    total: float

    @property
    def progress(self) -> float:
        return 100.0 * self.current / self.total


@final
class TaskHandle(Future[R]):
    """The handle of one submitted task.

    A ``concurrent.futures.Future`` (``result()``, ``exception()``, ``add_done_callback``,
    ``concurrent.futures.wait``) that is also awaitable from any event loop. It ends in
    exactly one state: a result, or one of the ``TaskError`` exceptions. ``cancel()`` works
    on queued *and* running tasks (see ``WorkerPool.submit``); a cancelled handle raises
    ``TaskCancelledError`` and reports ``cancelled()``. Cancelling an asyncio task that awaits
    the handle cancels the pool task too.

    Handles are created only by the pool.
    """

    def __init__(
        self,
        task_id: int,
        canceller: Callable[[TaskHandle[Any]], bool],
        assist: Callable[[Future[Any], float | None], bool] | None = None,
    ) -> None:
        super().__init__()
        self._task_id = task_id
        self._canceller = canceller
        self._assist = assist
        self._progress: ProgressInfo | None = None

    @property
    def id(self) -> int:
        """The task's id, unique within its pool."""
        return self._task_id

    @property
    def progress(self) -> ProgressInfo | None:
        """The task's last progress report, or None before the first."""
        return self._progress

    def cancel(self) -> bool:
        """Cancel the task; True if it will end as cancelled.

        A queued task is removed and never runs. A running task is asked to stop through
        its cancel flag and killed with its worker if it has not stopped after the pool's
        ``kill_grace``. False if the task had already finished.
        """
        if self.done():
            return self.cancelled()
        return self._canceller(self)

    def result(self, timeout: float | None = None) -> R:
        """The task's result; raises its error. Waits at most ``timeout`` seconds
        (``TimeoutError`` after that; the task keeps running)."""
        return super().result(self._help(timeout))

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's error, or None if it succeeded; waits like ``result``."""
        return super().exception(self._help(timeout))

    def _help(self, timeout: float | None) -> float | None:
        # On the process backend the waiting thread runs the I/O loop itself until this
        # handle is done, so its reply wakes it directly (see Reactor.run_until).
        assist = self._assist
        if assist is None or self._state not in (PENDING, RUNNING):
            return timeout
        if timeout is None:
            assist(self, None)
            return None
        start = time.monotonic()
        assist(self, timeout)
        return max(0.0, timeout - (time.monotonic() - start))

    def cancelled(self) -> bool:
        with self._condition:
            state = self._state
            return bool(
                state == CANCELLED
                or (state == FINISHED and isinstance(self._exception, TaskCancelledError))
            )

    def __repr__(self) -> str:
        return f"<TaskHandle id={self._task_id} {self._state.lower()}>"

    def __await__(self) -> Generator[Any, None, R]:
        return self._as_asyncio_future().__await__()

    def _as_asyncio_future(self) -> asyncio.Future[R]:
        # asyncio.wrap_future would turn our cancelled state into asyncio.CancelledError,
        # which tells the awaiting coroutine that *it* was cancelled. Chain by hand instead:
        # the awaiting coroutine gets TaskCancelledError, and cancelling it cancels the task.
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[R] = loop.create_future()

        def copy_state(handle: Future[R]) -> None:
            if waiter.done():
                return
            exc = handle.exception()
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(handle.result())

        def on_handle_done(handle: Future[R]) -> None:
            if loop.is_closed():
                return
            loop.call_soon_threadsafe(copy_state, handle)

        def on_waiter_done(fut: asyncio.Future[R]) -> None:
            if fut.cancelled():
                self.cancel()

        waiter.add_done_callback(on_waiter_done)
        self.add_done_callback(on_handle_done)
        return waiter

    def _report_progress(
        self, info: ProgressInfo, callback: Callable[[ProgressInfo], Any] | None
    ) -> None:
        # Reports are decided in batches under the pool's lock and delivered after it; a
        # cancel or timeout that resolved the handle in between makes the rest stale.
        if self.done():
            return
        self._progress = info
        if callback is not None:
            try:
                callback(info)
            except Exception:
                logging.getLogger("workerbridge").exception("exception in on_progress callback")


class TaskState(enum.Enum):
    QUEUED = "queued"  # waiting in the pool's queue
    SENT = "sent"  # sent to a worker (running, or waiting there behind another task)
    DONE = "done"  # its handle has its final state (a worker may still be finishing it)


class TaskRecord:
    """Everything the pool knows about one task."""

    __slots__ = (
        "affinity",
        "attempt",
        "blocks",
        "buffers",
        "cancel_token",
        "channel",
        "chunked",
        "deadline",
        "entry",
        "function",
        "handle",
        "holders",
        "id",
        "loop",
        "moved",
        "on_progress",
        "operation",
        "order",
        "payload",
        "pickled_function",
        "priority",
        "retries",
        "retry_on",
        "seq",
        "slot",
        "started_at",
        "state",
        "submitted_at",
        "timeout",
    )

    def __init__(
        self,
        task_id: int,
        handle: TaskHandle[Any],
        *,
        function: str,
        pickled_function: bytes,
        channel: str,
        operation: str,
        payload: bytes,
        chunked: bool,
        priority: int,
        deadline: float | None,
        timeout: float | None,
        retries: int,
        retry_on: tuple[type[BaseException], ...],
        affinity: Hashable | None,
        on_progress: Callable[[ProgressInfo], Any] | None,
        loop: asyncio.AbstractEventLoop | None,
        submitted_at: float,
    ) -> None:
        self.id = task_id
        self.handle = handle
        self.function = function
        self.pickled_function = pickled_function
        self.channel = channel
        self.operation = operation
        self.payload = payload
        self.chunked = chunked
        self.priority = priority
        self.deadline = deadline
        self.timeout = timeout
        self.retries = retries
        self.retry_on = retry_on
        self.affinity = affinity
        self.on_progress = on_progress
        self.loop = loop
        self.submitted_at = submitted_at
        self.attempt = 1
        self.buffers: tuple[Any, ...] = ()  # ShmRefs of out-of-band argument buffers
        self.blocks: tuple[str, ...] = ()  # the pool's shared-memory blocks holding them
        self.holders = 0  # workers holding a request of this task (blocks stay until 0)
        self.moved: tuple[str, ...] = ()  # SharedBuffers transferred into the task
        self.cancel_token = ""  # name of a SharedCancellation the worker checks itself
        self.state = TaskState.QUEUED
        self.entry: QueueEntry[TaskRecord] | None = None
        self.order = -1  # place in submission order, kept when the task is put back
        self.slot: Any = None
        self.seq = -1
        self.started_at: float | None = None
