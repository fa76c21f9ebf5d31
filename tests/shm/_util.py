"""Helpers of the shared-memory suite: segment names in ``/dev/shm``, waiting on conditions
(never sleeping to synchronise), process liveness, and comparing value descriptions."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil

from workerbridge import WorkerPool
from workerbridge._transport import DEFAULT_SHM_THRESHOLD, segments_of

#: Bound on every wait: generous, it only turns a hang into a failure.
WAIT_S = 20.0
#: The default ``shm_threshold``: buffers of at least this many bytes use shared memory.
THRESHOLD = DEFAULT_SHM_THRESHOLD
MIB = 1 << 20
START_METHODS = ("forkserver", "spawn")


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll ``predicate`` (state that changes asynchronously) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)  # polling a condition, not synchronising with a task


def wait_for_path(path: str, timeout: float = WAIT_S) -> None:
    wait_until(lambda: os.path.exists(path), f"{path} to appear", timeout)


def shm_exists(name: str) -> bool:
    return os.path.exists(os.path.join("/dev/shm", name))


def names_of(pids: Iterable[int | None]) -> set[str]:
    """The segments in ``/dev/shm`` created by any of ``pids``."""
    out: set[str] = set()
    for pid in pids:
        if pid:
            out.update(segments_of(pid))
    return out


#: Tags of the segments of the data path: the pool's argument blocks (``a``), a worker's
#: result blocks (``r``) and ``SharedBuffer``s (``b``). Other segments (a worker's control
#: block, shared counters) belong to other features.
DATA_TAGS = ("a", "r", "b")


def data_names(pids: Iterable[int | None]) -> set[str]:
    """The data-path segments (``DATA_TAGS``) in ``/dev/shm`` created by any of ``pids``."""
    return {
        name for name in names_of(pids) if name.split("-")[2] in DATA_TAGS and name.count("-") == 3
    }


def arena_blocks(pid: int) -> set[str]:
    """The argument blocks of the pool in process ``pid`` (tag ``a``)."""
    return {n for n in segments_of(pid) if n.startswith(f"wb-{pid}-a-")}


def worker_pids(pool: WorkerPool) -> list[int]:
    pids = [w.pid for w in pool.stats().workers]
    assert all(pids), pids
    return [p for p in pids if p is not None]


def ready_worker(pool: WorkerPool) -> int:
    """The pid of the only worker of ``pool``, once it is ready (after a replacement)."""
    found: list[int] = []

    def ready() -> bool:
        [worker] = pool.stats().workers
        if worker.state == "ready" and worker.pid:
            found.append(worker.pid)
            return True
        return False

    wait_until(ready, "the worker to be ready")
    return found[-1]


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone: it runs no code)."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: Iterable[int], timeout: float = WAIT_S) -> None:
    pids = list(pids)
    wait_until(lambda: not any(pid_alive(p) for p in pids), f"processes {pids} to exit", timeout)


def content(description: dict[str, Any]) -> dict[str, Any]:
    """A description (``_shm_tasks.describe``) without writability: what must survive the
    trip whatever path it took."""
    return {k: v for k, v in description.items() if k != "readonly"}
