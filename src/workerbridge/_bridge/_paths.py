"""The path argument check that the crypto and network bridges share."""

from __future__ import annotations

import os

from .._exceptions import ValidationError

__all__ = ["absolute_path"]


def absolute_path(name: str, value: object) -> str:
    """``value`` as an absolute ``str`` path, or ``ValidationError`` naming ``name``.

    Absolute because a worker's current folder is the one it started in, not the caller's.
    """
    if not isinstance(value, str | os.PathLike):
        raise ValidationError(
            f"{name} must be a str or os.PathLike, got {type(value).__name__}: give a path as text"
        )
    path = os.fspath(value)
    if not isinstance(path, str):
        raise ValidationError(f"{name} must be a str path, got {type(path).__name__}")
    if not path:
        raise ValidationError(f"{name} must not be empty")
    return os.path.abspath(path)
