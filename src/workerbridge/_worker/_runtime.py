"""Runs one ``Request`` and turns the outcome into one ``Response``; shared by all backends.

Nothing here knows how messages travel: the process worker, the thread backend and the
inline backend all call ``TaskRunner.run``. A task's exception, a failed lookup and a
result that cannot be pickled all become a ``Response`` with an ``ErrorInfo``; only the
death of the process itself goes unreported (the pool sees that from the process sentinel).
"""

from __future__ import annotations

import importlib
import pickle
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from .._exceptions import SharedMemoryError, TaskCancelledError
from .._protocol import ErrorInfo, ErrorKind, Progress, Request, Response, ShmRef
from .._shared import SharedCancellation
from .._transport import (
    AttachmentCache,
    BlockCache,
    TaskSide,
    copied_on_load,
    dumps_out_of_band,
    has_large_buffer,
    has_memoryview,
)
from ._context import TaskContext, _current
from ._control import ControlBlock
from ._registry import lookup

__all__ = ["TaskRunner", "error_info", "resolve_function"]

#: Pickled functions are cached by their bytes so that ``map`` over a lambda unpickles it
#: once per worker, not once per chunk. The bound keeps a stream of distinct closures from
#: growing the cache without limit.
_PICKLED_CACHE_SIZE = 64


def resolve_function(ref: str) -> Callable[..., Any]:
    """Import ``"module:qualname"`` and return the object it names.

    Raises:
        LookupError: the module or attribute does not exist.
    """
    module_name, _, qualname = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise LookupError(f"cannot find function {ref!r}: {exc}") from None
    if not callable(obj):
        raise LookupError(f"{ref!r} is not callable")
    return obj  # type: ignore[no-any-return]


def error_info(kind: ErrorKind, exc: BaseException, debug: bool) -> ErrorInfo:
    """Sanitize ``exc``: its type's qualified name and its message, never its arguments'
    objects; the traceback only in debug mode."""
    cls = type(exc)
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not stop the error from being reported
        message = f"<unprintable {cls.__qualname__}>"
    tb = "".join(traceback.format_exception(exc)) if debug else ""
    return ErrorInfo(
        kind, f"{cls.__module__}.{cls.__qualname__}", _encodable(message), _encodable(tb)
    )


def _encodable(text: str) -> str:
    # A message may hold lone surrogates (a file name that was not valid UTF-8); they
    # cannot be encoded on the wire, so show them escaped instead of losing the error.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class _LookupFailedError(Exception):
    pass


