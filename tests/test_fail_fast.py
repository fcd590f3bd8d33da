"""Fail fast: every mistake below is refused before the first optimizer step, naming its config path.

Each check is exercised with a realistic broken config, as YAML composed from ``conf/`` with
command-line style overrides (in-process, through ``typedrunner.compose``) and as a Python config
(``toy_config`` or an MMEngine-style dict of the toy parts). Then: the contract probe leaves no trace
(bit-identical training with and without it), ``load_from`` refuses what does not fit, and the
command line exits 2 with a report that says where each bad value came from.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pydantic
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import RandomSampler

from examples.seed_mlp import Accuracy, MyAwesomeModel, MyDataset
from tests.helpers import explain, run_cli
from typedrunner import ConfigError, ContractError, lazy
from typedrunner.compose import compose, to_runner_config
from typedrunner.config import (
    CheckpointHook,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    Evaluator,
    MultiStepLR,
    RunnerConfig,
    StepLR,
    TestLoop,
    TrainLoop,
)
from typedrunner.errors import Problem, Severity
from typedrunner.hooks import Hook
from typedrunner.runner import Runner
from typedrunner.testing import RecordingHook, ToyDataset, ToyMetric, ToyModel, toy_config

HERE = __name__
"""This module's dotted path: YAML configs below name its classes as ``type: <HERE>.ClassName``."""
REPO = Path(__file__).resolve().parents[1]
SEED = ["+experiment=mlp", "train_dataloader.num_workers=0", "val_dataloader.num_workers=0"]
SMALL = [*SEED, "train_dataloader.dataset.size=256", "val_dataloader.dataset.size=64"]
"""The seed (10 epochs, MultiStepLR at epochs 4 and 8) on 256 training points: 4 iterations per epoch."""


# ----------------------------------------------------------------------------------------------
# User code with the mistakes users make
# ----------------------------------------------------------------------------------------------
class LossLoggingHook(Hook):
    """Misspells ``after_train_iter``: MMEngine would silently never call it."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def after_train_iteration(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        assert outputs is not None
        self.losses.append(float(outputs["loss"]))


class NoEventHook(Hook):
    """Overrides no event at all (its one method is a helper nobody calls)."""

    def log_lr(self, runner: Runner) -> None:
        print(runner.iter)


class Float64Dataset(ToyDataset):
    """Data built with numpy defaults: float64."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index].double(), self.labels[index]


class FloatLabelDataset(ToyDataset):
    """Labels stored as floats (read from a CSV, say)."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index].float()


class LabelFiveDataset(ToyDataset):
    """Class ids 0 and 5 (e.g. two classes picked out of a larger label set, not remapped)."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index] * 5


class DictDataset(ToyDataset):
    """Samples as dicts whose keys do not match ``ToyModel.forward(data, labels)``."""

    def __getitem__(self, index: int) -> dict[str, Tensor]:  # type: ignore[override]
        return {"inputs": self.data[index], "labels": self.labels[index]}


class WithIndexDataset(ToyDataset):
    """Samples with an extra element (the index), so the batch has three items, not two."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:  # type: ignore[override]
        return self.data[index], self.labels[index], index


class MissingFileDataset(ToyDataset):
    """``__getitem__`` reads a file that is not there."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        raise FileNotFoundError(f"images/{index:05d}.png")


class RaggedDataset(ToyDataset):
    """Variable-length samples that ``default_collate`` cannot stack."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index][: 1 + index % 4], self.labels[index]


class TensorLossModel(ToyModel):
    """``mode='loss'`` returns the loss tensor itself instead of ``{'loss': ...}``."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            return F.cross_entropy(self.net(data), labels)
        return super().forward(data, labels, mode)


class NoLossKeyModel(ToyModel):
    """Returns ``{'ce': ...}``: no key contains 'loss', so nothing would be optimised."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            return {"ce": F.cross_entropy(self.net(data), labels)}
        return super().forward(data, labels, mode)


class PerSampleLossModel(ToyModel):
    """Forgets to reduce: the loss has one entry per sample."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            return {"loss": F.cross_entropy(self.net(data), labels, reduction="none")}
        return super().forward(data, labels, mode)


class NaNLossModel(ToyModel):
    """A log of a negative number: the loss is NaN from the first batch."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            return {"loss": F.cross_entropy(self.net(data), labels) + torch.log(torch.tensor(-1.0))}
        return super().forward(data, labels, mode)


class NoGradLossModel(ToyModel):
    """Computes the loss under ``torch.no_grad()`` (copied from the evaluation code)."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            with torch.no_grad():
                return {"loss": F.cross_entropy(self.net(data), labels)}
        return super().forward(data, labels, mode)


