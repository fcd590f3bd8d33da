"""The run state: where a run is, what it has measured, and whether it was asked to stop.

One small object with one owner. The loops advance it, resume restores it, and checkpoints save its
position as one typed record (:class:`Position`); hooks read it through ``RunView``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from typedrunner.errors import ConfigError, Problem, format_path

__all__ = ["Position", "RunState"]

_P = TypeVar("_P", bound="Position")


class Position(BaseModel):
    """Where a checkpoint was written: what is done. Saved flat in the checkpoint's ``meta`` (as
    MMEngine's ``epoch`` and ``iter``) and validated when read back."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    epoch: int = Field(ge=0)
    """Epochs finished (passes over the data, for an iteration-based run)."""
    iter: int = Field(ge=0)
    """Training iterations finished."""
    inner_iter: int = Field(default=0, ge=0)
    """Batches finished in the current epoch (0 at an epoch's end)."""
    last_val_iter: int = Field(default=-1, ge=-1)
    """``iter`` at the last validation during training (-1: none yet)."""

    @classmethod
    def from_meta(cls: type[_P], meta: Any, source: str) -> _P:
        """Read the position from a checkpoint's ``meta``; a malformed one is a ``ConfigError``."""
        try:
            return cls.model_validate(meta if isinstance(meta, dict) else {})
        except ValidationError as e:
            raise ConfigError(
                [Problem("resume", f"{source}: meta.{format_path(err['loc'])}: {err['msg']}") for err in e.errors()],
                title=f"cannot resume from {source!r}",
            ) from None


@dataclass
class RunState:
    """The one mutable record of a run's progress."""

    epoch: int = 0
    """Epochs finished."""
    iter: int = 0
    """Training iterations finished."""
    inner_iter: int = 0
    """Batches finished in the current epoch (non-zero only inside an epoch)."""
    last_val_iter: int = -1
    """``iter`` at the last validation during training (a resumed run knows if it is still due)."""
    last_metrics: dict[str, float] = field(default_factory=dict)
    """The latest validation metrics."""
    metric_history: list[dict[str, float]] = field(default_factory=list)
    """Every validation's metrics, in order."""
    stop_requested: bool = False
    """Set by a hook (early stopping): end training after the current epoch or iteration."""
    stop_signal: str | None = None
    """Set by SIGTERM / SIGINT: save a checkpoint after this iteration and stop."""

    def position(self) -> Position:
        """The position now (between two iterations)."""
        return Position(epoch=self.epoch, iter=self.iter, inner_iter=self.inner_iter, last_val_iter=self.last_val_iter)

    def restore(self, position: Position) -> None:
        self.epoch, self.iter, self.inner_iter = position.epoch, position.iter, position.inner_iter
        self.last_val_iter = position.last_val_iter

    def record_metrics(self, metrics: dict[str, float]) -> None:
        self.last_metrics = metrics
        self.metric_history.append(metrics)
