"""Worker side of the crypto channel: AES-256-GCM one-shot, key derivation, and ranges of
chunks of the streaming format (``_aead_stream``), read and written by the worker itself.

Every argument was checked by the caller (``workerbridge._bridge._crypto``); these handlers
trust their types and sizes. What can still go wrong here is the data: a chunk that fails
authentication (``IntegrityError``, ``TruncationError``) or a file that changed or could not
be written while the operation ran (``OperationError`` with the path and the OS's reason).
No message ever carries key bytes or payload.

Range operations (``seal_range`` / ``open_range``) work on chunks ``first .. first+count-1``
of one file. Their input is either the range's bytes (sent by the caller, through shared
memory when large) or a path and offset to ``os.pread`` from; their output either comes
back as bytes or is ``os.pwrite``-n into the caller's preallocated temporary file at an
offset known in advance (ciphertext chunks are plaintext chunks + 16 bytes), so no file data
crosses the pipe. They check for cancellation and report progress once per I/O block.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .._exceptions import IntegrityError, OperationError
from .._worker import current_task, operation
from ._aead_stream import NONCE_SIZE, TAG_SIZE, chunk_nonce, open_chunk, open_final_chunk

__all__ = ["decrypt", "derive_key", "encrypt", "hkdf", "open_range", "seal_range"]

Buffer = bytes | bytearray | memoryview

#: Bytes read or written per system call in a range. A block this size (an L2/L3-sized
#: piece) stays in the CPU cache between its read, its sealing and its write, which is what
#: makes the file path run at memory-copy speed; much larger blocks spill to DRAM, much
#: smaller ones pay per-call costs. Blocks are whole chunks, so one chunk larger than this
#: is one block.
IO_BLOCK = 1 << 20
#: At most this many chunks per block: cancellation and progress are checked once per
#: block, and tiny chunks cost ~2 us each in Python, so this keeps a block under ~10 ms and
#: a cancel cooperative (well inside the pool's kill_grace) whatever the chunk size.
BLOCK_CHUNKS = 4096


@operation("crypto", "encrypt")
def encrypt(data: Buffer, key: bytes, nonce: bytes, aad: bytes) -> bytes:
    """AES-256-GCM of ``data``: ``nonce || ciphertext || tag``."""
    return nonce + AESGCM(key).encrypt(nonce, data, aad)


@operation("crypto", "decrypt")
def decrypt(data: Buffer, key: bytes, nonce: bytes | None, aad: bytes) -> bytes:
    """The plaintext of ``nonce || ciphertext || tag`` (or of ``ciphertext || tag`` when
    ``nonce`` is given).

    Raises:
        IntegrityError: too short to hold a tag, or authentication failed.
    """
    view = memoryview(data)
    if nonce is None:
        if len(view) < NONCE_SIZE + TAG_SIZE:
            raise IntegrityError(
                f"ciphertext too short: {len(view)} bytes, at least "
                f"{NONCE_SIZE + TAG_SIZE} (nonce + tag) expected"
            )
        nonce, view = bytes(view[:NONCE_SIZE]), view[NONCE_SIZE:]
    elif len(view) < TAG_SIZE:
        raise IntegrityError(f"ciphertext too short: {len(view)} bytes, a tag is {TAG_SIZE}")
    try:
        return AESGCM(key).decrypt(nonce, view, aad)
    except InvalidTag:
        raise IntegrityError(
            "authentication failed: wrong key, nonce or aad, or the data was modified"
        ) from None


@operation("crypto", "derive_key")
def derive_key(password: bytes, salt: bytes, length: int, n: int, r: int, p: int) -> bytes:
    """scrypt (RFC 7914). It runs in OpenSSL without a cancel check: a cancel or timeout
    stops it by replacing the worker after the pool's ``kill_grace``."""
    return Scrypt(salt=salt, length=length, n=n, r=r, p=p).derive(password)


@operation("crypto", "hkdf")
def hkdf(key_material: bytes, salt: bytes | None, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869), extract and expand."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key_material)


# ---------------------------------------------------------------- ranges of a chunked file
@operation("crypto", "seal_range")
def seal_range(
    subkey: bytes,
    aad: bytes,
    chunk_size: int,
    first: int,
    count: int,
    final: bool,
    size: int,
    source: Buffer | str,
    source_offset: int,
    dest: str | None,
    dest_offset: int,
) -> bytearray | int:
    """Seal chunks ``first .. first+count-1`` (``size`` plaintext bytes; the last of them is
    the file's final chunk when ``final``).

    ``source`` is the range's plaintext, or a path to read it from at ``source_offset``;
    ``dest`` a path to write the ciphertext to at ``dest_offset`` (the bytes written are
    returned), or None to return the ciphertext.

    Raises:
        TaskCancelledError: cancelled (checked once per block).
        OperationError: the input file is shorter than when the operation started, or a
            file cannot be read or written.
    """
    aead = AESGCM(subkey)
    last = count - 1

    def seal(j: int, plain: memoryview, out: memoryview) -> None:
        aead.encrypt_into(chunk_nonce(first + j, final and j == last), plain, aad, out)

    return _transform(
        source, source_offset, dest, dest_offset, count, chunk_size, size, TAG_SIZE, seal
    )


