"""The iterator ``WorkerPool.map`` returns: synchronous and asynchronous alike."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar, final

from ._task import TaskHandle

__all__ = ["MapIterator"]

R = TypeVar("R")


@final
class MapIterator(Generic[R]):
    """Results of ``map``, one item at a time, with ``for`` or ``async for``.

    Stopping early (``break``, an exception, Ctrl-C while waiting, ``close()``) cancels
    every chunk that has not finished, so no chunk starts after it.
    """

    def __init__(
        self,
        handles: list[TaskHandle[list[R]]],
        ordered: bool,
        cancel_all: Callable[[], None] | None = None,
    ) -> None:
        self._handles = handles
        self._cancel_all = cancel_all
        self._ordered = ordered
        self._pending: deque[TaskHandle[list[R]]] = deque(handles)
        self._buffer: deque[R] = deque()
        self._unordered: Iterator[concurrent.futures.Future[Any]] | None = None
        self._generator: Iterator[R] | None = None

    def __len__(self) -> int:
        """Number of chunks."""
        return len(self._handles)

    def close(self) -> None:
        """Cancel every chunk that has not finished."""
        self._generator = None
        if self._cancel_all is not None:
            self._cancel_all()  # all at once: no chunk can start while others are cancelled
        else:
            for handle in self._handles:
                if not handle.done():
                    handle.cancel()
        self._pending.clear()
        self._buffer.clear()

    def __del__(self) -> None:
        self.close()

    # -- sync
    def __iter__(self) -> Iterator[R]:
        # Not stored: the generator refers to self, and a stored one would make a cycle that
        # keeps a loop left early from cancelling its chunks until the garbage collector
        # runs. Dropping the generator (leaving the loop) closes it, which cancels them.
        return self._generator if self._generator is not None else self._results()

    def __next__(self) -> R:
        if self._generator is None:
            self._generator = self._results()
        return next(self._generator)

    def _results(self) -> Iterator[R]:
        # A generator, so that items of a finished chunk are handed out at C speed
        # (``yield from``) rather than through a Python-level __next__ per item.
        try:
            while (handle := self._next_done_handle()) is not None:
                yield from handle.result()
        except BaseException:  # an error, Ctrl-C while waiting, or the consumer leaving
            self.close()
            raise

    def _next_done_handle(self) -> TaskHandle[list[R]] | None:
        if not self._pending:
            return None
        if self._ordered:
            handle = self._pending.popleft()
            handle.exception()  # wait (interruptible by Ctrl-C in the main thread)
            return handle
        if self._unordered is None:
            self._unordered = concurrent.futures.as_completed(list(self._pending))
        done = next(self._unordered)
        self._pending.remove(done)  # type: ignore[arg-type]
        return done  # type: ignore[return-value]

    # -- async
    def __aiter__(self) -> AsyncIterator[R]:
        return self

    async def __anext__(self) -> R:
        try:
            while not self._buffer:
                if not self._pending:
                    raise StopAsyncIteration
                if self._ordered:
                    handle = self._pending.popleft()
                    chunk = await handle
                else:
                    waiters = {h._as_asyncio_future(): h for h in self._pending}
                    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                    first = done.pop()
                    self._pending.remove(waiters[first])
                    chunk = first.result()
                self._buffer.extend(chunk)
            return self._buffer.popleft()
        except StopAsyncIteration:
            raise
        except BaseException:
            self.close()
            raise
