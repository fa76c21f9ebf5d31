"""Inside the worker, arguments that came through shared memory are read-only views of the
pool's blocks: a task that writes into a ``memoryview`` or numpy argument gets an error
(and the caller's data, and the block, are untouched). ``bytes`` are immutable anyway and a
``bytearray`` argument is the task's own copy."""

from __future__ import annotations

import pytest

from workerbridge import RemoteTaskError
from workerbridge.testing._shm_tasks import (
    describe,
    make,
    mutate_copy,
    read_stash,
    stash,
    unlock_array,
    write_into,
)

from ._util import START_METHODS, THRESHOLD, WAIT_S, content
from .conftest import PoolMaker

#: What each kind of argument raises when written into, in the worker.
REFUSALS = {
    "memoryview": "builtins.TypeError",  # cannot modify read-only memory
    "float64": "builtins.ValueError",  # assignment destination is read-only
    "int32-2d": "builtins.ValueError",
    "complex64-3d-F": "builtins.ValueError",
}


@pytest.mark.parametrize("method", START_METHODS)
def test_writing_into_an_argument_is_refused(make_pool: PoolMaker, method: str) -> None:
    pool = make_pool(1, start_method=method)
    for seed, (kind, remote_type) in enumerate(REFUSALS.items()):
        value = make(kind, THRESHOLD, seed)
        before = describe(value)
        seen = pool.submit(describe, value).result(WAIT_S)
        assert seen["readonly"] is True, kind
        with pytest.raises(RemoteTaskError) as info:
            pool.submit(write_into, value).result(WAIT_S)
        assert info.value.remote_type == remote_type, (kind, info.value)
        assert "read-only" in info.value.remote_message or "readonly" in (
            info.value.remote_message
        ), info.value.remote_message
        # The caller's value is untouched, and so is the block the next call reuses.
        assert describe(value) == before
        assert content(pool.submit(describe, value).result(WAIT_S)) == content(before)


def test_numpy_argument_cannot_be_made_writable(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    value = make("float64", 4 * THRESHOLD)
    with pytest.raises(RemoteTaskError) as info:
        pool.submit(unlock_array, value).result(WAIT_S)
    assert info.value.remote_type == "builtins.ValueError"
    assert "WRITEABLE" in info.value.remote_message


def test_bytearray_argument_is_the_tasks_own_copy(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    value = make("bytearray", THRESHOLD, 3)
    before = describe(value)
    changed = pool.submit(mutate_copy, value).result(WAIT_S)
    assert changed["readonly"] is False
    assert changed["sha256"] != before["sha256"]  # the task's write landed in its copy...
    assert describe(value) == before  # ...and not in the caller's bytearray
    assert content(pool.submit(describe, value).result(WAIT_S)) == content(before)


def test_pool_keeps_working_after_refused_writes(make_pool: PoolMaker) -> None:
    """A refused write costs the task, not the worker: the same worker goes on."""
    pool = make_pool(1)
    value = make("memoryview", 2 * THRESHOLD, 4)
    for _ in range(3):
        with pytest.raises(RemoteTaskError):
            pool.submit(write_into, value).result(WAIT_S)
    assert content(pool.submit(describe, value).result(WAIT_S)) == content(describe(value))
    assert pool.stats().restarts == 0


def test_argument_kept_past_its_task_never_faults(make_pool: PoolMaker) -> None:
    """A task that keeps its argument views after returning (they are valid only until
    then) reads whatever the reused blocks hold later, but never faults the worker."""
    pool = make_pool(1)
    kept = [make("float64", 2 * THRESHOLD, 1), make("memoryview", 2 * THRESHOLD, 2)]
    for value in kept:
        pool.submit(stash, value).result(WAIT_S)
    for seed in range(3, 8):  # the same blocks, other contents
        value = make("float64", 2 * THRESHOLD, seed)
        assert content(pool.submit(describe, value).result(WAIT_S)) == content(describe(value))
    digests = pool.submit(read_stash).result(WAIT_S)
    assert len(digests) == 2
    assert pool.stats().restarts == 0
