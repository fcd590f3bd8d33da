"""Helpers of the schedule tests (test_schedules_*): closed forms, a recorder and a run."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ITERS
from typedrunner.config import (
    SGD,
    DefaultHooks,
    OptimWrapper,
)
from typedrunner.config import scheduler as S
from typedrunner.hooks import Hook, RunView
from typedrunner.runner import Runner
from typedrunner.testing import (
    toy_config,
)

# ----------------------------------------------------------------------------------------------
# Schedules (test_schedules_*): closed forms, a recorder and a run
# ----------------------------------------------------------------------------------------------
LR = 0.1
MOMENTUM = 0.9

Curve = Callable[[int], float]
"""A schedule's value at step ``t`` (epochs or iterations since its ``begin``)."""


def approx(expected: Any) -> Any:
    """Equal up to float rounding (torch computes most schedules recursively, step by step)."""
    return pytest.approx(expected, rel=1e-6, abs=1e-9)


def multistep(base: float, milestones: Sequence[int], gamma: float) -> Curve:
    return lambda t: base * gamma ** sum(1 for m in milestones if t >= m)


def exponential(base: float, gamma: float) -> Curve:
    return lambda t: base * gamma**t


def cosine(base: float, period: int, eta_min: float = 0.0) -> Curve:
    return lambda t: eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


def linear(base: float, start: float, end: float, total: int) -> Curve:
    return lambda t: base * (start + (end - start) * min(t, total) / total)


def per_iteration(curve: Curve, by_epoch: bool, iterations: int) -> list[float]:
    """The value each iteration sees, for a curve stepped per epoch or per iteration."""
    return [curve(i // ITERS if by_epoch else i) for i in range(iterations)]


class Seen(Hook):
    """The lr and momentum (SGD's ``momentum``, Adam's ``betas[0]``) each iteration trains with,
    read before anything else runs in the iteration."""

    priority = "HIGHEST"

    def __init__(self) -> None:
        self.lr: list[float] = []
        self.momentum: list[float] = []
        self.beta2: list[float] = []

    def before_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None:
        group = param_groups(runner)[0]
        self.lr.append(float(group["lr"]))
        if "betas" in group:
            self.momentum.append(float(group["betas"][0]))
            self.beta2.append(float(group["betas"][1]))
        else:
            self.momentum.append(float(group["momentum"]))


def param_groups(runner: RunView) -> list[dict[str, Any]]:
    assert runner.optim_wrapper is not None
    return runner.optim_wrapper.param_groups


def run_schedules(
    work_dir: Path,
    schedules: Sequence[Any],
    max_epochs: int,
    optimizer: Any = None,
    hooks: Sequence[Hook] = (),
    **overrides: Any,
) -> tuple[Runner, Seen]:
    """Train the toy model with ``schedules`` (no checkpoints unless asked); what each iteration saw."""
    seen = Seen()
    values: dict[str, Any] = {
        "optim_wrapper": OptimWrapper(optimizer=optimizer or SGD(lr=LR, momentum=MOMENTUM)),
        "param_scheduler": list(schedules),
        "default_hooks": DefaultHooks(checkpoint=None),
        "custom_hooks": [seen, *hooks],
    }
    values.update(overrides)
    runner = Runner(toy_config(work_dir, max_epochs=max_epochs, **values))
    runner.train()
    assert len(seen.lr) == runner.iter == runner.max_iters
    return runner, seen


def warmup_then_cosine(warmup_end: int) -> list[Any]:
    return [
        S.LinearLR(by_epoch=False, start_factor=0.25, end=warmup_end),
        S.CosineAnnealingLR(begin=1, eta_min=0.01, convert_to_iter_based=True),
    ]


def warmup_then_cosine_curve(warmup_end: int, iterations: int) -> list[float]:
    """Warm-up over iterations [0, warmup_end), reaching the full lr at its last step, ``warmup_end - 1``
    (held until the cosine opens at epoch 1, iteration 4), then a smooth cosine over the 8 remaining
    iterations."""
    warmup = linear(LR, 0.25, 1.0, warmup_end - 1)
    cos = cosine(LR, (3 - 1) * ITERS, 0.01)
    return [cos(i - ITERS) if i >= ITERS else warmup(i) for i in range(iterations)]
