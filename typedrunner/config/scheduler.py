"""``param_scheduler``: learning-rate and momentum schedules (MMEngine's set, built on ``torch.optim.lr_scheduler``).

Each schedule applies in a window ``[begin, end)`` of epochs (``by_epoch: true``) or iterations;
``end`` defaults to the end of training, and lengths such as ``T_max`` default to the window's length.
Several schedules chain: a linear warm-up over the first iterations, then a cosine over the epochs.
Any other torch scheduler is accepted by name and checked against its constructor.

The typed schedules live in ``lr_schedules`` and ``momentum``; this module gathers them into
``SchedulerConfig`` and holds what works on any schedule, typed or generic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Discriminator, Tag, ValidationError

from typedrunner.config._fields import GENERIC, by_type
from typedrunner.config.lr_schedules import (
    STEP_ARGUMENTS,
    ConstantLR,
    CosineAnnealingLR,
    CosineRestartLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    PolyLR,
    ReduceOnPlateauLR,
    StepLR,
    Window,
    scale_steps,
)
from typedrunner.config.momentum import (
    ConstantMomentum,
    CosineAnnealingMomentum,
    CosineRestartMomentum,
    ExponentialMomentum,
    LinearMomentum,
    MultiStepMomentum,
    PolyMomentum,
    ReduceOnPlateauMomentum,
    StepMomentum,
)
from typedrunner.registry.lazy import Component, Lazy
from typedrunner.registry.registries import PARAM_SCHEDULERS

if TYPE_CHECKING:
    import torch

__all__ = [
    "ConstantLR",
    "ConstantMomentum",
    "CosineAnnealingLR",
    "CosineAnnealingMomentum",
    "CosineRestartLR",
    "CosineRestartMomentum",
    "ExponentialLR",
    "ExponentialMomentum",
    "LinearLR",
    "LinearMomentum",
    "MultiStepLR",
    "MultiStepMomentum",
    "OneCycleLR",
    "PolyLR",
    "PolyMomentum",
    "ReduceOnPlateauLR",
    "ReduceOnPlateauMomentum",
    "SchedulerConfig",
    "StepLR",
    "StepMomentum",
    "Window",
    "build_scheduler",
    "in_iterations",
    "param_of",
    "window_of",
]


def _check_window(config: Lazy[Any]) -> None:
    try:
        window_of(config)
    except ValidationError as e:
        raise ValueError(e.errors()[0]["msg"].removeprefix("Value error, ")) from None


_GENERIC = Component(
    PARAM_SCHEDULERS,
    check=_check_window,
    subclass_of=("torch.optim.lr_scheduler.LRScheduler", "torch.optim.lr_scheduler.ReduceLROnPlateau"),
    exclude=("optimizer", "last_epoch", "verbose"),
    meta=(
        ("by_epoch", bool, True),
        ("begin", int, 0),
        ("end", int | None, None),
        ("convert_to_iter_based", bool, False),
    ),
)

_Schedules = (
    Annotated[MultiStepLR, Tag("<MultiStepLR>")]
    | Annotated[StepLR, Tag("<StepLR>")]
    | Annotated[ExponentialLR, Tag("<ExponentialLR>")]
    | Annotated[CosineAnnealingLR, Tag("<CosineAnnealingLR>")]
    | Annotated[CosineRestartLR, Tag("<CosineRestartLR>")]
    | Annotated[LinearLR, Tag("<LinearLR>")]
    | Annotated[ConstantLR, Tag("<ConstantLR>")]
    | Annotated[PolyLR, Tag("<PolyLR>")]
    | Annotated[OneCycleLR, Tag("<OneCycleLR>")]
    | Annotated[ReduceOnPlateauLR, Tag("<ReduceOnPlateauLR>")]
    | Annotated[MultiStepMomentum, Tag("<MultiStepMomentum>")]
    | Annotated[StepMomentum, Tag("<StepMomentum>")]
    | Annotated[ExponentialMomentum, Tag("<ExponentialMomentum>")]
    | Annotated[CosineAnnealingMomentum, Tag("<CosineAnnealingMomentum>")]
    | Annotated[CosineRestartMomentum, Tag("<CosineRestartMomentum>")]
    | Annotated[LinearMomentum, Tag("<LinearMomentum>")]
    | Annotated[ConstantMomentum, Tag("<ConstantMomentum>")]
    | Annotated[PolyMomentum, Tag("<PolyMomentum>")]
    | Annotated[ReduceOnPlateauMomentum, Tag("<ReduceOnPlateauMomentum>")]
    | Annotated[Lazy[Any], _GENERIC, Tag(GENERIC)]
)
SchedulerConfig = Annotated[_Schedules, Discriminator(by_type(_Schedules))]
"""A typed schedule, or any other torch scheduler as ``{type: Name, ...}`` checked against its signature."""


def window_of(config: SchedulerConfig) -> Window:
    """The schedule's ``by_epoch``, ``begin``, ``end`` and conversion, whatever its kind."""
    if isinstance(config, Lazy):
        return Window.model_validate({k: v for k, v in config.meta.items() if k in Window.model_fields})
    return Window(
        by_epoch=config.by_epoch, begin=config.begin, end=config.end, convert_to_iter_based=config.convert_to_iter_based
    )


def param_of(config: SchedulerConfig) -> Literal["lr", "momentum"]:
    """What the schedule drives."""
    return "lr" if isinstance(config, Lazy) else config.param


def in_iterations(config: SchedulerConfig, iters_per_epoch: int) -> SchedulerConfig:
    """An epoch-given schedule converted to per-iteration stepping (``convert_to_iter_based``)."""
    if isinstance(config, Lazy):
        kwargs = {k: scale_steps(v, iters_per_epoch) if k in STEP_ARGUMENTS else v for k, v in config.kwargs.items()}
        meta = {
            **config.meta,
            "by_epoch": False,
            "convert_to_iter_based": False,
            "begin": scale_steps(config.meta.get("begin", 0), iters_per_epoch),
            "end": scale_steps(config.meta.get("end"), iters_per_epoch),
        }
        return Lazy(config.target, kwargs, meta)
    return config.in_iterations(iters_per_epoch)


def build_scheduler(config: SchedulerConfig, optimizer: torch.optim.Optimizer, length: int | None = None) -> Any:
    """Build any scheduler config on ``optimizer``; ``length`` is its window's length in steps."""
    if isinstance(config, Lazy):
        return config.build(optimizer)
    return config.build(optimizer, length)
