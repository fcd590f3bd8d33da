"""FSDP2 (``model_wrapper_cfg: {type: FSDP2}``): the model sharded over the ranks with
``torch.distributed.fsdp.fully_shard``, and evaluation on its gathered parameters.

``fully_shard`` works in place: the model keeps its class (a subclass FSDP makes of it), its state
dict keys and its methods, so hooks, checkpoints and evaluation see the same object the train step
runs. Its parameters become ``DTensor`` shards; the optimizer, built afterwards, holds the shards.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, cast

import torch
from torch import nn

from typedrunner.config.distributed import FSDP2
from typedrunner.config.optim import OptimWrapper as OptimWrapperConfig
from typedrunner.config.runner import RunnerConfig
from typedrunner.errors import refuse

if TYPE_CHECKING:
    from torch.distributed.fsdp import FSDPModule

__all__ = ["gathered", "is_sharded", "shard_model"]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _fsdp_module() -> type[FSDPModule] | None:
    """``FSDPModule`` once FSDP2 is imported (by :func:`shard_model`); None before: nothing is sharded
    then, and a run that does not shard never imports it."""
    fsdp = sys.modules.get("torch.distributed.fsdp")
    return None if fsdp is None else cast("type[FSDPModule]", fsdp.FSDPModule)


def is_sharded(model: nn.Module) -> bool:
    """Whether ``model`` was sharded by :func:`shard_model` (its checkpoints go through DCP)."""
    fsdp_module = _fsdp_module()
    return fsdp_module is not None and isinstance(model, fsdp_module)


def _dtype(name: str | None) -> torch.dtype | None:
    return _DTYPES[name] if name is not None else None


def shard_model(model: nn.Module, cfg: RunnerConfig, wrapper: FSDP2) -> nn.Module:
    """``fully_shard`` each submodule ``shard_classes`` / ``shard_names`` select (innermost first),
    then the model. A class or pattern that selects nothing is refused (a typo would otherwise
    silently shard the whole model as one unit)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    if isinstance(cfg.optim_wrapper, OptimWrapperConfig) and cfg.optim_wrapper.type == "AmpOptimWrapper":
        raise refuse(
            "optim_wrapper.type",
            "AmpOptimWrapper scales the loss for one unsharded model; with model_wrapper_cfg.type: FSDP2 use "
            "model_wrapper_cfg.mixed_precision (param_dtype, reduce_dtype) and type: OptimWrapper",
            cfg.optim_wrapper.type,
        )
    named = [(name, module) for name, module in model.named_modules() if name]
    classes, patterns = set(wrapper.shard_classes), wrapper.shard_names
    for i, cls in enumerate(wrapper.shard_classes):
        if not any(type(m).__name__ == cls for _, m in named):
            found = sorted({type(m).__name__ for _, m in named})
            raise refuse(
                f"model_wrapper_cfg.shard_classes[{i}]",
                f"no submodule of the model is a {cls}: use one of {found}",
                cls,
            )
    for i, pattern in enumerate(patterns):
        if not any(fnmatchcase(name, pattern) for name, _ in named):
            raise refuse(
                f"model_wrapper_cfg.shard_names[{i}]",
                f"matches no submodule name of the model (its names: {[n for n, _ in named][:12]})",
                pattern,
            )
    mp = wrapper.mixed_precision
    policy = MixedPrecisionPolicy(
        param_dtype=_dtype(mp.param_dtype),
        reduce_dtype=_dtype(mp.reduce_dtype),
        output_dtype=_dtype(mp.output_dtype),
        cast_forward_inputs=mp.cast_forward_inputs,
    )
    chosen = [m for name, m in named if type(m).__name__ in classes or any(fnmatchcase(name, p) for p in patterns)]
    for module in reversed(chosen):  # named_modules lists parents first: shard the innermost first
        fully_shard(module, reshard_after_forward=wrapper.reshard_after_forward, mp_policy=policy)
    fully_shard(model, reshard_after_forward=wrapper.reshard_after_forward, mp_policy=policy)
    return model


@contextlib.contextmanager
def gathered(model: nn.Module, cfg: RunnerConfig) -> Iterator[None]:
    """Evaluation on a sharded model: every rank gathers the full parameters once, before the pass,
    and frees them after it. Inside, forward runs no collective, so ranks whose shares of the
    validation set differ in length (each sample is evaluated once, on one rank) cannot wait on each
    other. Anything else: nothing to do."""
    wrapper = cfg.model_wrapper_cfg
    fsdp_module = _fsdp_module()
    if fsdp_module is None or not isinstance(model, fsdp_module) or not isinstance(wrapper, FSDP2):
        yield
        return
    units = [m for m in model.modules() if isinstance(m, fsdp_module)]
    model.set_reshard_after_forward(False)  # recurses: every unit keeps its gathered parameters
    for unit in units:
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            # back to training's setting (the root keeps its parameters after forward, as FSDP2 sets it)
            unit.set_reshard_after_forward(wrapper.reshard_after_forward and unit is not model, recurse=False)
