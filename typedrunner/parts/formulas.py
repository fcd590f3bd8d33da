"""Schedules whose MMEngine formula torch does not have, written as torch schedulers.

The registry names them (``PARAM_SCHEDULERS``' built-ins), so the schemas in ``typedrunner.config``
build them by name as they build torch's own. Each is chainable like torch's and MMEngine's: step
``t`` computes the value from the current one, so a schedule stacked on another composes with it.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR as TorchCosineAnnealingLR
from torch.optim.lr_scheduler import LRScheduler, PolynomialLR

__all__ = ["CosineAnnealingLR", "CosineRestartLR", "PolyLR"]


class PolyLR(PolynomialLR):
    """torch's ``PolynomialLR`` decaying to ``eta_min`` instead of 0 (MMEngine's ``PolyLR``).

    Step ``t`` (1 to ``total_iters``): ``value = (previous - eta_min) * f + eta_min`` with
    ``f = ((1 - t / total_iters) / (1 - (t - 1) / total_iters)) ** power``, torch's own decay factor;
    alone, ``eta_min + (initial - eta_min) * (1 - t / total_iters) ** power``. The value is unchanged at
    step 0 and after ``total_iters``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_iters: int = 5,
        power: float = 1.0,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        self.eta_min = eta_min
        super().__init__(optimizer, total_iters=total_iters, power=power, last_epoch=last_epoch)

    def get_lr(self) -> list[Any]:
        current = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch > self.total_iters:
            return current
        t, total = self.last_epoch, self.total_iters
        factor = ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power
        return [(value - self.eta_min) * factor + self.eta_min for value in current]

    def _get_closed_form_lr(self) -> list[Any]:
        t = min(self.total_iters, self.last_epoch)
        return [
            self.eta_min + (base - self.eta_min) * (1.0 - t / self.total_iters) ** self.power for base in self.base_lrs
        ]


class CosineAnnealingLR(TorchCosineAnnealingLR):
    """torch's ``CosineAnnealingLR`` with ``eta_min`` given as a ratio of each group's initial value
    (MMEngine's ``eta_min_ratio``): the same chainable steps, each group annealing to its own minimum."""

    def __init__(
        self, optimizer: torch.optim.Optimizer, T_max: int, eta_min_ratio: float = 0.0, last_epoch: int = -1
    ) -> None:
        self.eta_min_ratio = eta_min_ratio
        super().__init__(optimizer, T_max=T_max, eta_min=0.0, last_epoch=last_epoch)

    def get_lr(self) -> list[Any]:
        current = [group["lr"] for group in self.optimizer.param_groups]
        if self.last_epoch == 0:
            return current
        t, period = self.last_epoch, self.T_max
        out = []
        for base, value in zip(self.base_lrs, current, strict=True):
            eta_min = base * self.eta_min_ratio
            if (t - 1 - period) % (2 * period) == 0:
                out.append(value + (base - eta_min) * (1 - math.cos(math.pi / period)) / 2)
            else:
                ratio = (1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
                out.append(ratio * (value - eta_min) + eta_min)
        return out


class CosineRestartLR(LRScheduler):
    """Cosine annealing restarted at the end of each period, from ``initial * restart_weight`` down to
    ``eta_min`` (or ``initial * eta_min_ratio``): MMEngine's ``CosineRestartLR``, step for step. After
    the last period the value is left alone."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        periods: list[int],
        restart_weights: list[float],
        eta_min: float | None = None,
        eta_min_ratio: float | None = None,
        last_epoch: int = -1,
    ) -> None:
        self.periods = list(periods)
        self.restart_weights = list(restart_weights)
        self.eta_min = eta_min
        self.eta_min_ratio = eta_min_ratio
        self.cumulative = list(itertools.accumulate(self.periods))
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[Any]:
        current = [group["lr"] for group in self.optimizer.param_groups]
        t = self.last_epoch
        index = next((i for i, end in enumerate(self.cumulative) if t < end), None)
        if index is None:
            return current
        period = self.periods[index]
        step = t - (self.cumulative[index - 1] if index else 0)
        out = []
        for base, value in zip(self.base_lrs, current, strict=True):
            eta_min = self.eta_min if self.eta_min_ratio is None else base * self.eta_min_ratio
            if step == 0:
                out.append(base * self.restart_weights[index])
            else:
                ratio = (1 + math.cos(math.pi * step / period)) / (1 + math.cos(math.pi * (step - 1) / period))
                out.append(ratio * (value - (eta_min or 0.0)) + (eta_min or 0.0))
        return out
