"""Schedules whose MMEngine formula torch does not have, written as torch schedulers.

The registry names them (``PARAM_SCHEDULERS``' built-ins), so the schemas in ``typedrunner.config``
build them by name as they build torch's own. Each is chainable like torch's and MMEngine's: step
``t`` computes the value from the current one, so a schedule stacked on another composes with it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.lr_scheduler import PolynomialLR

__all__ = ["PolyLR"]


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
