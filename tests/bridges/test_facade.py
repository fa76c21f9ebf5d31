"""``WorkerBridge``: the default instance, ``configure``, explicit instances, and the
operation errors that cross from workers as themselves."""

from __future__ import annotations

import pytest

import workerbridge
from workerbridge import (
    CompressionBridge,
    CryptoBridge,
    FileBridge,
    NetworkBridge,
    RemoteTaskError,
    ValidationError,
    WorkerBridge,
    WorkerPool,
)
from workerbridge.testing import tasks


@pytest.fixture
def fresh_default() -> object:
    """No default bridge before the test, and none left after it."""
    WorkerBridge.shutdown()
    yield None
    WorkerBridge.shutdown()
    WorkerBridge._default_options = {}


@pytest.mark.usefixtures("fresh_default")
def test_the_default_bridge_is_created_on_first_use_with_configured_options() -> None:
    WorkerBridge.configure(size=1, backend="thread")
    assert WorkerBridge._default is None  # configure alone starts nothing
    crypto = WorkerBridge.crypto
    assert isinstance(crypto, CryptoBridge)
    default = WorkerBridge.default()
    assert default.pool.size == 1
    assert default.pool.backend == "thread"
    assert WorkerBridge.file is default.file
    assert isinstance(WorkerBridge.compression, CompressionBridge)
    assert isinstance(WorkerBridge.network, NetworkBridge)
    assert WorkerBridge.default() is default


@pytest.mark.usefixtures("fresh_default")
def test_configure_after_first_use_is_refused_until_shutdown() -> None:
    WorkerBridge.configure(size=1, backend="inline")
    first = WorkerBridge.default()
    with pytest.raises(RuntimeError, match="before the default bridge is first used"):
        WorkerBridge.configure(size=2)
    WorkerBridge.shutdown()
    WorkerBridge.shutdown()  # idempotent
    WorkerBridge.configure(size=1, backend="thread")
    assert WorkerBridge.default() is not first
    assert WorkerBridge.default().pool.backend == "thread"


def test_an_explicit_bridge_runs_on_the_given_pool_and_leaves_it_open() -> None:
    with WorkerPool(1, backend="thread") as pool:
        bridge = WorkerBridge(pool=pool)
        assert bridge.pool is pool
        assert isinstance(bridge.file, FileBridge)
        bridge.close()
        assert pool.submit(tasks.add, 1, 2).result(timeout=30) == 3


def test_a_bridge_that_made_its_pool_closes_it() -> None:
    with WorkerBridge(size=1, backend="thread") as bridge:
        pool = bridge.pool
        assert pool.submit(tasks.add, 2, 2).result(timeout=30) == 4
    with pytest.raises(workerbridge.PoolClosedError):
        pool.submit(tasks.noop)


def test_pool_and_pool_options_together_are_refused() -> None:
    with WorkerPool(1, backend="inline") as pool, pytest.raises(ValidationError, match="pool"):
        WorkerBridge(pool, size=2)
    with pytest.raises(ValidationError, match="WorkerPool"):
        WorkerBridge(pool="not a pool")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "IntegrityError",
        "TruncationError",
        "NonceReuseError",
        "FormatError",
        "OutputLimitError",
        "ChecksumMismatchError",
        "NetworkError",
        "HTTPStatusError",
    ],
)
def test_operation_errors_cross_from_workers_as_themselves(bridge: WorkerBridge, name: str) -> None:
    cls = getattr(workerbridge, name)
    message = "HTTP 503 Service Unavailable for http://x" if name == "HTTPStatusError" else "why"
    handle = bridge.pool.submit(tasks.raise_error, f"workerbridge._exceptions.{name}", message)
    with pytest.raises(cls) as caught:
        handle.result(timeout=30)
    assert type(caught.value) is cls
    assert str(caught.value) == message
    assert caught.value.task_id == handle.id
    if name == "HTTPStatusError":
        assert caught.value.status_code == 503


def test_other_errors_still_arrive_as_remote_task_errors(bridge: WorkerBridge) -> None:
    handle = bridge.pool.submit(tasks.raise_error, "builtins.KeyError", "k")
    with pytest.raises(RemoteTaskError) as caught:
        handle.result(timeout=30)
    assert caught.value.remote_type == "builtins.KeyError"
    # A class of another package that merely shares the name is not rebuilt.
    handle = bridge.pool.submit(tasks.raise_error, "tests.bridges._errors.IntegrityError", "x")
    with pytest.raises(RemoteTaskError):
        handle.result(timeout=30)
