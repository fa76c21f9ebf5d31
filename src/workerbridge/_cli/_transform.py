"""The shape shared by ``compress``, ``decompress``, ``encrypt`` and ``decrypt``: each
input file becomes one output file (or stdout), by one bridge operation per input.

``plan`` checks the whole command line before anything runs (inputs readable, outputs
not overwritten without ``--force``, binary data not sent to a terminal, ``-o`` with one
input only) and spools stdin; ``run`` starts the operations (two per worker at a time;
each is itself parallel over chunks), then copies the outputs bound for stdout in input
order, once every operation has succeeded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .._channels._results import FileResult
from .._pool import ProgressInfo, TaskHandle
from ._errors import EXIT_OK, CliError, UsageError
from ._files import STDIO, check_input, check_output, copy_to_stdout
from ._runner import Work, run_all
from ._session import Session
from ._units import human_bytes, human_rate, human_seconds

__all__ = ["Target", "plan", "run"]

ProgressCallback = Callable[[ProgressInfo], object]
Operation = Callable[[str, str, ProgressCallback], TaskHandle[FileResult]]


@dataclass(frozen=True)
class Target:
    """One input and where its output goes."""

    label: str  # the input as given ("-" shows as "stdin")
    source: str  # the file the bridge reads (stdin spooled into the temporary area)
    size: int
    output: str  # the final path, or "-" for stdout
    staged: str  # the file the bridge writes: ``output``, or one in the temporary area


def plan(
    session: Session,
    args: argparse.Namespace,
    *,
    default_output: Callable[[str], str | None],
    binary_output: bool,
    no_default: str,
) -> list[Target]:
    """The targets of the command line ``args`` (``files``, ``output``, ``stdout``,
    ``force``).

    Args:
        default_output: the output path for an input path, or None if there is no rule
            (then ``no_default`` says why, and the user must give ``-o`` or ``-c``).
        binary_output: refuse to write to stdout when it is a terminal (without
            ``--force``), as ``gzip`` does.

    Raises:
        UsageError: contradictory options.
        CliError: an input is not readable, an output exists, no output name.
    """
    names: list[str] = args.files or [STDIO]
    output: str | None = args.output
    to_stdout = bool(args.stdout) or output == STDIO
    if args.stdout and output not in (None, STDIO):
        raise UsageError("--stdout and --output FILE together: choose one")
    if output not in (None, STDIO) and len(names) > 1:
        raise UsageError("--output FILE takes one input; several inputs go beside themselves")
    if names.count(STDIO) > 1:
        raise UsageError("'-' (stdin) can be given once")
    sizes = {name: check_input(name) for name in names if name != STDIO}
    outputs: list[str] = []
    for name in names:
        if output is not None:
            outputs.append(output)
        elif to_stdout or name == STDIO or sizes[name] is None:
            outputs.append(STDIO)  # a pipe is like stdin: its output goes to stdout
        else:
            default = default_output(name)
            if default is None:
                raise CliError(f"{name}: {no_default}")
            outputs.append(default)
    if STDIO in outputs:
        if session.options.json:
            raise UsageError("--json prints the result on stdout: write the data to a file")
        if binary_output and sys.stdout.isatty() and not args.force:
            raise CliError("binary data not written to a terminal; use -f to force it")
    seen: set[str] = set()
    for name, out in zip(names, outputs, strict=True):
        if out == STDIO:
            continue
        if out in seen:
            raise UsageError(f"{out}: two inputs would write the same output")
        seen.add(out)
        check_output(out, force=bool(args.force), inputs=(name,))
    targets = []
    for index, (name, out) in enumerate(zip(names, outputs, strict=True)):
        source, size = session.temp.prepare(name, sizes.get(name))
        staged = session.temp.path(f"output-{index}") if out == STDIO else out
        targets.append(Target(name if name != STDIO else "stdin", source, size, out, staged))
    return targets


def run(
    session: Session, targets: list[Target], operation: Operation, *, verb: str, title: str
) -> int:
    """Run ``operation(source, staged, on_progress)`` for every target, then copy the
    outputs bound for stdout, then print the result (``--json``) and the summary."""

    def work(target: Target) -> Work[FileResult]:
        # Inputs and outputs are checked: what the bridge refuses is a level or a size.
        return Work(
            target.label,
            target.size,
            lambda cb: operation(target.source, target.staged, cb),
            refusal_is_usage=True,
        )

    works = [work(t) for t in targets]
    # Two operations per worker: a big file keeps every worker busy by itself (its chunks
    # run in parallel), and many small files do not wait on each other's start and finish.
    outcome = run_all(session, works, title=title, window=2 * session.pool.size)
    for target in targets:
        if target.output == STDIO:
            copy_to_stdout(target.staged)
    results: list[FileResult] = outcome.results
    if session.options.json:
        session.emit_json(
            [
                {
                    "input": t.label,
                    "output": t.output,
                    "bytes_in": r.bytes_in,
                    "bytes_out": r.bytes_out,
                }
                for t, r in zip(targets, results, strict=True)
            ]
        )
    bytes_in = sum(r.bytes_in for r in results)
    bytes_out = sum(r.bytes_out for r in results)
    count = len(targets)
    ratio = f" ({100 * bytes_out / bytes_in:.1f}%)" if bytes_in else ""
    session.note(
        f"{verb} {count} file{'s' if count != 1 else ''}, {human_bytes(bytes_in)} -> "
        f"{human_bytes(bytes_out)}{ratio} in {human_seconds(outcome.seconds)}"
        f" ({human_rate(bytes_in, outcome.seconds)}, {session.pool.size}"
        f" {session.pool.backend} workers)"
    )
    return EXIT_OK
