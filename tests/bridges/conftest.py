"""Fixtures of the bridge suites: a ``WorkerBridge`` per backend, shared by a module.

``bridge`` is parametrised over the process (forkserver), thread and inline backends, so a
test written once checks that an operation gives the same result and the same error type
everywhere (DESIGN.md 4, RELIABILITY.md S39). The pool lives for the module (starting one
per test would dominate the suite's time); the autouse leak check still sees every thread
and segment that a test itself leaves behind.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workerbridge import WorkerBridge, WorkerPool

BACKENDS = ("process", "thread", "inline")


@pytest.fixture(scope="module", params=BACKENDS)
def bridge(request: pytest.FixtureRequest) -> Iterator[WorkerBridge]:
    """A bridge over a 2-worker pool of one backend (closed after the module)."""
    pool = WorkerPool(2, backend=request.param)
    pool.wait_ready(60)
    try:
        yield WorkerBridge(pool=pool)
    finally:
        pool.terminate()


@pytest.fixture(scope="module")
def process_bridge() -> Iterator[WorkerBridge]:
    """A bridge over a 2-worker process pool, for tests that need real processes."""
    pool = WorkerPool(2)
    pool.wait_ready(60)
    try:
        yield WorkerBridge(pool=pool)
    finally:
        pool.terminate()
