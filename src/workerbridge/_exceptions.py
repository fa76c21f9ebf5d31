"""The whole error tree of workerbridge, in one place.

```
WorkerBridgeError
├── TaskError (.task_id)              a task did not produce a result
│   ├── RemoteTaskError               the task raised; .remote_type, .remote_message;
│   │                                 __cause__ = RemoteTraceback in debug mode
│   ├── TaskTimeoutError              the per-task timeout expired (also a builtin TimeoutError)
│   ├── TaskCancelledError            the task was cancelled (handle.cancel(), signal=, an
│   │                                 awaiting asyncio task cancelled) before it produced a result
│   ├── WorkerCrashedError            the worker running the task died (.pid, .exitcode,
│   │                                 .signal_name, .reason)
│   ├── DeadlineExceededError         the task's start deadline passed while it was queued;
│   │                                 it never ran
│   └── OperationError                a bridge operation failed for a reason of its own; it
│       │                             crosses from a worker as itself (type and message)
│       ├── IntegrityError            encrypted data failed authentication: tampered, wrong
│       │   │                         key or AAD, chunks reordered, duplicated or spliced
│       │   └── TruncationError       encrypted data ends before its final chunk
│       ├── NonceReuseError           this (key, nonce) pair was used before: refused
│       ├── FormatError               the input is not in the expected format (corrupt or
│       │                             unknown compressed data, not an encrypted file)
│       ├── OutputLimitError          the output would exceed max_output (decompression bomb)
│       ├── ChecksumMismatchError     data does not match its expected digest
│       └── NetworkError              a request failed (connection, timeout) after its retries
│           └── HTTPStatusError       the server answered with an error status (.status_code)
├── PoolError                         the pool cannot take or finish the task
│   ├── PoolClosedError               you closed or terminated the pool
│   ├── PoolBrokenError               workers cannot be (re)started; .__cause__ is the root cause
│   └── QueueFullError                max_queue tasks are already waiting
├── ProtocolError                     a malformed or unexpected message on the IPC channel
├── SerializationError                an argument, function or result could not be pickled
└── SharedMemoryError                 shared memory cannot be created (/dev/shm missing or
                                      full) or a shared buffer was used after its release
ValidationError (WorkerBridgeError and ValueError)   bad input to a workerbridge call
```

Names say whose doing it was: *closed* is the caller's, *broken* and *crashed* come from
outside. Misuse of the API (wrong types, re-entering a closed pool) raises the ordinary
``TypeError``/``ValueError``/``RuntimeError``; ``ValidationError`` is the ``ValueError`` for
bad values that workerbridge checks itself. The caller's own ``asyncio.CancelledError`` is
never caught or wrapped.
"""

from __future__ import annotations

from concurrent.futures import CancelledError as _FutureCancelledError

__all__ = [
    "ChecksumMismatchError",
    "DeadlineExceededError",
    "FormatError",
    "HTTPStatusError",
    "IntegrityError",
    "NetworkError",
    "NonceReuseError",
    "OperationError",
    "OutputLimitError",
    "PoolBrokenError",
    "PoolClosedError",
    "PoolError",
    "ProtocolError",
    "QueueFullError",
    "RemoteTaskError",
    "RemoteTraceback",
    "SerializationError",
    "SharedMemoryError",
    "TaskCancelledError",
    "TaskError",
    "TaskTimeoutError",
    "TruncationError",
    "ValidationError",
    "WorkerBridgeError",
    "WorkerCrashedError",
]


class WorkerBridgeError(Exception):
    """Base class of every error workerbridge raises on its own behalf."""


class TaskError(WorkerBridgeError):
    """A task ended without a result. ``task_id`` names it (``None`` before submission)."""

    def __init__(self, message: str, *, task_id: int | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions with keyword-only arguments do not survive pickling by default
        # (CPython #103061); rebuild from the stored fields instead.
        return (_rebuild, (type(self), self.__dict__, self.args))


def _rebuild(
    cls: type[BaseException], state: dict[str, object], args: tuple[object, ...]
) -> BaseException:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class RemoteTraceback(Exception):  # noqa: N818 - it carries a traceback, not an error
    """The formatted traceback of a task's exception, attached as ``__cause__`` in debug mode."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f"\n\nRemote traceback:\n{self.tb}"


class RemoteTaskError(TaskError):
    """The task raised an exception inside the worker.

    Only the exception's type name and message cross the process boundary (never its
    arguments, which may hold payload bytes or keys). ``remote_type`` is the qualified name
    of the original type (``"builtins.ValueError"``); ``is_instance_of(ValueError)`` tests
    against it. With ``debug=True`` the remote traceback is attached as ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: int | None = None,
        remote_type: str = "builtins.Exception",
        remote_message: str = "",
    ) -> None:
        super().__init__(message, task_id=task_id)
        self.remote_type = remote_type
        self.remote_message = remote_message

    def is_instance_of(self, cls: type[BaseException]) -> bool:
        """Whether the original exception was an instance of ``cls``.

        The remote type is looked up by its qualified name in this process; when it cannot
        be imported here, only an exact name match counts."""
        module, _, qualname = self.remote_type.rpartition(".")
        resolved = _resolve_type(module, qualname)
        if resolved is not None:
            return issubclass(resolved, cls)
        return f"{cls.__module__}.{cls.__qualname__}" == self.remote_type


def _resolve_type(module: str, qualname: str) -> type[BaseException] | None:
    import sys

    obj: object = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return obj
    return None


