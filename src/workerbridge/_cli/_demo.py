"""``workerbridge demo`` (``make demo``): the main job on a generated sample.

A temporary folder gets a sample of mixed content (logs, random "photos", binary sensor
records, a mostly empty disk image, a hundred small documents), then the sample goes
through the same bridge operations the commands use: a checksum manifest, gzip
compression, AES-256-GCM encryption, decryption, decompression into a second folder, and
a verification of the restored folder against the manifest. A last step flips one byte of
an encrypted file to show that decryption refuses it. Each step draws its progress bars
(on a terminal) and prints one line; the end prints a summary with the pool's statistics.
The folder is removed however the demo ends (Ctrl-C included).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._exceptions import IntegrityError
from .._pool import ProgressInfo, TaskHandle
from ._errors import EXIT_FAILURE, EXIT_OK, CliError
from ._runner import Work, run_all
from ._session import Session
from ._units import human_bytes, human_rate, human_seconds

__all__ = ["cmd_demo", "generate_sample"]

MiB = 1 << 20
#: The sample's mix: (folder/name pattern, share of the size, kind).
_LAYOUT = (
    ("logs/app-{}.log", 0.36, "text", 4),
    ("photos/IMG_{:04d}.raw", 0.28, "random", 6),
    ("data/sensors-{}.bin", 0.20, "records", 2),
    ("disk-{}.img", 0.10, "sparse", 1),
    ("docs/note-{:03d}.txt", 0.06, "text", 100),
)
#: Free space the demo needs, as a multiple of the sample (the sample, its compressed
#: and encrypted copies, the restored folder).
_SPACE_FACTOR = 3.5


@dataclass(frozen=True)
class _Step:
    name: str
    bytes_in: int
    bytes_out: int
    seconds: float


class _Maker:
    """Deterministic content of each kind, in blocks of up to 1 MiB."""

    def __init__(self, seed: int = 2026) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        words = [
            "".join(rng.choices("etaoinshrdlucmfwyp", k=rng.randint(2, 9))) for _ in range(600)
        ]
        levels = ("INFO",) * 8 + ("DEBUG", "DEBUG", "WARN", "ERROR")
        self.lines = [
            f"2026-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
            f":{rng.randint(0, 59):02d}Z {rng.choice(levels)} req={rng.getrandbits(32):08x} "
            + " ".join(rng.choices(words, k=rng.randint(4, 14)))
            + "\n"
            for _ in range(4000)
        ]
        self.sensor_ids = bytes(i & 0x3F for i in range(256))
        self.seq = 0

    def block(self, kind: str, size: int) -> bytes:
        if kind == "random":
            return os.urandom(size)
        if kind == "text":
            text = "".join(self.rng.choices(self.lines, k=size // 60 + 1)).encode()
            return text[:size]
        if kind == "records":  # 32-byte records: sequence, sensor id, payload, zero padding
            n = size // 32 + 1
            out = bytearray(32 * n)
            seq = array("Q", range(self.seq, self.seq + n)).tobytes()
            self.seq += n
            for k in range(8):
                out[k::32] = seq[k::8]
            out[8::32] = os.urandom(n).translate(self.sensor_ids)
            payload = os.urandom(6 * n)
            for k in range(6):
                out[12 + k :: 32] = payload[k::6]
            return bytes(out[:size])
        # sparse: zeros with a little data here and there
        out = bytearray(size)
        for _ in range(max(1, size // (256 << 10))):
            at = self.rng.randrange(0, max(1, size - 4096))
            out[at : at + 4096] = os.urandom(min(4096, size - at))
        return bytes(out)


def _plan(total: int) -> list[tuple[str, int, str]]:
    """(relative path, size, kind) of every file: each group gets its share of ``total``,
    in files whose sizes vary from half to one and a half times the group's mean."""
    files = []
    for pattern, share, kind, count in _LAYOUT:
        part = int(total * share)
        weights = [0.5 + (i * 7919 % count) / count for i in range(count)]
        sizes = [int(part * w / sum(weights)) for w in weights]
        sizes[-1] += part - sum(sizes)  # the group adds up to its share exactly
        files += [(pattern.format(i + 1), max(1, n), kind) for i, n in enumerate(sizes)]
    return files


