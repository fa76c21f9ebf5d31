"""``encrypt_file`` / ``decrypt_file`` on every backend: round trips of bytes and files in
every combination (byte-identical to the sequential reference encoder, whatever way the
work is split into parallel ranges), progress, cancellation and timeout in the middle of a
file, and no plaintext or temporary file left behind by any failure (RELIABILITY.md
S25-S29 through the bridge)."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from workerbridge import (
    FormatError,
    IntegrityError,
    OperationError,
    ProgressInfo,
    TaskCancelledError,
    TaskHandle,
    TaskTimeoutError,
    TruncationError,
    WorkerBridge,
    create_cancellation_token,
)
from workerbridge._bridge import _crypto as bridge_module
from workerbridge._channels import _aead_stream as fmt
from workerbridge._channels._results import FileResult

TIMEOUT = 60


def result(handle: TaskHandle[Any]) -> Any:
    return handle.result(timeout=TIMEOUT)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".wb-tmp"))


@pytest.fixture
def small_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut files into calls of 64..512 bytes, so that small inputs (which stay out of shared
    memory) still run as many ranges in parallel."""
    monkeypatch.setattr(bridge_module, "CALL_BYTES_MIN", 64)
    monkeypatch.setattr(bridge_module, "CALL_BYTES_MAX", 512)


# --------------------------------------------------------------------------- round trips
SIZES = [0, 1, 63, 64, 65, 640, 1000, 64 * 37 + 5]


