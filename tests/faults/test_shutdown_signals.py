"""S31-S34: shutdown under load, a pool left open at exit, the parent SIGKILLed, Ctrl-C.

The last three run a small Python program in a child process (``_run_script``), since what
they test is what happens to a whole program: its exit, its death, its terminal's Ctrl-C.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from workerbridge import PoolClosedError, TaskHandle, WorkerCrashedError, WorkerPool
from workerbridge.testing import _faults as faults, tasks

from ._util import START_METHODS, WAIT_S, count, figure, wait_for_path, wait_gone, wait_until

#: RELIABILITY.md S31: close/terminate with 100 running-or-queued 1 s tasks < 5 s. CI bound 3x.
SHUTDOWN_TARGET, SHUTDOWN_BOUND = "< 5 s", 15.0


# ---------------------------------------------------------------------------------------
# S31: shutdown under load.


def _loaded_pool(start_method: str, n_tasks: int = 100) -> tuple[WorkerPool, list[TaskHandle[Any]]]:
    pool = WorkerPool(4, start_method=start_method)
    assert pool.wait_ready(WAIT_S)
    handles = [pool.submit(tasks.sleep, 1.0) for _ in range(n_tasks)]
    wait_until(lambda: pool.stats().running >= 4, "every worker to be busy")
    return pool, handles


@pytest.mark.parametrize("mode", ["close-timeout", "close", "terminate"])
@pytest.mark.parametrize("start_method", START_METHODS)
def test_shutdown_under_load_is_bounded_and_resolves_every_handle(
    start_method: str, mode: str
) -> None:
    pool, handles = _loaded_pool(start_method)
    before = time.monotonic()
    if mode == "close-timeout":
        pool.close(timeout=0.5)
    elif mode == "close":
        pool.close()
    else:
        pool.terminate()
    took = time.monotonic() - before
    assert all(h.done() for h in handles)  # at once: close() and terminate() return after
    outcomes = {"result": 0, "closed": 0}
    for handle in handles:
        error = handle.exception(0)
        if error is None:
            assert handle.result(0) == 1.0
            outcomes["result"] += 1
        else:
            assert isinstance(error, PoolClosedError), error
            outcomes["closed"] += 1
    stats = pool.stats()
    assert stats.state == "closed"
    assert all(w.state == "dead" for w in stats.workers)
    if mode == "close":
        # The running tasks finished; the ones waiting (in the queue or a worker's pipe)
        # were failed.
        assert 4 <= outcomes["result"] < 100
    else:
        assert outcomes["result"] <= 8  # at most what was running (and about to finish)
    with pytest.raises(PoolClosedError):
        pool.submit(tasks.noop)
    test = f"S31 {start_method} {mode}"
    count(test, "tasks that finished", outcomes["result"])
    figure(test, "shutdown duration, 100 x 1 s tasks", took, SHUTDOWN_TARGET, SHUTDOWN_BOUND)


@pytest.mark.parametrize("start_method", START_METHODS)
def test_a_crash_during_close_still_resolves_every_handle(
    start_method: str, tmp_path: Path
) -> None:
    started = str(tmp_path / "started")
    pool = WorkerPool(2, start_method=start_method)
    assert pool.wait_ready(WAIT_S)
    victim = pool.submit(tasks.block, str(tmp_path / "never"), started)
    others = [pool.submit(tasks.sleep, 0.2) for _ in range(10)]
    wait_for_path(started)
    pid = next(w.pid for w in pool.stats().workers if w.running and w.pid)
    closer = threading.Thread(target=pool.close, args=(10.0,))
    closer.start()
    wait_until(lambda: pool.stats().state != "running", "close() to begin")
    os.kill(pid, signal.SIGKILL)  # the worker close() is waiting for dies
    closer.join(WAIT_S)
    assert not closer.is_alive()
    error = victim.exception(0)
    assert isinstance(error, WorkerCrashedError | PoolClosedError), error
    for handle in others:
        assert handle.done()
        assert handle.exception(0) is None or isinstance(handle.exception(0), PoolClosedError)
    assert pool.stats().state == "closed"


@pytest.mark.parametrize("how", ["close", "terminate"])
def test_submit_racing_shutdown_gets_a_handle_or_pool_closed(how: str) -> None:
    pool = WorkerPool(2)
    assert pool.wait_ready(WAIT_S)
    handles: list[TaskHandle[int]] = []
    refused = threading.Event()
    failure: list[BaseException] = []

    def submitter() -> None:
        try:
            for i in range(100_000):
                try:
                    handles.append(pool.submit(tasks.square, i))
                except PoolClosedError:
                    refused.set()
                    return
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=submitter)
    thread.start()
    wait_until(lambda: len(handles) >= 200, "the submitter to get going")
    pool.close() if how == "close" else pool.terminate()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    assert not failure, failure
    assert refused.is_set()
    for i, handle in enumerate(handles):
        assert handle.done(), i
        error = handle.exception(0)
        assert error is None or isinstance(error, PoolClosedError), error
        if error is None:
            assert handle.result(0) == i * i


def test_dropped_pool_fails_its_pending_tasks_promptly(tmp_path: Path) -> None:
    """S32: a pool garbage-collected with tasks pending is terminated by its finalizer."""
    pool = WorkerPool(1)
    assert pool.wait_ready(WAIT_S)
    pending = [pool.submit(tasks.sleep, 30.0) for _ in range(3)]
    del pool
    gc.collect()
    for handle in pending:
        assert isinstance(handle.exception(WAIT_S), PoolClosedError)


# ---------------------------------------------------------------------------------------
# Programs run in a child process.


def _run_script(tmp_path: Path, source: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _read_json_line(proc: subprocess.Popen[str]) -> Any:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"the program ended early: {proc.communicate(timeout=WAIT_S)}"
    return json.loads(line)


EXIT_WITHOUT_CLOSE = """
    import json, sys
    from workerbridge import WorkerPool
    from workerbridge.testing import tasks

    if __name__ == "__main__":
        pool = WorkerPool(2, start_method=sys.argv[1])
        pool.wait_ready(30)
        handles = [pool.submit(tasks.sleep, 30.0) for _ in range(6)]  # 2 run, 4 wait
        while pool.stats().running < 2:
            pass
        print(json.dumps([w.pid for w in pool.stats().workers]), flush=True)
        # ... and the program ends, the pool still open and busy.
