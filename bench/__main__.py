"""``python -m bench``: workerbridge against its peers, with ratios and goals.

Examples::

    python -m bench                         # everything (about 14 minutes on 2 cores)
    python -m bench --quick                 # fewer repeats, smaller sizes
    python -m bench --only roundtrip,map    # some workloads (``machine`` = the limits)
    python -m bench --only bridges          # the four bridge workloads (``bridges`` = all)
    python -m bench --only bridges --size 16MiB   # a smoke check of them (under a minute)
    python -m bench --output bench/RESULTS.md

The bridge workloads (``_bridges.py``) compare workerbridge's bridges with command-line tools
(pigz, zstd, sha256sum, cp) on one input file made at their first use (``_sample.py``), in
a temporary folder removed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import shlex
import sys
import time
from pathlib import Path

from . import _bridges, _machine
from ._bridges import BRIDGE_WORKLOADS, GROUP, TOOLS
from ._machine import Limit
from ._peers import CONTENDERS, START_METHODS, SUBJECT, is_subject
from ._report import (
    Section,
    build_section,
    goals_table,
    limits_table,
    render_markdown,
    render_text,
)
from ._runner import Run, run_workload
from ._sample import Inputs, parse_size
from ._workloads import WORKLOADS, Workload

ROOT = Path(__file__).resolve().parent.parent
FULL_REPEATS = 7
QUICK_REPEATS = 3
BRIDGE_SIZE = 1 << 30  # the bridge workloads' input (``--size``); --quick: 256 MiB
QUICK_BRIDGE_SIZE = 256 << 20
ALL: dict[str, Workload] = {**WORKLOADS, **BRIDGE_WORKLOADS}
NAMES = ("machine", *ALL)
GROUPS = {GROUP: tuple(BRIDGE_WORKLOADS)}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark workerbridge against its peers."
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these (comma-separated or repeated): {', '.join(NAMES)}; "
        f"{GROUP} = {', '.join(GROUPS[GROUP])}",
    )
    parser.add_argument(
        "--contenders",
        metavar="NAMES",
        help=f"comma-separated subset of: {', '.join(CONTENDERS)}",
    )
    parser.add_argument("--repeats", type=int, help="runs per contender and workload")
    parser.add_argument("--output", type=Path, metavar="PATH", help="write a Markdown report")
    parser.add_argument(
        "--size",
        metavar="SIZE",
        help="input of the bridge workloads, e.g. 16MiB, 256MiB (default 1GiB; --quick 256MiB)",
    )
    args = parser.parse_args(argv)
    only = [n.strip() for item in args.only or [] for n in item.split(",") if n.strip()]
    only = list(dict.fromkeys(w for n in only for w in GROUPS.get(n, (n,))))
    unknown = [n for n in only if n not in NAMES]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {', '.join(NAMES)} (or {GROUP})")
    args.only = only or list(NAMES)
    contenders = CONTENDERS
    if args.contenders:
        contenders = tuple(n.strip() for n in args.contenders.split(",") if n.strip())
        bad = [n for n in contenders if n not in CONTENDERS]
        if bad:
            parser.error(f"unknown contender(s) {bad}; choose from {', '.join(CONTENDERS)}")
    args.contenders = contenders
    try:
        args.size = parse_size(args.size) if args.size else None
    except ValueError as exc:
        parser.error(str(exc))
    if args.size is None:
        args.size = QUICK_BRIDGE_SIZE if args.quick else BRIDGE_SIZE
    args.repeats_given = args.repeats is not None
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else FULL_REPEATS
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


class _Progress:
    """One line per repeat: each contender's first metric as it comes in."""

    def __init__(self, workload: str, repeats: int) -> None:
        self.metric = ALL[workload].metrics[0]
        self.repeats = repeats
        self.repeat = -1

    def __call__(self, repeat: int, name: str, run: Run) -> None:
        if repeat != self.repeat:
            if self.repeat >= 0:
                print()
            self.repeat = repeat
            print(f"   repeat {repeat + 1}/{self.repeats}:", end="")
        if run.ok:
            value = run.metrics.get(self.metric.key, float("nan"))
            shown = value if isinstance(value, str) else f"{value:,.{self.metric.digits}f}"
        else:
            shown = "FAILED"
        if run.shm_left:
            shown += f" [{len(run.shm_left)} segment(s) left in /dev/shm]"
        print(f" {name} {shown} ({run.seconds:.1f} s);", end="", flush=True)

    def done(self) -> None:
        if self.repeat >= 0:
            print()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    inputs = Inputs(args.size)
    try:
        return _main(args, argv, inputs)
    finally:
        inputs.close()  # also on Ctrl-C: the input files are gigabytes


