"""A real HTTP/1.1 server on 127.0.0.1 for the network bridge's tests (reusable).

``HTTPTestServer`` is a ``ThreadingHTTPServer`` on port 0 with routes registered per test::

    with HTTPTestServer() as server:
        url = server.add_blob("/file", data, drop_times=1, drop_after=1000)
        ...
        assert server.route("/file").hits == 2

Routes (each one records its requests as ``Seen`` entries, so tests check on the server's
side what arrived: how many attempts, which Range, which body):

- ``add_blob``: GET/HEAD with Content-Length; ``Range: bytes=a-`` / ``a-b`` / ``-n`` answered
  206 with Content-Range (416 with ``bytes */size`` when unsatisfiable); the first
  ``failures`` requests get ``failure_status`` (5xx-then-OK); the first ``drop_times``
  bodies are cut after ``drop_after`` bytes by closing the connection; ``gzip`` compresses
  the body for clients that accept gzip (never in a 206).
- ``add_slow``: trickles ``chunk`` bytes every ``interval`` s of a declared Content-Length
  (``chunk=0``: headers, then silence). ``started`` is set when the first bytes (or the
  headers) are out, ``disconnected`` when the client went away.
- ``add_sink``: PUT/POST/PATCH upload sink: stores each body and its sha256 (``uploads``),
  answers 201 with JSON ``{"size", "sha256"}``; ``failures`` as for blobs; ``throttle``
  waits that long after each 64 KiB read (a slow reader); ``aborted`` is set when a client
  went away before its body was complete.
- ``add_echo``: answers JSON of the method, path, query, headers (lower-case) and body.
- ``add_redirect``: ``code`` with ``Location: target``.
- ``add_status``: a fixed status and body. Any other path is 404.

Shutdown (``close`` or leaving the ``with``): slow handlers stop, the accept loop ends, open
connections are shut down, and every handler thread is joined, so no thread or descriptor
outlives the server.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import select
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import urlsplit

__all__ = [
    "BlobRoute",
    "HTTPTestServer",
    "Route",
    "Seen",
    "SinkRoute",
    "SlowRoute",
    "Upload",
    "free_port",
]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)\Z")


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True)
class Upload:
    method: str
    body: bytes
    sha256: str
    headers: dict[str, str]


class Route:
    """A path's handler; counts and records what it was asked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[Seen] = []

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self.seen)

    def record(self, seen: Seen) -> int:
        """Remember ``seen``; return its number (0 for the first request)."""
        with self._lock:
            self.seen.append(seen)
            return len(self.seen) - 1

    def handle(self, handler: _Handler, seen: Seen, number: int) -> None:
        raise NotImplementedError


class BlobRoute(Route):
    def __init__(
        self,
        data: bytes,
        *,
        ranges: bool,
        failures: int,
        failure_status: int,
        drop_times: int,
        drop_after: int,
        gzip_body: bool,
    ) -> None:
        super().__init__()
        self.data = data
        self.ranges = ranges
        self.failures = failures
        self.failure_status = failure_status
        self.drop_times = drop_times
        self.drop_after = drop_after
        self.gzip_body = gzip_body
        self.drops = 0
        self.sent: list[int] = []  # body bytes sent per successful or dropped response

    def handle(self, handler: _Handler, seen: Seen, number: int) -> None:
        if number < self.failures:
            handler.reply(self.failure_status, b"try again later")
            return
        data, size = self.data, len(self.data)
        status, headers = 200, {"accept-ranges": "bytes" if self.ranges else "none"}
        spec = seen.headers.get("range")
        if spec is not None and self.ranges:
            span = _parse_range(spec, size)
            if span is None:
                handler.reply(416, b"", {"content-range": f"bytes */{size}"})
                return
            start, end = span
            data = data[start : end + 1]
            status = 206
            headers["content-range"] = f"bytes {start}-{end}/{size}"
        elif self.gzip_body and "gzip" in seen.headers.get("accept-encoding", ""):
            data = gzip.compress(data)
            headers["content-encoding"] = "gzip"
        with self._lock:
            drop = self.drops < self.drop_times
            if drop:
                self.drops += 1
        if drop:
            cut = data[: self.drop_after]
            handler.start(status, len(data), headers)
            if seen.method != "HEAD":
                handler.wfile.write(cut)
            handler.wfile.flush()
            with self._lock:
                self.sent.append(len(cut))
            handler.drop()
            return
        handler.reply(status, data, headers, head=seen.method == "HEAD")
        with self._lock:
            self.sent.append(len(data))


