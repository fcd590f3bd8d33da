"""The learning-rate schedules with their own schema (MMEngine's set, built on ``torch.optim.lr_scheduler``),
and the window ``[begin, end)`` every schedule applies in. ``typedrunner.config.scheduler`` gathers them
into ``SchedulerConfig``.

Steps as MMEngine's: a schedule's step ``t`` applies at epoch (or iteration) ``begin + t`` for ``t`` in
``[0, end - begin)``; the value of its last step, ``end - begin - 1``, is then held. Lengths left unset
default as MMEngine's: ``T_max`` and ``total_steps`` to ``end - begin``, ``total_iters`` (torch's name;
MMEngine always uses this default) to ``end - begin - 1``, the last step of the window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator
from typing_extensions import Self

from typedrunner.config.base import ConfigModel, TypedComponent
from typedrunner.registry.registries import PARAM_SCHEDULERS

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

__all__ = [
    "STEP_ARGUMENTS",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineRestartLR",
    "ExponentialLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "PolyLR",
    "ReduceOnPlateauLR",
    "StepLR",
    "Window",
    "scale_steps",
]


class Window(ConfigModel):
    """Where a schedule applies: steps ``[begin, end)``, counted in epochs or iterations."""

    by_epoch: bool = True
    """Step once per epoch (True) or once per iteration (False)."""
    begin: int = Field(default=0, ge=0)
    """First epoch (or iteration) at which the schedule applies."""
    end: int | None = Field(default=None, ge=1)
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
STEP_ARGUMENTS = ("milestones", "step_size", "T_max", "total_iters", "total_steps", "T_0", "periods", "begin", "end")


def scale_steps(value: Any, factor: int) -> Any:
    """A step count (or list of them) multiplied by ``factor``; anything else unchanged."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value * factor
    if isinstance(value, list):
        return [scale_steps(v, factor) for v in value]
    return value


class _Scheduler(TypedComponent):
    by_epoch: bool = True
    """Step once per epoch (True) or once per iteration (False)."""
    begin: int = Field(default=0, ge=0)
    """First epoch (or iteration) at which the schedule applies."""
    end: int | None = Field(default=None, ge=1)
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

    def in_iterations(self, iters_per_epoch: int) -> Self:
        """This schedule with its step counts scaled from epochs to iterations, stepped per iteration."""
        update: dict[str, Any] = {"by_epoch": False, "convert_to_iter_based": False}
        for name in STEP_ARGUMENTS:
            if name in type(self).model_fields:
                update[name] = scale_steps(getattr(self, name), iters_per_epoch)
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

    def _last_step(self, given: int | None, length: int | None, name: str) -> int:
        """A step count: as configured, else the window's last step, ``end - begin - 1`` (MMEngine's)."""
        if given is not None:
            return given
        return max(self._length(None, length, name) - 1, 1)


class MultiStepLR(_Scheduler):
    """Multiply the lr by ``gamma`` at each milestone (``torch.optim.lr_scheduler.MultiStepLR``)."""

    type: Literal["MultiStepLR"] = "MultiStepLR"
    """Scheduler name."""
    milestones: list[Annotated[int, Field(ge=1)]]
    """Steps (after ``begin``) at which the lr is multiplied by gamma."""
    gamma: float = Field(default=0.1, gt=0)
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
    gamma: float = Field(default=0.1, gt=0)
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
    T_max: int | None = Field(default=None, ge=1)
    """Steps of the half cosine (None: the window's length, ``end - begin``)."""
    eta_min: float = Field(default=0.0, ge=0)
    """Final learning rate."""
    eta_min_ratio: float | None = Field(None, ge=0)
    """The final value as a ratio of each group's initial one, instead of ``eta_min`` (MMEngine's)."""

    @model_validator(mode="after")
    def _one_minimum(self) -> Self:
        if self.eta_min_ratio is not None and "eta_min" in self.model_fields_set:
            raise ValueError("give eta_min or eta_min_ratio, not both")
        return self

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        T_max = self._length(self.T_max, length, "T_max")
        if self.eta_min_ratio is None:
            from torch.optim import lr_scheduler

            return lr_scheduler.CosineAnnealingLR(optimizer, T_max=T_max, eta_min=self.eta_min)
        cosine: Any = PARAM_SCHEDULERS.resolve("CosineAnnealingLR")  # torch's, to a ratio of each group's lr
        scheduler: LRScheduler = cosine(optimizer, T_max=T_max, eta_min_ratio=self.eta_min_ratio)
        return scheduler


