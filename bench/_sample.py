"""The input of the bridge workloads: a file of mixed content, made deterministically.

The file is a run of segments of 64 KiB to 2 MiB (so that no segment boundary lines up with
a compressor's chunk), each of one kind, drawn with these weights:

    text      40%  words of a Zipf-like vocabulary of 8,192 made-up words, with
                   punctuation and line breaks (gzip -6 about 2.5x, like prose)
    records   25%  log lines of a web server: timestamp, level, request id, user, path,
                   status, size, duration (about 4.8x)
    random    15%  incompressible bytes (a compressor's worst case: it must still copy them)
    binary    14%  32-byte binary records: sequence number, timestamp, sensor id, 8 random
                   bytes of payload, zero padding (about 2x)
    zeros      6%  zero bytes, as in sparse or preallocated files

so that gzip -6 and zstd -3 shrink the whole about 2.3x (on 1 GiB of seed 1: pigz -6 2.32x,
zstd -3 -T2 2.38x). The kinds and sizes come from ``random.Random(seed)``, the bytes from
SHAKE-128 of ``(seed, segment index)``: every run makes the same file (and so does every
machine with the same Python version; only ``random()``'s sequence is promised across
versions).

Making 1 GiB takes 10-15 s on one core (mostly the text and the log lines), written in
8 MiB batches: the whole file is never held in memory.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import re
import shutil
import tempfile
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Inputs", "Sample", "generate", "parse_size", "segments"]

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
SEGMENT_MIN = 64 * KiB
SEGMENT_MAX = 2 * MiB
KINDS = ("text", "records", "random", "binary", "zeros")
WEIGHTS = (40, 25, 15, 14, 6)
VOCABULARY = 8192
# English letter frequencies (per mille), so that words look like words to an entropy coder.
LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
LETTER_WEIGHTS = (127, 91, 82, 75, 70, 67, 63, 61, 60, 43, 40, 28, 28, 24, 24, 22, 20, 20, 19,
                  15, 10, 8, 2, 2, 1, 1)  # fmt: skip
LEVELS = ("INFO",) * 12 + ("DEBUG",) * 3 + ("WARN", "ERROR")
PATHS = (
    "/api/v1/items",
    "/api/v1/items/{}",
    "/api/v1/users/{}",
    "/api/v1/users/{}/orders",
    "/static/app.{}.js",
    "/login",
    "/healthz",
    "/search?q={}",
)
_SENSOR_IDS = bytes(i & 0x3F for i in range(256))  # a random byte -> sensor id 0-63
STATUSES = (200,) * 24 + (201, 204, 301, 304, 304, 400, 401, 403, 404, 404, 500, 503)


class _Maker:
    """Makes the segments of one seed in order (the text and record state carries on)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        rng = self.rng
        words = [
            "".join(rng.choices(LETTERS, LETTER_WEIGHTS, k=rng.choice((1, 2, 2, 3, 3, 4, 4, 5,
                                                                      5, 6, 6, 7, 8, 9, 11))))
            for _ in range(VOCABULARY)
        ]  # fmt: skip
        separators = (" ",) * 14 + (", ", ". ", ".\n", "\n")
        # A 16-bit random number picks a token: rank = (V + 1) ** u - 1 is log-uniform in the
        # rank, which is Zipf's law with exponent 1 (a few words are very common).
        self.tokens = [
            (words[int((VOCABULARY + 1) ** (i / 65536)) - 1] + rng.choice(separators)).encode()
            for i in range(65536)
        ]
        self.token_mean = sum(map(len, self.tokens)) / len(self.tokens)
        self.request = 0
        self.millis = 1_764_000_000_000  # a fixed start, 2025-11-24, in ms since the epoch
        self.record = 0

    def random_bytes(self, index: int | str, n: int) -> bytes:
        return hashlib.shake_128(f"workerbridge bench {self.seed} {index}".encode()).digest(n)

    def segment(self, index: int) -> bytes:
        rng = self.rng
        kind = rng.choices(KINDS, WEIGHTS)[0]
        n = rng.randrange(SEGMENT_MIN, SEGMENT_MAX + 1)
        data: bytes
        if kind == "text":
            data = self._text(index, n)
        elif kind == "records":
            data = self._records(index, n)
        elif kind == "random":
            data = self.random_bytes(index, n)
        elif kind == "binary":
            data = self._binary(index, n)
        else:
            data = bytes(n)
        return data[:n]

    def _text(self, index: int | str, n: int) -> bytes:
        # Enough 16-bit picks for a little more than n bytes (tokens have a mean length).
        count = int(n / self.token_mean * 1.05) + 16
        picks = memoryview(self.random_bytes(index, 2 * count)).cast("H")
        data = b"".join(map(self.tokens.__getitem__, picks))
        while len(data) < n:  # rare: a run of short tokens
            data += self._text(f"{index}+", n - len(data))
        return data

    def _records(self, index: int | str, n: int) -> bytes:
        # Lines average ~95 bytes (at least 80): n // 88 lines, more if they fall short.
        count = n // 88 + 1
        values = memoryview(self.random_bytes(index, 8 * count)).cast("H")
        lines = []
        request, millis = self.request, self.millis
        for i in range(count):
            a, b, c, d = values[4 * i : 4 * i + 4]
            request += 1
            millis += a & 0x3F
            seconds, ms = divmod(millis, 1000)
            path = PATHS[b & 7].format(c % 5000)
            lines.append(
                f"{seconds}.{ms:03d} {LEVELS[b >> 3 & 15]} req={request:08d} "
                f"user=u{c % 20000:05d} GET {path} status={STATUSES[d % 36]} "
                f"bytes={(a >> 6) * 7 + d % 97} ms={(d >> 6) / 10:.1f}\n"
            )
        self.request, self.millis = request, millis
        data = "".join(lines).encode()
        while len(data) < n:
            data += self._records(f"{index}+", n - len(data))
        return data

    def _binary(self, index: int, n: int) -> bytes:
        count = n // 32 + 1
        start = self.record
        self.record += count
        noise = self.random_bytes(index, 9 * count)
        out = bytearray(32 * count)
        # Columns written lane by lane (a strided slice assignment per byte of a field) so
        # that no Python code runs per record.
        sequence = array("I", range(start, start + count)).tobytes()
        stamps = array("I", range(start * 25, (start + count) * 25, 25)).tobytes()
        for lane in range(4):
            out[lane::32] = sequence[lane::4]
            out[4 + lane :: 32] = stamps[lane::4]
        out[8::32] = noise[8 * count :].translate(_SENSOR_IDS)
        for lane in range(8):
            out[12 + lane :: 32] = noise[lane : 8 * count : 8]
        return bytes(out)


