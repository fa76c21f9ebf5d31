"""The tour behind ``make demo`` (``python -m workerbridge demo``): manifest, compress,
encrypt, decrypt and verify a generated sample, with progress bars and a summary. It is a
command of the command line like the others; its code is in ``workerbridge._cli._demo``."""

from __future__ import annotations

from ._cli._demo import generate_sample

__all__ = ["generate_sample", "run_demo"]


def run_demo(workers: int | None = None, backend: str = "process", size: int = 256 << 20) -> int:
    """Run the demo as ``workerbridge demo`` would; return its exit code."""
    from ._cli import main

    args = ["demo", "--size", str(size), "--backend", backend]
    if workers is not None:
        args += ["--workers", str(workers)]
    return main(args)
