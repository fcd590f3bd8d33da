"""The cross-field checks on schedules: a schedule beginning after training, an empty window, a conversion
of iterations, an epoch schedule in an iteration run and a plateau monitor that is not a metric name are
each a config error naming its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.schedule_support import LR, approx, run_schedules
from typedrunner import ConfigError, ContractError, RunnerConfig, lazy
from typedrunner.config import (
    CheckpointHook,
    DefaultHooks,
    TrainLoop,
    TrainLoopConfig,
)
from typedrunner.config import scheduler as S
from typedrunner.runner import Runner
from typedrunner.testing import ToyModel, toy_config


# ----------------------------------------------------------------------------------------------
# Cross-field checks
# ----------------------------------------------------------------------------------------------
def _paths(error: ConfigError) -> list[str]:
    return [p.path for p in error.problems if p.severity == "error"]


@pytest.mark.parametrize(
    ("schedule", "train_cfg", "message"),
    [
        (S.MultiStepLR(milestones=[1], begin=3), TrainLoop(max_epochs=3), "train_cfg.max_epochs=3"),
        (S.CosineAnnealingLR(begin=5, end=6), TrainLoop(max_epochs=3), "train_cfg.max_epochs=3"),
        (S.LinearLR(by_epoch=False, begin=8), TrainLoop(by_epoch=False, max_iters=8), "train_cfg.max_iters=8"),
        (S.CosineAnnealingLR(begin=3, convert_to_iter_based=True), TrainLoop(max_epochs=3), "max_epochs=3"),
        ({"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "begin": 4}, TrainLoop(max_epochs=3), "max_epochs=3"),
    ],
)
def test_a_schedule_beginning_after_training_is_a_config_error(
    tmp_path: Path, schedule: Any, train_cfg: TrainLoopConfig, message: str
) -> None:
    cfg = toy_config(
        tmp_path / "run",
        train_cfg=train_cfg,
        param_scheduler=[S.ConstantLR(by_epoch=bool(train_cfg.by_epoch)), schedule],  # a fine one first
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=bool(train_cfg.by_epoch))),
    )
    with pytest.raises(ConfigError) as info:
        Runner(cfg)
    assert _paths(info.value) == ["param_scheduler[1].begin"]
    assert message in info.value.problems[0].message
    assert not (tmp_path / "run").exists()


def test_a_schedule_beginning_at_the_last_epoch_is_fine(tmp_path: Path) -> None:
    _, seen = run_schedules(tmp_path, [S.LinearLR(start_factor=0.5, begin=2)], 3)
    assert seen.lr == approx([LR] * 8 + [LR / 2] * 4)


def test_an_iteration_schedule_beginning_after_an_epoch_run_is_reported(tmp_path: Path) -> None:
    runner = Runner(toy_config(tmp_path, max_epochs=2, param_scheduler=[S.LinearLR(by_epoch=False, begin=8)]))
    assert "param_scheduler[0].begin" in [p.path for p in runner.check() if p.severity == "error"]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"type": "MultiStepLR", "milestones": [1], "begin": 2, "end": 2}, "end=2 must be after begin=2"),
        ({"type": "CosineAnnealingLR", "begin": 3, "end": 1}, "end=1 must be after begin=3"),
        (
            {"type": "CosineAnnealingLR", "by_epoch": False, "convert_to_iter_based": True},
            "convert_to_iter_based applies to a schedule given in epochs",
        ),
    ],
)
def test_an_empty_window_or_a_conversion_of_iterations_is_a_config_error(
    tmp_path: Path, schedule: dict[str, Any], message: str
) -> None:
    data = {"model": lazy(ToyModel, dim=4, hidden=8), "work_dir": str(tmp_path), "param_scheduler": [schedule]}
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(data)
    assert _paths(info.value) == ["param_scheduler[0]"]  # once, at the schedule
    assert message in info.value.problems[0].message
    kind = getattr(S, schedule["type"])
    with pytest.raises(ValueError, match=message):  # the typed schedule itself refuses it
        kind.model_validate(schedule)


@pytest.mark.parametrize(
    "meta",
    [{"begin": 3, "end": 2}, {"by_epoch": False, "convert_to_iter_based": True}],
    ids=["end-before-begin", "convert-iterations"],
)
def test_a_generic_schedule_gets_the_same_window_checks(tmp_path: Path, meta: dict[str, Any]) -> None:
    schedule = {"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, **meta}
    data = {"model": lazy(ToyModel, dim=4, hidden=8), "work_dir": str(tmp_path), "param_scheduler": [schedule]}
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(data)
    assert "param_scheduler[0]" in _paths(info.value)


def test_an_epoch_schedule_in_an_iteration_run_is_a_config_error(tmp_path: Path) -> None:
    cfg = toy_config(
        tmp_path / "run",
        train_cfg=TrainLoop(by_epoch=False, max_iters=8),
        default_hooks=DefaultHooks(checkpoint=CheckpointHook(by_epoch=False)),
        param_scheduler=[S.LinearLR(by_epoch=False), S.MultiStepLR(milestones=[2])],
    )
    with pytest.raises(ConfigError) as info:
        Runner(cfg)
    assert _paths(info.value) == ["param_scheduler[1].by_epoch"]
    assert "iteration-based" in info.value.problems[0].message
    assert not (tmp_path / "run").exists()


def test_plateau_monitor_must_be_a_metric_name(tmp_path: Path) -> None:
    cfg = toy_config(
        tmp_path / "run",
        param_scheduler=[S.ReduceOnPlateauLR(monitor="acuracy", rule="greater")],  # ToyMetric: 'accuracy'
    )
    runner = Runner(cfg)
    errors = [p for p in runner.check() if p.severity == "error"]
    assert [p.path for p in errors] == ["param_scheduler[0].monitor"]
    assert "did you mean accuracy?" in errors[0].message
    with pytest.raises(ContractError):
        runner.train()
    assert runner.iter == 0  # refused before the first step
    fixed = Runner(cfg.model_copy(update={"param_scheduler": [S.ReduceOnPlateauLR(monitor="accuracy")]}))
    assert [p for p in fixed.check() if p.severity == "error"] == []
