"""Adapters that give every pool the same small interface.

``start(n)`` builds an ``n``-worker pool and returns once ``n`` no-op tasks have come back
(for workerbridge: once ``wait_ready()`` says every worker is up and one no-op per worker has
returned). ``call`` submits one task and waits for it, ``submit_all`` submits every task
first and then waits for all, ``map`` runs chunks and returns the results as a list, and
``close`` shuts the pool down and waits for its processes.

Each library is imported in ``load()``, before anything is timed, so that import time is
never charged to a pool start and a child process only loads the library it measures.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any

from . import _tasks

__all__ = ["CONTENDERS", "PEERS", "Adapter", "make_adapter"]

START_METHOD = "forkserver"


class Adapter:
    """The common interface; subclasses fill in one library."""

    name = ""
    start_method = START_METHOD

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


class WorkerBridge(Adapter):
    name = "workerbridge"

    def load(self) -> None:
        from workerbridge import WorkerPool

        self._cls = WorkerPool

    def start(self, n_workers: int) -> None:
        self.pool = self._cls(n_workers, start_method=self.start_method)
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
        self.pool.close()


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


class Pebble(Adapter):
    name = "pebble"

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


class Mpire(Adapter):
    """``keep_alive=True``: without it mpire stops its workers after every ``map``."""

    name = "mpire"

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


_ADAPTERS: dict[str, type[Adapter]] = {
    cls.name: cls
    for cls in (WorkerBridge, ProcessPoolExecutor, MultiprocessingPool, Loky, Pebble, Mpire)
}
CONTENDERS: tuple[str, ...] = tuple(_ADAPTERS)
PEERS: tuple[str, ...] = tuple(name for name in CONTENDERS if name != WorkerBridge.name)
START_METHODS: dict[str, str] = {name: cls.start_method for name, cls in _ADAPTERS.items()}


def make_adapter(name: str) -> Adapter:
    adapter = _ADAPTERS[name]()
    adapter.load()
    return adapter
