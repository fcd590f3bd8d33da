"""Shared test setup: one OpenMP thread (two shared cores spin otherwise), repo-root paths."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    """The repository root (holds conf/ and examples/)."""
    return REPO


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for CLI subprocesses: one thread, the repo importable, no inherited Hydra trace flag."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.pop("HYDRA_FULL_ERROR", None)
    return env
