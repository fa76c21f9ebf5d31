"""The crypto bridge: caller-side checks and dispatch; the work runs in
``workerbridge._channels._crypto``.

AES-256-GCM of bytes (one call) and of files in the chunked format of docs/format.md (many
calls in parallel, one range of chunks each), hashing (delegated to the file channel), and
key derivation. Every argument is checked here, before anything is dispatched, and a nonce
the caller passes is checked against the process-wide registry of (key, nonce) pairs used
before (``NonceReuseError``). Keys are passed to workers as task arguments; they are never
put in an error message, a log line or a repr.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias, final, overload

from .._channels._aead_stream import (
    DEFAULT_CHUNK_SIZE,
    HEADER_SIZE,
    KEY_SIZE,
    MAX_CHUNK_SIZE,
    MAX_CHUNKS,
    MIN_CHUNK_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    Header,
    chunk_count,
    ciphertext_size,
    derive_subkey,
    encode_header,
    layout_of,
    parse_header,
)
from .._channels._results import FileResult
from .._exceptions import NonceReuseError, OperationError, ValidationError
from .._pool import ProgressInfo, TaskHandle, WorkerPool
from ._job import Job, OperationOptions, call_once, start_job

__all__ = ["HASH_ALGORITHMS", "CryptoBridge"]

Data: TypeAlias = bytes | bytearray | memoryview
PathLike: TypeAlias = str | os.PathLike[str]
ProgressCallback: TypeAlias = Callable[[ProgressInfo], object]

#: What ``hash`` and ``hash_file`` accept (the file channel's hashing ops implement them).
HASH_ALGORITHMS = frozenset({"sha256", "sha512", "sha3_256", "blake2b", "blake3"})
#: AES-GCM's own limit on one message and on its associated data (cryptography's too).
MAX_ONE_SHOT = (1 << 31) - 1
#: Bounds of ``derive_key``: the output length, and scrypt's memory (128 * n * r bytes),
#: capped so that a typo in ``n`` cannot make a worker allocate more than 1 GiB.
MAX_DERIVED_LENGTH = 1024
MAX_SCRYPT_MEMORY = 1 << 30
#: Plaintext bytes per channel call of a file operation, at most and at least. The upper
#: bound keeps enough calls in flight to balance the workers and report progress smoothly;
#: the lower bound keeps a call's fixed cost (a message each way, opening the files) under
#: 1 % of its work. In between, a file is cut into about four calls per worker.
CALL_BYTES_MAX = 16 << 20
CALL_BYTES_MIN = 1 << 20


@final
class _NonceRegistry:
    """The (key, nonce) pairs callers have passed in this process, as keyed digests.

    A digest is BLAKE2b keyed with a secret made at import, so the registry holds nothing
    from which a key could be recovered or tested offline. Invariant: a pair is in the set
    from the moment an operation using it was accepted, whether that operation then
    succeeded, failed or was cancelled (a cancelled encryption may have sealed chunks).
    """

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._seen: set[bytes] = set()
        self._lock = threading.Lock()

    def _digest(self, key: bytes, nonce: bytes) -> bytes:
        # key and nonce have fixed lengths, so their concatenation is unambiguous.
        return hashlib.blake2b(key + nonce, key=self._secret, digest_size=16).digest()

    def claim(self, key: bytes, nonce: bytes) -> bool:
        """Record the pair; False if it was recorded before."""
        digest = self._digest(key, nonce)
        with self._lock:
            if digest in self._seen:
                return False
            self._seen.add(digest)
            return True

    def release(self, key: bytes, nonce: bytes) -> None:
        """Forget a pair whose operation could not even be submitted (nothing was sealed)."""
        with self._lock:
            self._seen.discard(self._digest(key, nonce))

    def __len__(self) -> int:
        return len(self._seen)

    def _after_fork(self) -> None:
        # A forked child keeps the pairs (it must not reuse them either) but not a lock
        # that another thread of the parent may have held at the fork.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<NonceRegistry pairs={len(self._seen)}>"


_registry = _NonceRegistry()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_registry._after_fork)


@final
class CryptoBridge:
    """Crypto operations on the pool's workers: AES-256-GCM of bytes and of files, hashing,
    key derivation.

    Every operation but ``generate_key`` / ``generate_nonce`` returns a ``TaskHandle`` at
    once and takes ``on_progress``, ``signal`` and ``timeout``; a bad argument raises
    ``ValidationError`` (naming it) before anything is dispatched. Data passed as bytes must
    not be modified until the handle is done (it may be read in place).
    """

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    def __repr__(self) -> str:
        return f"<CryptoBridge pool={self._pool!r}>"

    # ------------------------------------------------------------ keys and nonces
    @staticmethod
    def generate_key() -> bytes:
        """32 random bytes from the OS's CSPRNG: an AES-256 key."""
        return secrets.token_bytes(KEY_SIZE)

    @staticmethod
    def generate_nonce() -> bytes:
        """12 random bytes from the OS's CSPRNG: an AES-GCM nonce. Random 96-bit nonces may
        be used for up to 2**32 messages per key (NIST SP 800-38D)."""
        return secrets.token_bytes(NONCE_SIZE)

    # ------------------------------------------------------------ one-shot AES-256-GCM
    def encrypt(
        self,
        data: Data,
        key: bytes,
        nonce: bytes | None = None,
        aad: bytes | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes]:
        """AES-256-GCM of ``data`` in one call; the result is ``nonce || ciphertext || tag``.

        Without ``nonce`` the bridge makes a random one. A ``nonce`` the caller passes is
        refused (the handle raises ``NonceReuseError``, nothing is encrypted) if this
        process has used the same (key, nonce) pair before, here or in ``encrypt_file``.
        ``aad`` (associated data) is authenticated, not encrypted; decrypt needs the same.
        One call cannot be interrupted half-way: a cancel or timeout fails the handle at
        once and the worker is replaced if it does not finish within the pool's grace.

        Raises:
            ValidationError: ``data`` or ``aad`` not bytes-like or over 2**31 - 1 bytes,
                ``key`` not 32 bytes, ``nonce`` not 12 bytes.
        """
        options = OperationOptions(on_progress, signal, timeout)
        view = _data("data", data, MAX_ONE_SHOT)
        key = _key(key)
        extra = _aad(aad, MAX_ONE_SHOT)
        if nonce is None:
            return call_once(
                self._pool, "crypto", "encrypt", (view, key, self.generate_nonce(), extra), options
            )
        nonce = _nonce(nonce)
        return self._claimed(
            key,
            nonce,
            options,
            "encrypt",
            lambda: call_once(self._pool, "crypto", "encrypt", (view, key, nonce, extra), options),
        )

    def decrypt(
        self,
        data: Data,
        key: bytes,
        nonce: bytes | None = None,
        aad: bytes | None = None,
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes]:
        """The plaintext of ``data`` as ``encrypt`` returned it (``nonce || ciphertext ||
        tag``); with ``nonce`` given, ``data`` is ``ciphertext || tag`` only.

        The handle raises ``IntegrityError`` (nothing is returned) when the data was
        modified or cut, or the key, nonce or aad is wrong.

        Raises:
            ValidationError: as for ``encrypt``.
        """
        options = OperationOptions(on_progress, signal, timeout)
        view = _data("data", data, MAX_ONE_SHOT + NONCE_SIZE + TAG_SIZE)
        key = _key(key)
        checked = None if nonce is None else _nonce(nonce)
        extra = _aad(aad, MAX_ONE_SHOT)
        return call_once(self._pool, "crypto", "decrypt", (view, key, checked, extra), options)

    # ------------------------------------------------------------ the chunked file format
    @overload
    def encrypt_file(
        self,
        data_or_path: Data | PathLike,
        key: bytes,
        nonce: bytes | None = None,
        *,
        output: None = None,
        aad: bytes | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes]: ...
    @overload
    def encrypt_file(
        self,
        data_or_path: Data | PathLike,
        key: bytes,
        nonce: bytes | None = None,
        *,
        output: PathLike,
        aad: bytes | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[FileResult]: ...
    def encrypt_file(
        self,
        data_or_path: Data | PathLike,
        key: bytes,
        nonce: bytes | None = None,
        *,
        output: PathLike | None = None,
        aad: bytes | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes] | TaskHandle[FileResult]:
        """Encrypt bytes or a file into the chunked format (docs/format.md), chunks sealed
        in parallel on the workers.

        ``data_or_path`` is bytes-like (the payload) or a path (a worker reads the file
        itself). With ``output`` the result is written there (``FileResult``): to a
        temporary file beside it, renamed over it at the end (mode 0600); otherwise the
        handle's result is the encrypted bytes. ``nonce`` is the file nonce (random when
        omitted), refused like ``encrypt``'s when reused with the same key. Progress is in
        plaintext bytes. On cancel, timeout or error the temporary file is removed before
        the handle resolves, and ``output`` is left as it was. The handle raises
        ``NonceReuseError`` for a reused pair, ``OperationError`` when a file cannot be
        read or written or the input changes size while it is read.

        Raises:
            ValidationError: a bad key, nonce, aad or ``chunk_size`` (outside
                [16 B, 64 MiB]), an input path that is not a readable regular file, an
                output in a folder that does not exist.
        """
        options = OperationOptions(on_progress, signal, timeout)
        source, size = _source(data_or_path)
        key = _key(key)
        file_nonce = self.generate_nonce() if nonce is None else _nonce(nonce)
        extra = _aad(aad, MAX_ONE_SHOT)
        chunk_size = _chunk_size(chunk_size)
        target = None if output is None else _output(output)
        if chunk_count(size, chunk_size) > MAX_CHUNKS:  # pragma: no cover - 2**92 bytes
            raise ValidationError("data_or_path is too large for the format's chunk counter")

        # Closures, not functools.partial: a partial's repr would show the key.
        def seal(job: Job[Any]) -> bytes | FileResult:
            return _seal_job(
                job,
                key=key,
                file_nonce=file_nonce,
                aad=extra,
                chunk_size=chunk_size,
                source=source,
                size=size,
                output=target,
            )

        def dispatch() -> TaskHandle[Any]:
            return start_job(self._pool, seal, options, total=size, name="encrypt_file")

        if nonce is None:
            return dispatch()
        return self._claimed(key, file_nonce, options, "encrypt_file", dispatch)

    @overload
    def decrypt_file(
        self,
        data_or_path: Data | PathLike,
        key: bytes,
        *,
        output: None = None,
        aad: bytes | None = None,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes]: ...
    @overload
    def decrypt_file(
        self,
        data_or_path: Data | PathLike,
        key: bytes,
        *,
        output: PathLike,
        aad: bytes | None = None,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[FileResult]: ...
    def decrypt_file(
        self,
        data_or_path: Data | PathLike,
        key: bytes,
        *,
        output: PathLike | None = None,
        aad: bytes | None = None,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes] | TaskHandle[FileResult]:
        """Decrypt the chunked format (bytes or a file), chunks opened in parallel.

        The handle raises ``FormatError`` (not this format, unsupported version),
        ``TruncationError`` (the final chunk is missing) or ``IntegrityError`` (any
        modification, reordering, duplication, splicing, trailing data, a wrong key or
        aad). No plaintext of a failing chunk is released: the bytes result is returned only
        when every chunk authenticated, and an ``output`` is written to a temporary file
        (mode 0600) that is renamed over ``output`` only then, and removed on any error,
        cancel or timeout before the handle resolves. Progress is in ciphertext bytes.

        Raises:
            ValidationError: a bad key or aad, an input path that is not a readable regular
                file, an output in a folder that does not exist.
        """
        options = OperationOptions(on_progress, signal, timeout)
        source, size = _source(data_or_path)
        key = _key(key)
        extra = _aad(aad, MAX_ONE_SHOT)
        target = None if output is None else _output(output)

        def open_(job: Job[Any]) -> bytes | FileResult:
            return _open_job(job, key=key, aad=extra, source=source, size=size, output=target)

        return start_job(self._pool, open_, options, total=size, name="decrypt_file")

    # ------------------------------------------------------------ hashing (file channel)
    def hash(
        self,
        data: Data,
        algorithm: str = "sha256",
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[str]:
        """The hex digest of ``data`` (the file channel's ``hash`` op).

        Raises:
            ValidationError: ``data`` not bytes-like, ``algorithm`` not one of sha256,
                sha512, sha3_256, blake2b, blake3.
        """
        options = OperationOptions(on_progress, signal, timeout)
        view = _data("data", data, None)
        name = _algorithm(algorithm)
        return call_once(self._pool, "file", "hash", (view, name), options)

    def hash_file(
        self,
        path: PathLike,
        algorithm: str = "sha256",
        *,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[str]:
        """The hex digest of the file at ``path``, read by a worker (the file channel's
        ``hash_file`` op).

        Raises:
            ValidationError: ``path`` not a readable regular file, a bad ``algorithm``.
        """
        options = OperationOptions(on_progress, signal, timeout)
        name = _algorithm(algorithm)
        source, _size = _input_file("path", path)
        return call_once(self._pool, "file", "hash_file", (source, name), options)

    # ------------------------------------------------------------ key derivation
    def derive_key(
        self,
        password: str | bytes,
        salt: bytes,
        *,
        length: int = 32,
        n: int = 2**14,
        r: int = 8,
        p: int = 1,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes]:
        """A key of ``length`` bytes from a password with scrypt (RFC 7914); a ``str``
        password is encoded as UTF-8. scrypt cannot be interrupted: a cancel or timeout
        fails the handle at once and replaces the worker after the pool's grace.

        Raises:
            ValidationError: ``password`` or ``salt`` of the wrong type, ``length`` outside
                [1, 1024], ``n`` not a power of two > 1, ``r`` or ``p`` < 1, or scrypt
                memory (128 * n * r) over 1 GiB.
        """
        options = OperationOptions(on_progress, signal, timeout)
        if isinstance(password, str):
            secret = password.encode("utf-8")
        elif isinstance(password, bytes | bytearray):
            secret = bytes(password)
        else:
            raise ValidationError(f"password must be str or bytes, got {type(password).__name__}")
        salt = _bytes("salt", salt)
        length = _int("length", length, 1, MAX_DERIVED_LENGTH)
        n = _int("n", n, 2, None)
        if n & (n - 1):
            raise ValidationError(f"n must be a power of two, got {n}")
        r = _int("r", r, 1, None)
        p = _int("p", p, 1, None)
        if 128 * n * r > MAX_SCRYPT_MEMORY:
            raise ValidationError(
                f"scrypt with n={n}, r={r} needs {128 * n * r} bytes of memory, "
                f"more than the limit of {MAX_SCRYPT_MEMORY}"
            )
        if p * r >= 1 << 30:
            raise ValidationError(f"p * r must be < 2**30 (RFC 7914), got p={p}, r={r}")
        return call_once(
            self._pool, "crypto", "derive_key", (secret, salt, length, n, r, p), options
        )

    def hkdf(
        self,
        key_material: bytes,
        *,
        salt: bytes | None = None,
        info: bytes = b"",
        length: int = 32,
        on_progress: ProgressCallback | None = None,
        signal: object | None = None,
        timeout: float | None = None,
    ) -> TaskHandle[bytes]:
        """HKDF-SHA256 (RFC 5869) of ``key_material``: ``length`` bytes bound to ``salt``
        (None = zeros, as the RFC says) and ``info``.

        Raises:
            ValidationError: a non-bytes argument, empty ``key_material``, ``length``
                outside [1, 8160] (255 SHA-256 blocks).
        """
        options = OperationOptions(on_progress, signal, timeout)
        material = _bytes("key_material", key_material)
        if not material:
            raise ValidationError("key_material must not be empty")
        checked_salt = None if salt is None else _bytes("salt", salt)
        checked_info = _bytes("info", info)
        length = _int("length", length, 1, 255 * 32)
        return call_once(
            self._pool, "crypto", "hkdf", (material, checked_salt, checked_info, length), options
        )

    # ------------------------------------------------------------ nonce-reuse refusal
    def _claimed(
        self,
        key: bytes,
        nonce: bytes,
        options: OperationOptions,
        name: str,
        dispatch: Callable[[], TaskHandle[Any]],
    ) -> TaskHandle[Any]:
        """Dispatch if the pair is new; else a handle that fails with NonceReuseError."""
        if not _registry.claim(key, nonce):
            error = NonceReuseError(
                f"{name}: this (key, nonce) pair was already used in this process; refused, "
                "because a repeated AES-GCM nonce reveals the plaintexts and the "
                "authentication key (pass nonce=None to let the bridge make a fresh one)"
            )
            return start_job(self._pool, _fail_with(error), options, total=1, name=name)
        try:
            return dispatch()
        except BaseException:
            _registry.release(key, nonce)  # not submitted: nothing was encrypted
            raise


def _fail_with(error: BaseException) -> Callable[[Job[Any]], Any]:
    def driver(_job: Job[Any]) -> Any:
        raise error

    return driver


# ---------------------------------------------------------------- the file jobs (drivers)
def _chunks_per_call(chunks: int, chunk_size: int, workers: int) -> int:
    most = max(1, CALL_BYTES_MAX // chunk_size)
    least = max(1, CALL_BYTES_MIN // chunk_size)
    spread = -(-chunks // (4 * max(1, workers)))
    return max(1, min(most, max(least, spread)))


#: One channel call of a file job: the operation's leading arguments, where its input
#: starts in the source and how long it is, and where its output goes in the destination.
_Range: TypeAlias = tuple[tuple[Any, ...], int, int, int]


def _seal_job(
    job: Job[Any],
    *,
    key: bytes,
    file_nonce: bytes,
    aad: bytes,
    chunk_size: int,
    source: memoryview | str,
    size: int,
    output: str | None,
) -> bytes | FileResult:
    """Seal every range of chunks on the workers; the header is written here."""
    header = encode_header(chunk_size, file_nonce)
    subkey = derive_subkey(key, header)
    chunks = chunk_count(size, chunk_size)
    per = _chunks_per_call(chunks, chunk_size, job.pool.size)
    stride = chunk_size + TAG_SIZE

    def ranges() -> Iterator[_Range]:
        for first in range(0, chunks, per):
            count = min(per, chunks - first)
            start = first * chunk_size
            n = min(count * chunk_size, size - start)
            final = first + count == chunks
            args = (subkey, aad, chunk_size, first, count, final, n)
            yield args, start, n, HEADER_SIZE + first * stride

    out_size = ciphertext_size(size, chunk_size)
    return _run_ranges(job, "seal_range", ranges(), source, size, output, out_size, header)


def _open_job(
    job: Job[Any],
    *,
    key: bytes,
    aad: bytes,
    source: memoryview | str,
    size: int,
    output: str | None,
) -> bytes | FileResult:
    """Parse the header and the layout here, then open every range of chunks on the
    workers (FormatError / TruncationError / IntegrityError of the first bad chunk)."""
    header = _read_header(source)
    layout = layout_of(size, header)
    subkey = derive_subkey(key, header.raw)
    job.report(HEADER_SIZE)
    chunks, chunk_size, stride = layout.chunks, layout.chunk_size, layout.stride
    per = _chunks_per_call(chunks, chunk_size, job.pool.size)

    def ranges() -> Iterator[_Range]:
        for first in range(0, chunks, per):
            count = min(per, chunks - first)
            final = first + count == chunks
            last_size = layout.last_size if final else stride
            args = (subkey, aad, chunk_size, first, count, final, last_size)
            yield args, layout.offset(first), (count - 1) * stride + last_size, first * chunk_size

    out_size = layout.plaintext_size
    return _run_ranges(job, "open_range", ranges(), source, size, output, out_size, b"")


def _run_ranges(
    job: Job[Any],
    operation: str,
    ranges: Iterator[_Range],
    source: memoryview | str,
    size: int,
    output: str | None,
    out_size: int,
    header: bytes,
) -> bytes | FileResult:
    """Run one ``crypto.<operation>`` call per range, ``2 * pool.size`` in flight, in order.

    To bytes: the results are joined behind ``header``, and only once every call succeeded.
    To a file: every call writes its part of a preallocated temporary file itself, which
    is renamed over ``output`` at the end and removed on any error, cancel or timeout (the
    first failing range's error is raised, the calls still in flight are cancelled).
    """

    def calls(dest: str | None) -> Iterator[Callable[[], TaskHandle[Any]]]:
        for args, start, length, dest_offset in ranges:
            if isinstance(source, str):  # the worker reads its part of the file itself
                src: memoryview | str = source
                src_offset = start
            else:  # the range's bytes (through shared memory when large)
                src, src_offset = source[start : start + length], 0
            call_args = (*args, src, src_offset, dest, dest_offset)  # the subkey is args[0]

            def begin(call_args: tuple[Any, ...] = call_args, weight: int = length) -> Any:
                return job.call("crypto", operation, *call_args, weight=weight)

            yield begin

    window = 2 * job.pool.size
    if output is None:
        return b"".join([header, *job.ordered(calls(None), window)])
    with _TempOutput(output, out_size) as temp:
        if header:
            temp.write_at(header, 0)
        for _ in job.ordered(calls(temp.path), window):
            pass
        if isinstance(source, str):
            _check_unchanged(source, size)
        temp.commit()
    return FileResult(output, size, out_size)


def _read_header(source: memoryview | str) -> Header:
    if not isinstance(source, str):
        return parse_header(source)
    try:
        with open(source, "rb") as file:
            head = file.read(HEADER_SIZE)
    except OSError as exc:
        raise OperationError(f"cannot read {source}: {exc.strerror}") from None
    return parse_header(head)


def _check_unchanged(path: str, size: int) -> None:
    """A file that changed size while it was being read was not read consistently."""
    try:
        now = os.stat(path).st_size
    except OSError as exc:
        raise OperationError(f"cannot stat {path}: {exc.strerror}") from None
    if now != size:
        raise OperationError(
            f"{path} changed while being read (size {size} -> {now}); output discarded"
        )


@final
class _TempOutput:
    """The output's temporary file: ``<name>.<random>.wb-tmp`` beside it, created 0600 and
    preallocated to its final size (so workers can ``pwrite`` their ranges and a full disk
    fails at once); renamed over the output by ``commit``, removed otherwise."""

    def __init__(self, output: str, size: int) -> None:
        folder, name = os.path.split(output)
        self.output = output
        self.path = os.path.join(folder, f"{name}.{secrets.token_hex(6)}.wb-tmp")
        self._committed = False
        try:
            self._fd: int | None = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
            )
        except OSError as exc:
            raise OperationError(f"cannot create {self.path}: {exc.strerror}") from None
        try:
            _preallocate(self._fd, size)
        except BaseException:
            self._remove()
            raise

    def write_at(self, data: bytes, offset: int) -> None:
        assert self._fd is not None
        try:
            os.pwrite(self._fd, data, offset)
        except OSError as exc:
            raise OperationError(f"cannot write {self.path}: {exc.strerror}") from None

    def commit(self) -> None:
        self._close()
        try:
            os.replace(self.path, self.output)
        except OSError as exc:
            raise OperationError(f"cannot rename to {self.output}: {exc.strerror}") from None
        self._committed = True

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _remove(self) -> None:
        self._close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> _TempOutput:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._committed:
            self._remove()


def _preallocate(fd: int, size: int) -> None:
    """Give the file its final size, allocated where the file system can (writes into
    allocated blocks are faster on ext4 and xfs, and ENOSPC comes now, not mid-way)."""
    if size == 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
        return
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise OperationError(f"no room for the {size}-byte output: {exc.strerror}") from None
        # EOPNOTSUPP, EINVAL: a file system without allocation; a sparse file works too.
    except AttributeError:  # pragma: no cover - platforms without posix_fallocate
        pass
    try:
        os.ftruncate(fd, size)
    except OSError as exc:
        raise OperationError(f"cannot size the output file: {exc.strerror}") from None


# ---------------------------------------------------------------- argument checks
def _data(name: str, value: object, limit: int | None) -> Data:
    """``value`` checked as bytes-like: bytes and bytearray as they are (they pickle
    without a copy of their own), a memoryview as a flat view of its bytes."""
    if isinstance(value, bytes | bytearray):
        size = len(value)
    elif isinstance(value, memoryview):
        if not value.c_contiguous:
            raise ValidationError(f"{name} must be a contiguous buffer")
        if value.format != "B" or value.ndim != 1:
            value = value.cast("B")
        size = value.nbytes
    else:
        raise ValidationError(
            f"{name} must be bytes, bytearray or memoryview, got {type(value).__name__}"
        )
    if limit is not None and size > limit:
        raise ValidationError(f"{name} must be at most {limit} bytes, got {size}")
    return value


def _bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise ValidationError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _key(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise ValidationError(f"key must be bytes, got {type(value).__name__}")
    if len(value) != KEY_SIZE:
        raise ValidationError(f"key must be {KEY_SIZE} bytes (AES-256), got {len(value)}")
    return bytes(value)


def _nonce(value: object) -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise ValidationError(f"nonce must be bytes or None, got {type(value).__name__}")
    if len(value) != NONCE_SIZE:
        raise ValidationError(f"nonce must be {NONCE_SIZE} bytes, got {len(value)}")
    return bytes(value)


def _aad(value: object, limit: int) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValidationError(f"aad must be bytes or None, got {type(value).__name__}")
    view = _data("aad", value, limit)
    return bytes(view)


def _int(name: str, value: object, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValidationError(f"{name} must be {bounds}, got {value}")
    return value


def _chunk_size(value: object) -> int:
    return _int("chunk_size", value, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)


def _algorithm(value: object) -> str:
    if not isinstance(value, str) or value not in HASH_ALGORITHMS:
        raise ValidationError(
            f"algorithm must be one of {', '.join(sorted(HASH_ALGORITHMS))}, got {value!r}"
        )
    return value


def _path(name: str, value: object) -> str:
    if not isinstance(value, str | os.PathLike):
        raise ValidationError(
            f"{name} must be a path (str or os.PathLike), got {type(value).__name__}"
        )
    path = os.fspath(value)
    if not isinstance(path, str):
        raise ValidationError(f"{name} must be a str path, got {type(path).__name__}")
    if not path:
        raise ValidationError(f"{name} must not be empty")
    return os.path.abspath(path)


def _input_file(name: str, value: object) -> tuple[str, int]:
    path = _path(name, value)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ValidationError(f"{name}: cannot open {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(f"{name}: {path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise ValidationError(f"{name}: {path} is not readable")
    return path, info.st_size


def _source(value: object) -> tuple[memoryview | str, int]:
    if isinstance(value, bytes | bytearray | memoryview):
        view = memoryview(_data("data_or_path", value, None))  # sliced per range, no copies
        return view, len(view)
    if isinstance(value, str | os.PathLike):
        return _input_file("data_or_path", value)
    raise ValidationError(
        f"data_or_path must be bytes, bytearray, memoryview or a path, got {type(value).__name__}"
    )


def _output(value: object) -> str:
    path = _path("output", value)
    if os.path.isdir(path):
        raise ValidationError(f"output: {path} is a directory")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise ValidationError(f"output: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValidationError(f"output: folder {folder} is not writable")
    return path
