"""Cancel and timeout of network operations against a real, slow HTTP server on 127.0.0.1:
they stop promptly (the server sees the client hang up; no worker is killed or replaced,
which the leak check would see), leave no file at the target path, and keep or remove the
.part as documented. Every test synchronises on events of the server or of the operation's
own progress, never on sleeps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from workerbridge import (
    NetworkError,
    ProgressInfo,
    SharedCancellation,
    TaskCancelledError,
    TaskTimeoutError,
    WorkerBridge,
    create_cancellation_token,
)

from ._http_server import HTTPTestServer, free_port

#: A slow body that never ends within a test: 512 bytes every 2 ms of 100 MB.
ENDLESS = 100_000_000


@pytest.fixture
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer() as srv:
        yield srv


@pytest.fixture
def token() -> Iterator[tuple[SharedCancellation, Callable[[], None]]]:
    cancellation, cancel = create_cancellation_token()
    try:
        yield cancellation, cancel
    finally:
        cancellation.close()


@contextmanager
def when(event: threading.Event, action: Callable[[], object]) -> Iterator[None]:
    """Run ``action`` on a helper thread as soon as ``event`` is set (the inline backend
    runs the operation on the test's own thread, so the test cannot do it itself)."""

    def wait_then_act() -> None:
        if event.wait(30):
            action()

    helper = threading.Thread(target=wait_then_act, name="test-canceller")
    helper.start()
    try:
        yield
    finally:
        event.set()  # let the helper end even if the operation failed before the event
        helper.join()


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Wait for ``predicate`` (something the worker does after its handle has resolved)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)  # polling a condition, not timing the test
    return True


def test_cancel_stops_a_slow_download_and_keeps_its_part(
    bridge: WorkerBridge,
    server: HTTPTestServer,
    tmp_path: Path,
    token: tuple[SharedCancellation, Callable[[], None]],
) -> None:
    slow = server.add_slow("/slow", ENDLESS, chunk=512, interval=0.002)
    cancellation, cancel = token
    seen: list[ProgressInfo] = []

    def on_progress(info: ProgressInfo) -> None:
        seen.append(info)
        cancel()  # at the first bytes written to the .part

    handle = bridge.network.download(
        server.url("/slow"), tmp_path / "out", signal=cancellation, on_progress=on_progress
    )
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=30)
    assert slow.disconnected.wait(10)  # the worker hung up at once
    assert not (tmp_path / "out").exists()
    assert eventually(lambda: sorted(p.name for p in tmp_path.iterdir()) == ["out.part"])
    assert 0 < (tmp_path / "out.part").stat().st_size < ENDLESS
    assert seen[0].total == ENDLESS


def test_handle_cancel_without_resume_leaves_nothing(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    if bridge.pool.stats().backend == "inline":
        pytest.skip("an inline handle is done before cancel() can be called")
    slow = server.add_slow("/slow", ENDLESS, chunk=512, interval=0.002)
    first = threading.Event()
    handle = bridge.network.download(
        server.url("/slow"), tmp_path / "out", resume=False, on_progress=lambda _p: first.set()
    )
    assert first.wait(30)
    assert handle.cancel()
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=30)
    assert slow.disconnected.wait(10)
    assert eventually(lambda: not any(tmp_path.iterdir()))  # the temporary file is gone


def test_timeout_stops_a_slow_download(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    slow = server.add_slow("/slow", ENDLESS, chunk=512, interval=0.002)
    handle = bridge.network.download(server.url("/slow"), tmp_path / "out", timeout=0.2)
    with pytest.raises(TaskTimeoutError) as info:
        handle.result(timeout=30)
    assert not info.value.forced  # it stopped by itself, within kill_grace
    assert slow.disconnected.wait(10)
    assert not (tmp_path / "out").exists()


def test_cancel_while_the_server_says_nothing(
    bridge: WorkerBridge,
    server: HTTPTestServer,
    tmp_path: Path,
    token: tuple[SharedCancellation, Callable[[], None]],
) -> None:
    # Headers, then silence: the worker is blocked in recv(), with no chunk to check the
    # cancel flag at. The watch thread must cut the connection.
    silent = server.add_slow("/silent", 1000, chunk=0)
    cancellation, cancel = token
    with when(silent.started, cancel):
        handle = bridge.network.download(
            server.url("/silent"), tmp_path / "out", signal=cancellation, request_timeout=60
        )
        with pytest.raises(TaskCancelledError):
            handle.result(timeout=30)
    assert silent.disconnected.wait(10)
    assert not (tmp_path / "out").exists()


def test_timeout_while_the_server_says_nothing(
    bridge: WorkerBridge, server: HTTPTestServer
) -> None:
    silent = server.add_slow("/silent", 1000, chunk=0)
    handle = bridge.network.fetch(server.url("/silent"), timeout=0.2, request_timeout=60)
    with pytest.raises(TaskTimeoutError) as info:
        handle.result(timeout=30)
    assert not info.value.forced
    assert silent.disconnected.wait(10)


def test_request_timeout_bounds_each_wait(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    server.add_slow("/silent", 1000, chunk=0)
    with pytest.raises(NetworkError, match="failed after 2 attempts: timed out"):
        bridge.network.fetch(
            server.url("/silent"), request_timeout=0.1, retries=1, backoff=0.001
        ).result(timeout=30)
    assert server.route("/silent").hits == 2


def test_timeout_covers_retries_and_their_backoff(bridge: WorkerBridge) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    handle = bridge.network.fetch(url, retries=1000, backoff=0.02, timeout=0.3)
    with pytest.raises(TaskTimeoutError) as info:
        handle.result(timeout=30)
    assert not info.value.forced  # the backoff wait wakes up for the cancel


def test_cancel_a_slow_fetch(
    bridge: WorkerBridge,
    server: HTTPTestServer,
    token: tuple[SharedCancellation, Callable[[], None]],
) -> None:
    slow = server.add_slow("/slow", ENDLESS, chunk=512, interval=0.002)
    cancellation, cancel = token
    handle = bridge.network.fetch(
        server.url("/slow"), signal=cancellation, on_progress=lambda _p: cancel()
    )
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=30)
    assert slow.disconnected.wait(10)


def test_cancel_an_upload_to_a_slow_reader(
    bridge: WorkerBridge,
    server: HTTPTestServer,
    tmp_path: Path,
    token: tuple[SharedCancellation, Callable[[], None]],
) -> None:
    source = tmp_path / "big"
    source.write_bytes(b"u" * (16 << 20))
    sink = server.add_sink("/up", throttle=0.002)
    cancellation, cancel = token
    handle = bridge.network.upload(
        server.url("/up"), source, signal=cancellation, on_progress=lambda _p: cancel()
    )
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=30)
    assert sink.aborted.wait(10)  # the body was cut short, not sent to its end
    assert sink.uploads == []
