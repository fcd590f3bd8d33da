"""Fail fast at config time: every mistake below is refused by ``Runner(cfg)`` before anything is built, naming its config path.

Each check is exercised with a realistic broken config, as YAML composed from ``conf/`` with
command-line style overrides (in-process, through ``typedrunner.app.compose``) and as a Python config
(``toy_config`` or an MMEngine-style dict of the toy parts); config warnings train unless ``strict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pydantic
import pytest
from torch import Tensor

from tests.helpers import (
    assert_nothing_trained,
    config_problems,
    find,
    recording_runner,
    seed_config,
)
from typedrunner import ContractError, lazy
from typedrunner.config import (
    CheckpointHook,
    DefaultHooks,
    Evaluator,
    MultiStepLR,
    StepLR,
    TestLoop,
    TrainLoop,
)
from typedrunner.hooks import Hook, RunView
from typedrunner.runner import Runner
from typedrunner.testing import ToyDataset, ToyMetric, ToyModel, toy_config

HERE = __name__
"""This module's dotted path: YAML configs below name its classes as ``type: <HERE>.ClassName``."""


# ----------------------------------------------------------------------------------------------
# User code with the mistakes users make
# ----------------------------------------------------------------------------------------------
class LossLoggingHook(Hook):
    """Misspells ``after_train_iter``: MMEngine would silently never call it."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def after_train_iteration(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        assert outputs is not None
        self.losses.append(float(outputs["loss"]))


class NoEventHook(Hook):
    """Overrides no event at all (its one method is a helper nobody calls)."""

    def log_lr(self, runner: Runner) -> None:
        print(runner.iter)


def python_config(work_dir: Path, **dotted: Any) -> dict[str, Any]:
    """An MMEngine-style dict config of the toy parts; ``dotted`` sets nested keys (``train_cfg.val_begin=3``)."""
    config: dict[str, Any] = {
        "model": {"type": ToyModel, "dim": 4, "hidden": 8},
        "work_dir": str(work_dir),
        "train_dataloader": {
            "dataset": {"type": ToyDataset, "size": 64},
            "sampler": {"type": "DefaultSampler", "shuffle": True},
            "batch_size": 16,
        },
        "val_dataloader": {
            "dataset": {"type": ToyDataset, "size": 32, "seed": 1},
            "sampler": {"type": "DefaultSampler", "shuffle": False},
            "batch_size": 32,
        },
        "train_cfg": {"by_epoch": True, "max_epochs": 2, "val_begin": 1, "val_interval": 1},
        "val_cfg": {},
        "val_evaluator": {"type": ToyMetric},
        "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.1}},
        "default_hooks": {"checkpoint": {"type": "CheckpointHook", "interval": 1}},
        "randomness": {"seed": 0},
    }
    for key, value in dotted.items():
        *parents, last = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return config


# ----------------------------------------------------------------------------------------------
# Config-time: refused by Runner(cfg), before anything is built
# ----------------------------------------------------------------------------------------------
MISSING_CKPT = "{tmp}/pretrained/epoch_12.pth"

YAML_CONFIG_ERRORS = [
    pytest.param(["+train_cfg.max_epoch=3"], [("train_cfg.max_epoch", "did you mean max_epochs?")], id="unknown-key"),
    pytest.param(["+model.layer=3"], [("model.layer", "did you mean layers?")], id="unknown-model-arg"),
    pytest.param(
        ["optim_wrapper.optimizer.type=Adamm"],
        [("optim_wrapper.optimizer.type", "did you mean Adam?")],
        id="unknown-type",
    ),
    pytest.param(["model.type=MyAwesomModel"], [("model.type", "did you mean MyAwesomeModel?")], id="unknown-model"),
    pytest.param(["model.activation=gelu"], [("model.activation", "'relu', 'silu' or 'none'", "gelu")], id="literal"),
    pytest.param(["train_cfg.val_begin=11"], [("train_cfg", "val_begin=11", "max_epochs=10")], id="val-begin"),
    pytest.param(
        ["train_cfg.val_interval=0"], [("train_cfg.val_interval", "greater than or equal to 1")], id="val-interval-0"
    ),
    pytest.param(
        ["default_hooks.checkpoint.interval=0"],
        [("default_hooks.checkpoint.interval", "greater than or equal to 1")],
        id="ckpt-interval-0",
    ),
    pytest.param(
        ["default_hooks.logger.interval=0"],
        [("default_hooks.logger.interval", "greater than or equal to 1")],
        id="log-interval-0",
    ),
    pytest.param(["~val_evaluator"], [("val_evaluator", "val_dataloader, val_cfg are set")], id="val-trio"),
    pytest.param(
        ["+test_evaluator={type: Accuracy}"],
        [("test_dataloader", "test_evaluator is set"), ("test_cfg", "test_evaluator is set")],
        id="test-trio",
    ),
    pytest.param(
        ["param_scheduler.milestones=[10,15]"],
        [("param_scheduler[0].milestones", "max_epochs=10", "[10, 15]")],
        id="milestones-all-late",
    ),
    pytest.param(
        ["~param_scheduler", "+param_scheduler={type: StepLR, step_size: 10}"],
        [("param_scheduler[0].step_size", "max_epochs=10")],
        id="step-size-late",
    ),
    pytest.param(
        ["+default_hooks.param_scheduler=null"],
        [("default_hooks.param_scheduler", "param_scheduler would never step")],
        id="no-scheduler-hook",
    ),
    pytest.param(
        ["default_hooks.checkpoint.interval=20", "+default_hooks.checkpoint.save_last=false"],
        [("default_hooks.checkpoint.interval", "save_last is false", "no checkpoint")],
        id="ckpt-interval-no-save-last",
    ),
    pytest.param(
        [f"+custom_hooks=[{{type: {HERE}.LossLoggingHook}}]"],
        [("custom_hooks[0]", "LossLoggingHook.after_train_iteration", "did you mean after_train_iter?")],
        id="misspelt-hook-event",
    ),
    pytest.param(
        [f"+custom_hooks=[{{type: {HERE}.NoEventHook}}]"],
        [("custom_hooks[0]", "NoEventHook overrides no hook event")],
        id="hook-without-event",
    ),
    pytest.param([f"load_from='{MISSING_CKPT}'"], [("load_from", "epoch_12.pth", "does not exist")], id="load-from"),
    pytest.param(
        ["custom_imports=[my_project.models]"], [("custom_imports[0]", "my_project.models")], id="custom-imports"
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), YAML_CONFIG_ERRORS)
def test_yaml_config_error(
    tmp_path: Path, repo_root: Path, overrides: list[str], expected: list[tuple[str, ...]]
) -> None:
    work_dir = tmp_path / "run"
    overrides = [o.replace("{tmp}", str(tmp_path)) for o in overrides]
    problems = config_problems(lambda: Runner(seed_config(repo_root, work_dir, *overrides)))
    for path, *fragments in expected:
        find(problems, path, *fragments)
    assert not work_dir.exists()


PYTHON_SCHEMA_ERRORS = [
    pytest.param({"train_cfg.max_epoch": 3}, [("train_cfg.max_epoch", "did you mean max_epochs?")], id="unknown-key"),
    pytest.param({"model.hiden": 8}, [("model.hiden", "did you mean hidden?")], id="unknown-model-arg"),
    pytest.param(
        {"optim_wrapper.optimizer.type": "Adamm"}, [("optim_wrapper.optimizer.type", "did you mean Adam?")], id="type"
    ),
    pytest.param(
        {"param_scheduler": [{"type": "MultiStepLr", "milestones": [1]}]},
        [("param_scheduler[0].type", "did you mean MultiStepLR?")],
        id="unknown-scheduler",
    ),
    pytest.param({"model.activation": "gelu"}, [("model.activation", "'relu' or 'tanh'")], id="literal"),
    pytest.param({"train_cfg.val_begin": 3}, [("train_cfg", "val_begin=3", "max_epochs=2")], id="val-begin"),
    pytest.param(
        {"train_cfg.val_interval": 0}, [("train_cfg.val_interval", "greater than or equal to 1")], id="val-interval-0"
    ),
    pytest.param(
        {"default_hooks.checkpoint.interval": 0},
        [("default_hooks.checkpoint.interval", "greater than or equal to 1")],
        id="ckpt-interval-0",
    ),
    pytest.param({"custom_imports": ["my_project.models"]}, [("custom_imports[0]", "my_project")], id="custom-imports"),
]


@pytest.mark.parametrize(("dotted", "expected"), PYTHON_SCHEMA_ERRORS)
def test_python_dict_config_error(tmp_path: Path, dotted: dict[str, Any], expected: list[tuple[str, ...]]) -> None:
    work_dir = tmp_path / "run"
    problems = config_problems(lambda: Runner(python_config(work_dir, **dotted)))
    for path, *fragments in expected:
        find(problems, path, *fragments)
    assert not work_dir.exists()


def test_typed_python_config_refuses_the_same_mistakes_at_construction(tmp_path: Path) -> None:
    gelu = cast(Any, "gelu")  # mypy rejects it statically (Literal['relu', 'tanh']); this is the runtime check
    with pytest.raises(pydantic.ValidationError) as info:
        toy_config(tmp_path, model=lazy(ToyModel, dim=4, activation=gelu))
    assert [tuple(e["loc"]) for e in info.value.errors()] == [("model", "activation")]
    with pytest.raises(pydantic.ValidationError, match="val_begin=3 is after max_epochs=2"):
        TrainLoop(max_epochs=2, val_begin=3)
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 1"):
        CheckpointHook(interval=0)


PYTHON_CROSS_FIELD_ERRORS = [
    pytest.param({"val_evaluator": None}, [("val_evaluator", "val_dataloader, val_cfg are set")], id="val-trio"),
    pytest.param(
        {"test_evaluator": Evaluator(metrics=[lazy(ToyMetric)])},
        [("test_dataloader", "test_evaluator is set"), ("test_cfg", "test_evaluator is set")],
        id="test-trio",
    ),
    pytest.param(
        {"test_cfg": TestLoop(), "test_evaluator": Evaluator(metrics=[lazy(ToyMetric)])},
        [("test_dataloader", "test_cfg, test_evaluator are set")],
        id="test-trio-no-loader",
    ),
    pytest.param(
        {"param_scheduler": [MultiStepLR(milestones=[2, 3])]},
        [("param_scheduler[0].milestones", "[2, 3]", "max_epochs=2")],
        id="milestones-all-late",
    ),
    pytest.param(
        {"param_scheduler": [StepLR(step_size=2)]}, [("param_scheduler[0].step_size", "max_epochs=2")], id="step-size"
    ),
    pytest.param(
        {"param_scheduler": [MultiStepLR(milestones=[1])], "default_hooks": DefaultHooks(param_scheduler=None)},
        [("default_hooks.param_scheduler", "never step")],
        id="no-scheduler-hook",
    ),
    pytest.param(
        {"default_hooks": DefaultHooks(checkpoint=CheckpointHook(interval=5, save_last=False))},
        [("default_hooks.checkpoint.interval", "save_last is false")],
        id="ckpt-interval-no-save-last",
    ),
    pytest.param(
        {"custom_hooks": [LossLoggingHook()]},
        [("custom_hooks[0]", "after_train_iteration", "did you mean after_train_iter?")],
        id="misspelt-hook-event",
    ),
    pytest.param(
        {"custom_hooks": [lazy(NoEventHook)]},
        [("custom_hooks[0]", "NoEventHook overrides no hook event")],
        id="hook-without-event",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), PYTHON_CROSS_FIELD_ERRORS)
def test_python_cross_field_error(tmp_path: Path, overrides: dict[str, Any], expected: list[tuple[str, ...]]) -> None:
    work_dir = tmp_path / "run"
    cfg = toy_config(work_dir, **overrides)  # each field is valid on its own
    problems = config_problems(lambda: Runner(cfg))
    for path, *fragments in expected:
        find(problems, path, *fragments)
    assert all(p.stage == "cross-field" for p in problems)
    assert not work_dir.exists()


def test_python_load_from_missing_file(tmp_path: Path) -> None:
    work_dir = tmp_path / "run"
    cfg = toy_config(work_dir, load_from=str(tmp_path / "pretrained" / "epoch_12.pth"))
    find(config_problems(lambda: Runner(cfg)), "load_from", "epoch_12.pth", "does not exist")
    assert not work_dir.exists()


def test_all_config_problems_are_reported_at_once(tmp_path: Path, repo_root: Path) -> None:
    overrides = ["+train_cfg.max_epoch=3", "model.activation=gelu", "optim_wrapper.optimizer.type=Adamm"]
    problems = config_problems(lambda: seed_config(repo_root, tmp_path / "run", *overrides))
    assert {p.path for p in problems} == {"train_cfg.max_epoch", "model.activation", "optim_wrapper.optimizer.type"}


# Warnings: legal but likely wrong. Runner(cfg) accepts them, check() reports them, strict refuses them.
YAML_CONFIG_WARNINGS = [
    pytest.param(
        ["param_scheduler.milestones=[4,12]"],
        ("param_scheduler[0].milestones", "[12] of [4, 12]", "max_epochs=10"),
        id="some-milestones-late",
    ),
    pytest.param(
        ["default_hooks.checkpoint.interval=20"],
        ("default_hooks.checkpoint.interval", "only the end of training is saved"),
        id="ckpt-interval-save-last",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), YAML_CONFIG_WARNINGS)
def test_yaml_config_warning(tmp_path: Path, repo_root: Path, overrides: list[str], expected: tuple[str, ...]) -> None:
    work_dir = tmp_path / "run"
    runner, hook = recording_runner(seed_config(repo_root, work_dir, *overrides))
    findings = runner.check()
    find(findings, *expected, severity="warning")
    assert all(p.severity == "warning" for p in findings)
    with pytest.raises(ContractError) as info:
        runner.train(strict=True)
    find(list(info.value.problems), *expected, severity="warning")
    assert_nothing_trained(work_dir, hook)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"param_scheduler": [MultiStepLR(milestones=[1, 4])]},
            ("param_scheduler[0].milestones", "[4] of [1, 4]"),
            id="some-milestones-late",
        ),
        pytest.param(
            {"default_hooks": DefaultHooks(checkpoint=CheckpointHook(interval=3))},
            ("default_hooks.checkpoint.interval", "only the end of training is saved"),
            id="ckpt-interval-save-last",
        ),
    ],
)
def test_python_config_warning_trains_unless_strict(
    tmp_path: Path, overrides: dict[str, Any], expected: tuple[str, ...]
) -> None:
    strict_dir = tmp_path / "strict"
    runner, hook = recording_runner(toy_config(strict_dir, **overrides))
    find(runner.check(), *expected, severity="warning")
    with pytest.raises(ContractError):
        runner.train(strict=True)
    assert_nothing_trained(strict_dir, hook)

    lenient_dir = tmp_path / "lenient"
    runner, hook = recording_runner(toy_config(lenient_dir, **overrides))
    runner.train()
    assert hook.names().count("before_train_iter") == 2 * 4
    assert (lenient_dir / "epoch_2.pth").is_file()  # the last epoch is saved either way
