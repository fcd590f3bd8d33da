"""``param_scheduler``: learning-rate schedules (MMEngine's set, built on ``torch.optim.lr_scheduler``).

Each schedule applies in a window ``[begin, end)`` of epochs (``by_epoch: true``) or iterations;
``end`` defaults to the end of training, and lengths such as ``T_max`` default to the window's length.
Several schedules chain: a linear warm-up over the first iterations, then a cosine over the epochs.
Any other torch scheduler is accepted by name and checked against its constructor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, model_validator

from typedrunner.config._fields import typed_or_component
from typedrunner.config.base import ConfigModel, TypedComponent, not_supported_yet
from typedrunner.lazy import Component, Lazy
from typedrunner.registry import PARAM_SCHEDULERS

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

__all__ = [
    "ConstantLR",
    "ConstantMomentum",
    "CosineAnnealingLR",
    "CosineAnnealingMomentum",
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
    "SchedulerConfig",
    "StepLR",
    "StepMomentum",
    "Window",
    "build_scheduler",
    "in_iterations",
    "param_of",
    "window_of",
]


class Window(ConfigModel):
    """Where a schedule applies: steps ``[begin, end)``, counted in epochs or iterations."""

    by_epoch: bool = True
    """Step once per epoch (True) or once per iteration (False)."""
    begin: int = Field(0, ge=0)
    """First epoch (or iteration) at which the schedule applies."""
    end: int | None = Field(None, ge=1)
    """Epoch (or iteration) at which it stops applying (None: the end of training)."""
    convert_to_iter_based: bool = False
    """Given in epochs, but stepped every iteration (lengths scaled by the iterations per epoch)."""

    @model_validator(mode="after")
    def _window(self) -> Window:
        if self.end is not None and self.end <= self.begin:
            raise ValueError(f"end={self.end} must be after begin={self.begin}")
        if self.convert_to_iter_based and not self.by_epoch:
            raise ValueError("convert_to_iter_based applies to a schedule given in epochs (by_epoch: true)")
        return self


# Arguments that count steps: scaled by the iterations per epoch when converting to iterations.
STEP_ARGUMENTS = ("milestones", "step_size", "T_max", "total_iters", "total_steps", "T_0", "begin", "end")


def _scale(value: Any, factor: int) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value * factor
    if isinstance(value, list):
        return [_scale(v, factor) for v in value]
    return value


class _Scheduler(TypedComponent):
    by_epoch: bool = True
    """Step once per epoch (True) or once per iteration (False)."""
    begin: int = Field(0, ge=0)
    """First epoch (or iteration) at which the schedule applies."""
    end: int | None = Field(None, ge=1)
    """Epoch (or iteration) at which it stops applying (None: the end of training)."""
    convert_to_iter_based: bool = False
    """Given in epochs (``by_epoch: true``) but stepped every iteration, smoothly (MMEngine's option)."""

    param: ClassVar[Literal["lr", "momentum"]] = "lr"
    """What the schedule drives: the learning rate, or the momentum (SGD's, or Adam's beta1)."""

    @model_validator(mode="after")
    def _window(self) -> _Scheduler:
        if self.end is not None and self.end <= self.begin:
            raise ValueError(f"end={self.end} must be after begin={self.begin}")
        if self.convert_to_iter_based and not self.by_epoch:
            raise ValueError("convert_to_iter_based applies to a schedule given in epochs (by_epoch: true)")
        return self

    def in_iterations(self, iters_per_epoch: int) -> _Scheduler:
        """This schedule with its step counts scaled from epochs to iterations, stepped per iteration."""
        update: dict[str, Any] = {"by_epoch": False, "convert_to_iter_based": False}
        for name in STEP_ARGUMENTS:
            if name in type(self).model_fields:
                update[name] = _scale(getattr(self, name), iters_per_epoch)
        return self.model_copy(update=update)

    def _kwargs(self) -> dict[str, Any]:
        return self.model_dump(exclude={"type", "by_epoch", "begin", "end", "convert_to_iter_based"})

    def _length(self, given: int | None, length: int | None, name: str) -> int:
        """A schedule length: as configured, else the window's (known once the run's length is)."""
        if given is not None:
            return given
        if length is not None:
            return length
        if self.end is not None:
            return self.end - self.begin
        raise ValueError(f"{type(self).__name__}.{name} is needed when the schedule is built outside a run")


class MultiStepLR(_Scheduler):
    """Multiply the lr by ``gamma`` at each milestone (``torch.optim.lr_scheduler.MultiStepLR``)."""

    type: Literal["MultiStepLR"] = "MultiStepLR"
    """Scheduler name."""
    milestones: list[Annotated[int, Field(ge=1)]]
    """Steps (after ``begin``) at which the lr is multiplied by gamma."""
    gamma: float = Field(0.1, gt=0)
    """Multiplicative factor."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.MultiStepLR(optimizer, **self._kwargs())


class StepLR(_Scheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` steps."""

    type: Literal["StepLR"] = "StepLR"
    """Scheduler name."""
    step_size: int = Field(ge=1)
    """Period of the decay."""
    gamma: float = Field(0.1, gt=0)
    """Multiplicative factor."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.StepLR(optimizer, **self._kwargs())


class ExponentialLR(_Scheduler):
    """Multiply the lr by ``gamma`` every step."""

    type: Literal["ExponentialLR"] = "ExponentialLR"
    """Scheduler name."""
    gamma: float = Field(gt=0)
    """Multiplicative factor."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.ExponentialLR(optimizer, **self._kwargs())


class CosineAnnealingLR(_Scheduler):
    """Cosine annealing from the lr to ``eta_min`` over ``T_max`` steps."""

    type: Literal["CosineAnnealingLR"] = "CosineAnnealingLR"
    """Scheduler name."""
    T_max: int | None = Field(None, ge=1)
    """Steps of the half cosine (None: the window's length, ``end - begin``)."""
    eta_min: float = Field(0.0, ge=0)
    """Final learning rate."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=self._length(self.T_max, length, "T_max"), eta_min=self.eta_min
        )


class LinearLR(_Scheduler):
    """Scale the lr linearly from ``start_factor`` to ``end_factor`` (the usual warm-up)."""

    type: Literal["LinearLR"] = "LinearLR"
    """Scheduler name."""
    start_factor: float = Field(1.0 / 3, gt=0, le=1)
    """Factor at the first step."""
    end_factor: float = Field(1.0, gt=0, le=1)
    """Factor reached after ``total_iters`` steps, and kept."""
    total_iters: int | None = Field(None, ge=1)
    """Steps to reach ``end_factor`` (None: the window's length, ``end - begin``)."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.LinearLR(
            optimizer,
            start_factor=self.start_factor,
            end_factor=self.end_factor,
            total_iters=self._length(self.total_iters, length, "total_iters"),
        )


class ConstantLR(_Scheduler):
    """Multiply the lr by ``factor`` for ``total_iters`` steps, then restore it."""

    type: Literal["ConstantLR"] = "ConstantLR"
    """Scheduler name."""
    factor: float = Field(1.0 / 3, gt=0, le=1)
    """Multiplier while the schedule applies."""
    total_iters: int | None = Field(None, ge=1)
    """Steps the factor applies (None: the window's length, ``end - begin``)."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.ConstantLR(
            optimizer, factor=self.factor, total_iters=self._length(self.total_iters, length, "total_iters")
        )


class PolyLR(_Scheduler):
    """Polynomial decay to zero over ``total_iters`` steps (``torch.optim.lr_scheduler.PolynomialLR``)."""

    type: Literal["PolyLR"] = "PolyLR"
    """Scheduler name."""
    power: float = Field(1.0, gt=0)
    """Exponent of the decay."""
    total_iters: int | None = Field(None, ge=1)
    """Steps of the decay (None: the window's length, ``end - begin``)."""
    eta_min: Annotated[float, not_supported_yet(0.0, "PolyLR eta_min (torch's PolynomialLR decays to 0)")] = 0.0
    """Final learning rate."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.PolynomialLR(
            optimizer, total_iters=self._length(self.total_iters, length, "total_iters"), power=self.power
        )


class OneCycleLR(_Scheduler):
    """The one-cycle policy (``torch.optim.lr_scheduler.OneCycleLR``); usually stepped per iteration."""

    type: Literal["OneCycleLR"] = "OneCycleLR"
    """Scheduler name."""
    max_lr: float = Field(gt=0)
    """Peak learning rate."""
    total_steps: int | None = Field(None, ge=2)
    """States of the cycle (None: ``end - begin + 1``, so the window ends at the cycle's last state)."""
    pct_start: float = Field(0.3, gt=0, lt=1)
    """Fraction of the cycle spent increasing the lr."""
    anneal_strategy: Literal["cos", "linear"] = "cos"
    """Shape of the annealing."""
    div_factor: float = Field(25.0, gt=0)
    """Initial lr = max_lr / div_factor."""
    final_div_factor: float = Field(1e4, gt=0)
    """Final lr = initial lr / final_div_factor."""
    three_phase: bool = False
    """Use a third phase that anneals below the initial lr."""
    cycle_momentum: bool = True
    """Cycle the momentum (or Adam's beta1) inversely to the lr."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        kwargs = self._kwargs()
        # stepped end - begin times inside its window, the cycle has one more state than steps
        kwargs["total_steps"] = self.total_steps or self._length(None, length, "total_steps") + 1
        return lr_scheduler.OneCycleLR(optimizer, **kwargs)


class ReduceOnPlateauLR(_Scheduler):
    """Reduce the lr when a validation metric stops improving (``torch.optim.lr_scheduler.ReduceLROnPlateau``)."""

    type: Literal["ReduceOnPlateauLR"] = "ReduceOnPlateauLR"
    """Scheduler name."""
    monitor: str
    """The validation metric to watch (checked against the evaluator's metric names at startup)."""
    rule: Literal["less", "greater"] = "less"
    """Whether a smaller (``less``) or larger (``greater``) value is an improvement."""
    factor: float = Field(0.1, gt=0, lt=1)
    """Multiplier of the lr at each reduction."""
    patience: int = Field(10, ge=0)
    """Validations without improvement before reducing."""
    threshold: float = Field(1e-4, ge=0)
    """Smallest change counted as an improvement (relative)."""
    cooldown: int = Field(0, ge=0)
    """Validations to wait after a reduction."""
    min_value: float = Field(0.0, ge=0)
    """Lower bound of the lr."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> ReduceLROnPlateau:
        from torch.optim import lr_scheduler

        return lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min" if self.rule == "less" else "max",
            factor=self.factor,
            patience=self.patience,
            threshold=self.threshold,
            cooldown=self.cooldown,
            min_lr=self.min_value,
        )


class MultiStepMomentum(MultiStepLR):
    """``MultiStepLR``'s schedule applied to the momentum (SGD's ``momentum``, Adam's ``beta1``)."""

    type: Literal["MultiStepMomentum"] = "MultiStepMomentum"  # type: ignore[assignment]
    """Scheduler name."""
    param: ClassVar[Literal["lr", "momentum"]] = "momentum"


class StepMomentum(StepLR):
    """``StepLR``'s schedule applied to the momentum."""

    type: Literal["StepMomentum"] = "StepMomentum"  # type: ignore[assignment]
    """Scheduler name."""
    param: ClassVar[Literal["lr", "momentum"]] = "momentum"


class ExponentialMomentum(ExponentialLR):
    """``ExponentialLR``'s schedule applied to the momentum."""

    type: Literal["ExponentialMomentum"] = "ExponentialMomentum"  # type: ignore[assignment]
    """Scheduler name."""
    param: ClassVar[Literal["lr", "momentum"]] = "momentum"


class CosineAnnealingMomentum(CosineAnnealingLR):
    """``CosineAnnealingLR``'s schedule applied to the momentum."""

    type: Literal["CosineAnnealingMomentum"] = "CosineAnnealingMomentum"  # type: ignore[assignment]
    """Scheduler name."""
    param: ClassVar[Literal["lr", "momentum"]] = "momentum"


class LinearMomentum(LinearLR):
    """``LinearLR``'s schedule applied to the momentum."""

    type: Literal["LinearMomentum"] = "LinearMomentum"  # type: ignore[assignment]
    """Scheduler name."""
    param: ClassVar[Literal["lr", "momentum"]] = "momentum"


class ConstantMomentum(ConstantLR):
    """``ConstantLR``'s schedule applied to the momentum."""

    type: Literal["ConstantMomentum"] = "ConstantMomentum"  # type: ignore[assignment]
    """Scheduler name."""
    param: ClassVar[Literal["lr", "momentum"]] = "momentum"


class PolyMomentum(PolyLR):
    """``PolyLR``'s schedule applied to the momentum."""

    type: Literal["PolyMomentum"] = "PolyMomentum"  # type: ignore[assignment]
    """Scheduler name."""
    param: ClassVar[Literal["lr", "momentum"]] = "momentum"


_TYPED: dict[str, type[ConfigModel]] = {
    cls.__name__: cls
    for cls in (
        MultiStepLR,
        StepLR,
        ExponentialLR,
        CosineAnnealingLR,
        LinearLR,
        ConstantLR,
        PolyLR,
        OneCycleLR,
        ReduceOnPlateauLR,
        MultiStepMomentum,
        StepMomentum,
        ExponentialMomentum,
        CosineAnnealingMomentum,
        LinearMomentum,
        ConstantMomentum,
        PolyMomentum,
    )
}


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

if TYPE_CHECKING:
    SchedulerConfig = (
        MultiStepLR
        | StepLR
        | ExponentialLR
        | CosineAnnealingLR
        | LinearLR
        | ConstantLR
        | PolyLR
        | OneCycleLR
        | ReduceOnPlateauLR
        | MultiStepMomentum
        | StepMomentum
        | ExponentialMomentum
        | CosineAnnealingMomentum
        | LinearMomentum
        | ConstantMomentum
        | PolyMomentum
        | Lazy[Any]
    )
else:
    SchedulerConfig = typed_or_component(_TYPED, _GENERIC)


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
        kwargs = {k: _scale(v, iters_per_epoch) if k in STEP_ARGUMENTS else v for k, v in config.kwargs.items()}
        meta = {
            **config.meta,
            "by_epoch": False,
            "convert_to_iter_based": False,
            "begin": _scale(config.meta.get("begin", 0), iters_per_epoch),
            "end": _scale(config.meta.get("end"), iters_per_epoch),
        }
        return Lazy(config.target, kwargs, meta)
    converted: SchedulerConfig = config.in_iterations(iters_per_epoch)  # type: ignore[assignment]
    return converted


def build_scheduler(config: SchedulerConfig, optimizer: torch.optim.Optimizer, length: int | None = None) -> Any:
    """Build any scheduler config on ``optimizer``; ``length`` is its window's length in steps."""
    if isinstance(config, Lazy):
        return config.build(optimizer)
    return config.build(optimizer, length)
