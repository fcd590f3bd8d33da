"""``param_scheduler``: learning-rate schedules, typed for the common ones, any torch scheduler by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from typedrunner.config._fields import typed_or_component
from typedrunner.config.base import ConfigModel, TypedComponent, not_supported_yet
from typedrunner.lazy import Component, Lazy
from typedrunner.registry import PARAM_SCHEDULERS

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LinearLR",
    "MultiStepLR",
    "SchedulerConfig",
    "StepLR",
    "build_scheduler",
    "scheduler_by_epoch",
]


class _Scheduler(TypedComponent):
    by_epoch: bool = True
    """Step once per epoch (True) or once per iteration (False)."""
    begin: Annotated[int, not_supported_yet(0, "scheduler begin/end windows")] = 0
    """First epoch (or iteration) at which the schedule applies."""
    end: Annotated[int | None, not_supported_yet(None, "scheduler begin/end windows")] = None
    """Epoch (or iteration) at which the schedule stops (None: the end of training)."""

    def _kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"type", "by_epoch", "begin", "end"})


class MultiStepLR(_Scheduler):
    """Multiply the lr by ``gamma`` at each milestone (``torch.optim.lr_scheduler.MultiStepLR``)."""

    type: Literal["MultiStepLR"] = "MultiStepLR"
    """Scheduler name."""
    milestones: list[Annotated[int, Field(ge=1)]]
    """Epochs (or iterations) at which the lr is multiplied by gamma."""
    gamma: float = Field(0.1, gt=0)
    """Multiplicative factor."""

    def build(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.MultiStepLR(optimizer, **self._kwargs())


class StepLR(_Scheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs (or iterations)."""

    type: Literal["StepLR"] = "StepLR"
    """Scheduler name."""
    step_size: int = Field(ge=1)
    """Period of the decay."""
    gamma: float = Field(0.1, gt=0)
    """Multiplicative factor."""

    def build(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.StepLR(optimizer, **self._kwargs())


class ExponentialLR(_Scheduler):
    """Multiply the lr by ``gamma`` every step."""

    type: Literal["ExponentialLR"] = "ExponentialLR"
    """Scheduler name."""
    gamma: float = Field(gt=0)
    """Multiplicative factor."""

    def build(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.ExponentialLR(optimizer, **self._kwargs())


class CosineAnnealingLR(_Scheduler):
    """Cosine annealing from the initial lr to ``eta_min`` over ``T_max`` steps."""

    type: Literal["CosineAnnealingLR"] = "CosineAnnealingLR"
    """Scheduler name."""
    T_max: int = Field(ge=1)
    """Number of steps of the half cosine."""
    eta_min: float = Field(0.0, ge=0)
    """Final learning rate."""

    def build(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.CosineAnnealingLR(optimizer, **self._kwargs())


class LinearLR(_Scheduler):
    """Scale the lr linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps."""

    type: Literal["LinearLR"] = "LinearLR"
    """Scheduler name."""
    start_factor: float = Field(1.0 / 3, gt=0, le=1)
    """Factor at the first step."""
    end_factor: float = Field(1.0, gt=0, le=1)
    """Factor after ``total_iters`` steps."""
    total_iters: int = Field(5, ge=1)
    """Number of steps to reach ``end_factor``."""

    def build(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.LinearLR(optimizer, **self._kwargs())


_TYPED: dict[str, type[ConfigModel]] = {
    cls.__name__: cls for cls in (MultiStepLR, StepLR, ExponentialLR, CosineAnnealingLR, LinearLR)
}
_GENERIC = Component(
    PARAM_SCHEDULERS,
    exclude=("optimizer", "last_epoch", "verbose"),
    meta=(("by_epoch", bool, True),),
)

if TYPE_CHECKING:
    SchedulerConfig = MultiStepLR | StepLR | ExponentialLR | CosineAnnealingLR | LinearLR | Lazy[Any]
else:
    SchedulerConfig = typed_or_component(_TYPED, _GENERIC)


def build_scheduler(config: SchedulerConfig, optimizer: torch.optim.Optimizer) -> LRScheduler:
    """Build any scheduler config (typed or generic) on ``optimizer``."""
    if isinstance(config, Lazy):
        scheduler: LRScheduler = config.build(optimizer)
        return scheduler
    return config.build(optimizer)


def scheduler_by_epoch(config: SchedulerConfig) -> bool:
    """Whether the scheduler steps per epoch."""
    if isinstance(config, Lazy):
        return bool(config.meta.get("by_epoch", True))
    return config.by_epoch
