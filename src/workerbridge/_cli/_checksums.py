"""The text format of ``sha256sum`` (GNU coreutils), byte for byte.

A line is ``<hex digest>  <name>`` (two spaces: text mode). A name holding a backslash,
a newline or a carriage return cannot be written as it is, so coreutils writes the line
with a leading backslash and the name with ``\\\\``, ``\\n`` and ``\\r`` escapes; the
``-c`` report (``name: OK``) escapes a name only when it holds a newline. Names are
bytes on Linux: non-UTF-8 names round-trip through ``os.fsencode``/``fsdecode``
(surrogateescape), so they print as the same bytes ``sha256sum`` prints.
"""

from __future__ import annotations

import re

__all__ = ["check_name", "digest_line", "manifest_names", "without_name"]

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}
_LINE = re.compile(r"^(\\?)([0-9a-fA-F]+) [ *](.*)$", re.DOTALL)


def _escape(name: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in name)


def digest_line(digest: str, name: str) -> str:
    """The line ``sha256sum`` prints for ``name`` (without the newline)."""
    if any(ch in name for ch in _ESCAPES):
        return f"\\{digest}  {_escape(name)}"
    return f"{digest}  {name}"


def check_name(name: str) -> str:
    """``name`` as ``sha256sum -c`` prints it before ``: OK`` / ``: FAILED``."""
    return f"\\{_escape(name)}" if "\n" in name else name


def _unescape(text: str) -> str | None:
    out: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        if nxt not in _UNESCAPES:
            return None  # coreutils rejects the line as improperly formatted
        out.append(_UNESCAPES[nxt])
    return "".join(out)


def _name_of(line: str) -> str | None:
    match = _LINE.match(line[:-1] if line.endswith("\r") else line)
    if match is None:
        return None
    escaped, _digest, name = match.groups()
    return _unescape(name) if escaped else name


def without_name(text: str, name: str) -> str:
    """The checksum list ``text`` without the line of ``name``."""
    # split("\n"), not splitlines(): a name may hold other line-breaking characters.
    return "\n".join(line for line in text.split("\n") if _name_of(line) != name)


def manifest_names(text: str) -> list[str]:
    """The file names of a checksum list, in order (lines that are not checksum lines are
    skipped, as ``sha256sum -c`` skips them with a warning)."""
    names = (_name_of(line) for line in text.split("\n"))
    return [name for name in names if name]