def generate_sample(
    folder: str, total: int, on_bytes: Callable[[int], object] | None = None
) -> list[tuple[str, int]]:
    """Write the sample (about ``total`` bytes) under ``folder``; return (relative path,
    size) of each file. ``on_bytes(n)`` is called as bytes are written."""
    maker = _Maker()
    written: list[tuple[str, int]] = []
    for rel, size, kind in _plan(total):
        path = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            left = size
            while left:
                block = maker.block(kind, min(MiB, left))
                f.write(block)
                left -= len(block)
                if on_bytes is not None:
                    on_bytes(len(block))
        written.append((rel, size))
    return written


def _each(
    session: Session,
    title: str,
    files: list[tuple[str, int]],
    start: Callable[[str, Callable[[ProgressInfo], object]], TaskHandle[Any]],
) -> tuple[list[Any], float]:
    def work(rel: str, size: int) -> Work[Any]:
        return Work(rel, size, lambda cb: start(rel, cb))

    works = [work(rel, size) for rel, size in files]
    outcome = run_all(session, works, title=title, window=2 * session.pool.size)
    return outcome.results, outcome.seconds


def _iter_lines(steps: list[_Step]) -> Iterator[str]:
    yield f"  {'step':<12} {'in':>11} {'out':>11} {'time':>8} {'rate':>13}"
    for s in steps:
        out = human_bytes(s.bytes_out) if s.bytes_out else "-"
        yield (
            f"  {s.name:<12} {human_bytes(s.bytes_in):>11} {out:>11}"
            f" {human_seconds(s.seconds):>8} {human_rate(s.bytes_in, s.seconds):>13}"
        )


