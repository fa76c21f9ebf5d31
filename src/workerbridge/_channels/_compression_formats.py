"""What the compression channel knows about its formats, without importing any codec: names,
levels, file suffixes and magic bytes.

Both sides use it: the caller checks a level or a format before anything is dispatched, the
worker detects the format of its input. It imports nothing heavy, so the caller does not pay
for zstandard, brotli or lz4 until a worker (or the inline backend) needs them.
"""

from __future__ import annotations

from typing import Final

from .._exceptions import FormatError, ValidationError

__all__ = [
    "FORMATS",
    "LEVELS",
    "SUFFIXES",
    "check_format",
    "check_level",
    "detect_format",
    "strip_suffix",
]

#: Every format, in the order the documentation lists them.
FORMATS: Final = ("gzip", "zlib", "zstd", "brotli", "lz4", "bz2", "xz")

#: format -> (lowest level, highest level, default level). The defaults are those of the
#: format's own command-line tool (gzip -6, zstd -3, lz4 -1 = lz4.frame level 0, bzip2 -9,
#: xz -6; zlib has no tool and takes gzip's), except brotli: its tool's default, quality 11,
#: compresses at well under 1 MB/s, so the default here is 6 (about 30x faster, and what web
#: servers use for content compressed on the fly). zstd accepts its negative "fast" levels
#: and 0, which libzstd reads as its default (3).
LEVELS: Final[dict[str, tuple[int, int, int]]] = {
    "gzip": (0, 9, 6),
    "zlib": (0, 9, 6),
    "zstd": (-131072, 22, 3),
    "brotli": (0, 11, 6),
    "lz4": (0, 16, 0),
    "bz2": (1, 9, 9),
    "xz": (0, 9, 6),
}

#: format -> the suffix ``compress_file`` appends by default (``.zz`` for zlib, as pigz -z).
SUFFIXES: Final[dict[str, str]] = {
    "gzip": ".gz",
    "zlib": ".zz",
    "zstd": ".zst",
    "brotli": ".br",
    "lz4": ".lz4",
    "bz2": ".bz2",
    "xz": ".xz",
}

#: Suffixes ``decompress_file`` removes to name its output, and what replaces them (the
#: tar shorthands become ``.tar``, as gzip -d does for ``.tgz``).
_STRIPPED: Final[dict[str, str]] = {
    ".gz": "",
    ".gzip": "",
    ".zz": "",
    ".zst": "",
    ".zstd": "",
    ".br": "",
    ".lz4": "",
    ".bz2": "",
    ".xz": "",
    ".tgz": ".tar",
    ".tzst": ".tar",
    ".tbz": ".tar",
    ".tbz2": ".tar",
    ".txz": ".tar",
}

#: The longest magic (xz's) is 6 bytes: how much of its input detection needs to see.
MAGIC_BYTES: Final = 6


def check_format(fmt: object, *, name: str = "format") -> str:
    """``fmt`` if it is one of ``FORMATS``.

    Raises:
        ValidationError: anything else (the message lists the formats).
    """
    if not isinstance(fmt, str) or fmt not in LEVELS:
        raise ValidationError(f"{name} must be one of {', '.join(FORMATS)}; got {fmt!r}")
    return fmt


def check_level(fmt: str, level: object) -> int:
    """The level to use: ``level``, or the format's default when it is None.

    Raises:
        ValidationError: not an int, or outside the format's range (the message names the
            level and the range).
    """
    low, high, default = LEVELS[fmt]
    if level is None:
        return default
    if isinstance(level, bool) or not isinstance(level, int):
        raise ValidationError(f"level must be an int or None, got {level!r}")
    if not low <= level <= high:
        raise ValidationError(
            f"level {level} is out of range for {fmt}: allowed {low} to {high} (default {default})"
        )
    return level


def detect_format(head: bytes) -> str:
    """The format whose magic bytes ``head`` (the first ``MAGIC_BYTES`` of the input, or
    all of it when shorter) starts with.

    zstd's skippable frames (which lz4 shares) count as zstd. zlib has no magic, only a
    header whose two bytes pass a check that 1 in 500 random pairs pass too, so it is
    tried last. brotli has neither and is never detected.

    Raises:
        FormatError: empty input, or no known format.
    """
    if not head:
        raise FormatError("empty input: there is no compressed data to detect a format from")
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd" or (
        len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50
    ):
        return "zstd"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh" and head[3:4] in (b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9"):
        return "bz2"
    if head[:4] == b"\x04\x22\x4d\x18":
        return "lz4"
    if len(head) >= 2:
        cmf, flg = head[0], head[1]
        # Deflate (method 8) with a window of at most 32 KiB, and a valid check value.
        if cmf & 0x0F == 8 and cmf >> 4 <= 7 and ((cmf << 8) | flg) % 31 == 0:
            return "zlib"
    raise FormatError(
        f"unknown compression format (first bytes {head[:MAGIC_BYTES].hex()}): not gzip, "
        "zlib, zstd, lz4, bz2 or xz; brotli has no magic bytes, so pass format='brotli' "
        "for brotli data"
    )


def strip_suffix(name: str) -> str | None:
    """``name`` without its compression suffix (``a.tar.gz`` -> ``a.tar``, ``a.tgz`` ->
    ``a.tar``), or None when it has none of the known ones or nothing would remain."""
    lowered = name.lower()
    for suffix, replacement in _STRIPPED.items():
        if lowered.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            if stem.endswith(("/", "\\")):
                return None
            return stem + replacement
    return None
