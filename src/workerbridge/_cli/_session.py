"""One command's run: the common options, the pool and bridge (started on first use),
the terminal, the temporary area, and how it all ends.

``close()`` ends a successful run: the pool is closed gracefully. ``abort()`` ends any
other: every operation still running is cancelled (a bridge's job handle returns only once
its driver has removed its temporary output), the workers get a moment to finish what the
cancel asked of them (a worker removes its own temporary file), then the pool is stopped
(its workers killed if need be, its shared-memory segments unlinked), and the temporary
area removed. Both are idempotent.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import Console

    from .._bridge import WorkerBridge
    from .._pool import TaskHandle, WorkerPool

from ._display import Display, NullDisplay
from ._files import TempArea
from ._interrupt import InterruptGuard

__all__ = ["POOL_OPTIONS", "CommonOptions", "Session"]

BackendName = Literal["process", "thread", "inline"]

#: The pool settings of every command (``workerbridge info`` prints them). A short
#: ``kill_grace`` because a cancelled chunk of a file is worth nothing: Ctrl-C should free
#: the terminal at once, and the bridges' workers check their cancel flag every chunk
#: anyway.
POOL_OPTIONS: dict[str, Any] = {
    "kill_grace": 0.1,
    "heartbeat_interval": 0.5,
    "heartbeat_timeout": 5.0,
    "ready_timeout": 30.0,
}


#: After a failure or Ctrl-C, how long the cancelled tasks get to finish their cleanup
#: before their workers are killed.
_ABORT_WAIT_S = 1.0


@dataclass(frozen=True)
class CommonOptions:
    """``--workers``, ``--backend``, ``--json``, ``--quiet``."""

    workers: int | None = None
    backend: BackendName = "process"
    json: bool = False
    quiet: bool = False


class Session:
    """Everything one command shares: see the module docstring."""

    def __init__(self, options: CommonOptions, guard: InterruptGuard) -> None:
        self.options = options
        self.guard = guard
        self.temp = TempArea()
        #: Progress bars and summaries only on a terminal, and never with --quiet.
        self.interactive = (
            not options.quiet and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        )
        self.console: Console | None = None
        if self.interactive:
            from rich.console import Console

            self.console = Console(stderr=True)
        self._pool: WorkerPool | None = None
        self._bridge: WorkerBridge | None = None
        self._active: set[TaskHandle[Any]] = set()
        self._lock = threading.Lock()
        self._ended = False

    # ------------------------------------------------------------ the pool
    @property
    def pool(self) -> WorkerPool:
        """The pool, started on first use (``--workers``, ``--backend``)."""
        if self._pool is None:
            from .._pool import WorkerPool

            with self.guard.deferred():  # a Ctrl-C here must still find the pool to end
                self._pool = WorkerPool(
                    self.options.workers, backend=self.options.backend, **POOL_OPTIONS
                )
        return self._pool

    @property
    def bridge(self) -> WorkerBridge:
        """The four bridges over ``pool``."""
        if self._bridge is None:
            from .._bridge import WorkerBridge  # here: loading the bridges takes a while

            self._bridge = WorkerBridge(pool=self.pool)
        return self._bridge

    def track(self, handle: TaskHandle[Any]) -> None:
        """Remember a running operation, so that ``abort()`` cancels it."""
        with self._lock:
            self._active.add(handle)

    def untrack(self, handle: TaskHandle[Any]) -> None:
        with self._lock:
            self._active.discard(handle)

    def pool_status(self) -> str:
        """The workers line under the progress bars."""
        pool = self._pool
        if pool is None:
            return ""
        stats = pool.stats()
        workers = ", ".join(
            f"{w.pid if w.pid is not None else '-'} {'busy' if w.running else w.state}"
            for w in stats.workers
        )
        restarts = f" · restarts {stats.restarts}" if stats.restarts else ""
        count = len(stats.workers)
        return (
            f"pool: {count} {stats.backend} worker{'s' if count != 1 else ''} [{workers}]"
            f" · queued {stats.queue_depth} · tasks done {stats.completed}{restarts}"
        )

    # ------------------------------------------------------------ output
    def out(self, text: str) -> None:
        """Write ``text`` to stdout as the bytes it stands for: file names that are not
        UTF-8 come back as the same bytes (surrogateescape), as coreutils prints them."""
        sys.stdout.buffer.write(os.fsencode(text))
        sys.stdout.buffer.flush()

    def emit_json(self, value: object) -> None:
        """The ``--json`` result: one JSON document on stdout."""
        self.out(json.dumps(value, indent=2) + "\n")

    # ------------------------------------------------------------ the terminal
    def display(self) -> Display:
        """A progress display for one run of operations."""
        if self.console is None:
            return NullDisplay()
        from ._progress import RichDisplay  # rich is loaded only to draw on a terminal

        return RichDisplay(self.console, self.pool_status)

    def note(self, text: str) -> None:
        """A summary line for the person at the terminal (not shown when stderr is not a
        terminal, or with ``--quiet``)."""
        if self.interactive:
            sys.stderr.write(f"{text}\n")
            sys.stderr.flush()

    def warn(self, text: str) -> None:
        """A warning line on stderr (shown unless ``--quiet``)."""
        if not self.options.quiet:
            sys.stderr.write(f"workerbridge: warning: {text}\n")
            sys.stderr.flush()

    # ------------------------------------------------------------ ending
    def close(self) -> None:
        """End a successful run: close the pool gracefully, remove the temporary area."""
        if self._ended:
            return
        if self._pool is not None:
            self._pool.close()  # a Ctrl-C in here leaves the pool to abort()'s terminate
        self._ended = True
        self.temp.close()

    def abort(self) -> None:
        """End a failed or interrupted run: cancel what runs (waiting for the bridges'
        cleanup), terminate the pool, remove the temporary area. Signals arriving now are
        only recorded (see ``InterruptGuard.shield``)."""
        self.guard.shield()
        if self._ended:
            return
        self._ended = True
        with self._lock:
            active = list(self._active)
            self._active.clear()
        # Best effort at every step: the command is already failing, and the error it
        # reports must not be replaced by one from its cleanup.
        for handle in active:
            try:
                handle.cancel()
            except Exception:
                pass
        if self._pool is not None:
            try:
                # A cancelled task's handle resolves at once, but its worker may still be
                # removing a temporary file (a download's, say): wait for the workers to
                # answer (a task that ignores its cancel is killed after kill_grace
                # anyway), then stop them; whatever still runs at the deadline is killed.
                self._pool.close(_ABORT_WAIT_S)
            except Exception:
                pass
            try:
                self._pool.terminate()
            except Exception:
                pass
        self.temp.close()
