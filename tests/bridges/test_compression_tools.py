"""The compression bridge against the real command-line tools: what ``compress_file``
writes, ``gzip -d``, ``zstd -d`` (and bzip2, xz, lz4, pigz where installed) read back
byte for byte; what those tools write (single and multi-member, multi-threaded, piped
without a content size, concatenated with ``cat``), ``decompress_file`` and ``decompress``
read back. gzip and zstd are always there (``make test`` installs them); the others are
skipped when missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TypeVar

import pytest

from workerbridge import FormatError, TaskHandle, WorkerBridge, WorkerPool

T = TypeVar("T")
TIMEOUT = 60
KiB, MiB = 1 << 10, 1 << 20
CHUNK = 64 * KiB  # chunk results stay below the shared-memory threshold (module pool)
SUFFIX = {"gzip": ".gz", "zlib": ".zz", "zstd": ".zst", "lz4": ".lz4", "bz2": ".bz2", "xz": ".xz"}


def _result(handle: TaskHandle[T]) -> T:
    return handle.result(timeout=TIMEOUT)


def _data(size: int) -> bytes:
    text = b"".join(b"%d: the quick brown fox, case %d\n" % (i, i * 7 % 13) for i in range(3000))
    noise = bytes((i * 2654435761 >> 13) & 0xFF for i in range(16 * KiB))
    block = text[: 48 * KiB] + noise + bytes(3 * KiB)
    return (block * (size // len(block) + 1))[:size]


DATA = _data(2 * MiB + 4321)  # 34 chunks of CHUNK, the last one partial


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if name in ("gzip", "zstd"):
            pytest.fail(f"{name} must be installed for these tests (make test installs it)")
        pytest.skip(f"{name} is not installed")
    return path


def _run(argv: list[str], stdin: bytes | None = None) -> bytes:
    done = subprocess.run(argv, input=stdin, capture_output=True, check=True, timeout=TIMEOUT)
    return done.stdout


# --------------------------------------------------------------------------- bridge -> tools
READERS = {
    "gzip": [["gzip", "-dc"], ["pigz", "-dc"]],
    "zstd": [["zstd", "-dcq"]],
    "zlib": [["pigz", "-dc"]],
    "bz2": [["bzip2", "-dc"]],
    "xz": [["xz", "-dc"]],
    "lz4": [["lz4", "-dc"]],
}


@pytest.mark.parametrize("fmt", sorted(READERS))
def test_compress_file_output_is_read_by_the_tools(
    bridge: WorkerBridge, fmt: str, tmp_path: Path
) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(DATA)
    level = {"bz2": 1, "xz": 1}.get(fmt)
    result = _result(
        bridge.compression.compress_file(src, format=fmt, level=level, chunk_size=CHUNK)
    )
    out = Path(result.path)
    assert out.name == "data.bin" + SUFFIX[fmt]
    for reader in READERS[fmt]:
        if reader[0] == "pigz" and shutil.which("pigz") is None:
            continue
        argv = [_tool(reader[0]), *reader[1:], str(out)]
        assert _run(argv) == DATA, argv
    if fmt == "gzip":
        _run([_tool("gzip"), "-t", str(out)])  # and its integrity test passes
    if fmt == "zstd":
        _run([_tool("zstd"), "-tq", str(out)])


def test_empty_file_is_read_by_the_tools(bridge: WorkerBridge, tmp_path: Path) -> None:
    src = tmp_path / "empty"
    src.write_bytes(b"")
    for fmt, reader in (("gzip", ["gzip", "-dc"]), ("zstd", ["zstd", "-dcq"])):
        out = Path(_result(bridge.compression.compress_file(src, format=fmt)).path)
        assert _run([_tool(reader[0]), *reader[1:], str(out)]) == b""


# --------------------------------------------------------------------------- tools -> bridge
#: name -> (shell-free recipe: a list of argv run on the input, whose outputs are
#: concatenated), the output's suffix. ``-`` reads the input from stdin, so that the tool
#: writes no content size.
CASES: dict[str, tuple[list[list[str]], str]] = {
    "gzip -6": ([["gzip", "-6", "-c", "{in}"]], ".gz"),
    "gzip -1 | gzip -9 (cat a.gz b.gz)": (
        [["gzip", "-1", "-c", "{in}"], ["gzip", "-9", "-c", "{in}"]],
        ".gz",
    ),
    "gzip from stdin": ([["gzip", "-6", "-c", "-"]], ".gz"),
    "pigz -6 -p 2": ([["pigz", "-6", "-p", "2", "-c", "{in}"]], ".gz"),
    "pigz -z (zlib)": ([["pigz", "-z", "-c", "{in}"]], ".zz"),
    "zstd -3": ([["zstd", "-3", "-c", "-q", "{in}"]], ".zst"),
    "zstd -3 -T2": ([["zstd", "-3", "-T2", "-c", "-q", "{in}"]], ".zst"),
    "zstd -19 --long=24": ([["zstd", "-19", "--long=24", "-c", "-q", "{in}"]], ".zst"),
    "zstd from stdin (no content size)": ([["zstd", "-3", "-c", "-q", "-"]], ".zst"),
    "zstd --no-check": ([["zstd", "-1", "--no-check", "-c", "-q", "{in}"]], ".zst"),
    "cat a.zst b.zst": (
        [["zstd", "-1", "-c", "-q", "{in}"], ["zstd", "-5", "-c", "-q", "-"]],
        ".zst",
    ),
    "pzstd -p 2 (multi-frame)": ([["pzstd", "-p", "2", "-3", "-c", "-q", "{in}"]], ".zst"),
    "bzip2 -9": ([["bzip2", "-9", "-c", "{in}"]], ".bz2"),
    "cat a.bz2 b.bz2": ([["bzip2", "-1", "-c", "{in}"], ["bzip2", "-9", "-c", "{in}"]], ".bz2"),
    "xz -6": ([["xz", "-6", "-c", "{in}"]], ".xz"),
    "xz -T2 (multi-block)": ([["xz", "-1", "-T2", "--block-size=300KiB", "-c", "{in}"]], ".xz"),
    "cat a.xz b.xz": ([["xz", "-1", "-c", "{in}"], ["xz", "-0", "-c", "{in}"]], ".xz"),
    "lz4": ([["lz4", "-c", "-q", "{in}"]], ".lz4"),
    "lz4 -9 --content-size, linked blocks": (
        [["lz4", "-9", "-BD", "--content-size", "-c", "-q", "{in}"]],
        ".lz4",
    ),
    "cat a.lz4 b.lz4 (from stdin)": (
        [["lz4", "-c", "-q", "-"], ["lz4", "-1", "-c", "-q", "-"]],
        ".lz4",
    ),
}


def _make(name: str, folder: Path, data: bytes) -> tuple[Path, bytes]:
    """Run the case's tools on ``data``; the compressed file and what it holds."""
    recipe, suffix = CASES[name]
    src = folder / "input.bin"
    src.write_bytes(data)
    blob = b""
    for argv in recipe:
        tool = _tool(argv[0])
        stdin = data if "-" in argv else None
        blob += _run([tool, *(str(src) if a == "{in}" else a for a in argv[1:])], stdin)
    out = folder / ("made" + suffix)
    out.write_bytes(blob)
    return out, data * len(recipe)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    """Every case's file, made once for the module (the tools run a few hundred ms)."""
    files: dict[str, tuple[Path, bytes]] = {}
    for i, name in enumerate(CASES):
        if shutil.which(CASES[name][0][0][0]) is None:
            continue
        folder = tmp_path_factory.mktemp(f"case{i}")
        files[name] = _make(name, folder, DATA)
    return files


