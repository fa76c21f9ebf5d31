"""SharedCancellation and its AbortSignal in one process."""

from __future__ import annotations

import gc
import logging
import pickle
from typing import Any

import pytest

from workerbridge import (
    SharedCancellation,
    SharedMemoryError,
    TaskCancelledError,
    create_cancellation_token,
)
from workerbridge._shared import AbortSignal

from ._util import attached_copy, exists, roundtrip


def test_the_seed_example() -> None:
    cancellation, cancel = create_cancellation_token()
    signal = cancellation.to_abort_signal()
    assert not cancellation.cancelled
    assert not signal.aborted
    cancel()
    assert cancellation.cancelled
    assert signal.aborted
    assert signal.cancelled
    cancellation.close()


def test_callbacks_run_once_with_the_object() -> None:
    with SharedCancellation() as token:
        calls: list[Any] = []
        token.add_done_callback(calls.append)
        signal = token.to_abort_signal()
        signal.add_done_callback(calls.append)
        assert calls == []
        token.cancel()
        assert calls[0] is token
        assert isinstance(calls[1], AbortSignal)
        assert calls[1].aborted
        token.cancel()  # idempotent: nothing runs twice
        assert len(calls) == 2


def test_a_callback_added_after_cancel_runs_at_once() -> None:
    with SharedCancellation() as token:
        token.cancel()
        calls: list[Any] = []
        token.add_done_callback(calls.append)
        signal = token.to_abort_signal()
        signal.add_done_callback(calls.append)
        assert calls == [token, signal]


def test_a_failing_callback_is_logged_and_the_others_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(_token: SharedCancellation) -> None:
        raise RuntimeError("callback failed")

    with SharedCancellation() as token:
        calls: list[Any] = []
        token.add_done_callback(boom)
        token.add_done_callback(calls.append)
        with caplog.at_level(logging.ERROR, logger="workerbridge"):
            token.cancel()
        assert calls == [token]
        assert "exception in a cancellation callback" in caplog.text


def test_pool_style_linking() -> None:
    """What ``WorkerPool.submit(signal=...)`` does with the signal (``_link_signal``)."""
    import concurrent.futures

    with SharedCancellation() as token:
        handle: concurrent.futures.Future[None] = concurrent.futures.Future()
        signal: Any = token
        to_abort = getattr(signal, "to_abort_signal", None)
        if to_abort is not None:
            signal = to_abort()
        signal.add_done_callback(lambda _s: handle.cancel())
        assert not handle.cancelled()
        token.cancel()
        assert handle.cancelled()


def test_raise_if_aborted() -> None:
    with SharedCancellation() as token:
        signal = token.to_abort_signal()
        signal.raise_if_aborted()
        token.cancel()
        with pytest.raises(TaskCancelledError):
            signal.raise_if_aborted()


def test_copies_in_this_process_share_flag_and_callbacks() -> None:
    with SharedCancellation() as token:
        copy = roundtrip(token)
        calls: list[Any] = []
        token.add_done_callback(calls.append)
        copy.cancel()  # as a task on the thread or inline backend would
        assert token.cancelled
        assert len(calls) == 1


def test_an_attached_copy_sees_the_flag_both_ways() -> None:
    with SharedCancellation() as parent:
        child = attached_copy(parent)
        assert not child.cancelled
        parent.cancel()
        assert child.cancelled
    with SharedCancellation() as parent:
        child = attached_copy(parent)
        child.cancel()
        assert parent.cancelled


def test_a_signal_pickles_as_its_token() -> None:
    with SharedCancellation() as token:
        signal = attached_copy(token.to_abort_signal())
        assert isinstance(signal, AbortSignal)
        token.cancel()
        assert signal.aborted


def test_release() -> None:
    token = SharedCancellation()
    signal = token.to_abort_signal()
    name = token.name
    assert repr(token) == f"<SharedCancellation {name} not cancelled>"
    token.close()
    token.close()
    assert not exists(name)
    assert token.closed
    assert repr(token) == f"<SharedCancellation {name} closed>"
    for use in (
        lambda: token.cancelled,
        token.cancel,
        lambda: token.add_done_callback(print),
        lambda: signal.aborted,
        lambda: pickle.dumps(token),
        lambda: pickle.dumps(signal),
    ):
        with pytest.raises(SharedMemoryError):
            use()


def test_a_token_with_callbacks_is_released_without_the_cycle_collector() -> None:
    gc.disable()
    try:
        token = SharedCancellation()
        name = token.name
        token.to_abort_signal().add_done_callback(lambda _s: None)
        token.add_done_callback(lambda _t: None)
        del token
        assert not exists(name)
    finally:
        gc.enable()
