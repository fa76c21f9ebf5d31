"""``transfer(buf)``: a ``SharedBuffer`` moves into a task by name, without a copy; the
sender's view is detached; the task may write into it and give it back (the caller then
holds the same object again, with the task's writes); a buffer not given back is released
when the task ends. Use after release raises ``SharedMemoryError``, never faults (S36)."""

from __future__ import annotations

import gc
import hashlib
import os
import signal
from typing import Any

import numpy as np
import pytest

from workerbridge import (
    RemoteTaskError,
    SerializationError,
    SharedMemoryError,
    ValidationError,
    WorkerCrashedError,
)
from workerbridge._transport import SharedBuffer, release_unreturned, transfer
from workerbridge.testing import tasks
from workerbridge.testing._shm_tasks import (
    fill_buffer,
    fill_buffer_with,
    hold,
    make,
    make_shared_buffer,
)

from ._util import (
    MIB,
    START_METHODS,
    WAIT_S,
    arena_blocks,
    data_names,
    shm_exists,
    wait_for_path,
    wait_until,
    worker_pids,
)
from .conftest import PoolMaker


def filled(buffer: SharedBuffer, seed: int = 0) -> str:
    """Fill ``buffer`` with random content; return its sha256."""
    data = make("bytes", len(buffer), seed)
    buffer.view[:] = data
    return hashlib.sha256(data).hexdigest()


def assert_detached(buffer: SharedBuffer) -> None:
    with pytest.raises(SharedMemoryError, match="transferred or released"):
        buffer.view  # noqa: B018
    with pytest.raises(SharedMemoryError):
        len(buffer)
    with pytest.raises(SharedMemoryError):
        transfer(buffer)


def wait_released(name: str) -> None:
    # The pool releases an unreturned buffer right after resolving the task's handle.
    wait_until(lambda: not shm_exists(name), f"{name} to be unlinked")


@pytest.mark.parametrize("method", START_METHODS)
def test_transfer_moves_the_buffer_and_back(make_pool: PoolMaker, method: str) -> None:
    pool = make_pool(1, start_method=method)
    assert pool.wait_ready(WAIT_S)
    buf = pool.alloc(4 * MIB)
    name = buf.name
    digest = filled(buf)
    handle = pool.submit(fill_buffer, transfer(buf), 0xAB, "transfer")
    assert_detached(buf)  # at once, before the task even ran
    seen, back = handle.result(WAIT_S)
    # The task saw the caller's data, in the caller's segment: moved by name, not copied.
    assert seen == {"type": "SharedBuffer", "nbytes": 4 * MIB, "sha256": digest}
    assert not arena_blocks(os.getpid()), "a transferred buffer must not be copied to a block"
    # Given back: the very same object, alive again, holding the task's writes.
    assert back is buf
    assert buf.name == name
    assert len(buf) == 4 * MIB
    assert buf.view.tobytes() == b"\xab" * (4 * MIB)
    # It can travel again.
    seen, back = pool.submit(fill_buffer, transfer(buf), 0x01, "plain").result(WAIT_S)
    assert back is buf
    assert seen["sha256"] == hashlib.sha256(b"\xab" * (4 * MIB)).hexdigest()
    assert buf.view.tobytes() == b"\x01" * (4 * MIB)
    buf.release()
    assert not shm_exists(name)


