"""Machine facts and physical limits, printed beside the results for scale.

- memcpy: copying a 256 MiB bytearray into another (already touched) one.
- pipe: a forked writer sends 1 MiB writes through ``os.pipe`` to a reader that reads into
  one buffer; with the default pipe size and with the pipe enlarged to 1 MiB.
- wake-up round trip: one byte back and forth between two processes over two pipes.
- sha256: ``hashlib.sha256`` over an 8 MiB block on one core.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["Limit", "machine_facts", "measure_limits", "src_state"]

MiB = 1 << 20
GiB = 1 << 30
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PACKAGES = ("workerbridge", "loky", "pebble", "mpire", "msgspec", "cloudpickle", "psutil")


@dataclass(frozen=True)
class Limit:
    name: str
    value: float
    unit: str
    note: str = ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision(root: Path) -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev} (src/ modified)" if dirty else rev


def src_state(root: Path) -> str:
    """What the children import: the tree of ``src/`` at HEAD and any uncommitted edit of
    it (a commit elsewhere, such as a README change, leaves it as it was)."""
    try:
        tree = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD:src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "-C", str(root), "diff", "HEAD", "--", "src"],
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{tree} {hashlib.sha1(diff).hexdigest()}"


def machine_facts(root: Path) -> dict[str, str]:
    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return {
        "CPU": _cpu_model(),
        "cores": f"{cores} logical, {usable} usable by this process",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "packages": ", ".join(versions),
        "workerbridge commit": _git_revision(root),
    }


def _best(fn: object, repeats: int) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def memcpy_gibs(size: int = 256 * MiB, repeats: int = 5) -> float:
    src = bytearray(os.urandom(4096)) * (size // 4096)
    dst = bytearray(size)
    view = memoryview(dst)

    def copy() -> None:
        view[:] = src

    copy()  # touch every page first
    return size / GiB / _best(copy, repeats)


def pipe_gibs(total: int, enlarge: bool) -> float:
    """Bytes per second from a forked writer through one pipe, 1 MiB writes."""
    r, w = os.pipe()
    if enlarge:
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, F_SETPIPE_SZ, MiB)
    pid = os.fork()
    if pid == 0:  # writer
        try:
            os.close(r)
            block = memoryview(bytes(MiB))
            for _ in range(total // MiB):
                sent = 0
                while sent < MiB:
                    sent += os.write(w, block[sent:])
        finally:
            os._exit(0)
    os.close(w)
    buf = bytearray(MiB)
    got = 0
    with open(r, "rb", buffering=0) as reader:
        t0 = time.perf_counter()
        while got < total:
            n = reader.readinto(buf)
            if not n:
                break
            got += n
        seconds = time.perf_counter() - t0
    os.waitpid(pid, 0)
    return got / GiB / seconds


def wakeup_round_trip_us(cpus: tuple[int, int] | None = None, rounds: int = 2000) -> float:
    """Median of one-byte ping-pongs between two processes (two pipes), pinned to
    ``cpus`` (parent, echo) if given."""
    a_r, a_w = os.pipe()
    b_r, b_w = os.pipe()
    saved = os.sched_getaffinity(0) if cpus else None
    if cpus:
        os.sched_setaffinity(0, {cpus[0]})
    pid = os.fork()
    if pid == 0:  # echo
        try:
            if cpus:
                os.sched_setaffinity(0, {cpus[1]})
            os.close(a_w)
            os.close(b_r)
            while os.read(a_r, 1):
                os.write(b_w, b"x")
        finally:
            os._exit(0)
    os.close(a_r)
    os.close(b_w)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        t0 = clock()
        os.write(a_w, b"x")
        os.read(b_r, 1)
        samples.append(clock() - t0)
    os.close(a_w)  # the echo sees EOF and exits
    os.waitpid(pid, 0)
    os.close(b_r)
    if saved is not None:
        os.sched_setaffinity(0, saved)
    return statistics.median(samples[rounds // 10 :]) / 1e3


def sha256_gibs(total: int = 256 * MiB, repeats: int = 3) -> float:
    block = os.urandom(4096) * (8 * MiB // 4096)

    def run() -> None:
        digest = hashlib.sha256()
        for _ in range(total // len(block)):
            digest.update(block)

    return total / GiB / _best(run, repeats)


def _wakeups() -> list[Limit]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return [Limit("wake-up round trip", wakeup_round_trip_us(), "µs", "1 byte ping-pong")]
    note = "1 byte ping-pong between 2 processes"
    cross = wakeup_round_trip_us((cpus[0], cpus[1]))
    same = wakeup_round_trip_us((cpus[0], cpus[0]))
    return [
        Limit("wake-up round trip, cross-core", cross, "µs", note),
        Limit("wake-up round trip, one core", same, "µs", note),
    ]


def measure_limits(quick: bool = False) -> list[Limit]:
    pipe_total = 256 * MiB if quick else GiB
    sha = sha256_gibs(128 * MiB if quick else 256 * MiB)
    return [
        Limit("memcpy", memcpy_gibs(), "GiB/s", "256 MiB bytearray into another"),
        Limit("pipe", pipe_gibs(pipe_total, enlarge=False), "GiB/s", "default size, 1 MiB writes"),
        Limit("pipe, enlarged", pipe_gibs(pipe_total, enlarge=True), "GiB/s", "F_SETPIPE_SZ 1 MiB"),
        *_wakeups(),
        Limit("sha256, 1 core", sha, "GiB/s", "hashlib, 8 MiB updates"),
        Limit("sha256, 2-core limit", sha * min(2, os.cpu_count() or 1), "GiB/s", "2 x 1 core"),
    ]
