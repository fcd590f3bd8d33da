"""``default_hooks`` and ``custom_hooks``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from typedrunner.config.base import ConfigModel, TypedComponent, not_supported_yet
from typedrunner.lazy import Component
from typedrunner.registry import HOOKS

__all__ = [
    "CheckpointHook",
    "DefaultHooks",
    "DistSamplerSeedHook",
    "HookField",
    "IterTimerHook",
    "LoggerHook",
    "ParamSchedulerHook",
    "RuntimeInfoHook",
]

Priority = (
    int | Literal["HIGHEST", "VERY_HIGH", "HIGH", "ABOVE_NORMAL", "NORMAL", "BELOW_NORMAL", "LOW", "VERY_LOW", "LOWEST"]
)


class CheckpointHook(TypedComponent):
    """Save checkpoints (``epoch_N.pth``) and the ``last_checkpoint`` pointer in ``work_dir``."""

    type: Literal["CheckpointHook"] = "CheckpointHook"
    """Hook name."""
    interval: int = Field(1, ge=1)
    """Save every this many epochs."""
    by_epoch: Annotated[bool, not_supported_yet(True, "iteration-based checkpoints")] = True
    """Count ``interval`` in epochs."""
    save_begin: int = Field(0, ge=0)
    """Save only after this many epochs."""
    save_last: bool = True
    """Always save after the last epoch, whatever the interval."""
    max_keep_ckpts: int = Field(-1, ge=-1)
    """Keep at most this many ``epoch_N`` checkpoints (-1: all)."""
    save_optimizer: bool = True
    """Include the optimizer state."""
    save_param_scheduler: bool = True
    """Include the parameter schedulers' state."""
    save_best: Annotated[str | list[str] | None, not_supported_yet(None, "save_best")] = None
    """Metric key(s) whose best value keeps a ``best_<key>`` checkpoint."""
    rule: Annotated[str | None, not_supported_yet(None, "rule (with save_best)")] = None
    """``greater`` or ``less``: how ``save_best`` compares."""
    out_dir: Annotated[str | None, not_supported_yet(None, "out_dir")] = None
    """Directory for checkpoints (None: ``work_dir``)."""
    filename_tmpl: Annotated[str | None, not_supported_yet(None, "filename_tmpl")] = None
    """Checkpoint file name template."""
    published_keys: Annotated[list[str] | None, not_supported_yet(None, "published_keys")] = None
    """Keys of a weights-only copy for release."""


class LoggerHook(TypedComponent):
    """Log training scalars every ``interval`` iterations and every validation's metrics."""

    type: Literal["LoggerHook"] = "LoggerHook"
    """Hook name."""
    interval: int = Field(10, ge=1)
    """Log every this many iterations."""
    ignore_last: bool = True
    """Skip the last iterations of an epoch that do not fill an interval."""


class ParamSchedulerHook(TypedComponent):
    """Step the parameter schedulers (per epoch or per iteration, as each is configured)."""

    type: Literal["ParamSchedulerHook"] = "ParamSchedulerHook"
    """Hook name."""


class IterTimerHook(TypedComponent):
    """Measure each iteration's time and data-loading time."""

    type: Literal["IterTimerHook"] = "IterTimerHook"
    """Hook name."""


class RuntimeInfoHook(TypedComponent):
    """Keep the current learning rate in the run's message hub for logging."""

    type: Literal["RuntimeInfoHook"] = "RuntimeInfoHook"
    """Hook name."""


class DistSamplerSeedHook(TypedComponent):
    """Tell the sampler which epoch it is, so each epoch is shuffled differently."""

    type: Literal["DistSamplerSeedHook"] = "DistSamplerSeedHook"
    """Hook name."""


class DefaultHooks(ConfigModel):
    """``default_hooks``: the hooks every run has; set one to ``null`` to remove it."""

    runtime_info: RuntimeInfoHook | None = Field(default_factory=RuntimeInfoHook)
    """Learning-rate bookkeeping."""
    timer: IterTimerHook | None = Field(default_factory=IterTimerHook)
    """Iteration timing."""
    sampler_seed: DistSamplerSeedHook | None = Field(default_factory=DistSamplerSeedHook)
    """Per-epoch shuffling seed."""
    logger: LoggerHook | None = Field(default_factory=LoggerHook)
    """Logging of scalars and metrics."""
    param_scheduler: ParamSchedulerHook | None = Field(default_factory=ParamSchedulerHook)
    """Stepping of ``param_scheduler``."""
    checkpoint: CheckpointHook | None = Field(default_factory=CheckpointHook)
    """Checkpoint saving."""


HookField = Annotated[
    Any, Component(HOOKS, meta=(("priority", Priority, "NORMAL"),), instance_of="typedrunner.hooks.Hook")
]
"""A user hook: ``{type: MyHook, priority: NORMAL, ...}``, ``lazy(MyHook, ...)`` or a built hook."""
