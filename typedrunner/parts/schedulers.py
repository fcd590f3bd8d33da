"""Running the parameter schedules: each torch scheduler in its window ``[begin, end)``, as MMEngine's.

A schedule whose window starts later is built when its window opens (a torch scheduler sets the lr
as soon as it is built: step 0, at ``begin``), is stepped once per epoch or iteration while the next
step is still inside its window (steps up to ``end - begin - 1``, at ``end - 1``), and then stops,
its last value held. MMEngine's ``_ParamScheduler.step`` applies a step only while
``begin <= global_step < end``: the same steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from typedrunner.config.scheduler import SchedulerConfig, Window, build_scheduler, in_iterations, param_of, window_of

__all__ = ["ScheduleSlot", "build_slots"]


def _momentum_key(group: Mapping[str, Any]) -> str | None:
    if "momentum" in group:
        return "momentum"
    if "betas" in group:
        return "betas"
    return None


class ScheduleSlot:
    """One configured schedule: its window, and the torch scheduler once the window has opened.

    A momentum schedule runs torch's lr scheduler on a shadow optimizer whose learning rates are the
    real momenta (SGD's ``momentum``, Adam's ``beta1``) and copies them back after each step, so the
    schedule's arithmetic is torch's own.
    """

    def __init__(
        self, config: SchedulerConfig, optimizer: torch.optim.Optimizer, run_length: int, iters_per_epoch: int = 1
    ) -> None:
        if window_of(config).convert_to_iter_based:
            config = in_iterations(config, iters_per_epoch)
            run_length *= iters_per_epoch
        self.config = config
        self.optimizer = optimizer
        window: Window = window_of(config)
        self.by_epoch = window.by_epoch
        self.begin = window.begin
        self.end = window.end if window.end is not None else run_length
        self.open_ended = window.end is None
        self.scheduler: Any = None
        self.monitor: str | None = getattr(config, "monitor", None)
        self.param = param_of(config)
        self.target: torch.optim.Optimizer = optimizer
        if self.param == "momentum":
            keys = [_momentum_key(group) for group in optimizer.param_groups]
            if None in keys:
                raise ValueError(
                    f"{type(optimizer).__name__} has no momentum (nor betas) for a momentum schedule to drive"
                )
            self._keys = [k for k in keys if k is not None]
            dummy = [torch.zeros(1, requires_grad=True) for _ in optimizer.param_groups]
            self.target = torch.optim.SGD(
                [{"params": [p], "lr": self._momentum(i)} for i, p in enumerate(dummy)], lr=0.0
            )
        if self.begin == 0:
            self.open()

    def _momentum(self, index: int) -> float:
        group, key = self.optimizer.param_groups[index], self._keys[index]
        return float(group["betas"][0] if key == "betas" else group["momentum"])

    def _sync(self) -> None:
        """Copy a momentum schedule's values from the shadow optimizer into the real one."""
        if self.param != "momentum":
            return
        for index, (group, key) in enumerate(zip(self.optimizer.param_groups, self._keys, strict=True)):
            value = self.target.param_groups[index]["lr"]
            if key == "betas":
                group["betas"] = (value, *tuple(group["betas"])[1:])
            else:
                group["momentum"] = value

    @property
    def plateau(self) -> bool:
        return self.monitor is not None

    def open(self) -> Any:
        """Build the torch scheduler (it sets the lr of step ``begin``) and return it."""
        self.scheduler = build_scheduler(self.config, self.target, max(self.end - self.begin, 1))
        if self.target is not self.optimizer:
            self.target.step()  # the shadow has no gradients: a no-op that marks it stepped for torch
        self._sync()
        return self.scheduler

    def advance(self, done: int) -> None:
        """``done`` epochs (or iterations) are finished: step into step ``done`` if it is in the window."""
        if self.plateau:
            return
        if self.scheduler is None:
            if done == self.begin:
                self.open()
        elif done < self.end:
            self.scheduler.step()
            self._sync()

    def observe(self, metrics: Mapping[str, float], done: int) -> None:
        """A validation finished after ``done`` epochs: a plateau schedule steps on its monitored metric
        when ``begin <= done < end`` (MMEngine's ``ReduceOnPlateauParamScheduler.step``; no ``end``: to
        the last validation), its scheduler built at the first validation inside the window."""
        monitor = self.monitor
        if monitor is None or monitor not in metrics or done < self.begin:
            return
        if not self.open_ended and done >= self.end:
            return
        scheduler: ReduceLROnPlateau = self.scheduler if self.scheduler is not None else self.open()
        scheduler.step(float(metrics[monitor]))
        self._sync()

    def state_dict(self) -> dict[str, Any]:
        if self.scheduler is None:
            return {"opened": False}
        state = {k: dict(v) if isinstance(v, dict) else v for k, v in self.scheduler.state_dict().items()}
        return {"opened": True, "state": state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not state.get("opened", True):
            self.scheduler = None
            return
        scheduler = self.scheduler if self.scheduler is not None else self.open()
        scheduler.load_state_dict(dict(state["state"]) if "state" in state else dict(state))
        if self.param == "momentum":
            for group, value in zip(self.target.param_groups, scheduler.get_last_lr(), strict=True):
                group["lr"] = value


def build_slots(
    configs: list[SchedulerConfig], optimizer: torch.optim.Optimizer, max_epochs: int, max_iters: int
) -> list[ScheduleSlot]:
    """One slot per configured schedule, in order (a window opening at 0 builds its scheduler now)."""
    iters_per_epoch = max_iters // max_epochs if max_epochs else 1
    return [
        ScheduleSlot(c, optimizer, max_epochs if window_of(c).by_epoch else max_iters, iters_per_epoch) for c in configs
    ]
