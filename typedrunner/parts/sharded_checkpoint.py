"""Sharded checkpoints (FSDP2): a directory ``<name>.dcp/`` written through ``torch.distributed.checkpoint``.

The names and the entry points. The work is in :mod:`typedrunner.parts.dcp_io`, imported when a
sharded checkpoint is first written or read: ``torch.distributed.checkpoint`` takes 0.8 s to import,
which no run that does not shard should pay before its first iteration.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.distributed.checkpoint.metadata import Metadata

__all__ = [
    "SUFFIX",
    "is_sharded_checkpoint",
    "load_full",
    "load_into",
    "read_metadata",
    "save_sharded",
    "sharded_name",
]

SUFFIX = ".dcp"
"""A sharded checkpoint's directory ends with it (``epoch_2.dcp``)."""


def sharded_name(filename: str) -> str:
    """``epoch_2.pth`` -> ``epoch_2.dcp``."""
    return str(Path(filename).with_suffix(SUFFIX))


def is_sharded_checkpoint(path: Path) -> bool:
    return path.suffix == SUFFIX and path.is_dir()


def save_sharded(state: dict[str, Any], path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """Every rank: write ``state`` into the directory ``path``, its model and optimizer tensors
    sharded. Collective: every rank calls it (see :func:`typedrunner.parts.dcp_io.save_sharded`)."""
    from typedrunner.parts import dcp_io

    dcp_io.save_sharded(state, path, model, optimizer)


def read_metadata(path: Path) -> Metadata:
    """DCP's ``.metadata`` of ``path``, read as data only (see :func:`typedrunner.parts.dcp_io.read_metadata`)."""
    from typedrunner.parts import dcp_io

    return dcp_io.read_metadata(path)


def load_into(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """Load ``path`` into the (sharded) model and optimizer (see :func:`typedrunner.parts.dcp_io.load_into`)."""
    from typedrunner.parts import dcp_io

    return dcp_io.load_into(path, model, optimizer)


def load_full(path: Path, *, weights: bool = True) -> dict[str, Any]:
    """The whole checkpoint in one process (see :func:`typedrunner.parts.dcp_io.load_full`)."""
    from typedrunner.parts import dcp_io

    return dcp_io.load_full(path, weights=weights)
