"""Fallback parity (issue 5, item 6; RELIABILITY.md S39): every bridge operation runs on the
process, thread and inline backends, and each gives the same result, or fails with the same
error type, on all three.

Each case is a function ``case(bridge, folder) -> value`` that runs one operation to its end
and returns something comparable (bytes, a digest, the text of a manifest, the contents of
a written file). The test runs it once per backend, each time in a fresh folder with the
same inputs, and compares what came out: equal values, or the same exception type.
Operations whose output is random by design (encryption with a fresh nonce) are compared
through what is deterministic about them (the plaintext they decrypt to, their length).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import workerbridge as wb
from workerbridge import WorkerBridge, WorkerPool

from ._http_server import HTTPTestServer, free_port
from .conftest import BACKENDS

Case = Callable[[WorkerBridge, Path], Any]
TIMEOUT = 60

KEY = bytes(range(32))
DATA = b"".join(i.to_bytes(4, "big") for i in range(300_000))  # 1.2 MB, several chunks


def _inputs(folder: Path) -> None:
    """The same input files in every backend's folder."""
    (folder / "in").mkdir()
    (folder / "in" / "data.bin").write_bytes(DATA)
    (folder / "in" / "small.txt").write_bytes(b"hello parity\n")
    (folder / "in" / "empty").write_bytes(b"")
    (folder / "in" / "sub").mkdir()
    (folder / "in" / "sub" / "name with space.txt").write_bytes(b"x" * 1000)


def _result(handle: wb.TaskHandle[Any]) -> Any:
    return handle.result(timeout=TIMEOUT)


# --------------------------------------------------------------------------- crypto
def crypto_round_trip(bridge: WorkerBridge, folder: Path) -> Any:
    crypto = bridge.crypto
    sealed = _result(crypto.encrypt(DATA, KEY, aad=b"header"))
    return len(sealed), _result(crypto.decrypt(sealed, KEY, aad=b"header"))


def crypto_file_round_trip(bridge: WorkerBridge, folder: Path) -> Any:
    crypto = bridge.crypto
    src, enc, dec = folder / "in" / "data.bin", folder / "data.enc", folder / "data.out"
    _result(crypto.encrypt_file(src, KEY, output=enc, chunk_size=64 << 10))
    _result(crypto.decrypt_file(enc, KEY, output=dec))
    return enc.stat().st_size, dec.read_bytes() == DATA, sorted(p.name for p in folder.iterdir())


def crypto_bytes_file_round_trip(bridge: WorkerBridge, folder: Path) -> Any:
    crypto = bridge.crypto
    sealed = _result(crypto.encrypt_file(DATA, KEY, chunk_size=64 << 10))
    return len(sealed), _result(crypto.decrypt_file(sealed, KEY)) == DATA