@pytest.mark.parametrize("name", list(CASES))
def test_tool_output_decompresses(
    bridge: WorkerBridge, name: str, made: dict[str, tuple[Path, bytes]], tmp_path: Path
) -> None:
    if name not in made:
        pytest.skip(f"{CASES[name][0][0][0]} is not installed")
    path, expected = made[name]
    out = tmp_path / "out.bin"
    result = _result(bridge.compression.decompress_file(path, out))  # format detected
    assert out.read_bytes() == expected
    assert (result.bytes_in, result.bytes_out) == (path.stat().st_size, len(expected))
    # Cut anywhere, it is an error, never a shorter output.
    blob = path.read_bytes()
    cut = tmp_path / ("cut" + path.suffix)
    cut.write_bytes(blob[: len(blob) - 1])
    with pytest.raises(FormatError):
        _result(bridge.compression.decompress_file(cut, tmp_path / "cut.out"))
    assert not (tmp_path / "cut.out").exists()


def test_tool_output_decompresses_in_memory(tmp_path: Path) -> None:
    # A pool of its own: these inputs and outputs go through shared memory, whose blocks a
    # pool keeps for reuse (which the leak check would count against the module's pool).
    data = DATA[: 700 * KiB]
    with WorkerPool(2) as pool:
        c = WorkerBridge(pool=pool).compression
        for i, name in enumerate(CASES):
            if shutil.which(CASES[name][0][0][0]) is None:
                continue
            folder = tmp_path / f"case{i}"
            folder.mkdir()
            path, expected = _make(name, folder, data)
            assert _result(c.decompress(path.read_bytes())) == expected, name
