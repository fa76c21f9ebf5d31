"""The command line as a whole: help, version, usage errors, common options in either
place, ``info``, ``bench`` and the ``demo`` of ``make demo``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workerbridge._cli._cmd_system import find_checkout

from ._util import leftovers, one_error_line, run_cli, workerbridge_tmp_dirs

COMMANDS = ("hash", "manifest", "verify", "compress", "decompress", "encrypt", "decrypt",
            "keygen", "download", "info", "bench", "demo")  # fmt: skip


def test_help_lists_every_command_and_the_exit_codes(work: Path, env: dict[str, str]) -> None:
    result = run_cli("--help", cwd=work, env=env)
    assert result.returncode == 0
    text = result.stdout.decode()
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", text, re.MULTILINE), name
    assert "130  interrupted (Ctrl-C)" in text
    encrypt = run_cli("encrypt", "--help", cwd=work, env=env).stdout.decode()
    assert "64 hex digits" in encrypt
    assert "WORKERBRIDGE_KEY" in encrypt
    version = run_cli("--version", cwd=work, env=env)
    assert re.fullmatch(rb"workerbridge \d+\.\d+\.\d+\S*\n", version.stdout)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("hash", "--bogus"), "unrecognized arguments: --bogus"),
        (("--backend", "gpu", "info"), "invalid choice: 'gpu'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    work: Path, env: dict[str, str], args: tuple[str, ...], expected: str
) -> None:
    result = run_cli(*args, cwd=work, env=env)
    assert result.returncode == 2
    assert expected in one_error_line(result)


def test_info_as_text_and_json_with_options_before_or_after_the_command(
    work: Path, env: dict[str, str]
) -> None:
    text = run_cli("--workers", "1", "info", cwd=work, env=env)
    assert text.returncode == 0, text.stderr
    out = text.stdout.decode()
    for field in ("workerbridge", "python", "backend", "workers", "start method", "limits"):
        assert re.search(rf"^{field}\s", out, re.MULTILINE), field
    assert re.search(r"^workers\s+1: \d+ \(ready\)", out, re.MULTILINE)
    result = run_cli("info", "--json", "--backend", "thread", "-w", "3", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["backend"] == "thread"
    assert len(info["workers"]) == 3
    assert info["start_method"] is None
    assert info["libraries"]["cryptography"]
    assert info["limits"]["shm_threshold_bytes"] > 0
    assert leftovers(result) == []


def test_bench_runs_the_suite_of_the_checkout(work: Path, env: dict[str, str]) -> None:
    # Every argument after `bench` is the suite's, --help included.
    result = run_cli("bench", "--help", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert b"usage: python -m bench" in result.stdout


def test_bench_outside_a_checkout_says_so(tmp_path: Path) -> None:
    installed = tmp_path / "site-packages" / "workerbridge"
    installed.mkdir(parents=True)
    assert find_checkout(installed) is None
    assert find_checkout() is not None  # this test runs from the checkout


def test_demo_runs_the_whole_job_and_cleans_up(
    work: Path, env: dict[str, str], tmpdir_env: Path
) -> None:
    result = run_cli("demo", "--size", "24M", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    for step in ("generate", "manifest", "compress", "encrypt", "decrypt", "decompress",
                 "verify", "tamper"):  # fmt: skip
        assert re.search(rf"^\d\. {step} ", out, re.MULTILINE), step
    assert "decryption refused (IntegrityError), nothing written" in out
    assert re.search(r"^pool: \d+ process workers, utilization \d+%", out, re.MULTILINE)
    assert "all checks passed" in out
    assert result.stderr == ""  # not a terminal: no bars
    assert workerbridge_tmp_dirs(tmpdir_env) == []  # the demo's folder is gone
    assert list(tmpdir_env.iterdir()) == []
    assert leftovers(result, work) == []
