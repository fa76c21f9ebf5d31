"""The file bridge: caller-side checks and dispatch; the work runs in
``workerbridge._channels._file`` and ``_channels._hashing``.

Every operation checks its arguments before anything is dispatched (``ValidationError``
naming the argument: a missing file or folder, something that is not a regular file, a
negative offset, an unknown algorithm, an output folder that does not exist) and returns a
``TaskHandle`` at once. Workers open the files themselves: file data never crosses the pipe.

Output files are written under a temporary name in their own folder
(``<name>.<random>.wb-tmp``) and renamed over the final name (``os.replace``) only when
everything succeeded, so a reader sees the old file or the whole new one, never a part. On
an error, a cancel or a timeout the temporaries are removed before the handle resolves.
Renaming makes replacement atomic for readers; like ``cp``, nothing is ``fsync``-ed, so
the new content is durable only once the kernel has written it back. A file that is
replaced keeps its permission bits; a new one gets ``0o666`` minus the umask (``copy_file``:
the source's bits).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from typing import Any, final

from .._channels._hashing import ManifestReport, check_algorithm, format_line, parse_manifest
from .._channels._results import FileResult
from .._exceptions import OperationError, ValidationError
from .._pool import ProgressInfo, TaskHandle, WorkerPool
from ._job import Job, OperationOptions, call_once, start_job

__all__ = ["FileBridge"]

PathLike = str | os.PathLike[str]
Data = bytes | bytearray | memoryview
ProgressCallback = Callable[[ProgressInfo], object]

#: The suffix of the temporaries of output files.
TEMP_SUFFIX = ".wb-tmp"
#: Digits of a part's number at least (``.part0001``); more when there are more parts.
_PART_DIGITS = 4


@final
class FileBridge:
    """File operations on the pool's workers.

    Each operation takes keyword-only ``on_progress`` (called with ``ProgressInfo`` in
    bytes), ``signal`` (cancels it when it fires) and ``timeout`` (seconds for the whole
    operation). Cancel or timeout stops the workers within one chunk, removes any output
    temporaries and ends the handle in ``TaskCancelledError`` / ``TaskTimeoutError``.
    A file that vanishes or cannot be read or written after the checks fails the handle
    with ``OperationError`` naming it.
    """

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    @property
    def _window(self) -> int:
        # Two calls per worker in flight: the next one is already queued when one ends.
        return 2 * self._pool.size

    # ------------------------------------------------------------------ hashing
    def hash_file(
        self,
        path: PathLike,
        algorithm: str = "sha256",
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[str]:
        """The hex digest of the file at ``path`` (``sha256``, ``sha512``, ``sha3_256``,
        ``blake2b`` (BLAKE2b-512) or ``blake3``), hashed by one worker.

        Raises:
            ValidationError: ``path`` is not an existing regular file, unknown ``algorithm``.
        """
        options = OperationOptions(on_progress, signal, timeout)
        name, _ = _regular_file(path, "path")
        check_algorithm(algorithm)
        handle: TaskHandle[str] = call_once(
            self._pool, "file", "hash_file", (name, algorithm), options
        )
        return handle

    def hash_files(
        self,
        paths: Sequence[PathLike],
        algorithm: str = "sha256",
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[list[tuple[str, str]]]:
        """``(path as given, hex digest)`` for each of ``paths``, in their order; the files
        are hashed in parallel (a call per large file, small ones many to a call, two
        calls per worker in flight).

        Raises:
            ValidationError: ``paths`` is not a sequence of paths, one is not an existing
                regular file (the message gives its index), unknown ``algorithm``.
        """
        options = OperationOptions(on_progress, signal, timeout)
        files = [_regular_file(p, f"paths[{i}]") for i, p in enumerate(_sequence(paths, "paths"))]
        check_algorithm(algorithm)

        def driver(job: Job[list[tuple[str, str]]]) -> list[tuple[str, str]]:
            names = [name for name, _ in files]
            digests = self._hash_all(job, names, [info.st_size for _, info in files], algorithm)
            return list(zip(names, digests, strict=True))

        total = sum(info.st_size for _, info in files)
        return start_job(self._pool, driver, options, total=total, name="hash_files")

    # ------------------------------------------------------------------ read / write / copy
    def read_file(
        self,
        path: PathLike,
        offset: int = 0,
        length: int | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes]:
        """``length`` bytes of the file from ``offset`` (to its end when ``length`` is
        None), read by a worker; shorter when the file ends first (``offset`` equal to the
        size gives ``b""``). Large results come back through shared memory.

        Raises:
            ValidationError: ``path`` is not an existing regular file; ``offset`` or
                ``length`` is not an int >= 0; ``offset`` is beyond the end of the file.
        """
        options = OperationOptions(on_progress, signal, timeout)
        name, info = _regular_file(path, "path")
        _non_negative(offset, "offset")
        if length is not None:
            _non_negative(length, "length")
        if offset > info.st_size:
            raise ValidationError(
                f"offset {offset} is beyond the end of {name!r} ({info.st_size} bytes)"
            )
        handle: TaskHandle[bytes] = call_once(
            self._pool, "file", "read", (name, offset, length), options
        )
        return handle

    def write_file(
        self,
        path: PathLike,
        data: Data,
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[FileResult]:
        """Write ``data`` to ``path`` atomically: a worker writes a temporary beside it,
        which then replaces ``path``. Large data reaches the worker through shared memory;
        do not modify ``data`` until the handle is done.

        Raises:
            ValidationError: ``data`` is not bytes-like; ``path``'s folder does not exist
                or is not writable; ``path`` is a directory.
        """
        options = OperationOptions(on_progress, signal, timeout)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValidationError(
                f"data must be bytes, bytearray or memoryview, got {type(data).__name__}"
            )
        target = _output_path(path, "path")
        size = memoryview(data).nbytes

        def driver(job: Job[FileResult]) -> FileResult:
            with _Outputs() as outputs:
                temp = outputs.create(target)
                written: int = job.wait(job.call("file", "write", temp, data, weight=size))
                outputs.commit()
            return FileResult(target, size, written)

        return start_job(self._pool, driver, options, total=size, name="write_file")

    def copy_file(
        self,
        src: PathLike,
        dst: PathLike,
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[FileResult]:
        """Copy ``src`` to ``dst`` (a file path, replaced atomically if it exists) with the
        source's permission bits. A worker copies in the kernel (``copy_file_range``, else
        ``sendfile``, else reads and writes), reporting progress per 8 MiB.

        Raises:
            ValidationError: ``src`` is not an existing regular file; ``dst``'s folder does
                not exist or is not writable; ``dst`` is a directory or ``src`` itself.
        """
        options = OperationOptions(on_progress, signal, timeout)
        source, info = _regular_file(src, "src")
        target = _output_path(dst, "dst")
        with contextlib.suppress(OSError):
            if os.path.samefile(source, target):
                raise ValidationError(f"dst is the same file as src: {target!r}")

        def driver(job: Job[FileResult]) -> FileResult:
            with _Outputs() as outputs:
                temp = outputs.create(target, mode=stat.S_IMODE(info.st_mode))
                copied: int = job.wait(job.call("file", "copy", source, temp, weight=info.st_size))
                outputs.commit()
            return FileResult(target, copied, copied)

        return start_job(self._pool, driver, options, total=info.st_size, name="copy_file")

    # ------------------------------------------------------------------ split / join
    def split_file(
        self,
        path: PathLike,
        part_size: int,
        output_dir: PathLike | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[list[str]]:
        """Split the file into parts of ``part_size`` bytes (the last one shorter), named
        ``<name>.part0001``, ``<name>.part0002``, ... (more digits past 9999 parts) in
        ``output_dir`` (default: the file's folder; made with its parents if missing, and
        removed again if the split fails); returns their paths in order. Parts are copied
        in parallel, one call each, and all appear together at the end. An empty file
        gives one empty part, so that ``join_files`` restores it.

        Raises:
            ValidationError: ``path`` is not an existing regular file; ``part_size`` is not
                an int > 0; ``output_dir`` is not a folder, or is missing and its nearest
                existing parent is not a writable folder.
        """
        options = OperationOptions(on_progress, signal, timeout)
        source, info = _regular_file(path, "path")
        if isinstance(part_size, bool) or not isinstance(part_size, int) or part_size <= 0:
            raise ValidationError(f"part_size must be an int > 0, got {part_size!r}")
        folder = os.path.dirname(source) or "." if output_dir is None else output_dir
        folder = _output_folder(folder, "output_dir")
        size = info.st_size
        count = max(1, -(-size // part_size))
        digits = max(_PART_DIGITS, len(str(count)))
        base = os.path.join(folder, os.path.basename(source))
        finals = [f"{base}.part{i:0{digits}d}" for i in range(1, count + 1)]

        def driver(job: Job[list[str]]) -> list[str]:
            with _Outputs() as outputs:
                outputs.make_folders(folder)

                def part(index: int) -> Callable[[], TaskHandle[Any]]:
                    offset = index * part_size
                    length = min(part_size, size - offset)

                    def start() -> TaskHandle[Any]:
                        temp = outputs.create(finals[index])
                        args = (source, offset, length, temp, 0)
                        return job.call("file", "copy_range", *args, weight=length)

                    return start

                for _ in job.ordered([part(i) for i in range(count)], window=self._window):
                    pass
                outputs.commit()
            return finals

        return start_job(self._pool, driver, options, total=size, name="split_file")

    def join_files(
        self,
        parts: Sequence[PathLike],
        output: PathLike,
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[FileResult]:
        """Concatenate ``parts`` into ``output`` (replaced atomically if it exists, even
        when it is one of the parts). The output is given its final size first and the
        parts are copied in parallel, each by one call into its own offset.

        Raises:
            ValidationError: ``parts`` is empty or not a sequence of paths, a part is not an
                existing regular file; ``output``'s folder does not exist or is not
                writable, or ``output`` is a directory.
        """
        options = OperationOptions(on_progress, signal, timeout)
        files = [_regular_file(p, f"parts[{i}]") for i, p in enumerate(_sequence(parts, "parts"))]
        if not files:
            raise ValidationError("parts must name at least one file")
        target = _output_path(output, "output")
        offsets = [0]
        for _, info in files:
            offsets.append(offsets[-1] + info.st_size)
        total = offsets[-1]

        def driver(job: Job[FileResult]) -> FileResult:
            with _Outputs() as outputs:
                temp = outputs.create(target)
                _preallocate(temp, total)
                calls = [
                    _starter(job, "copy_range", (name, 0, info.st_size, temp, at), info.st_size)
                    for (name, info), at in zip(files, offsets, strict=False)
                ]
                for _ in job.ordered(calls, window=self._window):
                    pass
                outputs.commit()
            return FileResult(target, total, total)

        return start_job(self._pool, driver, options, total=total, name="join_files")

    # ------------------------------------------------------------------ manifests
    def checksum_manifest(
        self,
        folder: PathLike,
        algorithm: str = "sha256",
        *,
        output: PathLike | None = None,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[str]:
        """The checksum manifest of every regular file under ``folder``, hashed in
        parallel: lines ``<hex>  <relative path>`` sorted by the bytes of the path (the
        order of ``LC_ALL=C sort``), exactly what ``sha256sum <paths>`` prints inside the
        folder (a name with a backslash, newline or carriage return is escaped and its line
        starts with a backslash), so ``cd folder && sha256sum -c`` accepts it. Other
        algorithms use the same format (``sha512sum -c`` and ``b2sum -c`` check it; it is
        also the format of ``b3sum``).

        The folder is listed when this is called. Symbolic links (to files or folders) and
        special files are not listed, like ``find -type f``; subfolders are. When ``output``
        is given, the manifest is also written there (atomically); if ``output`` lies inside
        ``folder`` it is left out of the manifest, so the manifest never lists itself and
        ``sha256sum -c`` of it passes. A file that vanishes before it is hashed fails the
        handle with ``OperationError``.

        Raises:
            ValidationError: ``folder`` is not an existing folder or cannot be listed;
                ``output``'s folder does not exist or is not writable, or ``output`` is a
                directory; unknown ``algorithm``.
        """
        options = OperationOptions(on_progress, signal, timeout)
        root = _folder(folder, "folder")
        check_algorithm(algorithm)
        target = None if output is None else _output_path(output, "output")
        exclude = None
        if target is not None:
            inside = os.path.relpath(os.path.realpath(target), os.path.realpath(root))
            if not inside.startswith(".." + os.sep) and inside != "..":
                exclude = inside
        files = _list_files(root, exclude)

        def driver(job: Job[str]) -> str:
            paths = [path for _, path, _ in files]
            digests = self._hash_all(job, paths, [size for *_, size in files], algorithm)
            text = "".join(
                format_line(digest, rel) for (rel, _, _), digest in zip(files, digests, strict=True)
            )
            if target is not None:
                with _Outputs() as outputs:
                    temp = outputs.create(target)
                    with open(temp, "wb") as file:
                        file.write(os.fsencode(text))
                    outputs.commit()
            return text

        total = sum(size for _, _, size in files)
        return start_job(self._pool, driver, options, total=total, name="checksum_manifest")

    def verify_manifest(
        self,
        manifest: PathLike,
        folder: PathLike | None = None,
        algorithm: str = "sha256",
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[ManifestReport]:
        """Check the files a manifest lists (the format of ``checksum_manifest`` and
        ``sha256sum``, escaped names included; ``<hex> *<name>`` binary-mode lines too),
        hashed in parallel. Names are relative to ``folder`` (default: the manifest's
        folder); absolute names are used as they are, as ``sha256sum -c`` does. The report
        says which names matched, failed (different digest, not a regular file, not
        readable) or are missing; ``report.raise_for_failures()`` turns failures into
        ``ChecksumMismatchError``. The handle itself fails only for cancel, timeout or the
        pool. A manifest without lines passes (``sha256sum -c`` refuses it), so that the
        manifest of an empty folder verifies.

        Raises:
            ValidationError: ``manifest`` is not an existing regular file or is not in the
                format (the message gives the line); ``folder`` is not an existing folder;
                unknown ``algorithm``.
        """
        options = OperationOptions(on_progress, signal, timeout)
        source, _ = _regular_file(manifest, "manifest")
        root = os.path.dirname(os.path.abspath(source)) if folder is None else None
        root = _folder(folder, "folder") if root is None else root
        check_algorithm(algorithm)
        try:
            with open(source, "rb") as file:
                text = os.fsdecode(file.read())
        except OSError as exc:
            raise ValidationError(f"manifest: cannot read {source!r}: {exc.strerror}") from None
        entries = parse_manifest(text, algorithm)
        statuses: list[str | None] = []
        checks: list[tuple[int, str, str, int]] = []  # index, path, digest, size
        for index, (name, digest) in enumerate(entries):
            path = os.path.join(root, name)
            try:
                info = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                statuses.append("missing")
                continue
            except OSError:
                statuses.append("failed")
                continue
            if not stat.S_ISREG(info.st_mode):
                statuses.append("failed")
                continue
            statuses.append(None)
            checks.append((index, path, digest, info.st_size))

        def driver(job: Job[ManifestReport]) -> ManifestReport:
            sizes = [size for *_, size in checks]
            calls = [
                _starter(
                    job,
                    "verify_many",
                    ([(checks[i][1], checks[i][2]) for i in batch], algorithm),
                    sum(sizes[i] for i in batch),
                )
                for batch in _batches(sizes)
            ]
            found = list(statuses)
            results = (s for batch in job.ordered(calls, window=self._window) for s in batch)
            for (index, *_), status in zip(checks, results, strict=True):
                found[index] = status
            by_status: dict[str | None, list[str]] = {"ok": [], "failed": [], "missing": []}
            for (name, _), status in zip(entries, found, strict=True):
                by_status[status].append(name)
            return ManifestReport(
                ok=tuple(by_status["ok"]),
                failed=tuple(by_status["failed"]),
                missing=tuple(by_status["missing"]),
            )

        total = sum(size for *_, size in checks)
        return start_job(self._pool, driver, options, total=total, name="verify_manifest")

    def _hash_all(
        self, job: Job[Any], paths: list[str], sizes: list[int], algorithm: str
    ) -> list[str]:
        """The digests of ``paths`` in order, hashed in parallel, small files in batches."""
        calls = [
            _starter(
                job,
                "hash_many",
                ([paths[i] for i in batch], algorithm),
                sum(sizes[i] for i in batch),
            )
            for batch in _batches(sizes)
        ]
        return [digest for batch in job.ordered(calls, window=self._window) for digest in batch]


# ---------------------------------------------------------------------- helpers
#: Small files go many to a call: one call per file costs a round trip each (about 80 us:
#: 12,000 files of 4 KiB per second), more than hashing them. A batch closes once it holds
#: BATCH_BYTES or BATCH_FILES; a file of BATCH_BYTES or more has a call of its own, so large
#: files still spread over the workers. 4 MiB is ~2 ms of sha256: the round trip adds < 5 %.
BATCH_BYTES = 4 << 20
BATCH_FILES = 64


def _batches(sizes: Sequence[int]) -> list[range]:
    """Consecutive index ranges of ``sizes`` grouped as ``BATCH_BYTES`` says."""
    batches = []
    start = 0
    held = 0
    for index, size in enumerate(sizes):
        if size >= BATCH_BYTES:
            if start < index:
                batches.append(range(start, index))
            batches.append(range(index, index + 1))
            start, held = index + 1, 0
            continue
        held += size
        if held >= BATCH_BYTES or index + 1 - start >= BATCH_FILES:
            batches.append(range(start, index + 1))
            start, held = index + 1, 0
    if start < len(sizes):
        batches.append(range(start, len(sizes)))
    return batches


def _starter(
    job: Job[Any], operation: str, args: tuple[Any, ...], weight: int
) -> Callable[[], TaskHandle[Any]]:
    """A zero-argument function that starts ``("file", operation)(*args)`` in ``job``."""
    return lambda: job.call("file", operation, *args, weight=weight)


def _path(value: object, argument: str) -> str:
    try:
        path = os.fspath(value)  # type: ignore[call-overload]
    except TypeError:
        raise ValidationError(
            f"{argument} must be a str or os.PathLike path, got {type(value).__name__}"
        ) from None
    if not isinstance(path, str):
        raise ValidationError(f"{argument} must be a str path, got {type(path).__name__}")
    if not path or "\0" in path:
        raise ValidationError(f"{argument} must be a non-empty path without NUL, got {path!r}")
    return path


def _regular_file(value: object, argument: str) -> tuple[str, os.stat_result]:
    path = _path(value, argument)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ValidationError(f"{argument}: no such file: {path!r}") from None
    except OSError as exc:
        raise ValidationError(f"{argument}: cannot access {path!r}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(f"{argument} is not a regular file: {path!r}")
    return path, info


def _folder(value: object, argument: str, *, writable: bool = False) -> str:
    path = _path(value, argument)
    if not os.path.isdir(path):
        what = "not a folder" if os.path.exists(path) else "no such folder"
        raise ValidationError(f"{argument}: {what}: {path!r}")
    if writable and not os.access(path, os.W_OK | os.X_OK):
        raise ValidationError(f"{argument}: cannot create files in {path!r}")
    return path


def _output_folder(value: object, argument: str) -> str:
    """A folder to write into, existing or to be made (its nearest existing parent must be
    a writable folder then)."""
    path = _path(value, argument)
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValidationError(f"{argument}: not a folder: {existing!r}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValidationError(f"{argument}: cannot create files in {existing!r}")
    return path


def _output_path(value: object, argument: str) -> str:
    path = _path(value, argument)
    if os.path.isdir(path):
        raise ValidationError(f"{argument} is a directory: {path!r}")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise ValidationError(f"{argument}: no such folder: {parent!r}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValidationError(f"{argument}: cannot create files in {parent!r}")
    return path


def _non_negative(value: object, argument: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{argument} must be an int >= 0, got {value!r}")


def _sequence(value: object, argument: str) -> Sequence[object]:
    if isinstance(value, str | bytes | os.PathLike) or not isinstance(value, Sequence):
        raise ValidationError(f"{argument} must be a sequence of paths, got {value!r}")
    return value


def _list_files(root: str, exclude: str | None) -> list[tuple[str, str, int]]:
    """``(relative POSIX path, path, size)`` of every regular file under ``root``, sorted
    by the bytes of the relative path. Symbolic links are neither listed nor followed."""
    found: list[tuple[str, str, int]] = []
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as exc:
            raise ValidationError(f"folder: cannot list {directory!r}: {exc.strerror}") from None
        for entry in entries:
            rel = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel + "/"))
                elif entry.is_file(follow_symlinks=False) and rel != exclude:
                    found.append((rel, entry.path, entry.stat(follow_symlinks=False).st_size))
            except FileNotFoundError:
                pass  # removed while we were listing: it is not part of the folder
    found.sort(key=lambda item: os.fsencode(item[0]))
    return found


def _preallocate(path: str, size: int) -> None:
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


class _Outputs:
    """The temporaries of one operation's output files: ``create`` makes one beside its
    final name, ``commit`` renames them all, leaving the ``with`` block removes whatever
    was not committed (error, cancel, timeout). An ``OSError`` inside the block becomes
    ``OperationError``."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, str, int | None]] = []  # temp, final, mode
        self._folders: list[str] = []  # made by make_folders, outermost first

    def __enter__(self) -> _Outputs:
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
