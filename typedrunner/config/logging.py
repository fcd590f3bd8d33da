"""``log_processor``, ``log_level`` and ``visualizer``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from typedrunner.config.base import ConfigModel, not_supported_yet

__all__ = ["LogLevel", "LogProcessor", "Visualizer"]

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class LogProcessor(ConfigModel):
    """``log_processor``: how logged scalars are smoothed and shown."""

    window_size: int = Field(default=10, ge=1)
    """Training scalars are averaged over this many iterations at each log point."""
    by_epoch: Annotated[
        bool, not_supported_yet(True, "log_processor.by_epoch: false (a log counted in iterations only)")
    ] = True
    """Show progress as epoch and iteration within the epoch (the only layout so far)."""
    num_digits: int = Field(default=4, ge=1, le=12)
    """Significant digits of logged floats in the human log."""


Visualizer = Annotated[dict[str, Any] | None, not_supported_yet(None, "visualizer backends (TensorBoard)")]
