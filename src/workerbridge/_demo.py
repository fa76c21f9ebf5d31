"""The tour behind ``make demo``: what the pool does, shown on real worker processes."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from typing import Literal

from . import (
    ProgressInfo,
    TaskCancelledError,
    TaskTimeoutError,
    WorkerCrashedError,
    WorkerPool,
    __version__,
)
from .testing import tasks

__all__ = ["print_info", "run_demo"]


def _bar(info: ProgressInfo, width: int = 30) -> str:
    filled = int(width * info.progress / 100)
    return "[" + "#" * filled + "." * (width - filled) + f"] {info.progress:5.1f}%"


def run_demo(workers: int = 2, backend: Literal["process", "thread"] = "process") -> int:
    print(f"workerbridge {__version__} demo: {workers} workers, backend={backend}\n")
    started = time.perf_counter()
    with WorkerPool(workers, backend=backend, kill_grace=0.3) as pool:
        pool.wait_ready()
        print(f"1. pool ready in {1000 * (time.perf_counter() - started):.0f} ms: {pool!r}")

        print("\n2. a task reporting progress (on_progress runs in order, never after the end):")
        last = ""

        def show(info: ProgressInfo) -> None:
            nonlocal last
            last = _bar(info)
            sys.stdout.write("\r   " + last)
            sys.stdout.flush()

        steps = pool.submit(tasks.progress_steps, 25, on_progress=show).result()
        print(f"\n   done: {steps} steps reported")

        print("\n3. priorities: while the worker is busy, queued tasks leave by priority")
        print("   (a one-worker pool, so the order they run in is the order they left in):")
        with tempfile.TemporaryDirectory() as tmp, WorkerPool(1, backend=backend) as single:
            gate = os.path.join(tmp, "gate")
            ledger = os.path.join(tmp, "ledger")
            blockers = [single.submit(tasks.wait_for_file, gate, 30.0)]
            queued = [
                single.submit(tasks.record_and_return, ledger, f"priority {p}", priority=p)
                for p in (0, 5, 1, 9, 3)
            ]
            with open(gate, "w"):
                pass
            for handle in [*blockers, *queued]:
                handle.result()
            with open(ledger) as f:
                print("   ran in order: " + ", ".join(line.strip() for line in f))

        print("\n4. failures stay with their task; the pool keeps serving:")
        failing = pool.submit(tasks.fail, "bad input")
        print(f"   exception -> {type(failing.exception()).__name__}: {failing.exception()}")
        slow = pool.submit(tasks.sleep, 10.0, timeout=0.2)
        timeout_error = slow.exception()
        assert isinstance(timeout_error, TaskTimeoutError)
        print(f"   timeout   -> {type(timeout_error).__name__}: {timeout_error}")
        doomed = pool.submit(tasks.sleep, 10.0)
        doomed.cancel()
        cancelled = doomed.exception()
        assert isinstance(cancelled, TaskCancelledError)
        print(f"   cancel    -> {type(cancelled).__name__}: {cancelled}")
        if backend == "process":
            crashed = pool.submit(tasks.crash, "kill").exception()
            assert isinstance(crashed, WorkerCrashedError)
            print(f"   crash     -> {type(crashed).__name__}: {crashed}")
        print(f"   and then: 6 * 7 = {pool.submit(tasks.multiply, 6, 7).result()}")

        print("\n5. map over 100,000 items in chunks:")
        t = time.perf_counter()
        total = sum(pool.map(tasks.square, range(100_000)))
        print(f"   sum of squares = {total} in {1000 * (time.perf_counter() - t):.0f} ms")

        stats = pool.stats()
        print("\n6. stats():")
        print(
            f"   submitted={stats.submitted} completed={stats.completed} failed={stats.failed}"
            f" cancelled={stats.cancelled} restarts={stats.restarts}"
            f" utilization={100 * stats.utilization:.1f}%"
        )
        print(
            f"   wait p50={1e6 * stats.wait_time.p50:.0f} us"
            f" p99={1e6 * stats.wait_time.p99:.0f} us;"
            f" run p50={1e6 * stats.run_time.p50:.0f} us p99={1e6 * stats.run_time.p99:.0f} us"
        )
        for w in stats.workers:
            print(
                f"   worker {w.index}: pid={w.pid} {w.state} completed={w.completed}"
                f" failed={w.failed} restarts={w.restarts}"
            )
    print(f"\nclosed cleanly after {time.perf_counter() - started:.2f} s")
    return 0


def print_info() -> int:
    import multiprocessing

    from ._backends import default_start_method

    print(f"workerbridge {__version__}")
    print(f"python       {platform.python_version()} ({sys.executable})")
    print(f"platform     {platform.platform()}")
    print(f"cpus         {len(os.sched_getaffinity(0))}")
    available = ", ".join(multiprocessing.get_all_start_methods())
    print(f"start method {default_start_method()} (available: {available})")
    return 0
