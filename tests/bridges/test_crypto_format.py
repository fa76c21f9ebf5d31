"""The chunked format itself (docs/format.md), through the pure module ``_aead_stream``:
header and layout rules, the chunk counter and its limit, an independent implementation
written from the document, the CCTV-style framing shapes (RELIABILITY.md S29) and the
committed conformance vectors, which must decrypt, re-encrypt byte for byte, and give the
same outcome through the bridge on every backend.

Regenerate the vectors (only when the format version changes) with
``python -m tests.bridges.test_crypto_format``.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from workerbridge import (
    FormatError,
    IntegrityError,
    TruncationError,
    WorkerBridge,
)
from workerbridge._channels import _aead_stream as fmt

VECTORS_PATH = Path(__file__).parent / "vectors" / "crypto_stream_v1.json"
ERRORS: dict[str, type[Exception]] = {
    "IntegrityError": IntegrityError,
    "TruncationError": TruncationError,
    "FormatError": FormatError,
}
VECTOR_KEY = bytes(range(32))


def pattern(n: int, seed: int = 0) -> bytes:
    """``n`` deterministic bytes (not all equal, so misplaced bytes would show)."""
    return bytes((i * 131 + seed * 17 + 7) % 256 for i in range(n))


def outcome(fn: Callable[[], bytes]) -> tuple[str, bytes | None]:
    try:
        return "ok", fn()
    except (IntegrityError, FormatError) as exc:
        return type(exc).__name__, None


# --------------------------------------------------------------------------- the spec, again
def spec_seal(
    key: bytes, plaintext: bytes, file_nonce: bytes, aad: bytes, chunk_size: int
) -> bytes:
    """docs/format.md, implemented again from the text alone with the raw primitives."""
    header = b"WBEF" + bytes([1]) + struct.pack(">I", chunk_size) + file_nonce
    subkey = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=file_nonce,
        info=b"workerbridge/aead-stream/v1" + header,
    ).derive(key)
    n = max(1, -(-len(plaintext) // chunk_size))
    out = [header]
    for i in range(n):
        nonce = i.to_bytes(11, "big") + (b"\x01" if i == n - 1 else b"\x00")
        piece = plaintext[i * chunk_size : (i + 1) * chunk_size]
        out.append(AESGCM(subkey).encrypt(nonce, piece, aad))
    return b"".join(out)


@pytest.mark.parametrize("chunk_size", [16, 17, 64, 1000])
def test_reference_matches_the_document(chunk_size: int) -> None:
    for size in sorted({0, 1, chunk_size - 1, chunk_size, chunk_size + 1, 3 * chunk_size, 4321}):
        key, nonce, aad = os.urandom(32), os.urandom(12), os.urandom(size % 7)
        data = os.urandom(size)
        sealed = fmt.seal_message(key, data, file_nonce=nonce, aad=aad, chunk_size=chunk_size)
        assert sealed == spec_seal(key, data, nonce, aad, chunk_size)
        assert len(sealed) == fmt.ciphertext_size(size, chunk_size)
        assert fmt.open_message(key, sealed, aad=aad) == data


# --------------------------------------------------------------------------- header
def test_header_layout() -> None:
    nonce = bytes(range(100, 112))
    header = fmt.encode_header(1 << 20, nonce)
    assert header == b"WBEF\x01\x00\x10\x00\x00" + nonce
    assert len(header) == fmt.HEADER_SIZE == 21
    parsed = fmt.parse_header(header + b"more")
    assert (parsed.chunk_size, parsed.file_nonce, parsed.raw) == (1 << 20, nonce, header)
    assert nonce.hex() in repr(parsed)


def test_header_refusals() -> None:
    good = fmt.encode_header(64, bytes(12))
    for version in range(256):
        if version != fmt.VERSION:
            with pytest.raises(FormatError, match=r"unsupported .* version"):
                fmt.parse_header(good[:4] + bytes([version]) + good[5:])
    for magic in (b"WBEG", b"wbef", b"\x00\x00\x00\x00", b"age-"):
        with pytest.raises(FormatError, match="bad magic"):
            fmt.parse_header(magic + good[4:])
    for size in (0, 15, (64 << 20) + 1, 2**32 - 1):
        with pytest.raises(FormatError, match="chunk size"):
            fmt.parse_header(good[:5] + struct.pack(">I", size) + good[9:])
    for cut in range(fmt.HEADER_SIZE):  # a prefix of a header: cut before the first chunk
        with pytest.raises(TruncationError):
            fmt.parse_header(good[:cut])
    with pytest.raises(FormatError):
        fmt.parse_header(b"PK\x03")  # short, and not a prefix of the magic
    for size in (15, (64 << 20) + 1):
        with pytest.raises(ValueError):
            fmt.encode_header(size, bytes(12))
    with pytest.raises(ValueError):
        fmt.encode_header(64, bytes(11))


def test_header_change_changes_every_key() -> None:
    """The subkey binds the whole header: a header that a (future) decoder would accept with
    one byte changed, version byte included, opens none of the chunks."""
    key = os.urandom(32)
    sealed = fmt.seal_message(key, pattern(200), file_nonce=os.urandom(12), chunk_size=64)
    header = sealed[: fmt.HEADER_SIZE]
    first = sealed[fmt.HEADER_SIZE : fmt.HEADER_SIZE + 80]
    subkeys = set()
    for i in range(fmt.HEADER_SIZE):
        for bit in range(8):
            edited = bytearray(header)
            edited[i] ^= 1 << bit
            aead = AESGCM(fmt.derive_subkey(key, bytes(edited)))
            subkeys.add(fmt.derive_subkey(key, bytes(edited)))
            with pytest.raises(IntegrityError):
                fmt.open_chunk(aead, 0, False, first, b"")
    assert len(subkeys) == fmt.HEADER_SIZE * 8
    assert fmt.derive_subkey(key, header) not in subkeys


# --------------------------------------------------------------------------- nonces, layout
def test_chunk_nonce_and_counter_limit() -> None:
    assert fmt.chunk_nonce(0, False) == bytes(12)
    assert fmt.chunk_nonce(0, True) == bytes(11) + b"\x01"
    assert fmt.chunk_nonce(256, False) == bytes(9) + b"\x01\x00\x00"
    assert fmt.chunk_nonce(fmt.MAX_CHUNKS - 1, True) == b"\xff" * 11 + b"\x01"
    assert fmt.chunk_nonce(2**64 - 2, False)[:3] == bytes(3)  # far from the limit
    for index in (fmt.MAX_CHUNKS, fmt.MAX_CHUNKS + 1, -1):
        with pytest.raises(FormatError, match="limit"):
            fmt.chunk_nonce(index, False)
    aead = AESGCM(os.urandom(32))
    with pytest.raises(FormatError):  # the encoder refuses to number a chunk past the limit
        fmt.seal_chunk(aead, fmt.MAX_CHUNKS, True, b"x", b"")
    assert fmt.MAX_CHUNKS == 2**88


def test_layout_of_every_small_size() -> None:
    header = fmt.parse_header(fmt.encode_header(32, bytes(12)))
    for size in range(400):
        total = fmt.ciphertext_size(size, 32)
        layout = fmt.layout_of(total, header)
        assert layout.chunks == fmt.chunk_count(size, 32) == max(1, -(-size // 32))
        assert layout.plaintext_size == size
        assert sum(layout.size(i) for i in range(layout.chunks)) == total - fmt.HEADER_SIZE
        assert layout.offset(layout.chunks - 1) + layout.last_size == total


@pytest.mark.parametrize("chunks", [255, 256, 257, 258])
@pytest.mark.parametrize("tail", [0, 1, 15])
def test_many_chunks_round_trip(chunks: int, tail: int) -> None:
    """256/257/258 chunks (the counter's second byte comes into use), full or partial last."""
    size = chunks * 16 if tail == 0 else (chunks - 1) * 16 + tail
    key, nonce = os.urandom(32), os.urandom(12)
    sealed = fmt.seal_message(key, pattern(size), file_nonce=nonce, chunk_size=16)
    header = fmt.parse_header(sealed)
    assert fmt.layout_of(len(sealed), header).chunks == chunks
    assert fmt.open_message(key, sealed) == pattern(size)


def test_empty_payload_is_one_empty_final_chunk() -> None:
    key, nonce = os.urandom(32), os.urandom(12)
    sealed = fmt.seal_message(key, b"", file_nonce=nonce, chunk_size=64)
    assert len(sealed) == fmt.HEADER_SIZE + 16
    aead = AESGCM(fmt.derive_subkey(key, sealed[: fmt.HEADER_SIZE]))
    assert fmt.open_chunk(aead, 0, True, sealed[fmt.HEADER_SIZE :], b"") == b""
    assert fmt.open_message(key, sealed) == b""


# --------------------------------------------------------------------------- framing shapes
def craft(nonce: bytes, chunk_size: int, aad: bytes, pieces: list[tuple[bytes, bool]]) -> bytes:
    """A file sealed chunk by chunk with chosen flags: valid chunks at wrong places, which
    only someone holding the key (or a buggy encoder) could make."""
    header = fmt.encode_header(chunk_size, nonce)
    aead = AESGCM(fmt.derive_subkey(VECTOR_KEY, header))
    sealed = [fmt.seal_chunk(aead, i, last, data, aad) for i, (data, last) in enumerate(pieces)]
    return header + b"".join(sealed)


def _nonce(name: str) -> bytes:
    return hashlib.sha256(b"workerbridge test vector " + name.encode()).digest()[:12]


def _flip_last(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def build_vectors() -> list[dict[str, Any]]:
    """Every committed vector, rebuilt from its inputs (deterministic: fixed key, per-name
    nonces). Valid vectors come from ``seal_message``; failure shapes from ``craft`` and
    byte edits. Names follow the CCTV age testkit's ``stream_*`` shapes where one exists."""
    C, F, T = 64, False, True  # a chunk size and the two flags, short for the table
    full, part = pattern(C, 1), pattern(10, 2)
    aad = b"workerbridge test vector"
    vectors: list[dict[str, Any]] = []

    def valid(name: str, plaintext: bytes, chunk_size: int = C, extra: bytes = b"") -> None:
        nonce = _nonce(name)
        sealed = fmt.seal_message(
            VECTOR_KEY, plaintext, file_nonce=nonce, aad=extra, chunk_size=chunk_size
        )
        vectors.append(
            {
                "name": name,
                "expect": "ok",
                "chunk_size": chunk_size,
                "file_nonce": nonce.hex(),
                "aad": extra.hex(),
                "plaintext": plaintext.hex(),
                "subkey": fmt.derive_subkey(VECTOR_KEY, sealed[: fmt.HEADER_SIZE]).hex(),
                "ciphertext": sealed.hex(),
            }
        )

    def invalid(name: str, expect: str, sealed: bytes, extra: bytes = b"") -> None:
        vectors.append(
            {"name": name, "expect": expect, "aad": extra.hex(), "ciphertext": sealed.hex()}
        )

    def shape(name: str, pieces: list[tuple[bytes, bool]]) -> bytes:
        return craft(_nonce(name), C, b"", pieces)

    valid("stream_empty_payload", b"")
    valid("one_byte", b"\x00", 16)
    valid("chunk_minus_one", pattern(15), 16)
    valid("one_full_chunk", pattern(16), 16)
    valid("chunk_plus_one", pattern(17), 16)
    valid("stream_two_chunks", full + part)
    valid("stream_three_chunks", full + full + part)
    valid("stream_last_chunk_full", full)
    valid("stream_last_chunk_full_second", full + full)
    valid("with_aad", pattern(150, 3), 64, aad)
    valid("default_chunk_size", pattern(100, 4), fmt.DEFAULT_CHUNK_SIZE)
    valid("stream_256_chunks", pattern(256 * 16, 5), 16)
    valid("stream_257_chunks", pattern(256 * 16 + 5, 6), 16)
    valid("stream_258_chunks", pattern(257 * 16 + 16, 7), 16)

    two = shape("two", [(full, F), (part, T)])
    three = shape("three", [(full, F), (full, F), (part, T)])
    invalid("stream_bad_tag", "IntegrityError", _flip_last(shape("bad_tag", [(part, T)])))
    invalid("stream_bad_tag_second_chunk", "IntegrityError", _flip_last(two))
    invalid(
        "stream_bad_tag_second_chunk_full",
        "IntegrityError",
        _flip_last(shape("bad_tag_full", [(full, F), (full, T)])),
    )
    invalid("stream_last_chunk_empty", "IntegrityError", shape("empty", [(full, F), (b"", T)]))
    invalid("stream_missing_tag", "IntegrityError", two[:-16])
    invalid("stream_no_chunks", "TruncationError", two[: fmt.HEADER_SIZE])
    invalid("stream_no_final", "IntegrityError", shape("no_final", [(part, F)]))
    invalid("stream_no_final_full", "TruncationError", shape("no_final_full", [(full, F)]))
    invalid(
        "stream_no_final_two_chunks",
        "IntegrityError",
        shape("no_final_two", [(full, F), (part, F)]),
    )
    invalid(
        "stream_no_final_two_chunks_full",
        "TruncationError",
        shape("no_final_two_full", [(full, F), (full, F)]),
    )
    invalid("stream_no_nonce", "TruncationError", two[:9])
    invalid("stream_short_nonce", "TruncationError", two[:20])
    invalid("stream_short_chunk", "IntegrityError", shape("short", [(part, F), (part, T)]))
    invalid(
        "stream_short_second_chunk",
        "IntegrityError",
        shape("short_second", [(full, F), (part, F), (part, T)]),
    )
    invalid("stream_trailing_garbage_short", "IntegrityError", two + b"\x00")
    invalid("stream_trailing_garbage_long", "IntegrityError", two + pattern(200, 8))
    invalid("trailing_full_chunk_of_garbage", "IntegrityError", two + pattern(C + 16, 9))
    invalid("stream_two_final_chunks", "IntegrityError", shape("two_final", [(full, T), (part, T)]))
    invalid(
        "stream_two_final_chunks_full",
        "IntegrityError",
        shape("two_final_full", [(full, T), (full, T)]),
    )
    invalid(
        "stream_two_final_chunks_second",
        "IntegrityError",
        shape("two_final_second", [(full, F), (full, T), (part, T)]),
    )
    invalid("final_flag_then_more", "IntegrityError", shape("flag_more", [(full, T), (part, F)]))
    invalid("version_unsupported", "FormatError", two[:4] + b"\x02" + two[5:])
    invalid("bad_magic", "FormatError", b"WBEE" + two[4:])
    invalid("chunk_size_too_small", "FormatError", two[:5] + struct.pack(">I", 15) + two[9:])
    invalid("chunk_size_changed", "IntegrityError", two[:5] + struct.pack(">I", 65) + two[9:])
    invalid("file_nonce_changed", "IntegrityError", two[:20] + bytes([two[20] ^ 1]) + two[21:])
    h, s = fmt.HEADER_SIZE, C + 16
    invalid(
        "chunks_swapped",
        "IntegrityError",
        three[:h] + three[h + s : h + 2 * s] + three[h : h + s] + three[h + 2 * s :],
    )
    invalid(
        "chunk_duplicated", "IntegrityError", three[: h + s] + three[h : h + s] + three[h + 2 * s :]
    )
    invalid("middle_chunk_dropped", "IntegrityError", three[: h + s] + three[h + 2 * s :])
    invalid("final_chunk_dropped", "TruncationError", three[: h + 2 * s])
    other = shape("other", [(full, F), (full, F), (part, T)])  # same key, another nonce
    invalid(
        "chunk_spliced_from_another_file",
        "IntegrityError",
        three[: h + s] + other[h + s : h + 2 * s] + three[h + 2 * s :],
    )
    invalid("body_of_another_file", "IntegrityError", three[:h] + other[h:])
    invalid("wrong_aad", "IntegrityError", two, b"not the aad")
    return vectors


def _load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
    return doc


def _write_vectors() -> None:
    doc = {
        "description": (
            "Conformance vectors of the workerbridge encrypted file format, version 1 "
            "(docs/format.md). key is shared by all; 'expect' is 'ok' (plaintext given) or "
            "the error the decoder must raise. A decoder releases no plaintext on failure."
        ),
        "key": VECTOR_KEY.hex(),
        "vectors": build_vectors(),
    }
    VECTORS_PATH.write_text(json.dumps(doc, indent=1) + "\n")


def _vector_ids() -> list[Any]:
    if not VECTORS_PATH.exists():  # only while regenerating them
        return []
    return [pytest.param(v, id=v["name"]) for v in _load()["vectors"]]


def test_vectors_rebuild_byte_for_byte() -> None:
    """Re-encrypting every vector's inputs gives the committed bytes exactly."""
    doc = _load()
    assert doc["key"] == VECTOR_KEY.hex()
    assert build_vectors() == doc["vectors"]
    assert len(doc["vectors"]) >= 28


@pytest.mark.parametrize("vector", _vector_ids())
def test_vector_decrypts_as_expected(vector: dict[str, Any]) -> None:
    sealed, aad = bytes.fromhex(vector["ciphertext"]), bytes.fromhex(vector["aad"])
    got = outcome(lambda: fmt.open_message(VECTOR_KEY, sealed, aad=aad))
    if vector["expect"] == "ok":
        plaintext = bytes.fromhex(vector["plaintext"])
        assert got == ("ok", plaintext)
        assert vector["subkey"] == fmt.derive_subkey(VECTOR_KEY, sealed[:21]).hex()
        nonce = bytes.fromhex(vector["file_nonce"])
        again = spec_seal(VECTOR_KEY, plaintext, nonce, aad, vector["chunk_size"])
        assert again == sealed
    else:
        assert got == (vector["expect"], None)


def test_vectors_through_the_bridge(bridge: WorkerBridge, tmp_path: Path) -> None:
    """Every vector through decrypt_file, as bytes and as a file, on this backend: the same
    outcome, and on failure no output (nor temporary file) left behind."""
    for vector in _load()["vectors"]:
        sealed, aad = bytes.fromhex(vector["ciphertext"]), bytes.fromhex(vector["aad"])
        src, out = tmp_path / "in.wbef", tmp_path / "out"
        src.write_bytes(sealed)

        def as_bytes(s: bytes = sealed, a: bytes = aad) -> bytes:
            return bridge.crypto.decrypt_file(s, VECTOR_KEY, aad=a).result(30)

        def as_file(a: bytes = aad, src: Path = src, out: Path = out) -> bytes:
            bridge.crypto.decrypt_file(src, VECTOR_KEY, aad=a, output=out).result(30)
            return out.read_bytes()

        from_bytes, from_file = outcome(as_bytes), outcome(as_file)
        expected = (
            ("ok", bytes.fromhex(vector["plaintext"]))
            if vector["expect"] == "ok"
            else (vector["expect"], None)
        )
        assert from_bytes == expected, vector["name"]
        assert from_file == expected, vector["name"]
        assert sorted(os.listdir(tmp_path)) == (
            ["in.wbef", "out"] if vector["expect"] == "ok" else ["in.wbef"]
        ), vector["name"]
        out.unlink(missing_ok=True)


if __name__ == "__main__":
    _write_vectors()
