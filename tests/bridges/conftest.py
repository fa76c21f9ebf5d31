"""Fixtures of the bridge suites: a ``WorkerBridge`` per backend, one per test.

``bridge`` is parametrised over the process (forkserver), thread and inline backends, so a
test written once checks that an operation gives the same result and the same error type
everywhere (DESIGN.md 4, RELIABILITY.md S39). Each test gets its own pool (a warm
forkserver starts one in ~15 ms): a pool keeps the shared-memory blocks it used for large
arguments and results for reuse, so a pool shared between tests would show up as segments
leaked by whichever test first needed a block of that size.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest

from workerbridge import WorkerBridge, WorkerPool

BACKENDS: tuple[Literal["process", "thread", "inline"], ...] = ("process", "thread", "inline")


@pytest.fixture(params=BACKENDS)
def bridge(request: pytest.FixtureRequest) -> Iterator[WorkerBridge]:
    """A bridge over a 2-worker pool of one backend (terminated after the test)."""
    pool = WorkerPool(2, backend=request.param)
    pool.wait_ready(60)
    try:
        yield WorkerBridge(pool=pool)
    finally:
        pool.terminate()


@pytest.fixture
def process_bridge() -> Iterator[WorkerBridge]:
    """A bridge over a 2-worker process pool, for tests that need real processes."""
    pool = WorkerPool(2)
    pool.wait_ready(60)
    try:
        yield WorkerBridge(pool=pool)
    finally:
        pool.terminate()
