"""``download`` against a real HTTP server on 127.0.0.1 (the network suite's server): the
file named after the URL, stdout, HTTP errors and checksum mismatches as one line, and
Ctrl-C mid-download (the ``.part`` is kept for the next run to resume, or nothing at all
is left with ``--no-resume``)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..bridges._http_server import HTTPTestServer, free_port
from ._util import PtyRun, leftovers, one_error_line, run_cli, tree

DATA = os.urandom(3 << 20)


@pytest.fixture
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer() as srv:
        yield srv


def test_download_to_the_file_named_after_the_url(
    work: Path, env: dict[str, str], server: HTTPTestServer
) -> None:
    url = server.add_blob("/files/data%20set.bin", DATA)
    digest = hashlib.sha256(DATA).hexdigest()
    result = run_cli("download", "--sha256", digest, url + "?token=x", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert tree(work) == ["data set.bin"]
    assert (work / "data set.bin").read_bytes() == DATA
    assert leftovers(result, work) == []


def test_download_to_stdout(work: Path, env: dict[str, str], server: HTTPTestServer) -> None:
    url = server.add_blob("/d", DATA)
    result = run_cli("download", "-o", "-", url, cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == DATA
    assert tree(work) == []


def test_http_errors_and_mismatches_are_one_line(
    work: Path, env: dict[str, str], server: HTTPTestServer
) -> None:
    missing = server.add_status("/missing", 404, b"not here")
    result = run_cli("download", missing, cwd=work, env=env)
    assert result.returncode == 1
    assert "HTTP 404" in one_error_line(result)
    assert not (work / "missing").exists()

    url = server.add_blob("/data.bin", DATA)
    result = run_cli("download", "--sha256", "00" * 32, url, cwd=work, env=env)
    assert result.returncode == 1
    one_error_line(result)
    assert not (work / "data.bin").exists()

    closed = f"http://127.0.0.1:{free_port()}/x"
    result = run_cli("download", "--retries", "0", closed, cwd=work, env=env)
    assert result.returncode == 1
    one_error_line(result)

    result = run_cli("download", "ftp://example.org/x", cwd=work, env=env)
    assert result.returncode == 2
    assert "must start with http:// or https://" in one_error_line(result)


@pytest.mark.parametrize("resume", [True, False])
def test_ctrl_c_mid_download(
    work: Path, env: dict[str, str], server: HTTPTestServer, resume: bool
) -> None:
    size = 8 << 20
    slow = server.add_slow("/big.bin", size, chunk=64 << 10, interval=0.02)
    args = ["download", server.url("/big.bin")] + ([] if resume else ["--no-resume"])
    run = PtyRun(*args, cwd=work, env=env)
    run.wait_for(r"\d+% +[\d.]+/8\.0 MiB")
    run.interrupt()
    result = run.wait()
    assert result.returncode == 130
    assert slow.started.is_set()
    assert not (work / "big.bin").exists()  # never a partial file under the final name
    assert leftovers(result, work) == []
    if not resume:
        assert tree(work) == []
        return
    assert tree(work) == ["big.bin.part"]  # kept so that the next run resumes
    partial = (work / "big.bin.part").stat().st_size
    assert 0 < partial < size
    server.add_blob("/big.bin", b"s" * size)  # the same bytes the slow route sends
    again = run_cli("download", server.url("/big.bin"), cwd=work, env=env)
    assert again.returncode == 0, again.stderr
    assert (work / "big.bin").read_bytes() == b"s" * size
    assert tree(work) == ["big.bin"]
    ranges = [seen.headers.get("range") for seen in server.route("/big.bin").seen]
    assert ranges[-1] == f"bytes={partial}-"
