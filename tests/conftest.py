"""Shared fixtures: a leak check around every test, and the slow-test switch.

Every test is wrapped by ``no_leaks``: after it, no worker process, thread, file
descriptor or /dev/shm segment it created may remain (waiting a bounded time for things
that end asynchronously, such as a killed worker being reaped). Long-lived helpers that
``multiprocessing`` keeps for the whole session (the forkserver, the resource tracker) are
started once up front so they are not mistaken for leaks.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

LEAK_GRACE_S = 5.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run the long soak tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow soak test: use --run-slow or `make soak`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _warm_multiprocessing() -> None:
    """Start the session-long helpers of multiprocessing before the first leak baseline."""
    from workerbridge import WorkerPool
    from workerbridge.testing import tasks

    for method in ("forkserver", "spawn"):
        with WorkerPool(1, start_method=method) as pool:
            pool.submit(tasks.noop).result(timeout=60)


#: Shared-memory names workerbridge creates start with this, then the creator's pid.
SHM_PREFIX = "wb-"


def _is_ours(pid: int) -> bool:
    """A segment counts against this test session if this process or one of its children
    created it, or if its creator is gone (an orphan nobody will remove). Other processes
    on the machine (a benchmark, another test session) make segments of their own."""
    if pid == os.getpid():
        return True
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return True
    try:
        return any(parent.pid == os.getpid() for parent in process.parents())
    except psutil.Error:
        return True


def _shm_names() -> set[str]:
    try:
        names = os.listdir("/dev/shm")
    except FileNotFoundError:
        return set()
    ours = set()
    for name in names:
        if not name.startswith(SHM_PREFIX):
            continue
        pid = name[len(SHM_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and _is_ours(int(pid)):
            ours.add(name)
    return ours


def _session_helpers() -> set[int]:
    pids = set()
    from multiprocessing import forkserver, resource_tracker

    for obj, attr in (
        (forkserver._forkserver, "_forkserver_pid"),
        (resource_tracker._resource_tracker, "_pid"),
    ):
        pid = getattr(obj, attr, None)
        if pid:
            pids.add(pid)
    return pids


def _children() -> set[int]:
    me = psutil.Process()
    # Zombies count too: a worker that was never reaped is a leak.
    out = {child.pid for child in me.children(recursive=True)}
    return out - _session_helpers()


def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)  # polling a leak check, not synchronising the test


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    children = _children()
    threads = set(threading.enumerate())
    fds = psutil.Process().num_fds()
    shm = _shm_names()
    yield
    if request.node.get_closest_marker("leaks_ok"):
        return
    multiprocessing.active_children()  # reap finished multiprocessing children

    def clean() -> bool:
        return (
            not (_children() - children)
            and not (set(threading.enumerate()) - threads)
            and psutil.Process().num_fds() <= fds
            and not (_shm_names() - shm)
        )

    if not _wait_until(clean, LEAK_GRACE_S):
        leaked = {
            "processes": sorted(_children() - children),
            "threads": sorted(t.name for t in set(threading.enumerate()) - threads),
            "fd_delta": psutil.Process().num_fds() - fds,
            "shm": sorted(_shm_names() - shm),
        }
        pytest.fail(f"resources leaked by the test: {leaked}")
