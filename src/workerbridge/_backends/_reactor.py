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
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

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
        self._wake_r, self._wake_r_peer = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_r_peer, False)  # a full wake pipe already wakes the loop
        self._leader = threading.RLock()
        self._followers = threading.Condition()
        self._waiting_callers = 0
        self._leader_thread: int | None = None
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

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
        """Wake the loop (used to stop it, and to hand the loop to a waiting caller)."""
        try:
            os.write(self._wake_r_peer, b"x")
        except OSError:
            pass

    # Leader/follower: whoever holds ``_leader`` polls and dispatches. Normally that is the
    # reactor thread; a caller blocked on one result may take the role (``run_until``) so
    # the reply wakes the waiting thread directly, saving one thread-to-thread hand-off on
    # every round trip. Handing over happens while the worker computes, off the critical
    # path. ``_leader`` is re-entrant because a callback run by the leader may itself wait
    # for a result.
    def run_until(self, future: Future[Any], timeout: float | None) -> bool:
        """Poll and dispatch on this thread until ``future`` is done or ``timeout``
        passes; returns whether it is done. Other threads' events are dispatched too, as
        the reactor thread would.

        A future resolved by anything but a pipe event (a cancel, a timeout, shutdown)
        wakes the loop through its done callback.
        """
        done = future.done
        if self._stopping or done():
            return done()
        future.add_done_callback(self._wake_unless_leader)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._followers:
            self._waiting_callers += 1
        try:
            self.call_soon()
            if not self._leader.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
                return done()
            self._leader_thread = threading.get_ident()
            try:
                while not done() and not self._stopping:
                    if deadline is None:
                        wait = -1.0
                    else:
                        wait = deadline - time.monotonic()
                        if wait <= 0:
                            break
                    self._poll_once(wait)
            finally:
                self._leader_thread = None
                self._leader.release()
        finally:
            with self._followers:
                self._waiting_callers -= 1
                if not self._waiting_callers:
                    self._followers.notify_all()
        return done()

    def _wake_unless_leader(self, _future: object) -> None:
        if self._leader_thread != threading.get_ident():
            self.call_soon()

    def _run(self) -> None:
        while not self._stopping:
            with self._followers:
                while self._waiting_callers and not self._stopping:
                    self._followers.wait()
            with self._leader:
                if self._waiting_callers:
                    continue  # a caller asked for the loop; let it have it
                self._poll_once(-1.0)

    def _poll_once(self, timeout: float) -> None:
        try:
            events = self._epoll.poll(timeout)
        except InterruptedError:
            return
        except (OSError, ValueError):
            if self._stopping:  # the epoll object was closed under a leaving caller
                return
            raise
        handlers = self._handlers
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
        with self._followers:
            self._followers.notify_all()
        self.call_soon()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_r_peer)
