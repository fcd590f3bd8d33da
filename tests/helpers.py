"""Helpers shared by the test modules that run the command line in a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``python -m typedrunner ARGS`` in a fresh process (the env from the ``subprocess_env`` fixture)."""
    return subprocess.run(
        [sys.executable, "-m", "typedrunner", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    """A failed run's exit code and the ends of its output, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
