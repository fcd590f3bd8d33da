"""Whether the work directory, and a checkpoint ``out_dir``, can take the checkpoints: checked
before the first step, with the checkpoint names the run will write."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from torch import nn

from typedrunner.config.hooks import CheckpointHook
from typedrunner.errors import Problem

__all__ = ["checkpoint_dir_problems", "work_dir_problems"]

_TMP_EXTRA = len("..12345678.tmp")
"""What an atomic write adds to a checkpoint's name (``.<name>.<random>.tmp``, next to it)."""


def _existing_ancestor(path: Path) -> Path:
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    return ancestor


def _not_writable(path: Path, key: str) -> Problem | None:
    """A problem when ``path`` is not a directory we may create or write."""
    ancestor = _existing_ancestor(path)
    if ancestor == path and not path.is_dir():
        return Problem(key, f"{str(path)!r} is a file, not a directory")
    if not ancestor.is_dir():
        return Problem(key, f"{str(path)!r} cannot be created: {str(ancestor)!r} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return Problem(key, f"{str(ancestor)!r} is not writable: choose a {key.rpartition('.')[2]} you can write")
    return None


def work_dir_problems(work_dir: Path, model: nn.Module, with_optimizer: bool) -> list[Problem]:
    """Whether the checkpoints can be written: a directory we may write, with room for a few."""
    refused = _not_writable(work_dir, "work_dir")
    if refused is not None:
        return [refused]
    return _room_problems(work_dir, "work_dir", model, with_optimizer)


def _room_problems(directory: Path, key: str, model: nn.Module, with_optimizer: bool) -> list[Problem]:
    ancestor = _existing_ancestor(directory)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    needed = size * (3 if with_optimizer else 1) * 2  # two checkpoints side by side while one is renamed
    free = shutil.disk_usage(ancestor).free
    if free < needed:
        return [
            Problem(
                key,
                f"{str(ancestor)!r} has {free / 2**20:.1f} MiB free; a checkpoint needs about "
                f"{needed / 2**21:.1f} MiB (twice that while the previous one is replaced)",
            )
        ]
    return []


def checkpoint_dir_problems(
    hook: CheckpointHook, work_dir: Path, last_count: int, model: nn.Module, with_optimizer: bool
) -> list[Problem]:
    """``default_hooks.checkpoint``: its ``out_dir`` can be written (and has room), and every file
    name it will write, up to the run's last epoch or iteration ``last_count``, fits the file system."""
    path = "default_hooks.checkpoint"
    directory = work_dir
    if hook.out_dir is not None:
        directory = Path(hook.out_dir)
        refused = _not_writable(directory, f"{path}.out_dir")
        if refused is not None:
            return [refused]
        room = _room_problems(directory, f"{path}.out_dir", model, with_optimizer)
        if room:
            return room
    ancestor = _existing_ancestor(directory)
    limit = 255
    with contextlib.suppress(OSError, ValueError):
        limit = os.pathconf(ancestor, "PC_NAME_MAX")
    name = hook.file_template().format(last_count)
    names = [(f"{path}.filename_tmpl", name), (f"{path}.filename_tmpl", hook.published_file(name))]
    names += [(f"{path}.save_best", hook.best_file(key)) for key in hook.best_keys()]
    for key, longest in names:
        if len(longest.encode()) + _TMP_EXTRA > limit:
            return [
                Problem(
                    key,
                    f"gives the file name {longest[:60]!r}... ({len(longest.encode())} bytes); with the "
                    f"temporary name of an atomic write ({_TMP_EXTRA} more) it exceeds the file system's "
                    f"limit of {limit} bytes in {str(ancestor)!r}",
                )
            ]
    return []
