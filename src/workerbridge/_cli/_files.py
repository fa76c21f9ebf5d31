"""Inputs and outputs of the commands: files, ``-`` for stdin/stdout, and the rule that no
partial output is ever left behind.

- Outputs the bridges write (``compress_file``, ``encrypt_file``, ...) are already atomic:
  the bridge writes ``<name>.<random>.wb-tmp`` beside the target and renames it at the end,
  and removes it when the operation fails or is cancelled. This module checks, before
  anything starts, that every input is a readable file and that no output would be
  overwritten without ``--force``.
- Outputs the command writes itself (a manifest, a key file) go through ``write_atomic``:
  the same temporary-name-and-rename, removed on any error or interrupt.
- ``-`` as input: stdin is spooled to a file in a private temporary folder (the bridges
  read files, in parallel, from the workers), removed when the command ends however it
  ends. So is an input that is a pipe (``<(command)``) rather than a file.
- ``-`` (or ``-c``) as output: the bridge writes into that folder and the file is
  copied to stdout only once the operation has succeeded, so a failed decryption or a
  corrupt archive never sends a byte of output down the pipe.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from ._errors import CliError

__all__ = [
    "STDIO",
    "TempArea",
    "check_input",
    "check_output",
    "copy_to_stdout",
    "strip_suffix",
    "write_atomic",
]

#: The name that means stdin (as an input) or stdout (as an output).
STDIO = "-"
#: Bytes per read/write when copying between stdin/stdout and files.
_COPY_CHUNK = 1 << 20


def check_input(path: str) -> int | None:
    """The size of the regular file ``path``, or None for a stream (a pipe, such as
    ``<(command)``, or a character device) that must be spooled like stdin.

    Raises:
        CliError: missing, a folder, a socket or block device, or unreadable (one line, in
            the words ``sha256sum`` and ``gzip`` use).
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CliError(f"{path}: No such file or directory") from None
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise CliError(f"{path}: Is a directory")
    if not os.access(path, os.R_OK):
        raise CliError(f"{path}: Permission denied")
    if stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode):
        return None
    if not stat.S_ISREG(info.st_mode):
        raise CliError(f"{path}: not a regular file")
    return info.st_size


def check_output(path: str, *, force: bool, inputs: tuple[str, ...] = ()) -> None:
    """Refuse to overwrite ``path`` without ``force``, to write over one of the
    ``inputs``, or to write into a folder that does not exist.

    Raises:
        CliError: the reason, naming the file.
    """
    target = Path(path)
    for source in inputs:
        if source != STDIO and target.exists() and os.path.samefile(source, target):
            raise CliError(f"{path}: output would overwrite its own input")
    if target.is_dir():
        raise CliError(f"{path}: Is a directory")
    if target.exists() and not force:
        raise CliError(f"{path} already exists; use --force to overwrite it")
    parent = target.parent
    if not parent.is_dir():
        raise CliError(f"{parent}: No such file or directory")
    if not os.access(parent, os.W_OK):
        raise CliError(f"{parent}: Permission denied")


def strip_suffix(path: str, suffixes: tuple[str, ...]) -> str | None:
    """``path`` without the first of ``suffixes`` it ends with, or None."""
    for suffix in suffixes:
        if path.endswith(suffix) and len(path) > len(suffix):
            stem = path[: -len(suffix)]
            if not stem.endswith(os.sep):
                return stem
    return None


def write_atomic(path: str, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder: readers see
    the old file or the complete new one, never part of it. The temporary file is removed
    on any error or interrupt.

    Args:
        mode: the file's permissions (set on the temporary file before any byte is
            written, so a key is never readable by others, even briefly).
        exclusive: fail if ``path`` exists, atomically (``link`` instead of ``rename``).

    Raises:
        CliError: ``exclusive`` and ``path`` exists.
        OSError: the folder is not writable, the disk is full.
    """
    folder = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.wb-tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have removed bits; never added any
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            try:
                os.link(temp, path)
            except FileExistsError:
                raise CliError(f"{path} already exists; refusing to overwrite it") from None
            os.unlink(temp)
        else:
            os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def copy_to_stdout(path: str) -> None:
    """Copy the file ``path`` to stdout (binary), then flush."""
    out = sys.stdout.buffer
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_CHUNK):
            out.write(chunk)
    out.flush()


class TempArea:
    """A private temporary folder for the command (stdin spooled to a file, outputs bound
    for stdout), created on first use and removed, with everything in it, by ``close()``.
    It lives in ``$TMPDIR`` (mode 0700), so only this user can read what is staged."""

    def __init__(self) -> None:
        self._path: str | None = None

    def path(self, name: str) -> str:
        """A path for a file called ``name`` inside the folder."""
        if self._path is None:
            self._path = tempfile.mkdtemp(prefix="workerbridge-")
        return os.path.join(self._path, name)

    def spool_stdin(self) -> tuple[str, int]:
        """Copy all of stdin into a file; return its path and size."""
        return self._spool(sys.stdin.buffer, "stdin")

    def spool(self, path: str) -> tuple[str, int]:
        """Copy all of the stream ``path`` (a pipe) into a file; return its path and size."""
        with open(path, "rb") as source:
            return self._spool(source, "stream")

    def _spool(self, source: BinaryIO, kind: str) -> tuple[str, int]:
        target = self.path(f"{kind}-{secrets.token_hex(4)}")
        size = 0
        with open(target, "wb") as f:
            while chunk := source.read(_COPY_CHUNK):
                f.write(chunk)
                size += len(chunk)
        return target, size

    def empty_file(self) -> str:
        """An empty file (what a stream read a second time holds)."""
        path = self.path("empty")
        with open(path, "wb"):
            pass
        return path

    def prepare(self, name: str, size: int | None) -> tuple[str, int]:
        """The file to hand to a bridge for the input ``name`` of ``size`` (from
        ``check_input``; ignored for ``-``), and its size: stdin and streams are spooled."""
        if name == STDIO:
            return self.spool_stdin()
        if size is None:
            return self.spool(name)
        return name, size

    def close(self) -> None:
        """Remove the folder and its contents (idempotent)."""
        path, self._path = self._path, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
