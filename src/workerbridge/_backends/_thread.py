"""Workers as threads of the calling process: the fallback when processes cannot start.

Same API, same error types, same task runner; what differs is what threads cannot do. A
thread cannot be killed, so a task that ignores its cancel flag after a timeout or cancel is
*abandoned*: its handle is failed as usual, the worker is replaced, and the old thread ends
when the task returns (its result is dropped). CPU-bound Python code does not run in
parallel on threads (the GIL); I/O and C code that releases the GIL does.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Sequence

from .._protocol import Progress, Ready, Request, Shutdown, ToWorker
from .._worker import ControlBlock, TaskRunner, error_info
from ._base import BackendOptions, ExitReason, WorkerEvents, WorkerExit

__all__ = ["InProcessWorker", "ThreadBackend", "ThreadWorker"]


class InProcessWorker:
    """What thread and inline workers share: a local control block and a task runner."""

    def __init__(self, worker_id: int, events: WorkerEvents, options: BackendOptions) -> None:
        self._worker_id = worker_id
        self._events = events
        self._options = options
        self._control = ControlBlock.local()
        self._runner = TaskRunner(self._control, self._progress, debug=options.debug)
        self._exit_lock = threading.Lock()
        self._exited = False

    @property
    def worker_id(self) -> int:
        return self._worker_id

    @property
    def pid(self) -> int | None:
        return os.getpid()

    @property
    def control(self) -> ControlBlock:
        return self._control

    def heartbeat_age(self, now_ns: int) -> float:
        return 0.0  # a thread of this process is as alive as the process itself

    def send(self, messages: Sequence[ToWorker]) -> None:
        raise NotImplementedError

    def _progress(self, progress: Progress) -> None:
        if not self._exited:
            self._events.on_messages(self, [progress])

    def _boot(self) -> bool:
        """Run the initializer and announce readiness; False if it failed."""
        try:
            if self._options.initializer is not None:
                self._options.initializer(*self._options.initargs)
        except Exception as exc:
            self._events.on_messages(self, [Ready(os.getpid(), error_info("raised", exc, True))])
            self._report_exit("boot")
            return False
        self._events.on_messages(self, [Ready(os.getpid())])
        return True

    def _run(self, request: Request) -> None:
        response = self._runner.run(request)
        if not self._exited:
            self._events.on_messages(self, [response])

    def _report_exit(self, reason: ExitReason) -> None:
        with self._exit_lock:
            if self._exited:
                return
            self._exited = True
        self._events.on_exit(
            self, WorkerExit(os.getpid(), 0 if reason == "stopped" else None, reason)
        )

    def kill(self) -> None:
        # Threads cannot be stopped from outside: abandon this one. Its exit is reported from
        # another thread, as a process backend would report it from its I/O thread, so the
        # caller never re-enters the pool from inside kill().
        threading.Thread(target=self._report_exit, args=("killed",), daemon=True).start()


class ThreadWorker(InProcessWorker):
    """A worker thread that takes requests from a queue."""

    def __init__(self, worker_id: int, events: WorkerEvents, options: BackendOptions) -> None:
        super().__init__(worker_id, events, options)
        self._inbox: queue.SimpleQueue[ToWorker | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._loop, name=f"workerbridge-thread-{worker_id}", daemon=True
        )
        self._thread.start()

    def send(self, messages: Sequence[ToWorker]) -> None:
        for message in messages:
            if isinstance(message, Request | Shutdown):
                self._inbox.put(message)
            else:  # Cancel: skip the request if it is still waiting
                self._runner.skip(message.id, message.attempt)

    def kill(self) -> None:
        self._inbox.put(None)  # let the thread end once its current task returns
        super().kill()

    def _loop(self) -> None:
        if not self._boot():
            return
        while not self._exited:
            message = self._inbox.get()
            if message is None:
                return
            if isinstance(message, Shutdown):
                self._report_exit("stopped")
                return
            if isinstance(message, Request):
                self._run(message)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


class ThreadBackend:
    """Workers are daemon threads of this process."""

    name = "thread"

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self._workers: list[ThreadWorker] = []

    def start_worker(self, worker_id: int, events: WorkerEvents) -> ThreadWorker:
        worker = ThreadWorker(worker_id, events, self.options)
        self._workers.append(worker)
        return worker

    def close(self) -> None:
        # Bounded: an abandoned thread still running a task is left to finish on its own.
        for worker in self._workers:
            worker.join(timeout=1.0)
        self._workers.clear()
