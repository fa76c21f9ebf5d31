"""``download``: one ``network.download`` (resume, retries, optional SHA-256 check), with
progress from the server's Content-Length."""

from __future__ import annotations

import argparse
import posixpath
from urllib.parse import unquote, urlsplit

from .._channels._results import FileResult
from ._errors import EXIT_OK, UsageError
from ._files import STDIO, check_output, copy_to_stdout
from ._runner import Work, run_all
from ._session import Session
from ._units import human_bytes, human_rate, human_seconds

__all__ = ["cmd_download", "default_name"]


def default_name(url: str) -> str:
    """The file name ``download`` uses for ``url``: the last part of its path (decoded),
    or ``index.html``, like ``wget``."""
    name = posixpath.basename(unquote(urlsplit(url).path))
    return name if name not in ("", ".", "..") and "/" not in name else "index.html"


def cmd_download(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge download URL [-o FILE]``."""
    url: str = args.url
    if urlsplit(url).scheme not in ("http", "https"):
        raise UsageError(f"URL must start with http:// or https://, got {url!r}")
    if args.retries < 0:
        raise UsageError(f"--retries must be >= 0, got {args.retries}")
    output: str = args.output if args.output is not None else default_name(url)
    if output == STDIO:
        if session.options.json:
            raise UsageError("--json prints the result on stdout: write the data to a file")
        staged = session.temp.path("download")
    else:
        check_output(output, force=args.force)
        staged = output
    network = session.bridge.network
    resume = not args.no_resume
    work: Work[FileResult] = Work(
        url,
        None,
        lambda cb: network.download(
            url, staged, resume=resume, sha256=args.sha256, retries=args.retries, on_progress=cb
        ),
        refusal_is_usage=True,  # a malformed URL or --sha256
    )
    outcome = run_all(session, [work], title="download")
    result = outcome.results[0]
    if output == STDIO:
        copy_to_stdout(staged)
    if session.options.json:
        session.emit_json({"url": url, "output": output, "bytes": result.bytes_out})
    session.note(
        f"downloaded {human_bytes(result.bytes_out)} to {output} in "
        f"{human_seconds(outcome.seconds)} ({human_rate(result.bytes_out, outcome.seconds)})"
    )
    return EXIT_OK
