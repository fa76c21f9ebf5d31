"""Misbehaving objects and task functions for the fault-injection suite (``tests/faults``).

They live in the package, not in the test files, so that a worker started by ``spawn`` or
``forkserver`` can import them by reference (and unpickle the objects below) like any other
task function.

Three families:

- ``misbehave(how)`` fails the way ``how`` says; ``ExplodesOnPickle`` and
  ``ExplodesOnUnpickle`` call it while being pickled or unpickled, which is how the crash
  matrix puts a failure at each stage of a task's trip (the parent's encoding of the request,
  the worker's decoding of it, the run, the worker's encoding of the result, the parent's
  decoding of it).
- Tasks that leave evidence behind: a *stamp* file (written atomically) holding the
  ``time.monotonic()`` of an instant inside the worker (the clock is system-wide on Linux,
  so the parent can subtract it from its own readings), and *ledgers* that count runs.
- Tasks that are hard to stop: they ignore their cancel flag, ignore SIGTERM, sit in C code
  holding the GIL, or block in ``read()``.
"""

from __future__ import annotations

import ctypes
import faulthandler
import hashlib
import os
import signal
import sys
import threading
import time
from typing import Any

from .._worker import current_task

__all__ = [
    "HOWS",
    "ExplodesOnPickle",
    "ExplodesOnUnpickle",
    "FaultError",
    "accept",
    "burn_hashlib",
    "burn_python",
    "chaos_task",
    "count_and_sleep",
    "count_run",
    "crash_stamped",
    "gate_then_record",
    "hold_bytes",
    "hold_gil",
    "hold_gil_once",
    "ignore_sigterm_and_sleep",
    "leak_memory",
    "misbehave",
    "misbehave_counted",
    "notice_cancel",
    "progress_until_cancelled",
    "read_forever",
    "read_stamp",
    "record_unless_cancelled",
    "release_gil_c_sleep",
    "reply_then_die",
    "report_across_attempts",
    "report_burst",
    "return_explodes_on_pickle",
    "return_explodes_on_unpickle",
    "run_and_misbehave",
    "sleep_stamped",
    "spin",
    "stamp",
    "stamp_and_sleep",
    "stuck_first_attempt",
    "worker_pid",
]

#: The ways ``misbehave`` can fail, in the crash matrix's order: an exception, ``sys.exit``,
#: a "clean-looking" ``os._exit(0)`` and a segmentation fault.
HOWS = ("raise", "sysexit", "exit0", "segv")

_POLL_S = 0.002


class FaultError(Exception):
    """The exception ``misbehave("raise")`` raises."""


def misbehave(how: str) -> None:
    """Fail as ``how`` says: ``raise`` (``FaultError``), ``sysexit`` (``SystemExit(7)``),
    ``exit0`` (``os._exit(0)``), ``segv`` (SIGSEGV), ``abort`` (SIGABRT from ``os.abort``),
    ``null`` (SIGSEGV from reading address 0 through ctypes), ``kill`` (SIGKILL to itself)."""
    if how == "raise":
        raise FaultError(f"injected fault ({how})")
    if how == "sysexit":
        sys.exit(7)
    _flush()
    if how == "exit0":
        os._exit(0)
    if how == "segv":
        faulthandler._sigsegv()  # type: ignore[attr-defined]
    elif how == "abort":
        os.abort()
    elif how == "null":
        ctypes.string_at(0)
    elif how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise ValueError(f"unknown way to misbehave: {how!r}")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


class ExplodesOnPickle:
    """An object whose pickling runs ``misbehave(how)``."""

    def __init__(self, how: str) -> None:
        self.how = how

    def __reduce__(self) -> tuple[Any, ...]:
        misbehave(self.how)
        raise AssertionError("misbehave() returned")  # pragma: no cover


