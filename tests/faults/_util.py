"""Helpers of the fault-injection suite: waiting on conditions (never sleeping to
synchronise), process liveness, and the figures the suite measures.

Figures: where RELIABILITY.md gives a target (timeout + 100 ms, 2 s, 5 s, canary p99 500 ms)
a test measures it, records it with ``figure()`` (printed at once, so ``pytest -s`` shows
it, and again in the terminal summary) and asserts a bound several times looser, so that a
loaded 2-core CI machine does not fail on scheduling noise. The soak runs (``make soak``)
are where the target itself is watched.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil

from workerbridge import TaskHandle

#: Bound on every wait: generous, it only turns a hang into a failure.
WAIT_S = 20.0
#: The start methods every process test runs under.
START_METHODS = ("forkserver", "spawn")

#: ``(test, name, value, unit, target, bound)`` of every figure measured in this session.
FIGURES: list[tuple[str, str, float, str, str, float]] = []


class KnownBugError(AssertionError):
    """Raised by a strict-xfail test exactly where the bug it documents shows (the marker
    has ``raises=KnownBugError``): any other failure, a broken precondition included, is then
    reported as a real failure, not as the expected one."""


def wait_until(
    predicate: Callable[[], bool], what: str, timeout: float = WAIT_S, interval: float = 0.002
) -> float:
    """Poll ``predicate`` until it holds; return how long that took."""
    start = time.monotonic()
    deadline = start + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)  # polling a condition, not synchronising with a task
    return time.monotonic() - start


def wait_for_path(path: str, timeout: float = WAIT_S) -> None:
    wait_until(lambda: os.path.exists(path), f"{path} to appear", timeout)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone: it runs no code)."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: Iterable[int], timeout: float = WAIT_S) -> float:
    """Wait until none of ``pids`` runs; return how long that took."""
    pids = list(pids)
    return wait_until(
        lambda: not any(pid_alive(p) for p in pids), f"processes {pids} to exit", timeout
    )


def wait_stopped(pid: int, timeout: float = WAIT_S) -> None:
    """Wait until ``pid`` is stopped (after SIGSTOP), or gone.

    Raises:
        ProcessLookupError: it is gone.
    """

    def stopped() -> bool:
        try:
            status = psutil.Process(pid).status()
        except psutil.NoSuchProcess:
            raise ProcessLookupError(pid) from None
        if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            raise ProcessLookupError(pid)
        return status == psutil.STATUS_STOPPED

    wait_until(stopped, f"process {pid} to stop", timeout, interval=0.0005)


def done_time(handle: TaskHandle[Any]) -> list[float]:
    """A one-element list that receives ``time.monotonic()`` when ``handle`` is done."""
    box: list[float] = []
    handle.add_done_callback(lambda _h: box.append(time.monotonic()))
    return box


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def figure(test: str, name: str, seconds: float, target: str, bound: float) -> None:
    """Record and print a measured duration (in ms) and assert it is within ``bound`` s."""
    FIGURES.append((test, name, seconds * 1000, "ms", target, bound * 1000))
    print(f"\n[figure] {test}: {name} = {seconds * 1000:.1f} ms (target {target})")
    assert seconds <= bound, (
        f"{name}: {seconds * 1000:.1f} ms is beyond the CI bound of {bound * 1000:.0f} ms "
        f"(target {target})"
    )


def count(test: str, name: str, value: float, target: str = "") -> None:
    """Record and print a measured count (no bound: the test asserts what it needs)."""
    FIGURES.append((test, name, value, "", target, float("nan")))
    print(f"\n[figure] {test}: {name} = {value:g}" + (f" (target {target})" if target else ""))
