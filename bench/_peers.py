"""Adapters that give every pool the same small interface.

``start(n)`` builds an ``n``-worker pool and returns once ``n`` no-op tasks have come back
(for workerbridge: once ``wait_ready()`` says every worker is up and one no-op per worker has
returned). ``call`` submits one task and waits for it, ``submit_all`` submits every task
first and then waits for all, ``map`` runs chunks and returns the results as a list, and
``close`` shuts the pool down and waits for its processes.

For the failure workloads (a crashed worker, a task timeout) ``submit`` hands back the
library's own pending result (with a per-task ``timeout`` where the library has one),
``wait`` waits for it at most a guard time and tells what came back (a value, an error, or
nothing yet), and ``terminate`` stops the pool without waiting for lost tasks.

Each library is imported in ``load()``, before anything is timed, so that import time is
never charged to a pool start and a child process only loads the library it measures.

``payload`` tells the data workloads what to send (``bytes``, or for a configuration of
workerbridge a ``bytearray``, a numpy array or SharedBuffers moved with ``transfer()``);
``pids`` collects workerbridge's worker pids (read before closing, never timed) so that the
runner can look for shared-memory segments they left behind.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _tasks

__all__ = [
    "CONTENDERS",
    "PEERS",
    "SUBJECT",
    "VARIANTS",
    "Adapter",
    "Waited",
    "is_subject",
    "make_adapter",
]

START_METHOD = "forkserver"
SUBJECT = "workerbridge"


def is_subject(name: str) -> bool:
    """workerbridge itself or one of its configurations (never a peer)."""
    return name == SUBJECT or name.startswith(SUBJECT + " ")


@dataclass(frozen=True)
class Waited:
    """What ``Adapter.wait`` saw: ``done`` False if nothing came back within the guard."""

    done: bool
    value: Any = None
    error: BaseException | None = None


def _wait_future(future: concurrent.futures.Future[Any], guard: float) -> Waited:
    try:
        future.exception(guard)  # a workerbridge handle runs its I/O loop while it waits
    except (TimeoutError, concurrent.futures.CancelledError):
        pass
    if not future.done():
        return Waited(False)
    try:
        return Waited(True, future.result(0))
    except BaseException as exc:
        return Waited(True, error=exc)


def _wait_async_result(result: Any, guard: float) -> Waited:
    """``multiprocessing.pool.AsyncResult`` and mpire's copy of it."""
    result.wait(guard)
    if not result.ready():
        return Waited(False)
    try:
        return Waited(True, result.get(0))
    except BaseException as exc:
        return Waited(True, error=exc)


