"""Fixtures of the fault-injection suite (RELIABILITY.md S01-S34, the process backend).

Every test here already runs inside the project-wide leak check (``tests/conftest.py``):
no worker process, thread, descriptor or /dev/shm segment may outlive it. On top of that,
``no_internal_errors`` fails a test whose pool logged an error from one of its own threads
(an exception in the I/O thread, a handle resolved twice, a callback that blew up): such an
error is swallowed to keep the pool serving, so only the log shows it.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterator

import pytest

from ._util import FIGURES


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="session", autouse=True)
def _grow_multiprocessing_heap() -> None:
    """Give ``multiprocessing``'s shared-memory heap room before the first leak baseline
    (as ``tests/integration/conftest.py`` does, for the same reason).

    Each worker's control block comes from that heap (``RawArray``), which keeps its arenas
    open (two descriptors each) and opens a new one when the live blocks do not fit; worker
    objects are freed by the cyclic garbage collector, so without this the first test that
    holds more blocks than any before would be blamed for two descriptors.
    """
    context = multiprocessing.get_context("spawn")
    blocks = [context.RawArray("b", 4096) for _ in range(256)]
    del blocks


@pytest.fixture(autouse=True)
def no_internal_errors() -> Iterator[None]:
    handler = _Collect()
    loggers = [logging.getLogger("workerbridge"), logging.getLogger("concurrent.futures")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    messages = [
        f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
        for r in handler.records
    ]
    assert not messages, f"the pool logged internal errors: {messages}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault-injection figures")
    for test, name, value, unit, target, bound in FIGURES:
        line = f"{test}: {name} = {value:.1f}{' ' + unit if unit else ''}"
        if target:
            line += f"  (target {target}"
            line += f", CI bound {bound:.0f} ms)" if bound == bound else ")"
        terminalreporter.write_line(line)