def test_task_writes_through_numpy_view(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    buf = pool.alloc(8 * 1000)
    np.frombuffer(buf.view, dtype=np.float64)[:] = np.arange(1000)
    seen, back = pool.submit(fill_buffer, transfer(buf), 0, "transfer").result(WAIT_S)
    assert seen["nbytes"] == 8000
    assert not np.frombuffer(back.view, dtype=np.float64).any()
    back.release()


@pytest.mark.parametrize("method", START_METHODS)
def test_buffer_not_given_back_is_released(make_pool: PoolMaker, method: str) -> None:
    pool = make_pool(1, start_method=method)
    buf = pool.alloc(2 * MIB)
    digest = filled(buf, 3)
    name = buf.name
    seen = pool.submit(fill_buffer, transfer(buf), 0x11, "none").result(WAIT_S)
    assert seen["sha256"] == digest
    wait_released(name)
    assert_detached(buf)
    buf.release()  # still harmless


def test_buffer_of_a_failed_task_is_released(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    buf = pool.alloc(MIB)
    name = buf.name
    with pytest.raises(RemoteTaskError) as info:
        pool.submit(fill_buffer, transfer(buf), 300, "transfer").result(WAIT_S)  # bytes([300])
    assert info.value.remote_type == "builtins.ValueError"
    wait_released(name)
    assert_detached(buf)


@pytest.mark.parametrize("method", START_METHODS)
def test_buffer_of_a_killed_worker_is_released(make_pool: PoolMaker, method: str) -> None:
    pool = make_pool(1, start_method=method)
    assert pool.wait_ready(WAIT_S)
    [wpid] = worker_pids(pool)
    buf = pool.alloc(2 * MIB)
    name = buf.name
    started = make_pool.path("started")
    handle = pool.submit(hold, transfer(buf), started, make_pool.release)
    wait_for_path(started)
    os.kill(wpid, signal.SIGKILL)
    with pytest.raises(WorkerCrashedError) as info:
        handle.result(WAIT_S)
    assert info.value.signal_name == "SIGKILL"
    wait_released(name)
    assert_detached(buf)
    pool.close()
    assert not data_names([os.getpid(), wpid])


def test_buffer_of_a_cancelled_queued_task_is_released(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    started = make_pool.path("started")
    blocker = pool.submit(tasks.block, make_pool.release, started)
    wait_for_path(started)
    # Fill the worker's window (two requests while no reply came) so that the next task
    # waits in the pool's queue.
    fillers = [pool.submit(tasks.noop) for _ in range(3)]
    buf = pool.alloc(MIB)
    name = buf.name
    handle = pool.submit(fill_buffer, transfer(buf), 1, "transfer")
    assert handle.cancel()
    wait_released(name)
    assert_detached(buf)
    tasks.touch(make_pool.release)
    assert blocker.result(WAIT_S) == "released"
    for filler in fillers:
        filler.result(WAIT_S)


def test_shared_buffer_without_transfer_is_refused(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    buf = pool.alloc(MIB)
    digest = filled(buf, 5)
    for args in ((buf,), ([buf],), (make("bytes", MIB), {"b": buf})):
        with pytest.raises(SerializationError, match=r"transfer\(buf\)") as info:
            pool.submit(tasks.echo, *args)
        assert isinstance(info.value.__cause__, SharedMemoryError)
    # Nothing moved: the buffer is still the caller's, intact, and can still be transferred.
    assert hashlib.sha256(buf.view).hexdigest() == digest
    seen, back = pool.submit(fill_buffer, transfer(buf), 2, "transfer").result(WAIT_S)
    assert seen["sha256"] == digest
    assert back is buf
    buf.release()


@pytest.mark.parametrize(
    "value",
    [b"data", bytearray(8), memoryview(b"data"), np.zeros(4), None, 7],
    ids=["bytes", "bytearray", "memoryview", "ndarray", "None", "int"],
)
def test_transfer_of_anything_else_is_a_type_error(value: Any) -> None:
    with pytest.raises(TypeError, match="SharedBuffer"):
        transfer(value)


def test_release_is_idempotent_and_use_after_release_raises() -> None:
    buf = SharedBuffer(MIB)
    name = buf.name
    filled(buf, 6)
    array = np.frombuffer(buf.view, dtype=np.uint8)  # views taken before the release...
    piece = buf.view[:16]
    expected = bytes(piece)
    assert shm_exists(name)
    buf.release()
    assert not shm_exists(name)
    buf.release()
    buf.release()
    assert_detached(buf)
    # ...stay readable (the mapping lives while they do): no fault, no garbage.
    assert bytes(piece) == expected
    assert array[:16].tobytes() == expected
    del array, piece
    gc.collect()
    buf.release()


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "8"])
def test_shared_buffer_size_must_be_a_positive_int(size: Any) -> None:
    with pytest.raises(ValidationError):
        SharedBuffer(size)


def test_transfer_is_public() -> None:
    """README: ``from workerbridge import WorkerPool, transfer``."""
    import workerbridge

    assert workerbridge.transfer is transfer
    assert workerbridge.SharedBuffer is SharedBuffer
    assert {"transfer", "SharedBuffer"} <= set(workerbridge.__all__)


def test_dropped_shared_buffer_is_unlinked() -> None:
    buf = SharedBuffer(MIB)
    name = buf.name
    del buf
    gc.collect()
    assert not shm_exists(name)


# ------------------------------------------------------------------------ known bugs


def test_failed_submit_does_not_strand_a_transferred_buffer(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    pool.close()
    buf = pool.alloc(MIB)
    name = buf.name
    try:
        with pytest.raises(Exception, match="closed"):
            pool.submit(tasks.echo, transfer(buf))
        try:
            buf.view  # noqa: B018 - still the caller's: fine
        except SharedMemoryError:
            # Or else it must at least be freed once the caller drops it.
            del buf
            gc.collect()
            assert not shm_exists(name), "segment pinned after a failed submit"
        else:
            buf.release()
    finally:
        release_unreturned([name])  # clean up for the leak check


def test_transfer_next_to_a_cloudpickled_argument(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    buf = pool.alloc(MIB)
    name = buf.name
    try:
        _seen, back = pool.submit(fill_buffer_with, transfer(buf), lambda: 9).result(WAIT_S)
        assert back is buf
        assert buf.view.tobytes() == b"\x09" * MIB
    finally:
        release_unreturned([name])
        buf.release()


@pytest.mark.parametrize("backend", ["thread", "inline"])
def test_plain_return_on_thread_backends(make_pool: PoolMaker, backend: str) -> None:
    pool = make_pool(1, backend=backend)
    buf = pool.alloc(MIB)
    try:
        _, back = pool.submit(fill_buffer, transfer(buf), 7, "plain").result(WAIT_S)
        assert back is buf
        assert buf.view.tobytes() == b"\x07" * MIB
    finally:
        buf.release()


@pytest.mark.parametrize("backend", ["thread", "inline"])
def test_unreturned_buffer_on_thread_backends(make_pool: PoolMaker, backend: str) -> None:
    pool = make_pool(1, backend=backend)
    buf = pool.alloc(MIB)
    name = buf.name
    try:
        pool.submit(fill_buffer, transfer(buf), 7, "none").result(WAIT_S)
        assert_detached(buf)
        wait_released(name)
    finally:
        buf.release()


def test_buffers_made_in_a_worker_do_not_pile_up(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    assert pool.wait_ready(WAIT_S)
    [wpid] = worker_pids(pool)
    for i in range(4):
        buf = pool.submit(make_shared_buffer, MIB, i).result(WAIT_S)
        assert buf.view.tobytes() == bytes([i]) * MIB
        buf.release()
    pool.submit(tasks.noop).result(WAIT_S)  # give the worker a chance to hear about it
    left = {n for n in data_names([wpid]) if n.startswith(f"wb-{wpid}-b-")}
    assert len(left) <= 1, f"{len(left)} worker buffers left after 4 calls: {sorted(left)}"
