"""The inline backend: tasks run synchronously in the thread that submits them.

For tests and debugging: breakpoints and tracebacks work as in plain code. ``submit``
returns a handle that is already done. Timeouts cannot interrupt a task that runs on the
caller's own stack; they are checked when it returns.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._protocol import Request, Shutdown, ToWorker
from ._base import BackendOptions, WorkerEvents
from ._thread import InProcessWorker

__all__ = ["InlineBackend", "InlineWorker"]


class InlineWorker(InProcessWorker):
    def __init__(self, worker_id: int, events: WorkerEvents, options: BackendOptions) -> None:
        super().__init__(worker_id, events, options)
        self._boot()

    def send(self, messages: Sequence[ToWorker]) -> None:
        for message in messages:
            if isinstance(message, Request):
                self._run(message)
            elif isinstance(message, Shutdown):
                self._report_exit("stopped")
            else:
                self._runner.skip(message.id, message.attempt)


class InlineBackend:
    name = "inline"

    def __init__(self, options: BackendOptions) -> None:
        self.options = options

    def start_worker(self, worker_id: int, events: WorkerEvents) -> InlineWorker:
        return InlineWorker(worker_id, events, self.options)

    def close(self) -> None:
        pass
