"""On a terminal: progress bars on stderr (bytes, percent, rate, per-file lines, the pool's
workers line) and a summary line; nothing of the kind with ``--quiet``; the key prompt;
binary data refused on a terminal."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from pathlib import Path

from ._util import PtyRun, leftovers, run_cli

#: Random data compresses slowly at level 9 (zlib must still search every match): with one
#: worker this lasts long enough for the display, whatever the machine.
BIG = 48 << 20


def test_progress_bar_and_summary_on_a_terminal(work: Path, env: dict[str, str]) -> None:
    (work / "big.bin").write_bytes(os.urandom(BIG))
    run = PtyRun(
        "-w", "1", "compress", "-l", "9", "big.bin", cwd=work, env=env,
        stdout_path=work.parent / "stdout",
    )  # fmt: skip
    bar = run.wait_for(r"compress \(gzip\) big\.bin .*?(\d+)% +[\d.]+/48\.0 MiB +[\d.]+ [KMG]iB/s")
    assert 0 <= int(bar.group(1)) <= 100
    run.wait_for(r"pool: 1 process worker \[\d+ busy\]")
    result = run.wait()
    assert result.returncode == 0, result.stderr
    assert re.search(r"compressed 1 file, 48\.0 MiB -> [\d.]+ MiB \(\d+\.\d%\) in ", result.stderr)
    assert (work.parent / "stdout").read_bytes() == b""  # stdout stays clean
    assert subprocess.run(["gzip", "-t", str(work / "big.bin.gz")], check=False).returncode == 0
    assert leftovers(result, work) == []


def test_many_files_get_a_line_each_while_they_run(work: Path, env: dict[str, str]) -> None:
    names = [f"part{i}.bin" for i in range(4)]
    for name in names:
        (work / name).write_bytes(os.urandom(BIG // 4))
    run = PtyRun("-w", "2", "compress", "-l", "9", *names, cwd=work, env=env)
    run.wait_for(r"compress \(gzip\) +\S+ +\d+% +[\d.]+/48\.0 MiB")  # the whole run
    run.wait_for(r"part0\.bin .*?\d+% .*?/12\.0 MiB")  # a file of it
    result = run.wait()
    assert result.returncode == 0, result.stderr
    assert "compressed 4 files, 48.0 MiB" in result.stderr
    for name in names:
        assert gzip.decompress((work / f"{name}.gz").read_bytes()) == (work / name).read_bytes()


def test_quiet_draws_nothing(work: Path, env: dict[str, str]) -> None:
    (work / "f").write_bytes(os.urandom(1 << 20))
    run = PtyRun("--quiet", "compress", "f", cwd=work, env=env, stdout_path=work.parent / "out")
    result = run.wait()
    assert result.returncode == 0
    assert result.stderr.strip() == ""


def test_key_prompt_on_the_terminal_echoes_nothing(work: Path, env: dict[str, str]) -> None:
    assert run_cli("keygen", "k", cwd=work, env=env).returncode == 0
    key = next(ln for ln in (work / "k").read_text().splitlines() if not ln.startswith("#"))
    (work / "f").write_bytes(b"secret data")
    assert run_cli("encrypt", "-k", "k", "f", cwd=work, env=env).returncode == 0
    run = PtyRun("decrypt", "-o", "plain", "f.enc", cwd=work, env=env)
    run.wait_for(r"Key \(64 hex digits\): ")
    run.send(key.encode() + b"\n")
    result = run.wait()
    assert result.returncode == 0, result.stderr
    assert (work / "plain").read_bytes() == b"secret data"
    assert key not in result.stderr


def test_binary_output_is_not_written_to_a_terminal(work: Path, env: dict[str, str]) -> None:
    (work / "f").write_bytes(b"data")
    run = PtyRun("compress", "-c", "f", cwd=work, env=env)  # stdout is the terminal too
    result = run.wait()
    assert result.returncode == 1
    assert "binary data not written to a terminal; use -f to force it" in result.stderr
