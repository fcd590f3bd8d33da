"""Shared test setup: one OpenMP thread (two shared cores spin otherwise), repo-root paths, and the
fixtures that more than one test module uses (helpers that are not fixtures live in ``tests/helpers.py``)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
import torch

from tests.fuzz_support import ExampleHang, TimeLimit
from tests.helpers import REPO, cli_env

torch.set_num_threads(1)


@pytest.fixture
def repo_root() -> Path:
    """The repository root (holds conf/ and examples/)."""
    return REPO


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for CLI subprocesses: one thread, the repo importable, no inherited Hydra trace flag."""
    return cli_env()


# ----------------------------------------------------------------------------------------------
# The config fuzz's guards (test_fuzz_*): a wall-clock limit per example, an empty working directory
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def time_limit() -> Iterator[TimeLimit]:
    """``with time_limit(seconds): ...`` raises ``ExampleHang`` when the block runs too long (SIGALRM)."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise ExampleHang("an example ran past its wall-clock limit (a hang)")

    @contextlib.contextmanager
    def limit(seconds: float) -> Iterator[None]:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield limit
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty ``tmp_path``: relative work_dirs and every payload's marker land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
