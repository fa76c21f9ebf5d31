"""Helpers for the shared-state tests."""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from workerbridge._shared import _block

T = TypeVar("T")

#: Bound on every wait: it only turns a hang into a failure.
WAIT_S = 20.0


def exists(name: str) -> bool:
    return os.path.exists(os.path.join("/dev/shm", name))


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.001)


@contextmanager
def as_another_process() -> Iterator[None]:
    """Within the block, unpickling a shared object maps its segment as another process
    would (through the attach cache), instead of reusing this process's own mapping."""
    saved = dict(_block._owned)
    _block._owned.clear()
    try:
        yield
    finally:
        _block._owned.update(saved)


def attached_copy(obj: T) -> T:
    """A copy of ``obj`` mapped the way a worker process maps it."""
    data = pickle.dumps(obj)
    with as_another_process():
        copy: T = pickle.loads(data)
    return copy


def roundtrip(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj))
