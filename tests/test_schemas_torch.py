"""Typed optimizers and schedulers mirror torch (the same arguments with equal defaults, built into the
torch classes with their values); generic torch optimizers and schedulers by name or dotted path; and
the import cost: the schemas do not import torch (nor Hydra).
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import BaseModel as PydanticModel
from pydantic_core import PydanticUndefined
from torch import nn

import examples.seed_mlp  # noqa: F401  (registers MyAwesomeModel, MyDataset, Accuracy)
from tests.helpers import only_problem, with_model
from typedrunner.config import (
    SGD,
    Adam,
    AdamW,
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    RunnerConfig,
    StepLR,
)
from typedrunner.config.optim import OptimWrapper as OptimWrapperConfig
from typedrunner.config.optim import build_optimizer
from typedrunner.config.scheduler import SchedulerConfig, build_scheduler, window_of
from typedrunner.registry.lazy import Lazy


def params() -> list[nn.Parameter]:
    return list(nn.Linear(3, 2).parameters())


# --------------------------------------------------------------------------------------------
# Typed optimizers and schedulers mirror torch
# --------------------------------------------------------------------------------------------
TYPED_OPTIMIZERS: list[type[Adam | AdamW | SGD]] = [Adam, AdamW, SGD]
SCHEDULER_EXTRA = {"type", "by_epoch", "begin", "end", "convert_to_iter_based"}  # typedrunner's own keys
# MMEngine's arguments that torch's class lacks (built by typedrunner.parts.formulas, compared with
# MMEngine itself in test_schedules_mmengine)
SCHEDULER_EXTRA |= {"eta_min_ratio"}
# Lengths that default to the schedule's window (end - begin) instead of torch's fixed default.
WINDOW_DEFAULTS = {"T_max", "total_iters"}
TYPED_SCHEDULERS: list[tuple[SchedulerConfig, dict[str, Any]]] = [
    (MultiStepLR(milestones=[2, 5], gamma=0.5), {"milestones": [2, 5], "gamma": 0.5}),
    (StepLR(step_size=3, gamma=0.2), {"step_size": 3, "gamma": 0.2}),
    (ExponentialLR(gamma=0.9), {"gamma": 0.9}),
    (CosineAnnealingLR(T_max=7, eta_min=1e-5), {"T_max": 7, "eta_min": 1e-5}),
    (
        LinearLR(start_factor=0.25, end_factor=0.75, total_iters=4),
        {"start_factor": 0.25, "end_factor": 0.75, "total_iters": 4},
    ),
]


def _torch_class(name: str) -> type[Any]:
    cls = getattr(torch.optim, name, None) or getattr(torch.optim.lr_scheduler, name)
    assert isinstance(cls, type)
    return cls


@pytest.mark.parametrize(
    "schema",
    [Adam, AdamW, SGD, MultiStepLR, StepLR, ExponentialLR, CosineAnnealingLR, LinearLR],
    ids=lambda c: c.__name__,
)
def test_typed_fields_exist_in_torch_with_equal_defaults(schema: type[PydanticModel]) -> None:
    signature = inspect.signature(_torch_class(schema.__name__))
    for name, field in schema.model_fields.items():
        if name in SCHEDULER_EXTRA:
            continue
        assert name in signature.parameters, f"{schema.__name__}.{name} is not a torch argument"
        if name in WINDOW_DEFAULTS:
            assert field.default is None  # None: the window's length, given at build time
            continue
        assert name in signature.parameters, f"{schema.__name__}.{name} is not a torch argument"
        torch_default = signature.parameters[name].default
        if field.default is PydanticUndefined:
            assert torch_default is inspect.Parameter.empty, f"{schema.__name__}.{name}: torch has a default"
        else:
            assert field.default == torch_default, (schema.__name__, name, field.default, torch_default)


@pytest.mark.parametrize("schema", TYPED_OPTIMIZERS, ids=lambda c: c.__name__)
def test_typed_optimizer_builds_the_torch_class_with_its_values(schema: type[Adam | AdamW | SGD]) -> None:
    config = schema(lr=0.05, weight_decay=0.001)
    optimizer = config.build(params())
    assert type(optimizer) is _torch_class(schema.__name__)
    for name, value in config.model_dump(exclude={"type"}).items():
        assert optimizer.defaults[name] == value, name
    assert optimizer.param_groups[0]["lr"] == 0.05
    assert type(build_optimizer(config, params())) is type(optimizer)


def test_sgd_momentum_reaches_torch() -> None:
    optimizer = SGD(lr=0.1, momentum=0.9, nesterov=True).build(params())
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["momentum"] == 0.9
    assert optimizer.defaults["nesterov"] is True


@pytest.mark.parametrize(("config", "values"), TYPED_SCHEDULERS, ids=lambda v: type(v).__name__)
def test_typed_scheduler_builds_the_torch_class_with_its_values(
    config: SchedulerConfig, values: dict[str, Any]
) -> None:
    optimizer = torch.optim.SGD(params(), lr=0.1)
    scheduler = build_scheduler(config, optimizer, 10)
    assert type(scheduler) is _torch_class(type(config).__name__)
    for name, value in values.items():
        got = getattr(scheduler, name)
        if name == "milestones":
            got = sorted(got.elements())
        assert got == value, name
    assert scheduler.optimizer is optimizer
    assert window_of(config).by_epoch is True


def test_scheduler_by_epoch_false_is_kept() -> None:
    config = LinearLR(by_epoch=False)
    assert window_of(config).by_epoch is False


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("RMSprop", {"lr": 0.01, "alpha": 0.9}), ("Adagrad", {"lr": 0.05, "lr_decay": 0.1}), ("Adamax", {"lr": 0.002})],
)
def test_generic_torch_optimizer_by_name_validates_and_builds(name: str, kwargs: dict[str, Any]) -> None:
    cfg = RunnerConfig.from_dict(with_model(optim_wrapper={"optimizer": {"type": name, **kwargs}}))
    assert isinstance(cfg.optim_wrapper, OptimWrapperConfig)
    optimizer_cfg = cfg.optim_wrapper.optimizer
    assert isinstance(optimizer_cfg, Lazy)
    assert optimizer_cfg.target is getattr(torch.optim, name)
    assert optimizer_cfg.kwargs == kwargs
    optimizer = build_optimizer(optimizer_cfg, params())
    assert type(optimizer) is getattr(torch.optim, name)
    for key, value in kwargs.items():
        assert optimizer.defaults[key] == value


def test_generic_torch_optimizer_arguments_are_checked() -> None:
    problem = only_problem(with_model(optim_wrapper={"optimizer": {"type": "RMSprop", "alpah": 0.9}}))
    assert problem.path == "optim_wrapper.optimizer.alpah"
    assert "did you mean alpha" in problem.message
    # ``params`` is supplied at build time, not by the config.
    problem = only_problem(with_model(optim_wrapper={"optimizer": {"type": "RMSprop", "params": []}}))
    assert problem.path == "optim_wrapper.optimizer.params"


def test_generic_torch_optimizer_by_dotted_path() -> None:
    cfg = RunnerConfig.from_dict(with_model(optim_wrapper={"optimizer": {"type": "torch.optim.Adagrad", "lr": 0.1}}))
    assert isinstance(cfg.optim_wrapper, OptimWrapperConfig)
    assert isinstance(cfg.optim_wrapper.optimizer, Lazy)
    assert cfg.optim_wrapper.optimizer.target is torch.optim.Adagrad


def test_generic_torch_scheduler_by_name_validates_and_builds() -> None:
    cfg = RunnerConfig.from_dict(
        with_model(param_scheduler={"type": "CyclicLR", "base_lr": 0.01, "max_lr": 0.1, "by_epoch": False})
    )
    (sched_cfg,) = cfg.param_scheduler
    assert isinstance(sched_cfg, Lazy)
    assert sched_cfg.target is torch.optim.lr_scheduler.CyclicLR
    assert sched_cfg.kwargs == {"base_lr": 0.01, "max_lr": 0.1}
    assert sched_cfg.meta == {"by_epoch": False, "begin": 0, "end": None, "convert_to_iter_based": False}
    assert window_of(sched_cfg).by_epoch is False
    optimizer = torch.optim.SGD(params(), lr=0.1, momentum=0.9)
    scheduler = build_scheduler(sched_cfg, optimizer, 10)
    assert isinstance(scheduler, torch.optim.lr_scheduler.CyclicLR)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_generic_scheduler_arguments_are_checked() -> None:
    problem = only_problem(
        with_model(param_scheduler={"type": "CyclicLR", "base_lr": 0.1, "max_lr": 1, "stepsize_up": 3})
    )
    assert problem.path.endswith("stepsize_up")
    assert "did you mean step_size_up" in problem.message


def test_optimizer_type_given_as_a_class_equals_the_name() -> None:
    by_class = RunnerConfig.from_dict(with_model(optim_wrapper={"optimizer": {"type": torch.optim.Adam, "lr": 0.1}}))
    by_name = RunnerConfig.from_dict(with_model(optim_wrapper={"optimizer": {"type": "Adam", "lr": 0.1}}))
    assert isinstance(by_class.optim_wrapper, OptimWrapperConfig)
    assert by_class.optim_wrapper.optimizer == Adam(lr=0.1)
    assert by_class == by_name


def test_scheduler_and_generic_optimizer_type_given_as_a_class_equal_the_name() -> None:
    by_class = RunnerConfig.from_dict(
        with_model(
            optim_wrapper={"optimizer": {"type": torch.optim.RMSprop, "lr": 0.1}},
            param_scheduler={"type": torch.optim.lr_scheduler.MultiStepLR, "milestones": [3]},
        )
    )
    by_name = RunnerConfig.from_dict(
        with_model(
            optim_wrapper={"optimizer": {"type": "RMSprop", "lr": 0.1}},
            param_scheduler={"type": "MultiStepLR", "milestones": [3]},
        )
    )
    assert by_class == by_name
    assert by_class.param_scheduler == [MultiStepLR(milestones=[3])]


def test_typed_optimizer_bad_type_name_for_its_schema_is_rejected() -> None:
    with pytest.raises(ValueError, match="type"):
        Adam.model_validate({"type": "SGD"})


# --------------------------------------------------------------------------------------------
# Import cost: the schemas do not import torch (nor Hydra)
# --------------------------------------------------------------------------------------------
def test_importing_typedrunner_config_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import typedrunner.config\n"
        "from typedrunner.config import RunnerConfig, TrainLoop, OptimWrapper\n"
        "TrainLoop(max_epochs=3)\n"
        "OptimWrapper(optimizer={'type': 'Adam', 'lr': 0.1})\n"
        "print(sorted(m for m in ('torch', 'hydra', 'omegaconf') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_importing_typedrunner_does_not_import_torch() -> None:
    code = "import sys, typedrunner; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1]
    )
    assert result.stdout.strip() == "False", result.stdout + result.stderr
