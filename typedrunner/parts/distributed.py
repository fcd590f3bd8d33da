"""Where this process stands among the ranks of a run, and the few collectives the parts need.

Everything here answers for one process (rank 0 of 1) when ``torch.distributed`` is not initialised,
so the parts work unchanged without a launcher. The process group itself is set up by
``typedrunner.engine.distributed``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "any_rank",
    "control_group",
    "forget_control_group",
    "gather_objects",
    "is_distributed",
    "is_main_process",
    "rank",
    "world_size",
]

_CONTROL: dict[str, Any] = {}


def is_distributed() -> bool:
    """Whether this process is one rank of an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0: the process that writes the run's files."""
    return rank() == 0


def control_group() -> Any:
    """A gloo group for small CPU messages (stop requests, gathered objects), whatever the training
    backend; the default group when it is gloo already."""
    if not is_distributed():
        return None
    if "group" not in _CONTROL:
        backend = str(dist.get_backend())
        _CONTROL["group"] = None if backend == "gloo" else dist.new_group(backend="gloo")
    return _CONTROL["group"]


def forget_control_group() -> None:
    """Called when the process group is destroyed."""
    _CONTROL.clear()


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` from every rank, in rank order (``[obj]`` without a process group)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj, group=control_group())
    return out


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank (every rank gets the same answer)."""
    if not is_distributed():
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=control_group())
    return bool(value.item())
