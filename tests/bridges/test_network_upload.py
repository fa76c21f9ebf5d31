"""network.upload against a real HTTP server on 127.0.0.1, on every backend: bytes and
files arrive whole (sha256 checked on the server), with Content-Length and progress;
retries send the body again; error statuses raise."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, cast

import pytest

from workerbridge import HTTPStatusError, ProgressInfo, ValidationError, WorkerBridge, WorkerPool

from ._http_server import HTTPTestServer

FAST = 0.001  # backoff: retries in tests wait ~1 ms, not 0.1 s


@pytest.fixture
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer() as srv:
        yield srv


def test_upload_bytes(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    data = os.urandom(100_000)
    sink = server.add_sink("/up")
    seen: list[ProgressInfo] = []
    response = bridge.network.upload(server.url("/up"), data, on_progress=seen.append).result(
        timeout=30
    )
    assert response.status == 201
    assert response.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    [upload] = sink.uploads
    assert upload.method == "PUT"
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in upload.headers
    assert upload.headers["content-type"] == "application/octet-stream"
    assert (seen[-1].current, seen[-1].total) == (len(data), len(data))


def test_upload_a_file(bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path) -> None:
    data = os.urandom((1 << 20) + 123)
    source = tmp_path / "payload.bin"
    source.write_bytes(data)
    sink = server.add_sink("/up")
    seen: list[ProgressInfo] = []
    response = bridge.network.upload(
        server.url("/up"),
        source,
        method="POST",
        headers={"Content-Type": "application/x-payload"},
        on_progress=seen.append,
    ).result(timeout=30)
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    [upload] = sink.uploads
    assert (upload.method, upload.headers["content-type"]) == ("POST", "application/x-payload")
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert (seen[-1].current, seen[-1].total) == (len(data), len(data))
    assert len(seen) > 1  # reported per chunk sent, not once at the end


def test_upload_a_large_memoryview(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    data = bytearray(os.urandom(600_000))  # above the shared-memory threshold
    sink = server.add_sink("/up")
    # A pool of its own: the module's pool would keep the shared-memory block it used for
    # reuse, which the leak check would count against this test.
    backend = cast(Literal["process", "thread", "inline"], bridge.pool.stats().backend)
    with WorkerPool(1, backend=backend) as pool:
        network = WorkerBridge(pool=pool).network
        network.upload(server.url("/up"), memoryview(data)[::2]).result(timeout=30)
        network.upload(server.url("/up"), memoryview(data)).result(timeout=30)
    assert sink.uploads[0].body == bytes(data[::2])
    assert sink.uploads[1].body == bytes(data)


def test_upload_nothing(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    sink = server.add_sink("/up")
    assert bridge.network.upload(server.url("/up"), b"").result(timeout=30).status == 201
    assert (sink.uploads[0].body, sink.uploads[0].headers["content-length"]) == (b"", "0")


def test_5xx_is_retried_with_the_whole_body(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    source = tmp_path / "payload"
    source.write_bytes(data)
    sink = server.add_sink("/up", failures=2)
    response = bridge.network.upload(server.url("/up"), source, retries=2, backoff=FAST).result(30)
    assert response.status == 201
    assert [len(seen.body) for seen in sink.seen] == [len(data)] * 3
    assert sink.uploads[0].sha256 == hashlib.sha256(data).hexdigest()


def test_error_statuses_raise(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    sink = server.add_sink("/busy", failures=100)
    with pytest.raises(HTTPStatusError, match=r"^HTTP 503 Service Unavailable") as info:
        bridge.network.upload(server.url("/busy"), b"data", retries=1, backoff=FAST).result(30)
    assert info.value.status_code == 503
    assert sink.hits == 2
    denied = server.add_status("/denied", 403, b"go away")
    with pytest.raises(HTTPStatusError, match=r"^HTTP 403 Forbidden for http://"):
        bridge.network.upload(denied, b"data", backoff=FAST).result(timeout=30)
    assert server.route("/denied").hits == 1  # a 4xx is not retried


def test_redirects_are_returned_not_followed(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    server.add_sink("/up")
    url = server.add_redirect("/old", "/up", code=307)
    response = bridge.network.upload(url, b"data").result(timeout=30)
    assert (response.status, response.headers["location"]) == (307, "/up")
    assert server.route("/up").hits == 0


def test_bad_sources_are_refused_before_dispatch(bridge: WorkerBridge, tmp_path: Path) -> None:
    url = "http://127.0.0.1:1/"
    with pytest.raises(ValidationError, match="path_or_bytes is not an existing file"):
        bridge.network.upload(url, tmp_path / "missing")
    with pytest.raises(ValidationError, match="path_or_bytes is not an existing file"):
        bridge.network.upload(url, tmp_path)
    with pytest.raises(ValidationError, match=r"path_or_bytes must be a str or os\.PathLike"):
        bridge.network.upload(url, 42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="must not set content-length"):
        bridge.network.upload(url, b"x", headers={"content-length": "1"})
    with pytest.raises(ValidationError, match="method must be an HTTP method name"):
        bridge.network.upload(url, b"x", method="P U T")