class TaskRunner:
    """Executes requests for one worker (process, thread or inline)."""

    def __init__(
        self,
        control: ControlBlock,
        send_progress: Callable[[Progress], None],
        *,
        debug: bool = False,
        shm_threshold: int = 0,
        attachments: AttachmentCache | None = None,
        results: BlockCache | None = None,
    ) -> None:
        self._shm_threshold = shm_threshold
        self._attachments = attachments
        self._results = results
        self._control = control
        self._send_progress = send_progress
        self._debug = debug
        self._functions: dict[str, Callable[..., Any]] = {}
        self._pickled: dict[bytes, Callable[..., Any]] = {}
        self._skip: set[tuple[int, int]] = set()

    @staticmethod
    def _token(name: str) -> SharedCancellation | None:
        try:
            return SharedCancellation._attach(name)
        except SharedMemoryError:
            return None  # released by its owner: nobody can cancel through it any more

    def skip(self, task_id: int, attempt: int) -> None:
        """Do not start this task if it arrives or is still waiting (a ``Cancel`` message)."""
        self._skip.add((task_id, attempt))

    def _function(self, req: Request) -> Callable[..., Any]:
        try:
            if req.function:
                fn = self._functions.get(req.function)
                if fn is None:
                    fn = self._functions[req.function] = resolve_function(req.function)
                return fn
            if req.pickled_function:
                fn = self._pickled.get(req.pickled_function)
                if fn is None:
                    if len(self._pickled) >= _PICKLED_CACHE_SIZE:
                        self._pickled.clear()
                    fn = self._pickled[req.pickled_function] = pickle.loads(req.pickled_function)
                return fn
            return lookup(req.channel, req.operation)
        except LookupError as exc:
            raise _LookupFailedError(str(exc)) from None

    def _fail(self, req: Request, kind: ErrorKind, exc: BaseException, run_ns: int = 0) -> Response:
        return Response(
            req.id, req.attempt, False, error=error_info(kind, exc, self._debug), run_ns=run_ns
        )

    def run(self, req: Request) -> Response:
        """Run ``req`` in this thread and describe the outcome.

        A request whose cancel flag or ``Cancel`` was seen before it started, or whose
        start deadline has passed, is not run at all.
        """
        seq = req.seq
        control = self._control
        if req.released and self._results is not None:
            for name in req.released:
                self._results.free(name)
        abort = self._token(req.cancel_token) if req.cancel_token else None
        if (
            control.is_cancelled(seq)
            or (req.id, req.attempt) in self._skip
            or (abort is not None and abort.cancelled)
        ):
            self._skip.discard((req.id, req.attempt))
            return self._fail(req, "cancelled", TaskCancelledError("cancelled before start"))
        if req.deadline is not None and time.monotonic() > req.deadline:
            return self._fail(
                req, "deadline", TimeoutError("start deadline passed before the task started")
            )
        control.mark_started(seq)
        try:
            fn = self._function(req)
            if req.buffers and self._attachments is not None:
                # Inputs are read-only views of the pool's blocks: zero-copy for memoryview
                # and numpy arguments, one copy for bytes and bytearray.
                views = [self._attachments.view(r.name, r.offset, r.length) for r in req.buffers]
                with TaskSide("arguments"):
                    args = pickle.loads(req.payload, buffers=views)
            else:
                with TaskSide("arguments"):
                    args = pickle.loads(req.payload)
        except _LookupFailedError as exc:
            return self._fail(req, "lookup", exc)
        except BaseException as exc:  # SystemExit from a __setstate__ is still bad input
            return self._fail(req, "serialization", exc)

        def send(current: float, total: float) -> None:
            self._send_progress(Progress(req.id, req.attempt, current, total))

        if abort is None:
            ctx = TaskContext(req.id, req.attempt, send, lambda: control.is_cancelled(seq))
        else:
            ctx = TaskContext(
                req.id,
                req.attempt,
                send,
                lambda: control.is_cancelled(seq) or abort.cancelled,
            )
        token = _current.set(ctx)
        start = time.perf_counter_ns()
        try:
            if req.chunked:
                result: Any = [fn(item) for item in args[0]]
            else:
                result = fn(*args)
        except BaseException as exc:
            # SystemExit and KeyboardInterrupt raised by the task are the task's errors, not
            # the worker's: the worker reports them and stays up.
            run_ns = time.perf_counter_ns() - start
            if isinstance(exc, TaskCancelledError) and ctx.cancelled:
                return self._fail(req, "cancelled", exc, run_ns)
            return self._fail(req, "raised", exc, run_ns)
        finally:
            _current.reset(token)
        run_ns = time.perf_counter_ns() - start
        ctx.flush()
        refs: tuple[ShmRef, ...] = ()
        try:
            with TaskSide("result"):
                if has_memoryview((result,)) or (
                    self._results is not None and has_large_buffer((result,), self._shm_threshold)
                ):
                    data, refs = self._store_result(result)
                else:
                    data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # SystemExit from a __reduce__ is still a bad result
            return self._fail(req, "serialization", exc, run_ns)
        return Response(req.id, req.attempt, True, data, None, run_ns, refs)

    def _store_result(self, result: Any) -> tuple[bytes, tuple[ShmRef, ...]]:
        """Pickle ``result`` with its large buffers in this worker's blocks (or through the
        pipe if shared memory is exhausted)."""
        results = self._results
        threshold = self._shm_threshold if results is not None else sys.maxsize
        data, buffers = dumps_out_of_band(result, threshold)
        if not buffers or results is None:
            return data, ()
        refs: list[ShmRef] = []
        try:
            for buffer in buffers:
                segment = results.store(buffer)
                refs.append(ShmRef(segment.name, 0, buffer.raw().nbytes, copied_on_load(buffer)))
        except SharedMemoryError:
            for ref in refs:
                results.free(ref.name)
            return dumps_out_of_band(result, sys.maxsize)[0], ()
        return data, tuple(refs)
