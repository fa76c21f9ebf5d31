"""The worker's control block (cancel ring, started, heartbeat) and the task's context.

Both are plain in-memory objects here: ``ControlBlock.local()`` and a ``TaskContext`` with
fake callables. Time comes from a fake clock patched into the module under test.
"""

from __future__ import annotations

import math
import types

import pytest

from workerbridge import TaskCancelledError, TaskContext, ValidationError, current_task
from workerbridge._worker import _context, _control
from workerbridge._worker._control import MAX_IN_FLIGHT, RING, SLOTS, ControlBlock

# ------------------------------------------------------------------ control block


def test_a_fresh_block_is_all_zero() -> None:
    block = ControlBlock.local()
    assert block.last_beat_ns() == 0
    assert not block.has_started(0)
    assert not any(block.is_cancelled(seq) for seq in range(2 * RING))


def test_the_ring_is_large_enough_for_every_request_in_flight() -> None:
    assert MAX_IN_FLIGHT <= RING
    assert SLOTS > RING


def test_cancel_is_seen_for_that_seq_only() -> None:
    block = ControlBlock.local()
    block.request_cancel(5)
    assert block.is_cancelled(5)
    assert [seq for seq in range(3 * RING) if block.is_cancelled(seq)] == [5]


def test_cancels_within_one_window_are_independent() -> None:
    block = ControlBlock.local()
    base = 1000
    cancelled = {base + i for i in range(0, RING, 3)}
    for seq in cancelled:
        block.request_cancel(seq)
    for seq in range(base, base + RING):
        assert block.is_cancelled(seq) is (seq in cancelled)


@pytest.mark.parametrize("seq", [0, 1, RING - 1, RING, 10 * RING + 7, 2**62])
def test_ring_wrap_does_not_confuse_seq_and_seq_plus_ring(seq: int) -> None:
    block = ControlBlock.local()
    block.request_cancel(seq)
    assert block.is_cancelled(seq)
    assert not block.is_cancelled(seq + RING)
    if seq >= RING:
        assert not block.is_cancelled(seq - RING)
    # The slot is reused by seq + RING, which then owns it.
    block.request_cancel(seq + RING)
    assert block.is_cancelled(seq + RING)
    assert not block.is_cancelled(seq)


def test_a_cancelled_slot_does_not_cancel_the_next_request_using_it() -> None:
    block = ControlBlock.local()
    for seq in range(4 * RING):
        assert not block.is_cancelled(seq)
        if seq % 2:
            block.request_cancel(seq)
        assert block.is_cancelled(seq) is bool(seq % 2)


def test_mark_started_and_has_started() -> None:
    block = ControlBlock.local()
    block.mark_started(0)
    assert block.has_started(0)
    assert not block.has_started(1)
    block.mark_started(41)
    assert all(block.has_started(seq) for seq in range(42))
    assert not block.has_started(42)
    block.mark_started(2**62)
    assert block.has_started(2**62)
    assert not block.has_started(2**62 + 1)


def test_started_and_heartbeat_do_not_touch_the_cancel_ring() -> None:
    block = ControlBlock.local()
    block.mark_started(3)
    block.beat()
    assert not any(block.is_cancelled(seq) for seq in range(RING))
    block.request_cancel(3)
    assert block.has_started(3)
    assert not block.has_started(4)


@pytest.fixture
def fake_ns(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    now = [1_000_000_000]
    monkeypatch.setattr(_control, "time", types.SimpleNamespace(monotonic_ns=lambda: now[0]))
    return now


def test_beat_records_the_monotonic_clock(fake_ns: list[int]) -> None:
    block = ControlBlock.local()
    block.beat()
    assert block.last_beat_ns() == 1_000_000_000
    fake_ns[0] += 250_000_000
    assert block.last_beat_ns() == 1_000_000_000  # only a beat moves it
    block.beat()
    assert block.last_beat_ns() == 1_250_000_000


def test_beat_with_the_real_clock_is_positive() -> None:
    block = ControlBlock.local()
    block.beat()
    first = block.last_beat_ns()
    block.beat()
    assert 0 < first <= block.last_beat_ns()


def test_two_views_of_one_buffer_see_each_other() -> None:
    # What the process backend does with shared memory: the pool and the worker each
    # hold a view of the same bytes.
    buffer = bytearray(8 * SLOTS)
    pool_side = ControlBlock(buffer)
    worker_side = ControlBlock(memoryview(buffer))
    pool_side.request_cancel(9)
    assert worker_side.is_cancelled(9)
    worker_side.mark_started(9)
    worker_side.beat()
    assert pool_side.has_started(9)
    assert pool_side.last_beat_ns() == worker_side.last_beat_ns() > 0
    pool_side.release()
    worker_side.release()


def test_a_buffer_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="int64 slots"):
        ControlBlock(bytearray(8 * SLOTS - 8))


def test_release_ends_the_view() -> None:
    buffer = bytearray(8 * SLOTS)
    block = ControlBlock(buffer)
    block.release()
    with pytest.raises(ValueError):
        block.beat()
    buffer.extend(b"\0" * 8)  # no view holds the buffer any more


# ------------------------------------------------------------------- task context


