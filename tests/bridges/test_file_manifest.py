"""Checksum manifests on every backend, checked against the real coreutils tools: the
text must be byte for byte what ``sha256sum`` prints, and ``sha256sum -c`` must accept it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import blake3
import pytest

from workerbridge import ChecksumMismatchError, ProgressInfo, ValidationError, WorkerBridge
from workerbridge._channels._hashing import (
    ManifestReport,
    digest_length,
    format_line,
    parse_manifest,
)

#: Names that exercise sha256sum's rules: spaces, non-ASCII, the escaped characters
#: (backslash, newline, carriage return), nesting, an empty file, bytes that are not UTF-8.
NAMES = [
    "plain.txt",
    "with space.txt",
    "héllo wörld.txt",
    "日本語.bin",
    "back\\slash.txt",
    "new\nline.txt",
    "carriage\rreturn",
    "sub/dir/nested.bin",
    "sub/z-last",
    "sub/A upper",
    "empty",
    os.fsdecode(b"not-utf8-\xff.bin"),
]
TOOLS = {"sha256": "sha256sum", "sha512": "sha512sum", "blake2b": "b2sum"}


def needs(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


def make_tree(root: Path) -> list[str]:
    """Files under ``root`` with ``NAMES``; returns the names in the C locale's order."""
    for i, name in enumerate(NAMES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"" if name == "empty" else os.urandom(100 + 997 * i))
    (root / "link-to-plain").symlink_to("plain.txt")  # symlinks are not listed
    (root / "emptydir").mkdir()
    return sorted(NAMES, key=os.fsencode)


def tool_output(tool: str, root: Path, names: list[str], *extra: str) -> bytes:
    result = subprocess.run(
        [tool, *extra, "--", *names], cwd=root, capture_output=True, check=True, timeout=60
    )
    return result.stdout


def check_with_tool(tool: str, root: Path, manifest: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [tool, "-c", "--strict", str(manifest)], cwd=root, capture_output=True, timeout=60
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("tree")
    return root, make_tree(root)


def test_manifest_is_what_sha256sum_prints(
    bridge: WorkerBridge, tree: tuple[Path, list[str]], tmp_path: Path
) -> None:
    needs("sha256sum")
    root, names = tree
    seen: list[ProgressInfo] = []
    text = bridge.file.checksum_manifest(root, on_progress=seen.append).result(timeout=30)
    assert os.fsencode(text) == tool_output("sha256sum", root, names)
    assert seen
    assert seen[-1].current == seen[-1].total == sum((root / n).stat().st_size for n in names)
    manifest = tmp_path / "SHA256SUMS"
    manifest.write_bytes(os.fsencode(text))
    checked = check_with_tool("sha256sum", root, manifest)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(b": OK\n") == len(names)


@pytest.mark.parametrize("algorithm", ["sha512", "blake2b"])
def test_manifest_of_other_algorithms_is_what_their_tool_prints(
    bridge: WorkerBridge, tree: tuple[Path, list[str]], tmp_path: Path, algorithm: str
) -> None:
    tool = TOOLS[algorithm]
    needs(tool)
    root, names = tree
    text = bridge.file.checksum_manifest(root, algorithm).result(timeout=30)
    assert os.fsencode(text) == tool_output(tool, root, names)
    manifest = tmp_path / "SUMS"
    manifest.write_bytes(os.fsencode(text))
    assert check_with_tool(tool, root, manifest).returncode == 0


@pytest.mark.parametrize("algorithm", ["sha3_256", "blake3"])
def test_manifest_of_algorithms_without_a_coreutils_tool(
    bridge: WorkerBridge, tree: tuple[Path, list[str]], algorithm: str
) -> None:
    """Same format; the digests are the libraries' (the format is also ``b3sum``'s)."""
    root, names = tree
    text = bridge.file.checksum_manifest(root, algorithm).result(timeout=30)

    def digest(name: str) -> str:
        data = (root / name).read_bytes()
        if algorithm == "blake3":
            return blake3.blake3(data).hexdigest()
        return hashlib.sha3_256(data).hexdigest()

    assert text == "".join(format_line(digest(n), n) for n in names)
    report = bridge.file.verify_manifest(
        _write(root.parent / f"{algorithm}.sums", text), root, algorithm
    ).result(timeout=30)
    assert report.passed
    assert report.ok == tuple(names)


def _write(path: Path, text: str) -> Path:
    path.write_bytes(os.fsencode(text))
    return path


def test_output_inside_the_folder_is_not_listed(bridge: WorkerBridge, tmp_path: Path) -> None:
    needs("sha256sum")
    names = make_tree(tmp_path)
    output = tmp_path / "SHA256SUMS"
    output.write_text("an older manifest\n")  # replaced, and never listed itself
    text = bridge.file.checksum_manifest(tmp_path, output=output).result(timeout=30)
    assert output.read_bytes() == os.fsencode(text)
    assert "SHA256SUMS" not in text
    assert os.fsencode(text) == tool_output("sha256sum", tmp_path, names)
    checked = check_with_tool("sha256sum", tmp_path, output)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".wb-tmp")]


