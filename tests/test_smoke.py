from __future__ import annotations

import pytest

from workerbridge import WorkerPool
from workerbridge.testing import tasks


@pytest.mark.parametrize("backend", ["process", "thread", "inline"])
def test_round_trip(backend: str) -> None:
    with WorkerPool(2, backend=backend) as pool:  # type: ignore[arg-type]
        assert pool.submit(tasks.add, 2, 3).result(timeout=30) == 5
        assert list(pool.map(tasks.square, range(10))) == [x * x for x in range(10)]
