"""The main loop of a worker process.

```
start -> ignore SIGINT -> run initializer -> send Ready(pid) -> start heartbeat thread
      -> loop: read frames -> Request: run, send Response | Cancel: skip it | Shutdown: exit 0
```

The worker exits on its own when the parent goes away: its heartbeat thread waits on a pipe
whose only writer is the parent, and EOF there means the parent is dead (checked at once, not
polled). The loop also ends on EOF of the request pipe. It never sees SIGINT: Ctrl-C is the
parent's business, which then decides what happens to running tasks.
"""

from __future__ import annotations

import faulthandler
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._exceptions import ProtocolError
from .._protocol import (
    Cancel,
    FrameEncoder,
    Progress,
    Ready,
    Request,
    Response,
    Shutdown,
    to_worker_decoder,
)
from .._transport import AttachmentCache, BlockCache, Segment, take_fd, write_all
from ._control import ControlBlock
from ._runtime import TaskRunner, error_info

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["EXIT_BOOT_FAILED", "EXIT_PROTOCOL", "WorkerConfig", "worker_main"]

#: Exit status of a worker whose initializer failed (after it sent Ready with the error).
EXIT_BOOT_FAILED = 3
#: Exit status of a worker that received a malformed frame from the parent.
EXIT_PROTOCOL = 4
_READ_SIZE = 1 << 20


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker process needs to know besides its pipes."""

    debug: bool
    heartbeat_interval: float
    max_message_bytes: int
    initializer: bytes = b""  # pickled (callable, args), empty for none
    spin_s: float = 0.0  # how long an idle worker polls for the next request (see _receive)
    shm_threshold: int = 0  # results with buffers this large go through shared memory


_cleanups: list[Callable[[], None]] = []


def _exit(code: int) -> None:
    # os._exit skips interpreter teardown (fast, and no atexit handler of the task's
    # libraries can hang the worker), so flush what tasks printed first, and remove the
    # shared memory this worker owns.
    for cleanup in _cleanups:
        try:
            cleanup()
        except Exception:
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _heartbeat(control: ControlBlock, alive_fd: int, interval: float) -> None:
    # Runs on its own thread so the beat continues while a task computes; it stops only
    # when the whole process is stuck (SIGSTOP, a C call holding the GIL), which is exactly
    # what the pool must detect.
    while True:
        control.beat()
        readable, _, _ = select.select([alive_fd], [], [], interval)
        if readable:  # EOF: the parent died without shutting us down
            _exit(0)


def _receive(fd: int, inbox: bytearray, spin_s: float) -> int:
    """Read the next bytes from the non-blocking ``fd``, polling for ``spin_s`` seconds
    before sleeping in ``select``.

    Why poll: a request that arrives while the worker sleeps must wake it, and that wake-up
    (through the scheduler, often onto the parent's own core) costs more than a no-op task.
    A caller that waits for one result and submits the next, or a stream of tiny tasks,
    lands within the polling window and is picked up at once. ``sched_yield`` keeps the poll
    from starving the parent's threads on a busy machine.
    """
    try:
        return os.readv(fd, [inbox])
    except BlockingIOError:
        pass
    if spin_s > 0:
        deadline = time.perf_counter() + spin_s
        while time.perf_counter() < deadline:
            os.sched_yield()
            try:
                return os.readv(fd, [inbox])
            except BlockingIOError:
                continue
    while True:
        select.select([fd], [], [])
        try:
            return os.readv(fd, [inbox])
        except BlockingIOError:  # woken spuriously
            continue


def _keep_freed_memory() -> None:
    """Let glibc serve large allocations from the heap and keep what is freed.

    By default every allocation above 32 MiB is a fresh ``mmap``, so a task that receives a
    64 MiB ``bytes`` argument pays for faulting in (and zeroing) every page of it on every
    call, which costs more than copying the data. A worker handles a stream of similar
    tasks, so it keeps freed memory for the next one instead; ``max_memory_per_worker``
    bounds what a worker may keep.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 1 << 30)
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):  # not glibc: keep the allocator's defaults
        pass


def _run_initializer(config: WorkerConfig) -> None:
    if config.initializer:
        import pickle

        fn, args = pickle.loads(config.initializer)
        fn(*args)


def worker_main(
    requests: Connection,
    responses: Connection,
    alive: Connection,
    control_name: str,
    config: WorkerConfig,
) -> None:
    """Entry point of a worker process (the target of ``multiprocessing.Process``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()
    _keep_freed_memory()
    in_fd = take_fd(requests)
    out_fd = take_fd(responses)
    alive_fd = take_fd(alive)
    control = ControlBlock(Segment.attach(control_name).view)
    encoder = FrameEncoder(config.max_message_bytes)
    pid = os.getpid()

    def send_progress(progress: Progress) -> None:
        write_all(out_fd, encoder.encode(progress))

    try:
        _run_initializer(config)
    except BaseException as exc:
        write_all(out_fd, encoder.encode(Ready(pid, error_info("raised", exc, True))))
        _exit(EXIT_BOOT_FAILED)

    control.beat()
    threading.Thread(
        target=_heartbeat,
        args=(control, alive_fd, config.heartbeat_interval),
        name="workerbridge-heartbeat",
        daemon=True,
    ).start()
    results = BlockCache("r") if config.shm_threshold else None
    if results is not None:
        _cleanups.append(results.close)  # unlink our result blocks on any way out
    runner = TaskRunner(
        control,
        send_progress,
        debug=config.debug,
        shm_threshold=config.shm_threshold,
        attachments=AttachmentCache() if config.shm_threshold else None,
        results=results,
    )
    write_all(out_fd, encoder.encode(Ready(pid)))
    decoder = to_worker_decoder(config.max_message_bytes)
    out = bytearray()
    # One receive buffer for the worker's life: os.read would allocate (and free) a buffer
    # of the full read size on every call, which costs more than the round trip itself.
    inbox = bytearray(_READ_SIZE)
    inbox_view = memoryview(inbox)
    os.set_blocking(in_fd, False)
    spin_s = config.spin_s
    while True:
        try:
            received = _receive(in_fd, inbox, spin_s)
        except OSError:
            break
        if not received:
            break
        try:
            messages = decoder.feed(inbox_view[:received])
        except ProtocolError as exc:
            sys.stderr.write(f"workerbridge worker {pid}: {exc}\n")
            _exit(EXIT_PROTOCOL)
        for message in messages:
            if type(message) is Request:
                response = runner.run(message)
                try:
                    encoder.encode_into(response, out)
                except (ProtocolError, TypeError, ValueError) as exc:
                    encoder.encode_into(
                        Response(
                            message.id,
                            message.attempt,
                            False,
                            error=error_info("serialization", exc, config.debug),
                        ),
                        out,
                    )
                # Answer each task as soon as it is done: a later request in the same batch
                # may run for a long time, and the parent batches its reads anyway.
                write_all(out_fd, out)
                out.clear()
            elif type(message) is Cancel:
                runner.skip(message.id, message.attempt)
            elif type(message) is Shutdown:
                _exit(0)
    _exit(0)