class DetachedLossModel(ToyModel):
    """Detaches the logits, then re-enables grad on the copy: a graph that reaches no parameter."""

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        if mode == "loss":
            logits = self.net(data).detach().requires_grad_()
            return {"loss": F.cross_entropy(logits, labels)}
        return super().forward(data, labels, mode)


class DictOutputMetric(ToyMetric):
    """Written for a model whose predictions are a dict; ToyModel returns a tuple."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        self.results.append((len(data_samples["labels"]), int(data_samples["correct"])))


class ScalarMetric(ToyMetric):
    """``compute_metrics`` returns a bare number instead of ``{name: number}``."""

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return cast(dict[str, float], 97.5)


class TextMetric(ToyMetric):
    """``compute_metrics`` returns a string value."""

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return cast(dict[str, float], {"accuracy": "97.5%"})


class BatchNormDropoutModel(ToyModel):
    """A classifier whose training forward mutates buffers (BatchNorm) and draws random numbers (Dropout)."""

    def __init__(self, dim: int = 4, hidden: int = 8) -> None:
        super().__init__(dim=dim, hidden=hidden)
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, 2)
        )


class AugmentedDataset(ToyDataset):
    """Random augmentation from Python's ``random`` (flip) and numpy's global RNG (jitter)."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        data = self.data[index].clone()
        if random.random() < 0.5:
            data[1:] = -data[1:]
        return data + float(np.random.normal(scale=0.01)), self.labels[index]


# Seed-workload variants, for YAML configs that swap one component with ``type: <HERE>.Name``.
class Float64Rings(MyDataset):
    """The seed's rings, converted with ``torch.tensor(numpy_array)``: float64."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index].double(), self.labels[index]


class OneBasedRings(MyDataset):
    """The seed's rings labelled 1 and 2 (1-based), for a 2-class classifier."""

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index] + 1


class ThreeFeatureMLP(MyAwesomeModel):
    """The seed's MLP with a first layer expecting 3 features; the rings have 2."""

    def __init__(self, layers: int = 4, activation: Literal["relu", "silu", "none"] = "relu") -> None:
        super().__init__(layers=layers, activation=activation)
        self.layer0 = nn.Linear(3, 64)