class CosineRestartLR(_Scheduler):
    """Cosine annealing restarted after each of ``periods`` steps (MMEngine's ``CosineRestartLR``)."""

    type: Literal["CosineRestartLR"] = "CosineRestartLR"
    """Scheduler name."""
    periods: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    """Length of each cosine period, in steps."""
    restart_weights: list[float] = Field(default_factory=lambda: [1.0])
    """Each period starts at the initial value times its weight (one weight per period)."""
    eta_min: float | None = Field(None, ge=0)
    """Lowest value (give this or ``eta_min_ratio``)."""
    eta_min_ratio: float | None = Field(None, ge=0)
    """Lowest value as a ratio of each group's initial value (give this or ``eta_min``)."""

    @model_validator(mode="after")
    def _restarts(self) -> Self:
        if (self.eta_min is None) == (self.eta_min_ratio is None):
            raise ValueError("give exactly one of eta_min and eta_min_ratio (as MMEngine)")
        if len(self.restart_weights) != len(self.periods):
            raise ValueError(
                f"restart_weights has {len(self.restart_weights)} entries, periods {len(self.periods)}: one weight per period"
            )
        return self

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        restart: Any = PARAM_SCHEDULERS.resolve("CosineRestartLR")
        scheduler: LRScheduler = restart(
            optimizer,
            periods=self.periods,
            restart_weights=self.restart_weights,
            eta_min=self.eta_min,
            eta_min_ratio=self.eta_min_ratio,
        )
        return scheduler


class LinearLR(_Scheduler):
    """Scale the lr linearly from ``start_factor`` to ``end_factor`` (the usual warm-up)."""

    type: Literal["LinearLR"] = "LinearLR"
    """Scheduler name."""
    start_factor: float = Field(default=1.0 / 3, gt=0, le=1)
    """Factor at the first step."""
    end_factor: float = Field(default=1.0, gt=0, le=1)
    """Factor reached after ``total_iters`` steps, and kept."""
    total_iters: int | None = Field(default=None, ge=1)
    """Steps to reach ``end_factor`` (None: the window's last step, ``end - begin - 1``, as MMEngine)."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.LinearLR(
            optimizer,
            start_factor=self.start_factor,
            end_factor=self.end_factor,
            total_iters=self._last_step(self.total_iters, length, "total_iters"),
        )


class ConstantLR(_Scheduler):
    """Multiply the lr by ``factor`` for ``total_iters`` steps, then restore it."""

    type: Literal["ConstantLR"] = "ConstantLR"
    """Scheduler name."""
    factor: float = Field(default=1.0 / 3, gt=0, le=1)
    """Multiplier while the schedule applies."""
    total_iters: int | None = Field(default=None, ge=1)
    """Steps the factor applies (None: all but the window's last step, ``end - begin - 1``, as MMEngine)."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        return lr_scheduler.ConstantLR(
            optimizer, factor=self.factor, total_iters=self._last_step(self.total_iters, length, "total_iters")
        )