def segments(seed: int) -> Iterator[bytes]:
    """The endless run of segments for ``seed``."""
    maker = _Maker(seed)
    for index in itertools.count():
        yield maker.segment(index)


@dataclass(frozen=True)
class Sample:
    """A generated file: where it is, its size and the sha256 of its halves and whole."""

    path: str
    size: int
    sha256: str
    first_half_sha256: str
    second_half_sha256: str


def generate(path: str, size: int, seed: int = 1) -> Sample:
    """Write ``size`` bytes of the mixed content of ``seed`` to ``path`` (replaced if it
    exists) and return their digests: of the whole and of the halves at ``size // 2``."""
    half = size // 2
    whole, first, second = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    written = 0
    batch: list[bytes] = []
    batched = 0
    with open(path, "wb") as out:
        for data in segments(seed):
            data = data[: size - written]
            whole.update(data)
            if written + len(data) <= half:
                first.update(data)
            elif written >= half:
                second.update(data)
            else:
                first.update(data[: half - written])
                second.update(data[half - written :])
            written += len(data)
            batch.append(data)
            batched += len(data)
            if batched >= 8 * MiB or written >= size:
                out.write(b"".join(batch))
                batch, batched = [], 0
            if written >= size:
                break
    os.truncate(path, size)  # size 0: the loop above wrote nothing
    return Sample(path, size, whole.hexdigest(), first.hexdigest(), second.hexdigest())


def parse_size(text: str) -> int:
    """``"16MiB"``, ``"256M"``, ``"1GiB"``, ``"1g"`` or a number of bytes -> bytes (K, M
    and G are binary units here, with or without ``iB``/``B``); at least 2 MiB."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*", text.lower())
    if match is None:
        raise ValueError(f"not a size: {text!r} (say 16MiB, 256MiB, 1GiB)")
    size = int(float(match[1]) * {"": 1, "k": KiB, "m": MiB, "g": GiB}[match[2]])
    if size < 2 * MiB:
        raise ValueError(f"size {text!r} is below 2 MiB")
    return size


class Inputs:
    """The files of the bridge workloads, made on first use and removed by ``close()``.

    In a fresh folder under ``$TMPDIR`` (``/tmp``): ``input.bin`` (``size`` bytes of mixed
    content), its halves ``half-a.bin`` and ``half-b.bin`` (the two files hashed), the first
    16 MiB as ``warm.bin`` (the bridge's warm-up before the clock) and the empty ``out/``
    where both sides write. Dirty pages are flushed once everything is written, so that
    the first timed run does not share the disk with the write-back of the inputs.
    """

    WARM = 16 * MiB

    def __init__(self, size: int, seed: int = 1) -> None:
        self.size = size
        self.seed = seed
        self.folder: str | None = None
        self.seconds = 0.0
        self._params: dict[str, object] | None = None

    def params(self) -> dict[str, object]:
        """The workloads' parameters naming the files (made on the first call)."""
        if self._params is None:
            self._params = self._make()
        return self._params

    def _make(self) -> dict[str, object]:
        t0 = time.perf_counter()
        self.folder = tempfile.mkdtemp(prefix="workerbridge-bench-")
        path = os.path.join(self.folder, "input.bin")
        sample = generate(path, self.size, self.seed)
        half = self.size // 2
        halves = [os.path.join(self.folder, name) for name in ("half-a.bin", "half-b.bin")]
        _copy_range(path, halves[0], 0, half)
        _copy_range(path, halves[1], half, self.size - half)
        warm = os.path.join(self.folder, "warm.bin")
        _copy_range(path, warm, 0, min(self.WARM, self.size))
        out = os.path.join(self.folder, "out")
        os.mkdir(out)
        os.sync()
        self.seconds = time.perf_counter() - t0
        return {
            "size": self.size,
            "input": path,
            "sha256": sample.sha256,
            "halves": halves,
            "halves_sha256": [sample.first_half_sha256, sample.second_half_sha256],
            "warm": warm,
            "out_dir": out,
        }

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
            self._params = None


def _copy_range(src: str, dst: str, offset: int, length: int) -> None:
    """``length`` bytes of ``src`` from ``offset`` into a new file ``dst``, in the kernel."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        done = 0
        while done < length:
            n = os.copy_file_range(fin.fileno(), fout.fileno(), length - done, offset + done)
            if n == 0:
                raise OSError(f"{src} ended before {offset + length} bytes")
            done += n
