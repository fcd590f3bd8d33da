"""Momentum schedules: SGD's momentum and Adam's beta1 follow their closed forms (with or without an lr
schedule alongside); an optimizer without momentum is a clear error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.schedule_support import (
    LR,
    MOMENTUM,
    Curve,
    approx,
    cosine,
    exponential,
    linear,
    multistep,
    param_groups,
    per_iteration,
    run_schedules,
)
from typedrunner import ConfigError
from typedrunner.config import (
    SGD,
    Adam,
    OptimWrapper,
)
from typedrunner.config import scheduler as S
from typedrunner.runner import Runner
from typedrunner.testing import toy_config

BETA2 = 0.999


# ----------------------------------------------------------------------------------------------
# Momentum schedules: SGD's momentum, Adam's beta1, and an optimizer without momentum
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer", [SGD(lr=LR, momentum=MOMENTUM), Adam(lr=LR, betas=(MOMENTUM, BETA2))])
@pytest.mark.parametrize(
    ("schedule", "curve"),
    [
        (S.ExponentialMomentum(gamma=0.8), exponential(MOMENTUM, 0.8)),
        (S.MultiStepMomentum(milestones=[1, 2], gamma=0.5), multistep(MOMENTUM, [1, 2], 0.5)),
        (S.MultiStepMomentum(by_epoch=False, milestones=[5], gamma=0.5), multistep(MOMENTUM, [5], 0.5)),
    ],
)
def test_momentum_schedule_drives_sgd_momentum_and_adam_beta1(
    tmp_path: Path, optimizer: Any, schedule: Any, curve: Curve
) -> None:
    runner, seen = run_schedules(tmp_path, [schedule], 3, optimizer=optimizer)
    assert seen.momentum == approx(per_iteration(curve, schedule.by_epoch, 12))
    assert seen.lr == approx([LR] * 12)  # the lr is left alone
    if isinstance(optimizer, Adam):
        assert seen.beta2 == approx([BETA2] * 12)  # only beta1 is the momentum
    else:
        assert seen.beta2 == []
    # the real optimizer holds it (not only the shadow one): after the run, the value of the window's
    # last step (epoch 2, iteration 11), as MMEngine
    group = param_groups(runner)[0]
    final = float(group["betas"][0] if isinstance(optimizer, Adam) else group["momentum"])
    assert final == approx(curve(2 if schedule.by_epoch else 11))


def test_lr_and_momentum_schedules_together(tmp_path: Path) -> None:
    schedules = [S.CosineAnnealingLR(by_epoch=False), S.LinearMomentum(start_factor=0.5)]
    _, seen = run_schedules(tmp_path, schedules, 3)
    assert seen.lr == approx([cosine(LR, 12)(i) for i in range(12)])
    assert seen.momentum == approx(per_iteration(linear(MOMENTUM, 0.5, 1.0, 2), True, 12))


def test_momentum_schedule_on_an_optimizer_without_momentum_is_a_clear_error(tmp_path: Path) -> None:
    cfg = toy_config(
        tmp_path / "run",
        optim_wrapper=OptimWrapper.model_validate({"optimizer": {"type": "Adagrad", "lr": LR}}),
        param_scheduler=[S.ExponentialMomentum(gamma=0.9)],
    )
    with pytest.raises((ValueError, ConfigError)) as info:
        Runner(cfg)
    assert "Adagrad has no momentum" in str(info.value)
    assert not (tmp_path / "run").exists()  # refused before anything is written
    Runner(cfg.model_copy(update={"param_scheduler": [S.ExponentialLR(gamma=0.9)]}))  # an lr schedule is fine
