"""S04: a failure at every stage of a task's trip, in every way, with one exact error each.

A task travels: the parent pickles the request -> the worker unpickles it -> the task runs
-> the worker pickles the result -> the parent unpickles it. At each stage an object whose
pickling (``ExplodesOnPickle``) or unpickling (``ExplodesOnUnpickle``) misbehaves, or the
task itself, fails in one of four ways: an exception, ``sys.exit``, ``os._exit(0)``,
SIGSEGV. ``CELLS`` below is the table of what the caller must get for each; every cell runs
under forkserver and spawn, with the task submitted directly and from inside a done-callback
of another handle (run by the pool's I/O thread). After every cell the pool serves a canary
task, from the same worker when none died, from its replacement otherwise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from workerbridge import (
    RemoteTaskError,
    RemoteTraceback,
    SerializationError,
    TaskHandle,
    WorkerCrashedError,
    WorkerPool,
)
from workerbridge.testing import _faults as faults, tasks

from ._util import START_METHODS, WAIT_S, done_time, figure, percentile, wait_until

STAGES = ("parent-encode", "worker-decode", "run", "worker-encode", "parent-decode")


@dataclass(frozen=True)
class Expect:
    """What the caller gets: an error of exactly ``type`` with these ``attrs``; ``in_message``
    must be part of its text; ``by_submit`` if ``submit()`` itself raises it (nothing was
    queued); ``crash`` if the worker dies (so the canary runs on a new one)."""

    type: type[BaseException]
    attrs: dict[str, Any] = field(default_factory=dict)
    in_message: str = ""
    by_submit: bool = False
    crash: bool = False
    bug: str = ""  # a known bug in src: the cell is a strict xfail with this reason


@dataclass(frozen=True)
class NotApplicable:
    reason: str


PARENT_DIES = "would end the test process itself: the parent's own code is the one that fails"
SYSEXIT_ESCAPES_SUBMIT = (
    "SystemExit raised by an argument's __reduce__ escapes submit() instead of becoming "
    "SerializationError: WorkerPool._make_task (src/workerbridge/_pool/_pool.py) catches only "
    "Exception around pickle.dumps/cloudpickle.dumps of the arguments, whereas the other three "
    "pickling stages catch BaseException (commit bfe9a0c)"
)


def _crashed(exitcode: int, signal_name: str | None) -> Expect:
    return Expect(
        WorkerCrashedError,
        {"exitcode": exitcode, "signal_name": signal_name, "reason": "died", "attempts": 1},
        crash=True,
    )


FAULT = "workerbridge.testing._faults.FaultError"

#: The crash matrix: (stage, how) -> the exact outcome.
CELLS: dict[tuple[str, str], Expect | NotApplicable] = {
    # The parent pickles the arguments inside submit(): the caller gets the error at once.
    ("parent-encode", "raise"): Expect(
        SerializationError, in_message="injected fault", by_submit=True
    ),
    ("parent-encode", "sysexit"): Expect(SerializationError, by_submit=True),
    ("parent-encode", "exit0"): NotApplicable(f"os._exit(0) in submit() {PARENT_DIES}"),
    ("parent-encode", "segv"): NotApplicable(f"SIGSEGV in submit() {PARENT_DIES}"),
    # The worker cannot unpickle the arguments: bad input, the worker lives on ...
    ("worker-decode", "raise"): Expect(SerializationError, in_message="FaultError"),
    ("worker-decode", "sysexit"): Expect(SerializationError, in_message="SystemExit"),
    # ... unless unpickling ends the process: then it is a crash, even with exit code 0.
    ("worker-decode", "exit0"): _crashed(0, None),
    ("worker-decode", "segv"): _crashed(-11, "SIGSEGV"),
    # The task raises (SystemExit too is the task's error) or kills its worker.
    ("run", "raise"): Expect(RemoteTaskError, {"remote_type": FAULT}),
    ("run", "sysexit"): Expect(RemoteTaskError, {"remote_type": "builtins.SystemExit"}),
    ("run", "exit0"): _crashed(0, None),
    ("run", "segv"): _crashed(-11, "SIGSEGV"),
    # The worker cannot pickle the result.
    ("worker-encode", "raise"): Expect(SerializationError, in_message="FaultError"),
    ("worker-encode", "sysexit"): Expect(SerializationError, in_message="SystemExit"),
    ("worker-encode", "exit0"): _crashed(0, None),
    ("worker-encode", "segv"): _crashed(-11, "SIGSEGV"),
    # The parent cannot unpickle the result (on its I/O thread or a waiting caller's).
    ("parent-decode", "raise"): Expect(SerializationError, in_message="injected fault"),
    ("parent-decode", "sysexit"): Expect(SerializationError),
    ("parent-decode", "exit0"): NotApplicable(f"os._exit(0) while decoding a result {PARENT_DIES}"),
    ("parent-decode", "segv"): NotApplicable(f"SIGSEGV while decoding a result {PARENT_DIES}"),
}


def _submitter(pool: WorkerPool, stage: str, how: str) -> Callable[[], TaskHandle[Any]]:
    if stage == "parent-encode":
        return lambda: pool.submit(faults.accept, faults.ExplodesOnPickle(how))
    if stage == "worker-decode":
        return lambda: pool.submit(faults.accept, faults.ExplodesOnUnpickle(how))
    if stage == "run":
        return lambda: pool.submit(faults.run_and_misbehave, how)
    if stage == "worker-encode":
        return lambda: pool.submit(faults.return_explodes_on_pickle, how)
    assert stage == "parent-decode"
    return lambda: pool.submit(faults.return_explodes_on_unpickle, how)


def _from_callback(
    pool: WorkerPool, submit: Callable[[], TaskHandle[Any]], release: str
) -> TaskHandle[Any] | BaseException:
    """Call ``submit`` from a done-callback of another task's handle, run by the pool's I/O
    thread (this thread never waits on that handle, so it never runs the loop itself)."""
    box: list[TaskHandle[Any] | BaseException] = []

    def callback(_handle: object) -> None:
        try:
            box.append(submit())
        except BaseException as exc:  # what submit() raised, SystemExit included
            box.append(exc)

    gate = pool.submit(tasks.block, release)
    gate.add_done_callback(callback)
    tasks.touch(release)
    wait_until(lambda: bool(box), "the done-callback to submit")
    return box[0]


def _params() -> list[Any]:
    params = []
    for method in START_METHODS:
        for via in ("direct", "callback"):
            for (stage, how), expect in CELLS.items():
                marks: list[pytest.MarkDecorator] = []
                if isinstance(expect, NotApplicable):
                    marks.append(pytest.mark.skip(reason=f"not applicable: {expect.reason}"))
                elif expect.bug:
                    marks.append(pytest.mark.xfail(reason=expect.bug, strict=True))
                params.append(
                    pytest.param(
                        method, via, stage, how, id=f"{method}-{via}-{stage}-{how}", marks=marks
                    )
                )
    return params


def test_matrix_covers_every_stage_and_way() -> None:
    assert set(CELLS) == {(s, h) for s in STAGES for h in faults.HOWS}
    applicable = [c for c in CELLS.values() if isinstance(c, Expect)]
    assert len(applicable) == 16


@pytest.mark.parametrize(("start_method", "via", "stage", "how"), _params())
def test_crash_matrix(start_method: str, via: str, stage: str, how: str, tmp_path: Any) -> None:
    expect = CELLS[(stage, how)]
    assert isinstance(expect, Expect)
    # debug=True: a task's own error carries the remote traceback as its __cause__.
    with WorkerPool(1, start_method=start_method, debug=True) as pool:
        pid = pool.submit(faults.worker_pid).result(WAIT_S)
        submit = _submitter(pool, stage, how)
        started = time.monotonic()
        outcome: TaskHandle[Any] | BaseException
        if via == "direct":
            try:
                outcome = submit()
            except BaseException as exc:
                outcome = exc
        else:
            outcome = _from_callback(pool, submit, str(tmp_path / "release"))

        error: BaseException | None
        if expect.by_submit:
            assert isinstance(outcome, BaseException), "submit() did not raise"
            error = outcome
            task_id = None
        else:
            assert isinstance(outcome, TaskHandle), f"submit() raised {outcome!r}"
            error = outcome.exception(WAIT_S)
            task_id = outcome.id
        elapsed = time.monotonic() - started
        assert type(error) is expect.type, f"expected {expect.type.__name__}, got {error!r}"
        for name, value in expect.attrs.items():
            assert getattr(error, name) == value, (name, error)
        assert expect.in_message in str(error)
        if isinstance(error, RemoteTaskError):
            assert isinstance(error.__cause__, RemoteTraceback)
            assert "run_and_misbehave" in error.__cause__.tb
        if expect.crash:
            assert isinstance(error, WorkerCrashedError)
            assert error.pid == pid
            assert error.task_id == task_id
            assert str(pid) in str(error)
        assert elapsed < WAIT_S / 2  # no cell comes anywhere near a hang

        # The pool still serves: the same worker, or (after a crash) its replacement.
        canary = pool.submit(faults.worker_pid).result(WAIT_S)
        assert (canary != pid) is expect.crash
        stats = pool.stats()
        assert stats.state == "running"
        assert stats.restarts == (1 if expect.crash else 0)
        assert os.getpid() not in (pid, canary)


# ---------------------------------------------------------------------------------------
# S02: native crashes inside the task.

#: RELIABILITY.md S02: detection (crash -> handle failed) p99 <= 200 ms, from the process
#: sentinel. CI bound: 5x.
DETECTION_TARGET, DETECTION_BOUND = "p99 <= 200 ms", 1.0
NATIVE = {
    "segv": (-11, "SIGSEGV"),  # faulthandler._sigsegv()
    "abort": (-6, "SIGABRT"),  # os.abort()
    "null": (-11, "SIGSEGV"),  # ctypes.string_at(0)
}


def _native_crashes(start_method: str, how: str, repetitions: int, tmp_path: Any) -> None:
    exitcode, signal_name = NATIVE[how]
    release, started = str(tmp_path / "release"), str(tmp_path / "started")
    latencies = []
    with WorkerPool(2, start_method=start_method) as pool:
        assert pool.wait_ready(WAIT_S)
        # A task on the other worker, running through every crash.
        bystander = pool.submit(tasks.block, release, started)
        tasks.wait_for_file(started, WAIT_S)
        for i in range(repetitions):
            assert pool.wait_ready(WAIT_S)  # the replacement: crashes never queue behind
            victim = next(w.pid for w in pool.stats().workers if not w.running)
            stamp = str(tmp_path / f"crash-{i}")
            handle = pool.submit(faults.crash_stamped, stamp, how)
            done = done_time(handle)
            error = handle.exception(WAIT_S)
            assert type(error) is WorkerCrashedError, error
            assert error.signal_name == signal_name
            assert error.exitcode == exitcode
            assert error.pid == victim
            assert error.reason == "died"
            assert signal_name in str(error)
            assert str(victim) in str(error)
            latencies.append(done[0] - faults.read_stamp(stamp))
            assert not bystander.done()
        tasks.touch(release)
        assert bystander.result(WAIT_S) == "released"
        assert pool.submit(tasks.add, 2, 3).result(WAIT_S) == 5
        wait_until(lambda: pool.stats().restarts == repetitions, "every worker replaced")
    test = f"S02 {start_method} {how} x{repetitions}"
    figure(test, "crash detection latency p50", percentile(latencies, 50), "-", DETECTION_BOUND)
    figure(
        test,
        "crash detection latency p99",
        percentile(latencies, 99),
        DETECTION_TARGET,
        DETECTION_BOUND,
    )


@pytest.mark.parametrize("how", sorted(NATIVE))
@pytest.mark.parametrize("start_method", START_METHODS)
def test_native_crash_fails_only_its_task(start_method: str, how: str, tmp_path: Any) -> None:
    _native_crashes(start_method, how, 3, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("how", sorted(NATIVE))
@pytest.mark.parametrize("start_method", START_METHODS)
def test_native_crash_soak(start_method: str, how: str, tmp_path: Any) -> None:
    """RELIABILITY.md S02 at full size: 100 repetitions per signal."""
    _native_crashes(start_method, how, 100, tmp_path)