class PolyLR(_Scheduler):
    """Polynomial decay to ``eta_min`` over ``total_iters`` steps (MMEngine's ``PolyLR``; torch's
    ``PolynomialLR`` when ``eta_min`` is 0)."""

    type: Literal["PolyLR"] = "PolyLR"
    """Scheduler name."""
    power: float = Field(default=1.0, gt=0)
    """Exponent of the decay."""
    total_iters: int | None = Field(default=None, ge=1)
    """Steps of the decay (None: the window's last step, ``end - begin - 1``, as MMEngine)."""
    eta_min: float = Field(default=0.0, ge=0)
    """Final learning rate (or momentum), reached at step ``total_iters``."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        total_iters = self._last_step(self.total_iters, length, "total_iters")
        if self.eta_min == 0:
            from torch.optim import lr_scheduler

            return lr_scheduler.PolynomialLR(optimizer, total_iters=total_iters, power=self.power)
        poly: Any = PARAM_SCHEDULERS.resolve("PolyLR")  # torch's PolynomialLR, to eta_min
        scheduler: LRScheduler = poly(optimizer, total_iters=total_iters, power=self.power, eta_min=self.eta_min)
        return scheduler


class OneCycleLR(_Scheduler):
    """The one-cycle policy (``torch.optim.lr_scheduler.OneCycleLR``); usually stepped per iteration."""

    type: Literal["OneCycleLR"] = "OneCycleLR"
    """Scheduler name."""
    max_lr: float = Field(gt=0)
    """Peak learning rate (``eta_max``, MMEngine's name, is accepted too)."""
    total_steps: int | None = Field(default=None, ge=2)
    """Steps of the cycle (None: the window's length, ``end - begin``, as MMEngine)."""
    pct_start: float = Field(default=0.3, gt=0, lt=1)
    """Fraction of the cycle spent increasing the lr."""
    anneal_strategy: Literal["cos", "linear"] = "cos"
    """Shape of the annealing."""
    div_factor: float = Field(default=25.0, gt=0)
    """Initial lr = max_lr / div_factor."""
    final_div_factor: float = Field(default=1e4, gt=0)
    """Final lr = initial lr / final_div_factor."""
    three_phase: bool = False
    """Use a third phase that anneals below the initial lr."""
    cycle_momentum: bool = False
    """Cycle the momentum (or Adam's beta1) inversely to the lr (torch's option; MMEngine's ``OneCycleLR``
    never does, hence off by default)."""

    @model_validator(mode="before")
    @classmethod
    def _mmengine_name(cls, data: Any) -> Any:
        """MMEngine calls the peak ``eta_max``: read it as ``max_lr``."""
        if isinstance(data, dict) and "eta_max" in data:
            if "max_lr" in data:
                raise ValueError("give the peak lr once: max_lr or eta_max (MMEngine's name), not both")
            data = {("max_lr" if k == "eta_max" else k): v for k, v in data.items()}
        return data

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> LRScheduler:
        from torch.optim import lr_scheduler

        kwargs = self._kwargs()
        kwargs["total_steps"] = self._length(self.total_steps, length, "total_steps")
        return lr_scheduler.OneCycleLR(optimizer, **kwargs)


class ReduceOnPlateauLR(_Scheduler):
    """Reduce the lr when a validation metric stops improving (``torch.optim.lr_scheduler.ReduceLROnPlateau``)."""

    type: Literal["ReduceOnPlateauLR"] = "ReduceOnPlateauLR"
    """Scheduler name."""
    monitor: str
    """The validation metric to watch (checked against the evaluator's metric names at startup)."""
    rule: Literal["less", "greater"] = "less"
    """Whether a smaller (``less``) or larger (``greater``) value is an improvement."""
    factor: float = Field(default=0.1, gt=0, lt=1)
    """Multiplier of the lr at each reduction."""
    patience: int = Field(default=10, ge=0)
    """Validations without improvement before reducing."""
    threshold: float = Field(default=1e-4, ge=0)
    """Smallest change counted as an improvement (relative or absolute: ``threshold_rule``)."""
    threshold_rule: Literal["rel", "abs"] = "rel"
    """``rel``: an improvement beats the best by ``best * threshold``; ``abs``: by ``threshold``."""
    cooldown: int = Field(default=0, ge=0)
    """Validations to wait after a reduction."""
    min_value: float = Field(default=0.0, ge=0)
    """Lower bound of the lr."""
    eps: float = Field(default=1e-8, ge=0)
    """A reduction smaller than this is skipped (the lr stays)."""

    def build(self, optimizer: torch.optim.Optimizer, length: int | None = None) -> ReduceLROnPlateau:
        from torch.optim import lr_scheduler

        return lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min" if self.rule == "less" else "max",
            factor=self.factor,
            patience=self.patience,
            threshold=self.threshold,
            threshold_mode=self.threshold_rule,
            cooldown=self.cooldown,
            min_lr=self.min_value,
            eps=self.eps,
        )
