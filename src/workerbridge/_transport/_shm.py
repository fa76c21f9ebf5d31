"""Named shared-memory segments in ``/dev/shm``, with one owner each and no tracker.

``multiprocessing.shared_memory`` registers every segment with the resource tracker, which
then warns about "leaked shared_memory" and may unlink a segment another process still
uses (gh-82300). Here instead:

- every name starts with ``wb-<creator pid>-``, so a segment can always be traced to the
  process that made it;
- exactly one side *owns* a segment and unlinks it (``Segment.unlink``); the other only
  maps it;
- ``remove_orphans()`` unlinks the segments of processes that no longer exist, which is how
  segments of a SIGKILLed parent or worker are reclaimed (the pool calls it on start and
  when a worker dies).

Space is reserved with ``posix_fallocate`` when a segment is created, so a full ``/dev/shm``
fails there with ``SharedMemoryError`` instead of killing a process with SIGBUS on first
touch.
"""

from __future__ import annotations

import errno
import mmap
import os
import secrets

from .._exceptions import SharedMemoryError

__all__ = ["PREFIX", "SHM_DIR", "Segment", "remove_orphans", "segments_of"]

SHM_DIR = "/dev/shm"
PREFIX = "wb-"


def _path(name: str) -> str:
    if "/" in name or not name.startswith(PREFIX):
        raise ValueError(f"not a workerbridge segment name: {name!r}")
    return os.path.join(SHM_DIR, name)


class Segment:
    """One mapped segment. ``view`` is a writable memoryview of all of it."""

    __slots__ = ("_map", "name", "owner", "size", "view")

    def __init__(self, name: str, size: int, mapping: mmap.mmap, owner: bool) -> None:
        self.name = name
        self.size = size
        self.owner = owner
        self._map = mapping
        self.view = memoryview(mapping)

    @classmethod
    def create(cls, size: int, tag: str = "") -> Segment:
        """A new segment of ``size`` bytes owned by this process.

        Raises:
            SharedMemoryError: no shared memory available (``/dev/shm`` missing or full).
        """
        if size <= 0:
            raise ValueError(f"segment size must be positive, got {size}")
        name = f"{PREFIX}{os.getpid()}-{tag}{'-' if tag else ''}{secrets.token_hex(6)}"
        path = _path(name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise SharedMemoryError(f"cannot create shared memory {name}: {exc}") from exc
        try:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.ENOMEM):
                    raise SharedMemoryError(
                        f"not enough shared memory for {size} bytes in {SHM_DIR}: {exc}"
                    ) from exc
                os.ftruncate(fd, size)  # a filesystem without fallocate
            mapping = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        os.close(fd)
        return cls(name, size, mapping, owner=True)

    @classmethod
    def attach(cls, name: str) -> Segment:
        """Map an existing segment (not owned: this side never unlinks it).

        Raises:
            SharedMemoryError: it does not exist (its owner already released it).
        """
        try:
            fd = os.open(_path(name), os.O_RDWR)
        except OSError as exc:
            raise SharedMemoryError(f"cannot open shared memory {name}: {exc}") from exc
        try:
            size = os.fstat(fd).st_size
            mapping = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        return cls(name, size, mapping, owner=False)

    def close(self) -> None:
        """Unmap. Views still exported keep the mapping alive until they are released."""
        try:
            self.view.release()
            self._map.close()
        except BufferError:
            pass  # a caller still holds a slice; the mapping goes when that is released

    def unlink(self) -> None:
        """Remove the name (owner only); mappings stay valid until closed."""
        try:
            os.unlink(_path(self.name))
        except FileNotFoundError:
            pass

    @staticmethod
    def unlink_name(name: str) -> None:
        """Remove segment ``name`` without mapping it (its owner died)."""
        try:
            os.unlink(_path(name))
        except FileNotFoundError:
            pass

    def __repr__(self) -> str:
        return f"<Segment {self.name} {self.size} bytes{' owner' if self.owner else ''}>"


def segments_of(pid: int) -> list[str]:
    """Names of the segments created by process ``pid``."""
    prefix = f"{PREFIX}{pid}-"
    try:
        return [n for n in os.listdir(SHM_DIR) if n.startswith(prefix)]
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans() -> int:
    """Unlink segments whose creator no longer exists; return how many."""
    removed = 0
    try:
        names = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return 0
    for name in names:
        if not name.startswith(PREFIX):
            continue
        pid_text = name[len(PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        try:
            os.unlink(os.path.join(SHM_DIR, name))
            removed += 1
        except OSError:
            pass
    return removed
