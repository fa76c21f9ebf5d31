"""The pool's state machine: one lock, three kinds of callers, effects carried out unlocked.

```
 submit()/cancel()  ---+                        +--> worker.send([Request])   (unlocked)
 (any thread)          |                        |
 I/O thread:           +--> [ lock: queue,  ----+--> worker.kill()
   on_messages/on_exit |     slots, tasks ]     |
 supervisor thread:  --+   decide, record       +--> handle.set_result / progress callbacks
   timers, deadlines,                                (unlocked, after sends)
   heartbeats, respawn
```

Invariant: a task's terminal state is decided under the lock, by whichever path gets there
first (result, error, cancel, timeout, crash, close); only that path resolves its handle.
Everything that can block or run user code (writes, kills, callbacks, unpickling results)
happens after the lock is released, so neither a slow callback nor a full pipe can stall the
pool's bookkeeping.
"""

from __future__ import annotations

import heapq
import itertools
import pickle
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import psutil

from .._backends import Backend, SharedMemoryChannel, Worker, WorkerExit
from .._exceptions import (
    DeadlineExceededError,
    PoolBrokenError,
    PoolClosedError,
    QueueFullError,
    RemoteTaskError,
    RemoteTraceback,
    SerializationError,
    TaskCancelledError,
    TaskTimeoutError,
    WorkerCrashedError,
    operation_error_type,
)
from .._protocol import (
    ErrorInfo,
    FromWorker,
    Progress,
    Ready,
    Request,
    Response,
    Shutdown,
    ToWorker,
)
from .._transport import release_unreturned
from .._worker import MAX_IN_FLIGHT
from ._queue import TaskQueue
from ._scheduler import Strategy, assign
from ._stats import PoolStats, Reservoir, WorkerStats
from ._task import ProgressInfo, TaskHandle, TaskRecord, TaskState

__all__ = ["PoolConfig", "PoolCore"]

#: How much work (in seconds of the recent average run time) the pool keeps in flight on
#: each worker. Enough to cover a round trip and a GIL switch interval (5 ms) of a caller
#: that submits in a tight loop, so a worker never waits for the I/O thread's next turn;
#: short enough that queued tasks mostly stay in the pool's queue, where they can still be
#: cancelled, re-prioritised and balanced across workers.
_IN_FLIGHT_WORK_S = 0.005
#: At least one task per worker. Longer tasks get no more than that: a task sent ahead to
#: a busy worker could wait there while another worker is (or is about to be) free.
_MIN_WINDOW = 1
_MAX_WINDOW = min(512, MAX_IN_FLIGHT)


class PoolConfig:
    """Tunables the core needs (validated by ``WorkerPool``)."""

    __slots__ = (
        "heartbeat_interval",
        "heartbeat_timeout",
        "kill_grace",
        "max_boot_failures",
        "max_errors",
        "max_memory_per_worker",
        "max_tasks_per_worker",
        "ready_timeout",
        "size",
    )

    def __init__(
        self,
        size: int,
        *,
        kill_grace: float,
        heartbeat_interval: float,
        heartbeat_timeout: float,
        ready_timeout: float,
        max_boot_failures: int,
        max_errors: int | None = None,
        max_tasks_per_worker: int | None = None,
        max_memory_per_worker: int | None = None,
    ) -> None:
        self.size = size
        self.kill_grace = kill_grace
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.ready_timeout = ready_timeout
        self.max_boot_failures = max_boot_failures
        self.max_errors = max_errors
        self.max_tasks_per_worker = max_tasks_per_worker
        self.max_memory_per_worker = max_memory_per_worker


