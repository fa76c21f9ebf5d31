"""network.download against a real HTTP server on 127.0.0.1, on every backend: the file,
its progress, statuses, retries and resume (Range requests seen by the server), sha256, and
what is left on disk after a failure."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workerbridge import (
    ChecksumMismatchError,
    HTTPStatusError,
    NetworkError,
    ProgressInfo,
    ValidationError,
    WorkerBridge,
)
from workerbridge._channels._results import FileResult

from ._http_server import HTTPTestServer

FAST = 0.001  # backoff: retries in tests wait ~1 ms, not 0.1 s
DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer() as srv:
        yield srv


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_writes_the_file(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    data = os.urandom(1 << 20)
    seen: list[ProgressInfo] = []
    target = tmp_path / "out.bin"
    result = bridge.network.download(
        server.add_blob("/f", data), target, on_progress=seen.append
    ).result(timeout=30)
    assert result == FileResult(str(target), len(data), len(data))
    assert target.read_bytes() == data
    assert listing(tmp_path) == ["out.bin"]  # no .part left
    assert (seen[-1].current, seen[-1].total) == (len(data), len(data))
    assert server.route("/f").seen[0].headers["accept-encoding"] == "identity"


def test_download_replaces_an_existing_file(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    target.write_bytes(b"old contents")
    bridge.network.download(server.add_blob("/f", DATA), target).result(timeout=30)
    assert target.read_bytes() == DATA


def test_empty_body(bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path) -> None:
    target = tmp_path / "empty"
    result = bridge.network.download(server.add_blob("/e", b""), target).result(timeout=30)
    assert (result.bytes_out, target.read_bytes()) == (0, b"")


def test_404_raises_and_leaves_nothing(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    with pytest.raises(HTTPStatusError, match=r"^HTTP 404 Not Found for http://") as info:
        bridge.network.download(server.url("/nope"), tmp_path / "out").result(timeout=30)
    assert info.value.status_code == 404
    assert listing(tmp_path) == []


def test_5xx_is_retried(bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path) -> None:
    url = server.add_blob("/flaky", DATA, failures=2, failure_status=500)
    bridge.network.download(url, tmp_path / "out", retries=2, backoff=FAST).result(timeout=30)
    assert (tmp_path / "out").read_bytes() == DATA
    assert server.route("/flaky").hits == 3


def test_5xx_after_the_retries_is_an_http_status_error(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    url = server.add_blob("/down", DATA, failures=100, failure_status=503)
    with pytest.raises(HTTPStatusError, match=r"^HTTP 503 Service Unavailable") as info:
        bridge.network.download(url, tmp_path / "out", retries=2, backoff=FAST).result(timeout=30)
    assert info.value.status_code == 503
    assert server.route("/down").hits == 3
    assert listing(tmp_path) == []  # nothing arrived: not even an empty .part


def test_resume_after_a_drop_asks_only_for_the_rest(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    url = server.add_blob("/f", DATA, drop_times=2, drop_after=100_000)
    seen: list[ProgressInfo] = []
    result = bridge.network.download(
        url, tmp_path / "out", sha256=SHA, retries=2, on_progress=seen.append, backoff=FAST
    ).result(timeout=30)
    assert (tmp_path / "out").read_bytes() == DATA
    route = server.blob("/f")
    # 100,000 bytes, then 100,000 more of the rest, then the rest of that.
    assert [s.headers.get("range") for s in route.seen] == [None, "bytes=100000-", "bytes=200000-"]
    assert route.sent == [100_000, 100_000, 100_000]  # nothing was sent twice
    assert result.bytes_in == len(DATA)
    assert (seen[-1].current, seen[-1].total) == (len(DATA), len(DATA))


def test_a_failed_download_keeps_its_part_for_the_next_call(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    url = server.add_blob("/f", DATA, drop_times=1, drop_after=120_000)
    target = tmp_path / "out"
    with pytest.raises(NetworkError, match="failed after 1 attempt: connection lost"):
        bridge.network.download(url, target, retries=0).result(timeout=30)
    assert listing(tmp_path) == ["out.part"]
    assert (tmp_path / "out.part").read_bytes() == DATA[:120_000]

    result = bridge.network.download(url, target, sha256=SHA, retries=0).result(timeout=30)
    assert target.read_bytes() == DATA
    assert listing(tmp_path) == ["out"]
    assert server.route("/f").seen[1].headers["range"] == "bytes=120000-"
    assert result == FileResult(str(target), len(DATA) - 120_000, len(DATA))


def test_without_resume_every_attempt_starts_over_and_nothing_is_left(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    url = server.add_blob("/f", DATA, drop_times=2, drop_after=50_000)
    with pytest.raises(NetworkError):
        bridge.network.download(url, tmp_path / "out", resume=False, retries=0).result(30)
    assert listing(tmp_path) == []
    result = bridge.network.download(
        url, tmp_path / "out", resume=False, retries=1, backoff=FAST
    ).result(timeout=30)
    assert (tmp_path / "out").read_bytes() == DATA
    assert listing(tmp_path) == ["out"]
    assert all("range" not in s.headers for s in server.route("/f").seen)
    assert result.bytes_in == 50_000 + len(DATA)


def test_a_complete_part_is_finished_on_416(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    (tmp_path / "out.part").write_bytes(DATA)
    url = server.add_blob("/f", DATA)
    result = bridge.network.download(url, tmp_path / "out", sha256=SHA).result(timeout=30)
    assert result == FileResult(str(tmp_path / "out"), 0, len(DATA))
    assert (tmp_path / "out").read_bytes() == DATA
    assert server.route("/f").seen[0].headers["range"] == f"bytes={len(DATA)}-"


def test_a_part_longer_than_the_file_starts_over(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    (tmp_path / "out.part").write_bytes(b"stale" * 100_000)
    url = server.add_blob("/f", DATA)
    bridge.network.download(url, tmp_path / "out", sha256=SHA).result(timeout=30)
    assert (tmp_path / "out").read_bytes() == DATA
    assert [s.headers.get("range") for s in server.route("/f").seen] == ["bytes=500000-", None]


def test_a_server_without_ranges_sends_it_all_again(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    (tmp_path / "out.part").write_bytes(DATA[:1000])
    url = server.add_blob("/f", DATA, ranges=False)
    result = bridge.network.download(url, tmp_path / "out", sha256=SHA).result(timeout=30)
    assert (tmp_path / "out").read_bytes() == DATA
    assert result.bytes_in == len(DATA)


def test_sha256_of_a_resumed_part_covers_the_bytes_already_there(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    (tmp_path / "out.part").write_bytes(b"X" + DATA[1:1000])  # one wrong byte, kept from before
    url = server.add_blob("/f", DATA)
    with pytest.raises(ChecksumMismatchError, match=f"expected {SHA}"):
        bridge.network.download(url, tmp_path / "out", sha256=SHA).result(timeout=30)
    assert listing(tmp_path) == []  # a wrong .part is removed, even when resuming


def test_sha256_mismatch(bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path) -> None:
    url = server.add_blob("/f", DATA)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ChecksumMismatchError, match=f"sha256 of http://.* is {SHA}, expected"):
        bridge.network.download(url, tmp_path / "out", sha256=wrong.upper()).result(30)
    assert listing(tmp_path) == []


def test_the_stored_bytes_are_downloaded_not_a_compressed_copy(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    data = b"compressible " * 10_000
    url = server.add_blob("/gz", data, gzip=True)  # gzip only for clients that accept it
    bridge.network.download(url, tmp_path / "out").result(timeout=30)
    assert (tmp_path / "out").read_bytes() == data


def test_redirects_are_followed(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    server.add_blob("/real", DATA)
    url = server.add_redirect("/moved", "/real", code=301)
    bridge.network.download(url, tmp_path / "out").result(timeout=30)
    assert (tmp_path / "out").read_bytes() == DATA


def test_two_downloads_of_one_path_take_turns(
    bridge: WorkerBridge, server: HTTPTestServer, tmp_path: Path
) -> None:
    url = server.add_blob("/f", DATA)
    handles = [bridge.network.download(url, tmp_path / "out", sha256=SHA) for _ in range(2)]
    for handle in handles:
        handle.result(timeout=30)
    assert (tmp_path / "out").read_bytes() == DATA
    assert listing(tmp_path) == ["out"]


BAD_DOWNLOAD_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"path": 5}, "path must be a str or os.PathLike"),
    ({"path": b"/tmp/x"}, "path must be a str or os.PathLike, got bytes"),
    ({"path": "/no/such/folder/file"}, "path's folder does not exist"),
    ({"path": "."}, "path is a folder"),
    ({"sha256": "abc"}, "sha256 must be 64 hexadecimal digits"),
    ({"sha256": "g" * 64}, "sha256 must be 64 hexadecimal digits"),
    ({"resume": "yes"}, "resume must be a bool"),
    ({"headers": {"Range": "bytes=0-"}}, "must not set Range"),
    ({"headers": {"Accept-Encoding": "gzip"}}, "must not set Accept-Encoding"),
    ({"url": "gopher://x/"}, "url must be an http:// or https:// URL"),
    ({"retries": 1.5}, "retries must be an int"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_DOWNLOAD_ARGUMENTS)
def test_bad_arguments_are_refused_before_dispatch(
    bridge: WorkerBridge, tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"url": "http://127.0.0.1:1/", "path": tmp_path / "x"} | kwargs
    submitted = bridge.pool.stats().submitted
    with pytest.raises(ValidationError, match=message):
        bridge.network.download(**arguments)
    assert bridge.pool.stats().submitted == submitted
