"""``keygen``, ``encrypt`` and ``decrypt``: keys from a file, a variable or a prompt (never
the command line), round trips through files and pipes, and a wrong key, tampering,
truncation or a foreign file as one error line with nothing written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ._util import leftovers, mixed_bytes, one_error_line, run_cli, tree, workerbridge_tmp_dirs

DATA = mixed_bytes(3 << 20, seed=7)


def keygen(work: Path, env: dict[str, str], name: str = "key") -> str:
    result = run_cli("keygen", name, cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    return name


def write_key(path: Path) -> None:
    """A key file as keygen writes it (without running keygen once more)."""
    path.write_text(f"# a test key\n{os.urandom(32).hex()}\n")
    path.chmod(0o600)


def key_hex(path: Path) -> str:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return lines[0]


def test_keygen_writes_a_private_key_file_and_never_overwrites(
    work: Path, env: dict[str, str]
) -> None:
    keygen(work, env)
    path = work / "key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    value = key_hex(path)
    assert len(value) == 64
    assert bytes.fromhex(value)
    before = path.read_bytes()
    again = run_cli("keygen", "key", cwd=work, env=env)
    assert again.returncode == 1
    assert "refusing to overwrite" in one_error_line(again)
    assert path.read_bytes() == before
    printed = run_cli("keygen", "-", cwd=work, env=env)
    assert printed.returncode == 0
    assert len(bytes.fromhex(printed.stdout.decode().strip())) == 32
    assert tree(work) == ["key"]


def test_round_trip_through_files(work: Path, env: dict[str, str]) -> None:
    write_key(work / "key")
    (work / "secret.bin").write_bytes(DATA)
    result = run_cli(
        "encrypt", "-k", "key", "--chunk-size", "256k", "secret.bin", cwd=work, env=env
    )
    assert result.returncode == 0, result.stderr
    encrypted = (work / "secret.bin.enc").read_bytes()
    assert DATA[:4096] not in encrypted
    os.rename(work / "secret.bin", work / "original.bin")
    result = run_cli("decrypt", "-k", "key", "secret.bin.enc", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert (work / "secret.bin").read_bytes() == DATA
    assert leftovers(result, work) == []


def test_keys_from_the_environment_and_pipes(
    work: Path, env: dict[str, str], tmpdir_env: Path
) -> None:
    write_key(work / "key")
    value = key_hex(work / "key")
    enc = run_cli("encrypt", cwd=work, stdin=DATA, env={**env, "WORKERBRIDGE_KEY": value})
    assert enc.returncode == 0, enc.stderr
    dec = run_cli(
        "decrypt",
        "--key-env",
        "MY_KEY",
        "-",
        cwd=work,
        stdin=enc.stdout,
        env={**env, "MY_KEY": value},
    )
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == DATA
    assert tree(work) == ["key"]
    assert workerbridge_tmp_dirs(tmpdir_env) == []


def tamper(data: bytes, how: str) -> bytes:
    if how == "flip":
        out = bytearray(data)
        out[len(out) // 2] ^= 0x01
        return bytes(out)
    if how == "truncate":
        return data[: len(data) - 1000]
    return os.urandom(len(data))  # not an encrypted file at all


@pytest.mark.parametrize("how", ["wrong-key", "flip", "truncate", "foreign"])
def test_bad_input_to_decrypt_writes_nothing(work: Path, env: dict[str, str], how: str) -> None:
    write_key(work / "key")
    write_key(work / "other")
    (work / "s").write_bytes(DATA)
    assert (
        run_cli("encrypt", "-k", "key", "--chunk-size", "64k", "s", cwd=work, env=env).returncode
        == 0
    )
    if how != "wrong-key":
        (work / "s.enc").write_bytes(tamper((work / "s.enc").read_bytes(), how))
    key = "other" if how == "wrong-key" else "key"
    result = run_cli("decrypt", "-k", key, "-o", "plain", "s.enc", cwd=work, env=env)
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith("workerbridge: error: s.enc: ")
    for name in ("key", "other"):
        assert key_hex(work / name) not in result.stderr  # a key never shows
    assert not (work / "plain").exists()
    assert leftovers(result, work) == []
    piped = run_cli("decrypt", "-k", key, "-c", "s.enc", cwd=work, env=env)
    assert piped.returncode == 1
    assert piped.stdout == b""  # not a byte of unauthenticated plaintext


@pytest.mark.parametrize(
    ("args", "key_text", "code", "expected"),
    [
        (("encrypt", "f"), None, 2, "no key: use --key-file FILE"),
        (("encrypt", "--key-env", "UNSET_VAR", "f"), None, 2, "UNSET_VAR is not set"),
        (("encrypt", "-k", "nokey", "f"), None, 1, "key file nokey: No such file"),
        (("encrypt", "-k", "bad", "f"), "0123abcd\n", 1, "expected one line of 64 hex digits"),
        (("encrypt", "-k", "bad", "f"), "zz" * 32 + "\n", 1, "found other characters"),
        (("encrypt", "--key", "00" * 32, "f"), None, 2, "keys are never taken from the command"),
        (("decrypt", "-k", "bad", "f"), "ab" * 32, 1, "f: does not end in .enc"),
    ],
)
def test_key_and_usage_errors(
    work: Path,
    env: dict[str, str],
    args: tuple[str, ...],
    key_text: str | None,
    code: int,
    expected: str,
) -> None:
    (work / "f").write_bytes(b"data")
    if key_text is not None:
        (work / "bad").write_text(key_text)
        (work / "bad").chmod(0o600)
    result = run_cli(*args, cwd=work, env=env)
    assert result.returncode == code
    assert expected in one_error_line(result)
    assert not (work / "f.enc").exists()
    assert "00" * 32 not in result.stderr
