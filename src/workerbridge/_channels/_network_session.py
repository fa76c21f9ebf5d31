"""What the network channel's operations share: one operation's httpx client with its retry
loop and cancel watch (``Session``), and the wording of its errors.

Retries: ``Session.run`` calls an attempt until it returns. A connection refused, reset or
dropped mid-body, a timeout, or a ``Retry`` raised by the attempt (a 5xx answer) is tried
again up to ``retries`` times after ``backoff * 2**n`` seconds (capped at MAX_BACKOFF_S),
with equal jitter so that many workers retrying together spread out.

Cancel: a watch thread looks at the task's cancel flag every WATCH_INTERVAL_S and, once it
is up, shuts down every socket the client opened (``shutdown`` wakes a thread blocked in
``recv``/``send``; ``close`` would not). The attempt then fails inside httpx and ``run``
raises the task's cancel instead of retrying. The backoff wait wakes up for it too.

Error messages carry no body, no header value and no user info or query of a URL.
"""

from __future__ import annotations

import contextlib
import http
import random
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from .._exceptions import HTTPStatusError, NetworkError, OperationError
from .._worker import TaskContext

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_BACKOFF_S",
    "Retry",
    "Session",
    "content_length",
    "local_io",
    "raise_for_status",
    "redact_url",
    "status_message",
]

T = TypeVar("T")

#: The longest delay between two attempts (or ``backoff`` itself, if larger).
MAX_BACKOFF_S = 5.0
#: How often the watch thread looks at the cancel flag: well below the pool's default
#: kill_grace of 0.1 s, so a cancelled transfer stops before its worker would be killed.
WATCH_INTERVAL_S = 0.01
#: httpcore trace events whose return value is a new network stream (see Session._trace).
STREAM_EVENTS = frozenset(
    {
        "connection.connect_tcp.complete",
        "connection.connect_unix_socket.complete",
        "connection.start_tls.complete",
    }
)


def redact_url(url: str) -> str:
    """``url`` as error messages show it: without user info (``user:password@``), and with
    the query reduced to ``?...`` (signed URLs carry their tokens there); no fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}{'?...' if parts.query else ''}"


class Retry(Exception):  # noqa: N818 - a signal to Session.run, never raised out of it
    """An attempt failed in a way worth another try. ``error`` is what to raise once the
    retries are spent (a NetworkError naming the reason when None); ``free`` attempts
    (restarting a download from byte 0) use no retry and wait no backoff."""

    def __init__(self, reason: str, error: OperationError | None = None, free: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.free = free


class Session:
    """One operation's httpx client, its retry loop and the watch that cuts its connections
    when the task is asked to stop."""

    def __init__(
        self,
        ctx: TaskContext,
        retries: int,
        backoff: float,
        request_timeout: float,
        *,
        redirects: bool,
    ) -> None:
        import httpx

        self.ctx = ctx
        self._retries = retries
        self._backoff = backoff
        self._streams: list[Any] = []
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._stopped = threading.Event()  # set by the watch once the task must stop
        self.client = httpx.Client(timeout=request_timeout, follow_redirects=redirects)
        self._watch = threading.Thread(
            target=self._watch_loop, name="workerbridge-network-watch", daemon=True
        )

    def __enter__(self) -> Session:
        self._watch.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._finished.set()
        self._watch.join()
        self.client.close()

    def stream(
        self, method: str, url: str, headers: dict[str, str], content: Any
    ) -> contextlib.AbstractContextManager[httpx.Response]:
        return self.client.stream(
            method, url, headers=headers, content=content, extensions={"trace": self._trace}
        )

    def run(self, what: str, attempt: Callable[[bool], T]) -> T:
        """``attempt(last)`` until it returns, retrying as the module says; ``last`` tells
        the attempt that no retry will follow it.

        Raises:
            NetworkError: a connection error or timeout after the last retry, or one not
                worth retrying (too many redirects, an undecodable body).
            TaskCancelledError: the task was cancelled or timed out.
        """
        import httpx

        failures = 0
        while True:
            self.ctx.raise_if_cancelled()
            try:
                return attempt(failures >= self._retries)
            except Retry as retry:
                failure = retry
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                self.ctx.raise_if_cancelled()  # a connection cut by the watch is a cancel
                if not worth_retrying(exc):
                    raise NetworkError(f"{what} failed: {describe(exc)}") from None
                failure = Retry(describe(exc))
            if failure.free:
                continue
            if failures >= self._retries:
                if failure.error is not None:
                    raise failure.error from None
                attempts = f"{failures + 1} attempt{'s' if failures else ''}"
                raise NetworkError(f"{what} failed after {attempts}: {failure.reason}") from None
            self._pause(failures)
            failures += 1

    def _pause(self, failures: int) -> None:
        cap = max(MAX_BACKOFF_S, self._backoff)
        delay = min(cap, self._backoff * 2 ** min(failures, 32))  # 2**n of a huge n overflows
        # Equal jitter: at least half the delay, so a retry never comes right back.
        self._stopped.wait(delay * (0.5 + random.random() / 2))
        self.ctx.raise_if_cancelled()

    # -------------------------------------------------------- the watch
    def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event in STREAM_EVENTS and info.get("return_value") is not None:
            with self._lock:
                self._streams.append(info["return_value"])
            if self._stopped.is_set():  # connected just as the task was cancelled
                self._cut()

    def _watch_loop(self) -> None:
        while not self._finished.wait(WATCH_INTERVAL_S):
            if self.ctx.cancelled:
                self._stopped.set()
                self._cut()
                return

    def _cut(self) -> None:
        # shutdown() wakes a thread blocked in recv/send on the socket (close() would not);
        # httpx then raises, and run() turns that into the task's cancel.
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            sock = stream.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def local_io(name: str) -> Iterator[None]:
    """Turn an OSError of the local file system (disk full, no permission, a vanished
    file) into an OperationError, which crosses to the caller as itself."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OperationError(f"{name}: {reason} (errno {exc.errno})") from None


