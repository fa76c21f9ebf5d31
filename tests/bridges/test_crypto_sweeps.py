"""Exhaustive and random attacks on the chunked format through the pure decoder
(RELIABILITY.md S25-S28): every bit flip, every truncation, reordering, duplication,
dropping, splicing and replay of chunks, wrong keys, wrong aad and header edits. Each must be
refused with the right error and no plaintext. The default run uses small messages; the
``slow`` variants run the soak sizes of RELIABILITY.md."""

from __future__ import annotations

import itertools
import os
import random

import pytest

from workerbridge import FormatError, IntegrityError, TruncationError
from workerbridge._channels import _aead_stream as fmt

H = fmt.HEADER_SIZE


def sealed_message(
    chunks: int, chunk_size: int, *, partial: bool = True, aad: bytes = b""
) -> tuple[bytes, bytes, bytes]:
    """(key, plaintext, ciphertext) of a message of ``chunks`` chunks whose last one is
    partial or full."""
    size = chunks * chunk_size - (chunk_size // 3 if partial else 0)
    key, data = os.urandom(32), os.urandom(size)
    sealed = fmt.seal_message(key, data, file_nonce=os.urandom(12), aad=aad, chunk_size=chunk_size)
    assert fmt.layout_of(len(sealed), fmt.parse_header(sealed)).chunks == chunks
    return key, data, sealed


def split(sealed: bytes, chunk_size: int) -> tuple[bytes, list[bytes]]:
    layout = fmt.layout_of(len(sealed), fmt.parse_header(sealed))
    chunks = [
        sealed[layout.offset(i) : layout.offset(i) + layout.size(i)] for i in range(layout.chunks)
    ]
    return sealed[:H], chunks


def refused(key: bytes, data: bytes, aad: bytes = b"") -> type[Exception]:
    """The error type opening ``data`` raises; fails the test if it decrypts."""
    try:
        plain = fmt.open_message(key, data, aad=aad)
    except (IntegrityError, FormatError) as exc:
        return type(exc)
    pytest.fail(f"accepted a modified message ({len(plain)} bytes of plaintext released)")


def flip(data: bytes, bit: int) -> bytes:
    edited = bytearray(data)
    edited[bit // 8] ^= 1 << (bit % 8)
    return bytes(edited)


def expected_for_flip(bit: int) -> tuple[type[Exception], ...]:
    """Magic and version: FormatError. Chunk size: FormatError (out of bounds) or
    IntegrityError. Nonce and every chunk byte: IntegrityError, never TruncationError."""
    byte = bit // 8
    if byte < 5:
        return (FormatError,)
    if byte < 9:
        return (FormatError, IntegrityError)
    return (IntegrityError,)


# --------------------------------------------------------------------------- S25: bit flips
def _sweep_every_bit(chunks: int, chunk_size: int) -> int:
    key, _data, sealed = sealed_message(chunks, chunk_size, partial=False, aad=b"fields")
    for bit in range(len(sealed) * 8):
        got = refused(key, flip(sealed, bit), b"fields")
        assert got in expected_for_flip(bit), (bit, got)
    for bit in range(len(b"fields") * 8):  # the aad is a field too
        assert refused(key, sealed, flip(b"fields", bit)) is IntegrityError
    return len(sealed) * 8


def test_every_bit_flip_of_a_three_chunk_message() -> None:
    """S25, CI size: every bit of header, ciphertext and tags of 3 chunks of 64 bytes."""
    assert _sweep_every_bit(3, 64) == (H + 3 * (64 + 16)) * 8


@pytest.mark.slow
def test_every_bit_flip_of_three_64k_chunks() -> None:
    """S25, soak size: every bit of 3 x 64 KiB (about 1.6 M flips)."""
    assert _sweep_every_bit(3, 64 << 10) == (H + 3 * ((64 << 10) + 16)) * 8


@pytest.mark.parametrize("flips", [10_000])
def test_random_flips(flips: int) -> None:
    """S25: 10,000 random single flips and random multi-byte corruptions of a 3-chunk
    message of 4 KiB chunks."""
    rng = random.Random(25)
    key, _data, sealed = sealed_message(3, 4096)
    for _ in range(flips):
        bit = rng.randrange(len(sealed) * 8)
        assert refused(key, flip(sealed, bit)) in expected_for_flip(bit)
    for _ in range(500):
        edited = bytearray(sealed)
        start = rng.randrange(H, len(sealed))
        for i in range(start, min(len(sealed), start + rng.randrange(1, 64))):
            edited[i] ^= rng.randrange(1, 256)
        assert refused(key, bytes(edited)) is IntegrityError


# --------------------------------------------------------------------------- S26: truncation
@pytest.mark.parametrize("chunks", [1, 2, 3])
@pytest.mark.parametrize("partial", [True, False])
def test_truncation_at_every_offset(chunks: int, partial: bool) -> None:
    """S26: every proper prefix is refused: TruncationError where the cut leaves only
    whole chunks (or nothing after a complete or partial header), IntegrityError where it
    falls inside a chunk."""
    chunk_size = 48
    key, _data, sealed = sealed_message(chunks, chunk_size, partial=partial)
    stride = chunk_size + 16
    for cut in range(len(sealed)):
        got = refused(key, sealed[:cut])
        at_boundary = cut <= H or (cut - H) % stride == 0
        assert got is (TruncationError if at_boundary else IntegrityError), cut


# --------------------------------------------------------------------------- S27: reordering
def _attack_chunks(rng: random.Random, chunks: int, permutations: int) -> int:
    chunk_size = 32
    key, _data, sealed = sealed_message(chunks, chunk_size, partial=rng.random() < 0.5)
    header, parts = split(sealed, chunk_size)
    _key2, _d2, other = sealed_message(chunks, chunk_size)
    other_same_key = fmt.seal_message(
        key, os.urandom(len(_d2)), file_nonce=os.urandom(12), chunk_size=chunk_size
    )
    _h2, foreign = split(other_same_key, chunk_size)
    cases = 0

    def check(body: list[bytes], expect: type[Exception] = IntegrityError) -> None:
        nonlocal cases
        cases += 1
        assert refused(key, header + b"".join(body)) is expect

    order = list(range(chunks))
    all_orders = itertools.permutations(order)
    tried = 0
    for perm in all_orders:  # every permutation but the identity, at most `permutations`
        if list(perm) == order:
            continue
        check([parts[i] for i in perm])
        tried += 1
        if tried >= permutations:
            break
    for i in range(chunks):
        check(parts[: i + 1] + parts[i:])  # chunk i duplicated in place
        check([*parts, parts[i]])  # chunk i replayed at the end
        for j in range(chunks):
            if i != j:
                check([*parts[:j], parts[i], *parts[j + 1 :]])  # chunk j replaced by chunk i
        check([*parts[:i], foreign[i], *parts[i + 1 :]])  # spliced: same key, same index
        if i < chunks - 1:
            check(parts[:i] + parts[i + 1 :])  # a middle chunk dropped
    check(parts[:-1], TruncationError)  # the final chunk dropped
    check(foreign)  # a whole body of another file under this header
    assert refused(key, other) is IntegrityError  # another file under another key
    return cases


def test_reorder_duplicate_splice() -> None:
    """S27, CI size: 40 random messages of 2-10 chunks."""
    rng = random.Random(27)
    total = sum(_attack_chunks(rng, rng.randint(2, 10), 20) for _ in range(40))
    assert total > 1000


@pytest.mark.slow
def test_reorder_duplicate_splice_soak() -> None:
    """S27, soak size: 1,000 random messages of 2-10 chunks, up to 100 permutations each."""
    rng = random.Random(2727)
    assert sum(_attack_chunks(rng, rng.randint(2, 10), 100) for _ in range(1000)) > 100_000


# --------------------------------------------------------------------------- S28: keys, aad
def _wrong_inputs(cases: int) -> None:
    rng = random.Random(28)
    for _ in range(cases):
        chunks = rng.randint(1, 4)
        aad = os.urandom(rng.randint(0, 20))
        key, _data, sealed = sealed_message(chunks, 64, partial=rng.random() < 0.5, aad=aad)
        kind = rng.randrange(4)
        if kind == 0:
            assert refused(os.urandom(32), sealed, aad) is IntegrityError
        elif kind == 1:
            other = aad + b"x" if not aad or rng.random() < 0.5 else aad[:-1]
            assert refused(key, sealed, other) is IntegrityError
        elif kind == 2:  # the version byte: refused before anything is decrypted
            version = rng.choice([v for v in range(256) if v != fmt.VERSION])
            assert refused(key, sealed[:4] + bytes([version]) + sealed[5:], aad) is FormatError
        else:  # another valid chunk size in the header: every chunk's key changes
            size = rng.randint(fmt.MIN_CHUNK_SIZE, 4096)
            if size == 64:
                size += 1
            edited = sealed[:5] + size.to_bytes(4, "big") + sealed[9:]
            assert refused(key, edited, aad) in (IntegrityError, TruncationError)


def test_wrong_key_aad_and_header_edits() -> None:
    """S28, CI size: 2,000 random cases."""
    _wrong_inputs(2000)


@pytest.mark.slow
def test_wrong_key_aad_and_header_edits_soak() -> None:
    """S28, soak size: 10,000 random cases."""
    _wrong_inputs(10_000)


def test_chunk_size_edit_never_releases_plaintext() -> None:
    """Every chunk size a header could claim for a 3-chunk message's bytes (within the
    first 4096): refused, never decrypted."""
    key, _data, sealed = sealed_message(3, 64)
    for size in range(fmt.MIN_CHUNK_SIZE, 4096):
        if size != 64:
            edited = sealed[:5] + size.to_bytes(4, "big") + sealed[9:]
            assert issubclass(refused(key, edited), IntegrityError)
