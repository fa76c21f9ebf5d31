"""Nothing leaks in ``/dev/shm`` when a process dies at any step of a transfer.

- a worker SIGKILLed while it holds a large argument, or while a stream of large results
  is on its way: the task fails with ``WorkerCrashedError``, the pool goes on, and after
  ``close()`` no segment of the pool or of any of its workers remains;
- the pool's process SIGKILLed (a child script): its segments outlive it until the next
  pool starts anywhere on the machine, which removes them (``remove_orphans``);
- stderr never mentions ``resource_tracker`` or ``leaked shared_memory`` (S35).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from workerbridge import WorkerCrashedError, WorkerPool
from workerbridge.testing import tasks
from workerbridge.testing._shm_tasks import describe, hold, make, make_after_marker

from ._util import (
    MIB,
    START_METHODS,
    WAIT_S,
    arena_blocks,
    content,
    data_names,
    names_of,
    ready_worker,
    wait_for_path,
    wait_gone,
    wait_until,
    worker_pids,
)
from .conftest import PoolMaker

CHILD_SCRIPT = Path(__file__).with_name("_child_pool.py")
#: What a leaked multiprocessing.shared_memory segment makes Python print (S35).
TRACKER_NOISE = ("resource_tracker", "leaked shared_memory")


@pytest.mark.parametrize("method", START_METHODS)
def test_worker_killed_holding_a_large_argument(make_pool: PoolMaker, method: str) -> None:
    pool = make_pool(1, start_method=method)
    assert pool.wait_ready(WAIT_S)
    [first] = worker_pids(pool)
    value = make("float64", 4 * MIB, 1)
    started = make_pool.path("started")
    handle = pool.submit(hold, value, started, make_pool.release)
    wait_for_path(started)
    assert arena_blocks(os.getpid()), "the argument should sit in one of the pool's blocks"
    os.kill(first, signal.SIGKILL)
    with pytest.raises(WorkerCrashedError) as info:
        handle.result(WAIT_S)
    assert info.value.signal_name == "SIGKILL"
    assert info.value.pid == first
    # The pool goes on with a new worker, through the same argument block.
    blocks = arena_blocks(os.getpid())
    assert content(pool.submit(describe, value).result(WAIT_S)) == content(describe(value))
    assert arena_blocks(os.getpid()) == blocks
    [second] = worker_pids(pool)
    assert second != first
    assert not data_names([first]), "the dead worker's segments must be unlinked at once"
    pool.close()
    assert not names_of([os.getpid(), first, second])


def _replaced(pool: WorkerPool, pid: int) -> bool:
    return pool.stats().workers[0].pid != pid


@pytest.mark.parametrize("method", START_METHODS)
def test_worker_killed_during_a_stream_of_large_results(make_pool: PoolMaker, method: str) -> None:
    """Kill the worker three times while tasks keep returning 2 MiB results: each kill
    lands between storing a result and the caller reading it, or while the next one is
    being built (where exactly depends on timing; every outcome must be clean). Every task
    ends with its own result or ``WorkerCrashedError``."""
    pool = make_pool(1, start_method=method)
    count, kill_at = 40, (5, 18, 31)
    markers = [make_pool.path(f"started-{i}") for i in range(count)]
    handles = [
        pool.submit(make_after_marker, "bytes", 2 * MIB, i, markers[i]) for i in range(count)
    ]
    pids: set[int] = set()
    for index in kill_at:
        wait_for_path(markers[index])
        pid = ready_worker(pool)  # runs task ``index``, a later one, or waits for more
        pids.add(pid)
        os.kill(pid, signal.SIGKILL)  # alive: only this test kills, and it was ready
        # The next kill is for the next worker (once this one is reaped and replaced).
        wait_until(functools.partial(_replaced, pool, pid), f"worker {pid} to be replaced")
    crashed = []
    for i, handle in enumerate(handles):
        error = handle.exception(WAIT_S)
        if error is None:
            assert handle.result() == make("bytes", 2 * MIB, i), i
        else:
            assert isinstance(error, WorkerCrashedError), error
            crashed.append(error.pid)
    assert len(crashed) <= len(kill_at)
    assert set(crashed) <= pids
    wait_until(lambda: pool.stats().restarts == len(kill_at), "the last worker to be replaced")
    pids.update(worker_pids(pool))
    pool.close()
    assert not names_of([os.getpid(), *pids])


def test_worker_dies_right_after_storing_large_results(make_pool: PoolMaker) -> None:
    """The worker kills itself in the task right after two large results were stored in its
    blocks and sent: those results still arrive intact, the next tasks run on a new
    worker, and the dead worker's blocks are unlinked."""
    pool = make_pool(1)
    before = [pool.submit(make, "memoryview", 2 * MIB, i) for i in range(2)]
    crash = pool.submit(tasks.crash, "kill")
    after = [pool.submit(make, "memoryview", 2 * MIB, i) for i in range(2, 4)]
    for i, handle in enumerate(before):
        assert describe(handle.result(WAIT_S)) == describe(make("memoryview", 2 * MIB, i))
    with pytest.raises(WorkerCrashedError) as info:
        crash.result(WAIT_S)
    for i, handle in enumerate(after, start=2):
        assert describe(handle.result(WAIT_S)) == describe(make("memoryview", 2 * MIB, i))
    assert info.value.pid is not None
    assert not data_names([info.value.pid])
    pool.close()
    assert not names_of([os.getpid(), info.value.pid])


