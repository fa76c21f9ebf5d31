"""Sizes and rates as people write and read them (``4M``, ``1.5 GiB``, ``212 MiB/s``)."""

from __future__ import annotations

import re

__all__ = ["human_bytes", "human_rate", "human_seconds", "parse_size"]

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"4M"``, ``"4MiB"``, ``"64k"``, ``"1.5G"`` or ``"1048576"`` as bytes (binary units:
    ``k`` is 1024, like ``split -b`` and ``zstd``).

    Raises:
        ValueError: not a size (argparse turns it into a usage error).
    """
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (examples: 4M, 64k, 1G)")
    number, unit = match.groups()
    value = int(float(number) * _UNITS[unit.lower()])
    if value <= 0:
        raise ValueError(f"size must be > 0, got {text!r}")
    return value


def human_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_rate(count: float, seconds: float) -> str:
    """Bytes per second, e.g. ``"212.3 MiB/s"``."""
    if seconds <= 0:
        return "-"
    return f"{human_bytes(count / seconds)}/s"


def human_seconds(seconds: float) -> str:
    """``0.0123`` -> ``"12 ms"``, ``3.21`` -> ``"3.2 s"``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"
