"""The seed's usage example (DESIGN.md 2), in its Python form, as a user would write it:
the default ``WorkerBridge``, a progress tracker, a cancellation token, and
``await WorkerBridge.crypto.encrypt_file(...)`` with ``on_progress`` and ``signal``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from workerbridge import (
    ProgressInfo,
    TaskCancelledError,
    WorkerBridge,
    create_cancellation_token,
    create_progress_tracker,
)


@pytest.fixture
def default_bridge() -> Iterator[None]:
    WorkerBridge.shutdown()
    WorkerBridge.configure(size=2)
    yield
    WorkerBridge.shutdown()
    WorkerBridge._default_options = {}


@pytest.mark.usefixtures("default_bridge")
def test_the_seeds_example_encrypts_with_progress_and_a_signal() -> None:
    file_data = os.urandom(5 << 20)  # several chunks, so progress has steps

    async def main() -> tuple[bytes, list[float], int]:
        # Setup progress tracking
        progress, cleanup = create_progress_tracker(1000)
        # Setup cancellation
        cancellation, cancel = create_cancellation_token()
        key = WorkerBridge.crypto.generate_key()
        nonce = WorkerBridge.crypto.generate_nonce()
        seen: list[float] = []

        def on_progress(p: ProgressInfo) -> None:
            seen.append(p.progress)
            progress.update(int(p.progress * 10))  # update the UI's shared tracker

        # Use worker bridge
        result = await WorkerBridge.crypto.encrypt_file(
            file_data,
            key,
            nonce,
            on_progress=on_progress,
            signal=cancellation.to_abort_signal(),
        )
        plain = await WorkerBridge.crypto.decrypt_file(result, key)
        assert plain == file_data
        final = progress.current
        # Cleanup
        cleanup()
        cancellation.close()
        del cancel
        return result, seen, final

    result, seen, final = asyncio.run(main())
    assert len(result) > len(file_data)
    assert seen
    assert seen == sorted(seen)
    assert seen[-1] == 100.0
    assert final == 1000


@pytest.mark.usefixtures("default_bridge")
def test_a_fired_cancellation_token_stops_the_encryption() -> None:
    file_data = os.urandom(8 << 20)

    async def main() -> None:
        cancellation, cancel = create_cancellation_token()
        key = WorkerBridge.crypto.generate_key()
        cancel()  # e.g. the user pressed "Cancel" before the work was picked up
        handle = WorkerBridge.crypto.encrypt_file(
            file_data, key, signal=cancellation.to_abort_signal()
        )
        with pytest.raises(TaskCancelledError):
            await handle
        assert handle.cancelled()
        cancellation.close()

    asyncio.run(main())
