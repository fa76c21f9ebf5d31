"""The crypto bridge: caller-side checks and dispatch; the work runs in
``workerbridge._channels._crypto``.

AES-256-GCM of bytes (one call) and of files in the chunked format of docs/format.md (many
calls in parallel, one range of chunks each), hashing (delegated to the file channel), and
key derivation. Every argument is checked here, before anything is dispatched, and a nonce
the caller passes is checked against the process-wide registry of (key, nonce) pairs used
before (``NonceReuseError``). Keys are passed to workers as task arguments; they are never
put in an error message, a log line or a repr.

The argument checks are in ``_crypto_checks``, the drivers of the file operations in
``_crypto_jobs``, the registry of (key, nonce) pairs in ``_nonces``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, TypeAlias, final, overload

from .._channels._aead_stream import (
    DEFAULT_CHUNK_SIZE,
    KEY_SIZE,
    MAX_CHUNKS,
    NONCE_SIZE,
    TAG_SIZE,
    chunk_count,
)
from .._channels._results import FileResult
from .._exceptions import NonceReuseError, ValidationError
from .._pool import ProgressInfo, TaskHandle, WorkerPool
from . import _nonces
from ._crypto_checks import (
    HASH_ALGORITHMS as HASH_ALGORITHMS,
    Data,
    PathLike,
    check_aad,
    check_algorithm,
    check_bytes,
    check_chunk_size,
    check_data,
    check_input_file,
    check_int,
    check_key,
    check_nonce,
    check_output,
    check_source,
)
from ._crypto_jobs import open_job, seal_job
from ._job import Job, OperationOptions, call_once, start_job

__all__ = ["HASH_ALGORITHMS", "CryptoBridge"]

ProgressCallback: TypeAlias = Callable[[ProgressInfo], object]

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

#: The process-wide (key, nonce) registry (``_nonces``), which ``_claimed`` consults.
_registry = _nonces.registry


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
        view = check_data("data", data, MAX_ONE_SHOT)
        key = check_key(key)
        extra = check_aad(aad, MAX_ONE_SHOT)
        if nonce is None:
            return call_once(
                self._pool, "crypto", "encrypt", (view, key, self.generate_nonce(), extra), options
            )
        nonce = check_nonce(nonce)
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
        view = check_data("data", data, MAX_ONE_SHOT + NONCE_SIZE + TAG_SIZE)
        key = check_key(key)
        checked = None if nonce is None else check_nonce(nonce)
        extra = check_aad(aad, MAX_ONE_SHOT)
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
        source, size = check_source(data_or_path)
        key = check_key(key)
        file_nonce = self.generate_nonce() if nonce is None else check_nonce(nonce)
        extra = check_aad(aad, MAX_ONE_SHOT)
        chunk_size = check_chunk_size(chunk_size)
        target = None if output is None else check_output(output)
        if chunk_count(size, chunk_size) > MAX_CHUNKS:  # pragma: no cover - 2**92 bytes
            raise ValidationError("data_or_path is too large for the format's chunk counter")

        # Closures, not functools.partial: a partial's repr would show the key.
        def seal(job: Job[Any]) -> bytes | FileResult:
            return seal_job(
                job,
                key=key,
                file_nonce=file_nonce,
                aad=extra,
                chunk_size=chunk_size,
                source=source,
                size=size,
                output=target,
                chunks_per_call=_chunks_per_call,
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
        source, size = check_source(data_or_path)
        key = check_key(key)
        extra = check_aad(aad, MAX_ONE_SHOT)
        target = None if output is None else check_output(output)

        def open_(job: Job[Any]) -> bytes | FileResult:
            return open_job(
                job,
                key=key,
                aad=extra,
                source=source,
                size=size,
                output=target,
                chunks_per_call=_chunks_per_call,
            )

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
        view = check_data("data", data, None)
        name = check_algorithm(algorithm)
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
        name = check_algorithm(algorithm)
        source, _size = check_input_file("path", path)
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
        salt = check_bytes("salt", salt)
        length = check_int("length", length, 1, MAX_DERIVED_LENGTH)
        n = check_int("n", n, 2, None)
        if n & (n - 1):
            raise ValidationError(f"n must be a power of two, got {n}")
        r = check_int("r", r, 1, None)
        p = check_int("p", p, 1, None)
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
        material = check_bytes("key_material", key_material)
        if not material:
            raise ValidationError("key_material must not be empty")
        checked_salt = None if salt is None else check_bytes("salt", salt)
        checked_info = check_bytes("info", info)
        length = check_int("length", length, 1, 255 * 32)
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


def _chunks_per_call(chunks: int, chunk_size: int, workers: int) -> int:
    """How many chunks one channel call of a file job takes (``_crypto_jobs`` asks): about
    four calls per worker, within ``CALL_BYTES_MIN`` and ``CALL_BYTES_MAX``, at least one.

    It reads the bounds from this module when a job runs, so they stay the bridge's knobs
    (tests shrink them to run small inputs as many ranges)."""
    most = max(1, CALL_BYTES_MAX // chunk_size)
    least = max(1, CALL_BYTES_MIN // chunk_size)
    spread = -(-chunks // (4 * max(1, workers)))
    return max(1, min(most, max(least, spread)))
