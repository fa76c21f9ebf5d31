"""Channel operations: named handlers that tasks can call as ``(channel, operation)``.

A channel is a module that registers its handlers with ``@operation(channel, name)`` when
imported. Workers import a channel's module lazily, the first time one of its operations is
requested, so a worker pays only for the channels it uses. The same handler functions run in
worker processes, on threads and inline: the fallback is another backend, never a second
copy of the logic.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["lookup", "operation", "register_channel"]

F = TypeVar("F", bound=Callable[..., Any])

_handlers: dict[tuple[str, str], Callable[..., Any]] = {}
#: The built-in channels. They are named here, not imported: a worker imports a channel's
#: module only when one of its operations is first requested.
_channel_modules: dict[str, str] = {
    "system": "workerbridge._worker._system",
    "crypto": "workerbridge._channels._crypto",
    "file": "workerbridge._channels._file",
    "compression": "workerbridge._channels._compression",
    "network": "workerbridge._channels._network",
}


def register_channel(channel: str, module: str) -> None:
    """Declare that ``module`` registers the operations of ``channel`` when imported."""
    _channel_modules[channel] = module


def operation(channel: str, name: str) -> Callable[[F], F]:
    """Register the decorated function as ``channel.name``."""

    def decorate(fn: F) -> F:
        _handlers[(channel, name)] = fn
        return fn

    return decorate


def lookup(channel: str, name: str) -> Callable[..., Any]:
    """The handler of ``channel.name``, importing the channel's module if needed.

    Raises:
        LookupError: no such channel or operation.
    """
    handler = _handlers.get((channel, name))
    if handler is None:
        module = _channel_modules.get(channel)
        if module is None:
            raise LookupError(f"unknown channel {channel!r}")
        importlib.import_module(module)
        handler = _handlers.get((channel, name))
        if handler is None:
            raise LookupError(f"channel {channel!r} has no operation {name!r}")
    return handler
