"""Run by ``test_leaks.py`` in a child process: a pool that moves large data both ways and
transfers SharedBuffers, then ends one of three ways.

``python _child_pool.py METHOD MODE DIRECTORY`` with MODE:

- ``close``: close the pool and exit normally;
- ``exit``: exit without closing the pool (the atexit handler terminates it) and without
  releasing a SharedBuffer (its finalizer unlinks it);
- ``sigkill``: SIGKILL itself while both workers hold large arguments.

Before ending it prints one line of JSON: its pid, its workers' pids and the names of the
segments of the data path that exist at that moment.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from workerbridge import WorkerPool
from workerbridge._transport import segments_of, transfer
from workerbridge.testing import tasks
from workerbridge.testing._shm_tasks import fill_buffer, hold, make

MIB = 1 << 20


def main() -> None:
    method, mode, directory = sys.argv[1:4]
    pool = WorkerPool(2, start_method=method)
    big = make("bytes", 2 * MIB, 1)
    for _ in range(4):  # large arguments and results
        assert pool.submit(tasks.echo, big).result(30) == big
    buf = pool.alloc(MIB)  # moved there and back
    _, back = pool.submit(fill_buffer, transfer(buf), 1, "transfer").result(30)
    assert back is buf
    dropped = pool.alloc(MIB)  # moved there, not given back
    pool.submit(fill_buffer, transfer(dropped), 2, "none").result(30)
    kept = pool.alloc(MIB)  # never sent, never released
    kept.view[:4] = b"kept"
    # Both workers hold a large argument (the least busy worker takes each task: one each).
    release = os.path.join(directory, "release")
    started = [os.path.join(directory, f"started-{i}") for i in range(2)]
    holders = [pool.submit(hold, big, path, release) for path in started]
    for path in started:
        tasks.wait_for_file(path, 30)
    workers = [w.pid for w in pool.stats().workers]
    names = sorted(n for pid in [os.getpid(), *workers] if pid for n in segments_of(pid))
    print(json.dumps({"pid": os.getpid(), "workers": workers, "segments": names}), flush=True)
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    tasks.touch(release)
    for holder in holders:
        holder.result(30)
    if mode == "close":
        pool.close()
        buf.release()
        kept.release()


if __name__ == "__main__":
    main()