"""

#: RELIABILITY.md S32: the interpreter-exit test finishes < 10 s. CI bound: 2x (a hang
#: would be far beyond).
EXIT_TARGET, EXIT_BOUND = "< 10 s", 20.0


@pytest.mark.parametrize("start_method", START_METHODS)
def test_exit_with_an_open_busy_pool_is_quick_and_quiet(start_method: str, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = _run_script(tmp_path, EXIT_WITHOUT_CLOSE, start_method)
    pids = _read_json_line(proc)
    printed = time.monotonic()
    out, err = proc.communicate(timeout=60)
    exited = time.monotonic()
    assert proc.returncode == 0
    assert err == "", err
    assert out == ""
    wait_gone(pids, timeout=5.0)
    count(f"S32 {start_method}", "whole program (s)", round(exited - started, 2))
    figure(
        f"S32 {start_method}", "exit after the last line", exited - printed, EXIT_TARGET, EXIT_BOUND
    )


PARENT_KILLED = """
    import json, os, signal, sys
    from workerbridge import WorkerPool
    from workerbridge.testing import _faults as faults

    if __name__ == "__main__":
        pool = WorkerPool(3, start_method=sys.argv[1])
        pool.wait_ready(30)
        # 1 MiB arguments travel through shared memory: the running tasks hold segments.
        data = b"\x17" * (1 << 20)
        handles = [pool.submit(faults.hold_bytes, data, 60.0) for _ in range(10)]  # 3 run
        while pool.stats().running < 3:
            pass
        print(json.dumps([w.pid for w in pool.stats().workers]), flush=True)
        sys.stdin.readline()  # the test has looked at our processes
        os.kill(os.getpid(), signal.SIGKILL)
"""

#: RELIABILITY.md S33: every worker gone <= 2 s after the parent dies. CI bound: 3x.
ORPHAN_TARGET, ORPHAN_BOUND = "<= 2 s", 6.0


@pytest.mark.parametrize("start_method", START_METHODS)
def test_workers_exit_when_the_parent_is_sigkilled(start_method: str, tmp_path: Path) -> None:
    proc = _run_script(tmp_path, PARENT_KILLED, start_method)
    workers = _read_json_line(proc)
    descendants = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    assert set(workers) <= set(descendants)
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    proc.wait(WAIT_S)
    died = time.monotonic()
    assert proc.returncode == -signal.SIGKILL
    wait_gone(workers, timeout=ORPHAN_BOUND * 2)
    workers_gone = time.monotonic() - died
    # The program's other helpers (multiprocessing's fork server, resource tracker) too.
    wait_gone(descendants, timeout=ORPHAN_BOUND * 2)
    everything_gone = time.monotonic() - died
    proc.communicate(timeout=WAIT_S)
    # Shared-memory segments of the dead program (named after their creator's pid): the
    # README's design removes them when a pool next starts (RELIABILITY.md S33 asks for
    # none after 5 s; what is left meanwhile is reported).
    dead = {proc.pid, *descendants}

    def orphans() -> list[str]:
        return [
            name
            for name in os.listdir("/dev/shm")
            if name.startswith("wb-")
            and name.split("-")[1].isdigit()
            and int(name.split("-")[1]) in dead
        ]

    left = len(orphans())
    with WorkerPool(1, start_method=start_method) as pool:
        assert pool.wait_ready(WAIT_S)
    assert orphans() == []
    test = f"S33 {start_method}"
    figure(
        test, "workers gone after the parent's SIGKILL", workers_gone, ORPHAN_TARGET, ORPHAN_BOUND
    )
    figure(test, "every descendant gone", everything_gone, ORPHAN_TARGET, ORPHAN_BOUND)
    count(test, "segments of the dead program left until the next pool starts", left)


CTRL_C_DURING_MAP = """
    import sys, time
    from workerbridge import WorkerPool
    from workerbridge.testing import _faults as faults

    if __name__ == "__main__":
        method, ledger, caught = sys.argv[1:4]
        with WorkerPool(2, start_method=method) as pool:
            items = [(ledger, i, 0.02) for i in range(1000)]
            try:
                for _ in pool.map(faults.stamp_and_sleep, items, chunksize=1):
                    pass
            except KeyboardInterrupt:
                faults.stamp(caught)
                # Graceful: anything a worker had been sent and not told to skip would run
                # (and be logged) before its worker stops. Bounded, so that the known bug
                # below (replies lost after the interrupt) cannot hang the program.
                pool.close(timeout=5.0)
                sys.exit(0)
        sys.exit(1)  # the map finished: the interrupt came too late
