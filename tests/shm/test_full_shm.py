"""A full ``/dev/shm`` (S19): ``posix_fallocate`` fails with ENOSPC when a segment is
created. Large arguments and results then travel through the pipe instead (and arrive
intact), no half-created segment is left behind, and ``SharedBuffer(n)`` /
``pool.alloc(n)`` raise ``SharedMemoryError`` with a clear message."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

import pytest

from workerbridge import SharedMemoryError
from workerbridge._transport import SharedBuffer
from workerbridge.testing import tasks
from workerbridge.testing._shm_tasks import break_fallocate, describe, describe_all, make

from ._util import MIB, START_METHODS, WAIT_S, content, data_names, names_of, worker_pids
from .conftest import PoolMaker

#: The large values sent while shared memory is "full" (memoryview changes type on the
#: pipe: see test_round_trip.py::test_memoryview_keeps_its_type_on_the_pipe).
KINDS = ("bytes", "bytearray", "float64", "int32-2d", "complex64-3d-F")


def failing_fallocate(
    monkeypatch: pytest.MonkeyPatch, code: int = errno.ENOSPC, after: int = 0
) -> list[int]:
    """Make ``os.posix_fallocate`` in this process fail with ``code``, after ``after``
    calls that succeed; return the list of sizes it was called with."""
    real: Callable[[int, int, int], None] = os.posix_fallocate
    calls: list[int] = []

    def fake(fd: int, offset: int, length: int) -> None:
        calls.append(length)
        if len(calls) > after:
            raise OSError(code, os.strerror(code))
        real(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", fake)
    return calls


@pytest.mark.parametrize("method", START_METHODS)
def test_arguments_fall_back_to_the_pipe(
    make_pool: PoolMaker, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = make_pool(1, start_method=method)
    assert pool.wait_ready(WAIT_S)
    calls = failing_fallocate(monkeypatch)
    for seed, kind in enumerate(KINDS):
        value = make(kind, 2 * MIB, seed)
        assert content(pool.submit(describe, value).result(WAIT_S)) == content(describe(value))
        echoed = pool.submit(tasks.echo, value).result(WAIT_S)  # the result: worker's shm
        assert type(echoed) is type(value)
        assert content(describe(echoed)) == content(describe(value))
    assert calls, "the pool never tried shared memory"
    # No half-created segment: every failed creation was removed at once.
    assert not data_names([os.getpid()])
    # Once there is room again, shared memory is used again.
    monkeypatch.undo()
    value = make("bytes", 2 * MIB, 9)
    assert pool.submit(tasks.echo, value).result(WAIT_S) == value
    assert data_names([os.getpid()])


def test_second_buffer_finds_no_room(make_pool: PoolMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Room for the first of two large arguments, not for the second: the call goes through
    the pipe, the first block is given back, and no half-made segment remains."""
    pool = make_pool(1)
    assert pool.wait_ready(WAIT_S)
    calls = failing_fallocate(monkeypatch, after=1)
    first, second = make("bytes", MIB, 1), make("float64", 2 * MIB, 2)
    got = pool.submit(describe_all, first, second).result(WAIT_S)
    assert [content(d) for d in got] == [content(describe(first)), content(describe(second))]
    seen = pool.submit(describe, first).result(WAIT_S)  # reuses the block made before
    assert content(seen) == content(describe(first))
    assert len(calls) == 2
    assert len(data_names([os.getpid()])) == 1  # the first block, back in the arena
    pool.close()
    assert not names_of([os.getpid()])


def test_results_fall_back_to_the_pipe(make_pool: PoolMaker) -> None:
    """The worker's /dev/shm is full (its initializer breaks posix_fallocate there)."""
    pool = make_pool(1, initializer=break_fallocate)
    assert pool.wait_ready(WAIT_S)
    [wpid] = worker_pids(pool)
    for seed, kind in enumerate(KINDS):
        result = pool.submit(make, kind, 2 * MIB, seed).result(WAIT_S)
        expected = make(kind, 2 * MIB, seed)
        assert type(result) is type(expected)
        assert content(describe(result)) == content(describe(expected))
    value = make("bytes", 2 * MIB, 7)
    assert pool.submit(tasks.echo, value).result(WAIT_S) == value
    assert not data_names([wpid])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.ENOMEM])
def test_shared_buffer_reports_a_full_dev_shm(
    make_pool: PoolMaker, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    pool = make_pool(1, backend="inline")
    before = names_of([os.getpid()])
    failing_fallocate(monkeypatch, code)
    for allocate in (SharedBuffer, pool.alloc):
        with pytest.raises(SharedMemoryError, match=r"not enough shared memory .* /dev/shm"):
            allocate(8 * MIB)
    assert names_of([os.getpid()]) == before


def test_filesystem_without_fallocate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where posix_fallocate is not supported, the segment is sized with ftruncate."""
    failing_fallocate(monkeypatch, errno.EOPNOTSUPP)
    buf = SharedBuffer(MIB)
    buf.view[-4:] = b"tail"
    assert os.path.getsize(os.path.join("/dev/shm", buf.name)) == MIB
    assert buf.view[-4:].tobytes() == b"tail"
    buf.release()