class DictAccuracy(Accuracy):
    """Expects predictions as ``{'scores': ..., 'labels': ...}``; the seed model returns a tuple."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        correct = (data_samples["scores"].argmax(dim=1) == data_samples["labels"]).sum()
        self.results.append({"batch_size": len(data_samples["labels"]), "correct": correct})


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def seed_config(repo_root: Path, work_dir: Path, *overrides: str, base: Sequence[str] = SMALL) -> RunnerConfig:
    """The seed experiment composed from conf/ with ``overrides``, validated (raises ConfigError)."""
    composed = compose([*base, f"work_dir='{work_dir}'", *overrides], config_dir=str(repo_root / "conf"))
    config, _ = to_runner_config(composed)
    return config


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


def toy_loader(dataset: Any, **kwargs: Any) -> DataLoader:
    return DataLoader(dataset=dataset, sampler=DefaultSampler(shuffle=True), batch_size=16, **kwargs)


def find(problems: Sequence[Problem], path: str, *fragments: str, severity: Severity = "error") -> Problem:
    """The one problem at ``path`` whose message holds every fragment; fails listing what was found."""
    listing = "\n".join(f"  [{p.severity}] {p.path}: {p.message}" for p in problems)
    matches = [p for p in problems if p.path == path and all(f in p.render() for f in fragments)]
    assert matches, f"no problem at {path!r} containing {fragments}; found:\n{listing}"
    assert matches[0].severity == severity, f"{path}: expected {severity}, got {matches[0].severity}\n{listing}"
    return matches[0]


def config_problems(make: Callable[[], object]) -> list[Problem]:
    """The problems of the ConfigError that ``make()`` (validating and building) raises."""
    with pytest.raises(ConfigError) as info:
        make()
    return list(info.value.problems)


def assert_nothing_trained(work_dir: Path, hook: RecordingHook | None = None) -> None:
    if hook is not None:
        assert "before_train_iter" not in hook.names(), hook.names()
        assert "before_run" not in hook.names(), hook.names()
    assert list(work_dir.rglob("*.pth")) == []
    assert list(work_dir.rglob("scalars.jsonl")) == []


def recording_runner(cfg: RunnerConfig) -> tuple[Runner, RecordingHook]:
    runner = Runner(cfg)
    hook = RecordingHook()
    runner.register_hook(hook)
    return runner, hook


def state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_bit_identical(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


# ----------------------------------------------------------------------------------------------
# 1. Config-time: refused by Runner(cfg), before anything is built
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


# ----------------------------------------------------------------------------------------------
# 2. Built checks: iteration-stepped schedules against the run's real length
# ----------------------------------------------------------------------------------------------
def test_iteration_milestones_beyond_the_run_python(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, param_scheduler=[MultiStepLR(by_epoch=False, milestones=[40, 80])])
    runner, hook = recording_runner(cfg)  # the length of the run is known only once data is built
    find(runner.check(), "param_scheduler[0].milestones", "only 8 iterations", "4 per epoch", "by_epoch: true")
    with pytest.raises(ContractError) as info:
        runner.train()
    find(list(info.value.problems), "param_scheduler[0].milestones", "only 8 iterations")
    assert_nothing_trained(tmp_path, hook)


def test_iteration_milestones_in_the_first_epoch_python(tmp_path: Path) -> None:
    cfg = toy_config(tmp_path / "a", param_scheduler=[MultiStepLR(by_epoch=False, milestones=[1, 2])])
    runner, hook = recording_runner(cfg)
    findings = runner.check()
    find(findings, "param_scheduler[0].milestones", "inside the first epoch", severity="warning")
    assert [p.severity for p in findings] == ["warning"]
    with pytest.raises(ContractError):
        runner.train(strict=True)
    assert_nothing_trained(tmp_path, hook)
    runner.train()  # not strict: a warning does not stop the run
    assert hook.names().count("before_train_iter") == 8


def test_iteration_milestones_yaml(tmp_path: Path, repo_root: Path) -> None:
    beyond = seed_config(
        repo_root, tmp_path / "beyond", "param_scheduler.by_epoch=false", "param_scheduler.milestones=[400,800]"
    )
    runner, hook = recording_runner(beyond)
    find(runner.check(), "param_scheduler[0].milestones", "only 40 iterations")
    with pytest.raises(ContractError):
        runner.train()
    assert_nothing_trained(tmp_path / "beyond", hook)

    # The seed's [4, 8] with by_epoch: false on 1024 points (16 iterations per epoch): over in epoch 1.
    early = seed_config(
        repo_root, tmp_path / "early", "param_scheduler.by_epoch=false", "train_dataloader.dataset.size=1024"
    )
    runner, hook = recording_runner(early)
    find(runner.check(), "param_scheduler[0].milestones", "[4, 8]", "first epoch (16 iterations)", severity="warning")
    with pytest.raises(ContractError):
        runner.train(strict=True)
    assert_nothing_trained(tmp_path / "early", hook)


# ----------------------------------------------------------------------------------------------
# 3. The contract probe: one real batch per dataloader through the user's code
# ----------------------------------------------------------------------------------------------
LOSS = "mode='loss'"
PROBE_CASES = [
    pytest.param(
        {"train_dataloader": toy_loader(lazy(Float64Dataset, size=64))},
        [("train_dataloader", "probe: train", "float64", "float32", "Tensor[16, 4] float64")],
        id="float64-data",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(FloatLabelDataset, size=64))},
        [("model", "probe: train", LOSS, "ToyModel.forward", "Tensor[16] float32", "int64")],
        id="float-labels",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(LabelFiveDataset, size=64))},
        [("model", "probe: train", LOSS, "ToyModel.forward", "Target 5 is out of bounds", "Tensor[16, 4] float32")],
        id="label-out-of-range",
    ),
    pytest.param(
        {"model": lazy(ToyModel, dim=3, hidden=8)},
        [
            ("model", "probe: train", LOSS, "ToyModel.forward", "Tensor[16, 4] float32", "first layer"),
            ("model", "probe: val", "mode='predict'", "ToyModel.forward", "Tensor[32, 4] float32", "first layer"),
        ],
        id="first-layer-width",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(DictDataset, size=64))},
        [("model", "probe: train", "ToyModel.forward(data, labels, mode)", "['inputs', 'labels']", "'data'")],
        id="dict-keys",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(WithIndexDataset, size=64))},
        [("model", "probe: train", "ToyModel.forward(data, labels, mode)", "list of 3 items", "Tensor[16] int64)")],
        id="tuple-arity",
    ),
    pytest.param(
        {"model": lazy(TensorLossModel, dim=4, hidden=8)},
        [("model", "probe: train", "TensorLossModel.forward(mode='loss') must return a mapping", "Tensor[] float32")],
        id="loss-not-a-mapping",
    ),
    pytest.param(
        {"model": lazy(NoLossKeyModel, dim=4, hidden=8)},
        [("model", "probe: train", "NoLossKeyModel.forward(mode='loss')", "['ce']", "none containing 'loss'")],
        id="no-loss-key",
    ),
    pytest.param(
        {"model": lazy(PerSampleLossModel, dim=4, hidden=8)},
        [("model", "probe: train", "PerSampleLossModel.forward(mode='loss')['loss']", "shape [16]", "not a scalar")],
        id="non-scalar-loss",
    ),
    pytest.param(
        {"model": lazy(NaNLossModel, dim=4, hidden=8)},
        [("model", "probe: train", "NaNLossModel.forward(mode='loss')['loss'] is nan", "Tensor[16, 4] float32")],
        id="nan-loss",
    ),
    pytest.param(
        {"model": lazy(NoGradLossModel, dim=4, hidden=8)},
        [("model", "probe: train", "NoGradLossModel.forward(mode='loss')", "torch.no_grad")],
        id="loss-under-no-grad",
    ),
    pytest.param(
        {"model": lazy(DetachedLossModel, dim=4, hidden=8)},
        [("model", "probe: train", "DetachedLossModel.forward(mode='loss')", "reaches none of the model's")],
        id="detached-loss",
    ),
    pytest.param(
        {"val_evaluator": Evaluator(metrics=[lazy(DictOutputMetric)])},
        [("val_evaluator.metrics[0]", "probe: val", "process", "DictOutputMetric.process", "Tensor[32, 2] float32")],
        id="metric-process-raises",
    ),
    pytest.param(
        {"val_evaluator": Evaluator(metrics=[lazy(ScalarMetric)])},
        [("val_evaluator.metrics[0]", "probe: val", "compute_metrics", "ScalarMetric.compute_metrics", "mapping")],
        id="metrics-not-a-mapping",
    ),
    pytest.param(
        {"val_evaluator": Evaluator(metrics=[lazy(TextMetric)])},
        [("val_evaluator.metrics[0]", "probe: val", "TextMetric.compute_metrics()['accuracy'] is str, not a number")],
        id="metric-not-a-number",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(MissingFileDataset, size=64))},
        [("train_dataloader.dataset", "probe: train", "MissingFileDataset[", "FileNotFoundError", "images/")],
        id="getitem-raises",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(RaggedDataset, size=64))},
        [("train_dataloader.collate_fn", "probe: train", "default_collate failed", "stack expects each tensor")],
        id="collate-fails",
    ),
    pytest.param(
        {"train_dataloader": toy_loader(lazy(ToyDataset, size=0))},
        [("train_dataloader.dataset", "probe: train", "no batch", "empty dataset")],
        id="empty-dataset",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), PROBE_CASES)
def test_probe_python(tmp_path: Path, overrides: dict[str, Any], expected: list[tuple[str, ...]]) -> None:
    runner, hook = recording_runner(toy_config(tmp_path, **overrides))
    findings = runner.check()
    for path, stage, *fragments in expected:
        assert find(findings, path, *fragments).stage == stage
    assert len([p for p in findings if p.severity == "error"]) == len(expected), findings

    with pytest.raises(ContractError) as info:
        runner.train()
    for path, _, *fragments in expected:
        find(list(info.value.problems), path, *fragments)
    assert hook.calls == []
    assert_nothing_trained(tmp_path, hook)


YAML_PROBE_CASES = [
    pytest.param(
        [f"train_dataloader.dataset.type={HERE}.Float64Rings"],
        ("train_dataloader", "probe: train", "float64 data", "Tensor[64, 2] float64"),
        id="float64-data",
    ),
    pytest.param(
        [f"train_dataloader.dataset.type={HERE}.OneBasedRings"],
        ("model", "probe: train", LOSS, "MyAwesomeModel.forward", "Target 2 is out of bounds", "Tensor[64, 2] float32"),
        id="label-out-of-range",
    ),
    pytest.param(
        [f"model.type={HERE}.ThreeFeatureMLP"],
        ("model", "probe: train", LOSS, "ThreeFeatureMLP.forward", "(64x2 and 3x64)", "first layer"),
        id="first-layer-width",
    ),
    pytest.param(
        [f"val_evaluator.type={HERE}.DictAccuracy"],
        ("val_evaluator.metrics[0]", "probe: val", "process: DictAccuracy.process raised", "Tensor[64, 2] float32"),
        id="metric-process-raises",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), YAML_PROBE_CASES)
def test_probe_yaml(tmp_path: Path, repo_root: Path, overrides: list[str], expected: tuple[str, ...]) -> None:
    runner, hook = recording_runner(seed_config(repo_root, tmp_path, *overrides))
    path, stage, *fragments = expected
    assert find(runner.check(), path, *fragments).stage == stage
    with pytest.raises(ContractError) as info:
        runner.train()
    find(list(info.value.problems), path, *fragments)
    assert_nothing_trained(tmp_path, hook)


def test_probe_reports_every_mismatch_in_one_error(tmp_path: Path) -> None:
    cfg = toy_config(
        tmp_path,
        train_dataloader=toy_loader(lazy(FloatLabelDataset, size=64)),
        val_evaluator=Evaluator(metrics=[lazy(TextMetric)]),
        param_scheduler=[MultiStepLR(by_epoch=False, milestones=[100])],
    )
    runner, hook = recording_runner(cfg)
    with pytest.raises(ContractError) as info:
        runner.train()
    paths = {p.path for p in info.value.problems}
    assert paths == {"model", "val_evaluator.metrics[0]", "param_scheduler[0].milestones"}
    text = str(info.value)
    assert "[probe: train]" in text
    assert "[probe: val]" in text
    assert "[cross-field]" in text
    assert_nothing_trained(tmp_path, hook)


def test_good_config_reports_batches_and_metric_names(tmp_path: Path, repo_root: Path) -> None:
    runner = Runner(toy_config(tmp_path / "toy"))
    assert runner.check() == []
    assert runner.metric_names == {"val": ["accuracy"]}
    assert runner.batch_structure == {
        "train": "list(Tensor[16, 4] float32, Tensor[16] int64)",
        "val": "list(Tensor[32, 4] float32, Tensor[32] int64)",
    }
    assert runner.val_loop is not None
    assert runner.val_loop.evaluator.metrics[0].results == []  # the probe used a copy of the metric

    seed = Runner(seed_config(repo_root, tmp_path / "seed"))
    assert seed.check() == []
    assert seed.metric_names["val"] == ["accuracy"]
    assert seed.batch_structure["train"] == "list(Tensor[64, 2] float32, Tensor[64] int64)"


# ----------------------------------------------------------------------------------------------
# 4. The probe has no side effects
# ----------------------------------------------------------------------------------------------
def _configured(work_dir: Path, model: Any) -> Runner:
    """Config style: ``DefaultSampler`` shuffling with its own seeded generator."""
    return Runner(toy_config(work_dir, seed=7, model=model))


def _manual(work_dir: Path, model_class: type[ToyModel]) -> Runner:
    """MMEngine's manual style: a built model and torch DataLoaders; training shuffles with RandomSampler
    (which draws its seed from torch's global RNG) and augments with ``random`` and numpy."""
    torch.manual_seed(123)
    loader = TorchDataLoader(AugmentedDataset(size=64), batch_size=16, shuffle=True)
    assert isinstance(loader.sampler, RandomSampler)
    return Runner(
        model=model_class(dim=4, hidden=8),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=TorchDataLoader(ToyDataset(size=32, seed=1), batch_size=32),
        train_cfg=dict(by_epoch=True, max_epochs=2, val_begin=1),
        val_cfg=dict(),
        val_evaluator=dict(type=ToyMetric),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
        randomness=dict(seed=7),
    )


def default_sampler_runner(work_dir: Path) -> Runner:
    return _configured(work_dir, lazy(ToyModel, dim=4, hidden=8))


def batchnorm_dropout_runner(work_dir: Path) -> Runner:
    return _configured(work_dir, lazy(BatchNormDropoutModel, dim=4, hidden=8))


def random_sampler_runner(work_dir: Path) -> Runner:
    return _manual(work_dir, ToyModel)


def random_sampler_batchnorm_dropout_runner(work_dir: Path) -> Runner:
    return _manual(work_dir, BatchNormDropoutModel)


@pytest.mark.parametrize(
    "make",
    [default_sampler_runner, random_sampler_runner, batchnorm_dropout_runner, random_sampler_batchnorm_dropout_runner],
)
def test_probe_leaves_training_bit_identical(tmp_path: Path, make: Callable[[Path], Runner]) -> None:
    probed = make(tmp_path / "probed")
    probed.train()  # check=True: the probe runs first
    unprobed = make(tmp_path / "unprobed")
    unprobed.train(check=False)
    assert probed.batch_structure and not unprobed.batch_structure
    assert_bit_identical(state(probed.model), state(unprobed.model))
    assert probed.last_metrics == unprobed.last_metrics


RngStates = tuple[object, tuple[list[int], int, int, float], Tensor]


def _rng_states() -> RngStates:
    """Python's, numpy's global and torch's RNG states, comparable with ``==`` (torch's with torch.equal)."""
    numpy = np.random.get_state(legacy=False)
    numpy_state = (numpy["state"]["key"].tolist(), int(numpy["state"]["pos"]), numpy["has_gauss"], numpy["gauss"])
    return random.getstate(), numpy_state, torch.get_rng_state()


def _assert_same_rng(before: RngStates) -> None:
    python, numpy, torch_state = _rng_states()
    assert python == before[0], "python's random state changed"
    assert numpy == before[1], "numpy's global RNG state changed"
    assert torch.equal(torch_state, before[2]), "torch's RNG state changed"


def test_check_leaves_rng_parameters_buffers_and_modes_unchanged(tmp_path: Path) -> None:
    runner = random_sampler_batchnorm_dropout_runner(tmp_path)
    model = runner.model
    model.train()
    model.get_submodule("net.1").eval()  # a frozen BatchNorm inside a training model: the mixed mode must survive
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    rng_before = _rng_states()
    weights_before = state(model)
    modes_before = {name: m.training for name, m in model.named_modules()}

    assert runner.check() == []

    _assert_same_rng(rng_before)
    assert_bit_identical(state(model), weights_before)  # parameters and BatchNorm running stats
    assert {name: m.training for name, m in model.named_modules()} == modes_before
    assert all(p.grad is None for p in model.parameters())
    assert runner.batch_structure["train"] == "list(Tensor[16, 4] float32, Tensor[16] int64)"


def test_what_check_restores_does_change_without_it(tmp_path: Path) -> None:
    """Guard for the test above: one batch through the same parts, outside the probe, changes every one."""
    runner = random_sampler_batchnorm_dropout_runner(tmp_path)
    loader = runner.train_dataloader
    assert loader is not None
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    python, numpy, torch_state = _rng_states()
    weights = state(runner.model)
    runner.model.train()
    data, labels = next(iter(loader))
    runner.model(data, labels, mode="loss")
    after = _rng_states()
    assert after[0] != python
    assert after[1] != numpy
    assert not torch.equal(after[2], torch_state)
    assert not torch.equal(runner.model.state_dict()["net.1.running_mean"], weights["net.1.running_mean"])


# ----------------------------------------------------------------------------------------------
# 5. load_from
# ----------------------------------------------------------------------------------------------
def save_weights(path: Path, model: nn.Module, prefix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {prefix + k: v for k, v in model.state_dict().items()}}, path)
    return path


