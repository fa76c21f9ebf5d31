"""The default backend: one operating-system process per worker.

Each worker has two pipes (requests in, replies out), a shared control block, and the
pool-wide "alive" pipe whose EOF tells it the parent is gone. The parent never blocks
writing to a worker: requests are written without blocking and any rest is finished by the
reactor when the pipe drains, so a worker that is busy (or dead) cannot stall the others.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING, Any

import cloudpickle

from .._exceptions import ProtocolError
from .._protocol import FrameEncoder, FromWorker, Ready, ToWorker, from_worker_decoder
from .._transport import (
    PREFIX,
    AttachmentCache,
    BlockCache,
    Segment,
    adopted,
    enlarge_pipe,
    remove_orphans,
    segments_of,
    take_fd,
)
from .._worker import ControlBlock
from .._worker._control import SLOTS
from .._worker._main import EXIT_BOOT_FAILED, WorkerConfig, worker_main
from ._base import BackendOptions, ExitReason, SharedMemoryChannel, WorkerEvents, WorkerExit
from ._reactor import Reactor

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

__all__ = ["ProcessBackend", "ProcessWorker", "default_start_method"]

_READ_SIZE = 1 << 20
#: How long an idle worker polls for its next request before sleeping (see the worker's
#: ``_receive``): about two round trips, so a caller that submits right after each result
#: never has to wake a sleeping worker.
_IDLE_POLL_S = 100e-6
SUPPORTED_START_METHODS = ("forkserver", "spawn")


def default_start_method() -> str:
    """forkserver where the platform has it (fast starts, no inherited state), else spawn."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class ProcessWorker:
    """The parent's side of one worker process."""

    def __init__(
        self,
        backend: ProcessBackend,
        worker_id: int,
        events: WorkerEvents,
    ) -> None:
        self._backend = backend
        self._events = events
        self._worker_id = worker_id
        ctx = backend.context
        # The control block lives in a segment of its own; its name is unlinked as soon as
        # the worker has mapped it (at Ready, or at its exit), so it cannot outlive both.
        self._control_segment = Segment.create(8 * SLOTS, "ctl")
        self._control = ControlBlock(self._control_segment.view)
        req_r, req_w = ctx.Pipe(duplex=False)
        resp_r, resp_w = ctx.Pipe(duplex=False)
        self._process: BaseProcess = ctx.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(
                req_r,
                resp_w,
                backend.alive_reader,
                self._control_segment.name,
                backend.config,
            ),
            name=f"workerbridge-worker-{worker_id}",
            daemon=True,
        )
        try:
            self._process.start()
        except BaseException:
            for conn in (req_r, req_w, resp_r, resp_w):
                conn.close()
            self._control.release()
            self._control_segment.unlink()
            self._control_segment.close()
            raise
        finally:
            req_r.close()
            resp_w.close()
        self._pid: int | None = self._process.pid
        self._in_fd = take_fd(req_w)
        self._out_fd = take_fd(resp_r)
        self._sentinel = self._process.sentinel
        enlarge_pipe(self._in_fd)
        os.set_blocking(self._in_fd, False)
        self._encoder = FrameEncoder(backend.options.max_message_bytes)
        self._decoder = from_worker_decoder(backend.options.max_message_bytes)
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._writer_armed = False
        self._closed = False
        self._kill_requested = False
        self._protocol_error: str | None = None
        self._boot_error = False
        reactor = backend.reactor
        reactor.add_reader(self._out_fd, self._on_readable)
        reactor.add_reader(self._sentinel, self._on_sentinel)

    # -- the Worker protocol -------------------------------------------------------------
    @property
    def worker_id(self) -> int:
        return self._worker_id

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def control(self) -> ControlBlock:
        return self._control

    def send(self, messages: Sequence[ToWorker]) -> None:
        with self._lock:
            if self._closed:
                return
            encode_into = self._encoder.encode_into
            for message in messages:
                encode_into(message, self._pending)
            self._drain_locked()

    def kill(self) -> None:
        with self._lock:
            if self._closed or self._kill_requested:
                return
            self._kill_requested = True
        try:
            os.kill(self._pid or 0, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def heartbeat_age(self, now_ns: int) -> float:
        return (now_ns - self._control.last_beat_ns()) / 1e9

    # -- writing -------------------------------------------------------------------------
    def _drain_locked(self) -> None:
        pending = self._pending
        while pending:
            try:
                written = os.write(self._in_fd, pending)
            except BlockingIOError:
                if not self._writer_armed:
                    self._writer_armed = True
                    self._backend.reactor.add_writer(self._in_fd, self._on_writable)
                return
            except OSError:
                # The worker is gone (EPIPE); its sentinel reports the exit.
                pending.clear()
                break
            del pending[:written]
        if self._writer_armed:
            self._writer_armed = False
            self._backend.reactor.remove_writer(self._in_fd)

    def _on_writable(self, fd: int) -> None:
        with self._lock:
            if not self._closed:
                self._drain_locked()

    # -- reading -------------------------------------------------------------------------
    def _on_readable(self, fd: int) -> None:
        inbox = self._backend.inbox
        try:
            received = os.readv(fd, [inbox])
        except BlockingIOError:
            return
        except OSError:
            received = 0
        if not received:
            self._backend.reactor.remove_reader(fd)
            return
        self._deliver(self._backend.inbox_view[:received])

    def _deliver(self, data: bytes | memoryview) -> None:
        if self._protocol_error is not None:
            return
        try:
            messages: list[FromWorker] = self._decoder.feed(data)
        except ProtocolError as exc:
            self._protocol_error = str(exc)
            self.kill()
            return
        if messages:
            for message in messages:
                if isinstance(message, Ready):
                    self._control_segment.unlink()  # mapped on both sides now
                    if message.error is not None:
                        self._boot_error = True
            self._events.on_messages(self, messages)

    def _on_sentinel(self, fd: int) -> None:
        reactor = self._backend.reactor
        reactor.remove_reader(fd)
        reactor.remove_reader(self._out_fd)
        # Read what the worker wrote before it died, to EOF, so a reply sent just before the
        # crash is delivered exactly once (and before the exit is reported).
        os.set_blocking(self._out_fd, False)
        while True:
            try:
                data = os.read(self._out_fd, _READ_SIZE)
            except OSError:
                break
            if not data:
                break
            self._deliver(data)
        self._process.join(1.0)
        exitcode = self._process.exitcode
        with self._lock:
            self._closed = True
            self._pending.clear()
            if self._writer_armed:
                self._writer_armed = False
                reactor.remove_writer(self._in_fd)
        reason: ExitReason
        if self._protocol_error is not None:
            reason = "protocol"
        elif self._boot_error or exitcode == EXIT_BOOT_FAILED:
            reason = "boot"
        elif self._kill_requested:
            reason = "killed"
        elif exitcode == 0:
            reason = "stopped"
        else:
            reason = "died"
        shm = self._backend.shm
        if shm is not None and self._pid:
            # The worker owned its result blocks; it is gone, so nobody else will unlink them.
            prefix = f"{PREFIX}{self._pid}-"
            shm.attachments.forget(lambda name: name.startswith(prefix))
            for name in segments_of(self._pid):
                if not adopted(name):  # buffers its tasks moved out now belong to the caller
                    Segment.unlink_name(name)
        exit = WorkerExit(self._pid, exitcode, reason, detail=self._protocol_error or "")
        try:
            self._events.on_exit(self, exit)
        finally:
            os.close(self._in_fd)
            os.close(self._out_fd)
            self._process.close()
            self._control.release()
            self._control_segment.unlink()
            self._control_segment.close()
            del self._process


class ProcessBackend:
    """Workers are processes started with ``forkserver`` (default on Linux) or ``spawn``.

    ``fork`` is refused: the pool runs threads, and forking a threaded process can deadlock
    the child (Python 3.12 warns about it); forked workers would also inherit every other
    worker's pipes and miss the parent's death.
    """

    name = "process"

    def __init__(self, options: BackendOptions, start_method: str | None = None) -> None:
        method = start_method or default_start_method()
        if method not in SUPPORTED_START_METHODS:
            raise ValueError(
                f"start_method={method!r} is not supported; use one of {SUPPORTED_START_METHODS}"
            )
        self.start_method = method
        self.options = options
        self.context: BaseContext = multiprocessing.get_context(method)
        if method == "forkserver":
            # Preloading our worker module makes each fork start with it imported.
            self.context.set_forkserver_preload(["__main__", "workerbridge._worker._main"])
        initializer = b""
        if options.initializer is not None:
            initializer = cloudpickle.dumps((options.initializer, options.initargs))
        self.config = WorkerConfig(
            debug=options.debug,
            heartbeat_interval=options.heartbeat_interval,
            max_message_bytes=options.max_message_bytes,
            initializer=initializer,
            spin_s=_IDLE_POLL_S,
            shm_threshold=options.shm_threshold,
        )
        self.shm: SharedMemoryChannel | None = None
        if options.shm_threshold:
            remove_orphans()  # segments of pools and workers that were SIGKILLed earlier
            self.shm = SharedMemoryChannel(
                options.shm_threshold, BlockCache("a"), AttachmentCache()
            )
        self.alive_reader, self._alive_writer = self.context.Pipe(duplex=False)
        # The receive buffer of the I/O thread, shared by all workers (only that thread
        # reads): os.read would allocate a buffer of the full read size on every call.
        self.inbox = bytearray(_READ_SIZE)
        self.inbox_view = memoryview(self.inbox)
        self.reactor = Reactor()

    def run_until(self, future: Future[Any], timeout: float | None) -> bool:
        """Let the calling thread run the I/O loop until ``future`` is done (see
        ``Reactor.run_until``): the reply then wakes the waiting thread directly."""
        return self.reactor.run_until(future, timeout)

    def start_worker(self, worker_id: int, events: WorkerEvents) -> ProcessWorker:
        return ProcessWorker(self, worker_id, events)

    def close(self) -> None:
        self._alive_writer.close()
        self.reactor.close()
        self.alive_reader.close()
        if self.shm is not None:
            self.shm.attachments.close()
            self.shm.blocks.close()
