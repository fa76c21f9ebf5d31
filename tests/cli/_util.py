"""Running ``workerbridge`` as a user does: a subprocess with pipes, or with its stderr (and
stdin) on a pseudo-terminal, in a session of its own so that SIGINT can go to its whole
process group, as Ctrl-C does.

Every run samples the processes of the child's session while it runs (the command, its
workers, the forkserver), so that afterwards a test can check that none of them is left
and that no shared-memory segment any of them created (``/dev/shm/wb-<pid>-...``) remains.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

#: Bound on every wait: generous, it only turns a hang into a failure.
WAIT_S = 45.0
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def cli_env(**extra: str) -> dict[str, str]:
    """The child's environment: no key in the environment unless a test sets one, no
    debug tracebacks, a terminal type rich knows."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORKERBRIDGE_KEY", "WORKERBRIDGE_DEBUG", "NO_COLOR", "FORCE_COLOR")
        and not k.startswith("PYTEST_")
    }
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
    env.update(extra)
    return env


def _session_pids(sid: int) -> set[int]:
    pids = set()
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.info["pid"]) == sid:
                pids.add(proc.info["pid"])
        except (ProcessLookupError, PermissionError, OSError):
            continue
    return pids


class _Sampler:
    """Collects the pids of a session while it runs (every 10 ms: workers live for the
    whole command, far longer than that)."""

    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.pids: set[int] = {sid}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):  # sampling, not synchronising
            self.pids |= _session_pids(self.sid)

    def stop(self) -> set[int]:
        self._stop.set()
        self._thread.join()
        return self.pids


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: str
    pids: set[int] = field(default_factory=set)

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "workerbridge", *args]


def run_cli(
    *args: str,
    cwd: Path,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = WAIT_S,
) -> Result:
    """``workerbridge ARGS`` with pipes; waits for it and for every process of its
    session to be gone."""
    proc = subprocess.Popen(
        command(*args),
        cwd=cwd,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else cli_env(),
        start_new_session=True,
    )
    sampler = _Sampler(proc.pid)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        pids = sampler.stop()
    return Result(proc.returncode, out, err.decode(errors="replace"), pids)


class PtyRun:
    """``workerbridge ARGS`` with stderr and stdin on a pseudo-terminal (120x40) and
    stdout to a file (or the terminal too, with ``stdout_to_pty``)."""

    def __init__(
        self,
        *args: str,
        cwd: Path,
        stdout_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self._stdout_file = open(stdout_path, "wb") if stdout_path is not None else None  # noqa: SIM115
        self.proc = subprocess.Popen(
            command(*args),
            cwd=cwd,
            stdin=slave,
            stdout=self._stdout_file if self._stdout_file is not None else slave,
            stderr=slave,
            env=env if env is not None else cli_env(),
            start_new_session=True,
        )
        os.close(slave)
        self.sampler = _Sampler(self.proc.pid)
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.05)
                if not ready:
                    if self.proc.poll() is not None and not self._drain():
                        return
                    continue
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self._buffer += chunk

    def _drain(self) -> bool:
        ready, _, _ = select.select([self.master], [], [], 0)
        return bool(ready)

    @property
    def output(self) -> str:
        """What the child wrote on the terminal so far."""
        with self._lock:
            return self._buffer.decode(errors="replace")

    @property
    def text(self) -> str:
        """``output`` without terminal escapes and carriage returns."""
        return ANSI.sub("", self.output)

    def wait_for(self, pattern: str, timeout: float = WAIT_S) -> re.Match[str]:
        """Wait until the terminal output matches ``pattern`` (a regex)."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.text)
            if match is not None:
                return match
            if self.proc.poll() is not None:
                self._reader.join(5)
                match = regex.search(self.text)
                if match is not None:
                    return match
                raise AssertionError(
                    f"exited ({self.proc.returncode}) before {pattern!r} appeared:\n{self.text}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} did not appear in {timeout} s:\n{self.text}")
            time.sleep(0.01)  # polling the terminal output, not synchronising

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the whole process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float = WAIT_S) -> Result:
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            pids = self.sampler.stop()
            self._reader.join(5)
            os.close(self.master)
            if self._stdout_file is not None:
                self._stdout_file.close()
        return Result(code, b"", self.text, pids)


def leftovers(result: Result, *folders: Path) -> list[str]:
    """What the run left behind: live processes of its session, shared-memory segments
    any of its processes created, temporary files in ``folders``."""
    found: list[str] = []
    deadline = time.monotonic() + 5.0
    while True:
        alive = {pid for pid in result.pids if _alive(pid)}
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.02)  # workers are reaped asynchronously after the parent exits
    found += [f"process {pid} ({_name(pid)})" for pid in sorted(alive)]
    try:
        names = os.listdir("/dev/shm")
    except FileNotFoundError:
        names = []
    prefixes = tuple(f"wb-{pid}-" for pid in result.pids)
    found += [f"/dev/shm/{name}" for name in names if name.startswith(prefixes)]
    for folder in folders:
        found += [
            str(p)
            for p in folder.rglob("*")
            if p.name.endswith(".wb-tmp") or p.name.startswith(".wb-") or "wb-tmp" in p.name
        ]
    return found


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _name(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())[:80]
    except psutil.Error:
        return "?"


def workerbridge_tmp_dirs(tmpdir: Path) -> list[Path]:
    """The command's private temporary folders left in ``tmpdir`` (``$TMPDIR``)."""
    return sorted(tmpdir.glob("workerbridge-*"))


def one_error_line(result: Result) -> str:
    """The single ``workerbridge: error: ...`` line of a failed run (asserts the shape)."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.err_lines
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("workerbridge: error: "), result.stderr
    return lines[0]


def tree(folder: Path) -> list[str]:
    """The relative paths of the files under ``folder``, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def mixed_bytes(size: int, seed: int = 1) -> bytes:
    """``size`` bytes of mixed content: text-like lines, random bytes and zeros."""
    import random

    rng = random.Random(seed)
    words = [bytes(rng.choices(b"etaoinshrdlu", k=rng.randint(2, 8))) for _ in range(300)]
    out = bytearray()
    while len(out) < size:
        kind = rng.random()
        if kind < 0.5:
            out += b" ".join(rng.choices(words, k=4000)) + b"\n"
        elif kind < 0.8:
            out += os.urandom(rng.randint(10_000, 200_000))
        else:
            out += bytes(rng.randint(10_000, 100_000))
    return bytes(out[:size])
