"""What the user sees when a command fails: one line on stderr and an exit code.

Exit codes (also in ``workerbridge --help``):

====  =====================================================================
0     success
1     the operation failed: missing or unreadable input, wrong key, corrupt or
      tampered data, unknown format, a checksum that does not match, a network error
2     usage: unknown option, bad option value, missing key source, conflicting options
130   interrupted by Ctrl-C (SIGINT); 143 for SIGTERM (128 + the signal number)
141   stdout was closed early (SIGPIPE, e.g. ``| head``)
====  =====================================================================

Every error becomes one line ``workerbridge: error: <what>: <why>``, never a traceback
(``WORKERBRIDGE_DEBUG=1`` adds the traceback of an unexpected error, for bug reports).
"""

from __future__ import annotations

import os

from .._exceptions import (
    IntegrityError,
    OperationError,
    PoolBrokenError,
    RemoteTaskError,
    SharedMemoryError,
    TaskCancelledError,
    TaskTimeoutError,
    ValidationError,
    WorkerBridgeError,
    WorkerCrashedError,
)

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_PIPE",
    "EXIT_USAGE",
    "CliError",
    "ItemError",
    "UsageError",
    "describe",
    "one_line",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_PIPE = 128 + 13


class CliError(Exception):
    """A failure the command itself detected, with the message to show and its exit code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CliError):
    """The command line asks for something impossible (exit code 2)."""

    exit_code = EXIT_USAGE


class ItemError(Exception):
    """An operation on one input failed; ``label`` names the input (a file, a URL)."""

    def __init__(self, label: str, error: BaseException) -> None:
        super().__init__(label)
        self.label = label
        self.error = error


def one_line(text: str) -> str:
    """``text`` on one line: an error message must not spill over several."""
    return " ".join(text.split())


def _short_type(qualified: str) -> str:
    module, _, name = qualified.rpartition(".")
    return name if module in ("builtins", "") else qualified


def _reason(exc: BaseException) -> str:
    """The human part of an error message, without the input it concerns."""
    if isinstance(exc, IntegrityError):  # TruncationError too: its message says so
        return f"decryption failed: {exc}"
    if isinstance(exc, OperationError | ValidationError | CliError):
        return str(exc)
    if isinstance(exc, TaskTimeoutError):
        return f"timed out ({exc})"
    if isinstance(exc, TaskCancelledError):
        return "the operation was cancelled"
    if isinstance(exc, WorkerCrashedError):
        how = exc.signal_name or (f"exit code {exc.exitcode}" if exc.exitcode is not None else "")
        return f"a worker process died{f' ({how})' if how else ''} while working on it"
    if isinstance(exc, PoolBrokenError):
        cause = f": {exc.__cause__}" if exc.__cause__ is not None else ""
        return f"worker processes cannot start ({exc}{cause}); try --backend thread"
    if isinstance(exc, SharedMemoryError):
        return f"shared memory is unavailable ({exc}); try --backend thread"
    if isinstance(exc, RemoteTaskError):
        return f"{_short_type(exc.remote_type)}: {exc.remote_message or exc}"
    if isinstance(exc, OSError):
        if exc.strerror:
            where = exc.filename if exc.filename is not None else None
            return f"{where}: {exc.strerror}" if where is not None else exc.strerror
        return str(exc) or type(exc).__name__
    if isinstance(exc, WorkerBridgeError):
        return f"{type(exc).__name__}: {exc}"
    hint = "" if os.environ.get("WORKERBRIDGE_DEBUG") else " (WORKERBRIDGE_DEBUG=1 shows details)"
    return f"internal error: {type(exc).__name__}: {exc}{hint}"


def describe(exc: BaseException) -> tuple[str, int]:
    """The one-line message and the exit code for ``exc``."""
    code = exc.exit_code if isinstance(exc, CliError) else EXIT_FAILURE
    if isinstance(exc, ItemError):
        inner = exc.error
        code = inner.exit_code if isinstance(inner, CliError) else EXIT_FAILURE
        reason = _reason(inner)
        # A message that already starts with the input's name says it once.
        text = reason if reason.startswith(exc.label) else f"{exc.label}: {reason}"
        return one_line(text), code
    return one_line(_reason(exc)), code
