"""The argument checks of ``FileBridge``: paths, folders, offsets and sequences of paths.

They run in the caller before anything is dispatched and raise ``ValidationError`` naming
the argument; a path check returns the path as it is dispatched (a file's with its stat).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from .._exceptions import ValidationError

__all__ = [
    "check_folder",
    "check_non_negative",
    "check_output_folder",
    "check_output_path",
    "check_regular_file",
    "check_regular_files",
]


def _path(value: object, argument: str) -> str:
    try:
        path = os.fspath(value)  # type: ignore[call-overload]
    except TypeError:
        raise ValidationError(
            f"{argument} must be a str or os.PathLike path, got {type(value).__name__}"
        ) from None
    if not isinstance(path, str):
        raise ValidationError(f"{argument} must be a str path, got {type(path).__name__}")
    if not path or "\0" in path:
        raise ValidationError(f"{argument} must be a non-empty path without NUL, got {path!r}")
    return path


def check_regular_file(value: object, argument: str) -> tuple[str, os.stat_result]:
    path = _path(value, argument)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ValidationError(f"{argument}: no such file: {path!r}") from None
    except OSError as exc:
        raise ValidationError(f"{argument}: cannot access {path!r}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(f"{argument} is not a regular file: {path!r}")
    return path, info


def check_folder(value: object, argument: str, *, writable: bool = False) -> str:
    path = _path(value, argument)
    if not os.path.isdir(path):
        what = "not a folder" if os.path.exists(path) else "no such folder"
        raise ValidationError(f"{argument}: {what}: {path!r}")
    if writable and not os.access(path, os.W_OK | os.X_OK):
        raise ValidationError(f"{argument}: cannot create files in {path!r}")
    return path


def check_output_folder(value: object, argument: str) -> str:
    """A folder to write into, existing or to be made (its nearest existing parent must be
    a writable folder then)."""
    path = _path(value, argument)
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValidationError(f"{argument}: not a folder: {existing!r}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValidationError(f"{argument}: cannot create files in {existing!r}")
    return path


def check_output_path(value: object, argument: str) -> str:
    path = _path(value, argument)
    if os.path.isdir(path):
        raise ValidationError(f"{argument} is a directory: {path!r}")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise ValidationError(f"{argument}: no such folder: {parent!r}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError(f"{argument}: cannot create files in {parent!r}")
    return path


def check_non_negative(value: object, argument: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{argument} must be an int >= 0, got {value!r}")


def _sequence(value: object, argument: str) -> Sequence[object]:
    if isinstance(value, str | bytes | os.PathLike) or not isinstance(value, Sequence):
        raise ValidationError(f"{argument} must be a sequence of paths, got {value!r}")
    return value


def check_regular_files(value: object, argument: str) -> list[tuple[str, os.stat_result]]:
    """``check_regular_file`` of each path of the sequence ``value``, named
    ``<argument>[<index>]`` in a message."""
    return [
        check_regular_file(p, f"{argument}[{i}]") for i, p in enumerate(_sequence(value, argument))
    ]
