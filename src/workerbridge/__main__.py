"""``python -m workerbridge``: the command line (for now: ``demo`` and ``info``)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workerbridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a short tour: progress, priorities, failures, stats")
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--backend", choices=["process", "thread"], default="process")
    sub.add_parser("info", help="backend, start method, versions")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(workers=args.workers, backend=args.backend)
    from ._demo import print_info

    return print_info()


if __name__ == "__main__":
    sys.exit(main())
