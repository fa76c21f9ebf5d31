"""Layer: the command line. ``workerbridge COMMAND ...`` over the four bridges.

::

    main(argv)
      |-- _parser      the grammar; usage errors are one line, exit 2
      |-- _session     common options, the pool and bridge (lazy), the terminal, cleanup
      |-- _runner      runs bridge operations: window, summed progress, first error stops
      |     '-- _progress   rich bars on stderr, with the pool's workers line
      |-- _cmd_*       the commands (sums, codec, crypto, net, system) and _demo
      |-- _files       inputs, '-' (stdin spooled, stdout staged), atomic writes
      |-- _keys        key file / variable / prompt; never the command line
      |-- _interrupt   Ctrl-C: cancel, terminate the pool, no partial output, exit 130
      '-- _errors      one line on stderr, exit codes

The CLI uses the bridges exactly as a Python user does (``WorkerBridge(pool=...)`` and
the handles' ``on_progress`` and ``cancel()``); it holds no logic of their own.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ._errors import EXIT_PIPE, EXIT_USAGE, describe
from ._interrupt import Interrupted, InterruptGuard
from ._parser import build_parser, split_passthrough
from ._session import CommonOptions, Session

__all__ = ["main"]

#: command -> (module of this package, function). Imported only for the command that runs,
#: so that ``--help`` and usage errors do not load the bridges.
HANDLERS = {
    "hash": ("_cmd_sums", "cmd_hash"),
    "manifest": ("_cmd_sums", "cmd_manifest"),
    "verify": ("_cmd_sums", "cmd_verify"),
    "compress": ("_cmd_codec", "cmd_compress"),
    "decompress": ("_cmd_codec", "cmd_decompress"),
    "encrypt": ("_cmd_crypto", "cmd_encrypt"),
    "decrypt": ("_cmd_crypto", "cmd_decrypt"),
    "keygen": ("_cmd_crypto", "cmd_keygen"),
    "download": ("_cmd_net", "cmd_download"),
    "info": ("_cmd_system", "cmd_info"),
    "bench": ("_cmd_system", "cmd_bench"),
    "demo": ("_demo", "cmd_demo"),
}


def _handler(name: str) -> Callable[[Session, argparse.Namespace], int]:
    module, function = HANDLERS[name]
    handler: Callable[[Session, argparse.Namespace], int] = getattr(
        importlib.import_module(f"{__name__}.{module}"), function
    )
    return handler


def _one_line_warnings(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    # A warning (the pool falling back to threads, say) is one line too, without the
    # source line that Python would show.
    text = " ".join(str(message).split()).removeprefix("workerbridge: ")
    sys.stderr.write(f"workerbridge: warning: {text}\n")


def _fail(message: str) -> None:
    sys.stderr.write(f"workerbridge: error: {message}\n")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``workerbridge`` with ``argv`` (default: ``sys.argv[1:]``); return the exit
    code (see ``workerbridge --help``). Never raises."""
    parser = build_parser(list(HANDLERS))
    head, passthrough = split_passthrough(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(head)
    except SystemExit as done:  # --help, --version, or a usage error already printed
        return done.code if isinstance(done.code, int) else EXIT_USAGE
    if passthrough is not None:
        args.bench_args = passthrough
    options = CommonOptions(
        workers=args.workers, backend=args.backend, json=args.json, quiet=args.quiet
    )
    with InterruptGuard() as guard, warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings
        session = Session(options, guard)
        # Two levels: a Ctrl-C that lands while an error is being handled below still
        # ends in the interrupt's cleanup and exit code.
        try:
            try:
                code = _handler(args.command)(session, args)
                guard.check()  # a signal deferred at the very end still counts
                session.close()
                return code
            except BrokenPipeError:
                # The reader went away (`| head`): stop quietly, as coreutils do.
                guard.shield()
                session.abort()
                _silence_stdout()
                return EXIT_PIPE
            except Exception as exc:
                guard.shield()
                session.abort()
                message, code = describe(exc)
                _fail(message)
                if os.environ.get("WORKERBRIDGE_DEBUG"):
                    traceback.print_exception(exc)
                return code
        except Interrupted as stop:
            guard.shield()
            session.abort()
            if not options.quiet:
                sys.stderr.write("\nworkerbridge: interrupted\n")
            return stop.exit_code


def _silence_stdout() -> None:
    # Python flushes stdout at exit, which would raise BrokenPipeError again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except OSError:
        pass
