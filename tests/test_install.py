"""The install (issue 11, item 9): what ``pip install -e .`` brings is enough for a clean start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO


def test_numpy_is_a_core_dependency() -> None:
    """torch's wheels do not require numpy, and without it torch warns "Failed to initialize NumPy"
    on every command: typedrunner itself must ask for it, not only the dev extra."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].split("<")[0].strip() for d in project["dependencies"]]
    assert "numpy" in names, project["dependencies"]


def test_torch_starts_without_the_numpy_warning(subprocess_env: dict[str, str]) -> None:
    """In the installed environment (the CI's fresh install), importing torch and typedrunner's
    command line says nothing on stderr: no "Failed to initialize NumPy"."""
    result = subprocess.run(
        [sys.executable, "-c", "import torch, numpy, typedrunner.app.cli; torch.zeros(1).numpy()"],
        cwd=REPO,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "NumPy" not in result.stderr, result.stderr
