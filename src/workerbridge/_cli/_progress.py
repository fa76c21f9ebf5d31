"""Progress bars on the terminal (``rich.progress``), drawn on stderr so that stdout
carries only data and results.

``RichDisplay`` shows one bar per job (bytes done, rate, ETA), one line per input while it
is being worked on (when there are several), and under them a line with the pool's
workers, refreshed from ``pool.stats()``. (``_display.NullDisplay`` is what runs when stderr
is not a terminal or with ``--quiet``: same calls, nothing drawn, rich not even loaded.)
The bridges' ``on_progress``
callbacks run on the pool's threads; ``rich.progress.Progress`` takes its own lock on every
update, so they may call ``update`` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

from ._units import human_bytes

__all__ = ["RichDisplay"]

#: Redraws per second: smooth enough to read, cheap enough not to cost the job anything
#: (each redraw also takes a ``pool.stats()`` snapshot).
_REFRESH_PER_SECOND = 8


class _RateColumn(ProgressColumn):
    """Bytes per second in binary units, like the sizes beside it (rich's own
    ``TransferSpeedColumn`` says MB/s next to MiB)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("?", style="progress.data.speed")
        return Text(f"{human_bytes(speed)}/s", style="progress.data.speed")


class _PoolProgress(Progress):
    """A ``Progress`` with one more line under the bars: the pool's workers."""

    def __init__(self, status: Callable[[], str] | None, console: Console) -> None:
        self._status = status  # before super(): rich renders once while it sets up
        super().__init__(
            TextColumn(
                "{task.description}",
                table_column=Column(no_wrap=True, overflow="ellipsis", min_width=8, max_width=32),
            ),
            BarColumn(bar_width=28),
            TaskProgressColumn(),
            DownloadColumn(binary_units=True),
            _RateColumn(),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=_REFRESH_PER_SECOND,
            transient=True,
            # Never capture the command's own output: stdout is data.
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        if self._status is not None:
            try:
                line = self._status()
            except Exception:  # the pool is closing under the display: draw no line
                line = ""
            if line:
                yield Text(line, style="dim", no_wrap=True, overflow="ellipsis")


class RichDisplay:
    """Bars and the pool line on ``console`` (a terminal). Transient: the display is
    erased by ``stop()``, and the command prints its one-line summary instead."""

    def __init__(self, console: Console, status: Callable[[], str] | None = None) -> None:
        self._progress = _PoolProgress(status, console)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._progress.start()

    def add(self, label: str, total: float | None) -> int:
        return int(self._progress.add_task(label, total=total))

    def update(self, task: int, completed: float, total: float | None = None) -> None:
        try:
            if total is not None:
                self._progress.update(TaskID(task), completed=completed, total=total)
            else:
                self._progress.update(TaskID(task), completed=completed)
        except KeyError:  # the line was removed by the time a late report arrived
            pass

    def remove(self, task: int) -> None:
        try:
            self._progress.remove_task(TaskID(task))
        except KeyError:
            pass

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._progress.stop()