def raise_for_status(response: httpx.Response) -> None:
    """A 5xx is worth a retry (HTTPStatusError once they are spent); a 4xx is final."""
    status = response.status_code
    if status >= 400:
        error = HTTPStatusError(status_message(status, response.reason_phrase, str(response.url)))
        if status >= 500:
            raise Retry(f"HTTP {status}", error)
        raise error


def status_message(status: int, reason: str, url: str) -> str:
    reason = "".join(ch for ch in reason if ch.isprintable())[:80]
    if not reason:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "(no reason given)"
    return f"HTTP {status} {reason} for {redact_url(url)}"


def content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def worth_retrying(exc: BaseException) -> bool:
    import httpx

    # Not LocalProtocolError (our request is at fault), UnsupportedProtocol, InvalidURL,
    # TooManyRedirects, DecodingError: trying again gives the same answer.
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def describe(exc: BaseException) -> str:
    """What went wrong, for an error message: a kind and httpx's message, except for errors
    whose message may quote what we sent (LocalProtocolError can quote a header)."""
    import httpx

    kinds: list[tuple[type[BaseException], str]] = [
        (httpx.TimeoutException, "timed out"),
        (httpx.ConnectError, "could not connect"),
        (httpx.RemoteProtocolError, "connection lost"),
        (httpx.NetworkError, "connection lost"),
        (httpx.TooManyRedirects, "too many redirects"),
        (httpx.UnsupportedProtocol, "redirected to an unsupported URL"),
        (httpx.DecodingError, "could not decode the response body"),
        (httpx.InvalidURL, "invalid URL"),
    ]
    kind = next((text for cls, text in kinds if isinstance(exc, cls)), "request failed")
    if isinstance(exc, httpx.LocalProtocolError):
        return f"{kind} ({type(exc).__name__})"
    detail = "".join(ch for ch in str(exc) if ch.isprintable())[:200]
    return (
        f"{kind} ({type(exc).__name__}: {detail})" if detail else f"{kind} ({type(exc).__name__})"
    )
