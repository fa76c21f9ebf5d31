"""Importable task functions for tests, benchmarks and the demo.

They live in the package (not in test files) so that every worker, under any start method,
can import them by reference.
"""

from __future__ import annotations

import hashlib
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
