"""``model_wrapper_cfg`` and ``sync_bn``: how the model is wrapped when several processes train it.

Both only take effect under a distributed launcher (``launcher: pytorch`` or ``slurm``); with
``launcher: none`` the model is used as built. ``model_wrapper_cfg`` is DDP's settings, or (with
``type: FSDP2``) ``torch.distributed.fsdp.fully_shard``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from typedrunner.config.base import ConfigModel

__all__ = ["FSDP2", "FSDPMixedPrecision", "ModelWrapperCfg", "ModelWrapperField", "SyncBN"]

DType = Literal["float32", "float16", "bfloat16"]
"""A floating-point dtype, by its torch name."""


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


class FSDPMixedPrecision(ConfigModel):
    """``torch.distributed.fsdp.MixedPrecisionPolicy``: the dtypes FSDP2 computes and communicates in."""

    param_dtype: DType | None = None
    """The dtype parameters are gathered and computed in (None: as stored, float32)."""
    reduce_dtype: DType | None = None
    """The dtype gradients are reduced in (None: ``param_dtype``)."""
    output_dtype: DType | None = None
    """The dtype of the model's floating-point outputs (None: as computed)."""
    cast_forward_inputs: bool = True
    """Cast floating-point forward inputs to ``param_dtype``."""


class FSDP2(ConfigModel):
    """``model_wrapper_cfg: {type: FSDP2}``: shard parameters, gradients and optimizer state over the
    ranks with ``torch.distributed.fsdp.fully_shard`` (FSDP2). The listed submodules get their own
    ``fully_shard`` (gathered one at a time in forward and backward), then the model itself does.
    Checkpoints are written through ``torch.distributed.checkpoint``: every rank saves its shard."""

    type: Literal["FSDP2"] = "FSDP2"
    """The wrapper: ``torch.distributed.fsdp.fully_shard``."""
    shard_classes: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(default_factory=list)
    """Class names (``Linear``, ``TransformerBlock``) whose instances in the model are sharded on their own."""
    shard_names: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """``fnmatch`` patterns of submodule names (``layers.*``, ``encoder.blocks.0``) sharded on their own."""
    reshard_after_forward: bool = True
    """Free the gathered parameters after forward (gather again in backward): less memory, more communication."""
    mixed_precision: FSDPMixedPrecision = Field(default_factory=FSDPMixedPrecision)
    """Parameter, gradient-reduction and output dtypes (``MixedPrecisionPolicy``)."""


def _pick_wrapper(value: Any) -> str:
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    return "<FSDP2>" if kind == "FSDP2" else "<DDP>"


ModelWrapperField = Annotated[
    Annotated[ModelWrapperCfg, Tag("<DDP>")] | Annotated[FSDP2, Tag("<FSDP2>")],
    Discriminator(_pick_wrapper),
]
"""DDP's settings (the default, ``type: MMDistributedDataParallel``), or ``type: FSDP2``'s."""


SyncBN = Literal["torch"] | None
"""``sync_bn: torch`` converts every BatchNorm to ``torch.nn.SyncBatchNorm`` (statistics over all ranks)."""
