"""``log_processor``, ``log_level`` and ``visualizer``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from typedrunner.config.base import ConfigModel, not_supported_yet
from typedrunner.config.visualizer import Visualizer as VisualizerConfig

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
    progress: Literal["auto", "on", "off"] = "auto"
    """Progress bars for training, validation and test (tqdm: loss, lr, it/s, ETA): ``auto`` when
    stdout is a terminal (elsewhere, the periodic log lines only), ``on`` always, ``off`` never."""


Visualizer = VisualizerConfig | None
"""``visualizer``: the backends every logged scalar also goes to (None: ``scalars.jsonl`` and the logs only)."""
