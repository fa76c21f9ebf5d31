"""``submit`` and ``call``: what can run, how arguments and options are passed, what a
handle is, and how errors come back."""

from __future__ import annotations

import concurrent.futures
import functools
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from workerbridge import (
    RemoteTaskError,
    RemoteTraceback,
    SerializationError,
    TaskError,
    WorkerBridgeError,
    current_task,
)
from workerbridge.testing import tasks

from ._helpers import WAIT_S, results
from .conftest import PROCESSES, PoolFactory


def triple(x: int) -> int:
    """Defined in the test module: sent by reference or with cloudpickle, it must run."""
    return 3 * x


def make_closure(offset: int) -> Callable[[int], int]:
    def add_offset(x: int) -> int:
        return x + offset

    return add_offset


def test_importable_function_runs_with_positional_arguments(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        assert pool.submit(tasks.add, 2, 3).result(WAIT_S) == 5
        assert pool.submit(tasks.echo, {"k": [1, 2.5, b"\x00"]}).result(WAIT_S) == {
            "k": [1, 2.5, b"\x00"]
        }


@pytest.mark.parametrize(
    "fn",
    [lambda x: 3 * x, make_closure(2 * 1), triple],
    ids=["lambda", "closure", "test-module-function"],
)
def test_functions_that_workers_cannot_import_by_name(
    pool_factory: PoolFactory, fn: Callable[[int], int]
) -> None:
    with pool_factory(1) as pool:
        assert pool.submit(fn, 4).result(WAIT_S) == fn(4)


def test_registered_channel_operations(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        pid = pool.call("system", "ping").result(WAIT_S)
        if pool_factory.is_process:
            assert pid != os.getpid()
            assert pid == pool.stats().workers[0].pid
        else:
            assert pid == os.getpid()
        payload = {"nested": [1, 2.5, "x", b"\x00\xff"]}
        assert pool.call("system", "echo", payload).result(WAIT_S) == payload


def test_unknown_channel_operation_fails_the_task(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        no_op = pool.call("system", "no-such-operation")
        no_channel = pool.call("no-such-channel", "ping")
        assert isinstance(no_op.exception(WAIT_S), RemoteTaskError)
        assert "no-such-operation" in str(no_op.exception(0))
        assert isinstance(no_channel.exception(WAIT_S), RemoteTaskError)
        assert "no-such-channel" in str(no_channel.exception(0))
        assert pool.call("system", "echo", 1).result(WAIT_S) == 1


def test_unknown_option_is_a_type_error(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        with pytest.raises(TypeError):
            pool.submit(tasks.add, 1, b=2)  # type: ignore[call-arg, arg-type]
        with pytest.raises(TypeError):
            pool.call("system", "echo", 1, value=2)  # type: ignore[call-arg]
        # Keywords for the function go through functools.partial.
        assert pool.submit(functools.partial(tasks.add, b=2), 1).result(WAIT_S) == 3
        assert pool.stats().submitted == 1


def test_handle_is_a_future(pool_factory: PoolFactory) -> None:
    with pool_factory(2) as pool:
        handles = [pool.submit(tasks.square, i) for i in range(5)]
        done, not_done = concurrent.futures.wait(handles, timeout=WAIT_S)
        assert not not_done
        assert len(done) == 5
    assert all(isinstance(h, concurrent.futures.Future) for h in handles)
    assert [h.result(0) for h in handles] == [0, 1, 4, 9, 16]
    ids = [h.id for h in handles]
    assert all(isinstance(i, int) for i in ids)
    assert len(set(ids)) == len(ids)
    seen: list[object] = []
    handles[0].add_done_callback(seen.append)
    assert seen == [handles[0]]
    assert f"id={handles[0].id}" in repr(handles[0])


def test_task_sees_its_own_context(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        handle = pool.submit(tasks.task_id)
        assert handle.result(WAIT_S) == handle.id
    with pytest.raises(RuntimeError):
        current_task()  # only inside a task


def test_task_exception_comes_back_as_remote_task_error(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        handle = pool.submit(tasks.fail, "bad input")
        with pytest.raises(RemoteTaskError) as info:
            handle.result(WAIT_S)
    error = info.value
    assert isinstance(error, TaskError)
    assert isinstance(error, WorkerBridgeError)
    assert error.remote_type == "builtins.ValueError"
    assert error.remote_message == "bad input"
    assert "bad input" in str(error)
    assert error.task_id == handle.id
    assert error.is_instance_of(ValueError)
    assert error.is_instance_of(Exception)
    assert not error.is_instance_of(KeyError)
    assert not isinstance(error.__cause__, RemoteTraceback)  # only in debug mode


def test_debug_mode_attaches_the_remote_traceback(pool_factory: PoolFactory) -> None:
    with pool_factory(1, debug=True) as pool:
        handle = pool.submit(tasks.fail, "bad input")
        with pytest.raises(RemoteTaskError) as info:
            handle.result(WAIT_S)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "ValueError: bad input" in cause.tb
    assert "in fail" in cause.tb
    assert "Remote traceback" in str(cause)


def test_system_exit_in_a_task_is_that_tasks_error(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        before = pool.submit(tasks.worker_identity).result(WAIT_S)
        with pytest.raises(RemoteTaskError) as info:
            pool.submit(tasks.crash, "sysexit").result(WAIT_S)
        assert info.value.remote_type == "builtins.SystemExit"
        # The worker stayed up.
        assert pool.submit(tasks.worker_identity).result(WAIT_S) == before
        assert pool.stats().restarts == 0


def test_workers_ignore_sigint(pool_factory: PoolFactory) -> None:
    pool_factory.require(*PROCESSES, reason="a SIGINT sent to the caller's own process")
    with pool_factory(1) as pool:
        pid = pool.submit(tasks.getpid).result(WAIT_S)
        assert pool.submit(tasks.interrupt_self).result(WAIT_S) is True
        assert pool.submit(tasks.getpid).result(WAIT_S) == pid


def test_unpicklable_argument_is_refused_by_submit(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        with pytest.raises(SerializationError):
            pool.submit(tasks.echo, threading.Lock())
        assert pool.stats().submitted == 0
        assert pool.submit(tasks.echo, 1).result(WAIT_S) == 1


def test_unpicklable_result_fails_the_task(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        with pytest.raises(SerializationError):
            pool.submit(tasks.return_unpicklable).result(WAIT_S)
        assert pool.submit(tasks.echo, 1).result(WAIT_S) == 1


def test_retry_on_a_listed_exception(pool_factory: PoolFactory) -> None:
    marker = pool_factory.path("first-attempt")
    with pool_factory(1) as pool:
        handle = pool.submit(tasks.fail_once, marker, retries=1, retry_on=(ValueError,))
        assert handle.result(WAIT_S) == "ok"


def test_exceptions_are_not_retried_unless_listed(pool_factory: PoolFactory) -> None:
    markers = [pool_factory.path("a"), pool_factory.path("b")]
    with pool_factory(1) as pool:
        unlisted = pool.submit(tasks.fail_once, markers[0], retries=3)
        other = pool.submit(tasks.fail_once, markers[1], retries=3, retry_on=(KeyError,))
        for handle in (unlisted, other):
            error = handle.exception(WAIT_S)
            assert isinstance(error, RemoteTaskError)
            assert error.remote_message == "first attempt fails"


def test_retries_give_up_after_the_last_attempt(pool_factory: PoolFactory) -> None:
    with pool_factory(1) as pool:
        handle = pool.submit(tasks.fail, "always", retries=2, retry_on=(ValueError,))
        error = handle.exception(WAIT_S)
        assert isinstance(error, RemoteTaskError)
        assert error.remote_message == "always"
        assert pool.stats().failed == 1


def test_many_tasks_from_several_threads(pool_factory: PoolFactory) -> None:
    with pool_factory(2) as pool:

        def client(base: int) -> list[int]:
            handles = [pool.submit(tasks.add, base, i) for i in range(20)]
            return results(handles)

        with concurrent.futures.ThreadPoolExecutor(4) as executor:
            outcomes: list[Any] = list(executor.map(client, [0, 100, 200, 300]))
    assert outcomes == [[base + i for i in range(20)] for base in (0, 100, 200, 300)]
