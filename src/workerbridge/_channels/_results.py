"""Result types shared by the channels (they cross from workers by pickle, so they live in a
module a worker can import)."""

from __future__ import annotations

from typing import final

import msgspec

__all__ = ["FileResult"]


@final
class FileResult(msgspec.Struct, frozen=True):
    """What an operation that wrote a file produced: the file's ``path``, how many bytes it
    read (``bytes_in``) and wrote (``bytes_out``)."""

    path: str
    bytes_in: int
    bytes_out: int

    @property
    def ratio(self) -> float:
        """``bytes_out / bytes_in`` (1.0 for an empty input)."""
        return self.bytes_out / self.bytes_in if self.bytes_in else 1.0