def _parse_range(spec: str, size: int) -> tuple[int, int] | None:
    match = _RANGE.match(spec.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last n bytes
        n = int(last)
        return (max(0, size - n), size - 1) if n and size else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if start < size and start <= end else None


class SlowRoute(Route):
    def __init__(self, size: int, chunk: int, interval: float, stop: threading.Event) -> None:
        super().__init__()
        self.size = size
        self.chunk = chunk
        self.interval = interval
        self._stop = stop
        self.started = threading.Event()
        self.disconnected = threading.Event()
        self.sent = 0

    def handle(self, handler: _Handler, seen: Seen, number: int) -> None:
        handler.start(200, self.size, {})
        handler.wfile.flush()
        handler.close_connection = True
        sent = 0
        try:
            while not self._stop.is_set():
                if self.chunk and sent < self.size:
                    n = min(self.chunk, self.size - sent)
                    handler.wfile.write(b"s" * n)
                    handler.wfile.flush()
                    sent += n
                    self.sent = sent
                self.started.set()
                if sent >= self.size and self.chunk:
                    return
                # Wait for the next tick, or for the client to go away.
                if _peer_closed(handler.connection, self.interval):
                    break
        except OSError:  # broken pipe, reset: the client is gone
            pass
        if not self._stop.is_set():
            self.disconnected.set()


def _peer_closed(sock: socket.socket, wait: float) -> bool:
    """Whether the peer closed its end, waiting up to ``wait`` s for it."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class SinkRoute(Route):
    def __init__(self, failures: int, throttle: float) -> None:
        super().__init__()
        self.failures = failures
        self.throttle = throttle  # seconds to wait after each 64 KiB of body read
        self.uploads: list[Upload] = []
        self.aborted = threading.Event()  # a client went away before its body was complete

    def handle(self, handler: _Handler, seen: Seen, number: int) -> None:
        if number < self.failures:
            handler.reply(503, b"busy")
            return
        digest = hashlib.sha256(seen.body).hexdigest()
        with self._lock:
            self.uploads.append(Upload(seen.method, seen.body, digest, seen.headers))
        answer = json.dumps({"size": len(seen.body), "sha256": digest}).encode()
        handler.reply(201, answer, {"content-type": "application/json"})


class _EchoRoute(Route):
    def handle(self, handler: _Handler, seen: Seen, number: int) -> None:
        parts = urlsplit(handler.path)
        answer = {
            "method": seen.method,
            "path": parts.path,
            "query": parts.query,
            "headers": seen.headers,
            "body_b64": base64.b64encode(seen.body).decode(),
        }
        handler.reply(200, json.dumps(answer).encode(), {"content-type": "application/json"})


class _RedirectRoute(Route):
    def __init__(self, target: str, code: int) -> None:
        super().__init__()
        self.target = target
        self.code = code

    def handle(self, handler: _Handler, seen: Seen, number: int) -> None:
        handler.reply(self.code, b"", {"location": self.target})


class _StatusRoute(Route):
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        super().__init__()
        self.status = status
        self.body = body
        self.headers = headers

    def handle(self, handler: _Handler, seen: Seen, number: int) -> None:
        handler.reply(self.status, self.body, self.headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    timeout: ClassVar[float | None] = 10  # an idle keep-alive connection ends its thread after this
    server: _Server  # type: ignore[mutable-override]  # always ours

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def _dispatch(self) -> None:
        route = self.server.app.routes.get(urlsplit(self.path).path)
        throttle = route.throttle if isinstance(route, SinkRoute) else 0.0
        try:
            body = self._read_body(throttle)
        except ConnectionError:  # the client went away mid-body
            self.close_connection = True
            if isinstance(route, SinkRoute):
                route.aborted.set()
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        seen = Seen(self.command, self.path, headers, body)
        if route is None:
            self.reply(404, b"no such thing")
            return
        route.handle(self, seen, route.record(seen))

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _dispatch

    def _read_body(self, throttle: float) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self._read_exactly(size, 0.0))
                self.rfile.readline()
        return self._read_exactly(int(self.headers.get("content-length") or 0), throttle)

    def _read_exactly(self, n: int, throttle: float) -> bytes:
        parts = []
        while n > 0:
            piece = self.rfile.read(min(n, 65536))
            if not piece:
                raise ConnectionAbortedError("body ended early")
            parts.append(piece)
            n -= len(piece)
            if throttle and self.server.app.stopping.wait(throttle):
                raise ConnectionAbortedError("server stopping")
        return b"".join(parts)

    def start(self, status: int, length: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(length))
        self.end_headers()

    def reply(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        head: bool = False,
    ) -> None:
        self.start(status, len(body), headers or {})
        if not head:
            self.wfile.write(body)
        self.wfile.flush()

    def drop(self) -> None:
        """End the connection now, mid-body: the client sees the body end early."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True
    app: HTTPTestServer

    def __init__(self, app: HTTPTestServer) -> None:
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        """Wake every handler blocked on its client: shut its socket down."""
        with self._open_lock:
            connections = list(self._open)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HTTPTestServer:
    """The server and its routes; see the module docstring."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self._stop = threading.Event()
        self._httpd = _Server(self)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="http-test-server",
        )
        self._thread.start()

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str) -> Route:
        return self.routes[path]

    def blob(self, path: str) -> BlobRoute:
        route = self.routes[path]
        assert isinstance(route, BlobRoute)
        return route

    def _add(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url(path)

    def add_blob(
        self,
        path: str,
        data: bytes,
        *,
        ranges: bool = True,
        failures: int = 0,
        failure_status: int = 503,
        drop_times: int = 0,
        drop_after: int = 0,
        gzip: bool = False,
    ) -> str:
        return self._add(
            path,
            BlobRoute(
                data,
                ranges=ranges,
                failures=failures,
                failure_status=failure_status,
                drop_times=drop_times,
                drop_after=drop_after,
                gzip_body=gzip,
            ),
        )

    def add_slow(
        self, path: str, size: int, *, chunk: int = 512, interval: float = 0.005
    ) -> SlowRoute:
        route = SlowRoute(size, chunk, interval, self._stop)
        self._add(path, route)
        return route

    def add_sink(self, path: str, *, failures: int = 0, throttle: float = 0.0) -> SinkRoute:
        route = SinkRoute(failures, throttle)
        self._add(path, route)
        return route

    def add_echo(self, path: str) -> str:
        return self._add(path, _EchoRoute())

    def add_redirect(self, path: str, target: str, code: int = 302) -> str:
        return self._add(path, _RedirectRoute(target, code))

    def add_status(
        self, path: str, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> str:
        return self._add(path, _StatusRoute(status, body, headers or {}))

    def close(self) -> None:
        self._stop.set()  # slow handlers return
        self._httpd.shutdown()  # the accept loop ends
        self._thread.join()
        self._httpd.cut_connections()  # idle keep-alive handlers wake up
        self._httpd.server_close()  # closes the listening socket, joins handler threads

    def __enter__(self) -> HTTPTestServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
