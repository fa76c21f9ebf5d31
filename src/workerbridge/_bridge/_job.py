"""Bridge operations as pool tasks: one handle for one operation, however many tasks it takes.

A simple operation (hash these bytes, fetch this URL) is one channel call, and its handle is
the pool's own. A file operation is a *job*: a driver function that runs on a thread of its
own in the caller's process, splits the work into channel calls (chunks of a file, files of
a folder), keeps a bounded number of them in flight, does what must happen in the caller
(write the chunks in order, rename the finished file) and returns the result::

    caller --op()--> TaskHandle (returned at once)
                        ^
                        |  result / error / summed progress
    job thread: driver(job) --job.call()--> pool tasks --> workers
                        |      <--results in order (job.ordered)--

The job's handle behaves like a task's: ``cancel()`` and ``signal`` stop every call still
running, ``timeout`` bounds the whole operation, ``on_progress`` receives the sum of the
calls' progress (in the caller's event loop when the operation was started from a
coroutine). The handle resolves only after the driver has cleaned up (a half-written output
file is removed before ``TaskCancelledError`` or the error reaches the caller).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, Generic, TypeVar, final

from .._exceptions import TaskCancelledError, TaskTimeoutError, ValidationError
from .._pool import ProgressInfo, TaskHandle, WorkerPool
from .._shared import AbortSignal, SharedCancellation

__all__ = ["Job", "OperationOptions", "call_once", "start_job"]

R = TypeVar("R")
ProgressCallback = Callable[[ProgressInfo], object]

#: Ids of job handles; negative so that they never collide with a pool's task ids.
_job_ids = itertools.count(-1, -1)
#: Seconds ``cancel()`` waits for a job's driver to clean up before it returns anyway.
_CLEANUP_WAIT_S = 5.0
#: ``.job``: the job whose ``on_progress`` this thread is running, if any.
_delivering = threading.local()


@final
class OperationOptions:
    """The options every bridge operation takes, checked once."""

    __slots__ = ("on_progress", "signal", "timeout")

    def __init__(
        self,
        on_progress: ProgressCallback | None,
        signal: object | None,
        timeout: float | None,
    ) -> None:
        if on_progress is not None and not callable(on_progress):
            raise ValidationError(f"on_progress must be callable, got {on_progress!r}")
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not timeout > 0
            or timeout != timeout
        ):
            raise ValidationError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if signal is not None and not (
            isinstance(signal, SharedCancellation | AbortSignal)
            or callable(getattr(signal, "to_abort_signal", None))
            or callable(getattr(signal, "add_done_callback", None))
        ):
            raise ValidationError(
                "signal must be a SharedCancellation or its AbortSignal, an asyncio.Future, "
                f"a concurrent Future or a TaskHandle, got {signal!r}"
            )
        self.on_progress = on_progress
        self.signal = signal
        self.timeout = None if timeout is None else float(timeout)


def call_once(
    pool: WorkerPool,
    channel: str,
    operation: str,
    args: tuple[Any, ...],
    options: OperationOptions,
) -> TaskHandle[Any]:
    """A one-call operation: the pool's handle of ``channel.operation(*args)``."""
    return pool.call(
        channel,
        operation,
        *args,
        timeout=options.timeout,
        on_progress=options.on_progress,
        signal=options.signal,
    )


