"""The bridge workloads: a bridge operation against the command-line tool for the same job.

Each workload has two contenders, ``workerbridge`` (the bridge over ``WorkerPool(2)``) and
the tool, run in alternating order by the runner (one fresh child process per run, medians
over the repeats, the ratio taken against the tool measured in the same run):

    gzip_file     compression.compress_file(format="gzip", level=6)   pigz -6 -p 2 -c
    zstd_file     compression.compress_file(format="zstd", level=3)   zstd -3 -T2 -c
    hash_files    file.hash_files([a, b], "sha256")                    sha256sum a b
    encrypt_file  crypto.encrypt_file(path, key, output=...)           cp path out

Every run, before the clock: the output folder (beside the inputs, one filesystem for both
sides) is emptied, the run's inputs are read once (page cache warm on both sides) and dirty
pages are flushed (``os.sync``). The bridge side also starts its pool and runs the same
operation once on a 16 MiB slice (the channel modules are imported in the workers). The
clock covers the operation alone: for the tool, process start to exit; for the bridge, the
call to ``result()``. Outputs are checked after the clock (sizes, digests; in the first
repeat the bridge's compressed file is read back by ``gzip -dc`` / ``zstd -dc`` and its
encrypted file by ``decrypt_file``) and removed after every run. Besides the time, each run
reports the CPU seconds spent inside the clock (the tool; or the caller and the workers):
how much work each side needed, which a busy machine disturbs less than the time.

A bridge operation that does not exist (yet) gives the word ``missing`` instead of a time.
The inputs are made by ``_sample.Inputs`` in the parent, once per run of the benchmarks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ._machine import Limit, memcpy_gibs, sha256_gibs
from ._peers import SUBJECT, Adapter, is_subject, make_adapter
from ._runner import Outcome
from ._workloads import Goal, Metric, Workload

__all__ = ["BRIDGE_WORKLOADS", "GROUP", "TOOLS", "limits", "make_contender", "paired_note"]

MiB = 1 << 20
GiB = 1 << 30
WORKERS = 2
GROUP = "bridges"  # ``--only bridges``: every workload below
MISSING = "missing"  # the bridge operation is not there (yet)
READ_BLOCK = 8 * MiB

PIGZ, ZSTD, SHA256SUM, CP = "pigz -6 -p 2", "zstd -3 -T2", "sha256sum", "cp"
#: contender name -> (program, Debian package)
TOOLS: dict[str, tuple[str, str]] = {
    PIGZ: ("pigz", "pigz"),
    ZSTD: ("zstd", "zstd"),
    SHA256SUM: ("sha256sum", "coreutils"),
    CP: ("cp", "coreutils"),
}


class Tool(Adapter):
    """A command-line tool as a contender: it has no pool, only a program to find."""

    start_method = "-"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.program, self.package = TOOLS[name]

    def load(self) -> None:
        if shutil.which(self.program) is None:
            raise RuntimeError(
                f"{self.program} is not installed (apt-get install -y {self.package})"
            )


def make_contender(name: str) -> Adapter:
    """A tool by its contender name, else one of the pools of ``_peers``."""
    if name in TOOLS:
        tool = Tool(name)
        tool.load()
        return tool
    return make_adapter(name)


# ---------------------------------------------------------------------------- helpers
def _read_through(path: str) -> int:
    """Read the file once (its pages stay in the page cache); return its size."""
    buf = bytearray(READ_BLOCK)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            total += n
    return total


def _clear(folder: str) -> None:
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _prepare(params: dict[str, Any], inputs: list[str]) -> str:
    """Empty the output folder, warm the inputs, flush dirty pages; the output folder."""
    out = params["out_dir"]
    _clear(out)
    for path in inputs:
        _read_through(path)
    os.sync()
    return str(out)


class _Clock:
    """Wall seconds and CPU seconds of what runs inside the ``with`` block: this process
    (all its threads: the bridge's caller side), its children that ended (a tool) and the
    given worker processes (the bridge's pool)."""

    def __init__(self, worker_pids: list[int] | None = None) -> None:
        import psutil  # a dependency of workerbridge, so there for every contender

        self._workers = [psutil.Process(pid) for pid in worker_pids or []]
        self.seconds = self.cpu = 0.0

    def _cpu(self) -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        ended = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime
        return total + sum(sum(w.cpu_times()[:2]) for w in self._workers)

    def __enter__(self) -> _Clock:
        self._cpu0 = self._cpu()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self.cpu = self._cpu() - self._cpu0

    def rate(self, nbytes: int) -> dict[str, float | str]:
        return {"mibs": nbytes / MiB / self.seconds, "s": self.seconds, "cpu_s": self.cpu}


def _run_tool(argv: list[str], stdout_path: str | None = None) -> tuple[_Clock, bytes]:
    """Run the tool; its time from start to exit (the output file is opened inside the
    clock, as a shell redirection would be) and its stdout when not sent to a file."""
    with _Clock() as clock:
        proc = _run(argv, stdout_path)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(
            f"{' '.join(argv[:3])} exited with {proc.returncode}: {err[-1] if err else ''}"
        )
    return clock, proc.stdout or b""


def _run(argv: list[str], stdout_path: str | None) -> subprocess.CompletedProcess[bytes]:
    if stdout_path is None:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    else:
        with open(stdout_path, "wb") as out:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, check=False
            )
    return proc


def _sha256_of_stream(argv: list[str]) -> str:
    """sha256 of what ``argv`` writes on stdout (a decompressor reading back a file)."""
    digest = hashlib.sha256()
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while block := proc.stdout.read(READ_BLOCK):
            digest.update(block)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}")
    return digest.hexdigest()


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    buf = bytearray(READ_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


@contextlib.contextmanager
def _bridge(adapter: Adapter) -> Iterator[Any]:
    """``WorkerBridge(pool=WorkerPool(2))`` on the adapter's pool (started and warmed by
    ``start``; its worker pids noted for the shared-memory check by ``close``)."""
    adapter.start(WORKERS)
    try:
        from workerbridge import WorkerBridge

        yield WorkerBridge(pool=adapter.pool)  # type: ignore[attr-defined]
    finally:
        adapter.close()


def _timed(bridge: Any, start: Callable[[], Any]) -> tuple[_Clock, Any]:
    """From starting the operation (``start`` returns its handle) to its result, with the
    CPU time of the caller and of the bridge's workers."""
    pids = [w.pid for w in bridge.pool.stats().workers if w.pid]
    with _Clock(pids) as clock:
        result = start().result()
    return clock, result


def _missing(*keys: str) -> dict[str, float | str]:
    return dict.fromkeys(("mibs", "s", "cpu_s", *keys), MISSING)


def _check_file_result(result: Any, path: str, size: int) -> None:
    """The bridge's ``FileResult`` matches the file it wrote and the input it read."""
    written = os.path.getsize(path)
    if result.bytes_in != size or result.bytes_out != written:
        raise RuntimeError(
            f"FileResult(bytes_in={result.bytes_in}, bytes_out={result.bytes_out}) but the "
            f"input has {size} bytes and {path} {written}"
        )


# ---------------------------------------------------------------------------- compression
def _compress(
    adapter: Adapter,
    params: dict[str, Any],
    fmt: str,
    level: int,
    argv: list[str],
    suffix: str,
    decompress: list[str],
) -> dict[str, float | str]:
    src, size = params["input"], params["size"]
    out_dir = _prepare(params, [src])
    out = os.path.join(out_dir, Path(src).name + suffix)
    try:
        if not is_subject(adapter.name):
            clock, _ = _run_tool([*argv, src], stdout_path=out)
        else:
            with _bridge(adapter) as bridge:
                op = getattr(bridge.compression, "compress_file", None)
                if op is None:
                    return _missing("ratio")
                warm = os.path.join(out_dir, "warm" + suffix)
                op(params["warm"], warm, format=fmt, level=level).result()
                os.unlink(warm)
                clock, result = _timed(bridge, lambda: op(src, out, format=fmt, level=level))
            _check_file_result(result, out, size)
            # The standard tool reads the bridge's output back to the input's bytes.
            first = params.get("repeat", 0) == 0 and shutil.which(decompress[0])
            if first and _sha256_of_stream([*decompress, out]) != params["sha256"]:
                raise RuntimeError(f"{decompress[0]} -dc of the bridge's output differs")
        metrics = clock.rate(size)
        metrics["ratio"] = size / max(1, os.path.getsize(out))
        return metrics
    finally:
        _clear(out_dir)


def measure_gzip(adapter: Adapter, params: dict[str, Any]) -> dict[str, float | str]:
    return _compress(
        adapter, params, "gzip", 6, ["pigz", "-6", "-p", "2", "-c"], ".gz", ["gzip", "-dc"]
    )


def measure_zstd(adapter: Adapter, params: dict[str, Any]) -> dict[str, float | str]:
    return _compress(
        adapter, params, "zstd", 3, ["zstd", "-3", "-T2", "-q", "-c"], ".zst", ["zstd", "-dcq"]
    )


# ---------------------------------------------------------------------------- hashing
def measure_hash(adapter: Adapter, params: dict[str, Any]) -> dict[str, float | str]:
    """sha256 of the two halves: ``file.hash_files`` (both in parallel) vs ``sha256sum a b``
    (one after the other); the digests are checked on both sides."""
    paths, expected = params["halves"], params["halves_sha256"]
    _prepare(params, paths)
    total = sum(os.path.getsize(p) for p in paths)
    if not is_subject(adapter.name):
        clock, stdout = _run_tool(["sha256sum", *paths])
        digests = [line.split()[0] for line in stdout.decode().splitlines()]
    else:
        with _bridge(adapter) as bridge:
            op = getattr(bridge.file, "hash_files", None)
            if op is None:
                return _missing()
            op([params["warm"], params["warm"]], "sha256").result()
            clock, pairs = _timed(bridge, lambda: op(paths, "sha256"))
        if [p for p, _ in pairs] != paths:
            raise RuntimeError(f"hash_files returned paths {[p for p, _ in pairs]}")
        digests = [d for _, d in pairs]
    if digests != expected:
        raise RuntimeError(f"{adapter.name}: digests {digests} differ from {expected}")
    return clock.rate(total)


# ---------------------------------------------------------------------------- encryption
def measure_encrypt(adapter: Adapter, params: dict[str, Any]) -> dict[str, float | str]:
    """``crypto.encrypt_file`` of the input to a file vs ``cp`` of the input."""
    src, size = params["input"], params["size"]
    out_dir = _prepare(params, [src])
    out = os.path.join(out_dir, Path(src).name + ".enc")
    try:
        if not is_subject(adapter.name):
            clock, _ = _run_tool(["cp", src, out])
            if os.path.getsize(out) != size:
                raise RuntimeError("cp wrote a file of another size")
            return clock.rate(size)
        with _bridge(adapter) as bridge:
            crypto = bridge.crypto
            op = getattr(crypto, "encrypt_file", None)
            if op is None:
                return _missing()
            key = crypto.generate_key()
            warm = os.path.join(out_dir, "warm.enc")
            op(params["warm"], key, output=warm).result()
            os.unlink(warm)
            clock, result = _timed(bridge, lambda: op(src, key, output=out))
            if result.bytes_in != size or result.bytes_out != os.path.getsize(out):
                raise RuntimeError(f"encrypt_file returned {result!r}")
            decrypt = getattr(crypto, "decrypt_file", None)
            if params.get("repeat", 0) == 0 and decrypt is not None:
                back = os.path.join(out_dir, "decrypted")
                decrypt(out, key, output=back).result()
                if _sha256_file(back) != params["sha256"]:
                    raise RuntimeError("decrypt_file of the bridge's output differs")
        return clock.rate(size)
    finally:
        _clear(out_dir)


# ---------------------------------------------------------------------------- limits
def _pieces(path: str, size: int, count: int = 32, piece: int = MiB) -> list[bytes]:
    """``count`` pieces spread evenly over the file: a sample of every kind of segment in
    about the file's proportions (one 32 MiB slice holds only ~30 segments)."""
    piece = min(piece, size // count)
    with open(path, "rb") as f:
        out = []
        for i in range(count):
            f.seek((size - piece) * i // (count - 1))
            out.append(f.read(piece))
    return out


def _best_rate(fn: Callable[[], object], nbytes: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return nbytes / best


def limits(params: Mapping[str, Any], have: set[str]) -> list[Limit]:
    """This machine's limits for the bridge workloads, on this run's input where the
    content matters; those already measured (names in ``have``) are left out."""
    pieces = _pieces(params["input"], params["size"])
    total = sum(map(len, pieces))
    cores = min(WORKERS, os.cpu_count() or 1)
    piece = total // len(pieces)
    shown = f"{piece // MiB} MiB" if piece % MiB == 0 else f"{piece // 1024} KiB"
    note = f"{len(pieces)} x {shown} spread over the input, best of 3"
    out: list[Limit] = []
    zlib6 = _best_rate(lambda: [zlib.compress(p, 6) for p in pieces], total) / MiB
    out += [
        Limit("zlib-6, 1 core", zlib6, "MiB/s", note),
        Limit("zlib-6, 2-core limit", zlib6 * cores, "MiB/s", f"{cores} x 1 core"),
    ]
    try:
        import zstandard

        cctx = zstandard.ZstdCompressor(level=3)
        zstd3 = _best_rate(lambda: [cctx.compress(p) for p in pieces], total) / MiB
        out += [
            Limit("zstd-3, 1 core", zstd3, "MiB/s", note + " (zstandard)"),
            Limit("zstd-3, 2-core limit", zstd3 * cores, "MiB/s", f"{cores} x 1 core"),
        ]
    except ImportError:
        pass
    sha = sha256_gibs(128 * MiB)
    out += [
        Limit("sha256, 1 core", sha, "GiB/s", "hashlib, 8 MiB updates"),
        Limit("sha256, 2-core limit", sha * cores, "GiB/s", f"{cores} x 1 core"),
    ]
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aead, nonce, chunk = AESGCM(bytes(32)), bytes(12), pieces[0]
        # Into one buffer: a fresh 1 MiB result per call costs its page faults, which
        # would measure the allocator (~2 GiB/s) rather than the cipher.
        into = bytearray(len(chunk) + 16)
        gcm = _best_rate(
            lambda: [aead.encrypt_into(nonce, chunk, None, into) for _ in range(256)],
            256 * len(chunk),
        )
        out.append(
            Limit("AES-256-GCM, 1 core", gcm / GiB, "GiB/s", f"cryptography encrypt_into, {shown}")
        )
    except (ImportError, AttributeError):  # encrypt_into: cryptography >= 44
        pass
    out.append(Limit("memcpy", memcpy_gibs(), "GiB/s", "256 MiB bytearray into another"))
    read = _best_rate(lambda: _read_through(params["input"]), params["size"], 2) / GiB
    out.append(Limit("page-cache read", read, "GiB/s", "the input file, 8 MiB readinto"))
    return [limit for limit in out if limit.name not in have]


# ---------------------------------------------------------------------------- workloads
def _size(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB and n % (GiB // 4) == 0 else f"{n / MiB:g} MiB"


_RATE = Metric("mibs", "MiB/s", higher_is_better=True, digits=0)
_SECONDS = Metric("s", "s", higher_is_better=False, digits=2, ratio=False)
_CPU = Metric("cpu_s", "CPU s", higher_is_better=False, digits=2, ratio=False)
_RATIO = Metric("ratio", "in/out", higher_is_better=True, digits=2, ratio=False)
_SETUP = (
    f"{WORKERS} workers (`WorkerBridge(pool=WorkerPool({WORKERS}))`, forkserver, started and "
    "warmed with the same operation on a 16 MiB slice before the clock); inputs read once "
    "before the clock on both sides, outputs written to one folder beside them and removed "
    "after every run; tool time = process start to exit. CPU s = user + system seconds "
    "inside the clock: of the tool, or of the calling process and both workers (on a "
    "shared machine it varies less than the time)"
)
_NOTES = (
    "the input is mixed content made deterministically by `bench/_sample.py` (text, log "
    "lines, binary records, random bytes, zeros in segments of 64 KiB-2 MiB)",
)


def _compress_describe(tool: str, fmt: str, level: int) -> Callable[[dict[str, Any]], str]:
    return lambda p: (
        f"`compression.compress_file(path, out, format={fmt!r}, level={level})` of a "
        f"{_size(p['size'])} file vs `{tool} -c path > out`; MiB/s of input; in/out = the "
        f"compression ratio. {_SETUP}"
    )


BRIDGE_WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            name="gzip_file",
            title="compress_file gzip -6 vs pigz -6 -p 2",
            measure=measure_gzip,
            full={},
            quick={},
            metrics=(_RATE, _SECONDS, _CPU, _RATIO),
            goals=(Goal("mibs", ">=", 0.9, against=PIGZ),),
            timeout=600.0,
            describe=_compress_describe(PIGZ, "gzip", 6),
            notes=(
                *_NOTES,
                "the bridge writes multi-member gzip; in the first repeat `gzip -dc` reads "
                "it back to the input's sha256",
            ),
            repeats=5,
            limit=("zlib-6, 1 core", "zlib-6, 2-core limit"),
            contenders=(SUBJECT, PIGZ),
        ),
        Workload(
            name="zstd_file",
            title="compress_file zstd -3 vs zstd -3 -T2",
            measure=measure_zstd,
            full={},
            quick={},
            metrics=(_RATE, _SECONDS, _CPU, _RATIO),
            goals=(Goal("mibs", ">=", 0.9, against=ZSTD),),
            timeout=300.0,
            describe=_compress_describe(ZSTD, "zstd", 3),
            notes=(
                *_NOTES,
                "the bridge writes multi-frame zstd; in the first repeat `zstd -dc` reads it "
                "back to the input's sha256",
            ),
            repeats=5,
            limit=("zstd-3, 1 core", "zstd-3, 2-core limit"),
            contenders=(SUBJECT, ZSTD),
        ),
        Workload(
            name="hash_files",
            title="sha256 of two files vs sha256sum",
            measure=measure_hash,
            full={},
            quick={},
            metrics=(_RATE, _SECONDS, _CPU),
            goals=(Goal("mibs", ">=", 1.8, against=SHA256SUM),),
            timeout=300.0,
            describe=lambda p: (
                f"sha256 of two {_size(p['size'] // 2)} files (the halves of the input): "
                "`file.hash_files([a, b], 'sha256')` (both in parallel) vs `sha256sum a b` "
                f"(one after the other); MiB/s of both files; digests checked. {_SETUP}"
            ),
            notes=(
                *_NOTES,
                "sha256sum hashes one file after the other on one core with coreutils' own "
                "sha256; compare its MiB/s with `sha256, 1 core` (hashlib, OpenSSL) to see how "
                "much of the ratio comes from the implementation rather than the second core",
            ),
            repeats=None,  # runs of half a second: the suite's 7 repeats
            limit=("sha256, 1 core", "sha256, 2-core limit", "page-cache read"),
            contenders=(SUBJECT, SHA256SUM),
        ),
        Workload(
            name="encrypt_file",
            title="encrypt_file AES-256-GCM vs cp",
            measure=measure_encrypt,
            full={},
            quick={},
            metrics=(_RATE, _SECONDS, _CPU),
            goals=(Goal("mibs", ">=", 0.8, against=CP),),
            timeout=300.0,
            describe=lambda p: (
                f"`crypto.encrypt_file(path, key, output=out)` of a {_size(p['size'])} file "
                "(chunked AES-256-GCM, chunks in parallel) vs `cp path out`; MiB/s of input; "
                f"in the first repeat `decrypt_file` reads it back to the input's sha256. "
                f"{_SETUP}"
            ),
            notes=_NOTES,
            repeats=None,  # runs of half a second: the suite's 7 repeats
            limit=("AES-256-GCM, 1 core", "memcpy", "page-cache read"),
            contenders=(SUBJECT, CP),
        ),
    )
}


def paired_note(workload: Workload, outcomes: Mapping[str, Outcome]) -> str | None:
    """The median of the per-repeat ratios bridge / tool: each pair ran back to back, so it
    shares the machine's noise better than the ratio of the medians (the goal's)."""
    subject, tool = (outcomes.get(name) for name in workload.contenders)
    if subject is None or tool is None or subject.failure or tool.failure:
        return None
    ratios = [
        a / b for a, b in zip(subject.values("mibs"), tool.values("mibs"), strict=False) if b > 0
    ]
    if len(ratios) < 2:
        return None
    return (
        f"paired: the median of the {len(ratios)} per-repeat ratios (workerbridge / "
        f"{workload.contenders[1]}, run back to back) is {statistics.median(ratios):.2f}x "
        f"(from {min(ratios):.2f} to {max(ratios):.2f})"
    )