def real_checkpoint(tmp_path: Path) -> Path:
    """A checkpoint as typedrunner writes it (meta, state_dict, optimizer, schedulers)."""
    return Runner(toy_config(tmp_path / "source")).save_checkpoint("epoch_1.pth")


@pytest.mark.parametrize(
    ("source", "messages"),
    [
        pytest.param(
            (4, 0),
            [
                "missing in the checkpoint: net.0.weight",
                "missing in the checkpoint: net.2.bias",
                "not in the model: net.weight",
            ],
            id="other-architecture",
        ),
        pytest.param(
            (3, 8),
            ["shape mismatch for net.0.weight: checkpoint [8, 3], model [8, 4]"],
            id="other-input-width",
        ),
    ],
)
def test_load_from_strict_mismatch_lists_every_key(
    tmp_path: Path, source: tuple[int, int], messages: list[str]
) -> None:
    checkpoint = save_weights(tmp_path / "pretrained.pth", ToyModel(dim=source[0], hidden=source[1]))
    work_dir = tmp_path / "run"
    problems = config_problems(lambda: Runner(toy_config(work_dir, load_from=str(checkpoint))))
    for message in messages:
        find(problems, "load_from", message)
    assert not work_dir.exists()


def test_load_from_strict_mismatch_yaml(tmp_path: Path, repo_root: Path) -> None:
    checkpoint = save_weights(tmp_path / "mlp4.pth", MyAwesomeModel(layers=4))
    with pytest.raises(ConfigError) as info:
        Runner(seed_config(repo_root, tmp_path / "run", f"load_from='{checkpoint}'"))
    assert str(info.value).startswith(f"load_from {str(checkpoint)!r} does not fit the model")
    find(list(info.value.problems), "load_from", "not in the model: layers.1.weight")
    find(list(info.value.problems), "load_from", "not in the model: layers.2.bias")
    assert not (tmp_path / "run").exists()


