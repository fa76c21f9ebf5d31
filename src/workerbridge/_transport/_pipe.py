"""Pipe helpers shared by the parent and the workers."""

from __future__ import annotations

import fcntl
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["PIPE_SIZE", "enlarge_pipe", "take_fd", "write_all"]

#: Pipes are enlarged to this size (Linux's default cap for unprivileged processes) so a
#: batch of requests or a medium result goes through in one write and one wake-up; the
#: default 64 KiB pipe costs several round trips per MiB.
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def enlarge_pipe(fd: int, size: int = PIPE_SIZE) -> None:
    """Ask the kernel for a larger pipe buffer; keep the default if it refuses."""
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
    except OSError:
        pass


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte to a blocking descriptor (a pipe write may be split by a signal)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def take_fd(conn: Connection) -> int:
    """The descriptor of a ``multiprocessing`` connection, for raw reads and writes; the
    connection object is closed (our framing replaces its own)."""
    fd = os.dup(conn.fileno())
    conn.close()
    return fd
