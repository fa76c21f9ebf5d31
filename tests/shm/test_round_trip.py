"""Large arguments and results cross the process boundary intact, whatever path they take.

``bytes``, ``bytearray``, ``memoryview`` and numpy arrays (several dtypes and shapes,
C-ordered, Fortran-ordered and a strided view) go to a real worker and come back, at sizes
just below, at and just above ``shm_threshold`` and at 64 MiB. Content is compared by
sha256, computed in the worker and in the caller. ``shm_threshold=0`` (everything through
the pipe) and the thread and inline backends must give the same answers.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from workerbridge import SerializationError, WorkerPool
from workerbridge.testing import tasks
from workerbridge.testing._shm_tasks import (
    KINDS,
    describe,
    describe_all,
    granularity,
    make,
)

from ._util import MIB, START_METHODS, THRESHOLD, WAIT_S, arena_blocks, content, data_names
from .conftest import PoolMaker

BIG = 64 * MIB


def sizes(kind: str) -> list[int]:
    """Just below, at and just above the threshold."""
    step = granularity(kind)
    return [THRESHOLD - step, THRESHOLD, THRESHOLD + step]


def check_same(result: Any, original: Any) -> None:
    """``result`` has ``original``'s type, dtype, shape and content."""
    assert type(result) is type(original)
    assert content(describe(result)) == content(describe(original))


# Below the threshold a memoryview goes through the pipe, and comes back as bytes (see
# test_memoryview_keeps_its_type_on_the_pipe); that case is tested apart.
ROUND_TRIP_CASES = [
    (kind, n) for kind in KINDS for n in sizes(kind) if not (kind == "memoryview" and n < THRESHOLD)
]


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("kind", KINDS)
def test_arguments_and_results_round_trip(make_pool: PoolMaker, method: str, kind: str) -> None:
    pool = make_pool(2, start_method=method)
    for seed, nbytes in enumerate(n for k, n in ROUND_TRIP_CASES if k == kind):
        value = make(kind, nbytes, seed)
        expected = describe(value)
        seen = pool.submit(describe, value)
        echoed = pool.submit(tasks.echo, value)
        made = pool.submit(make, kind, nbytes, seed)
        # The worker sees the argument's type, dtype, shape and content.
        assert content(seen.result(WAIT_S)) == content(expected), (kind, nbytes)
        # An argument sent back, and a result built in the worker, arrive intact.
        check_same(echoed.result(WAIT_S), value)
        result = made.result(WAIT_S)
        check_same(result, value)
        # A result the worker built is the caller's own: writable like the original.
        assert describe(result)["readonly"] == expected["readonly"], (kind, nbytes)
        del value, result


#: 64 MiB values: one buffer kind as an argument, one array kind as a result, per start
#: method (every kind at 64 MiB would add a minute and test nothing the sizes above do not).
@pytest.mark.parametrize(
    ("method", "arg_kind", "result_kind"),
    [("forkserver", "bytes", "float64"), ("spawn", "memoryview", "complex64-3d-F")],
)
def test_64_mib(make_pool: PoolMaker, method: str, arg_kind: str, result_kind: str) -> None:
    pool = make_pool(1, start_method=method)
    value = make(arg_kind, BIG, 1)
    assert content(pool.submit(describe, value).result(WAIT_S)) == content(describe(value))
    del value
    result = pool.submit(make, result_kind, BIG, 2).result(WAIT_S)
    check_same(result, make(result_kind, BIG, 2))


@pytest.mark.parametrize("kind", ["bytes", "memoryview", "float64", "int32-2d", "complex64-3d-F"])
def test_large_values_use_the_shared_memory_arena(make_pool: PoolMaker, kind: str) -> None:
    """At the threshold, an argument is put in one of the pool's blocks and a result in one
    of the worker's blocks (not in the pipe)."""
    pool = make_pool(1)
    assert pool.wait_ready(WAIT_S)
    [wpid] = [w.pid for w in pool.stats().workers]
    assert not arena_blocks(os.getpid())
    value = make(kind, THRESHOLD)
    assert content(pool.submit(describe, value).result(WAIT_S)) == content(describe(value))
    assert len(arena_blocks(os.getpid())) == 1
    check_same(pool.submit(make, kind, THRESHOLD).result(WAIT_S), value)
    assert wpid is not None
    assert any(n.startswith(f"wb-{wpid}-r-") for n in data_names([wpid]))


