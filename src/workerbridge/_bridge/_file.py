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

The argument checks are in ``_file_paths``, the temporaries in ``_file_outputs``, the
listing and locating of manifest entries in ``_file_manifests``.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Sequence
from typing import Any, final

from .._channels._hashing import ManifestReport, check_algorithm, format_line
from .._channels._results import FileResult
from .._exceptions import ValidationError
from .._pool import ProgressInfo, TaskHandle, WorkerPool
from ._file_manifests import locate_entries, manifest_files, manifest_report, read_manifest
from ._file_outputs import Outputs, preallocate
from ._file_paths import (
    check_folder,
    check_non_negative,
    check_output_folder,
    check_output_path,
    check_regular_file,
    check_regular_files,
)
from ._job import Job, OperationOptions, call_once, start_job

__all__ = ["FileBridge"]

PathLike = str | os.PathLike[str]
Data = bytes | bytearray | memoryview
ProgressCallback = Callable[[ProgressInfo], object]

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
        name, _ = check_regular_file(path, "path")
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
        files = check_regular_files(paths, "paths")
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
        name, info = check_regular_file(path, "path")
        check_non_negative(offset, "offset")
        if length is not None:
            check_non_negative(length, "length")
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
        target = check_output_path(path, "path")
        size = memoryview(data).nbytes

        def driver(job: Job[FileResult]) -> FileResult:
            with Outputs() as outputs:
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
        source, info = check_regular_file(src, "src")
        target = check_output_path(dst, "dst")
        with contextlib.suppress(OSError):
            if os.path.samefile(source, target):
                raise ValidationError(f"dst is the same file as src: {target!r}")

        def driver(job: Job[FileResult]) -> FileResult:
            with Outputs() as outputs:
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
        source, info = check_regular_file(path, "path")
        if isinstance(part_size, bool) or not isinstance(part_size, int) or part_size <= 0:
            raise ValidationError(f"part_size must be an int > 0, got {part_size!r}")
        folder = os.path.dirname(source) or "." if output_dir is None else output_dir
        folder = check_output_folder(folder, "output_dir")
        size = info.st_size
        count = max(1, -(-size // part_size))
        digits = max(_PART_DIGITS, len(str(count)))
        base = os.path.join(folder, os.path.basename(source))
        finals = [f"{base}.part{i:0{digits}d}" for i in range(1, count + 1)]

        def driver(job: Job[list[str]]) -> list[str]:
            with Outputs() as outputs:
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
        files = check_regular_files(parts, "parts")
        if not files:
            raise ValidationError("parts must name at least one file")
        target = check_output_path(output, "output")
        offsets = [0]
        for _, info in files:
            offsets.append(offsets[-1] + info.st_size)
        total = offsets[-1]

        def driver(job: Job[FileResult]) -> FileResult:
            with Outputs() as outputs:
                temp = outputs.create(target)
                preallocate(temp, total)
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
        root = check_folder(folder, "folder")
        check_algorithm(algorithm)
        target = None if output is None else check_output_path(output, "output")
        files = manifest_files(root, target)

        def driver(job: Job[str]) -> str:
            paths = [path for _, path, _ in files]
            digests = self._hash_all(job, paths, [size for *_, size in files], algorithm)
            text = "".join(
                format_line(digest, rel) for (rel, _, _), digest in zip(files, digests, strict=True)
            )
            if target is not None:
                with Outputs() as outputs:
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
        source, _ = check_regular_file(manifest, "manifest")
        root = os.path.dirname(os.path.abspath(source)) if folder is None else None
        root = check_folder(folder, "folder") if root is None else root
        check_algorithm(algorithm)
        entries = read_manifest(source, algorithm)
        statuses, checks = locate_entries(entries, root)

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
            return manifest_report(entries, found)

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


# ---------------------------------------------------------------------- batching
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