def cmd_demo(session: Session, args: argparse.Namespace) -> int:
    """``workerbridge demo [--size SIZE]``: see the module docstring."""
    total: int = args.size
    base = tempfile.gettempdir()
    free = shutil.disk_usage(base).free
    if free < _SPACE_FACTOR * total:
        raise CliError(
            f"the demo needs about {human_bytes(_SPACE_FACTOR * total)} free in {base} "
            f"({human_bytes(free)} free); try --size {max(1, total // 4 // MiB)}M"
        )
    root = tempfile.mkdtemp(prefix="workerbridge-demo-")
    try:
        return _demo(session, root, total)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _demo(session: Session, root: str, total: int) -> int:
    pool = session.pool
    bridge = session.bridge
    say = session.out
    started = time.monotonic()
    say(
        f"workerbridge demo: {pool.size} {pool.backend} workers, a {human_bytes(total)} sample"
        f" in {root}\n\n"
    )
    sample, packed, restored = (os.path.join(root, d) for d in ("sample", "packed", "restored"))
    steps: list[_Step] = []

    def line(n: int, step: _Step, what: str) -> None:
        steps.append(step)
        say(
            f"{n}. {step.name:<11} {what} in {human_seconds(step.seconds)}"
            f" ({human_rate(step.bytes_in, step.seconds)})\n"
        )

    # 1. the sample, written here (it is the input, not part of the job)
    display = session.display()
    bar = display.add("generate sample", total)
    done = 0

    def wrote(n: int) -> None:
        nonlocal done
        done += n
        display.update(bar, done)

    display.start()
    t = time.monotonic()
    try:
        files = generate_sample(sample, total, wrote)
    finally:
        display.stop()
    size = sum(s for _, s in files)
    line(1, _Step("generate", size, size, time.monotonic() - t), f"{len(files)} files")

    # 2. manifest
    manifest = os.path.join(root, "SHA256SUMS")
    outcome = run_all(
        session,
        [Work("sample", size, lambda cb: bridge.file.checksum_manifest(sample, on_progress=cb))],
        title="manifest",
    )
    with open(manifest, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(outcome.results[0])
    line(2, _Step("manifest", size, 0, outcome.seconds), f"sha256 of {len(files)} files")

    # 3. compress
    def compress(rel: str, cb: Callable[[ProgressInfo], object]) -> TaskHandle[Any]:
        out = os.path.join(packed, rel + ".gz")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        return bridge.compression.compress_file(
            os.path.join(sample, rel), out, format="gzip", on_progress=cb
        )

    results, seconds = _each(session, "compress (gzip)", files, compress)
    gz = [(rel + ".gz", r.bytes_out) for (rel, _), r in zip(files, results, strict=True)]
    gz_size = sum(s for _, s in gz)
    line(3, _Step("compress", size, gz_size, seconds), f"gzip -> {human_bytes(gz_size)}")

    # 4. encrypt
    key = bridge.crypto.generate_key()

    def encrypt(rel: str, cb: Callable[[ProgressInfo], object]) -> TaskHandle[Any]:
        src = os.path.join(packed, rel)
        return bridge.crypto.encrypt_file(src, key, output=src + ".enc", on_progress=cb)

    results, seconds = _each(session, "encrypt", gz, encrypt)
    enc = [(rel + ".enc", r.bytes_out) for (rel, _), r in zip(gz, results, strict=True)]
    enc_size = sum(s for _, s in enc)
    line(4, _Step("encrypt", gz_size, enc_size, seconds), "AES-256-GCM, chunked")

    # 5. decrypt into the restored folder
    def decrypt(rel: str, cb: Callable[[ProgressInfo], object]) -> TaskHandle[Any]:
        out = os.path.join(restored, rel.removesuffix(".enc"))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        return bridge.crypto.decrypt_file(
            os.path.join(packed, rel), key, output=out, on_progress=cb
        )

    results, seconds = _each(session, "decrypt", enc, decrypt)
    line(5, _Step("decrypt", enc_size, gz_size, seconds), "every chunk authenticated")

    # 6. decompress
    def decompress(rel: str, cb: Callable[[ProgressInfo], object]) -> TaskHandle[Any]:
        src = os.path.join(restored, rel)
        return bridge.compression.decompress_file(src, src.removesuffix(".gz"), on_progress=cb)

    results, seconds = _each(session, "decompress", gz, decompress)
    line(6, _Step("decompress", gz_size, size, seconds), "gzip -d compatible")

    # 7. verify the restored folder against the manifest
    checked = run_all(
        session,
        [
            Work(
                "restored",
                size,
                lambda cb: bridge.file.verify_manifest(manifest, restored, on_progress=cb),
            )
        ],
        title="verify",
    )
    report = checked.results[0]
    verdict = f"{len(report.ok)} OK, {len(report.failed) + len(report.missing)} FAILED"
    line(7, _Step("verify", size, 0, checked.seconds), verdict)

    # 8. tampering: one flipped byte, and decryption refuses the file
    victim = min(enc, key=lambda item: item[1])[0]
    path = os.path.join(packed, victim)
    with open(path, "r+b") as raw:
        raw.seek(os.path.getsize(path) // 2)
        byte = raw.read(1)
        raw.seek(-1, os.SEEK_CUR)
        raw.write(bytes([byte[0] ^ 0x01]))
    tampered = bridge.crypto.decrypt_file(path, key, output=path + ".out").exception()
    refused = isinstance(tampered, IntegrityError) and not os.path.exists(path + ".out")
    outcome_text = (
        f"decryption refused ({type(tampered).__name__}), nothing written"
        if refused
        else "NOT DETECTED"
    )
    say(f"8. tamper      flipped 1 byte of {victim}: {outcome_text}\n")

    stats = pool.stats()
    plural = "s" if len(stats.workers) != 1 else ""
    say("\nsummary\n")
    say("".join(line + "\n" for line in _iter_lines(steps[1:])))
    elapsed = time.monotonic() - started
    say(
        f"  total {human_seconds(elapsed)}; sample {human_bytes(size)} -> gzip"
        f" {human_bytes(gz_size)} ({100 * gz_size / size:.1f}%) -> encrypted"
        f" {human_bytes(enc_size)}\n"
    )
    say(
        f"\npool: {len(stats.workers)} {stats.backend} worker{plural},"
        f" utilization {100 * stats.utilization:.0f}%, {stats.restarts} restarts\n"
        f"  tasks: {stats.submitted} submitted, {stats.completed} completed,"
        f" {stats.failed} failed (the tampered file), {stats.cancelled} cancelled\n"
        f"  wait p50 {1e3 * stats.wait_time.p50:.2f} ms, p99 {1e3 * stats.wait_time.p99:.1f} ms;"
        f" run p50 {1e3 * stats.run_time.p50:.1f} ms, p99 {1e3 * stats.run_time.p99:.1f} ms\n"
    )
    for w in stats.workers:
        say(f"  worker {w.index}: pid {w.pid}, {w.completed} tasks, {w.failed} failed\n")
    ok = bool(report.passed) and refused
    say(f"\n{'all checks passed' if ok else 'SOMETHING FAILED'}; removing {root}\n")
    return EXIT_OK if ok else EXIT_FAILURE
