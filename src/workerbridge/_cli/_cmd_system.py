"""``info`` (what a command runs on) and ``bench`` (the benchmark suite of a checkout)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .._backends import default_start_method
from .._protocol import DEFAULT_MAX_MESSAGE_BYTES
from .._transport import DEFAULT_SHM_THRESHOLD
from ._errors import EXIT_OK, CliError
from ._interrupt import Interrupted
from ._parser import ALGORITHMS, FORMATS, version
from ._session import POOL_OPTIONS, Session
from ._units import human_bytes

__all__ = ["cmd_bench", "cmd_info", "find_checkout"]

#: The libraries the bridges are built on, whose versions ``info`` reports.
LIBRARIES = (
    "msgspec",
    "cloudpickle",
    "psutil",
    "atomicshm",
    "cryptography",
    "blake3",
    "zstandard",
    "brotli",
    "lz4",
    "httpx",
    "rich",
)
#: After Ctrl-C, how long ``bench`` waits for the suite to stop on its own before passing
#: the signal on, and then before killing it.
_BENCH_FORWARD_S = 1.0
_BENCH_STOP_S = 10.0


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _shm_free() -> int | None:
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def cmd_info(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge info``: start a pool as the other commands would, and describe it."""
    pool = session.pool
    pool.wait_ready(POOL_OPTIONS["ready_timeout"])
    stats = pool.stats()
    soft_files, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    info: dict[str, Any] = {
        "workerbridge": version(),
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)),
        "backend": pool.backend,
        "backend_requested": session.options.backend,
        "workers": [{"index": w.index, "pid": w.pid, "state": w.state} for w in stats.workers],
        "start_method": default_start_method() if pool.backend == "process" else None,
        "start_methods_available": multiprocessing.get_all_start_methods(),
        "limits": {
            "max_message_bytes": DEFAULT_MAX_MESSAGE_BYTES,
            "shm_threshold_bytes": DEFAULT_SHM_THRESHOLD,
            "dev_shm_free_bytes": _shm_free(),
            "open_files": soft_files,
            **POOL_OPTIONS,
        },
        "hash_algorithms": list(ALGORITHMS),
        "compression_formats": list(FORMATS),
        "libraries": {name: _version(name) for name in LIBRARIES},
    }
    if session.options.json:
        session.emit_json(info)
        return EXIT_OK
    limits = info["limits"]
    shm = limits["dev_shm_free_bytes"]
    pids = ", ".join(f"{w['pid']} ({w['state']})" for w in info["workers"])
    method = info["start_method"] or "-"
    rows = [
        ("workerbridge", info["workerbridge"]),
        ("python", info["python"]),
        ("platform", info["platform"]),
        ("cpus", str(info["cpus"])),
        ("backend", f"{info['backend']} (requested: {info['backend_requested']})"),
        ("workers", f"{len(info['workers'])}: {pids}"),
        ("start method", f"{method} (available: {', '.join(info['start_methods_available'])})"),
        (
            "limits",
            f"message {human_bytes(limits['max_message_bytes'])}, shared memory from "
            f"{human_bytes(limits['shm_threshold_bytes'])}, /dev/shm free "
            f"{human_bytes(shm) if shm is not None else 'n/a'}, open files {soft_files}",
        ),
        (
            "timeouts",
            f"kill grace {POOL_OPTIONS['kill_grace']} s, heartbeat "
            f"{POOL_OPTIONS['heartbeat_interval']} s / {POOL_OPTIONS['heartbeat_timeout']} s, "
            f"ready {POOL_OPTIONS['ready_timeout']} s",
        ),
        ("hashes", ", ".join(ALGORITHMS)),
        ("formats", ", ".join(FORMATS)),
        (
            "libraries",
            ", ".join(f"{name} {v or 'missing'}" for name, v in info["libraries"].items()),
        ),
    ]
    session.out("".join(f"{name:<13} {value}\n" for name, value in rows))
    return EXIT_OK


def find_checkout(package: Path | None = None) -> Path | None:
    """The source checkout the package at ``package`` (default: this one) runs from
    (``src/workerbridge`` with ``bench/`` beside ``src/``), or None for an installed copy."""
    if package is None:
        package = Path(__file__).resolve().parent.parent
    root = package.parent.parent
    if package.parent.name != "src" or not (root / "bench" / "__main__.py").is_file():
        return None
    return root if (root / "pyproject.toml").is_file() else None


def cmd_bench(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge bench [ARGS...]``: ``python -m bench ARGS`` in the checkout."""
    root = find_checkout()
    if root is None:
        where = Path(__file__).resolve().parent.parent
        raise CliError(
            "bench: the benchmark suite is part of the source checkout (bench/ beside src/), "
            f"and this workerbridge is installed at {where}: clone the repository and run "
            "'make bench' there"
        )
    command = [sys.executable, "-m", "bench", *args.bench_args]
    child = subprocess.Popen(command, cwd=root)
    try:
        return child.wait()
    except Interrupted as stop:
        # Ctrl-C on the terminal reached the suite too (same process group); a signal
        # sent to this process alone is passed on once it is clear the suite did not get
        # it. Either way the suite gets time to clean up, then is killed.
        try:
            child.wait(_BENCH_FORWARD_S)
        except subprocess.TimeoutExpired:
            child.send_signal(stop.signum)
            try:
                child.wait(_BENCH_STOP_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        raise
