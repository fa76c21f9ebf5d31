"""SharedCounter in one process: values, validation, pickling, release."""

from __future__ import annotations

import gc
import os
import pickle
import threading

import pytest

from workerbridge import SharedCounter, SharedMemoryError, ValidationError
from workerbridge._shared._atomic import INT64_MAX, INT64_MIN

from ._util import as_another_process, attached_copy, exists, roundtrip


def test_starts_at_zero_or_the_given_value() -> None:
    with SharedCounter() as zero, SharedCounter(-42) as negative:
        assert zero.load() == 0
        assert negative.load() == -42


def test_operations() -> None:
    with SharedCounter(10) as counter:
        assert counter.add() == 11  # add returns the new value
        assert counter.add(5) == 16
        assert counter.add(-20) == -4
        counter.store(7)
        assert counter.load() == 7
        assert counter.exchange(3) == 7  # exchange returns the old value
        assert counter.load() == 3


def test_compare_exchange() -> None:
    with SharedCounter(1) as counter:
        assert counter.compare_exchange(1, 2) == (True, 1)
        assert counter.load() == 2
        assert counter.compare_exchange(1, 5) == (False, 2)  # the value found, for a retry
        assert counter.load() == 2
        assert counter.compare_exchange(2, -9) == (True, 2)
        assert counter.compare_exchange(-9, INT64_MIN) == (True, -9)
        assert counter.load() == INT64_MIN


def test_64_bit_range_and_wrap_around() -> None:
    with SharedCounter(INT64_MAX) as counter:
        assert counter.load() == INT64_MAX
        assert counter.add(1) == INT64_MIN  # wraps as in C, never an exception mid-task
        assert counter.load() == INT64_MIN
        assert counter.add(-1) == INT64_MAX


@pytest.mark.parametrize("bad", [1.5, "1", None, True, 2**63, -(2**63) - 1])
def test_bad_values_are_refused(bad: object) -> None:
    with SharedCounter() as counter:
        with pytest.raises(ValidationError):
            counter.store(bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            counter.add(bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            counter.exchange(bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            counter.compare_exchange(0, bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            counter.compare_exchange(bad, 0)  # type: ignore[arg-type]
        assert counter.load() == 0
    with pytest.raises(ValidationError):
        SharedCounter(bad)  # type: ignore[arg-type]


def test_segment_name_and_repr() -> None:
    with SharedCounter(3) as counter:
        assert counter.name.startswith(f"wb-{os.getpid()}-ctr-")
        assert exists(counter.name)
        assert repr(counter) == f"<SharedCounter {counter.name} value=3>"
    assert repr(counter) == f"<SharedCounter {counter.name} closed>"


def test_close_is_idempotent_and_unlinks() -> None:
    counter = SharedCounter()
    name = counter.name
    assert not counter.closed
    counter.close()
    counter.close()
    assert counter.closed
    assert not exists(name)


@pytest.mark.parametrize(
    "use",
    [
        lambda c: c.load(),
        lambda c: c.store(1),
        lambda c: c.add(1),
        lambda c: c.exchange(1),
        lambda c: c.compare_exchange(0, 1),
        lambda c: pickle.dumps(c),
    ],
    ids=["load", "store", "add", "exchange", "compare_exchange", "pickle"],
)
def test_use_after_close_raises(use: object) -> None:
    counter = SharedCounter()
    counter.close()
    with pytest.raises(SharedMemoryError, match="released by its owner"):
        use(counter)  # type: ignore[operator]


def test_garbage_collection_releases() -> None:
    counter = SharedCounter()
    name = counter.name
    del counter
    gc.collect()
    assert not exists(name)


def test_a_copy_in_this_process_shares_the_value_and_the_mapping() -> None:
    with SharedCounter(1) as counter:
        copy = roundtrip(counter)
        assert copy is not counter
        assert copy._block is counter._block  # no second mapping
        copy.add(1)
        assert counter.load() == 2
        copy.close()  # a copy never releases
        assert counter.add(1) == 3
    with pytest.raises(SharedMemoryError):
        copy.load()


def test_an_attached_copy_sees_the_release() -> None:
    counter = SharedCounter(5)
    copy = attached_copy(counter)
    assert copy._block is not counter._block  # mapped separately, as in another process
    assert not copy._block.owner
    copy.add(1)
    assert counter.load() == 6
    copy.close()  # does nothing on a copy
    assert copy.load() == 6
    counter.close()
    assert copy.closed
    with pytest.raises(SharedMemoryError, match=f"process {os.getpid()}"):
        copy.add(1)


def test_attaching_maps_a_segment_once_per_process() -> None:
    with SharedCounter() as counter:
        data = pickle.dumps(counter)
        with as_another_process():
            copies = [pickle.loads(data) for _ in range(100)]
        assert len({id(c._block) for c in copies}) == 1


def test_unpickling_after_release_raises() -> None:
    counter = SharedCounter()
    data = pickle.dumps(counter)
    counter.close()
    with pytest.raises(SharedMemoryError):
        pickle.loads(data)
    with as_another_process(), pytest.raises(SharedMemoryError, match="is gone"):
        pickle.loads(data)


def test_a_name_of_another_kind_is_refused() -> None:
    from workerbridge._shared._counter import _attach_counter
    from workerbridge._shared._progress import SharedProgress

    with SharedProgress(10) as progress, as_another_process():
        with pytest.raises(SharedMemoryError, match="holds a progress, not a counter"):
            _attach_counter(progress.name)
        with pytest.raises(SharedMemoryError, match="not a workerbridge shared object name"):
            _attach_counter("/etc/passwd")


def test_threads_add_exactly() -> None:
    n, threads = 20_000, 4
    with SharedCounter() as counter:
        workers = [
            threading.Thread(target=lambda: [counter.add(1) for _ in range(n)])
            for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert counter.load() == n * threads
