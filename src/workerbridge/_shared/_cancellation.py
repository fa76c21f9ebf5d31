"""``SharedCancellation``: a cancel flag that every process sees at once, its
``AbortSignal`` view, and ``create_cancellation_token``, the seed's constructor."""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, final

from .._exceptions import SharedMemoryError, TaskCancelledError
from ._block import Block, Kind, SharedObject

__all__ = ["AbortSignal", "SharedCancellation", "create_cancellation_token"]

_log = logging.getLogger("workerbridge")


@final
class SharedCancellation(SharedObject):
    """A cancel flag in shared memory: set it anywhere, see it everywhere.

    ``cancel()`` sets the flag; ``cancelled`` reads it. Pass the token to tasks as an
    argument (it pickles as the name of its segment, mapped once per process) and poll
    ``token.cancelled`` inside them: a cancel in the parent is seen by the next poll in every
    worker, and a cancel in a worker by the next poll in the parent. The flag never goes back.

    Callbacks (``add_done_callback``) are local to a process: they run in the process that
    calls ``cancel()``, once each, or at once when registered on a token already cancelled.
    A process that only *sees* the flag set elsewhere does not run its callbacks until it
    calls ``cancel()`` itself (which is idempotent). ``to_abort_signal()`` gives the object
    that ``WorkerPool.submit(..., signal=...)`` accepts, as in the seed.

    The creator owns the memory: ``close()`` or its garbage collection releases it, after
    which every copy raises ``SharedMemoryError``; ``close()`` on a copy does nothing. A
    worker that crashes leaves the flag as it was (set or not: a single store).

    Raises:
        SharedMemoryError: no shared memory is available.
    """

    __slots__ = ("__weakref__", "_block", "_finalizer", "_flag", "_listeners")

    _block: Block
    _finalizer: weakref.finalize[[], SharedCancellation] | None

    def __init__(self) -> None:
        self._bind(Block.create(Kind.CANCELLATION, "cnl"))
        self._finalizer = weakref.finalize(self, self._block.release)

    def _bind(self, block: Block) -> None:
        self._block = block
        self._flag = block.slot(0)
        self._listeners = _listeners_for(block.name)

    @classmethod
    def _attach(cls, name: str) -> SharedCancellation:
        token = cls.__new__(cls)
        token._bind(Block.attach(name, Kind.CANCELLATION))
        token._finalizer = None
        return token

    def __reduce__(self) -> tuple[object, tuple[str]]:
        self._block.check()
        return (_attach_cancellation, (self._block.name,))

    # ------------------------------------------------------------------ the flag

    @property
    def cancelled(self) -> bool:
        """Whether any process has called ``cancel()``."""
        self._block.check()
        return self._flag.load() != 0

    def cancel(self) -> None:
        """Set the flag for every process, then run this process's callbacks that have not
        run yet. Calling it again does nothing more."""
        self._block.check()
        self._flag.store(1)
        self._listeners.fire(self)

    def add_done_callback(self, fn: Callable[[SharedCancellation], object]) -> None:
        """Call ``fn(token)`` when ``cancel()`` is called in this process, or now if the
        token is already cancelled. An exception in ``fn`` is logged and ignored."""
        self._listeners.add(fn, self, as_signal=False)

    def to_abort_signal(self) -> AbortSignal:
        """The seed's ``AbortSignal`` for this token: pass it as ``signal=``."""
        return AbortSignal(self)

    def __repr__(self) -> str:
        try:
            state = "cancelled" if self.cancelled else "not cancelled"
        except SharedMemoryError:
            state = "closed"
        return f"<SharedCancellation {self._block.name} {state}>"