class Adapter:
    """The common interface; subclasses fill in one library."""

    name = ""
    start_method = START_METHOD
    task_timeout = False  # has a per-task timeout that stops the task
    # What the data workloads send: "bytes" for everyone; a configuration of workerbridge
    # may send a "bytearray", a "numpy" array, or SharedBuffers moved with "transfer".
    payload = "bytes"

    def __init__(self) -> None:
        # Processes that may have made shared-memory segments (``wb-<pid>-...``): the
        # runner looks for segments of theirs left in /dev/shm after the run.
        self.pids: set[int] = set()

    def load(self) -> None:
        """Import the library (not timed)."""

    def start(self, n_workers: int) -> None:
        """Construct the pool and wait until ``n_workers`` no-op tasks have returned."""
        self._construct(n_workers)
        self.submit_all(_tasks.noop, [()] * n_workers)

    def _construct(self, n_workers: int) -> None:
        raise NotImplementedError

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def submit_all(self, fn: Callable[..., Any], argss: Sequence[tuple[Any, ...]]) -> list[Any]:
        raise NotImplementedError

    def map(self, fn: Callable[[Any], Any], items: list[Any], chunksize: int) -> list[Any]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def submit(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Submit one task; return the library's pending result. ``timeout`` needs
        ``task_timeout``."""
        raise NotImplementedError

    def wait(self, pending: Any, guard: float) -> Waited:
        """Wait at most ``guard`` seconds for what ``submit`` returned."""
        raise NotImplementedError

    def terminate(self) -> None:
        """Stop the pool at once, without waiting for tasks that may never end."""
        raise NotImplementedError


class WorkerBridge(Adapter):
    name = SUBJECT
    task_timeout = True
    options: dict[str, Any] = {}  # noqa: RUF012 - read only

    def load(self) -> None:
        from workerbridge import WorkerPool

        self._cls = WorkerPool

    def start(self, n_workers: int) -> None:
        self.pool = self._cls(n_workers, start_method=self.start_method, **self.options)
        if not self.pool.wait_ready(60.0):
            raise RuntimeError("workerbridge: wait_ready() timed out")
        self.submit_all(_tasks.noop, [()] * n_workers)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.submit(fn, *args).result()

    def submit_all(self, fn: Callable[..., Any], argss: Sequence[tuple[Any, ...]]) -> list[Any]:
        submit = self.pool.submit
        handles = [submit(fn, *args) for args in argss]
        return [h.result() for h in handles]

    def map(self, fn: Callable[[Any], Any], items: list[Any], chunksize: int) -> list[Any]:
        return list(self.pool.map(fn, items, chunksize=chunksize))

    def close(self) -> None:
        self._note_pids()
        self.pool.close()

    def submit(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        return self.pool.submit(fn, *args, timeout=timeout)

    def wait(self, pending: Any, guard: float) -> Waited:
        return _wait_future(pending, guard)

    def terminate(self) -> None:
        self._note_pids()
        self.pool.terminate()

    def _note_pids(self) -> None:
        """Remember the workers' pids (never timed: called before closing)."""
        try:
            self.pids.update(w.pid for w in self.pool.stats().workers if w.pid)
        except Exception:  # a broken or closed pool: the parent's segments still count
            pass


class WorkerBridgeQuickKill(WorkerBridge):
    """The default pool but for ``kill_grace``: a timed-out task's worker is killed after
    50 ms instead of 1 s. Run only where a workload lists it (``Workload.variants``)."""

    name = f"{SUBJECT} kill_grace=0.05"
    options = {"kill_grace": 0.05}  # noqa: RUF012 - read only


class WorkerBridgeBytearray(WorkerBridge):
    """The default pool, sent a ``bytearray`` instead of ``bytes`` (data workloads)."""

    name = f"{SUBJECT} bytearray"
    payload = "bytearray"


class WorkerBridgeNumpy(WorkerBridge):
    """The default pool, sent a 1-d ``uint8`` numpy array instead of ``bytes``."""

    name = f"{SUBJECT} numpy"
    payload = "numpy"


class WorkerBridgeTransfer(WorkerBridge):
    """The default pool, sent ``SharedBuffer``s allocated once and moved with
    ``transfer()`` (each task moves its buffer back)."""

    name = f"{SUBJECT} transfer()"
    payload = "transfer"


class _Executor(Adapter):
    """Anything with the ``concurrent.futures.Executor`` interface."""

    executor: Any

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.executor.submit(fn, *args).result()

    def submit_all(self, fn: Callable[..., Any], argss: Sequence[tuple[Any, ...]]) -> list[Any]:
        submit = self.executor.submit
        futures = [submit(fn, *args) for args in argss]
        return [f.result() for f in futures]

    def map(self, fn: Callable[[Any], Any], items: list[Any], chunksize: int) -> list[Any]:
        return list(self.executor.map(fn, items, chunksize=chunksize))

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def submit(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        if timeout is not None:
            raise NotImplementedError(f"{self.name} has no per-task timeout")
        return self.executor.submit(fn, *args)

    def wait(self, pending: Any, guard: float) -> Waited:
        return _wait_future(pending, guard)

    def terminate(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


class ProcessPoolExecutor(_Executor):
    name = "ProcessPoolExecutor"

    def load(self) -> None:
        import concurrent.futures

        self._cls = concurrent.futures.ProcessPoolExecutor

    def _construct(self, n_workers: int) -> None:
        context = multiprocessing.get_context(self.start_method)
        self.executor = self._cls(max_workers=n_workers, mp_context=context)


class Loky(_Executor):
    """A fresh ``loky.ProcessPoolExecutor`` each time (``get_reusable_executor`` would
    hand back the cached one and skip the start)."""

    name = "loky"

    def load(self) -> None:
        import loky

        self._cls = loky.ProcessPoolExecutor

    def _construct(self, n_workers: int) -> None:
        context = multiprocessing.get_context(self.start_method)
        self.executor = self._cls(max_workers=n_workers, context=context)

    def terminate(self) -> None:
        self.executor.shutdown(wait=True, kill_workers=True)


class MultiprocessingPool(Adapter):
    name = "multiprocessing.Pool"

    def _construct(self, n_workers: int) -> None:
        self.pool = multiprocessing.get_context(self.start_method).Pool(n_workers)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.apply_async(fn, args).get()

    def submit_all(self, fn: Callable[..., Any], argss: Sequence[tuple[Any, ...]]) -> list[Any]:
        apply_async = self.pool.apply_async
        results = [apply_async(fn, args) for args in argss]
        return [r.get() for r in results]

    def map(self, fn: Callable[[Any], Any], items: list[Any], chunksize: int) -> list[Any]:
        return self.pool.map(fn, items, chunksize=chunksize)

    def close(self) -> None:
        self.pool.close()
        self.pool.join()

    def submit(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        if timeout is not None:
            raise NotImplementedError(f"{self.name} has no per-task timeout")
        return self.pool.apply_async(fn, args)

    def wait(self, pending: Any, guard: float) -> Waited:
        return _wait_async_result(pending, guard)

    def terminate(self) -> None:
        self.pool.terminate()
        self.pool.join()


class Pebble(Adapter):
    name = "pebble"
    task_timeout = True

    def load(self) -> None:
        import pebble

        self._cls = pebble.ProcessPool

    def _construct(self, n_workers: int) -> None:
        context = multiprocessing.get_context(self.start_method)
        self.pool = self._cls(max_workers=n_workers, context=context)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.submit(fn, None, *args).result()

    def submit_all(self, fn: Callable[..., Any], argss: Sequence[tuple[Any, ...]]) -> list[Any]:
        submit = self.pool.submit
        futures = [submit(fn, None, *args) for args in argss]
        return [f.result() for f in futures]

    def map(self, fn: Callable[[Any], Any], items: list[Any], chunksize: int) -> list[Any]:
        return list(self.pool.map(fn, items, chunksize=chunksize).result())

    def close(self) -> None:
        self.pool.close()
        self.pool.join()

    def submit(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        return self.pool.submit(fn, timeout, *args)

    def wait(self, pending: Any, guard: float) -> Waited:
        return _wait_future(pending, guard)

    def terminate(self) -> None:
        self.pool.stop()
        self.pool.join()


class Mpire(Adapter):
    """``keep_alive=True``: without it mpire stops its workers after every ``map``.
    Its per-task timeout is ``apply_async(..., task_timeout=)``."""

    name = "mpire"
    task_timeout = True

    def load(self) -> None:
        import mpire

        self._cls = mpire.WorkerPool

    def _construct(self, n_workers: int) -> None:
        self.pool = self._cls(n_jobs=n_workers, start_method=self.start_method, keep_alive=True)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.pool.apply_async(fn, args).get()

    def submit_all(self, fn: Callable[..., Any], argss: Sequence[tuple[Any, ...]]) -> list[Any]:
        apply_async = self.pool.apply_async
        results = [apply_async(fn, args) for args in argss]
        return [r.get() for r in results]

    def map(self, fn: Callable[[Any], Any], items: list[Any], chunksize: int) -> list[Any]:
        result: list[Any] = self.pool.map(fn, items, chunk_size=chunksize)
        return result

    def close(self) -> None:
        self.pool.stop_and_join()

    def submit(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        return self.pool.apply_async(fn, args, task_timeout=timeout)

    def wait(self, pending: Any, guard: float) -> Waited:
        return _wait_async_result(pending, guard)

    def terminate(self) -> None:
        self.pool.terminate()


_ADAPTERS: dict[str, type[Adapter]] = {
    cls.name: cls
    for cls in (WorkerBridge, ProcessPoolExecutor, MultiprocessingPool, Loky, Pebble, Mpire)
}
CONTENDERS: tuple[str, ...] = tuple(_ADAPTERS)
PEERS: tuple[str, ...] = tuple(name for name in CONTENDERS if not is_subject(name))
# Other configurations of workerbridge, run only by the workloads that name them.
VARIANTS: dict[str, type[Adapter]] = {
    cls.name: cls
    for cls in (
        WorkerBridgeQuickKill,
        WorkerBridgeBytearray,
        WorkerBridgeNumpy,
        WorkerBridgeTransfer,
    )
}
_ADAPTERS.update(VARIANTS)
START_METHODS: dict[str, str] = {name: cls.start_method for name, cls in _ADAPTERS.items()}


def make_adapter(name: str) -> Adapter:
    adapter = _ADAPTERS[name]()
    adapter.load()
    return adapter
