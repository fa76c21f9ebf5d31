"""The chunked AES-256-GCM format of ``encrypt_file`` / ``decrypt_file``: pure code, no I/O.

This module is the format's definition (docs/format.md describes it in prose): header
encode/parse, the per-file subkey, the per-chunk nonce, the layout of a ciphertext of a
given size, and sealing/opening one chunk. The channel (``_crypto.py``) runs these on
ranges of chunks in parallel; ``seal_message`` / ``open_message`` are the sequential
reference the tests and the committed vectors use. Both must give byte-identical output.

::

    file   = header || chunk_0 || chunk_1 || ... || chunk_{n-1}
    header = "WBEF" || version (1 byte, = 1) || chunk_size (uint32 BE) || file_nonce (12)
    subkey = HKDF-SHA256(ikm=key, salt=file_nonce, info="workerbridge/aead-stream/v1" || header)
    nonce_i = i as 11-byte big-endian || (0x01 if chunk i is the last one else 0x00)
    chunk_i = AES-256-GCM(subkey).encrypt(nonce_i, plaintext_i, aad)     (len + 16 bytes)

Every chunk but the last holds exactly ``chunk_size`` plaintext bytes; the last holds
1..chunk_size bytes, or 0 only when the whole payload is empty (one empty final chunk).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._exceptions import FormatError, IntegrityError, TruncationError

__all__ = [
    "COUNTER_SIZE",
    "DEFAULT_CHUNK_SIZE",
    "HEADER_SIZE",
    "KEY_SIZE",
    "MAGIC",
    "MAX_CHUNKS",
    "MAX_CHUNK_SIZE",
    "MIN_CHUNK_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "VERSION",
    "Header",
    "Layout",
    "chunk_count",
    "chunk_nonce",
    "ciphertext_size",
    "derive_subkey",
    "encode_header",
    "layout_of",
    "open_chunk",
    "open_final_chunk",
    "open_message",
    "parse_header",
    "seal_chunk",
    "seal_message",
]

MAGIC = b"WBEF"
VERSION = 1
KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
_HEADER = struct.Struct(">4sBI12s")
HEADER_SIZE = _HEADER.size  # 21
#: The label that starts HKDF's info, so the subkey of this format can never equal a key
#: derived for another purpose from the same master key.
_HKDF_LABEL = b"workerbridge/aead-stream/v1"
#: Bytes of the chunk counter in the nonce; the twelfth byte is the last-chunk flag.
COUNTER_SIZE = NONCE_SIZE - 1
#: A file has at most this many chunks: the counter never wraps (age's rule). At the
#: smallest chunk size that is 2**92 bytes, far beyond any file an OS can hold, so the check
#: only matters against a corrupt size computation; it is made anyway, before sealing.
MAX_CHUNKS = 1 << (8 * COUNTER_SIZE)
#: Chunk size bounds. The lower bound keeps the 16-byte tag from outweighing the payload
#: (tiny chunks exist for tests of the framing); the upper bound caps what one chunk makes a
#: worker hold in memory, since a decryptor allocates ``chunk_size`` bytes on the word of a
#: header it has not authenticated yet.
MIN_CHUNK_SIZE = 16
MAX_CHUNK_SIZE = 64 << 20
#: 1 MiB: large enough that the per-chunk costs (a nonce, a tag, a cancel check) vanish,
#: small enough that a chunk stays in the CPU cache between its read, its sealing and its
#: write.
DEFAULT_CHUNK_SIZE = 1 << 20
_FINAL = b"\x01"
_NOT_FINAL = b"\x00"


@final
@dataclass(frozen=True, slots=True)
class Header:
    """A parsed header: its ``chunk_size``, ``file_nonce`` and its exact ``raw`` bytes
    (which the subkey binds)."""

    chunk_size: int
    file_nonce: bytes
    raw: bytes

    def __repr__(self) -> str:
        return f"Header(chunk_size={self.chunk_size}, file_nonce={self.file_nonce.hex()})"


def encode_header(chunk_size: int, file_nonce: bytes) -> bytes:
    """The 21 header bytes.

    Raises:
        ValueError: a chunk size out of bounds or a nonce that is not 12 bytes (the bridge
            checks both before it gets here).
    """
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be in [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]")
    if len(file_nonce) != NONCE_SIZE:
        raise ValueError(f"file nonce must be {NONCE_SIZE} bytes")
    return _HEADER.pack(MAGIC, VERSION, chunk_size, bytes(file_nonce))


def parse_header(data: bytes | bytearray | memoryview) -> Header:
    """Parse the header at the start of ``data`` (more bytes may follow).

    Raises:
        TruncationError: ``data`` is a proper prefix of a header (empty input included):
            the file was cut before its first chunk.
        FormatError: not this format (bad magic), an unsupported version, or a chunk size
            out of bounds. Nothing is decrypted from such a file.
    """
    head = bytes(data[:HEADER_SIZE])
    if len(head) < HEADER_SIZE:
        if MAGIC.startswith(head[: len(MAGIC)]):
            raise TruncationError(
                f"encrypted data ends inside its {HEADER_SIZE}-byte header ({len(head)} bytes)"
            )
        raise FormatError("not a workerbridge encrypted file (bad magic)")
    magic, version, chunk_size, file_nonce = _HEADER.unpack(head)
    if magic != MAGIC:
        raise FormatError("not a workerbridge encrypted file (bad magic)")
    if version != VERSION:
        raise FormatError(f"unsupported encrypted file version {version} (this reads {VERSION})")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise FormatError(
            f"invalid chunk size {chunk_size} in the header "
            f"(must be in [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}])"
        )
    return Header(chunk_size, file_nonce, head)


def derive_subkey(key: bytes, header: bytes) -> bytes:
    """The file's AES-256 key: HKDF-SHA256 of ``key`` with the file nonce as salt and the
    whole header in the info, so that changing any header byte changes every chunk's key."""
    file_nonce = header[HEADER_SIZE - NONCE_SIZE : HEADER_SIZE]
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=file_nonce, info=_HKDF_LABEL + header
    ).derive(key)


