"""The file bridge on every backend: hashing, read, write, copy, split and join, progress,
cancel, and the checks made before dispatch. Manifests: test_file_manifest.py."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from workerbridge import (
    OperationError,
    ProgressInfo,
    TaskCancelledError,
    TaskTimeoutError,
    ValidationError,
    WorkerBridge,
)
from workerbridge._bridge._file import BATCH_BYTES, BATCH_FILES, _batches
from workerbridge._channels._file import CHUNK
from workerbridge._channels._hashing import ALGORITHMS, HASH_BUFFER
from workerbridge._channels._results import FileResult

#: Sizes that cover an empty file, one short read and several full buffers plus a tail.
SIZES = {"empty": 0, "small": 1000, "multi": 2 * HASH_BUFFER + 12345}


def reference(algorithm: str, data: bytes) -> str:
    if algorithm == "blake3":
        return blake3.blake3(data).hexdigest()
    return hashlib.new(algorithm, data).hexdigest()


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("samples")
    paths = {}
    for name, size in SIZES.items():
        path = folder / name
        path.write_bytes(os.urandom(size))
        paths[name] = path
    return paths


def temps_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".wb-tmp"))


def long_size(bridge: WorkerBridge) -> int:
    """Bytes that take long enough to hash or copy that a cancel comes first. The inline
    backend runs a call to its end before the job sees the cancel (the call runs inside
    ``job.call``), so there a short file keeps the test fast."""
    return 64 << 20 if bridge.pool.backend == "inline" else 1 << 30


class Progress:
    """Collects progress reports; ``first`` is set by the first one."""

    def __init__(self) -> None:
        self.seen: list[ProgressInfo] = []
        self.first = threading.Event()

    def __call__(self, info: ProgressInfo) -> None:
        self.seen.append(info)
        self.first.set()

    def reached_total(self) -> bool:
        return bool(self.seen) and self.seen[-1].current == self.seen[-1].total


# ---------------------------------------------------------------------------- hashing


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hash_file_matches_the_libraries(
    bridge: WorkerBridge, samples: dict[str, Path], algorithm: str, size: str
) -> None:
    path = samples[size]
    digest = bridge.file.hash_file(path, algorithm).result(timeout=30)
    assert digest == reference(algorithm, path.read_bytes())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hash_of_data_through_the_channel(bridge: WorkerBridge, algorithm: str) -> None:
    """The crypto bridge's ("file", "hash") contract: bytes-like data, large ones arriving
    through shared memory."""
    large = os.urandom(HASH_BUFFER + 777)
    cases: list[Any] = [b"", b"abc", bytearray(b"xyz"), memoryview(large), large]
    for data in cases:
        digest = bridge.pool.call("file", "hash", data, algorithm).result(timeout=30)
        assert digest == reference(algorithm, bytes(data))


def test_hash_file_progress_reaches_the_size(
    bridge: WorkerBridge, samples: dict[str, Path]
) -> None:
    progress = Progress()
    bridge.file.hash_file(samples["multi"], on_progress=progress).result(timeout=30)
    assert progress.reached_total()
    assert progress.seen[-1].total == SIZES["multi"]


def test_hash_files_keeps_input_order(
    bridge: WorkerBridge, samples: dict[str, Path], tmp_path: Path
) -> None:
    extra = []
    for i in range(6):
        path = tmp_path / f"f{i}"
        path.write_bytes(os.urandom(1000 * i + (HASH_BUFFER if i % 2 else 0)))
        extra.append(path)
    given: list[str | os.PathLike[str]] = [samples["multi"], str(extra[3]), *extra, extra[0]]
    progress = Progress()
    result = bridge.file.hash_files(given, "sha512", on_progress=progress).result(timeout=30)
    assert [name for name, _ in result] == [os.fspath(p) for p in given]
    assert [digest for _, digest in result] == [
        reference("sha512", Path(p).read_bytes()) for p in given
    ]
    assert progress.reached_total()
    assert progress.seen[-1].total == sum(Path(p).stat().st_size for p in given)
    assert bridge.file.hash_files([]).result(timeout=30) == []


def test_cancel_of_a_long_hash_files_stops_it(bridge: WorkerBridge, tmp_path: Path) -> None:
    """Sparse files read at memory speed but take seconds to hash with sha3_256: the cancel
    comes while the first ones are running, and the pool serves the next call at once."""
    big = tmp_path / "big"
    with open(big, "wb") as file:
        file.truncate(long_size(bridge))
    progress = Progress()
    handle = bridge.file.hash_files([big] * 8, "sha3_256", on_progress=progress)
    assert progress.first.wait(30)
    assert handle.cancel()
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=30)
    assert temps_in(tmp_path) == []
    small = tmp_path / "small"
    small.write_bytes(b"after")
    assert bridge.file.hash_file(small).result(timeout=30) == reference("sha256", b"after")


# ---------------------------------------------------------------------------- read


def test_read_file_ranges_at_the_edges(bridge: WorkerBridge, tmp_path: Path) -> None:
    data = os.urandom(CHUNK + 4096)  # more than one read step, and a shared-memory result
    path = tmp_path / "data"
    path.write_bytes(data)
    size = len(data)
    cases = [
        (0, None, data),
        (0, 0, b""),
        (0, 1, data[:1]),
        (size - 1, None, data[-1:]),
        (size - 1, 10, data[-1:]),
        (size, None, b""),
        (size, 5, b""),
        (CHUNK - 3, 7, data[CHUNK - 3 : CHUNK + 4]),
        (5, size, data[5:]),
        (100, CHUNK, data[100 : 100 + CHUNK]),
    ]
    for offset, length, expected in cases:
        got = bridge.file.read_file(path, offset, length).result(timeout=30)
        assert type(got) is bytes
        assert got == expected, (offset, length)


def test_read_file_progress_reaches_the_length(bridge: WorkerBridge, tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(os.urandom(CHUNK + 10))
    progress = Progress()
    bridge.file.read_file(path, 3, CHUNK + 1, on_progress=progress).result(timeout=30)
    assert progress.reached_total()
    assert progress.seen[-1].total == CHUNK + 1


def test_read_file_checks_its_range(bridge: WorkerBridge, tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"12345")
    for kwargs, word in (
        ({"offset": -1}, "offset"),
        ({"offset": 6}, "offset"),
        ({"length": -1}, "length"),
        ({"offset": True}, "offset"),
        ({"length": 1.5}, "length"),
    ):
        with pytest.raises(ValidationError, match=word):
            bridge.file.read_file(path, **kwargs)


# ---------------------------------------------------------------------------- write / copy


def test_write_file_is_atomic_and_complete(bridge: WorkerBridge, tmp_path: Path) -> None:
    small = os.urandom(1234)
    large = os.urandom(3 * CHUNK // 2)  # through shared memory, written in two steps
    cases: list[tuple[bytes | bytearray | memoryview, bytes]] = [
        (small, small),
        (bytearray(small), small),
        (memoryview(small), small),
        (memoryview(large)[1:], large[1:]),
        (large, large),
    ]
    for i, (data, raw) in enumerate(cases):
        path = tmp_path / f"out{i}.bin"
        progress = Progress()
        handle = bridge.file.write_file(path, data, on_progress=progress)
        assert handle.result(timeout=30) == FileResult(str(path), len(raw), len(raw))
        assert path.read_bytes() == raw
        assert progress.reached_total()
    assert temps_in(tmp_path) == []


def test_write_file_replaces_a_file_keeping_its_mode(bridge: WorkerBridge, tmp_path: Path) -> None:
    path = tmp_path / "script.sh"
    path.write_bytes(b"old")
    path.chmod(0o750)
    bridge.file.write_file(str(path), b"#!/bin/sh\n").result(timeout=30)
    assert path.read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o750
    assert bridge.file.write_file(path, b"").result(timeout=30).bytes_out == 0
    assert path.read_bytes() == b""


def test_write_file_checks_its_arguments(bridge: WorkerBridge, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="data"):
        bridge.file.write_file(tmp_path / "x", "text")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="path is a directory"):
        bridge.file.write_file(tmp_path, b"x")
    with pytest.raises(ValidationError, match="no such folder"):
        bridge.file.write_file(tmp_path / "missing" / "x", b"x")


def test_copy_file_copies_bytes_and_mode(bridge: WorkerBridge, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    data = os.urandom(2 * CHUNK + 99)
    src.write_bytes(data)
    src.chmod(0o751)
    dst = tmp_path / "dst.bin"
    dst.write_bytes(b"to be replaced")
    progress = Progress()
    result = bridge.file.copy_file(src, dst, on_progress=progress).result(timeout=30)
    assert result == FileResult(str(dst), len(data), len(data))
    assert dst.read_bytes() == data
    assert stat.S_IMODE(dst.stat().st_mode) == 0o751
    assert progress.reached_total()
    assert progress.seen[-1].total == len(data)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert bridge.file.copy_file(empty, tmp_path / "empty2").result(timeout=30).bytes_out == 0
    assert temps_in(tmp_path) == []


def test_copy_file_checks_its_arguments(bridge: WorkerBridge, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"x")
    with pytest.raises(ValidationError, match="same file"):
        bridge.file.copy_file(src, src)
    with pytest.raises(ValidationError, match="dst is a directory"):
        bridge.file.copy_file(src, tmp_path)
    with pytest.raises(ValidationError, match="src is not a regular file"):
        bridge.file.copy_file(tmp_path, tmp_path / "y")


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as file:
        file.truncate(size)
    return path


@pytest.fixture
def memory_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder in tmpfs when there is one: a write there never waits for a disk, so a
    cancelled worker's current step ends well within the pool's kill grace (on a busy disk
    one 8 MiB write can stall longer, and the worker would be replaced instead)."""
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="test-file-", dir="/dev/shm"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("op", ["copy_file", "join_files"])
def test_cancel_leaves_no_temporary(bridge: WorkerBridge, memory_dir: Path, op: str) -> None:
    source = sparse(memory_dir / "sparse", long_size(bridge))
    out = memory_dir / "out"
    progress = Progress()
    handle: Any
    if op == "copy_file":
        handle = bridge.file.copy_file(source, out, on_progress=progress)
    else:
        handle = bridge.file.join_files([source, source], out, on_progress=progress)
    assert progress.first.wait(30)
    assert handle.cancel()
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=30)
    # cancel() returned after the driver's cleanup: nothing is left behind at this point.
    assert temps_in(memory_dir) == []
    assert not out.exists()


