"""The command line's grammar: ``workerbridge [common options] COMMAND [options] ARGS``.

The common options (``--workers``, ``--backend``, ``--json``, ``--quiet``) are accepted
before or after the command. A usage error is one line on stderr and exit code 2, like
every other error (argparse would print the whole usage block first).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn

from ._errors import EXIT_USAGE, one_line
from ._keys import DEFAULT_KEY_ENV, KEY_FORMAT_HELP
from ._units import parse_size

__all__ = ["EXIT_CODES_HELP", "Parser", "build_parser", "split_passthrough", "version"]

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    the operation failed: missing or unreadable input, wrong key, corrupt or
       tampered data, unknown format, checksum mismatch, network error
  2    usage error
  130  interrupted (Ctrl-C); 143 for SIGTERM
Errors are one line on stderr: "workerbridge: error: ...". Progress bars are drawn on
stderr when it is a terminal (never with --quiet); stdout carries only data and results.
"""

#: Hash algorithms of the file bridge, as `--algorithm` spells them.
ALGORITHMS = ("sha256", "sha512", "sha3_256", "blake2b", "blake3")
#: Compression formats of the compression bridge.
FORMATS = ("gzip", "zstd", "zlib", "brotli", "lz4", "bz2", "xz")


def version() -> str:
    """workerbridge's version, from its installed metadata (the package ``__init__`` sits
    above this layer)."""
    try:
        return metadata.version("workerbridge")
    except metadata.PackageNotFoundError:
        return "unknown"


class _Formatter(argparse.HelpFormatter):
    """Wraps descriptions to the terminal; keeps text that is laid out by hand (the exit
    codes) as it is."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE,
            f"workerbridge: error: {one_line(message)} (see '{self.prog} --help')\n",
        )


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _common(defaults: bool) -> Parser:
    """The common options; in a command's parser they default to "not given", so that
    the same option before the command is not overwritten."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    common = Parser(add_help=False, allow_abbrev=False)
    group = common.add_argument_group("common options")
    group.add_argument(
        "-w",
        "--workers",
        type=_workers,
        default=default(None),
        metavar="N",
        help="worker processes (default: one per CPU)",
    )
    group.add_argument(
        "--backend",
        choices=("process", "thread", "inline"),
        default=default("process"),
        help="where the work runs (default: process; thread is the fallback)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the result as JSON on stdout",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default(False),
        help="no progress bars, summaries or warnings",
    )
    return common