@operation("crypto", "open_range")
def open_range(
    subkey: bytes,
    aad: bytes,
    chunk_size: int,
    first: int,
    count: int,
    final: bool,
    last_size: int,
    source: Buffer | str,
    source_offset: int,
    dest: str | None,
    dest_offset: int,
) -> bytearray | int:
    """Authenticate and decrypt chunks ``first .. first+count-1``; the last of them is
    ``last_size`` encrypted bytes long and must be the final chunk when ``final`` (every
    other one is a full ``chunk_size + 16``).

    ``source`` is the range's ciphertext, or a path to read it from at ``source_offset``;
    ``dest`` a path to write the plaintext to at ``dest_offset`` (the bytes written are
    returned), or None to return the plaintext. A block is written only after every chunk
    in it authenticated, and a result is returned only if all did, so no plaintext of a
    failing chunk ever leaves this function.

    Raises:
        IntegrityError: a chunk failed authentication.
        TruncationError: the range ends the file and its final chunk is missing.
        TaskCancelledError: cancelled (checked once per block).
        OperationError: the input file is shorter than when the operation started, or a
            file cannot be read or written.
    """
    aead = AESGCM(subkey)
    stride = chunk_size + TAG_SIZE
    last = count - 1

    def open_(j: int, sealed: memoryview, out: memoryview) -> None:
        if final and j == last:
            open_final_chunk(aead, first + j, sealed, aad, len(sealed) == stride, out)
        else:
            open_chunk(aead, first + j, False, sealed, aad, out)

    size = last * stride + last_size
    return _transform(
        source, source_offset, dest, dest_offset, count, stride, size, -TAG_SIZE, open_
    )


def _transform(
    source: Buffer | str,
    source_offset: int,
    dest: str | None,
    dest_offset: int,
    count: int,
    chunk_in: int,
    size_in: int,
    growth: int,
    step: Callable[[int, memoryview, memoryview], None],
) -> bytearray | int:
    """Run ``step(j, chunk, out)`` on the ``count`` chunks of a range, in order: every
    chunk is ``chunk_in`` bytes but the last, and its output ``growth`` bytes longer.

    I/O goes by blocks of whole chunks: a block is read into a buffer (or sliced from
    ``source``), transformed into a buffer (or straight into the result), written, and only
    then is the next one read. A block's output reaches ``dest`` only if every ``step`` of
    the block returned; the first one that raises ends the range.
    """
    ctx = current_task()
    size_out = size_in + growth * count
    per_block = max(1, min(BLOCK_CHUNKS, IO_BLOCK // chunk_in))
    path_in = source if isinstance(source, str) else None
    data = None if isinstance(source, str) else memoryview(source).cast("B")
    result = bytearray(size_out) if dest is None else None
    with _opened(path_in, dest) as (fd_in, fd_out):
        inbuf = memoryview(bytearray(0 if data is not None else min(size_in, per_block * chunk_in)))
        outbuf = memoryview(
            bytearray(0 if result is not None else min(size_out, per_block * (chunk_in + growth)))
        )
        done_in = done_out = index = 0
        while index < count:
            ctx.raise_if_cancelled()
            k = min(per_block, count - index)
            block = min(k * chunk_in, size_in - done_in)
            if data is not None:
                view_in = data[done_in : done_in + block]
            else:
                assert fd_in is not None
                assert path_in is not None
                view_in = inbuf[:block]
                _read_exactly(fd_in, view_in, source_offset + done_in, path_in)
            view_out = memoryview(result)[done_out:] if result is not None else outbuf
            pos_in = pos_out = 0
            for j in range(index, index + k):
                n = min(chunk_in, block - pos_in)
                step(j, view_in[pos_in : pos_in + n], view_out[pos_out : pos_out + n + growth])
                pos_in += n
                pos_out += n + growth
            if fd_out is not None:
                assert dest is not None
                _write_all(fd_out, view_out[:pos_out], dest_offset + done_out, dest)
            done_in += block
            done_out += pos_out
            index += k
            ctx.report(done_in, max(size_in, 1))
    return result if result is not None else done_out


# ---------------------------------------------------------------- file I/O of a range
@contextmanager
def _opened(source: str | None, dest: str | None) -> Iterator[tuple[int | None, int | None]]:
    """File descriptors for the paths ``source`` and ``dest`` (None for None).

    The destination is the caller's temporary file, opened without ``O_CREAT``: if the
    operation was cancelled and the file already removed, a late call fails instead of
    bringing it back.
    """
    fd_in = fd_out = None
    try:
        if source is not None:
            fd_in = _open(source, os.O_RDONLY)
            if hasattr(os, "posix_fadvise"):
                # Larger readahead for the sequential read of this range.
                os.posix_fadvise(fd_in, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        if dest is not None:
            fd_out = _open(dest, os.O_WRONLY)
        yield fd_in, fd_out
    finally:
        if fd_in is not None:
            os.close(fd_in)
        if fd_out is not None:
            os.close(fd_out)


def _open(path: str, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except OSError as exc:
        raise OperationError(f"cannot open {path}: {exc.strerror}") from None


def _read_exactly(fd: int, view: memoryview, offset: int, path: str) -> None:
    """Fill ``view`` from ``fd`` at ``offset``, without an intermediate copy."""
    got = 0
    while got < len(view):
        try:
            n = os.preadv(fd, [view[got:]], offset + got)
        except OSError as exc:
            raise OperationError(f"cannot read {path}: {exc.strerror}") from None
        if n == 0:
            raise OperationError(
                f"{path} is shorter than when the operation started "
                f"(it ended at byte {offset + got}); it changed while being read"
            )
        got += n


def _write_all(fd: int, view: memoryview, offset: int, path: str) -> None:
    done = 0
    while done < len(view):
        try:
            done += os.pwrite(fd, view[done:], offset + done)
        except OSError as exc:
            raise OperationError(f"cannot write {path}: {exc.strerror}") from None
