"""One measurement in its own process: ``python -m bench._child '<json spec>'``.

The spec names a workload, a contender and the workload's parameters. The child prints one
line ``BENCH-RESULT {json}`` on stdout, with the metrics or with the error, and the pids
of itself and of the workers it knows of (the parent looks for shared-memory segments they
left behind). The parent kills the child's whole process group when it runs past its
timeout.

Workers of every contender import this module as their ``__main__`` (forkserver and spawn
re-import the parent's main module), so it imports nothing at module level beyond the
standard library.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

MARKER = "BENCH-RESULT "


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    pids = {os.getpid()}
    try:
        from ._bridges import BRIDGE_WORKLOADS, make_contender
        from ._workloads import WORKLOADS

        workload = WORKLOADS.get(spec["workload"]) or BRIDGE_WORKLOADS[spec["workload"]]
        adapter = make_contender(spec["contender"])
        try:
            metrics = workload.measure(adapter, spec["params"])
        finally:
            pids |= adapter.pids
        result: dict[str, object] = {"ok": True, "metrics": metrics}
    except BaseException as exc:
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    result["pids"] = sorted(pids)  # whose shared-memory segments the parent looks for
    print(MARKER + json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
