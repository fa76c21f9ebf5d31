"""``workerbridge`` and ``python -m workerbridge``: the command line (see
``workerbridge --help``; the code is in ``workerbridge._cli``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """The console script's entry point: run the command, return its exit code."""
    try:
        from ._cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:  # Ctrl-C before the command's own handler was in place
        return 130


if __name__ == "__main__":
    sys.exit(main())
