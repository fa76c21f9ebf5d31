"""``encrypt``, ``decrypt`` and ``keygen``: AES-256-GCM in the crypto bridge's chunked
file format (docs/format.md), with keys from a file, a variable or a prompt."""

from __future__ import annotations

import argparse
from typing import Any

from .._pool import WorkerPool
from ._errors import EXIT_OK
from ._files import STDIO, strip_suffix
from ._keys import load_key, save_key
from ._session import Session
from ._transform import plan, run

__all__ = ["ENCRYPTED_SUFFIX", "cmd_decrypt", "cmd_encrypt", "cmd_keygen"]

#: What ``encrypt`` appends to a file's name, and ``decrypt`` removes.
ENCRYPTED_SUFFIX = ".enc"


def _key(args: argparse.Namespace) -> bytes:
    files: list[str] = args.files or [STDIO]
    return load_key(args.key_file, args.key_env, stdin_is_data=STDIO in files)


def cmd_encrypt(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge encrypt [FILE...]``: FILE -> FILE.enc."""
    key = _key(args)
    targets = plan(
        session,
        args,
        default_output=lambda name: name + ENCRYPTED_SUFFIX,
        binary_output=True,
        no_default="",
    )
    options: dict[str, Any] = {}
    if args.chunk_size is not None:
        options["chunk_size"] = args.chunk_size
    crypto = session.bridge.crypto
    return run(
        session,
        targets,
        lambda src, dst, cb: crypto.encrypt_file(src, key, output=dst, on_progress=cb, **options),
        verb="encrypted",
        title="encrypt",
    )


def cmd_decrypt(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge decrypt [FILE...]``: FILE.enc -> FILE; nothing is written for a file
    that fails authentication."""
    key = _key(args)
    targets = plan(
        session,
        args,
        default_output=lambda name: strip_suffix(name, (ENCRYPTED_SUFFIX,)),
        binary_output=False,
        no_default=f"does not end in {ENCRYPTED_SUFFIX}; use -o FILE or -c",
    )
    crypto = session.bridge.crypto
    return run(
        session,
        targets,
        lambda src, dst, cb: crypto.decrypt_file(src, key, output=dst, on_progress=cb),
        verb="decrypted",
        title="decrypt",
    )


def cmd_keygen(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge keygen KEYFILE``: a new random key (mode 0600, never overwrites)."""
    from .._bridge import CryptoBridge

    # Key generation runs in this process (os.urandom): no worker needs to start.
    with WorkerPool(1, backend="inline") as pool:
        key = CryptoBridge(pool).generate_key()
    save_key(args.keyfile, key)
    if args.keyfile != STDIO:
        if session.options.json:
            session.emit_json({"keyfile": args.keyfile, "bits": 8 * len(key)})
        session.note(f"wrote a new 256-bit key to {args.keyfile} (mode 0600): keep it secret")
    return EXIT_OK