class ExplodesOnUnpickle:
    """An object that pickles fine; unpickling it runs ``misbehave(how)`` (the reduce
    callable is ``misbehave`` itself)."""

    def __init__(self, how: str) -> None:
        self.how = how

    def __reduce__(self) -> tuple[Any, ...]:
        return (misbehave, (self.how,))


def accept(value: object) -> str:
    """A task for the request stages: it is never reached when ``value`` cannot be
    unpickled."""
    return "accepted"


def run_and_misbehave(how: str) -> None:
    """The task itself fails."""
    misbehave(how)


def return_explodes_on_pickle(how: str) -> ExplodesOnPickle:
    """A result the worker cannot encode."""
    return ExplodesOnPickle(how)


def return_explodes_on_unpickle(how: str) -> ExplodesOnUnpickle:
    """A result the parent cannot decode."""
    return ExplodesOnUnpickle(how)


def worker_pid() -> int:
    return os.getpid()


# -------------------------------------------------------------------------------- stamps
def stamp(path: str, value: float | None = None) -> float:
    """Write ``value`` (default: ``time.monotonic()``) to ``path`` atomically; return it."""
    if value is None:
        value = time.monotonic()
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(repr(value))
    os.replace(tmp, path)
    return value


def read_stamp(path: str) -> float:
    with open(path) as f:
        return float(f.read())


def _append(path: str, line: str) -> None:
    # One small write with O_APPEND: concurrent writers never interleave within a line.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def count_run(ledger: str) -> int:
    """Append one line (``pid attempt``) to ``ledger``; return the pid."""
    attempt = current_task().attempt
    _append(ledger, f"{os.getpid()} {attempt}\n")
    return os.getpid()


def crash_stamped(path: str, how: str) -> None:
    """Stamp ``path`` with the instant just before the crash, then ``misbehave(how)``."""
    stamp(path)
    misbehave(how)


def misbehave_counted(ledger: str, how: str) -> None:
    """Count the run in ``ledger``, then ``misbehave(how)`` (a poison task)."""
    count_run(ledger)
    misbehave(how)


def count_and_sleep(ledger: str, seconds: float) -> float:
    """Count the run in ``ledger``, then sleep ``seconds`` ignoring the cancel flag."""
    count_run(ledger)
    time.sleep(seconds)
    return seconds


def stuck_first_attempt(release: str, started: str) -> int:
    """Attempt 1 ignores its cancel flag until the file ``release`` exists; a later attempt
    stamps ``started`` and returns its pid at once."""
    ctx = current_task()
    if ctx.attempt == 1:
        while not os.path.exists(release):
            time.sleep(_POLL_S)
        return -1
    stamp(started)
    return os.getpid()


def report_across_attempts(timeout: float = 30.0) -> str:
    """Attempt 1 reports 1, waits for its cancel flag (a timeout), then reports 11, 12 and 13
    and returns ``"attempt-1"``: all of that after the pool gave up on it. Later attempts
    report ``10 * attempt + 1`` and return ``"attempt-<n>"``."""
    ctx = current_task()
    if ctx.attempt > 1:
        ctx.report(10 * ctx.attempt + 1, 100)
        return f"attempt-{ctx.attempt}"
    ctx.report(1, 100)
    deadline = time.monotonic() + timeout
    while not ctx.cancelled:
        if time.monotonic() > deadline:
            raise TimeoutError("never cancelled")
        time.sleep(_POLL_S)
    for value in (11, 12, 13):
        ctx.report(value, 100)
        time.sleep(0.011)  # above the progress throttle: each report is sent
    return "attempt-1"


# -------------------------------------------------------------------------------- timeouts
def sleep_stamped(started: str, seconds: float) -> float:
    """Stamp ``started``, then sleep ``seconds`` paying no attention to the cancel flag."""
    stamp(started)
    time.sleep(seconds)
    return seconds