class _Slot:
    """One worker position and the worker currently filling it."""

    __slots__ = (
        "boot_deadline",
        "completed",
        "core",
        "errors_in_a_row",
        "failed",
        "in_flight",
        "index",
        "kill_reason",
        "next_seq",
        "pid",
        "quota",
        "recycle_reason",
        "released",
        "reserved",
        "restarts",
        "shutdown_sent",
        "state",
        "window",
        "worker",
    )

    def __init__(self, core: PoolCore, index: int, restarts: int) -> None:
        self.core = core
        self.index = index
        self.worker: Worker | None = None
        self.pid: int | None = None
        self.state = "starting"
        self.in_flight: dict[int, TaskRecord] = {}  # seq -> task, in sending order
        self.next_seq = 0
        self.reserved = 0
        self.window = _MIN_WINDOW
        self.completed = 0
        self.failed = 0
        self.restarts = restarts
        self.kill_reason: str | None = None
        self.recycle_reason: str | None = None
        self.released: list[str] = []  # result blocks of this worker the pool is done with
        self.shutdown_sent = False
        self.errors_in_a_row = 0
        self.boot_deadline = 0.0
        # Requests this worker may be sent in its life (max_tasks_per_worker), or None.
        self.quota: int | None = core.config.max_tasks_per_worker

    # scheduler view
    @property
    def worker_index(self) -> int:
        return self.index

    @property
    def load(self) -> int:
        return len(self.in_flight) + self.reserved

    @property
    def has_room(self) -> bool:
        return (
            self.state == "ready"
            and len(self.in_flight) + self.reserved < self.window
            and (self.quota is None or self.next_seq + self.reserved < self.quota)
        )

    def reserve(self) -> None:
        self.reserved += 1

    # WorkerEvents
    def on_messages(self, worker: Worker, messages: list[FromWorker]) -> None:
        self.core._on_messages(self, worker, messages)

    def on_exit(self, worker: Worker, exit: WorkerExit) -> None:
        self.core._on_exit(self, worker, exit)


class _Effects:
    """What to do once the lock is released, in this order."""

    __slots__ = ("kills", "progress", "results", "sends", "spawn")

    def __init__(self) -> None:
        self.sends: dict[_Slot, list[ToWorker]] = {}
        self.kills: list[Worker] = []
        self.progress: list[tuple[TaskRecord, ProgressInfo]] = []
        self.results: list[tuple[TaskRecord, Response | BaseException]] = []
        self.spawn = False

    def __bool__(self) -> bool:
        return bool(self.sends or self.kills or self.progress or self.results or self.spawn)


