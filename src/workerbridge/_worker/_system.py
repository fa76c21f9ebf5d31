"""The built-in ``system`` channel: operations the pool itself uses (health probes)."""

from __future__ import annotations

import os

from ._registry import operation

__all__ = ["echo", "ping"]


@operation("system", "ping")
def ping() -> int:
    """Answer with the worker's pid (the canary and health probe)."""
    return os.getpid()


@operation("system", "echo")
def echo(value: object) -> object:
    """Return the argument unchanged (round-trip checks)."""
    return value