def notice_cancel(started: str, noticed: str, timeout: float = 30.0) -> str:
    """Stamp ``started``, poll the cancel flag, stamp ``noticed`` when it turns true and
    return normally (a cooperative task)."""
    ctx = current_task()
    stamp(started)
    deadline = time.monotonic() + timeout
    while not ctx.cancelled:
        if time.monotonic() > deadline:
            raise TimeoutError("never cancelled")
        time.sleep(_POLL_S / 2)
    stamp(noticed)
    return "stopped"


def ignore_sigterm_and_sleep(started: str, seconds: float) -> float:
    """Ignore SIGTERM and the cancel flag; stamp ``started``; sleep."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stamp(started)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return seconds


def hold_bytes(data: Any, seconds: float) -> int:
    """Keep the argument ``data`` (large: it travels through shared memory) for
    ``seconds``; return its length."""
    time.sleep(seconds)
    return len(data)


def hold_gil(started: str, seconds: int) -> int:
    """Stamp ``started``, then call libc ``sleep`` through ``ctypes.PyDLL``, which keeps the
    GIL for the whole call: no other thread of the worker (its heartbeat) runs, and no
    Python signal handler either."""
    stamp(started)
    return int(ctypes.PyDLL(None).sleep(int(seconds)))


def release_gil_c_sleep(started: str, seconds: int) -> int:
    """The same C call through ``ctypes.CDLL``, which releases the GIL (the heartbeat
    thread goes on)."""
    stamp(started)
    return int(ctypes.CDLL(None).sleep(int(seconds)))


def hold_gil_once(marker: str, started: str, seconds: int) -> int:
    """Hold the GIL in C (``hold_gil``) the first time (``marker`` absent); afterwards
    return the worker's pid."""
    if not os.path.exists(marker):
        with open(marker, "w"):
            pass
        hold_gil(started, seconds)
    return os.getpid()


def read_forever(started: str) -> bytes:
    """Stamp ``started`` and block in ``read()`` on a pipe nobody writes to."""
    r, w = os.pipe()
    stamp(started)
    try:
        return os.read(r, 1)
    finally:
        os.close(r)
        os.close(w)


