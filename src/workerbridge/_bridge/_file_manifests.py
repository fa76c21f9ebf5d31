"""The checksum manifests of ``FileBridge``: which files a new manifest lists, and where
the entries of a manifest to verify stand before they are hashed.

Listing and locating run in the caller, before the job starts; the hashing itself is the
file channel's (``hash_many`` / ``verify_many``).
"""

from __future__ import annotations

import os
import stat

from .._channels._hashing import ManifestReport, parse_manifest
from .._exceptions import ValidationError

__all__ = ["locate_entries", "manifest_files", "manifest_report", "read_manifest"]


def manifest_files(root: str, target: str | None) -> list[tuple[str, str, int]]:
    """``(relative POSIX path, path, size)`` of the files the manifest of ``root`` lists:
    every regular file under it but ``target`` (the manifest's own output) when that lies
    inside ``root``, so that the manifest never lists itself."""
    exclude = None
    if target is not None:
        inside = os.path.relpath(os.path.realpath(target), os.path.realpath(root))
        if not inside.startswith(".." + os.sep) and inside != "..":
            exclude = inside
    return _list_files(root, exclude)


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


def read_manifest(source: str, algorithm: str) -> list[tuple[str, str]]:
    """The ``(name, digest)`` entries of the manifest file ``source``.

    Raises:
        ValidationError: it cannot be read, or is not in the format (``parse_manifest``).
    """
    try:
        with open(source, "rb") as file:
            text = os.fsdecode(file.read())
    except OSError as exc:
        raise ValidationError(f"manifest: cannot read {source!r}: {exc.strerror}") from None
    return parse_manifest(text, algorithm)


def locate_entries(
    entries: list[tuple[str, str]], root: str
) -> tuple[list[str | None], list[tuple[int, str, str, int]]]:
    """Each entry's status as far as ``os.stat`` tells it (``"missing"``, ``"failed"`` for
    something that is not a regular file, None for a file still to hash), and the files to
    hash as ``(index of the entry, path, digest, size)``. Names are relative to ``root``
    (absolute ones are used as they are)."""
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
    return statuses, checks


def manifest_report(entries: list[tuple[str, str]], found: list[str | None]) -> ManifestReport:
    """The report of a verification: the names of ``entries`` by their status in ``found``
    (``"ok"``, ``"failed"`` or ``"missing"``, one per entry), each group in manifest order."""
    by_status: dict[str | None, list[str]] = {"ok": [], "failed": [], "missing": []}
    for (name, _), status in zip(entries, found, strict=True):
        by_status[status].append(name)
    return ManifestReport(
        ok=tuple(by_status["ok"]),
        failed=tuple(by_status["failed"]),
        missing=tuple(by_status["missing"]),
    )
