"""The process backend's I/O thread: one epoll loop over every worker's pipes and sentinels.

Waiting on result pipes and process sentinels together (as loky does) means a death is seen
the moment the kernel reports it, never by polling. Before a death is reported, whatever the
worker wrote before dying is read to EOF and delivered, so a result sent just before a crash
arrives exactly once.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable

__all__ = ["Reactor"]

Handler = Callable[[int], None]
logger = logging.getLogger("workerbridge")


class Reactor:
    """Calls a handler when a registered descriptor becomes readable or writable.

    ``add_reader``/``add_writer``/``remove`` may be called from any thread. Handlers run on
    the reactor thread; an exception in one is reported and does not stop the loop.
    """

    def __init__(self, name: str = "workerbridge-reactor") -> None:
        self._epoll = select.epoll()
        self._handlers: dict[tuple[int, int], Handler] = {}
        self._masks: dict[int, int] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _update(self, fd: int, kind: int, handler: Handler | None) -> None:
        with self._lock:
            if handler is None:
                self._handlers.pop((fd, kind), None)
            else:
                self._handlers[(fd, kind)] = handler
            old = self._masks.get(fd, 0)
            new = (old | kind) if handler is not None else (old & ~kind)
            if new == old:
                return
            try:
                if old == 0:
                    self._epoll.register(fd, new)
                elif new == 0:
                    self._epoll.unregister(fd)
                else:
                    self._epoll.modify(fd, new)
            except (OSError, ValueError):
                # The descriptor was closed under us (the worker is going away); its exit is
                # reported through its sentinel.
                pass
            if new:
                self._masks[fd] = new
            else:
                self._masks.pop(fd, None)

    def add_reader(self, fd: int, handler: Handler) -> None:
        self._update(fd, select.EPOLLIN, handler)

    def add_writer(self, fd: int, handler: Handler) -> None:
        self._update(fd, select.EPOLLOUT, handler)

    def remove_reader(self, fd: int) -> None:
        self._update(fd, select.EPOLLIN, None)

    def remove_writer(self, fd: int) -> None:
        self._update(fd, select.EPOLLOUT, None)

    def call_soon(self) -> None:
        """Wake the loop (used to stop it)."""
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _run(self) -> None:
        handlers = self._handlers
        poll = self._epoll.poll
        while not self._stopping:
            try:
                events = poll()
            except InterruptedError:
                continue
            for fd, mask in events:
                if fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except OSError:
                        pass
                    continue
                # Hang-ups and errors are delivered to the reader, which sees EOF.
                if mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                    handler = handlers.get((fd, select.EPOLLIN))
                    if handler is not None:
                        self._call(handler, fd)
                if mask & (select.EPOLLOUT | select.EPOLLERR):
                    handler = handlers.get((fd, select.EPOLLOUT))
                    if handler is not None:
                        self._call(handler, fd)

    @staticmethod
    def _call(handler: Handler, fd: int) -> None:
        try:
            handler(fd)
        except Exception:  # pragma: no cover - a bug; keep serving the other workers
            logger.exception("workerbridge: error in the I/O thread")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop and release its descriptors."""
        self._stopping = True
        self.call_soon()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