# -------------------------------------------------------------------------------- cancel
def spin(seconds: float, value: Any = None) -> Any:
    """Busy-wait ``seconds`` (no sleep, no flag check); return ``value``."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass
    return value


def progress_until_cancelled(started: str, noticed: str, timeout: float = 30.0) -> str:
    """Stamp ``started``, then report progress (step numbers) until the cancel flag turns
    true; stamp ``noticed`` and report a few more steps before returning (they must all be
    dropped by the pool)."""
    ctx = current_task()
    stamp(started)
    deadline = time.monotonic() + timeout
    step = 0
    while not ctx.cancelled:
        if time.monotonic() > deadline:
            raise TimeoutError("never cancelled")
        step += 1
        ctx.report(step, 1_000_000)
        time.sleep(0.011)  # above the progress throttle, so each report is sent
    stamp(noticed)
    for _ in range(3):
        step += 1
        ctx.report(step, 1_000_000)
        time.sleep(0.011)
    return "stopped"


def report_burst(burst: str, sent: str, count: int, timeout: float = 30.0) -> str:
    """Report 1; when the file ``burst`` exists, report 2 .. ``count`` + 1 back to back
    (``current == total``: never held back by the throttle) and create ``sent``; then wait
    for the cancel flag and return."""
    ctx = current_task()
    ctx.report(1, 1)
    deadline = time.monotonic() + timeout
    while not os.path.exists(burst):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{burst} never appeared")
        time.sleep(_POLL_S)
    for value in range(2, count + 2):
        ctx.report(value, value)
    with open(sent, "w"):
        pass
    while not ctx.cancelled:
        if time.monotonic() > deadline:
            raise TimeoutError("never cancelled")
        time.sleep(_POLL_S)
    return "stopped"


def gate_then_record(item: tuple[Any, str, str, str]) -> Any:
    """For ``map``: ``item`` is ``(value, gate, ledger, started)``. Create the file
    ``started`` (if not empty), wait for the file ``gate`` (if not empty) paying no
    attention to the cancel flag, then append ``value`` to ``ledger`` (if not empty) unless
    the task was cancelled; return ``value``."""
    value, gate, ledger, started = item
    if started:
        with open(started, "w"):
            pass
    if gate:
        while not os.path.exists(gate):
            time.sleep(_POLL_S)
    if ledger and not current_task().cancelled:
        _append(ledger, f"{value}\n")
    return value


def record_unless_cancelled(item: tuple[Any, str, str]) -> Any:
    """For ``map``: ``item`` is ``(value, gate, ledger)``. Append ``value`` to ``ledger``
    (if not empty); then wait for the file ``gate`` (if not empty) until the task is
    cancelled, and raise ``TaskCancelledError`` then. Returns ``value``."""
    value, gate, ledger = item
    if ledger:
        _append(ledger, f"{value}\n")
    if gate:
        ctx = current_task()
        while not os.path.exists(gate):
            ctx.raise_if_cancelled()
            time.sleep(_POLL_S)
    return value


# -------------------------------------------------------------------------------- health
def burn_python(seconds: float) -> int:
    """A pure-Python CPU loop for ``seconds`` (holds the GIL between switch intervals)."""
    deadline = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < deadline:
        for i in range(1000):
            n += i * i
    return n


def burn_hashlib(seconds: float) -> str:
    """sha256 over 1 MiB blocks for ``seconds`` (hashlib releases the GIL)."""
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        digest.update(block)
    return digest.hexdigest()


# -------------------------------------------------------------------------------- recycling
_leaked: list[bytes] = []


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def leak_memory(megabytes: float, seconds: float = 0.0) -> tuple[int, int]:
    """Keep ``megabytes`` of touched memory alive for the worker's life, then burn
    ``seconds`` of CPU; return ``(pid, rss)`` measured right after the leak."""
    _leaked.append(b"\xa5" * int(megabytes * (1 << 20)))
    rss = _rss()
    spin(seconds)
    return os.getpid(), rss


# -------------------------------------------------------------------------------- chaos
def chaos_task(ledger_dir: str, index: int, seconds: float, payload: bytes = b"") -> int:
    """Log ``S id attempt`` to ``ledger_dir/<pid>``, burn ``seconds`` of CPU, log
    ``E id attempt`` and return ``index + len(payload)``."""
    ctx = current_task()
    ledger = os.path.join(ledger_dir, str(os.getpid()))
    _append(ledger, f"S {ctx.id} {ctx.attempt}\n")
    spin(seconds)
    _append(ledger, f"E {ctx.id} {ctx.attempt}\n")
    return index + len(payload)


def reply_then_die(value: Any, delay_s: float, ledger: str = "") -> Any:
    """Count the run in ``ledger`` (if given) and return ``value``; a helper thread
    SIGKILLs the worker ``delay_s`` seconds after the worker has written the reply (seen as
    its main thread being back in the worker loop's receive call, which it enters only
    after the reply is on the pipe)."""
    if ledger:
        count_run(ledger)
    main = threading.main_thread().ident
    me = os.getpid()

    def in_receive() -> bool:
        frame = sys._current_frames().get(main or 0)
        while frame is not None:
            if frame.f_code.co_name == "_receive":
                return True
            frame = frame.f_back
        return False

    def killer() -> None:
        while not in_receive():
            time.sleep(0.0001)
        if delay_s > 0:
            spin(delay_s)
        os.kill(me, signal.SIGKILL)

    threading.Thread(target=killer, daemon=True).start()
    return value


# -------------------------------------------------------------------------------- signals
def stamp_and_sleep(item: tuple[str, int, float]) -> int:
    """For ``map``: ``item`` is ``(ledger, index, seconds)``; append ``index`` and the
    start instant to ``ledger``, sleep ``seconds``, return ``index``."""
    ledger, index, seconds = item
    _append(ledger, f"{index} {time.monotonic()!r}\n")
    time.sleep(seconds)
    return index