def test_load_from_partial_loads_what_matches_and_trains(tmp_path: Path) -> None:
    source = ToyModel(dim=3, hidden=8)  # same hidden and output layers, another input width
    checkpoint = save_weights(tmp_path / "pretrained.pth", source)
    runner, hook = recording_runner(toy_config(tmp_path / "run", load_from={"path": str(checkpoint), "strict": False}))
    loaded = state(runner.model)
    for key in ("net.0.bias", "net.2.weight", "net.2.bias"):
        assert torch.equal(loaded[key], source.state_dict()[key]), key
    assert loaded["net.0.weight"].shape == (8, 4)  # kept its own initialisation
    runner.train()
    assert hook.names().count("before_train_iter") == 8
    assert (tmp_path / "run" / "epoch_2.pth").is_file()


def test_load_from_partial_yaml(tmp_path: Path, repo_root: Path) -> None:
    source = MyAwesomeModel(layers=4)
    checkpoint = save_weights(tmp_path / "mlp4.pth", source)
    cfg = seed_config(repo_root, tmp_path / "run", f"load_from={{path: '{checkpoint}', strict: false}}")
    runner = Runner(cfg)
    assert torch.equal(state(runner.model)["classifier.weight"], source.classifier.weight)
    assert runner.check() == []


def test_load_from_partial_with_nothing_matching_is_an_error(tmp_path: Path) -> None:
    checkpoint = tmp_path / "encoder.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(3, 3)}}, checkpoint)
    work_dir = tmp_path / "run"
    cfg = toy_config(work_dir, load_from={"path": str(checkpoint), "strict": False})
    find(config_problems(lambda: Runner(cfg)), "load_from", "nothing would load")
    assert not work_dir.exists()


