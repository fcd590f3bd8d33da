"""Whether the work directory can take the checkpoints: checked before the first step."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from torch import nn

from typedrunner.errors import Problem

__all__ = ["work_dir_problems"]


def work_dir_problems(work_dir: Path, model: nn.Module, with_optimizer: bool) -> list[Problem]:
    """Whether the checkpoints can be written: a directory we may write, with room for a few."""
    ancestor = work_dir
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return [Problem("work_dir", f"{str(work_dir)!r} cannot be created: {str(ancestor)!r} is not a directory")]
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return [Problem("work_dir", f"{str(ancestor)!r} is not writable: choose a work_dir you can write")]
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    needed = size * (3 if with_optimizer else 1) * 2  # two checkpoints side by side while one is renamed
    free = shutil.disk_usage(ancestor).free
    if free < needed:
        return [
            Problem(
                "work_dir",
                f"{str(ancestor)!r} has {free / 2**20:.1f} MiB free; a checkpoint needs about "
                f"{needed / 2**21:.1f} MiB (twice that while the previous one is replaced)",
            )
        ]
    return []