class PoolCore:
    """Owns the queue, the workers and every task; see the module docstring."""

    def __init__(
        self,
        backend: Backend,
        config: PoolConfig,
        strategy: Strategy[_Slot],
        max_queue: int | None,
    ) -> None:
        self.backend = backend
        # The process backend lets a thread that waits for a result run the I/O loop, and
        # moves large buffers through shared memory.
        self.assist = getattr(backend, "run_until", None)
        self.shm: SharedMemoryChannel | None = getattr(backend, "shm", None)
        self.config = config
        self._strategy = strategy
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: TaskQueue[TaskRecord] = TaskQueue()
        self._slots: list[_Slot] = [_Slot(self, i, 0) for i in range(config.size)]
        self._affinity: dict[Hashable, _Slot] = {}
        self._timers: list[tuple[float, int, Callable[[float, _Effects], None]]] = []
        self._timer_order = itertools.count()
        self._ids = itertools.count(1)
        self.state = "running"  # running -> closing -> closed | broken
        self._broken: PoolBrokenError | None = None
        self._boot_failures = 0
        self._spawning = 0
        self._respawn_at = 0.0
        self._run_ema = _IN_FLIGHT_WORK_S
        self._started = time.monotonic()
        self._busy_s = 0.0
        self._counts = {"submitted": 0, "completed": 0, "failed": 0, "cancelled": 0, "restarts": 0}
        self._wait = Reservoir()
        self._run = Reservoir()
        self._supervisor = threading.Thread(
            target=self._supervise, name="workerbridge-supervisor", daemon=True
        )

    # ------------------------------------------------------------------ start and spawn
    def start(self) -> None:
        """Start every worker and the supervisor. Workers boot in parallel."""
        for slot in list(self._slots):
            self._spawn(slot)
        self._supervisor.start()

    def _spawn(self, slot: _Slot) -> None:
        """Start a worker for ``slot`` (outside the lock: starting a process takes time).

        Invariant: ``_spawning`` counts starts in progress, so shutdown waits for them and
        kills a worker that finished starting after the pool began to close.
        """
        with self._lock:
            self._spawning += 1
            slot.boot_deadline = time.monotonic() + self.config.ready_timeout
        try:
            worker = self.backend.start_worker(slot.index, slot)
        except OSError as exc:
            with self._lock:
                self._spawning -= 1
                slot.state = "dead"
                self._boot_failed_locked(exc)
                self._cond.notify_all()
            return
        with self._lock:
            self._spawning -= 1
            if slot.worker is None:
                slot.worker = worker
            slot.pid = worker.pid
            too_late = self.state not in ("running", "broken")
            self._cond.notify_all()
        if too_late:
            worker.kill()

    def next_id(self) -> int:
        return next(self._ids)

    # ------------------------------------------------------------------ submitting
    def submit(self, tasks: list[TaskRecord]) -> None:
        """Queue ``tasks`` and dispatch what fits.

        Raises:
            PoolClosedError, PoolBrokenError, QueueFullError: nothing was queued.
        """
        with self._lock:
            if self.state != "running":
                raise self._rejection()
            if self._max_queue is not None:
                # Tasks an idle worker takes at once never wait, so they do not count:
                # max_queue=0 means "only if a worker is free now".
                idle = sum(1 for s in self._slots if s.state == "ready" and not s.in_flight)
                if len(self._queue) + len(tasks) > self._max_queue + idle:
                    raise QueueFullError(
                        f"{len(self._queue)} tasks are waiting (max_queue={self._max_queue})"
                    )
            push = self._queue.push
            for task in tasks:
                entry = task.entry = push(task, task.priority, task.deadline)
                task.order = entry.order
            self._counts["submitted"] += len(tasks)
            # From the submitting thread, only idle workers get a task at once (lowest
            # latency). Workers already busy are topped up by the I/O thread when they
            # answer, many requests per write: a tight submit loop then costs one write and
            # one wake-up per batch instead of per task.
            effects = self._dispatch_locked(None, idle_only=True)
            if any(t.deadline is not None for t in tasks):
                self._cond.notify()
        if effects is not None:
            self._perform(effects)

    def _rejection(self) -> Exception:
        if self._broken is not None:
            return self._broken
        return PoolClosedError("the pool is closed; it accepts no new tasks")

    def _dispatch_locked(
        self, effects: _Effects | None, idle_only: bool = False
    ) -> _Effects | None:
        """Send what fits; returns ``effects`` (created if None and needed)."""
        if not len(self._queue):
            return effects
        slots = self._slots
        if idle_only:
            slots = [s for s in slots if not s.in_flight]
            if not slots:
                return effects
        pairs = assign(self._queue, slots, self._strategy, self._affinity, idle_only)
        if not pairs:
            return effects
        if effects is None:
            effects = _Effects()
        now = time.monotonic()
        sends = effects.sends
        for entry, slot in pairs:
            task = entry.item
            slot.reserved = 0
            seq = slot.next_seq
            slot.next_seq = seq + 1
            task.seq = seq
            task.slot = slot
            task.state = TaskState.SENT
            task.entry = None
            if not slot.in_flight:
                self._mark_started_locked(task, now)
            slot.in_flight[seq] = task
            task.holders += 1
            released: tuple[str, ...] = ()
            if slot.released:
                released = tuple(slot.released)
                slot.released.clear()
            request = Request(
                task.id,
                task.attempt,
                seq,
                task.payload,
                task.function,
                task.pickled_function,
                task.channel,
                task.operation,
                task.chunked,
                task.deadline,
                task.buffers,
                released,
                task.cancel_token,
            )
            batch = sends.get(slot)
            if batch is None:
                sends[slot] = [request]
            else:
                batch.append(request)
        return effects

    def _mark_started_locked(self, task: TaskRecord, now: float) -> None:
        """``task`` is now at the head of its worker: it runs (or is about to)."""
        task.started_at = now
        self._wait.add(now - task.submitted_at)
        if task.timeout is not None:
            attempt = task.attempt
            self._add_timer_locked(
                now + task.timeout, lambda t, fx: self._on_timeout_locked(task, attempt, t, fx)
            )

    # ------------------------------------------------------------------ messages
    def _on_messages(self, slot: _Slot, worker: Worker, messages: list[FromWorker]) -> None:
        effects = _Effects()
        with self._lock:
            if slot.worker is None:
                slot.worker = worker
            for message in messages:
                kind = type(message)
                if kind is Response:
                    self._on_response_locked(slot, message, effects)  # type: ignore[arg-type]
                elif kind is Progress:
                    self._on_progress_locked(slot, message, effects)  # type: ignore[arg-type]
                elif kind is Ready:
                    self._on_ready_locked(slot, message, effects)  # type: ignore[arg-type]
            self._dispatch_locked(effects)
        self._perform(effects)

    def _on_ready_locked(self, slot: _Slot, ready: Ready, effects: _Effects) -> None:
        slot.pid = ready.pid
        if ready.error is not None:
            # The worker exits right after; its exit counts the failure.
            slot.kill_reason = f"{ready.error.type}: {ready.error.message}"
            return
        if slot.state == "starting":
            slot.state = "ready"
            self._boot_failures = 0
            self._cond.notify_all()

    def _on_progress_locked(self, slot: _Slot, progress: Progress, effects: _Effects) -> None:
        task = slot.in_flight.get(_seq_of(slot, progress.id))
        if task is None or task.attempt != progress.attempt or task.state is not TaskState.SENT:
            return  # late progress of a finished, cancelled or superseded attempt
        effects.progress.append((task, ProgressInfo(progress.current, progress.total)))

    def _on_response_locked(self, slot: _Slot, response: Response, effects: _Effects) -> None:
        seq = _seq_of(slot, response.id)
        task = slot.in_flight.pop(seq, None)
        if task is None:
            return  # unknown or duplicate: dropped
        task.holders -= 1
        if slot.in_flight:
            # The worker runs its requests in order: the next one starts now.
            head_seq, head = next(iter(slot.in_flight.items()))
            if _is_current(slot, head_seq, head) and head.started_at is None:
                self._mark_started_locked(head, time.monotonic())
        run_s = response.run_ns / 1e9
        self._busy_s += run_s
        self._run.add(run_s)
        self._adapt_window_locked(run_s)
        if not slot.in_flight:
            if slot.state == "stopping" and self.state == "running":
                self._send_shutdown_locked(slot, effects)  # a recycled worker has drained
            elif self.state == "closing":
                self._cond.notify_all()  # close() waits for the last running task
        if not _is_current(slot, seq, task) or task.attempt != response.attempt:
            # Already resolved (cancelled, timed out, closed): the reply is dropped, and the
            # shared memory on both sides can be reused.
            slot.released.extend(ref.name for ref in response.buffers)
            self._free_blocks_locked(task)
            self._maybe_recycle_locked(slot, effects)
            return
        if response.ok:
            slot.completed += 1
            slot.errors_in_a_row = 0
            self._finish_locked(task, response, effects)
            self._maybe_recycle_locked(slot, effects)
            return
        slot.failed += 1
        error = self._task_error(task, response.error)  # type: ignore[arg-type]
        if isinstance(error, RemoteTaskError):
            slot.errors_in_a_row += 1
        if isinstance(error, RemoteTaskError) and self._should_retry(task, error):
            self._retry_locked(task)
        else:
            self._finish_locked(task, error, effects)
        self._maybe_recycle_locked(slot, effects)

    def _maybe_recycle_locked(self, slot: _Slot, effects: _Effects) -> None:
        """Replace a worker, between tasks, that did its share (``max_tasks_per_worker``),
        failed too often in a row (``max_errors``) or grew too large
        (``max_memory_per_worker``, checked by the supervisor)."""
        config = self.config
        if slot.state != "ready" or self.state != "running":
            return
        reason = None
        if slot.quota is not None and slot.next_seq >= slot.quota:
            reason = "max_tasks_per_worker reached"
        elif config.max_errors and slot.errors_in_a_row >= config.max_errors:
            reason = f"{slot.errors_in_a_row} task errors in a row"
        elif slot.recycle_reason is not None:
            reason = slot.recycle_reason
        if reason is None:
            return
        slot.state = "stopping"  # no new tasks; shut down once what it holds is done
        slot.recycle_reason = reason
        if not slot.in_flight:
            self._send_shutdown_locked(slot, effects)

    def _send_shutdown_locked(self, slot: _Slot, effects: _Effects) -> None:
        if not slot.shutdown_sent and slot.worker is not None:
            slot.shutdown_sent = True
            effects.sends.setdefault(slot, []).append(Shutdown())

    def _adapt_window_locked(self, run_s: float) -> None:
        self._run_ema += 0.1 * (run_s - self._run_ema)
        window = int(_IN_FLIGHT_WORK_S / max(self._run_ema, 1e-6))
        window = _MIN_WINDOW if window < _MIN_WINDOW else min(window, _MAX_WINDOW)
        if window != self._slots[0].window:
            for slot in self._slots:
                slot.window = window

    def _task_error(self, task: TaskRecord, info: ErrorInfo) -> BaseException:
        tid = task.id
        if info.kind == "raised":
            own = operation_error_type(info.type)
            if own is not None:  # a bridge's own error crosses as itself
                return own(info.message, task_id=tid)
            error: BaseException = RemoteTaskError(
                f"{info.type}: {info.message}",
                task_id=tid,
                remote_type=info.type,
                remote_message=info.message,
            )
            if info.traceback:
                error.__cause__ = RemoteTraceback(info.traceback)
            return error
        if info.kind == "cancelled":
            return TaskCancelledError(info.message, task_id=tid)
        if info.kind == "deadline":
            return DeadlineExceededError(info.message, task_id=tid)
        if info.kind == "serialization":
            return SerializationError(f"in the worker: {info.type}: {info.message}")
        return RemoteTaskError(
            info.message, task_id=tid, remote_type=info.type, remote_message=info.message
        )

    @staticmethod
    def _should_retry(task: TaskRecord, error: RemoteTaskError) -> bool:
        return task.attempt <= task.retries and any(
            error.is_instance_of(cls) for cls in task.retry_on
        )

    def _retry_locked(self, task: TaskRecord) -> None:
        """Run ``task`` again as a new attempt, in its original place in the queue."""
        task.attempt += 1
        task.state = TaskState.QUEUED
        task.slot = None
        task.started_at = None
        task.entry = self._queue.push(task, task.priority, task.deadline, task.order)

    def free_blocks(self, names: tuple[str, ...]) -> None:
        """Give back argument blocks of a task the pool never accepted."""
        if names and self.shm is not None:
            for name in names:
                self.shm.blocks.free(name)

    def _free_blocks_locked(self, task: TaskRecord) -> None:
        """Give the task's argument blocks back once no worker can still read them."""
        if task.blocks and task.holders == 0 and task.state is TaskState.DONE:
            shm = self.shm
            if shm is not None:
                for name in task.blocks:
                    shm.blocks.free(name)
            task.blocks = ()

    def _finish_locked(
        self, task: TaskRecord, outcome: Response | BaseException, effects: _Effects
    ) -> None:
        task.state = TaskState.DONE
        if task.blocks:
            self._free_blocks_locked(task)
        if isinstance(outcome, Response):
            self._counts["completed"] += 1
        elif isinstance(outcome, TaskCancelledError):
            self._counts["cancelled"] += 1
        else:
            self._counts["failed"] += 1
        effects.results.append((task, outcome))

    # ------------------------------------------------------------------ exits
    def _on_exit(self, slot: _Slot, worker: Worker, exit: WorkerExit) -> None:
        effects = _Effects()
        with self._lock:
            was_ready = slot.state in ("ready", "stopping")
            slot.state = "dead"
            for key, bound in list(self._affinity.items()):
                if bound is slot:
                    del self._affinity[key]
            if not was_ready and self.state == "running":
                cause = slot.kill_reason or exit.describe()
                self._boot_failed_locked(RuntimeError(f"worker failed to start: {cause}"))
            in_flight = list(slot.in_flight.items())
            slot.in_flight.clear()
            control = worker.control
            for seq, task in in_flight:
                task.holders -= 1
                if not _is_current(slot, seq, task):
                    self._free_blocks_locked(task)
                    continue
                if not control.has_started(seq):
                    # Never started: back to its place in the queue, it was not "held".
                    task.state = TaskState.QUEUED
                    task.slot = None
                    task.started_at = None
                    task.entry = self._queue.push(task, task.priority, task.deadline, task.order)
                    continue
                if task.attempt <= task.retries:
                    self._retry_locked(task)
                    continue
                reason = slot.kill_reason or "died"
                crash_reason = (
                    "unresponsive"
                    if reason == "unresponsive"
                    else ("protocol" if exit.reason == "protocol" else "died")
                )
                self._finish_locked(
                    task,
                    WorkerCrashedError(
                        f"{exit.describe()} while running task {task.id}"
                        + (f" ({reason})" if reason not in ("died",) else ""),
                        task_id=task.id,
                        pid=exit.pid,
                        exitcode=exit.exitcode,
                        signal_name=exit.signal_name,
                        reason=crash_reason,
                        attempts=task.attempt,
                    ),
                    effects,
                )
            if self.state == "running":
                effects.spawn = True
                self._cond.notify_all()
            else:
                self._cond.notify_all()
            self._dispatch_locked(effects)
        self._perform(effects)

    def _boot_failed_locked(self, cause: BaseException) -> None:
        self._boot_failures += 1
        # Back off before the next start (50 ms, doubling, at most 1 s), so a worker that
        # cannot start never turns into a spawn storm while the pool decides it is broken.
        self._respawn_at = time.monotonic() + min(0.05 * 2 ** (self._boot_failures - 1), 1.0)
        if self._boot_failures >= self.config.max_boot_failures and self.state == "running":
            broken = PoolBrokenError(
                f"workers keep failing to start ({self._boot_failures} in a row): {cause}"
            )
            broken.__cause__ = cause
            self._broken = broken
            self.state = "broken"
            self._cond.notify_all()

    # ------------------------------------------------------------------ cancel, timeout
    def cancel(self, task: TaskRecord) -> bool:
        effects = _Effects()
        with self._lock:
            if task.state is TaskState.DONE:
                return task.handle.cancelled()
            self._stop_task_locked(
                task, TaskCancelledError("task was cancelled", task_id=task.id), effects
            )
        self._perform(effects)
        return True

    def cancel_many(self, tasks: list[TaskRecord]) -> None:
        """Cancel ``tasks`` at once, last first, so a worker finishing one of them cannot
        start the next before that one is cancelled too."""
        effects = _Effects()
        with self._lock:
            for task in reversed(tasks):
                if task.state is not TaskState.DONE:
                    self._stop_task_locked(
                        task, TaskCancelledError("task was cancelled", task_id=task.id), effects
                    )
        self._perform(effects)

    def _stop_task_locked(self, task: TaskRecord, error: BaseException, effects: _Effects) -> None:
        """Resolve ``task`` with ``error`` and make sure it stops wherever it is."""
        if task.state is TaskState.QUEUED:
            if task.entry is not None:
                self._queue.remove(task.entry)
                task.entry = None
        elif task.state is TaskState.SENT:
            self._halt_attempt_locked(task, error)
        self._finish_locked(task, error, effects)

    def _halt_attempt_locked(self, task: TaskRecord, error: BaseException | None) -> None:
        """Raise the cancel flag of ``task``'s current attempt; kill its worker if the
        attempt still runs ``kill_grace`` seconds later."""
        slot: _Slot = task.slot
        worker = slot.worker
        if worker is None:
            return
        seq = task.seq
        worker.control.request_cancel(seq)
        self._add_timer_locked(
            time.monotonic() + self.config.kill_grace,
            lambda now, fx: self._enforce_stop_locked(slot, seq, error, fx),
        )

    def _enforce_stop_locked(
        self, slot: _Slot, seq: int, error: BaseException | None, effects: _Effects
    ) -> None:
        """Kill the worker if a task told to stop ``kill_grace`` ago still runs."""
        task = slot.in_flight.get(seq)
        worker = slot.worker
        if task is None or worker is None or slot.state == "dead":
            return
        if worker.control.has_started(seq) and slot.kill_reason is None:
            slot.kill_reason = "stopped task ignored its cancel flag"
            if isinstance(error, TaskTimeoutError):
                error.forced = True
            effects.kills.append(worker)

    def _on_timeout_locked(
        self, task: TaskRecord, attempt: int, now: float, effects: _Effects
    ) -> None:
        if task.state is not TaskState.SENT or task.attempt != attempt:
            return
        if task.attempt <= task.retries:
            self._halt_attempt_locked(task, None)
            self._retry_locked(task)
            return
        self._stop_task_locked(
            task,
            TaskTimeoutError(
                f"task {task.id} exceeded its timeout of {task.timeout} s",
                task_id=task.id,
                timeout=task.timeout,
            ),
            effects,
        )

    # ------------------------------------------------------------------ supervisor
    def _add_timer_locked(self, when: float, fn: Callable[[float, _Effects], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._timer_order), fn))
        if self._timers[0][2] is fn:
            self._cond.notify_all()

    def _supervise(self) -> None:
        interval = self.config.heartbeat_interval
        next_health = time.monotonic() + interval
        while True:
            effects = _Effects()
            with self._lock:
                now = time.monotonic()
                wake = next_health
                if self._timers:
                    wake = min(wake, self._timers[0][0])
                deadline = self._queue.next_deadline()
                if deadline is not None:
                    wake = min(wake, deadline)
                if self._needs_spawn_locked():
                    wake = min(wake, self._respawn_at)
                if wake > now:
                    self._cond.wait(wake - now)
                if self.state == "closed":
                    return
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    heapq.heappop(self._timers)[2](now, effects)
                for entry in self._queue.pop_expired(now):
                    task = entry.item
                    task.entry = None
                    self._finish_locked(
                        task,
                        DeadlineExceededError(
                            f"task {task.id} did not start before its deadline", task_id=task.id
                        ),
                        effects,
                    )
                if now >= next_health:
                    next_health = now + interval
                    self._check_health_locked(now, effects)
                if self.state == "broken":
                    self._fail_queued_locked(self._broken or PoolBrokenError("broken"), effects)
                elif self.state == "running":
                    # A timer may have put a task back (a retry after a timeout).
                    self._dispatch_locked(effects)
                respawn = self._slots_to_spawn_locked()
            self._perform(effects)
            for slot in respawn:
                self._spawn(slot)

    def _needs_spawn_locked(self) -> bool:
        return self.state == "running" and any(s.state == "dead" for s in self._slots)

    def _slots_to_spawn_locked(self) -> list[_Slot]:
        if self.state != "running" or time.monotonic() < self._respawn_at:
            return []
        fresh = []
        for i, slot in enumerate(self._slots):
            if slot.state == "dead":
                new = _Slot(self, i, slot.restarts + 1)
                self._slots[i] = new
                self._counts["restarts"] += 1
                fresh.append(new)
        return fresh

    def _check_health_locked(self, now: float, effects: _Effects) -> None:
        now_ns = time.monotonic_ns()
        for slot in self._slots:
            worker = slot.worker
            if worker is None or slot.kill_reason is not None:
                continue
            if slot.state == "starting" and now > slot.boot_deadline:
                slot.kill_reason = f"not ready after {self.config.ready_timeout} s"
                effects.kills.append(worker)
            elif (
                slot.state == "ready"
                and worker.heartbeat_age(now_ns) > self.config.heartbeat_timeout
            ):
                slot.kill_reason = "unresponsive"
                effects.kills.append(worker)
            elif slot.state == "ready" and self.config.max_memory_per_worker and slot.pid:
                rss = _rss(slot.pid)
                if rss > self.config.max_memory_per_worker:
                    slot.recycle_reason = f"RSS {rss} bytes above max_memory_per_worker"
                    self._maybe_recycle_locked(slot, effects)

    def _fail_queued_locked(self, error: BaseException, effects: _Effects) -> None:
        for entry in self._queue.drain():
            entry.item.entry = None
            self._finish_locked(entry.item, error, effects)

    # ------------------------------------------------------------------ effects
    def _perform(self, effects: _Effects) -> None:
        if not effects:
            return
        for slot, messages in effects.sends.items():
            worker = slot.worker
            if worker is not None:
                worker.send(messages)
        for worker in effects.kills:
            worker.kill()
        for task, info in effects.progress:
            loop = task.loop
            if loop is not None and task.on_progress is not None:
                try:
                    loop.call_soon_threadsafe(task.handle._report_progress, info, task.on_progress)
                except RuntimeError:  # the caller's loop is closed
                    pass
            else:
                task.handle._report_progress(info, task.on_progress)
        for task, outcome in effects.results:
            task.payload = b""  # the arguments are no longer needed; free them early
            ok, value = self._outcome(task, outcome)
            loop = task.loop
            if loop is not None:
                # Progress callbacks of an async caller run on its loop; resolve the handle
                # behind them on the same loop, so none runs after the handle is done.
                try:
                    loop.call_soon_threadsafe(_settle, task.handle, ok, value)
                    continue
                except RuntimeError:  # the loop is closed: resolve here
                    pass
            _settle(task.handle, ok, value)
        if effects.spawn:
            with self._lock:
                self._cond.notify_all()

    def _outcome(self, task: TaskRecord, outcome: Response | BaseException) -> tuple[bool, Any]:
        """``(True, result)`` or ``(False, error)``: the reply unpickled (outside the lock,
        as it may take a while), before anything else can reuse its shared memory."""
        try:
            if not isinstance(outcome, Response):
                return False, outcome
            try:
                if outcome.buffers:
                    return True, self._load_shared(task, outcome)
                return True, pickle.loads(outcome.data)
            except BaseException as exc:  # even SystemExit from a __setstate__
                return False, SerializationError(
                    f"cannot unpickle the result of task {task.id}: {exc}"
                )
        finally:
            if task.moved:
                # Buffers moved into the task and not moved back by its result are released
                # (returned ones were taken back while unpickling the result).
                release_unreturned(task.moved)

    def _load_shared(self, task: TaskRecord, response: Response) -> Any:
        """Unpickle a result whose large buffers sit in the worker's shared memory: they
        are copied out, so the result owns its memory and the worker can reuse its blocks
        (listed in the next request to it)."""
        shm = self.shm
        if shm is None:
            raise SerializationError("result refers to shared memory, but the pool has none")
        try:
            buffers = []
            for ref in response.buffers:
                view = shm.attachments.view(ref.name, ref.offset, ref.length)
                # bytes and bytearray copy while unpickling; anything that would keep a
                # view (memoryview, numpy) gets its own copy here.
                buffers.append(view if ref.copied else bytearray(view))
            return pickle.loads(response.data, buffers=buffers)
        finally:
            slot: _Slot = task.slot
            with self._lock:
                if slot is not None and slot.state != "dead":
                    slot.released.extend(r.name for r in response.buffers)

    # ------------------------------------------------------------------ shutdown
    def close(self, timeout: float | None) -> None:
        """Fail queued tasks, let sent ones finish (up to ``timeout``), stop the workers."""
        effects = _Effects()
        with self._lock:
            if self.state in ("running", "broken"):
                self.state = "closing"
                self._fail_queued_locked(
                    PoolClosedError("the pool was closed before this task started"), effects
                )
        self._perform(effects)
        deadline = None if timeout is None else time.monotonic() + timeout
        finished = True
        with self._lock:
            while any(s.in_flight and s.state != "dead" for s in self._slots):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    finished = False
                    break
                self._cond.wait(remaining)  # replies notify while closing
        # Tasks still running when the timeout expired had their chance: kill at once.
        self._shutdown(graceful=finished)

    def terminate(self) -> None:
        """Fail every unfinished task and kill every worker."""
        effects = _Effects()
        with self._lock:
            if self.state in ("running", "broken"):
                self.state = "closing"
            self._terminate_locked(effects)
        self._perform(effects)
        self._shutdown(graceful=False)

    def _terminate_locked(self, effects: _Effects) -> None:
        self._fail_queued_locked(PoolClosedError("the pool was terminated"), effects)
        for slot in self._slots:
            for task in list(slot.in_flight.values()):
                if task.state is TaskState.SENT:
                    self._finish_locked(task, PoolClosedError("the pool was terminated"), effects)

    def _shutdown(self, graceful: bool, wait: float = 5.0) -> None:
        """Stop every worker: ``Shutdown`` (graceful) or kill; escalate to kill halfway
        through ``wait``; then release the backend. Bounded by ``wait`` seconds."""
        effects = _Effects()
        with self._lock:
            if self.state == "closed":
                return
            self._terminate_locked(effects)  # whatever a timed-out close left
            for slot in self._slots:
                if slot.worker is None or slot.state == "dead":
                    continue
                if graceful and slot.state == "ready":
                    slot.state = "stopping"
                    self._send_shutdown_locked(slot, effects)
                else:
                    effects.kills.append(slot.worker)
        self._perform(effects)
        deadline = time.monotonic() + wait
        escalated = not graceful
        with self._lock:
            while self._spawning or any(
                s.state != "dead" and s.worker is not None for s in self._slots
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if not escalated and remaining < wait / 2:
                    escalated = True
                    kills = [s.worker for s in self._slots if s.state != "dead" and s.worker]
                    self._lock.release()
                    try:
                        for worker in kills:
                            worker.kill()
                    finally:
                        self._lock.acquire()
                self._cond.wait(min(remaining, 0.05))
            self.state = "closed"
            self._cond.notify_all()
        if threading.current_thread() is not self._supervisor and self._supervisor.is_alive():
            self._supervisor.join(wait)
        self.backend.close()

    # ------------------------------------------------------------------ introspection
    def wait_ready(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self.state == "running" and not all(s.state == "ready" for s in self._slots):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            if self._broken is not None:
                raise self._broken
            return self.state == "running"

    def stats(self) -> PoolStats:
        with self._lock:
            workers = tuple(
                WorkerStats(
                    s.index, s.pid, s.state, len(s.in_flight), s.completed, s.failed, s.restarts
                )
                for s in self._slots
            )
            elapsed = max(time.monotonic() - self._started, 1e-9)
            return PoolStats(
                backend=self.backend.name,
                state=self.state,
                workers=workers,
                queue_depth=len(self._queue),
                running=sum(len(s.in_flight) for s in self._slots),
                submitted=self._counts["submitted"],
                completed=self._counts["completed"],
                failed=self._counts["failed"],
                cancelled=self._counts["cancelled"],
                restarts=self._counts["restarts"],
                utilization=min(1.0, self._busy_s / (elapsed * len(self._slots))),
                wait_time=self._wait.percentiles(),
                run_time=self._run.percentiles(),
            )

    def counts(self) -> tuple[int, int, int]:
        """(queued, in flight, workers) without building a full snapshot."""
        with self._lock:
            return (
                len(self._queue),
                sum(len(s.in_flight) for s in self._slots),
                sum(1 for s in self._slots if s.state == "ready"),
            )


def _settle(handle: TaskHandle[Any], ok: bool, value: Any) -> None:
    if ok:
        handle.set_result(value)
    else:
        handle.set_exception(value)


def _rss(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


def _is_current(slot: _Slot, seq: int, task: TaskRecord) -> bool:
    """Whether ``slot``'s request ``seq`` is the live attempt of ``task`` (not one that was
    resolved, or superseded by a retry that now lives elsewhere)."""
    return task.state is TaskState.SENT and task.slot is slot and task.seq == seq


def _seq_of(slot: _Slot, task_id: int) -> int:
    # Replies name the task id; the slot indexes by seq. In-flight sets are small (the
    # window), so a scan is cheaper than keeping a second map in step on the hot path.
    for seq, task in slot.in_flight.items():
        if task.id == task_id:
            return seq
    return -1
