"""``hash``, ``manifest`` and ``verify`` against coreutils: the same bytes on stdout as
``sha256sum`` (odd names included), manifests that ``sha256sum -c`` accepts, and a
``verify`` that reports like ``sha256sum -c``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from workerbridge._cli._checksums import manifest_names

from ._util import leftovers, one_error_line, run_cli, workerbridge_tmp_dirs

#: Names that sha256sum escapes (backslash, newline, carriage return), one it does not
#: (space, tab) and one that is not UTF-8.
ODD_NAMES = ["plain.txt", "sp ace", "tab\tx", "back\\slash", "new\nline", "cr\rx",
             os.fsdecode(b"caf\xe9.bin")]  # fmt: skip


def make_files(folder: Path) -> list[str]:
    names = []
    for i, name in enumerate(ODD_NAMES):
        (folder / name).write_bytes(os.urandom(1000 * i + 7))
        names.append(name)
    (folder / "empty").write_bytes(b"")
    (folder / "big.bin").write_bytes(os.urandom(3 << 20) * 2)
    return [*names, "empty", "big.bin"]


def coreutils(tool: str, *args: str, cwd: Path, stdin: bytes | None = None) -> tuple[int, bytes]:
    done = subprocess.run([tool, *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    return done.returncode, done.stdout


def test_hash_prints_what_sha256sum_prints(work: Path, env: dict[str, str]) -> None:
    names = make_files(work)
    result = run_cli("hash", *names, cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not a terminal: no progress, no summary
    code, expected = coreutils("sha256sum", *names, cwd=work)
    assert code == 0
    assert result.stdout == expected
    assert leftovers(result, work) == []


@pytest.mark.parametrize(("algorithm", "tool"), [("sha512", "sha512sum"), ("blake2b", "b2sum")])
def test_other_algorithms_match_their_coreutils_tool(
    work: Path, env: dict[str, str], algorithm: str, tool: str
) -> None:
    names = make_files(work)[:3]
    result = run_cli("hash", "--algorithm", algorithm, *names, cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == coreutils(tool, *names, cwd=work)[1]


def test_hash_of_stdin(work: Path, env: dict[str, str], tmpdir_env: Path) -> None:
    data = os.urandom(1 << 20)
    expected = coreutils("sha256sum", cwd=work, stdin=data)[1]
    assert expected.endswith(b"  -\n")
    for args in ((), ("-",)):
        result = run_cli("hash", *args, cwd=work, stdin=data, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected
    assert workerbridge_tmp_dirs(tmpdir_env) == []  # the spooled copy is gone


def test_hash_json(work: Path, env: dict[str, str]) -> None:
    (work / "a").write_bytes(b"abc")
    result = run_cli("hash", "--json", "a", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "file": "a",
            "algorithm": "sha256",
            "digest": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        }
    ]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "workerbridge: error: nope: No such file or directory"),
        ("folder", "workerbridge: error: nope: Is a directory"),
    ],
)
def test_hash_of_a_bad_input_is_one_error_line(
    work: Path, env: dict[str, str], setup: str, expected: str
) -> None:
    (work / "ok").write_bytes(b"fine")
    if setup == "folder":
        (work / "nope").mkdir()
    result = run_cli("hash", "ok", "nope", cwd=work, env=env)
    assert result.returncode == 1
    assert one_error_line(result) == expected
    assert result.stdout == b""


def test_manifest_is_exactly_sha256sum_of_the_sorted_tree(work: Path, env: dict[str, str]) -> None:
    data = work / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    make_files(data)
    for i in range(20):
        (data / "sub" / f"f{i:02d}").write_bytes(os.urandom(i * 300))
    (data / "sub" / "deeper" / "new\nline too").write_bytes(b"x")
    result = run_cli("manifest", "data", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    text = os.fsdecode(result.stdout)
    names = manifest_names(text)
    assert len(names) == len(ODD_NAMES) + 2 + 20 + 1
    assert names == sorted(names, key=os.fsencode) or names == sorted(names)
    assert result.stdout == coreutils("sha256sum", *names, cwd=data)[1]
    (work / "MANIFEST").write_bytes(result.stdout)
    code, _ = coreutils("sha256sum", "-c", "--quiet", str(work / "MANIFEST"), cwd=data)
    assert code == 0


def test_manifest_written_inside_its_folder_leaves_itself_out(
    work: Path, env: dict[str, str]
) -> None:
    data = work / "data"
    data.mkdir()
    make_files(data)
    for _ in range(2):  # the second run hashes the first manifest too, and drops its line
        result = run_cli("manifest", "data", "-o", "data/SHA256SUMS", "--force", cwd=work, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout == b""
        text = (data / "SHA256SUMS").read_bytes()
        assert "SHA256SUMS" not in manifest_names(os.fsdecode(text))
        assert coreutils("sha256sum", "-c", "--quiet", "SHA256SUMS", cwd=data)[0] == 0
    again = run_cli("manifest", "data", "-o", "data/SHA256SUMS", cwd=work, env=env)
    assert again.returncode == 1
    assert "already exists; use --force" in one_error_line(again)


def test_verify_reports_like_sha256sum_c(work: Path, env: dict[str, str]) -> None:
    names = make_files(work)
    manifest = coreutils("sha256sum", *names, cwd=work)[1]
    (work / "SUMS").write_bytes(manifest)
    result = run_cli("verify", "SUMS", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == coreutils("sha256sum", "-c", "SUMS", cwd=work)[1]

    (work / "sp ace").write_bytes(b"changed")  # FAILED
    (work / "new\nline").unlink()  # FAILED open or read
    result = run_cli("verify", "SUMS", cwd=work, env=env)
    code, expected = coreutils("sha256sum", "-c", "SUMS", cwd=work)
    assert code == result.returncode == 1
    assert result.stdout == expected
    assert result.err_lines == [
        "workerbridge: warning: 1 listed file could not be read, 1 computed checksum did NOT match"
    ]
    quiet = run_cli("verify", "--quiet", "SUMS", cwd=work, env=env)
    assert quiet.returncode == 1
    assert quiet.stdout == coreutils("sha256sum", "-c", "--quiet", "SUMS", cwd=work)[1]


def test_verify_from_stdin_against_another_folder(work: Path, env: dict[str, str]) -> None:
    data = work / "data"
    data.mkdir()
    names = make_files(data)[:3]
    manifest = coreutils("sha256sum", *names, cwd=data)[1]
    result = run_cli("verify", "-C", "data", "--json", "-", cwd=work, stdin=manifest, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert sorted(report["ok"]) == sorted(names)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "MANIFEST: No such file or directory"),
        ("", "MANIFEST: no properly formatted checksum lines found"),
        ("garbage\n", "MANIFEST: "),
    ],
)
def test_verify_of_a_bad_manifest(
    work: Path, env: dict[str, str], content: str | None, expected: str
) -> None:
    if content is not None:
        (work / "MANIFEST").write_text(content)
    result = run_cli("verify", "MANIFEST", cwd=work, env=env)
    assert result.returncode == 1
    assert one_error_line(result).startswith(f"workerbridge: error: {expected}")
    if content is not None:  # sha256sum -c fails on it too
        assert coreutils("sha256sum", "-c", "MANIFEST", cwd=work)[0] == 1


def test_stdin_twice_and_a_named_pipe_like_sha256sum(work: Path, env: dict[str, str]) -> None:
    import threading

    data = os.urandom(200_000)
    (work / "f").write_bytes(data)
    result = run_cli("hash", "-", "f", "-", cwd=work, stdin=data, env=env)
    assert result.returncode == 0, result.stderr
    # The second '-' finds stdin already read: the digest of nothing, as with sha256sum.
    assert result.stdout == coreutils("sha256sum", "-", "f", "-", cwd=work, stdin=data)[1]

    os.mkfifo(work / "pipe")
    writer = threading.Thread(target=(work / "pipe").write_bytes, args=(data,))
    writer.start()
    try:
        result = run_cli("hash", "pipe", cwd=work, env=env)
    finally:
        writer.join(30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == coreutils("sha256sum", "f", cwd=work)[1].replace(b"  f", b"  pipe")
