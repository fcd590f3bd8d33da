"""Running the parameter schedules: each torch scheduler in its window ``[begin, end)``.

A schedule whose window starts later is built when its window opens (a torch scheduler sets the lr
as soon as it is built), is stepped once per epoch or iteration inside its window, and then stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from typedrunner.config.scheduler import SchedulerConfig, Window, build_scheduler, window_of

__all__ = ["ScheduleSlot", "build_slots"]


class ScheduleSlot:
    """One configured schedule: its window, and the torch scheduler once the window has opened."""

    def __init__(self, config: SchedulerConfig, optimizer: torch.optim.Optimizer, run_length: int) -> None:
        self.config = config
        self.optimizer = optimizer
        window: Window = window_of(config)
        self.by_epoch = window.by_epoch
        self.begin = window.begin
        self.end = window.end if window.end is not None else run_length
        self.scheduler: Any = None
        self.monitor: str | None = getattr(config, "monitor", None)
        if self.begin == 0:
            self.open()

    @property
    def plateau(self) -> bool:
        return self.monitor is not None

    def open(self) -> None:
        """Build the torch scheduler (it sets the lr of step ``begin``)."""
        self.scheduler = build_scheduler(self.config, self.optimizer, max(self.end - self.begin, 1))

    def advance(self, done: int) -> None:
        """``done`` epochs (or iterations) are finished: step into step ``done`` if it is in the window."""
        if self.plateau:
            return
        if self.scheduler is None:
            if done == self.begin:
                self.open()
        elif done <= self.end:
            self.scheduler.step()

    def observe(self, metrics: Mapping[str, float], done: int) -> None:
        """A validation finished: a plateau schedule steps on its monitored metric, inside its window."""
        monitor = self.monitor
        if monitor is not None and monitor in metrics and self.begin <= done <= self.end:
            scheduler: ReduceLROnPlateau = self.scheduler
            scheduler.step(float(metrics[monitor]))

    def state_dict(self) -> dict[str, Any]:
        if self.scheduler is None:
            return {"opened": False}
        state = {k: dict(v) if isinstance(v, dict) else v for k, v in self.scheduler.state_dict().items()}
        return {"opened": True, "state": state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not state.get("opened", True):
            self.scheduler = None
            return
        if self.scheduler is None:
            self.open()
        self.scheduler.load_state_dict(dict(state["state"]) if "state" in state else dict(state))


def build_slots(
    configs: list[SchedulerConfig], optimizer: torch.optim.Optimizer, max_epochs: int, max_iters: int
) -> list[ScheduleSlot]:
    """One slot per configured schedule, in order (a window opening at 0 builds its scheduler now)."""
    return [ScheduleSlot(c, optimizer, max_epochs if window_of(c).by_epoch else max_iters) for c in configs]