class Sent:
    """A fake ``send_progress``: records what the context sends."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def __call__(self, current: float, total: float) -> None:
        self.calls.append((current, total))


class Clock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(_context, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def make_context(
    sent: Sent | None = None, cancelled: list[bool] | None = None, task_id: int = 7
) -> TaskContext:
    flag = cancelled if cancelled is not None else [False]
    return TaskContext(task_id, 1, sent if sent is not None else Sent(), lambda: flag[0])


@pytest.mark.parametrize(
    ("current", "total"),
    [
        (-1.0, 10.0),
        (-1e-300, 10.0),
        (-math.inf, 10.0),
        (math.nan, 10.0),
        (math.inf, 10.0),
        (1.0, 0.0),
        (0.0, 0.0),
        (1.0, -0.0),
        (1.0, -5.0),
        (1.0, math.nan),
        (1.0, math.inf),
        (1.0, -math.inf),
        (math.nan, math.nan),
        (math.inf, math.inf),
        (-1, 10),
        (1, 0),
    ],
)
def test_report_rejects_bad_values(clock: Clock, current: float, total: float) -> None:
    sent = Sent()
    ctx = make_context(sent)
    with pytest.raises(ValidationError, match="report") as info:
        ctx.report(current, total)
    assert isinstance(info.value, ValueError)
    assert sent.calls == []


@pytest.mark.parametrize(
    ("current", "total"), [(0, 1), (0.0, 1e-300), (5, 10), (1e308, 1e308), (12.0, 10.0)]
)
def test_report_accepts_finite_values_and_sends_floats(
    clock: Clock, current: float, total: float
) -> None:
    sent = Sent()
    make_context(sent).report(current, total)
    assert sent.calls == [(float(current), float(total))]
    assert all(type(v) is float for v in sent.calls[0])


def test_report_default_total_is_100(clock: Clock) -> None:
    sent = Sent()
    make_context(sent).report(42)
    assert sent.calls == [(42.0, 100.0)]


def test_reports_closer_than_the_interval_are_dropped(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_context, "PROGRESS_INTERVAL_S", 0.5)  # exact in binary
    sent = Sent()
    ctx = make_context(sent)
    ctx.report(1, 10)
    clock.now += 0.25
    ctx.report(2, 10)
    clock.now += 0.125
    ctx.report(3, 10)
    assert sent.calls == [(1.0, 10.0)]
    # The interval counts from the last report that was *sent* (t=1000.0), not the last
    # call: at t=1000.5 the next report goes out.
    clock.now = 1000.5
    ctx.report(4, 10)
    assert sent.calls == [(1.0, 10.0), (4.0, 10.0)]
    clock.now += 0.5 - 2**-20
    ctx.report(5, 10)
    assert sent.calls[-1] == (4.0, 10.0)
    clock.now += 2**-20
    ctx.report(6, 10)
    assert sent.calls[-1] == (6.0, 10.0)


def test_the_default_interval_with_a_fake_clock(clock: Clock) -> None:
    sent = Sent()
    ctx = make_context(sent)
    for i in range(100):  # a tight loop: no time passes between reports
        ctx.report(i, 1000)
    assert sent.calls == [(0.0, 1000.0)]
    clock.now += 2 * _context.PROGRESS_INTERVAL_S
    ctx.report(100, 1000)
    assert sent.calls == [(0.0, 1000.0), (100.0, 1000.0)]


def test_a_completing_report_is_always_sent(clock: Clock) -> None:
    sent = Sent()
    ctx = make_context(sent)
    ctx.report(1, 10)
    ctx.report(10, 10)  # same instant, but it completes the work
    ctx.report(11, 10)  # beyond total counts as complete too
    ctx.report(9, 10)  # not complete: throttled again
    assert sent.calls == [(1.0, 10.0), (10.0, 10.0), (11.0, 10.0)]


def test_a_completing_report_restarts_the_interval(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_context, "PROGRESS_INTERVAL_S", 0.5)
    sent = Sent()
    ctx = make_context(sent)
    ctx.report(1, 2)
    clock.now += 0.75
    ctx.report(2, 2)
    clock.now += 0.25
    ctx.report(1, 2)  # 0.25 after the completing report: dropped
    assert sent.calls == [(1.0, 2.0), (2.0, 2.0)]


def test_rejected_reports_do_not_restart_the_interval(clock: Clock) -> None:
    sent = Sent()
    ctx = make_context(sent)
    ctx.report(1, 10)
    clock.now += 2 * _context.PROGRESS_INTERVAL_S
    with pytest.raises(ValidationError):
        ctx.report(-1, 10)
    ctx.report(2, 10)
    assert sent.calls == [(1.0, 10.0), (2.0, 10.0)]


def test_cancelled_follows_the_flag() -> None:
    flag = [False]
    ctx = make_context(cancelled=flag, task_id=99)
    assert not ctx.cancelled
    ctx.raise_if_cancelled()
    flag[0] = True
    assert ctx.cancelled
    with pytest.raises(TaskCancelledError) as info:
        ctx.raise_if_cancelled()
    assert info.value.task_id == 99


def test_context_works_with_a_control_block() -> None:
    # How a worker wires it: the cancel flag is the block's ring slot for the request.
    block = ControlBlock.local()
    seq = RING + 3
    ctx = TaskContext(1, 1, Sent(), lambda: block.is_cancelled(seq))
    block.request_cancel(seq - RING)
    assert not ctx.cancelled
    block.request_cancel(seq)
    assert ctx.cancelled


def test_context_attributes() -> None:
    ctx = TaskContext(12, 3, Sent(), lambda: False)
    assert (ctx.id, ctx.attempt) == (12, 3)


# --------------------------------------------------------------------- current_task


def test_current_task_outside_a_task_raises() -> None:
    with pytest.raises(RuntimeError, match="outside"):
        current_task()


def test_current_task_inside_a_task() -> None:
    ctx = make_context()
    token = _context._current.set(ctx)
    try:
        assert current_task() is ctx
    finally:
        _context._current.reset(token)
    with pytest.raises(RuntimeError):
        current_task()