def test_large_bytearray_uses_the_shared_memory_arena(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    assert pool.wait_ready(WAIT_S)
    value = make("bytearray", THRESHOLD)
    check_same(pool.submit(tasks.echo, value).result(WAIT_S), value)
    assert len(arena_blocks(os.getpid())) == 1


@pytest.mark.parametrize("method", START_METHODS)
def test_mixed_arguments(make_pool: PoolMaker, method: str) -> None:
    pool = make_pool(1, start_method=method)
    big_bytes = make("bytes", MIB, 1)
    big_array = make("float64", 2 * MIB, 2)
    other_bytes = make("bytes", MIB, 3)  # same size as big_bytes, other content
    small = make("bytes", 100, 4)
    # A large buffer among small values of every sort.
    got = pool.submit(describe_all, big_bytes, 7, "text", None, small, {"k": [1, 2]}, 2.5).result(
        WAIT_S
    )
    assert [content(got[0]), *got[1:4], content(got[4]), *got[5:]] == [
        content(describe(big_bytes)),
        7,
        "text",
        None,
        content(describe(small)),
        {"k": [1, 2]},
        2.5,
    ]
    # Two large buffers (each in its own block: neither overwrites the other).
    for args in ((big_bytes, other_bytes), (big_bytes, big_array), (big_array, big_bytes)):
        got = pool.submit(describe_all, *args).result(WAIT_S)
        assert [content(d) for d in got] == [content(describe(a)) for a in args]
    # The same buffer twice, and large values nested in containers.
    got = pool.submit(describe_all, big_bytes, big_bytes).result(WAIT_S)
    assert [content(d) for d in got] == [content(describe(big_bytes))] * 2
    nested = pool.submit(tasks.echo, {"a": [big_array], "b": (big_bytes, 1)}).result(WAIT_S)
    check_same(nested["a"][0], big_array)
    assert nested["b"] == (big_bytes, 1)
    # A result that is a tuple of large values and small ones.
    pair = pool.submit(tasks.echo, (big_bytes, big_array, "x")).result(WAIT_S)
    assert pair[0] == big_bytes
    assert pair[2] == "x"
    check_same(pair[1], big_array)


def test_results_own_their_memory(make_pool: PoolMaker) -> None:
    """Results are copied out of the worker's blocks: they stay valid (and writable) after
    the worker that made them is gone and its segments are unlinked."""
    pool = make_pool(1)
    kinds = ("memoryview", "float64", "int32-2d")
    results = [pool.submit(make, kind, 2 * MIB, i).result(WAIT_S) for i, kind in enumerate(kinds)]
    pool.close()
    for i, (kind, result) in enumerate(zip(kinds, results, strict=True)):
        check_same(result, make(kind, 2 * MIB, i))
        result[0] = 0  # writable, and no fault: the memory is the caller's


@pytest.mark.parametrize("method", START_METHODS)
def test_threshold_zero_sends_everything_through_the_pipe(
    make_pool: PoolMaker, method: str
) -> None:
    pool = make_pool(1, start_method=method, shm_threshold=0)
    pids = [os.getpid(), *(w.pid for w in pool.stats().workers)]
    assert not data_names(pids)
    for seed, kind in enumerate(k for k in KINDS if k != "memoryview"):
        for nbytes in (THRESHOLD + granularity(kind), 4 * MIB):
            value = make(kind, nbytes, seed)
            assert content(pool.submit(describe, value).result(WAIT_S)) == content(describe(value))
            check_same(pool.submit(tasks.echo, value).result(WAIT_S), value)
            check_same(pool.submit(make, kind, nbytes, seed).result(WAIT_S), value)
    assert not data_names(pids), "shm_threshold=0 must not create any segment"


def _answers(pool: WorkerPool, kind: str, nbytes: int) -> list[Any]:
    value = make(kind, nbytes, 5)
    return [
        content(pool.submit(describe, value).result(WAIT_S)),
        content(describe(pool.submit(tasks.echo, value).result(WAIT_S))),
        type(pool.submit(tasks.echo, value).result(WAIT_S)).__name__,
        content(describe(pool.submit(make, kind, nbytes, 6).result(WAIT_S))),
    ]


@pytest.mark.parametrize("backend", ["thread", "inline"])
def test_thread_and_inline_backends_give_identical_results(
    make_pool: PoolMaker, backend: str
) -> None:
    process = make_pool(1)
    other = make_pool(1, backend=backend)
    for kind in KINDS:
        for nbytes in sizes(kind):
            if kind == "memoryview":
                continue  # bytes on these backends: see test_memoryview_keeps_its_type...
            assert _answers(other, kind, nbytes) == _answers(process, kind, nbytes), (
                kind,
                nbytes,
            )


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("below-threshold"),
        pytest.param("threshold-0"),
        pytest.param("thread"),
        pytest.param("inline"),
    ],
)
def test_memoryview_keeps_its_type_on_the_pipe(make_pool: PoolMaker, path: str) -> None:
    all_options: dict[str, dict[str, Any]] = {
        "below-threshold": {},
        "threshold-0": {"shm_threshold": 0},
        "thread": {"backend": "thread"},
        "inline": {"backend": "inline"},
    }
    options = all_options[path]
    pool = make_pool(1, **options)
    nbytes = THRESHOLD - 1 if path == "below-threshold" else THRESHOLD
    value = make("memoryview", nbytes)
    assert pool.submit(describe, value).result(WAIT_S)["type"] == "memoryview"
    check_same(pool.submit(tasks.echo, value).result(WAIT_S), value)


def test_non_contiguous_memoryview_above_threshold(make_pool: PoolMaker) -> None:
    pool = make_pool(1)
    below = memoryview(bytearray(make("bytes", THRESHOLD)))[::2]  # THRESHOLD / 2 bytes
    pool.submit(describe, below).result(WAIT_S)  # accepted (through the pipe)
    above = memoryview(bytearray(make("bytes", 4 * THRESHOLD)))[::2]
    try:
        got = pool.submit(describe, above).result(WAIT_S)
    except SerializationError as exc:
        pytest.fail(f"refused: {exc}")
    assert got["sha256"] == describe(above)["sha256"]


def test_fortran_order_survives(make_pool: PoolMaker) -> None:
    """A Fortran-ordered array goes out of band in its own order and comes back so."""
    pool = make_pool(1)
    value = make("complex64-3d-F", 4 * MIB, 9)
    assert value.flags.f_contiguous
    assert not value.flags.c_contiguous
    result = pool.submit(tasks.echo, value).result(WAIT_S)
    assert result.flags.f_contiguous
    check_same(result, value)
