"""Ctrl-C and SIGTERM: stop at once, clean up, exit with 128 + the signal number.

Python's default SIGINT handler raises ``KeyboardInterrupt`` wherever the main thread
happens to be, which can be halfway through starting an operation (a job whose handle was
never returned, so nothing could cancel it). ``InterruptGuard`` installs its own handler
for SIGINT and SIGTERM that raises ``Interrupted`` instead, except inside ``deferred()``
blocks, where the signal is remembered and raised when the block ends. Once the first
signal has been raised, later ones are only recorded: the command is already cleaning up
(cancelling its handles, which waits for the bridges to remove their temporary outputs,
then terminating the pool), and a second Ctrl-C must not cut that short and leave a
half-written file or a worker behind. Cleanup is bounded in time, so this cannot hang.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

__all__ = ["InterruptGuard", "Interrupted"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The user stopped the command (SIGINT or SIGTERM). A ``BaseException`` so that no
    ``except Exception`` on the way up swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports it (130 for Ctrl-C)."""
        return 128 + self.signum


class InterruptGuard:
    """SIGINT and SIGTERM raise ``Interrupted`` in the main thread while the guard is
    entered (a no-op outside the main thread, where handlers cannot be installed)."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._depth = 0
        self._pending: int | None = None
        self._raised = False

    @property
    def pending(self) -> int | None:
        """The first signal received, if any."""
        return self._pending

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self._pending is None:
            self._pending = signum
        if self._depth == 0 and not self._raised:
            self._raised = True
            raise Interrupted(signum)

    def check(self) -> None:
        """Raise ``Interrupted`` if a signal arrived and has not been raised yet."""
        if self._pending is not None and self._depth == 0 and not self._raised:
            self._raised = True
            raise Interrupted(self._pending)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A block that a signal does not cut in two (starting an operation and recording
        its handle); a signal that arrives inside it is raised when it ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        self.check()

    def shield(self) -> None:
        """From now on, signals are only recorded (the command is cleaning up)."""
        self._raised = True