@final
class Job(Generic[R]):
    """What a driver uses: ``call`` to start channel calls, ``ordered`` to run many with a
    bounded window, ``report`` for progress of its own, ``check`` to stop when the job was
    cancelled or ran out of time."""

    def __init__(
        self,
        pool: WorkerPool,
        options: OperationOptions,
        total: float,
    ) -> None:
        self.pool = pool
        self._options = options
        self._total = float(total) if total > 0 else 1.0
        self._lock = threading.Lock()
        self._resolving = threading.Lock()  # held only while the handle is being resolved
        self._calls: dict[int, TaskHandle[Any]] = {}
        self._keys = itertools.count()
        self._done_units = 0.0  # finished calls' weights plus what the driver reported
        self._partial: dict[int, float] = {}  # running calls' progress, in units
        self._stop: BaseException | None = None
        self._expires = None if options.timeout is None else time.monotonic() + options.timeout
        self._loop: asyncio.AbstractEventLoop | None
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self.handle: TaskHandle[R] = TaskHandle(next(_job_ids), self._cancel_from_handle)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ for the driver
    def call(
        self, channel: str, operation: str, *args: Any, weight: float = 0.0
    ) -> TaskHandle[Any]:
        """Start ``channel.operation(*args)`` as part of this job. Its progress counts for
        ``weight`` units of the job's total (its reports are scaled to it), and its
        ``weight`` is added once it succeeds.

        Raises:
            TaskCancelledError, TaskTimeoutError: the job was cancelled or timed out.
        """
        self.check()
        shared = self._options.signal
        if not isinstance(shared, SharedCancellation | AbortSignal):
            shared = None  # other signals are linked to the job's handle, not to each call
        key = next(self._keys)
        on_progress = None
        if self._options.on_progress is not None and weight > 0:
            on_progress = self._progress_of(key, weight)
        handle = self.pool.call(channel, operation, *args, on_progress=on_progress, signal=shared)
        with self._lock:
            stopped = self._stop is not None
            if not stopped:
                self._calls[key] = handle
        if stopped:
            handle.cancel()
            self.check()

        def finished(done: Future[Any]) -> None:
            with self._lock:
                self._calls.pop(key, None)
                self._partial.pop(key, None)
                if done.cancelled() or done.exception() is not None:
                    return
                self._done_units += weight
                units = self._done_units + sum(self._partial.values())
            if weight > 0:
                self._publish(units)

        handle.add_done_callback(finished)
        return handle

    def wait(self, handle: TaskHandle[Any]) -> Any:
        """The result of a call started with ``call``, waiting at most until the job's
        timeout; raises the call's error.

        Raises:
            TaskTimeoutError: the job's timeout passed.
            TaskCancelledError: the job was cancelled.
        """
        while True:
            self.check()
            remaining = None if self._expires is None else self._expires - time.monotonic()
            if remaining is not None and remaining <= 0:
                self._expire()
                continue
            try:
                return handle.result(timeout=remaining)
            except TaskCancelledError:
                self.check()  # the job's own cancel or timeout explains it
                raise
            except TimeoutError as exc:
                if isinstance(exc, TaskTimeoutError):  # the call's own error
                    raise
                # The job's time ran out while waiting (the call may have finished just
                # after): check() raises TaskTimeoutError, never this bare TimeoutError.

    def ordered(self, calls: Iterable[Callable[[], TaskHandle[Any]]], window: int) -> Iterator[Any]:
        """Start the ``calls`` (zero-argument functions that each start one call) with at
        most ``window`` in flight, and yield their results in order. The first error is
        raised, and every call still in flight is cancelled."""
        pending: deque[TaskHandle[Any]] = deque()
        source = iter(calls)
        try:
            for start in source:
                pending.append(start())
                if len(pending) >= window:
                    yield self.wait(pending.popleft())
            while pending:
                yield self.wait(pending.popleft())
        finally:
            for handle in pending:
                handle.cancel()

    def report(self, units: float) -> None:
        """Count ``units`` of the job's total as done by the driver itself."""
        with self._lock:
            self._done_units += units
            total = self._done_units + sum(self._partial.values())
        self._publish(total)

    def check(self) -> None:
        """Raise the job's stop reason if it was cancelled or timed out."""
        if self._expires is not None and self._stop is None and time.monotonic() >= self._expires:
            self._expire()
        stop = self._stop
        if stop is not None:
            raise stop

    @property
    def cancelled(self) -> bool:
        return self._stop is not None

    # ------------------------------------------------------------ running the driver
    def start(self, driver: Callable[[Job[R]], R], name: str) -> TaskHandle[R]:
        signal = self._options.signal
        if signal is not None:
            to_abort = getattr(signal, "to_abort_signal", None)
            source: Any = to_abort() if to_abort is not None else signal
            source.add_done_callback(lambda _s: self.handle.cancel())
            if self.handle.done():  # the signal had fired: cancelled before anything began
                return self.handle
        self._thread = threading.Thread(
            target=self._run, args=(driver,), name=f"workerbridge-{name}", daemon=True
        )
        self._thread.start()
        return self.handle

    def _run(self, driver: Callable[[Job[R]], R]) -> None:
        try:
            result = driver(self)
            # A cancel that came while the driver was finishing wins. A timeout that passed
            # after its last check does not: the driver may have committed its output, and
            # TaskTimeoutError promises that nothing was left behind.
            stop = self._stop
            if stop is not None:
                raise stop
        except BaseException as exc:
            self._resolve(error=self._stop if self._stop is not None else exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self._cancel_calls()
        if not self.handle.done():
            if self._options.on_progress is not None:
                self._publish(self._total)
            self._resolve(result=result)

    def _resolve(self, *, result: Any = None, error: BaseException | None = None) -> None:
        # The driver's thread and a cancel() whose clean-up wait ran out may both try to
        # resolve the handle; the first one wins, the other leaves it as it is.
        with self._resolving:
            if self.handle.done():
                return
            if error is not None:
                self.handle.set_exception(error)
            else:
                self.handle.set_result(result)

    # ------------------------------------------------------------ stopping
    def _cancel_from_handle(self, _handle: TaskHandle[Any]) -> bool:
        self._halt(TaskCancelledError("operation was cancelled", task_id=self.handle.id))
        thread = self._thread
        if thread is threading.current_thread() or getattr(_delivering, "job", None) is self:
            # Cancelled from the driver's own thread or from this job's on_progress (which
            # the pool's I/O thread may run, the thread the driver needs to see its calls
            # end: waiting here would stall both). The driver stops at its next check and
            # ``_run`` resolves the handle after its ``finally``; resolving it now would
            # come before that clean-up.
            return True
        if thread is not None:
            thread.join(_CLEANUP_WAIT_S)
        if not self.handle.done():  # the driver has not finished cleaning up in time
            assert self._stop is not None
            self._resolve(error=self._stop)
        # False when the driver set its result after its last stop check, before the halt.
        return self.handle.cancelled()

    def _expire(self) -> None:
        assert self._options.timeout is not None
        self._halt(
            TaskTimeoutError(
                f"operation timed out after {self._options.timeout} s",
                task_id=self.handle.id,
                timeout=self._options.timeout,
            )
        )

    def _halt(self, reason: BaseException) -> None:
        with self._lock:
            if self._stop is None:
                self._stop = reason
        self._cancel_calls()

    def _cancel_calls(self) -> None:
        with self._lock:
            calls = list(self._calls.values())
        for handle in calls:
            handle.cancel()

    # ------------------------------------------------------------ progress
    def _progress_of(self, key: int, weight: float) -> ProgressCallback:
        def on_progress(info: ProgressInfo) -> None:
            fraction = min(1.0, info.current / info.total)
            with self._lock:
                self._partial[key] = weight * fraction
                units = self._done_units + sum(self._partial.values())
            self._publish(units)

        return on_progress

    def _publish(self, units: float) -> None:
        callback = self._options.on_progress
        info = ProgressInfo(min(units, self._total), self._total)
        if self._stop is not None or self.handle.done():
            return  # nothing is reported once the job was cancelled or timed out
        if callback is None:
            self.handle._report_progress(info, None)
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._deliver_on_loop, info, callback)
            except RuntimeError:  # the loop closed in between
                pass
        else:
            previous = getattr(_delivering, "job", None)
            _delivering.job = self
            try:
                self.handle._report_progress(info, callback)
            finally:
                _delivering.job = previous

    def _deliver_on_loop(self, info: ProgressInfo, callback: ProgressCallback) -> None:
        # Reports reach the loop after the job may have finished on its thread; the awaiting
        # coroutine is woken through the same loop, after them (FIFO), so a report published
        # before a success is still delivered (the final 100% included). After a cancel or
        # an error no report is delivered.
        handle = self.handle
        if handle.done() and (handle.cancelled() or handle.exception() is not None):
            return
        handle._progress = info
        try:
            callback(info)
        except Exception:
            logging.getLogger("workerbridge").exception("exception in on_progress callback")


def start_job(
    pool: WorkerPool,
    driver: Callable[[Job[R]], R],
    options: OperationOptions,
    *,
    total: float,
    name: str,
) -> TaskHandle[R]:
    """Run ``driver(job)`` on a thread of its own; return the job's handle at once.

    ``total`` is the job's size in the units its calls' weights use (bytes, usually).
    """
    return Job[R](pool, options, total).start(driver, name)
