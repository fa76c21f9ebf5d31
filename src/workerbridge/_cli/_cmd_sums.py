"""``hash``, ``manifest`` and ``verify``: checksums in the format of ``sha256sum``.

``hash`` starts one ``file.hash_file`` per large input (at most two per worker in flight,
so no worker waits for the next file), which gives a progress line per file, and one
``file.hash_files`` for all the small ones (packed many to a worker call); ``manifest`` and
``verify`` are one ``checksum_manifest`` / ``verify_manifest`` operation each over the
folder. Every input is checked before the pool starts, so a missing file costs nothing
and names itself in one line.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from .._channels._hashing import ManifestReport
from ._checksums import check_name, digest_line, manifest_names, without_name
from ._errors import EXIT_FAILURE, EXIT_OK, CliError
from ._files import STDIO, check_input, check_output, write_atomic
from ._runner import Work, run_all
from ._session import Session
from ._units import human_bytes, human_rate, human_seconds

__all__ = ["cmd_hash", "cmd_manifest", "cmd_verify"]


def _summary(session: Session, verb: str, count: int, nbytes: int, seconds: float) -> None:
    things = f"{count} file{'s' if count != 1 else ''}"
    session.note(
        f"{verb} {things}, {human_bytes(nbytes)} in {human_seconds(seconds)}"
        f" ({human_rate(nbytes, seconds)}, {session.pool.size} {session.pool.backend} workers)"
    )


#: Files at least this big get a progress line (and worker calls) of their own; smaller
#: ones are hashed together by one ``hash_files``, which packs many into each worker call.
_OWN_LINE_BYTES = 4 << 20


def cmd_hash(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge hash [FILE...]``: what ``sha256sum FILE...`` prints."""
    names: list[str] = args.files or [STDIO]
    checked = {name: check_input(name) for name in names if name != STDIO}
    # What each name on the command line hashes. As with sha256sum, stdin (or a pipe) is
    # read by its first mention: the next ones read nothing, and hash as empty input.
    paths: list[str] = []
    sizes: dict[str, int] = {}
    streams_read: set[str] = set()
    for name in names:
        if name == STDIO or checked[name] is None:
            if name in streams_read:
                path, size = session.temp.empty_file(), 0
            else:
                streams_read.add(name)
                path, size = session.temp.prepare(name, checked.get(name))
        else:
            path, size = name, checked[name] or 0
        paths.append(path)
        sizes[path] = size
    algorithm: str = args.algorithm
    files = session.bridge.file
    unique = list(dict.fromkeys(paths))
    large = [p for p in unique if sizes[p] >= _OWN_LINE_BYTES]
    small = [p for p in unique if sizes[p] < _OWN_LINE_BYTES]
    label = dict(zip(paths, names, strict=True))

    def one(path: str) -> Work[Any]:
        return Work(
            label[path], sizes[path], lambda cb: files.hash_file(path, algorithm, on_progress=cb)
        )

    works = [one(path) for path in large]
    if small:
        works.append(
            Work(
                f"{len(small)} file{'s' if len(small) != 1 else ''}",
                sum(sizes[p] for p in small),
                lambda cb: files.hash_files(small, algorithm, on_progress=cb),
            )
        )
    outcome = run_all(session, works, title=algorithm, window=2 * session.pool.size)
    found: list[str] = []
    for result in outcome.results:  # a digest (hash_file) or [(path, digest)] (hash_files)
        found += [result] if isinstance(result, str) else [digest for _path, digest in result]
    digests = dict(zip([*large, *small], found, strict=True))
    pairs = [(name, digests[path]) for name, path in zip(names, paths, strict=True)]
    if session.options.json:
        session.emit_json(
            [{"file": name, "algorithm": algorithm, "digest": digest} for name, digest in pairs]
        )
    else:
        session.out("".join(digest_line(digest, name) + "\n" for name, digest in pairs))
    _summary(session, "hashed", len(names), outcome.nbytes, outcome.seconds)
    return EXIT_OK


