"""Fixtures of the shared-state tests: every test must leave no block of this process
unreleased (beyond the leak check of ``tests/conftest.py``, which watches ``/dev/shm``)."""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Iterator

import pytest

from workerbridge._shared import _block


@pytest.fixture(scope="session", autouse=True)
def _grow_multiprocessing_heap() -> None:
    """Give ``multiprocessing``'s heap room before the first leak baseline (as
    ``tests/integration/conftest.py`` does): each worker's control block comes from it, and
    the first test holding more blocks than any before would be blamed for the two
    descriptors of a new arena."""
    context = multiprocessing.get_context("spawn")
    blocks = [context.RawArray("b", 4096) for _ in range(256)]
    del blocks


@pytest.fixture(autouse=True)
def _blocks_released() -> Iterator[None]:
    before = set(_block._owned)
    yield
    gc.collect()  # a test that failed may hold objects in a traceback cycle
    with _block._lock:
        _block._prune_released()
    leftover = set(_block._owned) - before
    assert not leftover, f"shared objects not released by the test: {sorted(leftover)}"