def test_result_delivered_before_the_worker_died_is_not_lost(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    value = make("bytes", MIB, 1)

    async def scenario() -> Any:
        result = pool.submit(tasks.echo, value, on_progress=lambda _info: None)
        crash = pool.submit(tasks.crash, "kill")
        # Keep this loop busy (a blocking call) until the worker is dead and reaped: the
        # echo's reply arrived before the crash, but is resolved on this loop only now.
        with pytest.raises(WorkerCrashedError):
            crash.result(WAIT_S)
        return await result

    assert asyncio.run(scenario()) == value


# ------------------------------------------------------------------ the pool's process dies


def run_child(method: str, mode: str, directory: Path) -> tuple[dict[str, Any], str]:
    """Run ``_child_pool.py``; return what it printed and its stderr, checked for S35."""
    # run() returns once the child and everything it started (workers, forkserver) have
    # closed their ends of stdout and stderr, that is, once they are all gone.
    proc = subprocess.run(
        [sys.executable, str(CHILD_SCRIPT), method, mode, str(directory)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    expected = -signal.SIGKILL if mode == "sigkill" else 0
    assert proc.returncode == expected, proc.stderr
    for noise in TRACKER_NOISE:
        assert noise not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    info: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return info, proc.stderr


@pytest.mark.parametrize(("method", "mode"), [("forkserver", "close"), ("spawn", "exit")])
def test_child_pool_exits_clean(tmp_path: Path, method: str, mode: str) -> None:
    info, _ = run_child(method, mode, tmp_path)
    pid, workers = info["pid"], info["workers"]
    # While it ran, the pool had argument blocks, its workers result blocks, and there were
    # SharedBuffers: all of them gone after a normal exit, closed pool or not.
    assert any(n.startswith(f"wb-{pid}-a-") for n in info["segments"])
    assert any(n.startswith(f"wb-{pid}-b-") for n in info["segments"])
    assert any(n.startswith(f"wb-{w}-r-") for w in workers for n in info["segments"])
    wait_gone(workers)
    assert not names_of([pid, *workers])


@pytest.mark.parametrize("method", START_METHODS)
def test_parent_sigkill_segments_removed_by_next_pool(tmp_path: Path, method: str) -> None:
    info, _ = run_child(method, "sigkill", tmp_path)
    pid, workers = info["pid"], info["workers"]
    assert any(n.startswith(f"wb-{pid}-a-") for n in info["segments"])
    # The workers notice their parent is gone and exit (unlinking their own blocks).
    wait_gone(workers)
    # Nobody ran the dead pool's cleanup: its blocks and SharedBuffers may still be there
    # (unless a pool started meanwhile elsewhere on this machine already removed them).
    remaining = names_of([pid])
    assert remaining <= set(info["segments"])
    # Starting a pool removes the segments of processes that no longer exist.
    with WorkerPool(1, start_method=method) as pool:
        assert not names_of([pid, *workers]), f"left by the dead pool: {sorted(remaining)}"
        assert pool.submit(tasks.echo, b"x" * MIB).result(WAIT_S) == b"x" * MIB
