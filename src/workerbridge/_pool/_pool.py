"""``WorkerPool``: the public face of the pool. It checks arguments and delegates to the core.

```
submit(fn, *args) --pickle args, resolve fn--> TaskRecord --> core queue (priority, deadline)
      |                                                            | scheduler (least-busy,
      v                                                            v  round-robin, affinity)
  TaskHandle  <--result / error--  I/O thread  <--Response--  worker process
      ^                                 |
      +------ on_progress (in order) ---+<--Progress-- (current_task().report())
```

The facade keeps no state of its own beyond the core, so the core's threads do not keep the
facade alive: a pool dropped without ``close()`` is terminated by its finalizer, and pools
still open at interpreter exit are terminated before ``multiprocessing`` tears down.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import pickle
import sys
import time
import warnings
import weakref
from collections.abc import Callable, Hashable, Iterable
from types import TracebackType
from typing import Any, Literal, TypeVar, TypeVarTuple, Unpack, final

import cloudpickle

from .._backends import (
    Backend,
    BackendOptions,
    InlineBackend,
    ProcessBackend,
    SharedMemoryChannel,
    ThreadBackend,
)
from .._exceptions import SerializationError, SharedMemoryError, ValidationError
from .._protocol import DEFAULT_MAX_MESSAGE_BYTES, ShmRef
from .._shared import AbortSignal, SharedCancellation
from .._transport import (
    DEFAULT_SHM_THRESHOLD,
    MovedBuffers,
    SharedBuffer,
    copied_on_load,
    dumps_out_of_band,
    has_large_buffer,
    has_memoryview,
    restore_moved,
)
from ._core import PoolConfig, PoolCore
from ._map import MapIterator
from ._scheduler import STRATEGIES
from ._stats import PoolStats
from ._task import ProgressInfo, TaskHandle, TaskRecord

__all__ = ["WorkerPool"]

Ts = TypeVarTuple("Ts")
R = TypeVar("R")
T = TypeVar("T")

BackendName = Literal["process", "thread", "inline"]
_EMPTY_ARGS = pickle.dumps((), protocol=pickle.HIGHEST_PROTOCOL)
_live_cores: weakref.WeakSet[PoolCore] = weakref.WeakSet()
_fallback_warned = False


def _function_reference(fn: Callable[..., Any]) -> str | None:
    """``"module:qualname"`` if a worker can import ``fn`` by name, else None."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return f"{module}:{qualname}" if obj is fn else None


@functools.lru_cache(maxsize=1024)
def _cached_reference(fn: Callable[..., Any]) -> tuple[str, bytes]:
    ref = _function_reference(fn)
    if ref is not None:
        return ref, b""
    return "", _pickle_function(fn)


def _pickle_function(fn: Callable[..., Any]) -> bytes:
    try:
        pickled: bytes = cloudpickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
        return pickled
    except Exception as exc:
        raise SerializationError(f"cannot pickle function {fn!r}: {exc}") from exc


def _encode_function(fn: Callable[..., Any]) -> tuple[str, bytes]:
    try:
        return _cached_reference(fn)
    except TypeError:  # unhashable callable: no caching
        ref = _function_reference(fn)
        return (ref, b"") if ref is not None else ("", _pickle_function(fn))