def test_load_from_revise_keys(tmp_path: Path) -> None:
    source = ToyModel(dim=4, hidden=8)
    ddp = save_weights(tmp_path / "ddp.pth", source, prefix="module.")
    runner = Runner(toy_config(tmp_path / "a", load_from=str(ddp)))  # DDP's 'module.' stripped by default
    assert_bit_identical(state(runner.model), source.state_dict())

    backbone = save_weights(tmp_path / "backbone.pth", source, prefix="backbone.")
    problems = config_problems(lambda: Runner(toy_config(tmp_path / "b", load_from=str(backbone))))
    find(problems, "load_from", "not in the model: backbone.net.0.weight")
    renamed = {"path": str(backbone), "revise_keys": [(r"^backbone\.", "")]}
    runner = Runner(toy_config(tmp_path / "c", load_from=renamed))
    assert_bit_identical(state(runner.model), source.state_dict())


@pytest.mark.parametrize("damage", ["truncated", "random-bytes"])
def test_load_from_unreadable_file(tmp_path: Path, repo_root: Path, damage: str) -> None:
    path = tmp_path / "broken.pth"
    if damage == "truncated":
        data = real_checkpoint(tmp_path).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    work_dir = tmp_path / "run"
    problem = find(
        config_problems(lambda: Runner(toy_config(work_dir, load_from=str(path)))), "load_from", "broken.pth"
    )
    assert "cannot load checkpoint" in problem.message
    problems = config_problems(lambda: Runner(seed_config(repo_root, work_dir, f"load_from='{path}'")))
    find(problems, "load_from", "broken.pth", "cannot load checkpoint")
    assert not work_dir.exists()


