"""The parent side: run every measurement in a child process, interleaved, with timeouts.

For each workload and each repeat, every contender runs once, in an order rotated by one
place per repeat, so slow drifts of the machine (another process, heat) spread over all
contenders. Each run is a fresh interpreter in its own session:

- a child that runs past the workload's timeout is killed with its whole process group
  (its pool's workers and forkserver included) and the contender is marked failed;
- after each child ends, processes it left behind in its group are given a short grace
  period, then killed and counted as leaked;
- then workerbridge's shared-memory segments (``/dev/shm/wb-<pid>-...``) made by the child
  or its workers and still there are listed and removed;
- a contender that failed once is not run again in that workload;
- nor is one whose run ended in an outcome rather than a time (``is_final``: the pool broke,
  the result never came, the library has no such feature), which does not vary by repeat.

A metric is a number, or a word for such an outcome (``"hangs"``, ``"broken"``...).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._child import MARKER

__all__ = ["Outcome", "Run", "run_workload"]

LEAK_GRACE = 2.0  # seconds a child's leftovers get to exit by themselves
SHM_DIR = "/dev/shm"
SHM_PREFIX = "wb-"  # workerbridge names its segments wb-<creator pid>-...


@dataclass
class Run:
    ok: bool
    metrics: dict[str, float | str]
    error: str
    seconds: float
    leaked: int
    shm_left: list[str] = field(default_factory=list)  # segments left in /dev/shm, removed


@dataclass
class Outcome:
    """Every run of one contender in one workload."""

    runs: list[Run] = field(default_factory=list)

    @property
    def failure(self) -> str | None:
        for run in self.runs:
            if not run.ok:
                return run.error
        return None

    @property
    def leaked(self) -> int:
        return sum(run.leaked for run in self.runs)

    @property
    def shm_left(self) -> list[str]:
        return [name for run in self.runs for name in run.shm_left]

    def values(self, key: str) -> list[float]:
        """The numbers measured for ``key`` (outcomes in words left out)."""
        return [
            value
            for run in self.runs
            if run.ok and isinstance(value := run.metrics.get(key), int | float)
        ]

    def median(self, key: str) -> float | None:
        """The median of the numbers, if every run measured one."""
        if self.failure is not None or self.word(key) is not None:
            return None
        values = self.values(key)
        return statistics.median(values) if values else None

    def word(self, key: str) -> str | None:
        """The outcome in words if some run gave one instead of a number for ``key``:
        ``"hangs"``, or ``"hangs (2/5 runs)"`` when other runs measured a time."""
        words = [
            value for run in self.runs if run.ok and isinstance(value := run.metrics.get(key), str)
        ]
        if not words:
            return None
        common = max(set(words), key=words.count)
        runs = sum(run.ok and key in run.metrics for run in self.runs)
        return (
            common
            if words.count(common) == runs
            else f"{common} ({words.count(common)}/{runs} runs)"
        )


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _reap_group(pgid: int) -> int:
    """Wait a little for what the child left in its group, then kill it; count the kills."""
    deadline = time.monotonic() + LEAK_GRACE
    members = _group_members(pgid)
    while members and time.monotonic() < deadline:
        time.sleep(0.05)
        members = _group_members(pgid)
    for pid in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(members)


def _shm_left(pids: Sequence[int]) -> list[str]:
    """workerbridge's segments (``wb-<creator pid>-...``) that processes ``pids``, all gone
    now, left in /dev/shm; they are removed (the run's own, so nothing else's is touched:
    other programs on the machine may use workerbridge at the same time)."""
    prefixes = tuple(f"{SHM_PREFIX}{pid}-" for pid in pids)
    try:
        names = sorted(n for n in os.listdir(SHM_DIR) if n.startswith(prefixes))
    except OSError:
        return []
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(SHM_DIR, name))
    return names


def _last_line(data: bytes) -> str:
    lines = [line for line in data.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else ""


def run_child(
    workload: str, contender: str, params: dict[str, Any], timeout: float, root: Path
) -> Run:
    spec = json.dumps({"workload": workload, "contender": contender, "params": params})
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    # Files, not pipes: a leftover worker holding a pipe open would block the read.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench._child", spec],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        timed_out = False
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except BaseException:  # Ctrl-C: leave nothing behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        seconds = time.perf_counter() - t0
        leaked = _reap_group(proc.pid)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    result = None
    for line in reversed(stdout.decode(errors="replace").splitlines()):
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER) :])
            break
    # The pids the child reported (itself and its workers), else at least the child's own.
    shm_left = _shm_left(result.get("pids", [proc.pid]) if result else [proc.pid])
    if timed_out:
        return Run(False, {}, f"timed out after {timeout:g} s", seconds, leaked, shm_left)
    if result is not None:
        if result["ok"]:
            return Run(True, result["metrics"], "", seconds, leaked, shm_left)
        return Run(False, {}, result["error"], seconds, leaked, shm_left)
    reason = _last_line(stderr) or f"exit code {proc.returncode}"
    return Run(False, {}, f"no result ({reason})", seconds, leaked, shm_left)


def run_workload(
    workload: str,
    params: dict[str, Any],
    contenders: Sequence[str],
    repeats: int,
    timeout: float,
    root: Path,
    progress: Callable[[int, str, Run], None],
    is_final: Callable[[Run], bool] = lambda run: False,
) -> dict[str, Outcome]:
    outcomes = {name: Outcome() for name in contenders}
    final: set[str] = set()
    for repeat in range(repeats):
        shift = repeat % len(contenders)
        for name in [*contenders[shift:], *contenders[:shift]]:
            outcome = outcomes[name]
            if outcome.failure is not None or name in final:
                continue
            run = run_child(workload, name, {**params, "repeat": repeat}, timeout, root)
            outcome.runs.append(run)
            if run.ok and is_final(run):
                final.add(name)
            progress(repeat, name, run)
    return outcomes
