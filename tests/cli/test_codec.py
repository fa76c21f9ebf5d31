"""``compress`` and ``decompress`` against the real ``gzip`` and ``zstd``: each reads what
the other writes, stdin/stdout work like ``gzip -c``, and bad input is one error line
with no output left behind."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

from ._util import (
    leftovers,
    mixed_bytes,
    one_error_line,
    run_cli,
    tree,
    workerbridge_tmp_dirs,
)

DATA = mixed_bytes(5 << 20)


def tool(*args: str, cwd: Path, stdin: bytes | None = None) -> bytes:
    return subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, check=True).stdout


@pytest.mark.parametrize(
    ("fmt", "suffix", "decompress"),
    [("gzip", ".gz", ("gzip", "-d", "-c")), ("zstd", ".zst", ("zstd", "-d", "-c", "-q"))],
)
def test_compressed_files_are_read_by_the_standard_tool(
    work: Path, env: dict[str, str], fmt: str, suffix: str, decompress: tuple[str, ...]
) -> None:
    (work / "data.bin").write_bytes(DATA)
    # Small chunks: the output is many gzip members / zstd frames, as on a big file.
    result = run_cli("compress", "-F", fmt, "--chunk-size", "1M", "data.bin", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert result.stderr == ""
    assert tree(work) == ["data.bin", f"data.bin{suffix}"]  # the input is kept
    assert tool(*decompress, f"data.bin{suffix}", cwd=work) == DATA
    assert leftovers(result, work) == []


@pytest.mark.parametrize(
    ("suffix", "make"),
    [
        (".gz", ("gzip", "-c", "-6")),
        (".zst", ("zstd", "-c", "-q", "-3", "-T2")),
    ],
)
def test_decompress_reads_what_the_standard_tools_write(
    work: Path, env: dict[str, str], suffix: str, make: tuple[str, ...]
) -> None:
    packed = tool(*make, cwd=work, stdin=DATA)
    (work / f"data{suffix}").write_bytes(packed)
    result = run_cli("decompress", f"data{suffix}", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert (work / "data").read_bytes() == DATA
    assert leftovers(result, work) == []


def test_concatenated_gzip_members_decompress_whole(work: Path, env: dict[str, str]) -> None:
    first = gzip.compress(DATA[:1000])
    second = tool("gzip", "-c", cwd=work, stdin=DATA[1000:])
    (work / "cat.gz").write_bytes(first + second)
    result = run_cli("decompress", "-c", "cat.gz", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == DATA


def test_stdin_to_stdout_like_gzip_c(work: Path, env: dict[str, str], tmpdir_env: Path) -> None:
    for args in (("compress",), ("compress", "-")):
        result = run_cli(*args, cwd=work, stdin=DATA, env=env)
        assert result.returncode == 0, result.stderr
        assert gzip.decompress(result.stdout) == DATA
    packed = tool("gzip", "-c", cwd=work, stdin=DATA)
    result = run_cli("decompress", "-", cwd=work, stdin=packed, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == DATA
    zst = run_cli("compress", "-F", "zstd", "-", cwd=work, stdin=DATA, env=env)
    assert tool("zstd", "-d", "-c", "-q", cwd=work, stdin=zst.stdout) == DATA
    assert tree(work) == []  # nothing written beside
    assert workerbridge_tmp_dirs(tmpdir_env) == []  # spooled input and staged output gone


def test_several_files_and_json(work: Path, env: dict[str, str]) -> None:
    for name in ("a", "b", "c"):
        (work / name).write_bytes(DATA[: 100_000 * (ord(name) - 96)])
    result = run_cli("compress", "--json", "-F", "zstd", "a", "b", "c", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["output"] for r in report] == ["a.zst", "b.zst", "c.zst"]
    assert [r["bytes_in"] for r in report] == [100_000, 200_000, 300_000]
    assert all(r["bytes_out"] == (work / r["output"]).stat().st_size for r in report)
    for name in ("a", "b", "c"):
        os.rename(work / name, work / f"{name}.orig")
    result = run_cli("decompress", "a.zst", "b.zst", "c.zst", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    for name in ("a", "b", "c"):
        assert (work / name).read_bytes() == (work / f"{name}.orig").read_bytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", None, id="empty"),
        pytest.param(b"corrupt", None, id="corrupt-gzip"),
        pytest.param(b"random", None, id="unknown-format"),
    ],
)
def test_bad_compressed_input_is_one_line_and_leaves_nothing(
    work: Path, env: dict[str, str], content: bytes, message: str | None
) -> None:
    if content == b"corrupt":
        packed = bytearray(gzip.compress(DATA))
        packed[len(packed) // 2] ^= 0xFF
        content = bytes(packed)
    elif content == b"random":
        content = os.urandom(100_000)
    (work / "bad.gz").write_bytes(content)
    result = run_cli("decompress", "bad.gz", cwd=work, env=env)
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith("workerbridge: error: bad.gz: ")
    assert tree(work) == ["bad.gz"]  # no partial output, no temporary file
    assert leftovers(result, work) == []


def test_max_output_stops_a_bomb(work: Path, env: dict[str, str]) -> None:
    (work / "bomb.gz").write_bytes(gzip.compress(bytes(50 << 20)))
    result = run_cli("decompress", "--max-output", "1M", "bomb.gz", cwd=work, env=env)
    assert result.returncode == 1
    one_error_line(result)
    assert tree(work) == ["bomb.gz"]


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (("compress", "nope"), 1, "nope: No such file or directory"),
        (("compress", "a", "b", "-o", "x.gz"), 2, "--output FILE takes one input"),
        (("compress", "a"), 1, "a.gz already exists; use --force"),
        (("compress", "-F", "rar", "a"), 2, "invalid choice: 'rar'"),
        (("compress", "--chunk-size", "lots", "a"), 2, "not a size"),
        (("decompress", "a"), 1, "a: unknown suffix"),
        (("compress", "--json", "-c", "a"), 2, "--json prints the result on stdout"),
        (("compress", "--workers", "0", "a"), 2, "must be at least 1"),
        (("compress", "-f", "-l", "99", "a"), 2, "level 99 is out of range for gzip"),
    ],
)
def test_usage_and_input_errors(
    work: Path, env: dict[str, str], args: tuple[str, ...], code: int, expected: str
) -> None:
    (work / "a").write_bytes(b"a")
    (work / "b").write_bytes(b"b")
    (work / "a.gz").write_bytes(gzip.compress(b"old"))
    result = run_cli(*args, cwd=work, env=env)
    assert result.returncode == code
    assert expected in one_error_line(result)
    assert gzip.decompress((work / "a.gz").read_bytes()) == b"old"  # never overwritten


def test_force_replaces_an_existing_output(work: Path, env: dict[str, str]) -> None:
    (work / "a").write_bytes(DATA[:100_000])
    (work / "a.gz").write_bytes(b"old")
    result = run_cli("compress", "-f", "a", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert gzip.decompress((work / "a.gz").read_bytes()) == DATA[:100_000]
    (work / "a").write_bytes(b"stale")
    result = run_cli("decompress", "--force", "a.gz", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert (work / "a").read_bytes() == DATA[:100_000]