def test_timeout_leaves_no_temporary(bridge: WorkerBridge, memory_dir: Path) -> None:
    source = sparse(memory_dir / "sparse", long_size(bridge))
    out = memory_dir / "out"
    handle = bridge.file.copy_file(source, out, timeout=0.02)
    if bridge.pool.backend == "inline":
        # The copy is one call, which inline runs to its end inside the job: it may finish
        # in time. Either way the outcome is whole: a copy, or a timeout and nothing.
        try:
            result = handle.result(timeout=30)
        except TaskTimeoutError:
            pass
        else:
            assert result.bytes_out == out.stat().st_size == source.stat().st_size
            out.unlink()
    else:
        with pytest.raises(TaskTimeoutError):
            handle.result(timeout=30)
    assert temps_in(memory_dir) == []
    assert not out.exists()


# ---------------------------------------------------------------------------- split / join


@pytest.mark.parametrize(
    ("size", "part_size"),
    [(0, 10), (1, 10), (3 * 1000, 1000), (3 * 1000 + 1, 1000), (CHUNK + 5, CHUNK // 3)],
)
def test_split_and_join_round_trip(
    bridge: WorkerBridge, tmp_path: Path, size: int, part_size: int
) -> None:
    data = os.urandom(size)
    src = tmp_path / "file.bin"
    src.write_bytes(data)
    parts_dir = tmp_path / "parts"
    parts_dir.mkdir()
    progress = Progress()
    parts = bridge.file.split_file(src, part_size, parts_dir, on_progress=progress).result(
        timeout=30
    )
    count = max(1, -(-size // part_size))
    assert parts == [str(parts_dir / f"file.bin.part{i:04d}") for i in range(1, count + 1)]
    assert b"".join(Path(p).read_bytes() for p in parts) == data
    assert all(Path(p).stat().st_size == part_size for p in parts[:-1])
    if size:
        assert progress.reached_total()
    joined = tmp_path / "joined.bin"
    progress = Progress()
    result = bridge.file.join_files(parts, joined, on_progress=progress).result(timeout=30)
    assert result == FileResult(str(joined), size, size)
    assert joined.read_bytes() == data
    if size:
        assert progress.reached_total()
    assert temps_in(tmp_path) == []
    assert temps_in(parts_dir) == []


def test_join_into_one_of_its_parts(bridge: WorkerBridge, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_bytes(b"one,")
    second.write_bytes(b"two")
    bridge.file.join_files([first, second, first], first).result(timeout=30)
    assert first.read_bytes() == b"one,twoone,"
    assert temps_in(tmp_path) == []


def test_split_makes_its_output_folder(bridge: WorkerBridge, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"abcdefg")
    parts = bridge.file.split_file(src, 4, tmp_path / "new" / "parts").result(timeout=30)
    assert [Path(p).read_bytes() for p in parts] == [b"abc" + b"d", b"efg"]


def test_a_cancelled_split_removes_the_folder_it_made(
    bridge: WorkerBridge, memory_dir: Path
) -> None:
    size = long_size(bridge)
    src = sparse(memory_dir / "f", size)
    progress = Progress()
    handle = bridge.file.split_file(
        src, size // 16, memory_dir / "new" / "parts", on_progress=progress
    )
    assert progress.first.wait(30)
    assert handle.cancel()
    with pytest.raises(TaskCancelledError):
        handle.result(timeout=30)
    assert sorted(p.name for p in memory_dir.iterdir()) == ["f"]


def test_split_beside_the_file_by_default(bridge: WorkerBridge, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"abcdefg")
    parts = bridge.file.split_file(src, 3).result(timeout=30)
    assert [Path(p).read_bytes() for p in parts] == [b"abc", b"def", b"g"]
    assert [Path(p).parent for p in parts] == [tmp_path] * 3


def test_split_and_join_check_their_arguments(bridge: WorkerBridge, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"abc")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValidationError, match="part_size"):
            bridge.file.split_file(src, bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="output_dir: not a folder"):
        bridge.file.split_file(src, 1, src / "sub")
    with pytest.raises(ValidationError, match="parts"):
        bridge.file.join_files([], tmp_path / "out")
    with pytest.raises(ValidationError, match="parts must be a sequence"):
        bridge.file.join_files(str(src), tmp_path / "out")
    with pytest.raises(ValidationError, match=r"parts\[1\]"):
        bridge.file.join_files([src, tmp_path / "missing"], tmp_path / "out")


def test_a_file_that_changes_after_the_checks_is_an_operation_error(
    bridge: WorkerBridge, tmp_path: Path
) -> None:
    """The worker's OSError (the part shrank, the file vanished) crosses as
    OperationError on every backend."""
    part = tmp_path / "part"
    part.write_bytes(b"x" * 100)
    out = tmp_path / "out"
    handle = bridge.pool.call("file", "copy_range", str(part), 0, 200, str(out), 0)
    with pytest.raises(OperationError, match="No such file"):
        handle.result(timeout=30)  # the output temporary is gone: the worker never creates it
    out.write_bytes(b"")
    with pytest.raises(OperationError, match="changed while it was being copied"):
        bridge.pool.call("file", "copy_range", str(part), 0, 200, str(out), 0).result(timeout=30)
    with pytest.raises(OperationError, match="cannot read"):
        bridge.pool.call("file", "hash_file", str(tmp_path / "gone"), "sha256").result(timeout=30)
    paths = [str(part), str(tmp_path / "gone")]
    with pytest.raises(OperationError, match=r"cannot read .*gone"):
        bridge.pool.call("file", "hash_many", paths, "sha256").result(timeout=30)
    entries = [(str(part), "00" * 32), (str(tmp_path / "gone"), "00" * 32), (str(tmp_path), "")]
    statuses = bridge.pool.call("file", "verify_many", entries, "sha256").result(timeout=30)
    assert statuses == ["failed", "missing", "failed"]


def test_small_files_are_batched_and_large_ones_alone() -> None:
    big = BATCH_BYTES
    assert _batches([]) == []
    assert _batches([1] * (BATCH_FILES + 3)) == [
        range(BATCH_FILES),
        range(BATCH_FILES, BATCH_FILES + 3),
    ]
    assert _batches([1, big, 2, 3, big + 1]) == [range(1), range(1, 2), range(2, 4), range(4, 5)]
    assert _batches([big // 2, big // 2, 1]) == [range(2), range(2, 3)]


# ---------------------------------------------------------------------------- validation

OPS: dict[str, Callable[[WorkerBridge, Path], object]] = {
    "hash_file": lambda b, p: b.file.hash_file(p),
    "hash_files": lambda b, p: b.file.hash_files([p]),
    "read_file": lambda b, p: b.file.read_file(p),
    "copy_file": lambda b, p: b.file.copy_file(p, p.parent / "copy"),
    "split_file": lambda b, p: b.file.split_file(p, 10),
    "join_files": lambda b, p: b.file.join_files([p], p.parent / "joined"),
    "checksum_manifest": lambda b, p: b.file.checksum_manifest(p),
    "verify_manifest": lambda b, p: b.file.verify_manifest(p),
}


@pytest.mark.parametrize("op", list(OPS))
def test_a_missing_input_is_refused_before_dispatch(
    bridge: WorkerBridge, tmp_path: Path, op: str
) -> None:
    submitted = bridge.pool.stats().submitted
    with pytest.raises(ValidationError, match="no such"):
        OPS[op](bridge, tmp_path / "missing")
    assert bridge.pool.stats().submitted == submitted


def test_unknown_algorithm_and_wrong_types_are_refused(
    bridge: WorkerBridge, samples: dict[str, Path]
) -> None:
    with pytest.raises(ValidationError, match="algorithm must be one of"):
        bridge.file.hash_file(samples["small"], "md5")
    with pytest.raises(ValidationError, match="algorithm"):
        bridge.file.hash_files([samples["small"]], "SHA256")
    with pytest.raises(ValidationError, match="path must be a str"):
        bridge.file.hash_file(b"/etc/passwd")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not a regular file"):
        bridge.file.hash_file(samples["small"].parent)
    with pytest.raises(ValidationError, match="timeout"):
        bridge.file.hash_file(samples["small"], timeout=-1)