def crypto_tampered(bridge: WorkerBridge, folder: Path) -> Any:
    sealed = bytearray(_result(bridge.crypto.encrypt_file(DATA, KEY, chunk_size=64 << 10)))
    sealed[len(sealed) // 2] ^= 1
    out = folder / "out"
    try:
        return _result(bridge.crypto.decrypt_file(bytes(sealed), KEY, output=out))
    finally:
        assert not out.exists()
        assert not [p for p in folder.iterdir() if p.name != "in"]


def crypto_truncated(bridge: WorkerBridge, folder: Path) -> Any:
    sealed = _result(bridge.crypto.encrypt_file(DATA, KEY, chunk_size=64 << 10))
    # Cut exactly after the first chunk (header 21 bytes, chunk 64 KiB + 16): no final chunk.
    return _result(bridge.crypto.decrypt_file(sealed[: 21 + (64 << 10) + 16], KEY))


def crypto_wrong_key(bridge: WorkerBridge, folder: Path) -> Any:
    sealed = _result(bridge.crypto.encrypt(b"secret", KEY))
    return _result(bridge.crypto.decrypt(sealed, bytes(32)))


def crypto_nonce_reuse(bridge: WorkerBridge, folder: Path) -> Any:
    key, nonce = bridge.crypto.generate_key(), bridge.crypto.generate_nonce()
    _result(bridge.crypto.encrypt(b"first", key, nonce))
    return _result(bridge.crypto.encrypt(b"second", key, nonce))


def crypto_bad_key(bridge: WorkerBridge, folder: Path) -> Any:
    return _result(bridge.crypto.encrypt(b"data", b"short"))


def crypto_not_encrypted(bridge: WorkerBridge, folder: Path) -> Any:
    return _result(bridge.crypto.decrypt_file(b"this is not an encrypted file at all", KEY))


def crypto_hashes(bridge: WorkerBridge, folder: Path) -> Any:
    algorithms = ("sha256", "sha512", "sha3_256", "blake2b", "blake3")
    return [_result(bridge.crypto.hash(DATA, a)) for a in algorithms] + [
        _result(bridge.crypto.hash_file(folder / "in" / "data.bin", a)) for a in algorithms
    ]


def crypto_kdf(bridge: WorkerBridge, folder: Path) -> Any:
    scrypt = _result(bridge.crypto.derive_key("correct horse", b"salt" * 4, n=2**10))
    hkdf = _result(bridge.crypto.hkdf(KEY, salt=b"s", info=b"parity", length=48))
    return scrypt, hkdf


# --------------------------------------------------------------------------- file
def file_ops(bridge: WorkerBridge, folder: Path) -> Any:
    f = bridge.file
    src = folder / "in" / "data.bin"
    out: list[Any] = [_result(f.hash_file(src))]
    out.append(_result(f.read_file(src, 100, 1000)))
    _result(f.write_file(folder / "written", b"abc" * 1000))
    _result(f.copy_file(src, folder / "copy"))
    parts = _result(f.split_file(src, 300_000, folder / "parts"))
    _result(f.join_files(parts, folder / "joined"))
    out += [
        (folder / "written").read_bytes(),
        (folder / "copy").read_bytes() == DATA,
        [Path(p).name for p in parts],
        (folder / "joined").read_bytes() == DATA,
        [(Path(p).name, d) for p, d in _result(f.hash_files([src, folder / "copy"]))],
    ]
    return out


def file_manifest(bridge: WorkerBridge, folder: Path) -> Any:
    text = _result(bridge.file.checksum_manifest(folder / "in", output=folder / "SHA256SUMS"))
    report = _result(bridge.file.verify_manifest(folder / "SHA256SUMS", folder / "in"))
    (folder / "in" / "small.txt").write_bytes(b"changed\n")
    (folder / "in" / "empty").unlink()
    changed = _result(bridge.file.verify_manifest(folder / "SHA256SUMS", folder / "in"))
    return text, report.passed, changed.passed, changed.failed, changed.missing


def file_missing(bridge: WorkerBridge, folder: Path) -> Any:
    return _result(bridge.file.hash_file(folder / "does-not-exist"))


def file_verify_raises(bridge: WorkerBridge, folder: Path) -> Any:
    manifest = folder / "SUMS"
    _result(bridge.file.checksum_manifest(folder / "in", output=manifest))
    (folder / "in" / "small.txt").write_bytes(b"changed\n")
    _result(bridge.file.verify_manifest(manifest, folder / "in")).raise_for_failures()


# --------------------------------------------------------------------------- compression
FORMATS = ("gzip", "zlib", "zstd", "brotli", "lz4", "bz2", "xz")


def compression_round_trips(bridge: WorkerBridge, folder: Path) -> Any:
    c = bridge.compression
    out = []
    for fmt in FORMATS:
        packed = _result(c.compress(DATA, fmt, None))
        out.append((fmt, hashlib.sha256(packed).hexdigest(), _result(c.decompress(packed, fmt))))
    return out


def compression_files(bridge: WorkerBridge, folder: Path) -> Any:
    c = bridge.compression
    src = folder / "in" / "data.bin"
    out = []
    for fmt in ("gzip", "zstd"):
        packed = folder / f"data.{fmt}"
        _result(c.compress_file(src, packed, format=fmt, chunk_size=256 << 10))
        back = folder / f"back.{fmt}"
        _result(c.decompress_file(packed, back))
        out.append((hashlib.sha256(packed.read_bytes()).hexdigest(), back.read_bytes() == DATA))
    return out


def compression_corrupt(bridge: WorkerBridge, folder: Path) -> Any:
    packed = bytearray(gzip.compress(DATA))
    packed[len(packed) // 2 : len(packed) // 2 + 64] = bytes(64)
    return _result(bridge.compression.decompress(bytes(packed), "gzip"))


def compression_bomb(bridge: WorkerBridge, folder: Path) -> Any:
    bomb = gzip.compress(bytes(64 << 20), 1)
    return _result(bridge.compression.decompress(bomb, max_output=1 << 20))


def compression_bad_level(bridge: WorkerBridge, folder: Path) -> Any:
    return _result(bridge.compression.compress(DATA, "gzip", 42))


# --------------------------------------------------------------------------- network
# Each case runs its own server on 127.0.0.1 (ports differ between runs, so URLs are not
# compared; statuses, bodies and files are).
def network_fetch(bridge: WorkerBridge, folder: Path) -> Any:
    with HTTPTestServer() as server:
        server.add_echo("/echo")
        server.add_status("/missing", 404, b"nope")
        echo = _result(
            bridge.network.fetch(server.url("/echo"), method="POST", body=b"hi", retries=0)
        )
        missing = _result(bridge.network.fetch(server.url("/missing"), retries=0))
        body = echo.json()
        return echo.status, body["method"], body["body_b64"], missing.status, missing.body


def network_download_upload(bridge: WorkerBridge, folder: Path) -> Any:
    with HTTPTestServer() as server:
        url = server.add_blob("/data", DATA, drop_times=1, drop_after=100_000)
        sink = server.add_sink("/up")
        target = folder / "data.bin"
        digest = hashlib.sha256(DATA).hexdigest()
        _result(bridge.network.download(url, target, sha256=digest, backoff=0.001))
        reply = _result(bridge.network.upload(server.url("/up"), target, retries=0))
        return target.read_bytes() == DATA, reply.status, [u.sha256 for u in sink.uploads]


def network_not_found(bridge: WorkerBridge, folder: Path) -> Any:
    with HTTPTestServer() as server:
        server.add_status("/gone", 404)
        return _result(bridge.network.download(server.url("/gone"), folder / "x", retries=0))


def network_refused(bridge: WorkerBridge, folder: Path) -> Any:
    url = f"http://127.0.0.1:{free_port()}/"
    return _result(bridge.network.fetch(url, retries=1, backoff=0.001))


def network_bad_checksum(bridge: WorkerBridge, folder: Path) -> Any:
    with HTTPTestServer() as server:
        url = server.add_blob("/data", b"abc")
        return _result(bridge.network.download(url, folder / "x", sha256="0" * 64, retries=0))


def network_bad_url(bridge: WorkerBridge, folder: Path) -> Any:
    return _result(bridge.network.fetch("ftp://example.invalid/"))


CASES: dict[str, Case] = {
    name: fn
    for name, fn in list(globals().items())
    if name.startswith(("crypto_", "file_", "compression_", "network_")) and callable(fn)
}


# --------------------------------------------------------------------------- the test
@pytest.fixture
def bridges() -> Iterator[dict[str, WorkerBridge]]:
    pools = {backend: WorkerPool(2, backend=backend) for backend in BACKENDS}
    try:
        for pool in pools.values():
            pool.wait_ready(60)
        yield {backend: WorkerBridge(pool=pool) for backend, pool in pools.items()}
    finally:
        for pool in pools.values():
            pool.terminate()


def outcome(case: Case, bridge: WorkerBridge, folder: Path) -> tuple[str, Any]:
    folder.mkdir()
    _inputs(folder)
    try:
        return "ok", case(bridge, folder)
    except Exception as exc:
        return "error", type(exc)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_backend_gives_the_same_outcome(
    name: str, bridges: dict[str, WorkerBridge], tmp_path: Path
) -> None:
    outcomes = {
        backend: outcome(CASES[name], bridge, tmp_path / backend)
        for backend, bridge in bridges.items()
    }
    reference = outcomes["process"]
    for backend, got in outcomes.items():
        assert got == reference, f"{name}: {backend} gave {got!r}, process gave {reference!r}"


#: What each case must end in (the same on every backend, checked above).
EXPECTED_ERRORS: dict[str, type[Exception]] = {
    "crypto_tampered": wb.IntegrityError,
    "crypto_truncated": wb.TruncationError,
    "crypto_wrong_key": wb.IntegrityError,
    "crypto_nonce_reuse": wb.NonceReuseError,
    "crypto_bad_key": wb.ValidationError,
    "crypto_not_encrypted": wb.FormatError,
    "file_missing": wb.ValidationError,
    "file_verify_raises": wb.ChecksumMismatchError,
    "compression_corrupt": wb.FormatError,
    "compression_bomb": wb.OutputLimitError,
    "compression_bad_level": wb.ValidationError,
    "network_not_found": wb.HTTPStatusError,
    "network_refused": wb.NetworkError,
    "network_bad_checksum": wb.ChecksumMismatchError,
    "network_bad_url": wb.ValidationError,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_outcome_is_the_documented_one(
    name: str, bridges: dict[str, WorkerBridge], tmp_path: Path
) -> None:
    kind, value = outcome(CASES[name], bridges["thread"], tmp_path / "thread")
    expected = EXPECTED_ERRORS.get(name)
    if expected is None:
        assert kind == "ok", f"{name} failed with {value!r}"
    else:
        assert (kind, value) == ("error", expected)
