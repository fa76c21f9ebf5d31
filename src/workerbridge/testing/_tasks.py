"""Importable task functions for tests, benchmarks and the demo.

They live in the package (not in test files) so that every worker, under any start method,
can import them by reference.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import signal
import time
from typing import Any

from .._worker import current_task

__all__ = [
    "add",
    "crash",
    "echo",
    "fail",
    "getpid",
    "hash_chunks",
    "ignore_cancel_sleep",
    "noop",
    "progress_steps",
    "raise_if_cancelled_loop",
    "record_and_return",
    "sleep",
    "square",
]


def noop() -> None:
    return None


def echo(value: Any) -> Any:
    return value


def add(a: int, b: int) -> int:
    return a + b


def square(x: int) -> int:
    return x * x


def getpid() -> int:
    return os.getpid()


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def fail(message: str = "boom") -> None:
    raise ValueError(message)


def crash(how: str = "kill") -> None:
    """Die the way ``how`` says: ``kill`` (SIGKILL), ``segv``, ``exit`` (os._exit(0)),
    ``sysexit`` (SystemExit)."""
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "segv":
        import faulthandler

        faulthandler._sigsegv()  # type: ignore[attr-defined]
    elif how == "exit":
        os._exit(0)
    elif how == "sysexit":
        raise SystemExit(3)
    time.sleep(60)


def progress_steps(steps: int) -> int:
    """Report ``steps`` progress updates; each report is sent (they complete the work
    step by step only at the end, so throttling keeps the last)."""
    ctx = current_task()
    for i in range(1, steps + 1):
        ctx.report(i, steps)
        time.sleep(0.012)  # above the throttle interval, so every report is sent
    return steps


def raise_if_cancelled_loop(marker: str) -> str:
    """Signal start by creating ``marker``, then spin until cancelled."""
    ctx = current_task()
    with open(marker, "w"):
        pass
    while True:
        ctx.raise_if_cancelled()
        time.sleep(0.001)


def ignore_cancel_sleep(marker: str, seconds: float) -> float:
    """Create ``marker`` then sleep, ignoring cancellation."""
    with open(marker, "w"):
        pass
    time.sleep(seconds)
    return seconds


def record_and_return(path: str, value: Any) -> Any:
    """Append ``value`` to the file at ``path`` (a side-effect ledger), then return it."""
    with open(path, "a") as f:
        f.write(f"{value}\n")
    return value


def hash_chunks(total_bytes: int, chunk_bytes: int) -> str:
    """sha256 over ``total_bytes`` made in ``chunk_bytes`` pieces inside the worker."""
    block = os.urandom(chunk_bytes)
    digest = hashlib.sha256()
    for _ in range(total_bytes // chunk_bytes):
        digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------
# Helpers for the integration suite (tests/integration). Tests synchronise with running
# tasks through marker files: a task creates a "started" file, or waits for a "release"
# file that the test creates, so no test ever sleeps to wait for a worker.

__all__ += [
    "block",
    "crash_once",
    "fail_initializer",
    "fail_once",
    "gated_record",
    "get_worker_value",
    "ignore_cancel_until_file",
    "interrupt_self",
    "report_and_wait",
    "return_unpicklable",
    "set_worker_value",
    "slow_initializer",
    "stop_self",
    "task_id",
    "touch",
    "wait_cancelled",
    "wait_for_file",
    "worker_identity",
]

#: How often the file-waiting helpers look for their file: short, so a released task
#: reacts at once, long enough not to keep a core busy.
_POLL_S = 0.002

_worker_value: Any = None


def touch(path: str) -> None:
    """Create the (empty) file at ``path``."""
    with open(path, "a"):
        pass


def _cancel_requested() -> bool:
    try:
        return current_task().cancelled
    except RuntimeError:  # called outside a task (the test waiting on a marker)
        return False


def wait_for_file(path: str, timeout: float = 30.0) -> bool:
    """Wait until the file at ``path`` exists; True then.

    Inside a task it stops with ``TaskCancelledError`` as soon as the task is cancelled.

    Raises:
        TimeoutError: the file did not appear within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        # Look for the file *before* reading the cancel flag: a test that cancels the task
        # and then creates the file must find the task stopped, not released.
        exists = os.path.exists(path)
        if _cancel_requested():
            current_task().raise_if_cancelled()
        if exists:
            return True
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(_POLL_S)


