"""``train_cfg`` / ``val_cfg`` / ``test_cfg``: the loops."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from typedrunner.config.base import TypedComponent, not_supported_yet

__all__ = ["TestLoop", "TrainLoop", "ValLoop"]


class TrainLoop(TypedComponent):
    """``train_cfg``: how long to train and when to validate (MMEngine's ``EpochBasedTrainLoop``)."""

    type: Annotated[
        Literal["EpochBasedTrainLoop", "IterBasedTrainLoop"],
        not_supported_yet("EpochBasedTrainLoop", "IterBasedTrainLoop"),
    ] = "EpochBasedTrainLoop"
    """Loop kind."""
    by_epoch: Annotated[bool, not_supported_yet(True, "iteration-based training (by_epoch: false)")] = True
    """Count training in epochs (True) or in iterations (False)."""
    max_epochs: int = Field(ge=1)
    """Number of epochs to train."""
    max_iters: Annotated[int | None, not_supported_yet(None, "max_iters (iteration-based training)")] = None
    """Number of iterations to train (iteration-based loop)."""
    val_begin: int = Field(1, ge=1)
    """First epoch after which validation runs."""
    val_interval: int = Field(1, ge=1)
    """Validate every this many epochs."""
    dynamic_intervals: Annotated[list[tuple[int, int]] | None, not_supported_yet(None, "dynamic_intervals")] = None
    """``[(epoch, interval), ...]``: change ``val_interval`` from the given epoch on."""

    @model_validator(mode="after")
    def _validation_runs(self) -> TrainLoop:
        if self.val_begin > self.max_epochs:
            raise ValueError(
                f"val_begin={self.val_begin} is after max_epochs={self.max_epochs}: validation would "
                f"never run; set val_begin <= {self.max_epochs}"
            )
        return self


class ValLoop(TypedComponent):
    """``val_cfg``: the validation loop."""

    type: Literal["ValLoop"] = "ValLoop"
    """Loop kind."""
    fp16: Annotated[bool, not_supported_yet(False, "fp16 validation (AMP)")] = False
    """Run the model under fp16 autocast."""


class TestLoop(TypedComponent):
    """``test_cfg``: the test loop."""

    __test__ = False  # not a pytest test class, though its name starts with "Test"

    type: Literal["TestLoop"] = "TestLoop"
    """Loop kind."""
    fp16: Annotated[bool, not_supported_yet(False, "fp16 testing (AMP)")] = False
    """Run the model under fp16 autocast."""