def _bridge_inputs(inputs: Inputs, limits: list[Limit]) -> dict[str, object]:
    """The bridge workloads' files (made on the first call, with their limits printed)."""
    if inputs.folder is not None:
        return inputs.params()
    print(f"\n== Input of the bridge workloads: {inputs.size / (1 << 20):,.0f} MiB", end="")
    print(" of mixed content ...", end="", flush=True)
    params = inputs.params()
    print(f" made in {inputs.seconds:.1f} s in {inputs.folder}")
    extra = _bridges.limits(params, {limit.name for limit in limits})
    print("\n== Physical limits for the bridge workloads")
    print(limits_table(extra).text())
    limits += extra
    return params


def _main(args: argparse.Namespace, argv: list[str] | None, inputs: Inputs) -> int:
    started = time.perf_counter()
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()
    machine = _machine.machine_facts(ROOT)
    src_before = _machine.src_state(ROOT)
    print(f"workerbridge benchmarks, {date}")
    for key, value in machine.items():
        print(f"  {key}: {value}")

    limits = []
    if "machine" in args.only:
        limits = _machine.measure_limits(quick=args.quick)
        print("\n== Physical limits of this machine")
        print(limits_table(limits).text())

    sections: list[Section] = []
    for name in args.only:
        if name == "machine":
            continue
        workload = ALL[name]
        params = workload.quick if args.quick else workload.full
        timeout = workload.timeout
        contenders = _with_variants(args.contenders, workload.variants)
        if workload.contenders:  # workerbridge (if chosen) against a command-line tool
            contenders = tuple(c for c in workload.contenders if c in TOOLS or c in contenders)
            params = {**params, **_bridge_inputs(inputs, limits)}
            timeout *= max(1.0, args.size / (1 << 30))
        if workload.subject_only:
            contenders = tuple(c for c in contenders if is_subject(c))
        if not contenders:
            print(f"\n.. {workload.title}: skipped (workerbridge only)")
            continue
        repeats = args.repeats
        if workload.repeats and not (args.repeats_given or args.quick):
            repeats = min(repeats, workload.repeats)
        runs = f"{repeats} repeat(s) x {len(contenders)} contenders"
        print(f"\n.. {workload.title}: {runs}")
        load = os.getloadavg()[0]
        progress = _Progress(name, repeats)
        outcomes = run_workload(
            name,
            params,
            contenders,
            repeats,
            timeout,
            ROOT,
            progress,
            is_final=functools.partial(_in_words, key=workload.metrics[0].key),
        )
        progress.done()
        section = build_section(workload, params, outcomes)
        if name in BRIDGE_WORKLOADS and (paired := _bridges.paired_note(workload, outcomes)):
            section.notes.append(paired)
        wanted = (workload.limit,) if isinstance(workload.limit, str) else workload.limit
        for limit in limits:
            if limit.name in wanted:
                section.notes.append(
                    f"this machine's {limit.name} (Physical limits, measured in this run): "
                    f"{limit.value:,.2f} {limit.unit}"
                )
        if repeats != args.repeats:
            section.notes.append(
                f"{repeats} repeats per contender here (a run takes long), not {args.repeats}"
            )
        section.notes.append(
            f"load average (1 min) before / after this workload: "
            f"{load:.2f} / {os.getloadavg()[0]:.2f}"
        )
        sections.append(section)
        print(render_text(section))

    if sections:
        print("\n== Goals")
        print(goals_table(sections).text())
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    print(f"\ntotal {elapsed / 60:.1f} min")
    # Every child imports workerbridge afresh: an edit of src/ during the run mixes versions.
    changed = _machine.src_state(ROOT) != src_before
    revision_after = _machine.machine_facts(ROOT)["workerbridge commit"]
    if changed:
        print(f"warning: workerbridge's src/ changed during the run (now {revision_after})")

    if args.output:
        command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
        title = {
            "date": date,
            "command": f"`{command.strip()}`",
            "duration": f"{elapsed / 60:.1f} min",
            "repeats": f"{args.repeats} per contender and workload (median shown)",
            "load average (1 min) before / after": f"{load_before[0]:.2f} / {load_after[0]:.2f}",
        }
        if changed:
            title["workerbridge's src/ changed during the run"] = (
                f"{machine['workerbridge commit']} at the start, {revision_after} at the end; "
                "later workloads may have run the newer code"
            )
        method = _method_notes(args, sections)
        text = render_markdown(
            title_facts=title, machine=machine, limits=limits, sections=sections, method=method
        )
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
        print(f"report written to {args.output}")

    failed = any(is_subject(row[0]) and "failed" in row for s in sections for row in s.table.rows)
    shm_left = [n for s in sections for n in s.shm_left]
    if shm_left:
        print(f"\nworkerbridge left {len(shm_left)} shared-memory segment(s) in /dev/shm")
    return 1 if failed or shm_left else 0


