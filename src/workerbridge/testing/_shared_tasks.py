"""Importable task functions that use shared state (``SharedCounter``, ``SharedProgress``,
``SharedCancellation``), for tests and benchmarks.

They live in the package so that every worker, under any start method, imports them by
reference. None of them sleeps to synchronise: each signals through shared state and
polls for the answer, with a bound so that a broken test fails instead of hanging.
"""

from __future__ import annotations

import os
import time

from .._exceptions import SharedMemoryError
from .._shared import SharedCancellation, SharedCounter, SharedProgress

__all__ = [
    "add_many",
    "cancel",
    "cas_increment_many",
    "claim",
    "hold_until_cancelled",
    "mapped_segments",
    "progress_steps",
    "touch_counter",
    "use_until_released",
    "wait_for_cancel",
]

#: Bound on every poll loop here: long enough for a loaded CI machine, short enough that a
#: test whose parent never answers fails within its timeout.
POLL_LIMIT_S = 30.0
#: Pause between polls: a poll is a single atomic load, so this only keeps an idle task
#: from burning the core that the parent needs to make progress.
POLL_INTERVAL_S = 0.0005


def add_many(counter: SharedCounter, n: int) -> int:
    """``counter.add(1)`` ``n`` times; return ``n`` (S37: the sum over workers is exact)."""
    add = counter.add
    for _ in range(n):
        add(1)
    return n


def cas_increment_many(counter: SharedCounter, n: int) -> int:
    """Increment ``counter`` ``n`` times through a compare-and-exchange loop; return how many
    attempts lost a race (another writer got in between the load and the exchange)."""
    lost = 0
    cas = counter.compare_exchange
    seen = counter.load()
    for _ in range(n):
        while True:
            ok, seen = cas(seen, seen + 1)
            if ok:
                seen += 1
                break
            lost += 1
    return lost


def claim(counter: SharedCounter, ticket: int) -> bool:
    """Try to move ``counter`` from 0 to ``ticket``; True for the one caller that does."""
    ok, _ = counter.compare_exchange(0, ticket)
    return ok


def progress_steps(progress: SharedProgress, steps: int) -> int:
    """``progress.advance()`` ``steps`` times; return the final ``current``."""
    current = progress.current
    for _ in range(steps):
        current = progress.advance()
    return current


def wait_for_cancel(token: SharedCancellation, started: SharedCounter) -> float:
    """Signal ``started`` (store 1), then poll ``token.cancelled``; return the seconds it
    took to see the cancel.

    Raises:
        TimeoutError: no cancel within ``POLL_LIMIT_S``.
    """
    started.store(1)
    begin = time.monotonic()
    while not token.cancelled:
        if time.monotonic() - begin > POLL_LIMIT_S:
            raise TimeoutError("the token was never cancelled")
        time.sleep(POLL_INTERVAL_S)
    return time.monotonic() - begin


def cancel(token: SharedCancellation) -> bool:
    """Cancel ``token`` from inside the task; return ``token.cancelled`` afterwards."""
    token.cancel()
    return token.cancelled


def hold_until_cancelled(counter: SharedCounter, token: SharedCancellation) -> int:
    """Store this process's pid in ``counter`` (the task holds both mappings from then on),
    then wait for ``token``: a test kills the worker in between."""
    counter.store(os.getpid())
    begin = time.monotonic()
    while not token.cancelled and time.monotonic() - begin < POLL_LIMIT_S:
        time.sleep(POLL_INTERVAL_S)
    return os.getpid()


def use_until_released(counter: SharedCounter, started: SharedCounter) -> str:
    """Signal ``started``, then keep adding to ``counter`` until its owner releases it;
    return the ``SharedMemoryError`` message seen.

    Raises:
        TimeoutError: the counter was not released within ``POLL_LIMIT_S``.
    """
    started.store(1)
    begin = time.monotonic()
    try:
        while time.monotonic() - begin < POLL_LIMIT_S:
            counter.add(1)
            time.sleep(POLL_INTERVAL_S)
    except SharedMemoryError as exc:
        return str(exc)
    raise TimeoutError("the counter was never released")


def touch_counter(counter: SharedCounter) -> int:
    """Add 1 and return the new value (a task called many times with the same counter)."""
    return counter.add(1)


def mapped_segments(prefix: str) -> list[str]:
    """The shared-memory segments whose names start with ``prefix`` that this process has
    mapped, once per mapping (read from ``/proc/self/maps``)."""
    found = []
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)  # address perms offset dev inode [path]
            if len(fields) < 6:
                continue
            path = fields[5].strip().removesuffix(" (deleted)")
            name = path.rpartition("/")[2]
            if path.startswith("/dev/shm/") and name.startswith(prefix):
                found.append(name)
    return found
