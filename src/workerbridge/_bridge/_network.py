"""The network bridge: caller-side checks and dispatch; the work runs in
``workerbridge._channels._network`` (httpx, inside the worker).

Every argument is checked here, before anything is sent to a worker: a bad one raises
``ValidationError`` naming it (header values are never quoted: they may be secrets). Each
operation is one channel call, so its handle is the pool's own: ``timeout=`` bounds the
whole operation, retries and their backoff included, and ``cancel()`` / ``signal`` stop it
within milliseconds, even while the worker waits on a silent server.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from typing import final
from urllib.parse import urlsplit

from .._channels._network import Response, redact_url
from .._channels._results import FileResult
from .._exceptions import ValidationError
from .._pool import ProgressInfo, TaskHandle, WorkerPool
from ._job import OperationOptions, call_once
from ._paths import absolute_path

__all__ = ["NetworkBridge"]

Data = bytes | bytearray | memoryview
PathLike = str | os.PathLike[str]
ProgressCallback = Callable[[ProgressInfo], object]

#: RFC 9110 token: what a method or a header name may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
#: Header values: printable ASCII and tabs; no CR/LF (header injection), no NUL.
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*\Z")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}\Z")
#: Methods the fetch standard normalises to upper case, and those it forbids.
_STANDARD_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})
_FORBIDDEN_METHODS = frozenset({"CONNECT", "TRACE", "TRACK"})
#: Headers the operations set themselves, and why.
_BODY_HEADERS = {
    "content-length": "the body's length sets it",
    "transfer-encoding": "the body's length sets it",
}
_DOWNLOAD_HEADERS = {
    **_BODY_HEADERS,
    "range": "download sends it to resume",
    "accept-encoding": "download asks for the bytes as stored (identity), so Range fits them",
}


@final
class NetworkBridge:
    """HTTP requests on the pool's workers (httpx): ``fetch``, ``download``, ``upload``.

    Common keywords: ``retries`` (default 3) is how many times a connection error, a timeout
    or a 5xx answer is tried again, after ``backoff * 2**n`` seconds (``backoff`` defaults to
    0.1; capped at 5 s) with jitter; retries apply to every method, so pass ``retries=0`` for
    a request that must not be sent twice. ``request_timeout`` (default 30 s) bounds each
    connect, read and write on its own, so that a dead server cannot hold a worker when no
    ``timeout`` was given; ``timeout`` bounds the whole operation (``TaskTimeoutError``).
    Error messages never include a body, a header value or a URL's user info and query.
    """

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: Data | None = None,
        retries: int = 3,
        backoff: float = 0.1,
        request_timeout: float = 30.0,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[Response]:
        """Send one request and return the whole response as a ``Response`` (redirects
        followed). Any status is a Response, as in the browser's ``fetch``: a 4xx at once, a
        5xx after the retries are spent (the last 5xx). Progress: response bytes received
        of Content-Length (none without one).

        Raises (through the handle):
            NetworkError: connection refused or dropped, or timed out, after the retries;
                too many redirects; a body that does not decode.
            TaskTimeoutError, TaskCancelledError: ``timeout`` passed, or it was cancelled.
        Raises ValidationError at once for a bad argument (URL not http/https, method not a
        token or CONNECT/TRACE/TRACK, headers not str to str, body not bytes-like).
        """
        options = OperationOptions(on_progress, signal, timeout)
        args = (
            _check_url(url),
            _check_method(method),
            _check_headers(headers, _BODY_HEADERS),
            _check_data("body", body) if body is not None else None,
            *_check_retry_options(retries, backoff, request_timeout),
        )
        return call_once(self._pool, "network", "fetch", args, options)

    def download(
        self,
        url: str,
        path: PathLike,
        *,
        resume: bool = True,
        sha256: str | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int = 3,
        backoff: float = 0.1,
        request_timeout: float = 30.0,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[FileResult]:
        """Stream the body of a GET of ``url`` into the file ``path`` (the worker writes it)
        and return ``FileResult(path, bytes_in, bytes_out)``: the absolute path, the bytes
        received over the network by this call, the file's size.

        Nothing appears at ``path`` until the whole body has arrived (and matched
        ``sha256``, when given): it is then renamed onto ``path``, replacing any file there.

        With ``resume`` (the default) the body goes to ``<path>.part``. After a dropped
        connection the retry asks only for the rest (``Range: bytes=<size>-``) and appends
        it when the server answers 206; a 200 starts again from byte 0, and a 416 whose
        length equals the .part means the .part is already complete. A cancel, a timeout or
        a failure (after the retries) *keeps* the .part, so that the next ``download`` of
        the same path continues where this one stopped. Two downloads of one path at the
        same time take turns (the .part is locked). Without ``resume`` every attempt starts
        from byte 0 into a temporary file that is removed on any failure or cancel: nothing
        is left behind (unless the worker is killed for ignoring a cancel, which this
        operation does not do).

        Without a Content-Length (nor a chunked body) a connection cut short cannot be told
        from the end of the body: pass ``sha256`` to be sure.

        The file holds the bytes as the server stores them: the request asks for
        ``Accept-Encoding: identity`` (ranges count those bytes), and a body the server
        compresses anyway is saved compressed.

        Progress: bytes of the file (those of a resumed .part included) of its full length
        (Content-Length or Content-Range); at the end only when the server gave no length.

        Raises (through the handle):
            HTTPStatusError: ``"HTTP <status> <reason> for <url>"`` for a 4xx at once and a
                5xx after the retries (.status_code holds the status).
            NetworkError: connection errors or timeouts after the retries.
            ChecksumMismatchError: the file's sha256 is not ``sha256``; the .part is removed.
            OperationError: the file cannot be written (disk full, no permission).
            TaskTimeoutError, TaskCancelledError: ``timeout`` passed, or it was cancelled.
        Raises ValidationError at once for a bad argument (as ``fetch``; ``path`` a folder
        or in a missing folder; ``sha256`` not 64 hex digits; a Range, Accept-Encoding,
        Content-Length or Transfer-Encoding header).
        """
        options = OperationOptions(on_progress, signal, timeout)
        if not isinstance(resume, bool):
            raise ValidationError(f"resume must be a bool, got {type(resume).__name__}")
        args = (
            _check_url(url),
            _check_output_path(path),
            resume,
            _check_sha256(sha256),
            _check_headers(headers, _DOWNLOAD_HEADERS),
            *_check_retry_options(retries, backoff, request_timeout),
        )
        return call_once(self._pool, "network", "download", args, options)

    def upload(
        self,
        url: str,
        path_or_bytes: PathLike | Data,
        *,
        method: str = "PUT",
        headers: Mapping[str, str] | None = None,
        retries: int = 3,
        backoff: float = 0.1,
        request_timeout: float = 30.0,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[Response]:
        """Send a file (given by path: the worker reads it, the data never crosses the
        pipe) or bytes as the body of a ``method`` request, with a Content-Length and a
        Content-Type of application/octet-stream unless ``headers`` sets one. Returns the
        ``Response``. Redirects are not followed (the body would have to be sent again): a
        3xx is returned as it is. A retry sends the whole body again. Progress: body bytes
        sent of the body's size.

        Raises (through the handle):
            HTTPStatusError: a 4xx at once, a 5xx after the retries.
            NetworkError: connection errors or timeouts after the retries.
            OperationError: the file cannot be read, or shrank while it was sent.
            TaskTimeoutError, TaskCancelledError: ``timeout`` passed, or it was cancelled.
        Raises ValidationError at once for a bad argument (as ``fetch``; a path that is not
        an existing file; a Content-Length or Transfer-Encoding header).
        """
        options = OperationOptions(on_progress, signal, timeout)
        source: str | Data
        if isinstance(path_or_bytes, bytes | bytearray | memoryview):
            source = _check_data("path_or_bytes", path_or_bytes)
        else:
            source = _check_input_file(path_or_bytes)
        args = (
            _check_url(url),
            source,
            _check_method(method),
            _check_headers(headers, _BODY_HEADERS),
            *_check_retry_options(retries, backoff, request_timeout),
        )
        return call_once(self._pool, "network", "upload", args, options)


# ---------------------------------------------------------------------- argument checks


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise ValidationError(f"url must be a str, got {type(url).__name__}")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ValidationError("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError as exc:
        raise ValidationError(f"url is not a valid URL ({exc}): {redact_url(url)!r}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValidationError(f"url must be an http:// or https:// URL, got {redact_url(url)!r}")
    if not parts.hostname:
        raise ValidationError(f"url has no host: {redact_url(url)!r}")
    return url


def _check_method(method: object) -> str:
    if not isinstance(method, str) or not _TOKEN.match(method):
        raise ValidationError(f"method must be an HTTP method name, got {method!r}")
    upper = method.upper()
    if upper in _FORBIDDEN_METHODS:
        raise ValidationError(f"method {method!r} is not allowed (as in the fetch standard)")
    return upper if upper in _STANDARD_METHODS else method


def _check_headers(headers: object, reserved: Mapping[str, str]) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ValidationError(
            f"headers must be a mapping of str to str, got {type(headers).__name__}"
        )
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ValidationError(f"headers: {name!r:.60} is not a valid header name")
        if not isinstance(value, str):
            raise ValidationError(f"headers[{name!r}] must be a str, got {type(value).__name__}")
        if not _HEADER_VALUE.match(value):
            # The value itself is not shown: it may be a token.
            raise ValidationError(f"headers[{name!r}] must be printable ASCII, without line breaks")
        lower = name.lower()
        if lower in reserved:
            raise ValidationError(f"headers must not set {name}: {reserved[lower]}")
        if lower in seen:
            raise ValidationError(f"headers sets {name!r} twice (names are case-insensitive)")
        seen.add(lower)
        out[lower] = value  # lower-case: the operations merge their own headers by name
    return out


def _check_data(name: str, data: object) -> Data:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValidationError(
            f"{name} must be bytes, bytearray or memoryview, got {type(data).__name__}"
        )
    if isinstance(data, memoryview) and not data.contiguous:
        return data.tobytes()  # the worker reads it as one run of bytes
    return data


def _check_retry_options(
    retries: object, backoff: object, request_timeout: object
) -> tuple[int, float, float]:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValidationError(f"retries must be an int >= 0, got {retries!r}")
    return retries, _seconds("backoff", backoff, 0.0), _seconds("request_timeout", request_timeout)


def _seconds(name: str, value: object, least: float | None = None) -> float:
    """``value`` as seconds: a finite number > 0, or >= ``least`` when given."""
    if not isinstance(value, bool) and isinstance(value, int | float):
        seconds = float(value)
        if (seconds >= least if least is not None else seconds > 0) and seconds < math.inf:
            return seconds
    bound = f">= {least:g}" if least is not None else "> 0"
    raise ValidationError(f"{name} must be a number of seconds {bound}, got {value!r}")


def _check_sha256(sha256: object) -> str | None:
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ValidationError(f"sha256 must be 64 hexadecimal digits, got {sha256!r:.80}")
    return sha256.lower()


def _check_output_path(path: object) -> str:
    value = absolute_path("path", path)
    if os.path.isdir(value):
        raise ValidationError(f"path is a folder: {value}")
    folder = os.path.dirname(value)
    if not os.path.isdir(folder):
        raise ValidationError(f"path's folder does not exist: {folder}")
    return value


def _check_input_file(path: object) -> str:
    value = absolute_path("path_or_bytes", path)
    if not os.path.isfile(value):
        raise ValidationError(f"path_or_bytes is not an existing file: {value}")
    return value
