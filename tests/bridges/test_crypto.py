"""The crypto bridge's one-shot API on every backend: AES-256-GCM round trips and published
known-answer vectors, misuse refused before dispatch (RELIABILITY.md S30), nonce-reuse
refusal and the uniqueness of the nonces the bridge makes (S24), key derivation against the
RFC vectors, hashing through the file channel, and keys kept out of every message."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import threading
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workerbridge import (
    IntegrityError,
    NonceReuseError,
    TaskHandle,
    ValidationError,
    WorkerBridge,
)
from workerbridge._bridge._crypto import CryptoBridge, _registry
from workerbridge._channels._results import FileResult

VECTORS = Path(__file__).parent / "vectors"
TIMEOUT = 30


def result(handle: TaskHandle[Any]) -> Any:
    return handle.result(timeout=TIMEOUT)


# --------------------------------------------------------------------------- keys, nonces
def test_generate_key_and_nonce(bridge: WorkerBridge) -> None:
    keys = {bridge.crypto.generate_key() for _ in range(100)}
    nonces = {bridge.crypto.generate_nonce() for _ in range(100)}
    assert len(keys) == len(nonces) == 100
    assert all(type(k) is bytes and len(k) == 32 for k in keys)
    assert all(type(n) is bytes and len(n) == 12 for n in nonces)


# --------------------------------------------------------------------------- one-shot
@pytest.mark.parametrize("size", [0, 1, 1000, 200_000])
@pytest.mark.parametrize("aad", [None, b"", b"header"])
def test_encrypt_decrypt_round_trip(bridge: WorkerBridge, size: int, aad: bytes | None) -> None:
    key = bridge.crypto.generate_key()
    data = os.urandom(size)
    sealed = result(bridge.crypto.encrypt(data, key, aad=aad))
    assert type(sealed) is bytes
    assert len(sealed) == 12 + size + 16
    plain = result(bridge.crypto.decrypt(sealed, key, aad=aad))
    assert type(plain) is bytes
    assert plain == data


def test_large_data_through_shared_memory(bridge: WorkerBridge) -> None:
    key = bridge.crypto.generate_key()
    data = os.urandom(3 << 20)
    sealed = result(bridge.crypto.encrypt(data, key, aad=b"big"))
    assert len(sealed) == 12 + len(data) + 16
    assert result(bridge.crypto.decrypt(sealed, key, aad=b"big")) == data


def test_aad_none_is_empty_aad(bridge: WorkerBridge) -> None:
    key = bridge.crypto.generate_key()
    sealed = result(bridge.crypto.encrypt(b"payload", key, aad=None))
    assert result(bridge.crypto.decrypt(sealed, key, aad=b"")) == b"payload"


def test_bytes_like_inputs(bridge: WorkerBridge) -> None:
    key = bridge.crypto.generate_key()
    words = array("I", range(1000))  # a memoryview of another format is taken as its bytes
    for data in (bytearray(b"abc" * 100), memoryview(b"xyz" * 100), memoryview(words)):
        sealed = result(bridge.crypto.encrypt(data, bytearray(key)))  # type: ignore[arg-type]
        assert result(bridge.crypto.decrypt(memoryview(sealed), key)) == bytes(data)


def test_decrypt_with_explicit_nonce(bridge: WorkerBridge) -> None:
    key, nonce = bridge.crypto.generate_key(), bridge.crypto.generate_nonce()
    sealed = result(bridge.crypto.encrypt(b"attack at dawn", key, nonce, b"aad"))
    assert sealed[:12] == nonce
    assert result(bridge.crypto.decrypt(sealed[12:], key, nonce, b"aad")) == b"attack at dawn"
    with pytest.raises(IntegrityError):
        result(bridge.crypto.decrypt(sealed[12:], key, bytes(12), b"aad"))


def test_decrypt_rejects_every_change(bridge: WorkerBridge) -> None:
    key = bridge.crypto.generate_key()
    sealed = result(bridge.crypto.encrypt(b"0123456789", key, aad=b"ctx"))
    cases = [
        (sealed, bridge.crypto.generate_key(), b"ctx"),  # wrong key
        (sealed, key, b"cty"),  # wrong aad
        (sealed, key, None),  # aad missing
        (sealed + b"\x00", key, b"ctx"),  # a byte appended
    ]
    cases.extend((sealed[:cut], key, b"ctx") for cut in range(len(sealed)))  # every cut
    for bit in range(0, len(sealed) * 8, 7):  # a spread of single-bit flips
        flipped = bytearray(sealed)
        flipped[bit // 8] ^= 1 << (bit % 8)
        cases.append((bytes(flipped), key, b"ctx"))
    for data, k, aad in cases:
        with pytest.raises(IntegrityError) as info:
            result(bridge.crypto.decrypt(data, k, aad=aad))
        assert type(info.value) is IntegrityError


# --------------------------------------------------------------------------- known answers
def _kat_cases() -> list[Any]:
    doc = json.loads((VECTORS / "crypto_aes_gcm_kat.json").read_text())
    cases = []
    for group in doc["groups"]:
        for test in group["tests"]:
            name = test.get("name") or f"wycheproof-{test['tcId']}"
            cases.append(pytest.param(test, id=name))
    return cases


#: (key, iv) pairs of the vectors this process has already encrypted with: the bridge refuses
#: the pair the second time (several vectors share one, and each backend runs every vector).
_kat_pairs_used: set[tuple[str, str]] = set()


@pytest.mark.parametrize("vector", _kat_cases())
def test_aes_gcm_known_answers(bridge: WorkerBridge, vector: dict[str, Any]) -> None:
    """NIST (GCM spec cases 13-16) and Wycheproof AES-256-GCM vectors through the one-shot
    wrapper; sources are named in tests/bridges/vectors/crypto_aes_gcm_kat.json."""
    key, iv = bytes.fromhex(vector["key"]), bytes.fromhex(vector["iv"])
    aad, msg = bytes.fromhex(vector["aad"]), bytes.fromhex(vector["msg"])
    sealed = bytes.fromhex(vector["ct"] + vector["tag"])
    if vector["result"] == "valid":
        assert result(bridge.crypto.decrypt(sealed, key, iv, aad)) == msg
        assert result(bridge.crypto.decrypt(iv + sealed, key, aad=aad)) == msg
        pair = (vector["key"], vector["iv"])
        handle = bridge.crypto.encrypt(msg, key, iv, aad)
        if pair in _kat_pairs_used:
            with pytest.raises(NonceReuseError):
                result(handle)
        else:
            _kat_pairs_used.add(pair)
            assert result(handle) == iv + sealed
    else:
        with pytest.raises(IntegrityError):
            result(bridge.crypto.decrypt(sealed, key, iv, aad))


# --------------------------------------------------------------------------- misuse (S30)
KEY = bytes(range(32))
NONCE = bytes(range(12))


def _misuse_cases(tmp: Path) -> list[tuple[str, Callable[[WorkerBridge], object], str]]:
    big = mmap.mmap(-1, 1 << 31)  # 2**31 bytes, never touched: refused before any copy
    return [
        ("key 16 bytes", lambda b: b.crypto.encrypt(b"x", KEY[:16]), "key must be 32 bytes"),
        ("key 33 bytes", lambda b: b.crypto.encrypt(b"x", KEY + b"!"), "key must be 32 bytes"),
        ("key as str", lambda b: b.crypto.encrypt(b"x", "k" * 32), "key must be bytes"),
        ("key None", lambda b: b.crypto.decrypt(b"x" * 40, None), "key must be bytes"),
        ("nonce 7", lambda b: b.crypto.encrypt(b"x", KEY, NONCE[:7]), "nonce must be 12 bytes"),
        ("nonce 13", lambda b: b.crypto.encrypt(b"x", KEY, NONCE + b"!"), "nonce must be 12"),
        ("nonce 129", lambda b: b.crypto.decrypt(b"x" * 40, KEY, b"n" * 129), "nonce must be"),
        ("nonce str", lambda b: b.crypto.encrypt(b"x", KEY, "n" * 12), "nonce must be bytes"),
        ("data str", lambda b: b.crypto.encrypt("text", KEY), "data must be bytes"),
        ("data int", lambda b: b.crypto.decrypt(42, KEY), "data must be bytes"),
        ("data list", lambda b: b.crypto.encrypt([1, 2], KEY), "data must be bytes"),
        ("data 2**31", lambda b: b.crypto.encrypt(memoryview(big), KEY), "at most 2147483647"),
        ("aad 2**31", lambda b: b.crypto.encrypt(b"x", KEY, aad=memoryview(big)), "aad must be"),
        ("aad str", lambda b: b.crypto.encrypt(b"x", KEY, aad="a"), "aad must be bytes"),
        (
            "non-contiguous",
            lambda b: b.crypto.encrypt(memoryview(b"abcdef")[::2], KEY),
            "contiguous",
        ),
        ("file key", lambda b: b.crypto.encrypt_file(b"x", KEY[:31]), "key must be 32 bytes"),
        ("file nonce", lambda b: b.crypto.encrypt_file(b"x", KEY, b"short"), "nonce must be"),
        ("file data", lambda b: b.crypto.encrypt_file(42, KEY), "data_or_path must be"),
        (
            "file chunk 15",
            lambda b: b.crypto.encrypt_file(b"x", KEY, chunk_size=15),
            "chunk_size must be in",
        ),
        (
            "file chunk huge",
            lambda b: b.crypto.encrypt_file(b"x", KEY, chunk_size=(64 << 20) + 1),
            "chunk_size must be in",
        ),
        (
            "file chunk bool",
            lambda b: b.crypto.encrypt_file(b"x", KEY, chunk_size=True),
            "chunk_size must be an int",
        ),
        (
            "missing file",
            lambda b: b.crypto.encrypt_file(tmp / "missing", KEY, output=tmp / "o"),
            "cannot open",
        ),
        ("folder input", lambda b: b.crypto.decrypt_file(tmp, KEY), "not a regular file"),
        (
            "output folder missing",
            lambda b: b.crypto.encrypt_file(b"x", KEY, output=tmp / "no" / "out"),
            "does not exist",
        ),
        ("output is folder", lambda b: b.crypto.decrypt_file(b"x", KEY, output=tmp), "directory"),
        ("bytes path", lambda b: b.crypto.decrypt_file(b"x", KEY, output=b"/tmp/x"), "a path"),
        ("timeout", lambda b: b.crypto.encrypt(b"x", KEY, timeout=-1), "timeout must be"),
        ("on_progress", lambda b: b.crypto.encrypt(b"x", KEY, on_progress=3), "on_progress"),
        ("algorithm", lambda b: b.crypto.hash(b"x", "md5"), "algorithm must be one of"),
        ("algorithm type", lambda b: b.crypto.hash(b"x", None), "algorithm must be one of"),
        ("hash data", lambda b: b.crypto.hash("x"), "data must be bytes"),
        ("hash_file missing", lambda b: b.crypto.hash_file(tmp / "nope"), "cannot open"),
        ("password int", lambda b: b.crypto.derive_key(5, b"salt"), "password must be"),
        ("salt str", lambda b: b.crypto.derive_key("pw", "salt"), "salt must be bytes"),
        ("n not 2**k", lambda b: b.crypto.derive_key("pw", b"s", n=1000), "power of two"),
        ("n = 1", lambda b: b.crypto.derive_key("pw", b"s", n=1), "n must be >= 2"),
        ("scrypt memory", lambda b: b.crypto.derive_key("pw", b"s", n=2**21), "memory"),
        ("length 0", lambda b: b.crypto.derive_key("pw", b"s", length=0), "length must be in"),
        ("r = 0", lambda b: b.crypto.derive_key("pw", b"s", r=0), "r must be >= 1"),
        ("hkdf empty", lambda b: b.crypto.hkdf(b""), "must not be empty"),
        ("hkdf length", lambda b: b.crypto.hkdf(KEY, length=8161), "length must be in"),
        ("hkdf info", lambda b: b.crypto.hkdf(KEY, info="i"), "info must be bytes"),
    ]


def test_misuse_is_refused_before_dispatch(bridge: WorkerBridge, tmp_path: Path) -> None:
    """Every misuse raises ValidationError naming the argument, synchronously, and nothing
    reaches a worker (the pool's submitted count does not move)."""
    before = bridge.pool.stats().submitted
    for name, call, message in _misuse_cases(tmp_path):
        with pytest.raises(ValidationError, match=message) as info:
            call(bridge)
        assert info.type is ValidationError, name
    assert bridge.pool.stats().submitted == before
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- nonce reuse (S24)
def test_reused_pair_is_refused(bridge: WorkerBridge, tmp_path: Path) -> None:
    key, nonce = bridge.crypto.generate_key(), bridge.crypto.generate_nonce()
    first = result(bridge.crypto.encrypt(b"first", key, nonce))
    with pytest.raises(NonceReuseError, match="already used"):
        result(bridge.crypto.encrypt(b"second", key, nonce))
    # The same pair is refused by encrypt_file too (one registry), before any output exists.
    with pytest.raises(NonceReuseError):
        result(bridge.crypto.encrypt_file(b"second", key, nonce, output=tmp_path / "out"))
    assert os.listdir(tmp_path) == []
    # Other keys with that nonce, and that key with other nonces, are fine.
    result(bridge.crypto.encrypt(b"x", bridge.crypto.generate_key(), nonce))
    result(bridge.crypto.encrypt(b"x", key, bridge.crypto.generate_nonce()))
    # Decrypting is never refused, and the first ciphertext still decrypts.
    assert result(bridge.crypto.decrypt(first, key)) == b"first"
    assert result(bridge.crypto.decrypt(first, key)) == b"first"


def test_reused_file_nonce_is_refused(bridge: WorkerBridge, tmp_path: Path) -> None:
    key, nonce = bridge.crypto.generate_key(), bridge.crypto.generate_nonce()
    src = tmp_path / "in"
    src.write_bytes(b"payload" * 100)
    done = result(bridge.crypto.encrypt_file(src, key, nonce, output=tmp_path / "a"))
    assert isinstance(done, FileResult)
    with pytest.raises(NonceReuseError):
        result(bridge.crypto.encrypt_file(src, key, nonce, output=tmp_path / "b"))
    with pytest.raises(NonceReuseError):
        result(bridge.crypto.encrypt(b"other", key, nonce))
    assert sorted(os.listdir(tmp_path)) == ["a", "in"]


def test_bridge_made_nonces_are_never_refused(bridge: WorkerBridge) -> None:
    key = bridge.crypto.generate_key()
    for _ in range(20):
        result(bridge.crypto.encrypt(b"x", key))
        result(bridge.crypto.encrypt_file(b"x", key))


def test_concurrent_submitters_exactly_one_wins(bridge: WorkerBridge) -> None:
    """Eight threads submit the same (key, nonce) pair at once: one encrypts, seven are
    refused; repeated for several pairs."""
    threads = 8
    for _ in range(5):
        key, nonce = bridge.crypto.generate_key(), bridge.crypto.generate_nonce()
        barrier = threading.Barrier(threads)
        handles: list[TaskHandle[bytes]] = []

        def submit(
            key: bytes, nonce: bytes, barrier: threading.Barrier, into: list[TaskHandle[bytes]]
        ) -> None:
            barrier.wait()
            into.append(bridge.crypto.encrypt(b"same plaintext", key, nonce))  # atomic

        workers = [
            threading.Thread(target=submit, args=(key, nonce, barrier, handles))
            for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        outcomes = [h.exception(timeout=TIMEOUT) for h in handles]
        assert sum(e is None for e in outcomes) == 1
        assert all(isinstance(e, NonceReuseError) for e in outcomes if e is not None)


def test_bridge_made_nonces_are_unique(bridge: WorkerBridge) -> None:
    """10**5 generated nonces, plus the nonces of real encryptions and of encrypted files
    (their header's file nonce), all recorded: no duplicate."""
    seen = {bridge.crypto.generate_nonce() for _ in range(100_000)}
    assert len(seen) == 100_000
    key = bridge.crypto.generate_key()
    handles = [bridge.crypto.encrypt(b"", key) for _ in range(300)]
    files = [bridge.crypto.encrypt_file(b"", key) for _ in range(100)]
    made = [result(h)[:12] for h in handles] + [result(h)[9:21] for h in files]
    assert len(set(made)) == len(made)
    assert not seen & set(made)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_shares_no_nonce_state() -> None:
    """A forked child draws its own nonces (the OS's CSPRNG, no state copied from the
    parent) and still refuses the pairs its parent used (the registry is inherited, its lock
    is new)."""
    key, nonce = os.urandom(32), os.urandom(12)
    assert _registry.claim(key, nonce)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only os-level calls, then _exit
        try:
            refused = not _registry.claim(key, nonce)
            nonces = b"".join(CryptoBridge.generate_nonce() for _ in range(2000))
            os.write(write, (b"1" if refused else b"0") + nonces)
        finally:
            os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    assert data[:1] == b"1"
    child = {data[i : i + 12] for i in range(1, len(data), 12)}
    assert len(child) == 2000
    parent = {CryptoBridge.generate_nonce() for _ in range(2000)}
    assert not child & parent


def test_registry_keeps_no_key() -> None:
    key, nonce = os.urandom(32), os.urandom(12)
    assert _registry.claim(key, nonce)
    assert not _registry.claim(key, nonce)
    for digest in list(_registry._seen):
        assert len(digest) == 16
        assert key not in digest
        assert digest not in key + nonce
    assert key.hex() not in repr(_registry)


# --------------------------------------------------------------------------- no key in messages
def test_keys_never_appear_in_errors_or_reprs(bridge: WorkerBridge, tmp_path: Path) -> None:
    key, nonce = bridge.crypto.generate_key(), bridge.crypto.generate_nonce()
    sealed = result(bridge.crypto.encrypt_file(b"secret" * 1000, key, nonce, chunk_size=64))
    errors: list[BaseException] = []
    attempts: list[Callable[[], object]] = [
        lambda: result(bridge.crypto.encrypt(b"x", key, nonce)),
        lambda: result(bridge.crypto.encrypt_file(b"x", key, nonce)),
        lambda: result(bridge.crypto.decrypt(b"0" * 40, key)),
        lambda: result(bridge.crypto.decrypt_file(sealed[:-3], key)),
        lambda: result(bridge.crypto.decrypt_file(sealed[: 21 + 80], key)),
        lambda: result(bridge.crypto.decrypt_file(b"WBEF\x09" + sealed[5:], key)),
        lambda: result(bridge.crypto.decrypt_file(sealed, key, aad=b"x", output=tmp_path / "o")),
        lambda: bridge.crypto.encrypt(b"x", key, nonce[:5]),
        lambda: bridge.crypto.encrypt(b"x", key[:20]),
        lambda: bridge.crypto.encrypt_file(b"x", key, chunk_size=1),
    ]
    for attempt in attempts:
        with pytest.raises(Exception) as info:
            attempt()
        errors.append(info.value)
    assert len(errors) == len(attempts)
    forms = [key, key[:20]]
    texts = [str(e) + repr(e) for e in errors] + [repr(bridge.crypto), repr(bridge)]
    for text in texts:
        for secret in forms:
            assert secret.hex() not in text
            assert secret.hex().upper() not in text
            assert repr(secret) not in text
            assert secret.decode("latin-1") not in text


# --------------------------------------------------------------------------- key derivation
def test_scrypt_rfc7914_vectors(bridge: WorkerBridge) -> None:
    """RFC 7914 section 12, vectors 1 and 2."""
    one = result(bridge.crypto.derive_key(b"", b"", length=64, n=16, r=1, p=1))
    assert one.hex() == (
        "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442"
        "fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"
    )
    two = result(bridge.crypto.derive_key("password", b"NaCl", length=64, n=1024, r=8, p=16))
    assert two.hex() == (
        "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
        "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"
    )


def test_derive_key_defaults_and_str_password(bridge: WorkerBridge) -> None:
    salt = os.urandom(16)
    text = result(bridge.crypto.derive_key("pässword", salt, n=2**10))
    raw = result(bridge.crypto.derive_key("pässword".encode(), salt, n=2**10))
    assert text == raw
    assert len(text) == 32
    assert len(result(bridge.crypto.derive_key("pässword", salt, n=2**10, length=48))) == 48
    assert result(bridge.crypto.derive_key("pässword", salt[::-1], n=2**10)) != text
    assert result(bridge.crypto.derive_key("password", salt, n=2**10)) != text


def test_hkdf_rfc5869_vectors(bridge: WorkerBridge) -> None:
    """RFC 5869 appendix A, test cases 1 and 3 (SHA-256)."""
    ikm = b"\x0b" * 22
    one = result(
        bridge.crypto.hkdf(
            ikm,
            salt=bytes.fromhex("000102030405060708090a0b0c"),
            info=bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"),
            length=42,
        )
    )
    assert one.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    three = result(bridge.crypto.hkdf(ikm, length=42))
    assert three.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )
    assert result(bridge.crypto.hkdf(ikm, salt=b"", length=42)) == three


# --------------------------------------------------------------------------- hashing
ALGORITHMS = ("sha256", "sha512", "sha3_256", "blake2b", "blake3")


def _reference(algorithm: str, data: bytes) -> str:
    if algorithm == "blake3":
        import blake3

        return blake3.blake3(data).hexdigest()
    return hashlib.new(algorithm, data).hexdigest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_hash_and_hash_file(bridge: WorkerBridge, tmp_path: Path, algorithm: str) -> None:
    """Delegated to the file channel's ("file", "hash") and ("file", "hash_file")."""
    data = os.urandom(200_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    expected = _reference(algorithm, data)
    assert result(bridge.crypto.hash(data, algorithm)) == expected
    assert result(bridge.crypto.hash_file(path, algorithm)) == expected
    assert result(bridge.crypto.hash_file(str(path), algorithm)) == expected
    assert result(bridge.crypto.hash(b"", algorithm)) == _reference(algorithm, b"")


def test_hash_defaults_to_sha256(bridge: WorkerBridge) -> None:
    assert result(bridge.crypto.hash(b"abc")) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
