"""network.fetch against a real HTTP server on 127.0.0.1, on every backend: statuses,
echoed requests, redirects, retries (counted on the server), progress, argument checks,
and error messages that keep secrets out."""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workerbridge import (
    HTTPStatusError,
    NetworkError,
    ProgressInfo,
    ValidationError,
    WorkerBridge,
)
from workerbridge._channels._network import Response, redact_url

from ._http_server import HTTPTestServer, free_port

FAST = 0.001  # backoff: retries in tests wait ~1 ms, not 0.1 s


@pytest.fixture
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer() as srv:
        yield srv


def test_get_returns_status_headers_body_and_url(
    bridge: WorkerBridge, server: HTTPTestServer
) -> None:
    data = os.urandom(5000)
    url = server.add_blob("/blob", data)
    response = bridge.network.fetch(url).result(timeout=30)
    assert isinstance(response, Response)
    assert response.status == 200
    assert response.ok
    assert response.body == data
    assert response.url == url
    assert response.headers["content-length"] == "5000"
    assert all(name == name.lower() for name in response.headers)
    assert server.route("/blob").hits == 1


def test_post_sends_method_headers_and_body(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    url = server.add_echo("/echo")
    body = bytes(range(256)) * 3
    response = bridge.network.fetch(
        url + "?q=1",
        method="post",  # normalised like the browser's fetch
        headers={"X-Custom": "yes", "Content-Type": "application/x-test"},
        body=memoryview(body),
    ).result(timeout=30)
    echo = response.json()
    assert echo["method"] == "POST"
    assert echo["query"] == "q=1"
    assert echo["headers"]["x-custom"] == "yes"
    assert echo["headers"]["content-type"] == "application/x-test"
    assert echo["headers"]["content-length"] == str(len(body))
    assert base64.b64decode(echo["body_b64"]) == body


def test_other_methods_reach_the_server(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    url = server.add_echo("/echo")
    for method in ("PUT", "DELETE", "PATCH"):
        assert (
            bridge.network.fetch(url, method=method).result(timeout=30).json()["method"] == method
        )
    head = bridge.network.fetch(server.add_blob("/b", b"x" * 10), method="HEAD").result(timeout=30)
    assert (head.status, head.body, head.headers["content-length"]) == (200, b"", "10")


def test_404_is_a_response_not_an_error(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    response = bridge.network.fetch(server.url("/missing"), backoff=FAST).result(timeout=30)
    assert response.status == 404
    assert not response.ok
    assert response.body == b"no such thing"
    with pytest.raises(HTTPStatusError, match=r"^HTTP 404 Not Found for http://") as info:
        response.raise_for_status()
    assert info.value.status_code == 404


def test_redirects_are_followed(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    final = server.add_blob("/final", b"here")
    server.add_redirect("/hop2", "/final", code=307)
    start = server.add_redirect("/hop1", "/hop2", code=302)
    response = bridge.network.fetch(start).result(timeout=30)
    assert (response.status, response.body, response.url) == (200, b"here", final)


def test_5xx_is_retried_until_ok(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    url = server.add_blob("/flaky", b"finally", failures=2, failure_status=503)
    response = bridge.network.fetch(url, retries=3, backoff=FAST).result(timeout=30)
    assert (response.status, response.body) == (200, b"finally")
    assert server.route("/flaky").hits == 3


def test_last_5xx_is_returned_after_the_retries(
    bridge: WorkerBridge, server: HTTPTestServer
) -> None:
    url = server.add_blob("/down", b"", failures=100, failure_status=502)
    response = bridge.network.fetch(url, retries=2, backoff=FAST).result(timeout=30)
    assert response.status == 502
    assert response.body == b"try again later"
    assert server.route("/down").hits == 3  # one try and two retries


def test_dropped_connections_are_retried(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    data = os.urandom(100_000)
    url = server.add_blob("/drop", data, drop_times=2, drop_after=30_000)
    response = bridge.network.fetch(url, retries=2, backoff=FAST).result(timeout=30)
    assert response.body == data
    route = server.route("/drop")
    assert route.hits == 3
    assert all("range" not in seen.headers for seen in route.seen)  # fetch starts over


def test_dropped_connection_after_the_retries_is_a_network_error(
    bridge: WorkerBridge, server: HTTPTestServer
) -> None:
    url = server.add_blob("/drop", b"x" * 10_000, drop_times=5, drop_after=100)
    with pytest.raises(NetworkError, match="failed after 2 attempts: connection lost"):
        bridge.network.fetch(url, retries=1, backoff=FAST).result(timeout=30)
    assert server.route("/drop").hits == 2


def test_connection_refused_is_a_network_error_after_the_retries(bridge: WorkerBridge) -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    with pytest.raises(NetworkError) as info:
        bridge.network.fetch(url, retries=2, backoff=FAST).result(timeout=30)
    assert type(info.value) is NetworkError
    assert "failed after 3 attempts: could not connect" in str(info.value)


def test_gzip_bodies_are_decoded(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    data = b"compressible " * 1000
    response = bridge.network.fetch(server.add_blob("/gz", data, gzip=True)).result(timeout=30)
    assert response.headers["content-encoding"] == "gzip"
    assert response.body == data


def test_progress_follows_content_length(bridge: WorkerBridge, server: HTTPTestServer) -> None:
    data = os.urandom(1 << 20)
    seen: list[ProgressInfo] = []
    url = server.add_blob("/big", data)
    response = bridge.network.fetch(url, on_progress=seen.append).result(timeout=30)
    assert response.body == data
    assert seen
    assert (seen[-1].current, seen[-1].total) == (len(data), len(data))
    assert all(a.current <= b.current for a, b in itertools.pairwise(seen))


def test_response_helpers() -> None:
    latin = Response(
        200, {"content-type": "text/plain; charset=latin-1"}, "é".encode("latin-1"), "u"
    )
    assert latin.text() == "é"
    assert Response(200, {}, "é".encode(), "u").text() == "é"
    assert Response(200, {"content-type": "text/plain; charset=nope"}, b"a", "u").text() == "a"
    assert Response(200, {}, b'{"a": [1]}', "u").json() == {"a": [1]}
    with pytest.raises(ValueError):
        Response(200, {}, b"not json", "u").json()
    secret = Response(200, {}, b"SECRET-BODY", "http://u:pw@h/p?token=t")
    assert "SECRET-BODY" not in repr(secret)
    assert "pw" not in repr(secret)
    assert "token" not in repr(secret)
    Response(302, {}, b"", "u").raise_for_status()  # below 400: nothing


def test_redact_url() -> None:
    assert redact_url("https://user:pw@example.com:8443/a/b?sig=xyz#frag") == (
        "https://example.com:8443/a/b?..."
    )
    assert redact_url("http://example.com/plain") == "http://example.com/plain"


def test_errors_keep_secrets_out(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    secret = {"Authorization": "Bearer s3cret-token", "X-Api-Key": "k3y"}
    refused = f"http://user:hunter2@127.0.0.1:{free_port()}/p?sig=qu3ry"
    with pytest.raises(NetworkError) as refused_info:
        bridge.network.fetch(refused, headers=secret, body=b"PAYLOAD", retries=0).result(30)
    missing = (
        server.add_status("/missing", 404, b"PAYLOAD").replace("://", "://user:hunter2@")
        + "?sig=qu3ry"
    )
    with pytest.raises(HTTPStatusError) as status_info:
        bridge.network.download(missing, tmp_path / "out", headers=secret).result(30)
    for error in (refused_info.value, status_info.value):
        for leaked in ("s3cret", "k3y", "hunter2", "qu3ry", "PAYLOAD"):
            assert leaked not in str(error)
    assert server.route("/missing").seen[0].headers["x-api-key"] == "k3y"  # it was sent
    with pytest.raises(ValidationError) as bad_value:
        bridge.network.fetch(server.url("/"), headers={"Authorization": "Bearer s3cret\r\nX: y"})
    assert "s3cret" not in str(bad_value.value)


BAD_FETCH_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"url": 42}, "url must be a str"),
    ({"url": "ftp://example.com/x"}, "url must be an http:// or https:// URL"),
    ({"url": "file:///etc/passwd"}, "url must be an http:// or https:// URL"),
    ({"url": "http:///nohost"}, "url has no host"),
    ({"url": "http://example.com:99999/"}, "url is not a valid URL"),
    ({"url": "http://exa mple.com/"}, "url must not contain spaces"),
    ({"method": "GE T"}, "method must be an HTTP method name"),
    ({"method": 3}, "method must be an HTTP method name"),
    ({"method": "connect"}, "method 'connect' is not allowed"),
    ({"headers": [("a", "b")]}, "headers must be a mapping"),
    ({"headers": {"bad name": "v"}}, "is not a valid header name"),
    ({"headers": {"X-N": 5}}, r"headers\['X-N'\] must be a str"),
    ({"headers": {"X-N": "line\nbreak"}}, "must be printable ASCII"),
    ({"headers": {"X-N": "é"}}, "must be printable ASCII"),
    ({"headers": {"Content-Length": "3"}}, "must not set Content-Length"),
    ({"headers": {"a": "1", "A": "2"}}, "twice"),
    ({"body": "text"}, "body must be bytes, bytearray or memoryview, got str"),
    ({"retries": -1}, "retries must be an int >= 0"),
    ({"retries": True}, "retries must be an int >= 0"),
    ({"backoff": -0.5}, "backoff must be a number of seconds >= 0"),
    ({"backoff": float("nan")}, "backoff must be a number"),
    ({"request_timeout": 0}, "request_timeout must be a number of seconds > 0"),
    ({"timeout": -1}, "timeout must be a number of seconds > 0"),
    ({"on_progress": 5}, "on_progress must be callable"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_FETCH_ARGUMENTS)
def test_bad_arguments_are_refused_before_dispatch(
    bridge: WorkerBridge, kwargs: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"url": "http://127.0.0.1:1/"} | kwargs
    submitted = bridge.pool.stats().submitted
    with pytest.raises(ValidationError, match=message):
        bridge.network.fetch(**arguments)
    assert bridge.pool.stats().submitted == submitted
