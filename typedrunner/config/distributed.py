"""``model_wrapper_cfg`` and ``sync_bn``: how the model is wrapped when several processes train it.

Both only take effect under a distributed launcher (``launcher: pytorch`` or ``slurm``); with
``launcher: none`` the model is used as built.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from typedrunner.config.base import ConfigModel

__all__ = ["ModelWrapperCfg", "SyncBN"]


class ModelWrapperCfg(ConfigModel):
    """``model_wrapper_cfg``: ``torch.nn.parallel.DistributedDataParallel``'s settings (MMEngine's keys)."""

    type: Literal["MMDistributedDataParallel", "DistributedDataParallel"] = "MMDistributedDataParallel"
    """The wrapper: DDP (both names build ``torch.nn.parallel.DistributedDataParallel``)."""
    find_unused_parameters: bool = False
    """Let DDP find parameters that get no gradient in a step (slower; needed if some branches are skipped)."""
    broadcast_buffers: bool = True
    """Copy rank 0's buffers (e.g. BatchNorm statistics) to every rank before each forward."""
    static_graph: bool = False
    """The set of used parameters is the same every step (lets DDP optimise; see torch's docs)."""
    bucket_cap_mb: float | None = Field(default=None, gt=0)
    """Gradient bucket size in MiB (None: torch's default, 25)."""
    gradient_as_bucket_view: bool = False
    """Gradients are views into the communication buckets (saves memory)."""


SyncBN = Literal["torch"] | None
"""``sync_bn: torch`` converts every BatchNorm to ``torch.nn.SyncBatchNorm`` (statistics over all ranks)."""
