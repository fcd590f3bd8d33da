"""``train_cfg`` / ``val_cfg`` / ``test_cfg``: the loops."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from typedrunner.config.base import TypedComponent

__all__ = ["TestLoop", "TrainLoop", "ValLoop"]


class TrainLoop(TypedComponent):
    """``train_cfg``: how long to train and when to validate.

    By epoch (MMEngine's ``EpochBasedTrainLoop``): ``max_epochs``, with ``val_begin`` / ``val_interval``
    in epochs. By iteration (``IterBasedTrainLoop``, ``by_epoch: false``): ``max_iters``, with
    ``val_begin`` / ``val_interval`` in iterations.
    """

    type: Literal["EpochBasedTrainLoop", "IterBasedTrainLoop"] | None = None
    """Loop kind (MMEngine's name); implied by ``by_epoch`` when omitted."""
    by_epoch: bool | None = None
    """Count training in epochs (True, the default) or in iterations (False)."""
    max_epochs: int | None = Field(None, ge=1)
    """Number of epochs to train (epoch-based loop)."""
    max_iters: int | None = Field(None, ge=1)
    """Number of iterations to train (iteration-based loop)."""
    val_begin: int = Field(1, ge=1)
    """First epoch (or iteration) after which validation runs."""
    val_interval: int | None = Field(None, ge=1)
    """Validate every this many epochs (default 1) or iterations (default 1000)."""
    dynamic_intervals: list[tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]] | None = None
    """``[(epoch or iteration, interval), ...]``: from that point on, validate every ``interval``."""

    @model_validator(mode="after")
    def _one_kind(self) -> TrainLoop:
        if self.max_epochs is not None and self.max_iters is not None:
            raise ValueError("give max_epochs (epoch-based) or max_iters (iteration-based, by_epoch: false), not both")
        implied = None if self.type is None else self.type == "EpochBasedTrainLoop"
        if self.by_epoch is not None and implied is not None and self.by_epoch != implied:
            raise ValueError(f"type {self.type} contradicts by_epoch={self.by_epoch}; give one of them")
        by_epoch = self.by_epoch if self.by_epoch is not None else implied
        if by_epoch is None:
            by_epoch = self.max_iters is None
        self.by_epoch = by_epoch
        self.type = "EpochBasedTrainLoop" if by_epoch else "IterBasedTrainLoop"
        if by_epoch:
            if self.max_iters is not None:
                raise ValueError("max_iters is for by_epoch: false; an epoch-based loop counts max_epochs")
            if self.max_epochs is None:
                raise ValueError("an epoch-based loop needs max_epochs (or set by_epoch: false and max_iters)")
            self.val_interval = self.val_interval or 1
            length, unit = self.max_epochs, "max_epochs"
        else:
            if self.max_epochs is not None:
                raise ValueError("max_epochs is for by_epoch: true; an iteration-based loop counts max_iters")
            if self.max_iters is None:
                raise ValueError("an iteration-based loop (by_epoch: false) needs max_iters")
            self.val_interval = self.val_interval or 1000
            length, unit = self.max_iters, "max_iters"
        if self.val_begin > length:
            raise ValueError(
                f"val_begin={self.val_begin} is after {unit}={length}: validation would never run; "
                f"set val_begin <= {length}"
            )
        return self

    @property
    def length(self) -> int:
        """The run's length in its own unit (epochs or iterations)."""
        return int(self.max_epochs if self.by_epoch else self.max_iters)  # type: ignore[arg-type]


class ValLoop(TypedComponent):
    """``val_cfg``: the validation loop."""

    type: Literal["ValLoop"] = "ValLoop"
    """Loop kind."""
    fp16: bool = False
    """Run the model under float16 autocast (needs CUDA)."""


class TestLoop(TypedComponent):
    """``test_cfg``: the test loop."""

    __test__ = False  # not a pytest test class, though its name starts with "Test"

    type: Literal["TestLoop"] = "TestLoop"
    """Loop kind."""
    fp16: bool = False
    """Run the model under float16 autocast (needs CUDA)."""