def block(release: str, started: str = "", timeout: float = 30.0) -> str:
    """Create ``started`` (if given), then wait for ``release``; return ``"released"``.
    Stops early, with ``TaskCancelledError``, when cancelled."""
    if started:
        touch(started)
    wait_for_file(release, timeout)
    return "released"


def ignore_cancel_until_file(started: str, release: str, timeout: float = 30.0) -> str:
    """Create ``started``, then wait for ``release`` paying no attention to cancellation
    (a task that must be killed, or abandoned on threads)."""
    touch(started)
    deadline = time.monotonic() + timeout
    while not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(_POLL_S)
    return "ignored"


def wait_cancelled(started: str, ledger: str, timeout: float = 30.0) -> str:
    """Create ``started``, wait until ``current_task().cancelled`` turns true, write
    ``"saw-cancel"`` to ``ledger`` and return normally."""
    ctx = current_task()
    touch(started)
    deadline = time.monotonic() + timeout
    while not ctx.cancelled:
        if time.monotonic() > deadline:
            raise TimeoutError("the task was never cancelled")
        time.sleep(_POLL_S)
    record_and_return(ledger, "saw-cancel")
    return "stopped"


def report_and_wait(current: float, total: float, release: str, timeout: float = 30.0) -> str:
    """Report ``current`` of ``total``, then wait for ``release``."""
    current_task().report(current, total)
    wait_for_file(release, timeout)
    return "done"


def gated_record(item: tuple[Any, str, str]) -> Any:
    """For ``map``: ``item`` is ``(value, gate, ledger)``. Wait for the file ``gate`` (if
    not empty), append ``value`` to ``ledger`` (if not empty) and return ``value``."""
    value, gate, ledger = item
    if gate:
        wait_for_file(gate)
    if ledger:
        record_and_return(ledger, value)
    return value


def worker_identity() -> str:
    """``"pid:thread-ident"`` of the worker running the task."""
    import threading

    return f"{os.getpid()}:{threading.get_ident()}"


def task_id() -> int:
    """The id the running task sees through ``current_task()``."""
    return current_task().id


def set_worker_value(value: Any) -> None:
    """An initializer: remember ``value`` in the worker."""
    global _worker_value
    _worker_value = value


def get_worker_value() -> Any:
    """What ``set_worker_value`` stored in this worker."""
    return _worker_value


def fail_initializer(message: str = "initializer failed") -> None:
    """An initializer that raises ``ValueError(message)``."""
    raise ValueError(message)


def slow_initializer(seconds: float) -> None:
    """An initializer that takes ``seconds`` (longer than a test's ``ready_timeout``)."""
    time.sleep(seconds)


def crash_once(marker: str, how: str = "kill") -> int:
    """Crash (see ``crash``) the first time, when ``marker`` does not exist yet; afterwards
    return the worker's pid."""
    if not os.path.exists(marker):
        touch(marker)
        crash(how)
    return os.getpid()


def fail_once(marker: str, message: str = "first attempt fails") -> str:
    """Raise ``ValueError`` the first time (``marker`` absent), return ``"ok"`` after."""
    if not os.path.exists(marker):
        touch(marker)
        raise ValueError(message)
    return "ok"


def interrupt_self() -> bool:
    """Send SIGINT to the worker's own process; True if it is ignored there (and survived)."""
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(1000):  # give a pending Python-level handler its chance to run
        pass
    return signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def stop_self() -> None:
    """SIGSTOP the worker's own process: its heartbeat stops with it."""
    os.kill(os.getpid(), signal.SIGSTOP)


def return_unpicklable() -> Any:
    """Return an object that cannot be pickled (a lock)."""
    import threading

    return threading.Lock()


def multiply(a: int, b: int) -> int:
    return a * b


def fill_shared(buffer: Any, value: int) -> Any:
    """Write ``value`` into every byte of a transferred SharedBuffer and move it back."""
    from .._transport import transfer

    buffer.view[:] = bytes([value]) * len(buffer.view)
    return transfer(buffer)


def sum_shared(buffer: Any) -> int:
    """Sum the bytes of a transferred SharedBuffer (without returning it)."""
    return sum(buffer.view[:1024])


def raise_error(qualified_name: str, message: str) -> None:
    """Raise the exception class ``qualified_name`` (``"module.Class"``) with ``message``:
    how a test checks which errors cross from a worker as themselves."""
    module, _, name = qualified_name.rpartition(".")
    raise getattr(importlib.import_module(module), name)(message)
