"""Ctrl-C (SIGINT to the process group) and SIGTERM in the middle of a job: the command
stops at once with 128 + the signal, and leaves no output file, no temporary file, no
process and no shared-memory segment behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._util import PtyRun, cli_env, command, leftovers, tree, workerbridge_tmp_dirs

#: Long enough at gzip level 9 on one worker that the job is still running when the
#: test sees its progress and interrupts it.
BIG = 160 << 20


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("input") / "big.bin"
    with open(path, "wb") as f:
        for _ in range(BIG >> 20):
            f.write(os.urandom(1 << 20))
    yield path
    path.unlink()


def slow_compress(
    work: Path, env: dict[str, str], *args: str, stdout: Path | None = None
) -> PtyRun:
    return PtyRun("-w", "1", "compress", "-l", "9", *args, cwd=work, env=env, stdout_path=stdout)


@pytest.mark.parametrize("target", ["group", "process"])
def test_ctrl_c_mid_compress_leaves_nothing(
    work: Path, env: dict[str, str], tmpdir_env: Path, big_file: Path, target: str
) -> None:
    os.link(big_file, work / "big.bin")
    run = slow_compress(work, env, "big.bin")
    run.wait_for(r"\d+% +[\d.]+/160\.0 MiB")  # running, with progress
    if target == "group":
        run.interrupt()  # what Ctrl-C on a terminal does
    else:
        os.kill(run.proc.pid, signal.SIGINT)  # `kill -INT`: the workers do not get it
    result = run.wait()
    assert result.returncode == 130
    assert "workerbridge: interrupted" in result.stderr
    assert "Traceback" not in result.stderr
    assert tree(work) == ["big.bin"]  # no big.bin.gz, no temporary file
    assert workerbridge_tmp_dirs(tmpdir_env) == []
    assert leftovers(result, work) == []


def test_ctrl_c_mid_compress_to_stdout_writes_nothing(
    work: Path, env: dict[str, str], tmpdir_env: Path, big_file: Path
) -> None:
    out = work.parent / "stdout"
    run = slow_compress(work, env, "-c", str(big_file), stdout=out)
    run.wait_for(r"\d+% +[\d.]+/160\.0 MiB")
    run.interrupt()
    result = run.wait()
    assert result.returncode == 130
    assert out.read_bytes() == b""
    assert workerbridge_tmp_dirs(tmpdir_env) == []
    assert leftovers(result, work) == []


def test_ctrl_c_among_many_files_keeps_only_complete_outputs(
    work: Path, env: dict[str, str], big_file: Path
) -> None:
    data = big_file.read_bytes()
    names = []
    for i in range(8):
        name = f"f{i}.bin"
        (work / name).write_bytes(data[i * (16 << 20) : (i + 1) * (16 << 20)])
        names.append(name)
    run = PtyRun("-w", "2", "compress", "-l", "9", *names, cwd=work, env=env)
    run.wait_for(r"f[2-7]\.bin .*?\d+%")  # some files done, others running
    run.interrupt()
    result = run.wait()
    assert result.returncode == 130
    outputs = [p for p in tree(work) if p.endswith(".gz")]
    assert len(outputs) < len(names)
    for name in outputs:  # what is there is whole (like gzip, finished files stay)
        assert subprocess.run(["gzip", "-t", str(work / name)], check=False).returncode == 0
    assert set(tree(work)) == set(names) | set(outputs)
    assert leftovers(result, work) == []


def test_sigterm_cleans_up_the_same_way(work: Path, env: dict[str, str], big_file: Path) -> None:
    os.link(big_file, work / "big.bin")
    run = slow_compress(work, env, "big.bin")
    run.wait_for(r"\d+% +[\d.]+/160\.0 MiB")
    os.killpg(run.proc.pid, signal.SIGTERM)
    result = run.wait()
    assert result.returncode == 143
    assert tree(work) == ["big.bin"]
    assert leftovers(result, work) == []


def test_ctrl_c_while_reading_stdin(work: Path, tmpdir_env: Path) -> None:
    """Interrupted while stdin is being spooled: the spooled copy goes too."""
    env = cli_env(TMPDIR=str(tmpdir_env), WORKERBRIDGE_KEY="ab" * 32)
    proc = subprocess.Popen(
        command("encrypt", "-"),
        cwd=work,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(os.urandom(1 << 20))
    proc.stdin.flush()

    def spooled() -> list[Path]:
        return [p for d in workerbridge_tmp_dirs(tmpdir_env) for p in d.glob("stdin-*")]

    deadline = time.monotonic() + 30
    while not (spooled() and spooled()[0].stat().st_size > 0):
        assert time.monotonic() < deadline, "stdin was never spooled"
        time.sleep(0.01)  # polling the file system, not synchronising
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert out == b""
    assert b"Traceback" not in err
    assert workerbridge_tmp_dirs(tmpdir_env) == []


def test_ctrl_c_in_the_demo_removes_its_folder(
    work: Path, env: dict[str, str], tmpdir_env: Path
) -> None:
    run = PtyRun("demo", "--size", "64M", cwd=work, env=env)
    run.wait_for(r"compress \(gzip\) .*?\d+%")
    run.interrupt()
    result = run.wait()
    assert result.returncode == 130
    assert list(tmpdir_env.iterdir()) == []  # the sample and every copy of it are gone
    assert leftovers(result, work) == []
