"""The block under every shared object: header checks, the attach cache, fork safety."""

from __future__ import annotations

import os

import atomicshm
import pytest

from workerbridge import SharedCounter, SharedMemoryError
from workerbridge._shared import _block
from workerbridge._shared._atomic import Int64Slot
from workerbridge._shared._block import Block, Kind
from workerbridge._transport import Segment

from ._util import attached_copy, exists


@pytest.mark.parametrize("size", [64, 8])
def test_a_segment_that_is_not_a_shared_object_is_refused(size: int) -> None:
    segment = Segment.create(size, "foreign")  # all zero: no header
    try:
        with pytest.raises(SharedMemoryError, match="not a workerbridge shared object"):
            Block.attach(segment.name, Kind.COUNTER)
    finally:
        segment.unlink()
        segment.close()
    assert segment.name not in _block._attached


def test_a_missing_segment() -> None:
    name = f"wb-{os.getpid()}-ctr-000000000000"
    with pytest.raises(SharedMemoryError, match="is gone"):
        Block.attach(name, Kind.COUNTER)


def test_slots_must_be_aligned() -> None:
    buffer = bytearray(32)
    view = atomicshm.AtomicView(buffer)
    try:
        with pytest.raises(ValueError, match="aligned"):
            Int64Slot(view, 4, "test")
    finally:
        view.close()


def test_released_attachments_are_unmapped_at_the_next_attach() -> None:
    first = SharedCounter()
    copy = attached_copy(first)
    name = first.name
    assert name in _block._attached
    first.close()
    assert name in _block._attached  # still mapped: nobody has looked yet
    with SharedCounter() as second:
        attached_copy(second)
        assert name not in _block._attached
        assert copy.closed


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_never_releases_its_parents_counter() -> None:
    with SharedCounter() as counter:
        pid = os.fork()
        if pid == 0:  # the child: add, then "close" the inherited creator object
            code = 3
            try:
                counter.add(1)
                counter.close()
                code = 0 if exists(counter.name) else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert exists(counter.name)
        assert not counter.closed
        assert counter.load() == 1
