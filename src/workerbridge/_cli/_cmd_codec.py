"""``compress`` and ``decompress``: parallel chunks whose output the standard tools read
(multi-member gzip for ``gzip -d``, multi-frame zstd for ``zstd -d``), and that read what
those tools write."""

from __future__ import annotations

import argparse
from typing import Any

from ._files import strip_suffix
from ._session import Session
from ._transform import plan, run

__all__ = ["SUFFIXES", "cmd_compress", "cmd_decompress"]

#: The file name suffix of each format (the one its standard tool uses).
SUFFIXES = {
    "gzip": ".gz",
    "zstd": ".zst",
    "zlib": ".zz",
    "brotli": ".br",
    "lz4": ".lz4",
    "bz2": ".bz2",
    "xz": ".xz",
}
#: Suffixes ``decompress`` removes to name its output (``.tgz`` becomes ``.tar``).
_STRIP = (*SUFFIXES.values(), ".zstd", ".gzip")


def cmd_compress(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge compress [FILE...]``: FILE -> FILE.gz (or the format's suffix)."""
    fmt: str = args.format
    suffix = SUFFIXES[fmt]
    targets = plan(
        session,
        args,
        default_output=lambda name: name + suffix,
        binary_output=True,
        no_default="",
    )
    # --force was checked against every output already; the bridge refuses to replace a
    # file unless told (and never replaces one that appears while it runs).
    options: dict[str, Any] = {"format": fmt, "level": args.level, "overwrite": args.force}
    if args.chunk_size is not None:
        options["chunk_size"] = args.chunk_size
    compression = session.bridge.compression
    return run(
        session,
        targets,
        lambda src, dst, cb: compression.compress_file(src, dst, on_progress=cb, **options),
        verb="compressed",
        title=f"compress ({fmt})",
    )


def _decompressed_name(name: str) -> str | None:
    if name.endswith(".tgz"):
        return name[: -len(".tgz")] + ".tar"
    return strip_suffix(name, _STRIP)


def cmd_decompress(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge decompress [FILE...]``: FILE.gz -> FILE (any supported format,
    detected from the data unless ``--format``)."""
    targets = plan(
        session,
        args,
        default_output=_decompressed_name,
        binary_output=False,
        no_default="unknown suffix (expected one of " + ", ".join(_STRIP) + "); use -o or -c",
    )
    compression = session.bridge.compression
    fmt: str | None = args.format
    limit: int | None = args.max_output
    return run(
        session,
        targets,
        lambda src, dst, cb: compression.decompress_file(
            src, dst, format=fmt, max_output=limit, overwrite=args.force, on_progress=cb
        ),
        verb="decompressed",
        title="decompress",
    )
