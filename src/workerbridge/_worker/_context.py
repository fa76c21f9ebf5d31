"""What a running task sees of itself: ``current_task()``.

The same object works on every backend: in a worker process, on a worker thread and inline
in the caller, because it only needs a way to send progress and a way to read the cancel
flag, which each backend supplies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import final

from .._exceptions import TaskCancelledError, ValidationError

__all__ = ["TaskContext", "current_task"]

#: Progress reports closer together than this are coalesced, so a task that reports in a
#: tight loop does not flood the channel: the latest held-back report goes out with the next
#: one sent, and before the task's result. A report that completes the work
#: (current >= total) is always sent at once.
PROGRESS_INTERVAL_S = 0.01


@final
class TaskContext:
    """The running task's view of itself.

    ``report(current, total)`` sends progress to the caller's ``on_progress``;
    ``cancelled`` turns true as soon as the pool asks the task to stop (cancel or timeout);
    a task that keeps running after that is killed with its worker after ``kill_grace``.
    """

    __slots__ = ("_held", "_is_cancelled", "_last_sent", "_send", "attempt", "id")

    def __init__(
        self,
        task_id: int,
        attempt: int,
        send_progress: Callable[[float, float], None],
        is_cancelled: Callable[[], bool],
    ) -> None:
        self.id = task_id
        self.attempt = attempt
        self._send = send_progress
        self._is_cancelled = is_cancelled
        self._last_sent = 0.0
        self._held: tuple[float, float] | None = None

    def report(self, current: float, total: float = 100.0) -> None:
        """Report that ``current`` of ``total`` units are done.

        Raises:
            ValidationError: a negative or non-finite value, or ``total <= 0``.
        """
        if not (0.0 <= current < float("inf")) or not (0.0 < total < float("inf")):
            raise ValidationError(
                f"report(current={current!r}, total={total!r}): need 0 <= current "
                "and 0 < total, both finite"
            )
        now = time.monotonic()
        if current < total and now - self._last_sent < PROGRESS_INTERVAL_S:
            self._held = (float(current), float(total))
            return
        self._last_sent = now
        self._held = None
        self._send(float(current), float(total))

    def flush(self) -> None:
        """Send the report held back by throttling, if any (the runner calls this before
        sending the task's result, so the last report is never lost)."""
        held = self._held
        if held is not None:
            self._held = None
            self._send(*held)

    @property
    def cancelled(self) -> bool:
        """True once the pool has asked this task to stop."""
        return self._is_cancelled()

    def raise_if_cancelled(self) -> None:
        """Raise ``TaskCancelledError`` if the pool has asked this task to stop."""
        if self._is_cancelled():
            raise TaskCancelledError("task was cancelled", task_id=self.id)


_current: ContextVar[TaskContext | None] = ContextVar("workerbridge_current_task", default=None)


def current_task() -> TaskContext:
    """The context of the task running in this thread.

    Raises:
        RuntimeError: called outside a task.
    """
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("current_task() called outside a workerbridge task")
    return ctx