def test_empty_folder_gives_an_empty_manifest(bridge: WorkerBridge, tmp_path: Path) -> None:
    assert bridge.file.checksum_manifest(tmp_path).result(timeout=30) == ""


def test_verify_finds_modified_and_missing_files(bridge: WorkerBridge, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    names = make_tree(root)
    manifest = tmp_path / "SHA256SUMS"
    bridge.file.checksum_manifest(root, output=manifest).result(timeout=30)
    report = bridge.file.verify_manifest(manifest, root).result(timeout=30)
    assert report == ManifestReport(ok=tuple(names), failed=(), missing=())
    assert report.passed
    assert report.raise_for_failures() is report

    (root / "new\nline.txt").write_bytes(b"changed")  # an escaped name, modified
    (root / "sub/dir/nested.bin").unlink()
    (root / "back\\slash.txt").unlink()
    (root / "back\\slash.txt").mkdir()  # not a regular file any more: failed
    seen: list[ProgressInfo] = []
    report = bridge.file.verify_manifest(manifest, root, on_progress=seen.append).result(timeout=30)
    assert report.failed == ("back\\slash.txt", "new\nline.txt")
    assert report.missing == ("sub/dir/nested.bin",)
    assert set(report.ok) == set(names) - {*report.failed, *report.missing}
    assert not report.passed
    assert seen[-1].current == seen[-1].total
    with pytest.raises(ChecksumMismatchError, match=r"2 failed: .*new\\nline.*1 missing"):
        report.raise_for_failures()


def test_verify_reads_what_sha256sum_writes(bridge: WorkerBridge, tmp_path: Path) -> None:
    """Text and binary mode lines, escaped names, upper-case digests; the default folder
    is the manifest's own."""
    needs("sha256sum")
    names = make_tree(tmp_path)
    half = len(names) // 2
    text = tool_output("sha256sum", tmp_path, names[:half])
    text += tool_output("sha256sum", tmp_path, names[half:], "--binary")
    manifest = tmp_path / "SUMS"
    lines = []
    for line in text.split(b"\n"):  # names with a newline are escaped: one line each
        lead = 1 if line.startswith(b"\\") else 0
        lines.append(line[:lead] + line[lead : lead + 64].upper() + line[lead + 64 :])
    manifest.write_bytes(b"\n".join(lines))
    assert b"*" in text  # the binary-mode marker is there
    report = bridge.file.verify_manifest(manifest).result(timeout=30)
    assert report.ok == tuple(names)
    assert report.passed


def test_verify_refuses_a_malformed_manifest(bridge: WorkerBridge, tmp_path: Path) -> None:
    digest = "ab" * 32
    cases = {
        f"{digest}  ok\nnot a checksum line\n": "line 2",
        f"{digest[:-2]}  short\n": "62 hex digits",
        f"{digest} one-space\n": "line 1",
        f"{digest}  \n": "no file name",
        f"\\{digest}  bad\\xescape\n": "escape",
    }
    for text, message in cases.items():
        manifest = _write(tmp_path / "SUMS", text)
        with pytest.raises(ValidationError, match=message):
            bridge.file.verify_manifest(manifest)
    with pytest.raises(ValidationError, match="folder"):
        bridge.file.verify_manifest(_write(tmp_path / "SUMS", ""), tmp_path / "missing")


def test_manifest_checks_its_arguments(bridge: WorkerBridge, tmp_path: Path) -> None:
    file = tmp_path / "file"
    file.write_bytes(b"x")
    with pytest.raises(ValidationError, match="folder: not a folder"):
        bridge.file.checksum_manifest(file)
    with pytest.raises(ValidationError, match="algorithm"):
        bridge.file.checksum_manifest(tmp_path, "md5")
    with pytest.raises(ValidationError, match="output is a directory"):
        bridge.file.checksum_manifest(tmp_path, output=tmp_path)
    with pytest.raises(ValidationError, match="output: no such folder"):
        bridge.file.checksum_manifest(tmp_path, output=tmp_path / "no" / "SUMS")


# ---------------------------------------------------------------- the format, without a pool


@pytest.mark.parametrize("name", NAMES)
def test_format_and_parse_round_trip(name: str) -> None:
    digest = "0123456789abcdef" * 4
    line = format_line(digest, name)
    assert line.startswith("\\") == any(c in name for c in "\\\n\r")
    assert line.count("\n") == 1
    assert parse_manifest(line, "sha256") == [(name, digest)]


def test_digest_lengths() -> None:
    assert [digest_length(a) for a in ("sha256", "sha512", "sha3_256", "blake2b", "blake3")] == [
        64,
        128,
        64,
        128,
        64,
    ]
