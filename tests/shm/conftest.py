"""Fixtures of the shared-memory suite.

``make_pool`` makes pools that are terminated at teardown (after the test's release file is
created, so that no task blocked on it outlives the test); the autouse leak check of
``tests/conftest.py`` then sees every worker, thread, descriptor and ``/dev/shm`` segment
gone.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workerbridge import WorkerPool
from workerbridge.testing import tasks


class PoolMaker:
    """``make_pool(size, **options)``: a pool closed (terminated) at the end of the test."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.release = str(directory / "release")
        self._pools: list[WorkerPool] = []

    def __call__(self, size: int = 1, **options: Any) -> WorkerPool:
        pool = WorkerPool(size, **options)
        self._pools.append(pool)
        return pool

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def cleanup(self) -> None:
        tasks.touch(self.release)
        for pool in self._pools:
            pool.terminate()
        self._pools.clear()


@pytest.fixture(scope="session", autouse=True)
def _grow_multiprocessing_heap() -> None:
    """Give ``multiprocessing``'s heap room before the first leak baseline (as
    ``tests/integration/conftest.py`` does): each worker's control block comes from it, and
    the first test holding more blocks than any before would be blamed for the two
    descriptors of a new arena."""
    context = multiprocessing.get_context("spawn")
    blocks = [context.RawArray("b", 4096) for _ in range(256)]
    del blocks


@pytest.fixture
def make_pool(tmp_path: Path) -> Iterator[PoolMaker]:
    maker = PoolMaker(tmp_path)
    try:
        yield maker
    finally:
        maker.cleanup()