@pytest.mark.usefixtures("small_calls")
@pytest.mark.parametrize("aad", [None, b"file-aad"])
def test_bytes_round_trips_match_the_reference(bridge: WorkerBridge, aad: bytes | None) -> None:
    key = bridge.crypto.generate_key()
    for size in SIZES:
        data = os.urandom(size)
        nonce = bridge.crypto.generate_nonce()
        before = bridge.pool.stats().submitted
        sealed = result(bridge.crypto.encrypt_file(data, key, nonce, aad=aad, chunk_size=64))
        calls = bridge.pool.stats().submitted - before
        reference = fmt.seal_message(key, data, file_nonce=nonce, aad=aad or b"", chunk_size=64)
        assert type(sealed) is bytes
        assert sealed == reference, size
        chunks = fmt.chunk_count(size, 64)
        per_call = bridge_module._chunks_per_call(chunks, 64, bridge.pool.size)
        assert calls == -(-chunks // per_call)
        assert calls >= min(chunks, 4)  # spread over the workers
        plain = result(bridge.crypto.decrypt_file(sealed, key, aad=aad))
        assert type(plain) is bytes
        assert plain == data, size


@pytest.mark.usefixtures("small_calls")
def test_file_round_trips_in_every_combination(bridge: WorkerBridge, tmp_path: Path) -> None:
    key = bridge.crypto.generate_key()
    for size in SIZES:
        data = os.urandom(size)
        src, enc, dec = tmp_path / "plain", tmp_path / "sealed", tmp_path / "opened"
        src.write_bytes(data)
        nonce = bridge.crypto.generate_nonce()
        done = result(bridge.crypto.encrypt_file(src, key, nonce, output=enc, chunk_size=64))
        reference = fmt.seal_message(key, data, file_nonce=nonce, chunk_size=64)
        assert done == FileResult(str(enc), size, len(reference))
        assert enc.read_bytes() == reference
        # path -> path, path -> bytes, bytes -> path, with str paths too
        opened = result(bridge.crypto.decrypt_file(str(enc), key, output=str(dec)))
        assert opened == FileResult(str(dec), len(reference), size)
        assert dec.read_bytes() == data
        assert result(bridge.crypto.decrypt_file(enc, key)) == data
        assert result(bridge.crypto.encrypt_file(src, key, chunk_size=64))[21:] != reference[21:]
        result(bridge.crypto.decrypt_file(reference, key, output=dec))
        assert dec.read_bytes() == data
        sealed_to_file = result(bridge.crypto.encrypt_file(data, key, output=enc, chunk_size=64))
        assert sealed_to_file.bytes_in == size
        assert result(bridge.crypto.decrypt_file(enc, key)) == data
        assert leftovers(tmp_path) == []


def test_large_file_to_file(bridge: WorkerBridge, tmp_path: Path) -> None:
    """Several MiB with the default and a smaller chunk size: many ranges, many blocks per
    range, each worker reading and writing its part of the files itself."""
    key = bridge.crypto.generate_key()
    data = os.urandom((5 << 20) + 3)
    src, enc, dec = tmp_path / "big", tmp_path / "big.wbef", tmp_path / "big.out"
    src.write_bytes(data)
    for chunk_size in (fmt.DEFAULT_CHUNK_SIZE, 64 << 10, 1000):
        nonce = bridge.crypto.generate_nonce()
        done = result(
            bridge.crypto.encrypt_file(src, key, nonce, output=enc, chunk_size=chunk_size)
        )
        reference = fmt.seal_message(key, data, file_nonce=nonce, chunk_size=chunk_size)
        assert done.bytes_out == len(reference) == enc.stat().st_size
        assert enc.read_bytes() == reference
        assert result(bridge.crypto.decrypt_file(enc, key, output=dec)).bytes_out == len(data)
        assert dec.read_bytes() == data
    assert stat.S_IMODE(enc.stat().st_mode) == 0o600
    assert stat.S_IMODE(dec.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


def test_large_bytes_through_shared_memory(bridge: WorkerBridge) -> None:
    key = bridge.crypto.generate_key()
    data = os.urandom((6 << 20) + 11)
    nonce = bridge.crypto.generate_nonce()
    sealed = result(bridge.crypto.encrypt_file(memoryview(data), key, nonce))
    assert sealed == fmt.seal_message(key, data, file_nonce=nonce)
    assert result(bridge.crypto.decrypt_file(bytearray(sealed), key)) == data


def test_output_replaces_existing_file_and_in_place(bridge: WorkerBridge, tmp_path: Path) -> None:
    key = bridge.crypto.generate_key()
    path = tmp_path / "doc"
    path.write_bytes(b"old contents " * 100)
    original = path.read_bytes()
    result(bridge.crypto.encrypt_file(path, key, output=path))  # in place
    assert path.read_bytes()[:4] == b"WBEF"
    result(bridge.crypto.decrypt_file(path, key, output=path))
    assert path.read_bytes() == original
    other = tmp_path / "other"
    other.write_bytes(b"to be replaced")
    result(bridge.crypto.encrypt_file(b"new", key, output=other))
    assert result(bridge.crypto.decrypt_file(other, key)) == b"new"
    assert leftovers(tmp_path) == []


def test_relative_paths(
    bridge: WorkerBridge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("in.txt").write_bytes(b"relative")
    key = bridge.crypto.generate_key()
    done = result(bridge.crypto.encrypt_file("in.txt", key, output="out.wbef"))
    assert done.path == str(tmp_path / "out.wbef")
    assert result(bridge.crypto.decrypt_file(Path("out.wbef"), key)) == b"relative"


# --------------------------------------------------------------------------- progress
def test_progress_reaches_100_percent(bridge: WorkerBridge, tmp_path: Path) -> None:
    key = bridge.crypto.generate_key()
    src, enc, dec = tmp_path / "p", tmp_path / "p.wbef", tmp_path / "p.out"
    size = (3 << 20) + 5
    src.write_bytes(os.urandom(size))
    sealing: list[ProgressInfo] = []
    result(
        bridge.crypto.encrypt_file(
            src, key, output=enc, chunk_size=64 << 10, on_progress=sealing.append
        )
    )
    assert len(sealing) > 1
    assert sealing[-1].current == sealing[-1].total == size
    assert sealing[-1].progress == 100.0
    assert all(p.current <= p.total for p in sealing)
    opening: list[ProgressInfo] = []
    result(bridge.crypto.decrypt_file(enc, key, output=dec, on_progress=opening.append))
    assert opening[-1].current == opening[-1].total == enc.stat().st_size
    empty: list[ProgressInfo] = []
    result(bridge.crypto.encrypt_file(b"", key, on_progress=empty.append))
    assert empty[-1].progress == 100.0


def test_await_from_asyncio(bridge: WorkerBridge, tmp_path: Path) -> None:
    """Awaited from a coroutine: the results, and progress delivered on the caller's loop.

    Whether the last reports arrive is not asserted: the job runner resolves the handle
    from its own thread right after scheduling them on the loop, and a report that runs
    after that is dropped (reported to the lead; the sync path above is exact)."""
    key = bridge.crypto.generate_key()
    src = tmp_path / "a"
    src.write_bytes(os.urandom(8 << 20))

    enc, dec = tmp_path / "a.wbef", tmp_path / "a.out"

    async def main() -> tuple[set[int], int]:
        threads: set[int] = set()
        await bridge.crypto.encrypt_file(
            src,
            key,
            output=enc,
            chunk_size=64 << 10,
            on_progress=lambda _p: threads.add(threading.get_ident()),
        )
        await bridge.crypto.decrypt_file(enc, key, output=dec)
        return threads, threading.get_ident()

    threads, loop_thread = asyncio.run(main())
    assert threads <= {loop_thread}
    assert dec.read_bytes() == src.read_bytes()


# --------------------------------------------------------------------------- cancel, timeout
def _slow_input(folder: Path) -> Path:
    """16 MiB to seal in 16-byte chunks: about a million chunks, a second or more of work,
    reported (and checked for cancellation) every 4096 chunks."""
    path = folder / "slow"
    path.write_bytes(os.urandom(16 << 20))
    return path


def test_cancel_mid_file_removes_the_temporary_output(bridge: WorkerBridge, tmp_path: Path) -> None:
    src, out = _slow_input(tmp_path), tmp_path / "out.wbef"
    started = threading.Event()
    handle = bridge.crypto.encrypt_file(
        src,
        bridge.crypto.generate_key(),
        output=out,
        chunk_size=16,
        on_progress=lambda _p: started.set(),
    )
    assert started.wait(TIMEOUT)
    assert handle.cancel()
    # cancel() returned after the job's cleanup: nothing of the output exists any more.
    assert leftovers(tmp_path) == []
    assert not out.exists()
    assert handle.cancelled()
    with pytest.raises(TaskCancelledError):
        result(handle)


def test_signal_cancels_a_decryption(bridge: WorkerBridge, tmp_path: Path) -> None:
    key = bridge.crypto.generate_key()
    src, enc, dec = _slow_input(tmp_path), tmp_path / "s.wbef", tmp_path / "s.out"
    result(bridge.crypto.encrypt_file(src, key, output=enc, chunk_size=16))
    token, cancel = create_cancellation_token()
    started = threading.Event()
    try:
        handle = bridge.crypto.decrypt_file(
            enc, key, output=dec, signal=token, on_progress=lambda _p: started.set()
        )
        assert started.wait(TIMEOUT)
        cancel()
        with pytest.raises(TaskCancelledError):
            result(handle)
    finally:
        token.close()
    assert leftovers(tmp_path) == []
    assert not dec.exists()


def test_timeout_mid_file(bridge: WorkerBridge, tmp_path: Path) -> None:
    src, out = _slow_input(tmp_path), tmp_path / "t.wbef"
    handle = bridge.crypto.encrypt_file(
        src, bridge.crypto.generate_key(), output=out, chunk_size=16, timeout=0.05
    )
    with pytest.raises(TaskTimeoutError):
        result(handle)
    assert leftovers(tmp_path) == []
    assert not out.exists()


# --------------------------------------------------------------------------- failures
def _sealed_file(bridge: WorkerBridge, folder: Path, key: bytes) -> tuple[bytes, Path]:
    """3 MiB + 1 in 64 KiB chunks: 49 chunks in 4 ranges of at most 16 chunks."""
    data = os.urandom((3 << 20) + 1)
    src, enc = folder / "victim", folder / "victim.wbef"
    src.write_bytes(data)
    result(bridge.crypto.encrypt_file(src, key, output=enc, chunk_size=64 << 10))
    return data, enc


def test_no_plaintext_left_on_integrity_error(bridge: WorkerBridge, tmp_path: Path) -> None:
    """A modified chunk early, in the middle or in the last range: IntegrityError, the
    output never appears (an existing one is left untouched), no temporary file stays."""
    key = bridge.crypto.generate_key()
    _data, enc = _sealed_file(bridge, tmp_path, key)
    sealed = enc.read_bytes()
    out = tmp_path / "plain.out"
    out.write_bytes(b"previous")
    stride = (64 << 10) + 16
    for chunk in (0, 17, 30, 48):
        bad = bytearray(sealed)
        bad[21 + chunk * stride + (100 if chunk < 48 else 5)] ^= 0x80
        victim = tmp_path / "tampered.wbef"
        victim.write_bytes(bad)
        with pytest.raises(IntegrityError, match=f"chunk {chunk}") as info:
            result(bridge.crypto.decrypt_file(victim, key, output=out))
        assert type(info.value) is IntegrityError
        assert out.read_bytes() == b"previous"
        assert leftovers(tmp_path) == []


def test_truncated_file_is_refused(bridge: WorkerBridge, tmp_path: Path) -> None:
    key = bridge.crypto.generate_key()
    _data, enc = _sealed_file(bridge, tmp_path, key)
    sealed = enc.read_bytes()
    out = tmp_path / "cut.out"
    stride = (64 << 10) + 16
    cases = {
        21 + 48 * stride: TruncationError,  # the final chunk dropped
        21 + 16 * stride: TruncationError,  # at a range boundary
        21 + 5 * stride + 7: IntegrityError,  # inside a chunk
        len(sealed) - 1: IntegrityError,  # the last byte of the tag
        21: TruncationError,  # header only
        10: TruncationError,  # inside the header
        0: TruncationError,  # empty
    }
    for cut, error in cases.items():
        enc.write_bytes(sealed[:cut])
        with pytest.raises(error) as info:
            result(bridge.crypto.decrypt_file(enc, key, output=out))
        assert type(info.value) is error, cut
        assert not out.exists()
        assert leftovers(tmp_path) == []


def test_bytes_result_only_when_every_chunk_authenticates(bridge: WorkerBridge) -> None:
    """Bytes in, bytes out, several ranges through shared memory: a modified last chunk
    or a missing final chunk fails the whole handle; no part of the plaintext comes back."""
    key = bridge.crypto.generate_key()
    data = os.urandom((3 << 20) + 1)
    sealed = result(bridge.crypto.encrypt_file(data, key, chunk_size=64 << 10))
    stride = (64 << 10) + 16
    bad = bytearray(sealed)
    bad[-1] ^= 1
    with pytest.raises(IntegrityError, match="chunk 48") as info:
        result(bridge.crypto.decrypt_file(bad, key))
    assert type(info.value) is IntegrityError
    with pytest.raises(TruncationError):
        result(bridge.crypto.decrypt_file(sealed[: 21 + 48 * stride], key))
    assert result(bridge.crypto.decrypt_file(sealed, key)) == data


def test_wrong_key_aad_and_format(bridge: WorkerBridge, tmp_path: Path) -> None:
    key = bridge.crypto.generate_key()
    sealed = result(bridge.crypto.encrypt_file(b"bound to its aad", key, aad=b"v1", chunk_size=16))
    with pytest.raises(IntegrityError):
        result(bridge.crypto.decrypt_file(sealed, bridge.crypto.generate_key(), aad=b"v1"))
    with pytest.raises(IntegrityError):
        result(bridge.crypto.decrypt_file(sealed, key, aad=b"v2"))
    with pytest.raises(IntegrityError):
        result(bridge.crypto.decrypt_file(sealed, key))
    assert result(bridge.crypto.decrypt_file(sealed, key, aad=b"v1")) == b"bound to its aad"
    text = tmp_path / "notes.txt"
    text.write_text("this is not an encrypted file\n" * 10)
    with pytest.raises(FormatError, match="bad magic"):
        result(bridge.crypto.decrypt_file(text, key, output=tmp_path / "x"))
    with pytest.raises(FormatError, match="version 2"):
        result(bridge.crypto.decrypt_file(sealed[:4] + b"\x02" + sealed[5:], key, aad=b"v1"))
    # A one-shot ciphertext is not a file of this format.
    one_shot = result(bridge.crypto.encrypt(b"abc", key))
    with pytest.raises(FormatError):
        result(bridge.crypto.decrypt_file(one_shot, key))
    assert leftovers(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_input_that_shrinks_while_read(bridge: WorkerBridge, tmp_path: Path) -> None:
    """A file cut short while it is being encrypted: the operation fails (OperationError
    naming the file) instead of sealing a mix of old and new sizes."""
    src, out = tmp_path / "moving", tmp_path / "moving.wbef"
    src.write_bytes(os.urandom(4 << 20))
    cut = threading.Event()

    def shrink(_p: ProgressInfo) -> None:
        if not cut.is_set():
            cut.set()
            os.truncate(src, 1 << 20)

    handle = bridge.crypto.encrypt_file(
        src, bridge.crypto.generate_key(), output=out, chunk_size=64 << 10, on_progress=shrink
    )
    with pytest.raises(OperationError, match="moving") as info:
        result(handle)
    assert type(info.value) is OperationError
    assert not out.exists()
    assert leftovers(tmp_path) == []