def chunk_nonce(index: int, final: bool) -> bytes:
    """The nonce of chunk ``index``: the index as an 11-byte big-endian counter, then the
    last-chunk flag.

    Raises:
        FormatError: ``index`` does not fit the counter (never reached by a real file).
    """
    if not 0 <= index < MAX_CHUNKS:
        raise FormatError(f"chunk index {index} exceeds the format's limit of 2**88 chunks")
    return index.to_bytes(COUNTER_SIZE, "big") + (_FINAL if final else _NOT_FINAL)


def chunk_count(plaintext_size: int, chunk_size: int) -> int:
    """How many chunks a payload of ``plaintext_size`` bytes takes (at least one)."""
    return max(1, -(-plaintext_size // chunk_size))


def ciphertext_size(plaintext_size: int, chunk_size: int) -> int:
    """The exact size of the encrypted file of a payload of ``plaintext_size`` bytes."""
    return HEADER_SIZE + plaintext_size + TAG_SIZE * chunk_count(plaintext_size, chunk_size)


@final
@dataclass(frozen=True, slots=True)
class Layout:
    """Where the chunks of a ciphertext of a given size are: ``chunks`` of them, every one
    but the last ``chunk_size + 16`` bytes long, the last ``last_size`` bytes long."""

    chunk_size: int
    chunks: int
    last_size: int

    @property
    def stride(self) -> int:
        """Bytes of one full encrypted chunk."""
        return self.chunk_size + TAG_SIZE

    @property
    def plaintext_size(self) -> int:
        return (self.chunks - 1) * self.chunk_size + self.last_size - TAG_SIZE

    def offset(self, index: int) -> int:
        """Where chunk ``index`` starts in the file."""
        return HEADER_SIZE + index * self.stride

    def size(self, index: int) -> int:
        """The encrypted size of chunk ``index``."""
        return self.last_size if index == self.chunks - 1 else self.stride


def layout_of(total_size: int, header: Header) -> Layout:
    """The layout of a ciphertext of ``total_size`` bytes with this header, or the reason
    it cannot be a complete file. Only sizes are checked here; every chunk is still
    authenticated when opened.

    Raises:
        TruncationError: no chunk at all after the header.
        IntegrityError: the last chunk is shorter than a tag (the data was cut inside a
            chunk, or bytes follow the final chunk), or it is an empty final chunk after
            full ones (the encoder never writes one: an empty final chunk only encodes an
            empty payload).
    """
    body = total_size - HEADER_SIZE
    if body <= 0:
        raise TruncationError("encrypted data ends after its header: the final chunk is missing")
    stride = header.chunk_size + TAG_SIZE
    full, rest = divmod(body, stride)
    if rest == 0:
        chunks, last = full, stride
    else:
        chunks, last = full + 1, rest
        if rest < TAG_SIZE:
            raise IntegrityError(
                f"encrypted data is cut inside chunk {full} or has bytes after its final chunk"
            )
        if rest == TAG_SIZE and full > 0:
            raise IntegrityError(f"chunk {full} is an empty final chunk after a non-empty payload")
    if chunks > MAX_CHUNKS:
        raise FormatError("encrypted data has more chunks than the format allows")
    return Layout(header.chunk_size, chunks, last)


def seal_chunk(
    aead: AESGCM, index: int, final: bool, plaintext: bytes | bytearray | memoryview, aad: bytes
) -> bytes:
    """Encrypt one chunk: ``ciphertext || tag``."""
    return aead.encrypt(chunk_nonce(index, final), plaintext, aad)


def open_chunk(
    aead: AESGCM,
    index: int,
    final: bool,
    chunk: bytes | bytearray | memoryview,
    aad: bytes,
    out: bytearray | memoryview | None = None,
) -> bytes | None:
    """Authenticate and decrypt one chunk; into ``out`` (exactly ``len(chunk) - 16`` bytes,
    returns None) or as new bytes.

    On failure ``out`` may hold unauthenticated bytes (OpenSSL decrypts before it checks
    the tag): the caller must discard it, never write or return it.

    Raises:
        IntegrityError: the chunk does not authenticate at this position with this flag.
    """
    nonce = chunk_nonce(index, final)
    try:
        if out is None:
            return aead.decrypt(nonce, chunk, aad)
        aead.decrypt_into(nonce, chunk, aad, out)
        return None
    except InvalidTag:
        raise IntegrityError(
            f"chunk {index} failed authentication: wrong key or aad, or the data was "
            "modified, reordered or spliced"
        ) from None


def open_final_chunk(
    aead: AESGCM,
    index: int,
    chunk: bytes | bytearray | memoryview,
    aad: bytes,
    full_size: bool,
    out: bytearray | memoryview | None = None,
) -> bytes | None:
    """``open_chunk`` for the last chunk of the data, telling truncation from tampering:
    when a full-size last chunk fails as final but authenticates as a middle chunk, the
    file was cut at a chunk boundary and its final chunk is missing.

    Raises:
        TruncationError: the final chunk is missing.
        IntegrityError: the chunk fails authentication otherwise.
    """
    try:
        return open_chunk(aead, index, True, chunk, aad, out)
    except IntegrityError:
        if not full_size:
            raise
        try:
            # Into a scratch buffer: even a chunk that authenticates here is never released,
            # since the data it belongs to is incomplete.
            open_chunk(aead, index, False, chunk, aad, bytearray(len(chunk) - TAG_SIZE))
        except IntegrityError:
            raise IntegrityError(
                f"chunk {index} (the last one) failed authentication: wrong key or aad, or "
                "the data was modified"
            ) from None
        raise TruncationError(
            f"encrypted data is truncated: it ends after chunk {index}, before its final chunk"
        ) from None


def seal_message(
    key: bytes,
    plaintext: bytes | bytearray | memoryview,
    *,
    file_nonce: bytes,
    aad: bytes = b"",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> bytes:
    """The whole encrypted file of ``plaintext``, sequentially (the reference encoder)."""
    header = encode_header(chunk_size, file_nonce)
    aead = AESGCM(derive_subkey(key, header))
    data = memoryview(plaintext).cast("B")
    chunks = chunk_count(len(data), chunk_size)
    parts = [header]
    for index in range(chunks):
        piece = data[index * chunk_size : (index + 1) * chunk_size]
        parts.append(seal_chunk(aead, index, index == chunks - 1, piece, aad))
    return b"".join(parts)


def open_message(
    key: bytes, ciphertext: bytes | bytearray | memoryview, *, aad: bytes = b""
) -> bytes:
    """The plaintext of a whole encrypted file, sequentially (the reference decoder). Nothing
    is returned unless every chunk authenticates.

    Raises:
        FormatError, TruncationError, IntegrityError: see ``parse_header``, ``layout_of``,
            ``open_chunk`` and ``open_final_chunk``.
    """
    data = memoryview(ciphertext).cast("B")
    header = parse_header(data)
    layout = layout_of(len(data), header)
    aead = AESGCM(derive_subkey(key, header.raw))
    parts = []
    last = layout.chunks - 1
    for index in range(layout.chunks):
        start = layout.offset(index)
        chunk = data[start : start + layout.size(index)]
        if index < last:
            part = open_chunk(aead, index, False, chunk, aad)
        else:
            part = open_final_chunk(aead, index, chunk, aad, layout.last_size == layout.stride)
        assert part is not None
        parts.append(part)
    return b"".join(parts)
