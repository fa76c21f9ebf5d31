"""Fixtures of the command-line suite: a working folder and a private ``$TMPDIR`` per test,
so that a test can check that a run left nothing behind in either."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._util import cli_env


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The folder the command runs in."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def tmpdir_env(tmp_path: Path) -> Path:
    """The command's ``$TMPDIR`` (where stdin is spooled and stdout outputs staged)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


@pytest.fixture
def env(tmpdir_env: Path) -> dict[str, str]:
    """The command's environment (see ``cli_env``), with ``TMPDIR`` set."""
    return cli_env(TMPDIR=str(tmpdir_env))