class _RefuseKey(argparse.Action):
    """``--key VALUE``: refused, without repeating the value (it may be a real key)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            "--key: keys are never taken from the command line (ps and shell history show "
            f"it); use --key-file FILE, --key-env NAME or {DEFAULT_KEY_ENV}"
        )


def _key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", action=_RefuseKey, help=argparse.SUPPRESS)
    group = parser.add_argument_group("key (never on the command line)")
    group.add_argument("-k", "--key-file", metavar="FILE", help="read the key from FILE")
    group.add_argument(
        "--key-env",
        metavar="NAME",
        help=f"read the key from the environment variable NAME (default: {DEFAULT_KEY_ENV}, "
        "if set)",
    )


def _output_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-o", "--output", metavar="FILE", help=f"write the {what} to FILE ('-' for stdout)"
    )
    parser.add_argument("-c", "--stdout", action="store_true", help=f"write the {what} to stdout")
    parser.add_argument(
        "-f", "--force", action="store_true", help="overwrite existing output files"
    )


#: Commands whose arguments all go to another program (``bench`` runs ``python -m bench``).
PASSTHROUGH = ("bench",)
#: Common options that take a value (to find the command word among the arguments).
_VALUED = ("-w", "--workers", "--backend")


def split_passthrough(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """``argv`` up to a pass-through command, and the arguments after it (None when the
    command is not one): ``bench --only x`` must not be parsed as options of ours."""
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _VALUED:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        if arg in PASSTHROUGH:
            return args[: i + 1], args[i + 1 :]
        return args, None
    return args, None


def build_parser(commands: Sequence[str]) -> Parser:
    """The parser of the ``commands`` (``args.command`` names the one given)."""
    parser = Parser(
        prog="workerbridge",
        allow_abbrev=False,  # `--key` must not quietly mean --key-file
        description="Parallel hashing, checksum manifests, compression, encryption and "
        "downloads on every core, with progress bars, clean Ctrl-C and the formats of the "
        "standard tools (sha256sum, gzip, zstd).",
        epilog=EXIT_CODES_HELP,
        formatter_class=_Formatter,
        parents=[_common(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"workerbridge {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common(defaults=False)

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            allow_abbrev=False,
            help=help_text,
            description=description,
            parents=[common],
            epilog=EXIT_CODES_HELP,
            formatter_class=_Formatter,
        )
        assert name in commands
        return p

    p = command(
        "hash",
        "print checksums of files, like sha256sum",
        "Print '<digest>  <name>' for each FILE, exactly as sha256sum (or sha512sum, b2sum, "
        "b3sum) prints it, hashing files in parallel. '-' or no FILE reads stdin.",
    )
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("-a", "--algorithm", choices=ALGORITHMS, default="sha256")

    p = command(
        "manifest",
        "write a checksum manifest of a folder",
        "Hash every file under FOLDER in parallel and print a manifest that "
        "'cd FOLDER && sha256sum -c MANIFEST' accepts (paths relative to FOLDER, sorted). "
        "With -o inside FOLDER, the manifest leaves itself out.",
    )
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("-a", "--algorithm", choices=ALGORITHMS, default="sha256")
    p.add_argument("-o", "--output", metavar="FILE", help="write the manifest to FILE")
    p.add_argument("-f", "--force", action="store_true", help="overwrite FILE")

    p = command(
        "verify",
        "check files against a manifest, like sha256sum -c",
        "Check the files listed in MANIFEST ('-' for stdin) like 'sha256sum -c': prints "
        "'name: OK' or 'name: FAILED' per file and exits 1 if any failed or is missing. "
        "Names are relative to the current folder, or to -C DIR.",
    )
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("-a", "--algorithm", choices=ALGORITHMS, default="sha256")
    p.add_argument("-C", "--directory", metavar="DIR", help="resolve names against DIR")

    p = command(
        "compress",
        "compress files in parallel (gzip, zstd, ...)",
        "Compress each FILE to FILE.gz (or .zst, ...) in parallel chunks; the output is "
        "read by gzip -d / zstd -d. '-' or no FILE: stdin to stdout, like 'gzip -c'. "
        "The input is kept.",
    )
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("-F", "--format", choices=FORMATS, default="gzip")
    p.add_argument("-l", "--level", type=int, metavar="N", help="compression level")
    p.add_argument(
        "--chunk-size", type=_size, metavar="SIZE", help="bytes per parallel chunk (e.g. 4M)"
    )
    _output_options(p, "compressed data")

    p = command(
        "decompress",
        "decompress files (reads what gzip, zstd, ... write)",
        "Decompress each FILE (format detected from its first bytes) to FILE without its "
        "suffix. '-' or no FILE: stdin to stdout, like 'gzip -dc'. The input is kept.",
    )
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("-F", "--format", choices=FORMATS, help="skip detection")
    p.add_argument(
        "--max-output",
        type=_size,
        metavar="SIZE",
        help="fail rather than write more than SIZE bytes (decompression bombs)",
    )
    _output_options(p, "decompressed data")

    description = "Encrypt each FILE with AES-256-GCM in parallel chunks (workerbridge's "
    description += "chunked format: tampering, truncation and reordering are detected) to "
    description += "FILE.enc. '-' or no FILE: stdin to stdout. " + KEY_FORMAT_HELP
    p = command("encrypt", "encrypt files (AES-256-GCM, chunked)", description)
    p.add_argument("files", nargs="*", metavar="FILE")
    p.add_argument("--chunk-size", type=_size, metavar="SIZE", help="bytes per chunk")
    _key_options(p)
    _output_options(p, "encrypted data")

    description = "Decrypt each FILE written by 'workerbridge encrypt' to FILE without "
    description += "'.enc'. Nothing of a file that fails authentication is written. '-' or "
    description += "no FILE: stdin to stdout. " + KEY_FORMAT_HELP
    p = command("decrypt", "decrypt files written by encrypt", description)
    p.add_argument("files", nargs="*", metavar="FILE")
    _key_options(p)
    _output_options(p, "decrypted data")

    p = command(
        "keygen",
        "write a new random key file",
        "Write a new random 32-byte key to KEYFILE (mode 0600; an existing file is never "
        "overwritten), or print its 64 hex digits for '-'. " + KEY_FORMAT_HELP,
    )
    p.add_argument("keyfile", metavar="KEYFILE")

    p = command(
        "download",
        "download a URL to a file (resume, verify)",
        "Download URL to FILE (default: the last part of the URL's path), resuming a "
        "previous partial download, retrying on connection errors and 5xx answers. "
        "'-o -' writes to stdout once the download is complete.",
    )
    p.add_argument("url", metavar="URL")
    p.add_argument("-o", "--output", metavar="FILE")
    p.add_argument("--sha256", metavar="HEX", help="fail unless the file has this SHA-256")
    p.add_argument("--no-resume", action="store_true", help="always start from the beginning")
    p.add_argument("--retries", type=int, default=3, metavar="N", help="default: 3")
    p.add_argument("-f", "--force", action="store_true", help="overwrite FILE")

    command(
        "info",
        "backend, workers, start method, limits, versions",
        "Start a pool as the other commands would and describe it.",
    )

    p = command(
        "bench",
        "run the benchmark suite (source checkout only)",
        "Run 'python -m bench' from the source checkout this workerbridge is installed "
        "from; every argument after 'bench' is passed on (try 'workerbridge bench --help').",
    )
    p.add_argument("bench_args", nargs="*", metavar="ARGS", help=argparse.SUPPRESS)

    p = command(
        "demo",
        "the tour: manifest, compress, encrypt, decrypt, verify a generated sample",
        "Generate a sample of mixed content in a temporary folder, then manifest, compress, "
        "encrypt, decrypt and verify it with progress bars, and print a summary. The "
        "folder is removed at the end.",
    )
    p.add_argument("--size", type=_size, default=256 << 20, metavar="SIZE", help="default: 256M")
    return parser