def _pickle_args(args: tuple[Any, ...], moved: list[str]) -> bytes:
    """Pickle the arguments for the pipe; cloudpickle for what plain pickle refuses."""
    if not args:
        return _EMPTY_ARGS
    # BaseException: an argument's __reduce__ raising SystemExit is still a bad argument.
    try:
        return pickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:
        _rewind(moved)
        try:
            pickled: bytes = cloudpickle.dumps(args, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            raise SerializationError(f"cannot pickle the task's arguments: {exc}") from exc
        return pickled


def _rewind(moved: list[str]) -> None:
    # The first attempt detached the transferred buffers; arm them again for the next.
    restore_moved(moved, moving=True)
    moved.clear()


def _pickle_out_of_band(
    args: tuple[Any, ...], shm: SharedMemoryChannel | None, moved: list[str]
) -> tuple[bytes, tuple[ShmRef, ...], tuple[str, ...]]:
    """Pickle ``args`` with its large buffers copied into shared-memory blocks (memoryview
    arguments stay memoryviews); falls back to the pipe when shared memory is exhausted."""
    threshold = shm.threshold if shm is not None else sys.maxsize
    try:
        payload, buffers = dumps_out_of_band(args, threshold)
    except BaseException as exc:
        raise SerializationError(f"cannot pickle the task's arguments: {exc}") from exc
    if not buffers or shm is None:
        return payload, (), ()
    names: list[str] = []
    refs: list[ShmRef] = []
    try:
        for buffer in buffers:
            segment = shm.blocks.store(buffer)
            names.append(segment.name)
            refs.append(ShmRef(segment.name, 0, buffer.raw().nbytes, copied_on_load(buffer)))
    except SharedMemoryError:
        for name in names:
            shm.blocks.free(name)
        _rewind(moved)
        return _pickle_out_of_band(args, None, moved)
    return payload, tuple(refs), tuple(names)


def _positive(name: str, value: float | None, *, allow_zero: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or value != value:
        raise ValidationError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


@final
class WorkerPool:
    """A pool of workers that run Python callables off the caller's thread.

    Args:
        size: number of workers (default: the CPUs this process may use).
        backend: ``"process"`` (default; one process per worker), ``"thread"`` or
            ``"inline"`` (in the caller, for tests and debugging). When processes cannot be
            started at all, a process pool warns once and runs on threads; ``pool.backend``
            says which runs.
        strategy: ``"least-busy"`` (default) or ``"round-robin"``.
        max_queue: most tasks waiting at once; ``submit`` raises ``QueueFullError`` beyond.
        start_method: ``"forkserver"`` (default on Linux) or ``"spawn"``.
        initializer: called with ``initargs`` in each worker before it takes tasks. If it
            raises, the worker does not start; repeated failures break the pool
            (``PoolBrokenError`` with the cause).
        debug: attach remote tracebacks to task errors (``__cause__``).
        kill_grace: seconds a cancelled or timed-out task has to stop on its own before its
            worker is killed and replaced (default 0.1: a task that checks
            ``current_task().cancelled`` every few tens of milliseconds stops cleanly, and a
            stuck one is replaced within about 0.15 s of its timeout; raise it for tasks
            whose cleanup takes longer).
        heartbeat_interval / heartbeat_timeout: a worker whose heartbeat thread has been
            silent for ``heartbeat_timeout`` seconds (stopped, or stuck in C code holding the
            GIL) is killed and replaced; its task fails with ``WorkerCrashedError`` (reason
            ``"unresponsive"``) or is retried.
        ready_timeout: seconds a new worker has to become ready.
        max_tasks_per_worker: replace a worker after it ran this many tasks.
        max_memory_per_worker: replace a worker whose resident memory (RSS, bytes) grew
            above this; checked every ``heartbeat_interval``.
        max_errors: replace a worker after this many task errors in a row.
            Replacements happen between tasks: no task fails because of them.
        max_message_bytes: largest message on a worker's pipe; bigger arguments are
            refused at ``submit`` with ``ValidationError``.
        shm_threshold: ``bytes``, ``bytearray``, ``memoryview`` and numpy arguments and
            results of at least this many bytes travel through shared memory instead of the
            pipe (process backend; 0 turns it off). Inside the task such arguments are
            read-only and valid until the task returns; results are copied out in the
            caller. With ``/dev/shm`` full, they go through the pipe instead.

    Use it as a context manager (``with`` or ``async with``): leaving the block closes the
    pool gracefully. ``terminate()`` stops everything at once.
    """

    def __init__(
        self,
        size: int | None = None,
        *,
        backend: BackendName = "process",
        strategy: Literal["least-busy", "round-robin"] = "least-busy",
        max_queue: int | None = None,
        start_method: str | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        debug: bool = False,
        kill_grace: float = 0.1,
        heartbeat_interval: float = 0.5,
        heartbeat_timeout: float = 5.0,
        ready_timeout: float = 30.0,
        max_tasks_per_worker: int | None = None,
        max_memory_per_worker: int | None = None,
        max_errors: int | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        shm_threshold: int = DEFAULT_SHM_THRESHOLD,
    ) -> None:
        if size is None:
            size = (
                len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1
            )
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValidationError(f"size must be a positive int, got {size!r}")
        if backend not in ("process", "thread", "inline"):
            raise ValidationError(
                f"backend must be 'process', 'thread' or 'inline', got {backend!r}"
            )
        if strategy not in STRATEGIES:
            raise ValidationError(f"strategy must be one of {sorted(STRATEGIES)}, got {strategy!r}")
        if max_queue is not None and (
            isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 0
        ):
            raise ValidationError(f"max_queue must be an int >= 0 or None, got {max_queue!r}")
        for name, limit in (
            ("max_tasks_per_worker", max_tasks_per_worker),
            ("max_memory_per_worker", max_memory_per_worker),
            ("max_errors", max_errors),
            ("max_message_bytes", max_message_bytes),
        ):
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
            ):
                raise ValidationError(f"{name} must be a positive int or None, got {limit!r}")
        if initializer is not None and not callable(initializer):
            raise ValidationError(f"initializer must be callable, got {initializer!r}")
        kill_grace = _positive("kill_grace", kill_grace, allow_zero=True) or 0.0
        heartbeat_interval = _positive("heartbeat_interval", heartbeat_interval) or 0.5
        heartbeat_timeout = _positive("heartbeat_timeout", heartbeat_timeout) or 5.0
        ready_timeout = _positive("ready_timeout", ready_timeout) or 30.0
        if heartbeat_timeout <= heartbeat_interval:
            raise ValidationError("heartbeat_timeout must be longer than heartbeat_interval")
        if backend == "inline":
            size = 1
        options = BackendOptions(
            debug=debug,
            heartbeat_interval=heartbeat_interval,
            max_message_bytes=max_message_bytes,
            initializer=initializer,
            initargs=tuple(initargs),
            shm_threshold=shm_threshold,
        )
        self._debug = debug
        self._max_message_bytes = max_message_bytes
        chosen = self._make_backend(backend, options, start_method)
        config = PoolConfig(
            size,
            kill_grace=kill_grace,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            ready_timeout=ready_timeout,
            max_boot_failures=max(2, size),
            max_errors=max_errors,
            max_tasks_per_worker=max_tasks_per_worker,
            max_memory_per_worker=max_memory_per_worker,
        )
        self._core = PoolCore(chosen, config, STRATEGIES[strategy](), max_queue)  # type: ignore[arg-type]
        self._core.start()
        _live_cores.add(self._core)
        self._finalizer = weakref.finalize(self, PoolCore.terminate, self._core)

    @staticmethod
    def _make_backend(name: str, options: BackendOptions, start_method: str | None) -> Backend:
        if name == "inline":
            return InlineBackend(options)
        if name == "thread":
            return ThreadBackend(options)
        try:
            return ProcessBackend(options, start_method)
        except ValueError:
            raise
        except (OSError, ImportError) as exc:
            global _fallback_warned
            if not _fallback_warned:
                _fallback_warned = True
                warnings.warn(
                    f"workerbridge: worker processes are unavailable here ({exc}); "
                    "running tasks on threads instead",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return ThreadBackend(options)

    # ------------------------------------------------------------------ properties
    @property
    def backend(self) -> str:
        """The backend that actually runs: ``"process"``, ``"thread"`` or ``"inline"``."""
        return self._core.backend.name

    @property
    def size(self) -> int:
        return self._core.config.size

    def __repr__(self) -> str:
        queued, running, ready = self._core.counts()
        return (
            f"<WorkerPool {self._core.state} backend={self.backend} workers={ready}/{self.size}"
            f" running={running} queued={queued}>"
        )

    # ------------------------------------------------------------------ submitting
    def submit(
        self,
        fn: Callable[[Unpack[Ts]], R],
        /,
        *args: *Ts,
        timeout: float | None = None,
        priority: int = 0,
        deadline: float | None = None,
        on_progress: Callable[[ProgressInfo], object] | None = None,
        signal: object | None = None,
        retries: int = 0,
        retry_on: tuple[type[BaseException], ...] = (),
        affinity: Hashable | None = None,
    ) -> TaskHandle[R]:
        """Run ``fn(*args)`` on a worker; return its handle at once.

        Arguments for ``fn`` are positional (use ``functools.partial`` for keywords); the
        options are keyword-only:

        - ``timeout``: seconds the task may run, counted from its start. On expiry the
          handle fails with ``TaskTimeoutError`` and the task is asked to stop; after
          ``kill_grace`` its worker is killed and replaced.
        - ``priority`` (int, default 0): higher leaves the queue first.
        - ``deadline``: seconds from now by which the task must have *started*; if it is
          still queued then, it fails with ``DeadlineExceededError`` and never runs.
        - ``on_progress``: called with a ``ProgressInfo`` for each ``report()`` of the task,
          in order and never after the handle is done; on the caller's event loop when
          submitted from a coroutine, else on the pool's I/O thread (keep it short).
        - ``signal``: cancels the task when it fires: an ``asyncio.Future``, a
          ``concurrent.futures.Future`` or another ``TaskHandle``, or any object whose
          ``to_abort_signal()`` returns one of those.
        - ``retries`` (default 0): run again after a crash, a timeout or an unresponsive
          worker, at most this many times; after an exception only if it is an instance of
          a type in ``retry_on``.
        - ``affinity``: tasks with the same key run on the same worker while it lives.

        Cancel (``handle.cancel()``, ``signal``, cancelling an awaiting asyncio task): a
        queued task is removed and never runs; a running one sees
        ``current_task().cancelled`` at once and is killed with its worker if it has not
        stopped after ``kill_grace``. On a crash of its worker the task fails with
        ``WorkerCrashedError`` (or is retried); other tasks are unaffected.

        Raises:
            PoolClosedError, PoolBrokenError, QueueFullError: the task was not queued.
            SerializationError: ``fn`` or the arguments cannot be pickled.
            ValidationError: a bad option value.
        """
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, got {fn!r}")
        function, pickled = _encode_function(fn)
        return self._submit_one(
            (function, pickled, "", ""),
            args,
            (timeout, priority, deadline, on_progress, signal, retries, retry_on, affinity),
        )

    def call(
        self,
        channel: str,
        operation: str,
        /,
        *args: Any,
        timeout: float | None = None,
        priority: int = 0,
        deadline: float | None = None,
        on_progress: Callable[[ProgressInfo], object] | None = None,
        signal: object | None = None,
        retries: int = 0,
        retry_on: tuple[type[BaseException], ...] = (),
        affinity: Hashable | None = None,
    ) -> TaskHandle[Any]:
        """Run the registered channel operation ``channel.operation(*args)``; the options
        are those of ``submit``."""
        return self._submit_one(
            ("", b"", channel, operation),
            args,
            (timeout, priority, deadline, on_progress, signal, retries, retry_on, affinity),
        )

    def _submit_one(
        self,
        target: tuple[str, bytes, str, str],
        args: tuple[Any, ...],
        options: tuple[Any, ...],
    ) -> TaskHandle[Any]:
        """``submit`` and ``call`` alike: ``target`` is (function reference, pickled
        function, channel, operation), ``options`` the keyword options in ``_make_task``
        order."""
        task = self._make_task(*target, args, False, *options)
        self._submit([task])
        signal = options[4]
        if signal is not None:  # after submission: a signal that already fired cancels it
            _link_signal(signal, task.handle)
        return task.handle

    def _submit(self, tasks: list[TaskRecord]) -> None:
        """Queue ``tasks``; if the pool refuses them, undo what preparing them did (their
        shared-memory blocks, buffers moved into them)."""
        try:
            self._core.submit(tasks)
        except BaseException:
            for task in tasks:
                self._core.free_blocks(task.blocks)
                restore_moved(task.moved, moving=False)
            raise

    def _make_task(
        self,
        function: str,
        pickled: bytes,
        channel: str,
        operation: str,
        args: tuple[Any, ...],
        chunked: bool,
        timeout: float | None,
        priority: int,
        deadline: float | None,
        on_progress: Callable[[ProgressInfo], object] | None,
        signal: object | None,
        retries: int,
        retry_on: tuple[type[BaseException], ...],
        affinity: Hashable | None,
    ) -> TaskRecord:
        # Checks run only for options that were given, to keep the common submit cheap.
        if timeout is not None:
            timeout = _positive("timeout", timeout)
        if deadline is not None:
            deadline = _positive("deadline", deadline, allow_zero=True)
        if priority and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise ValidationError(f"priority must be an int, got {priority!r}")
        if on_progress is not None and not callable(on_progress):
            raise ValidationError(f"on_progress must be callable, got {on_progress!r}")
        if retries and (isinstance(retries, bool) or not isinstance(retries, int) or retries < 0):
            raise ValidationError(f"retries must be an int >= 0, got {retries!r}")
        if retry_on:
            retry_on = tuple(retry_on)
            if not all(isinstance(c, type) and issubclass(c, BaseException) for c in retry_on):
                raise ValidationError("retry_on must be a tuple of exception types")
        if affinity is not None and not isinstance(affinity, Hashable):
            raise ValidationError("affinity must be hashable")
        buffers: tuple[ShmRef, ...] = ()
        blocks: tuple[str, ...] = ()
        shm = self._core.shm
        moved: list[str] = []
        if not args:
            payload = _EMPTY_ARGS  # the tiny-task hot path: nothing to pickle or scan
        else:
            with MovedBuffers() as moved:
                if (shm is not None and has_large_buffer(args, shm.threshold)) or has_memoryview(
                    args
                ):
                    payload, buffers, blocks = _pickle_out_of_band(args, shm, moved)
                else:
                    payload = _pickle_args(args, moved)
        if len(payload) > self._max_message_bytes:
            self._core.free_blocks(blocks)
            restore_moved(moved, moving=False)
            raise ValidationError(
                f"arguments pickle to {len(payload)} bytes, above max_message_bytes="
                f"{self._max_message_bytes}"
            )
        core = self._core
        task_id = core.next_id()
        now = time.monotonic()
        loop = None
        if on_progress is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        task = TaskRecord(
            task_id,
            TaskHandle(task_id, lambda _handle: core.cancel(task), core.assist),
            function=function,
            pickled_function=pickled,
            channel=channel,
            operation=operation,
            payload=payload,
            chunked=chunked,
            priority=priority or 0,
            deadline=None if deadline is None else now + deadline,
            timeout=timeout,
            retries=retries,
            retry_on=retry_on,
            affinity=affinity,
            on_progress=on_progress,
            loop=loop,
            submitted_at=now,
        )
        if buffers:
            task.buffers = buffers
            task.blocks = blocks
        if moved:
            task.moved = tuple(moved)
        if signal is not None:
            task.cancel_token = _check_signal(signal)
        return task

    def map(
        self,
        fn: Callable[[T], R],
        iterable: Iterable[T],
        *,
        chunksize: int | Literal["auto"] = "auto",
        ordered: bool = True,
        timeout: float | None = None,
        priority: int = 0,
    ) -> MapIterator[R]:
        """``fn(item)`` for each item, in chunks; iterate the results (``for`` or
        ``async for``).

        ``chunksize="auto"`` splits the items into about four chunks per worker. Results come
        in input order with ``ordered=True``, else as chunks finish. The first failing chunk
        raises its error when reached; leaving the loop early, an exception or Ctrl-C in the
        caller cancels every chunk not yet finished (none starts after it).
        ``timeout`` applies to each chunk.
        """
        items = list(iterable)
        size: int
        if chunksize == "auto":
            size = max(1, -(-len(items) // (self.size * 4)))
        elif isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValidationError(f"chunksize must be a positive int or 'auto', got {chunksize!r}")
        else:
            size = chunksize
        function, pickled = _encode_function(fn)
        tasks = [
            self._make_task(
                function,
                pickled,
                "",
                "",
                (items[i : i + size],),
                True,
                timeout,
                priority,
                None,
                None,
                None,
                0,
                (),
                None,
            )
            for i in range(0, len(items), size)
        ]
        if tasks:
            self._submit(tasks)
        core = self._core
        return MapIterator([t.handle for t in tasks], ordered, lambda: core.cancel_many(tasks))

    # ------------------------------------------------------------------ lifecycle
    def alloc(self, size: int) -> SharedBuffer:
        """A ``SharedBuffer`` of ``size`` bytes, to fill and pass to tasks with
        ``transfer(buf)`` (moved without a copy). It is released when garbage collected,
        by ``buf.release()``, or when a task it was moved to ends without returning it.

        Raises:
            SharedMemoryError: no shared memory is available.
        """
        return SharedBuffer(size)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until every worker is ready; False on timeout.

        Raises:
            PoolBrokenError: workers cannot be started.
        """
        return self._core.wait_ready(timeout)

    def stats(self) -> PoolStats:
        """A snapshot: workers, queue depth, counts, utilization, wait/run percentiles."""
        return self._core.stats()

    def close(self, timeout: float | None = None) -> None:
        """Stop accepting tasks, fail queued ones with ``PoolClosedError``, let running ones
        finish (at most ``timeout`` seconds, then they fail with ``PoolClosedError`` too),
        and stop the workers. Idempotent."""
        self._core.close(timeout)
        self._finalizer.detach()

    def terminate(self) -> None:
        """Fail every unfinished task with ``PoolClosedError`` and kill the workers at once.
        Bounded in time; idempotent."""
        self._core.terminate()
        self._finalizer.detach()

    async def aclose(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - as close()
        """``close()`` without blocking the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close, timeout)

    def __enter__(self) -> WorkerPool:
        if self._core.state == "closed":
            raise RuntimeError("cannot enter a pool that was already closed")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()  # KeyboardInterrupt, SystemExit: do not wait for running tasks
        else:
            self.close()

    async def __aenter__(self) -> WorkerPool:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self.terminate()
        else:
            await self.aclose()


def _check_signal(signal: Any) -> str:
    """Validate ``signal``; return the name of its shared cancellation flag, if it has one
    (the worker then reads that flag itself: a cancel made in any process reaches the
    running task through shared memory, with no message).

    Raises:
        ValidationError: ``signal`` cannot be linked to a task.
    """
    if isinstance(signal, SharedCancellation):
        return signal.name
    if isinstance(signal, AbortSignal):
        return signal._token.name
    if getattr(signal, "to_abort_signal", None) is None and not callable(
        getattr(signal, "add_done_callback", None)
    ):
        raise ValidationError(
            "signal must be a SharedCancellation or its AbortSignal, an asyncio.Future, a "
            f"concurrent Future or a TaskHandle, got {signal!r}"
        )
    return ""


def _link_signal(signal: Any, handle: TaskHandle[Any]) -> None:
    """Cancel ``handle`` when ``signal`` fires in this process (at once if it already
    has)."""
    to_abort = getattr(signal, "to_abort_signal", None)
    if to_abort is not None:
        signal = to_abort()
    signal.add_done_callback(lambda _s: handle.cancel())


@atexit.register
def _terminate_live_pools() -> None:
    # Registered after multiprocessing's own exit handler, so it runs first (atexit is
    # LIFO): our workers are stopped by us, quietly, before multiprocessing joins children.
    for core in list(_live_cores):
        core.terminate()
