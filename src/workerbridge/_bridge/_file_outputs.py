"""The output files of ``FileBridge``: temporaries beside their final names, renamed over
them when the operation succeeded and removed otherwise (error, cancel, timeout).

A temporary is ``<name>.<random>.wb-tmp`` in the output's own folder, so the rename is
atomic for readers (they see the old file or the whole new one). Nothing is ``fsync``-ed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

from .._exceptions import OperationError

__all__ = ["TEMP_SUFFIX", "Outputs", "preallocate"]

#: The suffix of the temporaries of output files.
TEMP_SUFFIX = ".wb-tmp"


def preallocate(path: str, size: int) -> None:
    """Give ``path`` its final ``size`` up front, so that several workers can write their
    parts into place at once (``copy_file_range`` at an offset).

    ``ftruncate``, not ``posix_fallocate``: on ext4, copying into fallocated (unwritten)
    extents measured 2 to 6 times slower than into a plain sized file, and reserving the
    blocks would only move a full-disk error earlier (it still fails the operation, and
    the temporary is removed either way)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


class Outputs:
    """The temporaries of one operation's output files: ``create`` makes one beside its
    final name, ``commit`` renames them all, leaving the ``with`` block removes whatever
    was not committed (error, cancel, timeout). An ``OSError`` inside the block becomes
    ``OperationError``."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, str, int | None]] = []  # temp, final, mode
        self._folders: list[str] = []  # made by make_folders, outermost first

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        for temp, _, _ in self._pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        self._pending.clear()
        for folder in reversed(self._folders):
            with contextlib.suppress(OSError):  # not empty: someone else put files there
                os.rmdir(folder)
        self._folders.clear()
        if isinstance(exc, OSError):
            raise OperationError(_describe(exc)) from None

    def make_folders(self, path: str) -> None:
        """Make ``path`` and its missing parents; those made are removed again unless the
        outputs are committed."""
        missing = []
        head = os.path.abspath(path)
        while not os.path.isdir(head):
            missing.append(head)
            head = os.path.dirname(head)
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except FileExistsError:
                continue  # made by someone else meanwhile: not ours to remove
            self._folders.append(folder)

    def create(self, final: str, mode: int | None = None) -> str:
        """A new empty temporary for ``final``; ``mode``: its permission bits once
        committed (default: those of the file it replaces, else the default of new
        files)."""
        directory, name = os.path.split(final)
        if len(os.fsencode(name)) > 200:  # keep the temporary's name within NAME_MAX
            name = name[:50]
        while True:
            temp = os.path.join(directory, f"{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except FileExistsError:
                continue
            os.close(fd)
            self._pending.append((temp, final, mode))
            return temp

    def commit(self) -> None:
        """Rename every temporary over its final name."""
        while self._pending:
            temp, final, mode = self._pending[0]
            if mode is None:
                with contextlib.suppress(OSError):
                    replaced = os.stat(final)
                    if stat.S_ISREG(replaced.st_mode):
                        mode = stat.S_IMODE(replaced.st_mode)
            if mode is not None:
                os.chmod(temp, mode)
            os.replace(temp, final)
            self._pending.pop(0)
        self._folders.clear()  # they hold the outputs now


def _describe(exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    where = f": {exc.filename!r}" if exc.filename is not None else ""
    return f"cannot write the output: {reason}{where}"