# ----------------------------------------------------------------------------------------------
# 6. The command line: exit 2, a report naming paths and sources, nothing written but the report
# ----------------------------------------------------------------------------------------------
CLI_FAST = ["train_dataloader.num_workers=0", "val_dataloader.num_workers=0"]


def cli_env(*extra_paths: Path) -> dict[str, str]:
    """conftest's ``subprocess_env`` (one thread, the repo importable, no HYDRA_FULL_ERROR), plus
    ``extra_paths``; a function, so that the module-scoped fixtures below can use it too."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    paths = [str(p) for p in extra_paths] + [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def line_of(text: str, path: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(f"{path}:")]
    assert lines, f"no line for {path} in:\n{text}"
    return lines[0]


def assert_only_error_report(run_dir: Path) -> None:
    assert sorted(p.name for p in run_dir.iterdir()) == [".hydra", "error_report.txt"]


class CliRun:
    def __init__(self, run_dir: Path, result: subprocess.CompletedProcess[str]) -> None:
        self.run_dir = run_dir
        self.result = result


@pytest.fixture(scope="module")
def cross_field_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """Two cross-field mistakes made on the command line of the seed experiment."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    args = [
        "+experiment=mlp",
        "param_scheduler.milestones=[40]",
        "default_hooks.checkpoint.interval=20",
        "+default_hooks.checkpoint.save_last=false",
        *CLI_FAST,
        f"hydra.run.dir={run_dir}",
    ]
    return CliRun(run_dir, run_cli(args, cli_env()))


