"""SharedProgress in one process."""

from __future__ import annotations

import pickle
import threading

import pytest

from workerbridge import (
    SharedMemoryError,
    SharedProgress,
    ValidationError,
    create_progress_tracker,
)

from ._util import attached_copy, exists


def test_the_seed_example() -> None:
    progress, cleanup = create_progress_tracker(1000)
    assert (progress.current, progress.total, progress.percent, progress.done) == (
        0,
        1000,
        0.0,
        False,
    )
    progress.update(750)
    assert progress.percent_x100 == 7500  # fixed point, as in the seed's layout
    assert progress.percent == 75.0
    name = progress.name
    cleanup()
    cleanup()
    assert not exists(name)
    with pytest.raises(SharedMemoryError):
        _ = progress.current


def test_percent_is_fixed_point_rounded_down() -> None:
    with SharedProgress(3) as progress:
        progress.update(1)
        assert progress.percent_x100 == 3333
        assert progress.percent == 33.33
        progress.update(3)
        assert (progress.percent_x100, progress.percent, progress.done) == (10000, 100.0, True)


def test_advance_returns_the_new_value_and_stops_at_total() -> None:
    with SharedProgress(10) as progress:
        assert progress.advance() == 1
        assert progress.advance(4) == 5
        assert progress.advance(0) == 5
        assert progress.advance(100) == 10
        assert progress.done
        progress.update(2)  # going back is allowed: start over
        assert progress.current == 2


@pytest.mark.parametrize("total", [0, -1, 1.5, "10", None, True, 2**63])
def test_bad_totals(total: object) -> None:
    with pytest.raises(ValidationError):
        SharedProgress(total)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        create_progress_tracker(total)  # type: ignore[arg-type]


@pytest.mark.parametrize("current", [-1, 11, 2.0, "3", None])
def test_bad_updates(current: object) -> None:
    with SharedProgress(10) as progress:
        with pytest.raises(ValidationError):
            progress.update(current)  # type: ignore[arg-type]
        assert progress.current == 0


@pytest.mark.parametrize("n", [-1, 1.0, None, False])
def test_bad_advances(n: object) -> None:
    with SharedProgress(10) as progress, pytest.raises(ValidationError):
        progress.advance(n)  # type: ignore[arg-type]


def test_copies_share_current_and_total() -> None:
    with SharedProgress(50) as progress:
        copy = attached_copy(progress)
        assert copy.total == 50
        copy.advance(25)
        assert progress.percent == 50.0
        assert repr(progress) == f"<SharedProgress {progress.name} 25/50>"
    assert repr(copy) == f"<SharedProgress {progress.name} closed>"
    with pytest.raises(SharedMemoryError):
        copy.advance()
    with pytest.raises(SharedMemoryError):
        pickle.dumps(progress)


def test_concurrent_advances_lose_nothing() -> None:
    n, threads = 5_000, 4
    with SharedProgress(n * threads + 7) as progress:
        workers = [
            threading.Thread(target=lambda: [progress.advance() for _ in range(n)])
            for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert progress.current == n * threads
