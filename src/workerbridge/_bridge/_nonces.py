"""The process-wide registry of the (key, nonce) pairs given to the crypto bridge.

``CryptoBridge`` claims a pair here before it dispatches an encryption with a nonce the
caller passed, and refuses the operation (``NonceReuseError``) when the pair was claimed
before: a repeated AES-GCM nonce under one key reveals the plaintexts and the
authentication key. Only keyed digests of the pairs are kept, never a key.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from typing import final

__all__ = ["NonceRegistry", "registry"]


@final
class NonceRegistry:
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


#: The registry of this process (a forked child inherits its pairs).
registry = NonceRegistry()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=registry._after_fork)
