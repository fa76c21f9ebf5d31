"""What the commands call to show progress (``Display``), and the display that shows
nothing (stderr is not a terminal, or ``--quiet``). The one that draws is
``_progress.RichDisplay``."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Display", "NullDisplay"]


class Display(Protocol):
    """What the commands call to show progress; safe to call from any thread."""

    def start(self) -> None: ...
    def add(self, label: str, total: float | None) -> int: ...
    def update(self, task: int, completed: float, total: float | None = None) -> None: ...
    def remove(self, task: int) -> None: ...
    def stop(self) -> None: ...


class NullDisplay:
    """No output at all (stderr is not a terminal, or ``--quiet``)."""

    def __init__(self) -> None:
        self._next = 0

    def start(self) -> None:
        pass

    def add(self, label: str, total: float | None) -> int:
        self._next += 1
        return self._next

    def update(self, task: int, completed: float, total: float | None = None) -> None:
        pass

    def remove(self, task: int) -> None:
        pass

    def stop(self) -> None:
        pass
