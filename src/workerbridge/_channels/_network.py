"""Channel ``network``: HTTP requests made by a worker with httpx's sync ``Client``.

The caller-side checks live in ``workerbridge._bridge._network``; what arrives here is
already valid (http/https URL, method token, str headers, bytes-like body).

- ``fetch``: one request; the whole response, in memory, as a ``Response``. Any status is a
  ``Response``, as in the browser's ``fetch``: a 4xx is returned at once, a 5xx is retried
  and, once the retries are spent, the last 5xx is returned as it is.
- ``download``: the body is streamed by the worker to a file beside ``path``, resumed with
  ``Range`` after a dropped connection (and across calls: see ``download``), checked against
  ``sha256``, and renamed onto ``path`` only when complete.
- ``upload``: a file (read by the worker) or bytes, sent as the request body with a
  ``Content-Length`` and progress per chunk sent.

Retries: a connection refused, reset or dropped mid-body, a timeout, or a 5xx answer is
retried up to ``retries`` times with exponential backoff and jitter (``_network_session``).
They apply to every method, POST included: pass ``retries=0`` for a request that must not
be sent twice.

Cancel and timeout: every chunk read or sent checks the task's cancel flag, and the
session's watch thread shuts the connection's socket down once the flag is up, so even a
worker blocked on a silent server stops within milliseconds (well inside the pool's
``kill_grace``) instead of waiting for ``request_timeout``. ``request_timeout`` (connect,
read, write) still bounds each wait on its own, so a dead server cannot hold a worker
forever when no ``timeout=`` was given.

Errors carry no request or response body, no header value (``Authorization`` included), and
no user info or query of a URL (see ``redact_url``).

httpx is imported inside the functions: the caller imports this module for ``Response``
(and unpickles results into it) without paying for httpx.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, final

import msgspec

from .._exceptions import ChecksumMismatchError, HTTPStatusError, NetworkError, OperationError
from .._worker import TaskContext, current_task, operation
from ._network_session import (
    Retry,
    Session,
    content_length,
    local_io,
    raise_for_status,
    redact_url,
    status_message,
)
from ._results import FileResult

if TYPE_CHECKING:
    import httpx

__all__ = ["Response", "redact_url"]

#: Bytes read from a file per chunk (upload, hashing a resumed .part).
_FILE_CHUNK = 256 * 1024
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)\s*\Z", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)\s*\Z", re.IGNORECASE)


@final
class Response(msgspec.Struct, frozen=True):
    """An HTTP response: ``status``, ``headers`` (lower-case names; repeated headers joined
    with ``", "``), the whole ``body`` (decoded from its Content-Encoding) and the final
    ``url`` (after redirects)."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def text(self, encoding: str | None = None) -> str:
        """The body as text: in ``encoding``, else the charset of Content-Type, else UTF-8;
        bytes that do not decode become U+FFFD."""
        if encoding is None:
            match = _CHARSET.search(self.headers.get("content-type", ""))
            encoding = match.group(1) if match else "utf-8"
        try:
            return self.body.decode(encoding, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (UTF-8/16/32 detected). Raises ``ValueError``
        (``json.JSONDecodeError``) if it is not JSON."""
        return json.loads(self.body)

    def raise_for_status(self) -> None:
        """Raise ``HTTPStatusError("HTTP <status> <reason> for <url>")`` unless the status
        is below 400."""
        if self.status >= 400:
            raise HTTPStatusError(status_message(self.status, "", self.url))

    def __repr__(self) -> str:
        # Not the default repr: the body may be large or private.
        url = redact_url(self.url)
        return f"Response(status={self.status}, url={url!r}, body={len(self.body)} bytes)"


# ---------------------------------------------------------------------- the operations


@operation("network", "fetch")
def fetch(
    url: str,
    method: str,
    headers: dict[str, str],
    body: bytes | bytearray | memoryview | None,
    retries: int,
    backoff: float,
    request_timeout: float,
) -> Response:
    """One request; see ``NetworkBridge.fetch``. Progress: body bytes received of
    Content-Length (none without one)."""
    content = None if body is None else bytes(body)
    with Session(current_task(), retries, backoff, request_timeout, redirects=True) as session:

        def attempt(last: bool) -> Response:
            with session.stream(method, url, headers, content) as response:
                if response.status_code >= 500 and not last:
                    raise Retry(f"HTTP {response.status_code}")
                return _to_response(response, _read_body(session, response, progress=True))

        return session.run(f"{method} {redact_url(url)}", attempt)


@operation("network", "download")
def download(
    url: str,
    path: str,
    resume: bool,
    sha256: str | None,
    headers: dict[str, str],
    retries: int,
    backoff: float,
    request_timeout: float,
) -> FileResult:
    """Stream ``url`` to ``path``; see ``NetworkBridge.download``.

    With ``resume`` the body goes to ``<path>.part``, held under an exclusive ``flock`` (a
    second download of the same path waits for the first), and a failure or cancel leaves
    it for the next call to continue. Without it the body goes to a temporary name that is
    removed on any failure. Only a complete, verified file is renamed onto ``path``.
    """
    ctx = current_task()
    if resume:
        temp = path + ".part"
        file = _open_part(temp, ctx)
    else:
        temp = f"{path}.{secrets.token_hex(6)}.wb-tmp"
        with local_io(temp):
            file = open(temp, "x+b", buffering=0)  # noqa: SIM115 - closed in the finally below
    part = _Part(file, ctx, want_hash=sha256 is not None)
    done = keep = False
    try:
        with Session(ctx, retries, backoff, request_timeout, redirects=True) as session:
            session.run(
                f"GET {redact_url(url)}", lambda _last: part.fetch(session, url, headers, resume)
            )
        if part.size and part.reported < part.size:
            ctx.report(part.size, part.size)
        if sha256 is not None:
            digest = part.sha256()
            if digest != sha256:
                raise ChecksumMismatchError(
                    f"sha256 of {redact_url(url)} is {digest}, expected {sha256}"
                )
        ctx.raise_if_cancelled()
        with local_io(path):
            os.fsync(file.fileno())  # the data is on disk before the name points at it
            os.replace(temp, path)
        done = True
        return FileResult(path, part.received, part.size)
    except ChecksumMismatchError:
        raise  # the .part is wrong: removed below even when resuming
    except BaseException:
        keep = resume and part.size > 0
        raise
    finally:
        # Remove before closing: the flock is released on close, and a download waiting for
        # it must not take over a file that is about to go.
        if not done and not keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        file.close()


@operation("network", "upload")
def upload(
    url: str,
    source: str | bytes | bytearray | memoryview,
    method: str,
    headers: dict[str, str],
    retries: int,
    backoff: float,
    request_timeout: float,
) -> Response:
    """Send a file (``source`` is its path; the worker reads it) or bytes as the body; see
    ``NetworkBridge.upload``. Progress: body bytes sent of the body's size."""
    ctx = current_task()
    file: IO[bytes] | None = None
    if isinstance(source, str):
        with local_io(source):
            opened = file = open(source, "rb")  # noqa: SIM115 - closed in the finally below
        size, name = os.fstat(opened.fileno()).st_size, source

        def read(offset: int, n: int) -> bytes:
            with local_io(name):
                piece = os.pread(opened.fileno(), n, offset)
            if not piece:
                raise OperationError(f"{name} shrank from {size} to {offset} bytes while sent")
            return piece
    else:
        data = memoryview(source).cast("B")
        size = data.nbytes

        def read(offset: int, n: int) -> bytes:
            return bytes(data[offset : offset + n])

    request_headers = {"content-type": "application/octet-stream", **headers}
    request_headers["content-length"] = str(size)

    def body() -> Iterator[bytes]:
        # A new generator per attempt: a retry sends the body again from its start.
        sent = 0
        while sent < size:
            ctx.raise_if_cancelled()
            piece = read(sent, min(_FILE_CHUNK, size - sent))
            yield piece  # returns once httpx has written it to the socket
            sent += len(piece)
            ctx.report(sent, size)

    try:
        with Session(ctx, retries, backoff, request_timeout, redirects=False) as session:

            def attempt(_last: bool) -> Response:
                with session.stream(method, url, request_headers, body()) as response:
                    raise_for_status(response)
                    return _to_response(response, _read_body(session, response, progress=False))

            return session.run(f"{method} {redact_url(url)}", attempt)
    finally:
        if file is not None:
            file.close()


# ---------------------------------------------------------------------- downloads


class _Part:
    """The file a download writes: its size, the bytes received over the network, and the
    sha256 of its first ``_hashed`` bytes (kept in step while appending when it can, caught
    up from the file at the end otherwise, e.g. for a .part left by an earlier call)."""

    def __init__(self, file: IO[bytes], ctx: TaskContext, *, want_hash: bool) -> None:
        self.file = file
        self.ctx = ctx
        self.size = os.fstat(file.fileno()).st_size
        self.received = 0
        self.reported = 0
        self._hasher = hashlib.sha256() if want_hash else None
        self._hashed = 0

    def restart(self) -> None:
        with local_io("the .part file"):
            os.ftruncate(self.file.fileno(), 0)
        self.size = self._hashed = 0
        if self._hasher is not None:
            self._hasher = hashlib.sha256()

    def fetch(self, session: Session, url: str, headers: dict[str, str], resume: bool) -> None:
        """One attempt: request the missing part (all of it without ``resume``) and append
        it. Raises Retry for what is worth another attempt."""
        if not resume and self.size:
            self.restart()  # no Range without resume: every attempt starts again
        offset = self.size
        request = {**headers, "accept-encoding": "identity"}  # Range counts encoded bytes
        if offset:
            request["range"] = f"bytes={offset}-"
        with session.stream("GET", url, request, None) as response:
            status = response.status_code
            if status == 416 and offset:
                match = _UNSATISFIED_RANGE.match(response.headers.get("content-range", ""))
                if match and int(match.group(1)) == offset:
                    return  # the .part is already the whole file
                self.restart()
                raise Retry("the server refused the range", free=True)
            raise_for_status(response)
            if not 200 <= status < 300:  # 1xx/3xx that httpx did not handle: no body to save
                raise HTTPStatusError(
                    status_message(status, response.reason_phrase, str(response.url))
                )
            total = self._expect(response, offset)
            for chunk in response.iter_raw():
                self.ctx.raise_if_cancelled()
                self._append(chunk)
                if total:
                    self.reported = min(self.size, total)
                    self.ctx.report(self.reported, total)
            if total is not None and self.size < total:  # a 206 of less than asked for
                raise Retry(f"the body ended at byte {self.size} of {total}")

    def _expect(self, response: httpx.Response, offset: int) -> int | None:
        """Where the body goes, from the status: appended after a 206 for our range, from
        byte 0 after a 200. The file's full size, if the server says it."""
        if response.status_code == 206:
            match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
            if match is None or int(match.group(1)) != self.size:
                if not offset:
                    raise NetworkError(
                        f"GET {redact_url(str(response.url))}: 206 with an unusable "
                        "Content-Range for a request without Range"
                    )
                self.restart()
                raise Retry("the server sent another range than asked for", free=True)
            return None if match.group(3) == "*" else int(match.group(3))
        if self.size:
            self.restart()  # the server ignored Range: it sends the whole file again
        length = content_length(response)
        return length

    def _append(self, chunk: bytes) -> None:
        with local_io("the .part file"):
            # Straight to the file, not through a buffer: what was reported is in the file,
            # even if the worker is killed next.
            view, fd, at = memoryview(chunk), self.file.fileno(), self.size
            while view:
                written = os.pwrite(fd, view, at)
                view, at = view[written:], at + written
        if self._hasher is not None and self._hashed == self.size:
            self._hasher.update(chunk)
            self._hashed += len(chunk)
        self.size += len(chunk)
        self.received += len(chunk)

    def sha256(self) -> str:
        """The sha256 of the whole file (reading the part not hashed while appending)."""
        assert self._hasher is not None
        fd = self.file.fileno()
        while self._hashed < self.size:
            self.ctx.raise_if_cancelled()
            n = min(_FILE_CHUNK, self.size - self._hashed)
            with local_io("the .part file"):
                piece = os.pread(fd, n, self._hashed)
            if not piece:
                raise OperationError("the .part file shrank while it was being verified")
            self._hasher.update(piece)
            self._hashed += len(piece)
        return self._hasher.hexdigest()


def _open_part(path: str, ctx: TaskContext) -> IO[bytes]:
    """Open ``path`` (created if missing) under an exclusive flock, waiting for another
    download of the same file to let go of it (checking for cancel while waiting)."""
    while True:
        with local_io(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    ctx.raise_if_cancelled()
                    time.sleep(0.01)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            return open(fd, "r+b", buffering=0)
        # The holder renamed or removed the file while we waited: open the one now there.
        os.close(fd)


# ---------------------------------------------------------------------- helpers


def _read_body(session: Session, response: httpx.Response, *, progress: bool) -> bytes:
    """The whole (decoded) body, checking for cancel per chunk; with ``progress``, raw bytes
    received are reported against Content-Length."""
    length = content_length(response) if progress else None
    parts = []
    for chunk in response.iter_bytes():
        session.ctx.raise_if_cancelled()
        parts.append(chunk)
        if length:
            session.ctx.report(min(response.num_bytes_downloaded, length), length)
    if length:
        session.ctx.report(length, length)  # HEAD, or a body that shrank when decoded
    return b"".join(parts)


def _to_response(response: httpx.Response, body: bytes) -> Response:
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():  # names come lower-cased
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Response(response.status_code, headers, body, str(response.url))