def test_cli_cross_field_errors_exit_2(cross_field_run: CliRun) -> None:
    result, run_dir = cross_field_run.result, cross_field_run.run_dir
    assert result.returncode == 2, explain(result)
    assert "Traceback" not in result.stderr
    milestones = line_of(result.stderr, "param_scheduler[0].milestones")
    assert "[40]" in milestones and "max_epochs=10" in milestones
    interval = line_of(result.stderr, "default_hooks.checkpoint.interval")
    assert "[from command-line override 'default_hooks.checkpoint.interval=20']" in interval
    assert_only_error_report(run_dir)
    report = (run_dir / "error_report.txt").read_text()
    assert "param_scheduler[0].milestones" in report
    assert "default_hooks.checkpoint.interval" in report


def test_cli_names_the_override_behind_a_scheduler_error(cross_field_run: CliRun) -> None:
    milestones = line_of(cross_field_run.result.stderr, "param_scheduler[0].milestones")
    assert "[from command-line override 'param_scheduler.milestones=[40]']" in milestones


BROKEN_MODULE = '''
"""A user model whose first layer expects 3 features; the seed's rings have 2."""
from torch import nn

from examples.seed_mlp import MyAwesomeModel


class BrokenModel(MyAwesomeModel):
    def __init__(self, layers: int = 4, activation: str = "relu") -> None:
        super().__init__(layers=layers, activation=activation)
        self.layer0 = nn.Linear(3, 64)
'''


def test_cli_probe_error_exits_2(tmp_path: Path) -> None:
    (tmp_path / "brokenmod.py").write_text(BROKEN_MODULE)
    run_dir = tmp_path / "run"
    args = [
        "+experiment=mlp",
        "custom_imports=[examples.seed_mlp,brokenmod]",
        "model.type=brokenmod.BrokenModel",
        *CLI_FAST,
        f"hydra.run.dir={run_dir}",
    ]
    result = run_cli(args, cli_env(tmp_path))
    assert result.returncode == 2, explain(result)
    assert "Traceback" not in result.stderr
    model = line_of(result.stderr, "model")
    for fragment in (LOSS, "BrokenModel.forward", "Tensor[64, 2] float32", "first layer"):
        assert fragment in model, model
    assert "[from command-line override 'model.type=brokenmod.BrokenModel']" in model
    assert "[probe: train]" in result.stderr and "[probe: val]" in result.stderr
    assert_only_error_report(run_dir)
    assert "BrokenModel.forward" in (run_dir / "error_report.txt").read_text()


def test_cli_check_on_the_seed_prints_batches_and_metrics(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli(["+experiment=mlp", "check=true", *CLI_FAST, f"hydra.run.dir={run_dir}"], cli_env())
    assert result.returncode == 0, explain(result)
    assert "train batch: list(Tensor[64, 2] float32, Tensor[64] int64)" in result.stdout
    assert "val batch: list(Tensor[1000, 2] float32, Tensor[1000] int64)" in result.stdout
    assert "val metrics: accuracy" in result.stdout
    assert "no problems found" in result.stdout
    assert list(tmp_path.rglob("*.pth")) == []
    assert list(tmp_path.rglob("scalars.jsonl")) == []
    assert not (run_dir / "error_report.txt").exists()


ITERATION_STEPPED = ["+experiment=mlp", "param_scheduler.by_epoch=false", "check=true", *CLI_FAST]
"""The seed's milestones [4, 8] read as iterations: all inside the first of 157-iteration epochs."""


@pytest.fixture(scope="module")
def warning_check_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    return CliRun(run_dir, run_cli([*ITERATION_STEPPED, f"hydra.run.dir={run_dir}"], cli_env()))


def test_cli_check_with_a_warning_exits_0(warning_check_run: CliRun) -> None:
    result, run_dir = warning_check_run.result, warning_check_run.run_dir
    assert result.returncode == 0, explain(result)
    assert "val metrics: accuracy" in result.stdout
    assert "no problems found" not in result.stdout
    assert list(run_dir.rglob("*.pth")) == []
    assert list(run_dir.rglob("scalars.jsonl")) == []


def test_cli_check_prints_its_warnings(warning_check_run: CliRun) -> None:
    output = warning_check_run.result.stdout + warning_check_run.result.stderr
    assert "param_scheduler[0].milestones" in output
    assert "first epoch" in output


def test_cli_strict_makes_the_warning_fatal(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli([*ITERATION_STEPPED, "strict=true", f"hydra.run.dir={run_dir}"], cli_env())
    assert result.returncode == 2, explain(result)
    assert "Traceback" not in result.stderr
    assert "1 warning" in result.stderr
    line = line_of(result.stderr, "param_scheduler[0].milestones")
    assert "first epoch (157 iterations)" in line and "by_epoch: true" in line
    assert_only_error_report(run_dir)