class TaskTimeoutError(TaskError, TimeoutError):
    """The task ran longer than its ``timeout``.

    Raised as soon as the timeout expires. The task was asked to stop through its cancel
    flag; if it did not stop within ``kill_grace`` its worker was killed and replaced, so the
    task may have done part of its work. ``forced`` tells whether the worker was killed.
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: int | None = None,
        timeout: float | None = None,
        forced: bool = False,
    ) -> None:
        super().__init__(message, task_id=task_id)
        self.timeout = timeout
        self.forced = forced


class TaskCancelledError(TaskError, _FutureCancelledError):
    """The task was cancelled before it produced a result.

    A queued task never ran. A running task was asked to stop (``current_task().cancelled``)
    and, if it ignored that for ``kill_grace`` seconds, its worker was killed: it may have
    done part of its work. It is also a ``concurrent.futures.CancelledError``, so code written
    for plain futures recognises it.
    """


class WorkerCrashedError(TaskError):
    """The worker process running the task died (or stopped answering) before replying.

    ``exitcode`` is the process exit status (negative for a signal, as in
    ``multiprocessing``), ``signal_name`` the signal's name (``"SIGKILL"``) when one killed
    it, ``reason`` one of ``"died"``, ``"unresponsive"``, ``"protocol"``. The worker has been
    replaced; other tasks are unaffected. The task is retried only if it asked for
    ``retries``.
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: int | None = None,
        pid: int | None = None,
        exitcode: int | None = None,
        signal_name: str | None = None,
        reason: str = "died",
        attempts: int = 1,
    ) -> None:
        super().__init__(message, task_id=task_id)
        self.pid = pid
        self.exitcode = exitcode
        self.signal_name = signal_name
        self.reason = reason
        self.attempts = attempts


class DeadlineExceededError(TaskError):
    """The task's ``deadline`` (seconds after submit by which it must start) passed while it
    was still queued. It never ran."""


class OperationError(TaskError):
    """A bridge operation (``WorkerBridge.crypto``, ``.file``, ``.compression``,
    ``.network``) failed for a reason of its own: the data, not the pool.

    Raised inside a worker, it reaches the caller as itself, not wrapped in
    ``RemoteTaskError``: only its type and message cross (never keys or payload), and the
    same error is raised on every backend. The pool never retries it.
    """


class IntegrityError(OperationError):
    """Encrypted data failed authentication: it was modified, or the key or associated data
    is wrong, or chunks were reordered, duplicated, dropped or spliced from another file.
    No plaintext of a failing chunk is ever released (a file being written is removed)."""


class TruncationError(IntegrityError):
    """Encrypted data ends before its final chunk: the file was cut short."""


class NonceReuseError(OperationError):
    """The caller passed a (key, nonce) pair that this process has already encrypted with.
    AES-GCM with a repeated nonce leaks the plaintexts and the authentication key, so the
    operation is refused before anything is encrypted."""


class FormatError(OperationError):
    """The input is not in the format the operation expects: corrupt or truncated
    compressed data, an unknown compression format, a file that is not workerbridge's
    encrypted format or has an unsupported version."""


class OutputLimitError(OperationError):
    """The operation would produce more than its ``max_output`` bytes (a decompression
    bomb); it stopped there and released nothing."""


class ChecksumMismatchError(OperationError):
    """Data does not match the digest it was expected to have (``download(sha256=...)``,
    ``verify_manifest``)."""


class NetworkError(OperationError):
    """An HTTP request failed (connection refused or dropped, timed out) after the retries
    it was allowed."""


class HTTPStatusError(NetworkError):
    """The server answered with an error status. ``status_code`` holds it; the message
    starts with ``"HTTP <status>"``."""

    def __init__(self, message: str, *, task_id: int | None = None) -> None:
        super().__init__(message, task_id=task_id)
        head = message.split(" ", 2)
        self.status_code = int(head[1]) if len(head) > 1 and head[1].isdigit() else 0


class PoolError(WorkerBridgeError):
    """The pool cannot accept or finish work."""


class PoolClosedError(PoolError):
    """The pool was closed or terminated by its owner: ``submit`` after ``close()``, a queued
    task failed by ``close()``, or any unfinished task failed by ``terminate()``."""


class PoolBrokenError(PoolError):
    """Workers cannot be started: the initializer or the worker's imports fail, or workers
    die before they are ready again and again. ``__cause__`` carries the root cause. The
    pool accepts no more work."""


class QueueFullError(PoolError):
    """``max_queue`` tasks are already waiting; raised by ``submit`` at once."""


class ProtocolError(WorkerBridgeError):
    """A frame or message on the IPC channel is malformed, too large or unexpected.

    The reader that meets one is never stopped by it: the offending worker is replaced and
    its tasks fail with ``WorkerCrashedError(reason="protocol")``."""


class SerializationError(WorkerBridgeError):
    """A task's function, arguments or result could not be pickled or unpickled. Raised by
    ``submit`` for the caller's side and as the task's error for the worker's side."""


class SharedMemoryError(WorkerBridgeError):
    """Shared memory could not be created or mapped (``/dev/shm`` missing or full), or a
    shared buffer was used after it was released or transferred."""


class ValidationError(WorkerBridgeError, ValueError):
    """An argument to a workerbridge call has a bad value; the message names it."""


def operation_error_type(name: str) -> type[OperationError] | None:
    """The ``OperationError`` subclass named ``name`` (``"workerbridge.IntegrityError"`` or
    ``"workerbridge._exceptions.IntegrityError"``), or None for any other type: only
    workerbridge's own operation errors are rebuilt in the caller, from name and message."""
    module, _, qualname = name.rpartition(".")
    if module not in ("workerbridge", __name__):
        return None
    cls = globals().get(qualname)
    if isinstance(cls, type) and issubclass(cls, OperationError):
        return cls
    return None