"""

DECODER_BUG = (
    "a KeyboardInterrupt raised while the caller's thread runs the I/O loop (Reactor.run_until, "
    "leader/follower) inside FrameDecoder.feed (src/workerbridge/_protocol/_codec.py) skips "
    "view.release() (only ProtocolError is handled), so the interrupted frame, kept alive by "
    "the exception's traceback, still exports the decoder's bytearray: every later feed for "
    "that worker raises BufferError in the I/O thread ('error in the I/O thread' on stderr), "
    "its replies are lost, and close() without a timeout waits for them forever (seen as a "
    "hang of the Ctrl-C test; the error shows in ~3% of Ctrl-C runs with forkserver)"
)
DECODER_BUG_SIGNATURE = "BufferError: Existing exports of data"

#: RELIABILITY.md S34: KeyboardInterrupt in the caller <= 200 ms, exit <= 5 s. CI bound: 5x
#: and 3x.
KI_TARGET, KI_BOUND = "<= 200 ms", 1.0
CTRL_C_EXIT_TARGET, CTRL_C_EXIT_BOUND = "<= 5 s", 15.0


def _ledger(path: str) -> list[tuple[int, float]]:
    try:
        with open(path) as f:
            return [(int(i), float(t)) for i, t in (line.split() for line in f)]
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("start_method", START_METHODS)
def test_ctrl_c_during_map_interrupts_at_once_and_starts_nothing_after(
    start_method: str, tmp_path: Path
) -> None:
    ledger, caught = str(tmp_path / "ledger"), str(tmp_path / "caught")
    # Its own session and process group: Ctrl-C in a terminal goes to the whole foreground
    # group (the workers and multiprocessing's helpers included), and so does our SIGINT.
    proc = _run_script(
        tmp_path, CTRL_C_DURING_MAP, start_method, ledger, caught, start_new_session=True
    )
    try:
        wait_until(lambda: len(_ledger(ledger)) >= 20, "the map to be under way", timeout=30)
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        exited = time.monotonic()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    if DECODER_BUG_SIGNATURE in err:
        pytest.xfail(f"the interrupt hit the I/O loop inside FrameDecoder.feed: {DECODER_BUG}")
    assert proc.returncode == 0, (proc.returncode, err)
    assert err == "", err  # no worker (or parent) traceback
    interrupted = faults.read_stamp(caught)
    starts = _ledger(ledger)
    late = [i for i, t in starts if t > interrupted]
    assert late == [], f"tasks started after the KeyboardInterrupt: {late}"
    assert len(starts) < 1000
    test = f"S34 {start_method}"
    count(test, "tasks started before the interrupt", len(starts))
    figure(
        test, "SIGINT -> KeyboardInterrupt in the caller", interrupted - sent, KI_TARGET, KI_BOUND
    )
    figure(test, "SIGINT -> program exited", exited - sent, CTRL_C_EXIT_TARGET, CTRL_C_EXIT_BOUND)


def test_interrupt_while_decoding_replies_leaves_the_channel_usable() -> None:
    """The root cause of the Ctrl-C failure above, made deterministic: a KeyboardInterrupt
    raised (by a trace function, as the SIGINT handler would) in the middle of decoding a
    frame, with the caller still holding the exception (as an ``except KeyboardInterrupt``
    block does while it closes the pool). The next bytes from that worker must decode."""
    from workerbridge._protocol import FrameEncoder, Progress, from_worker_decoder

    frame = FrameEncoder(1 << 20).encode(Progress(1, 1, 1.0, 2.0))
    decoder = from_worker_decoder()

    def local(code_frame: Any, event: str, _arg: Any) -> Any:
        if event == "line" and "view" in code_frame.f_locals:
            raise KeyboardInterrupt  # Ctrl-C, between two bytecodes of the decoding loop
        return local

    def tracer(code_frame: Any, _event: str, _arg: Any) -> Any:
        return local if code_frame.f_code.co_name == "feed" else None

    interrupted: BaseException | None = None
    sys.settrace(tracer)
    try:
        decoder.feed(frame)
    except KeyboardInterrupt as exc:
        interrupted = exc
    finally:
        sys.settrace(None)
    assert interrupted is not None
    assert decoder.feed(frame) == [Progress(1, 1, 1.0, 2.0)] * 2
