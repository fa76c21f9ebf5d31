"""Where ``encrypt`` and ``decrypt`` get their key: never from the command line.

A key on the command line would be visible to every user of the machine (``ps``,
``/proc/<pid>/cmdline``) and kept in the shell's history, so there is no ``--key``. The
sources, first match wins:

1. ``--key-file FILE``: a key file as ``workerbridge keygen`` writes it;
2. ``--key-env NAME``: the environment variable ``NAME`` (an error if it is unset);
3. the variable ``WORKERBRIDGE_KEY``, if it is set;
4. a prompt on the terminal (``getpass``: nothing is echoed), when stdin is a terminal or
   the process has a controlling terminal (``cat x | workerbridge encrypt`` prompts there).

Otherwise the command stops with a usage error that lists these.

Key file format: text, one line of 64 hexadecimal digits (the 32-byte AES-256 key),
optionally preceded by comment lines starting with ``#``; blank lines and surrounding
spaces are ignored. An environment variable or the prompt takes the same 64 digits.
``keygen`` writes the file with mode 0600 and refuses to overwrite an existing file. A
key file readable by other users is still used, with a warning.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
import time

from ._errors import CliError, UsageError
from ._files import STDIO, write_atomic

__all__ = ["DEFAULT_KEY_ENV", "KEY_FORMAT_HELP", "format_key", "load_key", "save_key"]

DEFAULT_KEY_ENV = "WORKERBRIDGE_KEY"
KEY_BYTES = 32
KEY_FORMAT_HELP = (
    "key sources, first match wins: --key-file FILE, --key-env NAME, the variable "
    f"{DEFAULT_KEY_ENV}, else a prompt on the terminal. Never on the command "
    "line. Key file format: one line of 64 hex digits (32 bytes), '#' comment lines "
    "allowed; `workerbridge keygen FILE` writes one (mode 0600)."
)


def parse_key(text: str, source: str) -> bytes:
    """The key in ``text`` (see the module docstring for the format).

    Raises:
        CliError: not exactly one line of 64 hex digits; the message names ``source``
            but never shows what it holds.
    """
    lines = [line.strip() for line in text.splitlines()]
    values = [line for line in lines if line and not line.startswith("#")]
    expected = f"one line of {2 * KEY_BYTES} hex digits (a {KEY_BYTES}-byte key, as "
    expected += "`workerbridge keygen` writes)"
    if len(values) != 1:
        raise CliError(f"{source}: expected {expected}, found {len(values)} lines")
    value = values[0]
    if len(value) != 2 * KEY_BYTES:
        raise CliError(f"{source}: expected {expected}, found {len(value)} characters")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise CliError(f"{source}: expected {expected}, found other characters") from None


def _read_key_file(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CliError(f"key file {path}: No such file or directory") from None
    except OSError as exc:
        raise CliError(f"key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise CliError(f"key file {path}: not a regular file")
        raw = f.read(4096)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        sys.stderr.write(
            f"workerbridge: warning: key file {path} is readable by other users "
            f"(chmod 600 {path})\n"
        )
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise CliError(f"key file {path}: not a text key file (see --help)") from None
    return parse_key(text, f"key file {path}")


def _has_terminal() -> bool:
    """Whether this process has a controlling terminal, which ``getpass`` prompts on even
    when stdin carries the data."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def load_key(key_file: str | None, key_env: str | None, *, stdin_is_data: bool) -> bytes:
    """The key from the first source that has one (see the module docstring).

    Args:
        stdin_is_data: the command reads its input from stdin, so the prompt must come
            from the controlling terminal itself (``/dev/tty``, which ``getpass`` opens),
            never from stdin.

    Raises:
        CliError: the source exists but holds no valid key.
        UsageError: no source was given and there is no terminal to prompt on.
    """
    if key_file is not None:
        return _read_key_file(key_file)
    if key_env is not None:
        value = os.environ.get(key_env)
        if value is None:
            raise UsageError(f"--key-env {key_env}: the variable {key_env} is not set")
        return parse_key(value, f"variable {key_env}")
    value = os.environ.get(DEFAULT_KEY_ENV)
    if value is not None:
        return parse_key(value, f"variable {DEFAULT_KEY_ENV}")
    if (sys.stdin.isatty() and not stdin_is_data) or _has_terminal():
        try:
            typed = getpass.getpass(f"Key ({2 * KEY_BYTES} hex digits): ", stream=sys.stderr)
        except EOFError:
            raise UsageError("no key was entered") from None
        return parse_key(typed, "the key typed")
    raise UsageError(
        f"no key: use --key-file FILE, --key-env NAME or set {DEFAULT_KEY_ENV} "
        "(`workerbridge keygen FILE` makes a key file)"
    )


def format_key(key: bytes) -> str:
    """The text of a key file holding ``key``."""
    made = time.strftime("%Y-%m-%d %H:%M:%S %z")
    return (
        f"# workerbridge AES-256-GCM key, made {made}.\n"
        "# Keep it secret: it decrypts what it encrypted.\n"
        f"# Use: workerbridge encrypt --key-file FILE ...\n{key.hex()}\n"
    )


def save_key(path: str, key: bytes) -> None:
    """Write a key file (mode 0600, never over an existing file), or print the key's hex
    digits for ``-``.

    Raises:
        CliError: ``path`` exists, or its folder is missing.
        OSError: the folder is not writable.
    """
    if path == STDIO:  # bare hex, for WORKERBRIDGE_KEY=$(workerbridge keygen -)
        sys.stdout.write(key.hex() + "\n")
        sys.stdout.flush()
        return
    text = format_key(key)
    if os.path.lexists(path):
        raise CliError(f"{path} already exists; refusing to overwrite a key file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"{folder}: No such file or directory")
    write_atomic(path, text.encode("ascii"), mode=0o600, exclusive=True)
