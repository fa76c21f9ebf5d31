"""Running the operations of one command: a bounded number at a time, progress summed
into one bar (plus a line per input in flight when there are several), results in input
order, the first failure stopping the rest.

Each ``Work`` starts one bridge operation and returns its handle. The bridges report
progress as ``ProgressInfo(current, total)`` in units of their own; the runner scales each
report to the input's size in bytes when it knows it (a file), or takes the operation's own
figures when it does not (a download's Content-Length, a folder's bytes). The display
appears only when the run lasts more than a moment (``_SHOW_AFTER_S``), so a quick
command does not flash a bar.

On a failure the operations still running are cancelled and the failure is raised as
``ItemError`` naming the input. On ``Interrupted`` they are cancelled too (signals are
shielded from then on) and it propagates, for the session to terminate the pool.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from .._exceptions import ValidationError
from .._pool import ProgressInfo, TaskHandle
from ._errors import ItemError, UsageError
from ._interrupt import Interrupted
from ._session import Session

__all__ = ["Outcome", "Work", "run_all"]

T = TypeVar("T")
ProgressCallback = Callable[[ProgressInfo], object]

#: A run shorter than this shows no progress display at all.
_SHOW_AFTER_S = 0.25
#: How often the waiting main thread wakes to start the display (signals interrupt the
#: wait at once regardless).
_POLL_S = 0.1


@dataclass(frozen=True)
class Work(Generic[T]):
    """One operation: ``start(on_progress)`` returns its handle; ``label`` names its input
    in the display and in errors; ``size`` is its input's size in bytes, if known."""

    label: str
    size: int | None
    start: Callable[[ProgressCallback], TaskHandle[T]]
    #: A ``ValidationError`` from ``start`` is about an option's value (exit code 2), not
    #: about the input (the command checked its inputs already).
    refusal_is_usage: bool = False


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The results in input order, the elapsed seconds and the bytes processed."""

    results: list[T]
    seconds: float
    nbytes: int


class _Tally:
    """The summed progress of a run, updated from the pool's threads."""

    def __init__(self, works: Sequence[Work[Any]]) -> None:
        self.lock = threading.Lock()
        self.sizes = [w.size for w in works]
        self.known_total = (
            float(sum(s for s in self.sizes if s is not None))
            if all(s is not None for s in self.sizes)
            else None
        )
        self.done = 0.0
        self.partial: dict[int, float] = {}
        self.totals: dict[int, float] = {}
        self.finished: set[int] = set()

    def report(self, index: int, info: ProgressInfo) -> tuple[float, float | None, float]:
        """Record a report; return (this input's units, its total, the run's units)."""
        size = self.sizes[index]
        total = info.total if info.total > 0 else None
        if size is not None:
            units = size * min(1.0, info.current / total) if total else 0.0
            own_total: float | None = float(size)
        else:
            units, own_total = float(info.current), total
        with self.lock:
            # A report that was on its way while the operation finished must not count
            # the input twice.
            if index not in self.finished:
                self.partial[index] = units
                if own_total is not None:
                    self.totals[index] = own_total
            overall = self.done + sum(self.partial.values())
        return units, own_total, overall

    def finish(self, index: int) -> float:
        with self.lock:
            self.finished.add(index)
            units = self.partial.pop(index, 0.0)
            size = self.sizes[index]
            self.done += float(size) if size is not None else self.totals.get(index, units)
            return self.done + sum(self.partial.values())

    def overall_total(self) -> float | None:
        if self.known_total is not None:
            return self.known_total
        with self.lock:
            if len(self.totals) == len(self.sizes):
                return sum(self.totals.values())
        return None


def run_all(
    session: Session, works: Sequence[Work[T]], *, title: str, window: int = 1
) -> Outcome[T]:
    """Run ``works`` with at most ``window`` in flight; see the module docstring.

    Raises:
        ItemError: the first operation that failed (the others were cancelled).
        Interrupted: SIGINT/SIGTERM (the operations in flight were cancelled).
    """
    display = session.display()
    tally = _Tally(works)
    many = len(works) > 1
    main_line = display.add(f"{title} {works[0].label}" if not many else title, tally.known_total)
    lines: dict[int, int] = {}
    results: list[Any] = [None] * len(works)
    pending = deque(enumerate(works))
    inflight: dict[TaskHandle[Any], int] = {}
    started = time.monotonic()
    shown = False

    def progress_of(index: int) -> ProgressCallback:
        def on_progress(info: ProgressInfo) -> None:
            # Runs on a pool thread: it must never raise (the pool would log a traceback).
            try:
                units, total, overall = tally.report(index, info)
                if many:
                    line = lines.get(index)
                    if line is not None:
                        display.update(line, units, total)
                    display.update(main_line, overall, tally.overall_total())
                else:
                    display.update(main_line, overall, total)
            except Exception:
                pass

        return on_progress

    try:
        while pending or inflight:
            while pending and len(inflight) < window:
                index, work = pending.popleft()
                if many:
                    lines[index] = display.add(work.label, work.size)
                # Starting and recording the handle is one step for a Ctrl-C.
                with session.guard.deferred():
                    try:
                        handle = work.start(progress_of(index))
                    except ValidationError as exc:
                        if not work.refusal_is_usage:
                            raise ItemError(work.label, exc) from exc
                        raise ItemError(work.label, UsageError(str(exc))) from exc
                    except Exception as exc:
                        raise ItemError(work.label, exc) from exc
                    session.track(handle)
                    inflight[handle] = index
            finished, _ = wait(list(inflight), timeout=_POLL_S, return_when=FIRST_COMPLETED)
            if not shown and time.monotonic() - started >= _SHOW_AFTER_S:
                shown = True
                display.start()
            for done in finished:
                ended = cast(TaskHandle[Any], done)  # wait() returns the futures it was given
                index = inflight.pop(ended)
                session.untrack(ended)
                try:
                    results[index] = ended.result()
                except Exception as exc:
                    raise ItemError(works[index].label, exc) from exc
                overall = tally.finish(index)
                if many:
                    display.remove(lines.pop(index))
                display.update(main_line, overall, tally.overall_total())
    except BaseException as exc:
        if isinstance(exc, Interrupted):
            session.guard.shield()
        display.stop()
        for running in list(inflight):
            running.cancel()  # a job's cancel returns once its temporary output is removed
            session.untrack(running)
        raise
    display.stop()
    seconds = time.monotonic() - started
    nbytes = int(tally.done)
    return Outcome(results, seconds, nbytes)