def _in_words(run: Run, key: str) -> bool:
    """The run ended in an outcome (``hangs``, ``broken``, ``n/a``) rather than a time."""
    return isinstance(run.metrics.get(key), str)


def _with_variants(contenders: tuple[str, ...], variants: tuple[str, ...]) -> tuple[str, ...]:
    """The workload's configurations of workerbridge, right after it (if it runs)."""
    if SUBJECT not in contenders:
        return contenders
    at = contenders.index(SUBJECT) + 1
    return (*contenders[:at], *variants, *contenders[at:])


def _method_notes(args: argparse.Namespace, sections: list[Section]) -> list[str]:
    methods = sorted({START_METHODS[c] for c in args.contenders})
    notes = [
        f"Contenders: {', '.join(args.contenders)}; 2 workers each (1 in the timeout "
        f"workload), start method "
        f"{' / '.join(methods)} for all. loky is a fresh `loky.ProcessPoolExecutor` per run "
        "(`get_reusable_executor` would reuse a cached pool); mpire uses `keep_alive=True` "
        "and `apply_async` for single tasks; pebble uses `submit` and `map(...).result()`.",
        "Rows `workerbridge bytearray`, `workerbridge numpy` and `workerbridge transfer()` are "
        "the default pool sent another kind of data (a `bytearray`, a 1-d `uint8` numpy "
        "array, SharedBuffers moved with `transfer()`) where the peers are sent `bytes`. "
        "Workloads on a feature only workerbridge has (`transfer()`) run it alone.",
        "Every measurement runs in a fresh interpreter (`python -m bench._child`), started "
        "in its own session; for each repeat every contender runs once, the order rotated by "
        "one place per repeat. Pools are started and warmed up before the clock (except in "
        "the pool-start workload) and closed after it.",
        "Values are medians over the repeats; `spread` is half the min-max range of the "
        "first column over the repeats, relative to the median. `x best peer` divides a "
        "median by the best peer's (peers: every contender but workerbridge and its "
        "configurations, such as `workerbridge kill_grace=0.05`).",
        "A run that passes its timeout is killed with its process group and the contender is "
        "reported as failed for that workload; processes still alive in the group after a "
        "run are killed and reported as left behind. Then workerbridge's shared-memory "
        "segments (`/dev/shm/wb-<pid>-...`) of the child and of the workers it knew of, if "
        "still there, are reported in the workload's notes and removed.",
        "Workloads whose single run takes seconds (the data workloads) use fewer repeats "
        "than the others when `--repeats` is not given; their sections say so.",
        "Task functions come from `bench/_tasks.py` (standard library only), so no "
        "contender's worker has to import workerbridge; they match "
        "`workerbridge.testing.tasks` except that `hash_chunks` repeats 4 KiB of random "
        "bytes into its block (`os.urandom` of 8 MiB costs as much as hashing it). The two "
        "that take a SharedBuffer (`sha256_shared`, `touch_shared`) import workerbridge "
        "inside, and only workerbridge runs them. Data is 4 KiB of random bytes repeated.",
        "Failure workloads (crash, timeout): a wait that can fail is guarded (a few seconds) "
        "and its outcome is then a word instead of a time: `hangs` (nothing came back), "
        "`broken` (the pool refuses or fails later tasks), `n/a` (no such feature). A "
        "contender whose first column is a word in its first run is not run again (such an "
        "outcome does not vary), so its `runs` shows 1. Pools there are terminated, not "
        "closed, after the clock: a task lost with its worker would block a graceful close "
        "(multiprocessing.Pool, mpire).",
        "The machine may be shared with other work while this runs; the load average before "
        "and after is recorded above. Compare ratios within one run, not across runs.",
    ]
    if any(s.workload.name in BRIDGE_WORKLOADS for s in sections):
        notes.append(
            "Bridge workloads: workerbridge's bridge over `WorkerPool(2)` against a "
            "command-line tool (the only peer there, so `x best peer` is the ratio to the tool "
            f"in the same run), alternating order, on one {args.size / (1 << 20):,.0f} MiB "
            "input of mixed content made deterministically by `bench/_sample.py` (text, "
            "log lines, binary records, random bytes, zeros) in a temporary folder, removed "
            "at the end. Each run empties the output folder, reads its inputs once (page "
            "cache warm on both sides) and calls `os.sync()` before the clock; both sides "
            "write into the same folder. Their limits (zlib-6, zstd-3, sha256, AES-256-GCM "
            "on one core, memcpy, page-cache read) are measured on that input after it is "
            "made. A bridge operation that does not exist gives `missing`."
        )
    return notes


if __name__ == "__main__":
    sys.exit(main())