def cmd_manifest(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge manifest FOLDER [-o FILE]``: a manifest ``sha256sum -c`` accepts."""
    folder: str = args.folder
    if not os.path.isdir(folder):
        what = "Not a directory" if os.path.exists(folder) else "No such file or directory"
        raise CliError(f"{folder}: {what}")
    output: str | None = args.output
    if output is not None and output != STDIO:
        check_output(output, force=args.force)
    algorithm: str = args.algorithm
    files = session.bridge.file
    work = Work(
        folder,
        None,
        lambda cb: files.checksum_manifest(folder, algorithm, on_progress=cb),
    )
    outcome = run_all(session, [work], title="manifest")
    text: str = outcome.results[0]
    if output is not None and output != STDIO:
        inside = os.path.relpath(os.path.abspath(output), os.path.abspath(folder))
        if not inside.startswith(os.pardir + os.sep):
            # An older manifest at the output path was hashed with the rest; it is about
            # to be replaced, so its line would fail every later check.
            text = without_name(text, inside)
    count = len(manifest_names(text))
    if output is not None and output != STDIO:
        write_atomic(output, os.fsencode(text))
    if session.options.json:
        session.emit_json(
            {"folder": folder, "algorithm": algorithm, "files": count, "output": output}
            | ({"manifest": text} if output is None or output == STDIO else {})
        )
    elif output is None or output == STDIO:
        session.out(text)
    _summary(session, "hashed", count, outcome.nbytes, outcome.seconds)
    return EXIT_OK


def cmd_verify(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge verify MANIFEST``: ``sha256sum -c MANIFEST``, in parallel."""
    manifest: str = args.manifest
    manifest, _ = session.temp.prepare(
        manifest, None if manifest == STDIO else check_input(manifest)
    )
    folder: str = args.directory if args.directory is not None else os.getcwd()
    if not os.path.isdir(folder):
        raise CliError(f"{folder}: No such file or directory")
    algorithm: str = args.algorithm
    files = session.bridge.file
    label = args.manifest if args.manifest != STDIO else "stdin"
    work: Work[ManifestReport] = Work(
        label,
        None,
        lambda cb: files.verify_manifest(manifest, folder, algorithm, on_progress=cb),
    )
    outcome = run_all(session, [work], title="verify")
    report: ManifestReport = outcome.results[0]
    if not (report.ok or report.failed or report.missing):
        raise CliError(f"{label}: no properly formatted checksum lines found")
    ok, failed, missing = set(report.ok), set(report.failed), set(report.missing)
    with open(manifest, "rb") as f:
        order = manifest_names(os.fsdecode(f.read()))
    listed = set(order)
    order += [n for n in (*report.ok, *report.failed, *report.missing) if n not in listed]
    if session.options.json:
        session.emit_json(
            {
                "manifest": args.manifest,
                "passed": bool(report.passed),
                "ok": list(report.ok),
                "failed": list(report.failed),
                "missing": list(report.missing),
            }
        )
    else:
        lines = []
        for name in order:
            if name in failed:
                lines.append(f"{check_name(name)}: FAILED\n")
            elif name in missing:
                lines.append(f"{check_name(name)}: FAILED open or read\n")
            elif name in ok and not session.options.quiet:  # sha256sum -c --quiet
                lines.append(f"{check_name(name)}: OK\n")
        session.out("".join(lines))
    problems = []
    if missing:
        n = len(missing)
        problems.append(f"{n} listed file{'s' if n != 1 else ''} could not be read")
    if failed:
        n = len(failed)
        problems.append(f"{n} computed checksum{'s' if n != 1 else ''} did NOT match")
    if problems:
        session.warn(", ".join(problems))
        return EXIT_FAILURE
    _summary(session, "verified", len(ok), outcome.nbytes, outcome.seconds)
    return EXIT_OK
