"""One integration suite, run on every configuration of the pool.

``pool_factory`` is parametrised over the configurations a user can choose: worker processes
started by ``forkserver`` (the default) and by ``spawn``, worker threads, and ``inline``
(tasks run in the caller). A test written once runs on all four; a test that cannot apply to
a configuration (killing a thread, queueing behind an inline task) calls
``pool_factory.require(...)`` with the reason, which skips it there.

The factory remembers every pool it made and terminates them at teardown, after creating the
test's release file so that no task blocked on it outlives the test: the autouse leak check
(``tests/conftest.py``) then sees every worker, thread and descriptor gone.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from workerbridge import WorkerPool
from workerbridge.testing import tasks

#: Every configuration the shared suite runs on.
KINDS = ("forkserver", "spawn", "thread", "inline")
#: Configurations whose workers are processes: they can crash, be killed and replaced.
PROCESSES = ("forkserver", "spawn")
#: Configurations whose workers run beside the caller, so tasks can wait in a queue while
#: the caller goes on (inline runs each task inside ``submit``).
CONCURRENT = ("forkserver", "spawn", "thread")


class PoolFactory:
    """Makes pools of one configuration (``kind``) and cleans up after them."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.directory = directory
        #: The file blockers wait for (see ``_helpers.saturate``); created at teardown.
        self.release = str(directory / "release")
        self._pools: list[WorkerPool] = []

    @property
    def backend(self) -> Literal["process", "thread", "inline"]:
        """The ``backend=`` this configuration uses (and ``pool.backend`` reports)."""
        if self.kind in PROCESSES:
            return "process"
        return "thread" if self.kind == "thread" else "inline"

    @property
    def is_process(self) -> bool:
        return self.kind in PROCESSES

    def __call__(self, size: int = 1, **options: Any) -> WorkerPool:
        """``WorkerPool(size, backend=..., start_method=..., **options)``."""
        if self.kind in PROCESSES:
            options.setdefault("start_method", self.kind)
        pool = WorkerPool(size, backend=self.backend, **options)
        self._pools.append(pool)
        return pool

    def path(self, name: str) -> str:
        """A path in the test's own directory, for markers and ledgers."""
        return str(self.directory / name)

    def require(self, *kinds: str, reason: str) -> None:
        """Skip the running test unless this configuration is one of ``kinds``."""
        if self.kind not in kinds:
            pytest.skip(f"does not apply to {self.kind}: {reason}")

    def cleanup(self) -> None:
        tasks.touch(self.release)
        for pool in self._pools:
            pool.terminate()
        self._pools.clear()


@pytest.fixture(scope="session", autouse=True)
def _grow_multiprocessing_heap() -> None:
    """Give ``multiprocessing``'s shared-memory heap room before the first leak baseline.

    Each worker process gets its control block from that heap (``RawArray``). The heap
    keeps every arena below 4 MiB open for the life of the process (two descriptors each)
    and opens a new one whenever the live blocks do not fit, so the first test that holds
    more blocks at once than any before it would be blamed for two descriptors. Worker
    objects are freed by the cyclic garbage collector, so how many blocks are held at once
    depends on when it last ran: allocating and freeing about 1 MiB up front makes the
    arenas large enough for the whole session.
    """
    context = multiprocessing.get_context("spawn")
    blocks = [context.RawArray("b", 4096) for _ in range(256)]
    del blocks


@pytest.fixture(params=KINDS)
def pool_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PoolFactory]:
    factory = PoolFactory(request.param, tmp_path)
    try:
        yield factory
    finally:
        factory.cleanup()
