"""Momentum schedules: an lr schedule's shape applied to the momentum (SGD's ``momentum``, Adam's ``beta1``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from typedrunner.config.lr_schedules import (
    ConstantLR,
    CosineAnnealingLR,
    CosineRestartLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    PolyLR,
    ReduceOnPlateauLR,
    StepLR,
)

__all__ = [
    "ConstantMomentum",
    "CosineAnnealingMomentum",
    "CosineRestartMomentum",
    "ExponentialMomentum",
    "LinearMomentum",
    "MultiStepMomentum",
    "PolyMomentum",
    "ReduceOnPlateauMomentum",
    "StepMomentum",
]


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


class CosineRestartMomentum(CosineRestartLR):
    """``CosineRestartLR``'s schedule applied to the momentum."""

    type: Literal["CosineRestartMomentum"] = "CosineRestartMomentum"  # type: ignore[assignment]
    """Scheduler name."""
    param: ClassVar[Literal["lr", "momentum"]] = "momentum"


class ReduceOnPlateauMomentum(ReduceOnPlateauLR):
    """``ReduceOnPlateauLR`` applied to the momentum: multiplied by ``factor`` when the monitored
    validation metric stops improving (``min_value`` is the momentum's lower bound)."""

    type: Literal["ReduceOnPlateauMomentum"] = "ReduceOnPlateauMomentum"  # type: ignore[assignment]
    """Scheduler name."""
    param: ClassVar[Literal["lr", "momentum"]] = "momentum"