@final
class AbortSignal:
    """A read-only view of a ``SharedCancellation``, as the seed's ``AbortSignal``.

    ``aborted`` (also ``cancelled``) tells whether the token was cancelled;
    ``add_done_callback(fn)`` calls ``fn(signal)`` when it is cancelled in this process,
    which is how ``WorkerPool.submit(..., signal=...)`` links it to a task. It pickles like
    its token. Get one from ``SharedCancellation.to_abort_signal()``.
    """

    __slots__ = ("_token",)

    def __init__(self, token: SharedCancellation) -> None:
        self._token = token

    @property
    def aborted(self) -> bool:
        """Whether the token was cancelled, in any process."""
        return self._token.cancelled

    @property
    def cancelled(self) -> bool:
        """The same as ``aborted``."""
        return self._token.cancelled

    def add_done_callback(self, fn: Callable[[AbortSignal], object]) -> None:
        """Call ``fn(signal)`` when the token is cancelled in this process (now if it
        already is)."""
        self._token._listeners.add(fn, self, as_signal=True)

    def raise_if_aborted(self) -> None:
        """Raise ``TaskCancelledError`` if the token was cancelled."""
        if self._token.cancelled:
            raise TaskCancelledError("the operation was aborted")

    def __reduce__(self) -> tuple[object, tuple[str]]:
        self._token._block.check()
        return (_attach_signal, (self._token.name,))

    def __repr__(self) -> str:
        return f"<AbortSignal of {self._token!r}>"


def create_cancellation_token() -> tuple[SharedCancellation, Callable[[], None]]:
    """A new ``SharedCancellation`` and the function that cancels it (the seed's
    ``createCancellationToken``)::

        cancellation, cancel = create_cancellation_token()
        handle = pool.submit(work, cancellation, signal=cancellation.to_abort_signal())
        cancel()      # the task sees cancellation.cancelled; the handle is cancelled

    Release it with ``cancellation.close()`` (or let it be garbage-collected).

    Raises:
        SharedMemoryError: no shared memory is available.
    """
    token = SharedCancellation()
    return token, token.cancel


def _attach_cancellation(name: str) -> SharedCancellation:
    return SharedCancellation._attach(name)


def _attach_signal(name: str) -> AbortSignal:
    return AbortSignal(SharedCancellation._attach(name))


# ---------------------------------------------------------------------- local callbacks


class _Listeners:
    """The callbacks registered in this process on one token, shared by every copy of it
    here (the thread and inline backends unpickle copies in the creator's process).

    Callbacks are stored without the object they were registered on, so that a token, its
    signals and their callbacks form no reference cycle: a dropped token is released by
    reference counting, not at the next cyclic collection. A callback registered through an
    ``AbortSignal`` is called with an ``AbortSignal`` of the token that fired.

    Invariant: once ``fired`` is set, ``callbacks`` stays empty; each callback runs once.
    """

    __slots__ = ("__weakref__", "callbacks", "fired", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.callbacks: list[tuple[Callable[[Any], object], bool]] = []
        self.fired = False

    def add(
        self, fn: Callable[[Any], object], target: SharedCancellation | AbortSignal, as_signal: bool
    ) -> None:
        with self.lock:
            if not self.fired and not target.cancelled:
                self.callbacks.append((fn, as_signal))
                return
        _run(fn, target)

    def fire(self, token: SharedCancellation) -> None:
        with self.lock:
            if self.fired:
                return
            self.fired = True
            callbacks, self.callbacks = self.callbacks, []
        signal = None
        for fn, as_signal in callbacks:
            if as_signal and signal is None:
                signal = AbortSignal(token)
            _run(fn, signal if as_signal else token)


def _run(fn: Callable[[Any], object], arg: object) -> None:
    try:
        fn(arg)
    except Exception:
        _log.exception("exception in a cancellation callback %r", fn)


_registry_lock = threading.Lock()
_registry: weakref.WeakValueDictionary[str, _Listeners] = weakref.WeakValueDictionary()


def _listeners_for(name: str) -> _Listeners:
    with _registry_lock:
        listeners = _registry.get(name)
        if listeners is None:
            listeners = _registry[name] = _Listeners()
        return listeners


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
