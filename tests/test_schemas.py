"""Every schema's defaults and rejections, each rejection with the dotted config path it reports."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import BaseModel as PydanticModel
from pydantic_core import PydanticUndefined
from torch import nn

import examples.seed_mlp  # registers MyAwesomeModel, MyDataset, Accuracy
from typedrunner.config import (
    SGD,
    Adam,
    AdamW,
    AutoScaleLR,
    CheckpointHook,
    ClipGrad,
    CosineAnnealingLR,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    DistCfg,
    DistSamplerSeedHook,
    EnvCfg,
    ExponentialLR,
    IterTimerHook,
    LinearLR,
    LoggerHook,
    LogProcessor,
    MpCfg,
    MultiStepLR,
    OptimWrapper,
    ParamSchedulerHook,
    Randomness,
    RunnerConfig,
    RuntimeInfoHook,
    StepLR,
    TrainLoop,
    TypedRunnerWarning,
    ValLoop,
)
from typedrunner.config import train as loop_schemas  # its TestLoop would be collected by pytest
from typedrunner.config.optim import OptimWrapper as OptimWrapperConfig
from typedrunner.config.optim import build_optimizer
from typedrunner.config.scheduler import SchedulerConfig, build_scheduler, window_of
from typedrunner.errors import ConfigError, Problem
from typedrunner.lazy import Lazy
from typedrunner.testing import ToyMetric

MODEL: dict[str, Any] = {"type": "MyAwesomeModel", "layers": 2, "activation": "relu"}
DATASET: dict[str, Any] = {"type": "MyDataset", "is_train": True, "size": 8}

# MMEngine's Runner arguments (DESIGN.md, "Config keys"): a ported config renames nothing.
MMENGINE_RUNNER_ARGS = {
    "model",
    "work_dir",
    "train_dataloader",
    "val_dataloader",
    "test_dataloader",
    "train_cfg",
    "val_cfg",
    "test_cfg",
    "optim_wrapper",
    "param_scheduler",
    "val_evaluator",
    "test_evaluator",
    "default_hooks",
    "custom_hooks",
    "data_preprocessor",
    "load_from",
    "resume",
    "launcher",
    "env_cfg",
    "log_processor",
    "log_level",
    "visualizer",
    "randomness",
    "experiment_name",
    "compile",
    "auto_scale_lr",
    "custom_imports",
}


def problems_of(data: Mapping[str, Any]) -> tuple[Problem, ...]:
    """The problems ``RunnerConfig.from_dict`` reports for ``data`` (which must be invalid)."""
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(data)
    assert info.value.problems, "a ConfigError must hold at least one problem"
    return info.value.problems


def only_problem(data: Mapping[str, Any]) -> Problem:
    problems = problems_of(data)
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


def with_model(**fields: Any) -> dict[str, Any]:
    return {"model": dict(MODEL), **fields}


def params() -> list[nn.Parameter]:
    return list(nn.Linear(3, 2).parameters())


# --------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------
def test_runner_config_has_exactly_mmengine_runner_arguments() -> None:
    assert set(RunnerConfig.model_fields) == MMENGINE_RUNNER_ARGS


def test_runner_config_defaults() -> None:
    cfg = RunnerConfig.from_dict({"model": dict(MODEL)})
    assert cfg.work_dir is None
    assert cfg.experiment_name == "default"
    assert str(cfg.resolved_work_dir).replace("\\", "/") == "work_dirs/default"
    for name in (
        "train_dataloader",
        "val_dataloader",
        "test_dataloader",
        "train_cfg",
        "val_cfg",
        "test_cfg",
        "optim_wrapper",
        "val_evaluator",
        "test_evaluator",
        "data_preprocessor",
        "load_from",
        "visualizer",
    ):
        assert getattr(cfg, name) is None, name
    assert cfg.param_scheduler == []
    assert cfg.custom_hooks == []
    assert cfg.custom_imports == []
    assert cfg.resume is False
    assert cfg.compile is False
    assert cfg.launcher == "none"
    assert cfg.log_level == "INFO"
    assert cfg.default_hooks == DefaultHooks()
    assert cfg.env_cfg == EnvCfg()
    assert cfg.log_processor == LogProcessor()
    assert cfg.randomness == Randomness()
    assert cfg.auto_scale_lr == AutoScaleLR()


def test_resolved_work_dir_follows_experiment_name_and_work_dir(tmp_path: Path) -> None:
    named = RunnerConfig.from_dict({"model": dict(MODEL), "experiment_name": "abc"})
    assert str(named.resolved_work_dir).replace("\\", "/") == "work_dirs/abc"
    given = RunnerConfig.from_dict({"model": dict(MODEL), "work_dir": str(tmp_path / "run")})
    assert given.resolved_work_dir == tmp_path / "run"


DEFAULTS: list[tuple[Callable[[], PydanticModel], dict[str, Any]]] = [
    (
        lambda: TrainLoop(max_epochs=3),
        {
            "type": "EpochBasedTrainLoop",
            "by_epoch": True,
            "max_epochs": 3,
            "max_iters": None,
            "val_begin": 1,
            "val_interval": 1,
            "dynamic_intervals": None,
        },
    ),
    (lambda: ValLoop(), {"type": "ValLoop", "fp16": False}),
    (lambda: loop_schemas.TestLoop(), {"type": "TestLoop", "fp16": False}),
    (lambda: DefaultSampler(), {"type": "DefaultSampler", "shuffle": True, "seed": None, "round_up": True}),
    (lambda: MpCfg(), {"mp_start_method": None, "opencv_num_threads": None}),
    (lambda: DistCfg(), {"backend": "nccl", "timeout": 1800}),
    (
        lambda: EnvCfg(),
        {
            "cudnn_benchmark": False,
            "mp_cfg": {"mp_start_method": None, "opencv_num_threads": None},
            "dist_cfg": {"backend": "nccl", "timeout": 1800},
        },
    ),
    (lambda: Randomness(), {"seed": None, "deterministic": False, "diff_rank_seed": False}),
    (lambda: AutoScaleLR(), {"enable": False, "base_batch_size": None}),
    (lambda: LogProcessor(), {"window_size": 10, "by_epoch": True, "num_digits": 4}),
    (lambda: ClipGrad(max_norm=1.0), {"type": "norm", "max_norm": 1.0, "norm_type": 2.0, "clip_value": None}),
    (
        lambda: CheckpointHook(),
        {
            "type": "CheckpointHook",
            "interval": 1,
            "by_epoch": True,
            "save_begin": 0,
            "save_last": True,
            "max_keep_ckpts": -1,
            "save_optimizer": True,
            "save_param_scheduler": True,
            "save_best": None,
            "rule": None,
            "out_dir": None,
            "filename_tmpl": None,
            "published_keys": None,
        },
    ),
    (lambda: LoggerHook(), {"type": "LoggerHook", "interval": 10, "ignore_last": True}),
    (lambda: ParamSchedulerHook(), {"type": "ParamSchedulerHook"}),
    (lambda: IterTimerHook(), {"type": "IterTimerHook"}),
    (lambda: RuntimeInfoHook(), {"type": "RuntimeInfoHook"}),
    (lambda: DistSamplerSeedHook(), {"type": "DistSamplerSeedHook"}),
    (
        lambda: Adam(),
        {
            "type": "Adam",
            "lr": 1e-3,
            "weight_decay": 0.0,
            "maximize": False,
            "foreach": None,
            "betas": (0.9, 0.999),
            "eps": 1e-8,
            "amsgrad": False,
            "fused": None,
        },
    ),
    (
        lambda: AdamW(),
        {
            "type": "AdamW",
            "lr": 1e-3,
            "weight_decay": 1e-2,
            "maximize": False,
            "foreach": None,
            "betas": (0.9, 0.999),
            "eps": 1e-8,
            "amsgrad": False,
            "fused": None,
        },
    ),
    (
        lambda: SGD(),
        {
            "type": "SGD",
            "lr": 1e-3,
            "weight_decay": 0.0,
            "maximize": False,
            "foreach": None,
            "momentum": 0.0,
            "dampening": 0.0,
            "nesterov": False,
            "fused": None,
        },
    ),
    (
        lambda: MultiStepLR(milestones=[2]),
        {
            "type": "MultiStepLR",
            "by_epoch": True,
            "begin": 0,
            "end": None,
            "convert_to_iter_based": False,
            "milestones": [2],
            "gamma": 0.1,
        },
    ),
    (
        lambda: StepLR(step_size=3),
        {
            "type": "StepLR",
            "by_epoch": True,
            "begin": 0,
            "end": None,
            "convert_to_iter_based": False,
            "step_size": 3,
            "gamma": 0.1,
        },
    ),
    (
        lambda: ExponentialLR(gamma=0.5),
        {
            "type": "ExponentialLR",
            "by_epoch": True,
            "begin": 0,
            "end": None,
            "convert_to_iter_based": False,
            "gamma": 0.5,
        },
    ),
    (
        lambda: CosineAnnealingLR(T_max=7),
        {
            "type": "CosineAnnealingLR",
            "by_epoch": True,
            "begin": 0,
            "end": None,
            "convert_to_iter_based": False,
            "T_max": 7,
            "eta_min": 0.0,
        },
    ),
    (
        lambda: LinearLR(),
        {
            "type": "LinearLR",
            "by_epoch": True,
            "begin": 0,
            "end": None,
            "convert_to_iter_based": False,
            "start_factor": 1.0 / 3,
            "end_factor": 1.0,
            "total_iters": None,
        },
    ),
]


@pytest.mark.parametrize(("make", "expected"), DEFAULTS, ids=[type(make()).__name__ for make, _ in DEFAULTS])
def test_schema_defaults(make: Callable[[], PydanticModel], expected: dict[str, Any]) -> None:
    assert make().model_dump() == expected


def test_default_hooks_has_every_standard_hook() -> None:
    hooks = DefaultHooks()
    assert hooks.runtime_info == RuntimeInfoHook()
    assert hooks.timer == IterTimerHook()
    assert hooks.sampler_seed == DistSamplerSeedHook()
    assert hooks.logger == LoggerHook()
    assert hooks.param_scheduler == ParamSchedulerHook()
    assert hooks.checkpoint == CheckpointHook()


def test_default_hooks_null_removes_one_hook_and_keeps_the_others() -> None:
    cfg = RunnerConfig.from_dict(with_model(default_hooks={"logger": None}))
    assert cfg.default_hooks.logger is None
    assert cfg.default_hooks.checkpoint == CheckpointHook()
    assert cfg.default_hooks.timer == IterTimerHook()


def test_dataloader_defaults() -> None:
    loader = DataLoader(dataset=dict(DATASET))
    assert isinstance(loader.dataset, Lazy)
    assert loader.dataset.target is examples.seed_mlp.MyDataset
    assert loader.dataset.kwargs == {"is_train": True, "size": 8}
    assert loader.batch_size == 1
    assert loader.sampler is None
    assert loader.shuffle is None
    assert loader.collate_fn.target is torch.utils.data.default_collate
    assert loader.collate_fn.kwargs == {}
    assert loader.num_workers == 0
    assert loader.pin_memory is False
    assert loader.persistent_workers is False
    assert loader.drop_last is False
    assert loader.prefetch_factor is None
    assert loader.timeout == 0.0
    # No sampler given: a DefaultSampler following ``shuffle`` (torch's default: no shuffling).
    assert loader.sampler_config() == DefaultSampler(shuffle=False)
    assert DataLoader(dataset=dict(DATASET), shuffle=True).sampler_config() == DefaultSampler(shuffle=True)


def test_optim_wrapper_defaults() -> None:
    wrapper = OptimWrapper(optimizer=Adam())
    assert wrapper.type == "OptimWrapper"
    assert wrapper.clip_grad is None
    assert wrapper.accumulative_counts == 1
    assert wrapper.paramwise_cfg is None


def test_evaluator_accepts_one_metric_a_list_or_an_evaluator_mapping() -> None:
    one = RunnerConfig.from_dict(with_model(val_evaluator={"type": "Accuracy"})).val_evaluator
    many = RunnerConfig.from_dict(with_model(val_evaluator=[{"type": "Accuracy"}])).val_evaluator
    full = RunnerConfig.from_dict(
        with_model(val_evaluator={"type": "Evaluator", "metrics": {"type": "Accuracy"}})
    ).val_evaluator
    assert one is not None
    assert one == many == full
    assert len(one.metrics) == 1
    assert one.metrics[0].target is examples.seed_mlp.Accuracy
    two = RunnerConfig.from_dict(
        with_model(val_evaluator=[{"type": "Accuracy"}, {"type": "typedrunner.testing.ToyMetric", "prefix": "toy"}])
    ).val_evaluator
    assert two is not None
    assert [m.target for m in two.metrics] == [examples.seed_mlp.Accuracy, ToyMetric]
    assert two.metrics[1].kwargs == {"prefix": "toy"}


# --------------------------------------------------------------------------------------------
# Rejections, each with its dotted path
# --------------------------------------------------------------------------------------------
def test_model_is_required() -> None:
    problem = only_problem({})
    assert problem.path == "model"
    assert "required" in problem.message


def test_max_epochs_zero_is_rejected_at_its_path() -> None:
    problem = only_problem(with_model(train_cfg={"max_epochs": 0}))
    assert problem.path == "train_cfg.max_epochs"
    assert problem.value == 0
    assert "greater than or equal to 1" in problem.message


def test_unknown_key_suggests_the_known_one() -> None:
    problems = problems_of(with_model(train_cfg={"max_epoch": 3}))
    by_path = {p.path: p for p in problems}
    assert "did you mean max_epochs" in by_path["train_cfg.max_epoch"].message


@pytest.mark.parametrize(
    ("data", "path", "suggestion"),
    [
        ({"modle": dict(MODEL)}, "modle", "model"),
        (with_model(optim_wraper={"optimizer": {"type": "Adam"}}), "optim_wraper", "optim_wrapper"),
        (with_model(default_hooks={"checkpont": {"interval": 2}}), "default_hooks.checkpont", "checkpoint"),
        (
            with_model(train_dataloader={"dataset": dict(DATASET), "batchsize": 4}),
            "train_dataloader.batchsize",
            "batch_size",
        ),
        (
            with_model(env_cfg={"mp_cfg": {"mp_start_methd": "fork"}}),
            "env_cfg.mp_cfg.mp_start_methd",
            "mp_start_method",
        ),
        (
            with_model(optim_wrapper={"optimizer": {"type": "Adam", "betaz": [0.9, 0.99]}}),
            "optim_wrapper.optimizer.betaz",
            "betas",
        ),
        (
            with_model(param_scheduler=[{"type": "MultiStepLR", "milestone": [2]}]),
            "param_scheduler[0].milestone",
            "milestones",
        ),
    ],
)
def test_unknown_keys_everywhere_are_reported_with_did_you_mean(
    data: dict[str, Any], path: str, suggestion: str
) -> None:
    problems = problems_of(data)
    assert path in [p.path for p in problems], [p.render() for p in problems]
    problem = next(p for p in problems if p.path == path)
    assert problem.message.startswith("unknown key")
    assert f"did you mean {suggestion}" in problem.message


def test_unknown_key_without_a_close_match_lists_the_valid_keys() -> None:
    problem = only_problem(with_model(randomness={"zzz": 1}))
    assert problem.path == "randomness.zzz"
    assert "did you mean" not in problem.message
    for key in ("seed", "deterministic", "diff_rank_seed"):
        assert key in problem.message


def test_unknown_optimizer_type_suggests_adam() -> None:
    problem = only_problem(with_model(optim_wrapper={"optimizer": {"type": "Adamm", "lr": 0.1}}))
    assert problem.path == "optim_wrapper.optimizer.type"
    assert problem.value == "Adamm"
    assert "did you mean Adam?" in problem.message


def test_unknown_scheduler_metric_dataset_and_collate_types_suggest_names() -> None:
    problems = problems_of(
        with_model(
            param_scheduler=[{"type": "StepLRR", "step_size": 2}],
            val_evaluator=[{"type": "Acuracy"}],
            train_dataloader={"dataset": {"type": "MyDatset", "is_train": True, "size": 4}},
            val_dataloader={"dataset": dict(DATASET), "collate_fn": {"type": "default_colate"}},
        )
    )
    messages = {p.path: p.message for p in problems}
    assert "did you mean StepLR?" in messages["param_scheduler[0].type"]
    assert "did you mean Accuracy?" in messages["val_evaluator.metrics[0].type"]
    assert "did you mean MyDataset?" in messages["train_dataloader.dataset.type"]
    assert "did you mean default_collate?" in messages["val_dataloader.collate_fn.type"]


def test_component_without_type_is_rejected() -> None:
    problem = only_problem({"model": {"layers": 2}})
    assert problem.path == "model.type"
    assert "needs a 'type' key" in problem.message


def test_literal_argument_of_a_user_class_rejects_a_bad_value() -> None:
    problem = only_problem({"model": {"type": "MyAwesomeModel", "layers": 2, "activation": "gelu"}})
    assert problem.path == "model.activation"
    assert problem.value == "gelu"
    for allowed in ("relu", "silu", "none"):
        assert allowed in problem.message


def test_annotated_argument_of_a_user_class_rejects_a_wrong_type() -> None:
    problem = only_problem({"model": {"type": "MyAwesomeModel", "layers": "two"}})
    assert problem.path == "model.layers"
    assert problem.value == "two"


def test_unknown_constructor_argument_suggests_the_parameter() -> None:
    problem = only_problem({"model": {"type": "MyAwesomeModel", "layer": 2}})
    assert problem.path == "model.layer"
    assert "did you mean layers" in problem.message


def test_missing_constructor_argument_is_reported() -> None:
    problem = only_problem(with_model(train_dataloader={"dataset": {"type": "MyDataset", "is_train": True}}))
    assert problem.path == "train_dataloader.dataset.size"
    assert "required" in problem.message


def test_several_problems_are_all_reported_in_one_error() -> None:
    data = {
        "model": {"type": "MyAwesomeModel", "activation": "gelu"},
        "train_cfg": {"max_epochs": 0},
        "optim_wrapper": {"optimizer": {"type": "Adamm"}},
        "log_level": "LOUD",
        "randomness": {"seed": -1},
    }
    with pytest.raises(ConfigError) as info:
        RunnerConfig.from_dict(data)
    paths = {p.path for p in info.value.problems}
    expected = {
        "model.activation",
        "train_cfg.max_epochs",
        "optim_wrapper.optimizer.type",
        "log_level",
        "randomness.seed",
    }
    assert expected <= paths
    text = str(info.value)
    assert f"{len(info.value.problems)} errors" in text
    for path in expected:
        assert path in text


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (with_model(train_cfg={"max_epochs": 2, "val_begin": 0}), "train_cfg.val_begin"),
        (with_model(train_cfg={"max_epochs": 2, "val_interval": 0}), "train_cfg.val_interval"),
        (with_model(train_dataloader={"dataset": dict(DATASET), "batch_size": 0}), "train_dataloader.batch_size"),
        (with_model(train_dataloader={"dataset": dict(DATASET), "num_workers": -1}), "train_dataloader.num_workers"),
        (with_model(train_dataloader={"dataset": dict(DATASET), "timeout": -1}), "train_dataloader.timeout"),
        (
            with_model(train_dataloader={"dataset": dict(DATASET), "sampler": {"type": "DefaultSampler", "seed": -1}}),
            "train_dataloader.sampler.seed",
        ),
        (with_model(train_dataloader={"batch_size": 2}), "train_dataloader.dataset"),
        (with_model(env_cfg={"mp_cfg": {"mp_start_method": "thread"}}), "env_cfg.mp_cfg.mp_start_method"),
        (with_model(env_cfg={"dist_cfg": {"backend": "tcp"}}), "env_cfg.dist_cfg.backend"),
        (with_model(env_cfg={"dist_cfg": {"timeout": 0}}), "env_cfg.dist_cfg.timeout"),
        (with_model(randomness={"seed": -1}), "randomness.seed"),
        (with_model(randomness={"seed": 2**32}), "randomness.seed"),
        (with_model(log_level="VERBOSE"), "log_level"),
        (with_model(log_processor={"window_size": 0}), "log_processor.window_size"),
        (with_model(log_processor={"num_digits": 13}), "log_processor.num_digits"),
        (with_model(default_hooks={"logger": {"interval": 0}}), "default_hooks.logger.interval"),
        (with_model(default_hooks={"checkpoint": {"interval": 0}}), "default_hooks.checkpoint.interval"),
        (with_model(default_hooks={"checkpoint": {"max_keep_ckpts": -2}}), "default_hooks.checkpoint.max_keep_ckpts"),
        (with_model(optim_wrapper={"optimizer": {"type": "Adam", "lr": 0}}), "optim_wrapper.optimizer.lr"),
        (with_model(optim_wrapper={"optimizer": {"type": "Adam", "eps": 0}}), "optim_wrapper.optimizer.eps"),
        (
            with_model(optim_wrapper={"optimizer": {"type": "AdamW", "weight_decay": -0.1}}),
            "optim_wrapper.optimizer.weight_decay",
        ),
        (with_model(optim_wrapper={"optimizer": {"type": "SGD", "momentum": -1}}), "optim_wrapper.optimizer.momentum"),
        (with_model(optim_wrapper={"optimizer": {"lr": 0.1}}), "optim_wrapper.optimizer.type"),
        (with_model(optim_wrapper={"optimizer": {"type": "RMSprop", "lr": "fast"}}), "optim_wrapper.optimizer.lr"),
        (
            with_model(optim_wrapper={"optimizer": {"type": "Adam"}, "clip_grad": {"max_norm": 0}}),
            "optim_wrapper.clip_grad.max_norm",
        ),
        (with_model(optim_wrapper={"optimizer": {"type": "Adam"}, "clip_grad": {}}), "optim_wrapper.clip_grad"),
        (
            with_model(optim_wrapper={"optimizer": {"type": "Adam"}, "clip_grad": {"type": "value"}}),
            "optim_wrapper.clip_grad",
        ),
        (with_model(optim_wrapper={}), "optim_wrapper.optimizer"),
        (with_model(param_scheduler=[{"type": "MultiStepLR", "milestones": [0]}]), "param_scheduler[0].milestones[0]"),
        (
            with_model(param_scheduler=[{"type": "MultiStepLR", "milestones": [2], "gamma": 0}]),
            "param_scheduler[0].gamma",
        ),
        (with_model(param_scheduler=[{"type": "StepLR"}]), "param_scheduler[0].step_size"),
        (with_model(param_scheduler=[{"type": "ExponentialLR"}]), "param_scheduler[0].gamma"),
        (with_model(param_scheduler=[{"type": "CosineAnnealingLR", "T_max": 0}]), "param_scheduler[0].T_max"),
        (with_model(param_scheduler=[{"type": "LinearLR", "start_factor": 0}]), "param_scheduler[0].start_factor"),
        (with_model(param_scheduler=[{"type": "LinearLR", "end_factor": 1.5}]), "param_scheduler[0].end_factor"),
        (
            with_model(param_scheduler=[{"type": "StepLR", "step_size": 1}, {"type": "ExponentialLR", "gamma": -1}]),
            "param_scheduler[1].gamma",
        ),
        (with_model(val_evaluator={"type": "Evaluator", "metrics": []}), "val_evaluator.metrics"),
        (with_model(val_evaluator=[]), "val_evaluator.metrics"),
        (with_model(custom_hooks=[{"type": "CheckpointHook", "priority": "SOMETIMES"}]), "custom_hooks[0].priority"),
        (with_model(custom_hooks=[{"type": "CheckpointHook", "interval": "often"}]), "custom_hooks[0].interval"),
        (with_model(auto_scale_lr={"enable": True}), "auto_scale_lr"),
        (with_model(auto_scale_lr={"base_batch_size": 0}), "auto_scale_lr.base_batch_size"),
        (with_model(experiment_name=""), "experiment_name"),
        (with_model(custom_imports=["no_such_module_for_typedrunner_tests"]), "custom_imports[0]"),
    ],
)
def test_bad_values_are_rejected_at_their_path(data: dict[str, Any], path: str) -> None:
    problems = problems_of(data)
    assert path in {p.path for p in problems}, [p.render() for p in problems]


def test_train_cfg_val_begin_after_max_epochs_is_rejected() -> None:
    problem = only_problem(with_model(train_cfg={"max_epochs": 2, "val_begin": 3}))
    assert problem.path == "train_cfg"
    assert "val_begin=3" in problem.message
    assert "max_epochs=2" in problem.message


def test_clip_grad_messages_say_what_is_needed() -> None:
    norm = only_problem(with_model(optim_wrapper={"optimizer": {"type": "Adam"}, "clip_grad": {}}))
    assert "max_norm" in norm.message
    value = only_problem(with_model(optim_wrapper={"optimizer": {"type": "Adam"}, "clip_grad": {"type": "value"}}))
    assert "clip_value" in value.message


def test_dataloader_sampler_and_shuffle_together_are_rejected() -> None:
    problems = problems_of(
        with_model(train_dataloader={"dataset": dict(DATASET), "sampler": {"type": "DefaultSampler"}, "shuffle": True})
    )
    assert any("either sampler or shuffle" in p.message and p.path.startswith("train_dataloader") for p in problems)


def test_dataloader_worker_options_need_workers() -> None:
    problems = problems_of(with_model(train_dataloader={"dataset": dict(DATASET), "persistent_workers": True}))
    assert any("num_workers > 0" in p.message and p.path.startswith("train_dataloader") for p in problems)
    # With workers, the same options are fine.
    cfg = RunnerConfig.from_dict(
        with_model(
            train_dataloader={
                "dataset": dict(DATASET),
                "num_workers": 1,
                "persistent_workers": True,
                "prefetch_factor": 2,
            }
        )
    )
    assert isinstance(cfg.train_dataloader, DataLoader)
    assert cfg.train_dataloader.prefetch_factor == 2


def test_dataloader_model_level_errors_point_at_the_dataloader() -> None:
    both = only_problem(
        with_model(train_dataloader={"dataset": dict(DATASET), "sampler": {"type": "DefaultSampler"}, "shuffle": True})
    )
    assert both.path == "train_dataloader"
    wrong = only_problem(with_model(train_dataloader=5))
    assert wrong.path == "train_dataloader"


def test_dataloader_of_the_wrong_kind_is_rejected() -> None:
    problems = problems_of(with_model(val_dataloader=[1, 2, 3]))
    assert all(p.path.startswith("val_dataloader") for p in problems)
    assert any("DataLoader" in p.message for p in problems)


def test_work_dir_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    a_file = tmp_path / "not_a_dir"
    a_file.write_text("x")
    problem = only_problem(with_model(work_dir=str(a_file)))
    assert problem.path == "work_dir"
    assert "is a file" in problem.message


def test_custom_imports_failure_names_the_module() -> None:
    problem = only_problem(with_model(custom_imports=["no_such_module_for_typedrunner_tests"]))
    assert problem.path == "custom_imports[0]"
    assert "no_such_module_for_typedrunner_tests" in problem.message


# --------------------------------------------------------------------------------------------
# "not supported yet"
# --------------------------------------------------------------------------------------------
NOT_SUPPORTED: list[tuple[dict[str, Any], str]] = [
    (with_model(launcher="pytorch"), "launcher"),
    (with_model(launcher="slurm"), "launcher"),
    (with_model(visualizer={"type": "Visualizer"}), "visualizer"),
]


CONTRADICTORY: list[tuple[dict[str, Any], str, str]] = [
    (with_model(train_cfg={"max_epochs": 2, "by_epoch": False}), "train_cfg", "max_epochs is for by_epoch: true"),
    (with_model(train_cfg={"max_epochs": 2, "type": "IterBasedTrainLoop"}), "train_cfg", "max_epochs is for"),
    (with_model(train_cfg={"max_epochs": 2, "max_iters": 100}), "train_cfg", "not both"),
    (with_model(train_cfg={"by_epoch": False}), "train_cfg", "needs max_iters"),
    (
        with_model(train_cfg={"type": "EpochBasedTrainLoop", "by_epoch": False, "max_iters": 5}),
        "train_cfg",
        "contradicts",
    ),
    (with_model(train_cfg={"by_epoch": False, "max_iters": 5, "val_begin": 6}), "train_cfg", "max_iters=5"),
    (
        with_model(default_hooks={"checkpoint": {"rule": "greater"}}),
        "default_hooks.checkpoint",
        "only applies with save_best",
    ),
    (
        with_model(default_hooks={"checkpoint": {"save_best": ["a", "b"], "rule": ["less"]}}),
        "default_hooks.checkpoint",
        "rule has 1 entries but save_best has 2",
    ),
    (
        with_model(default_hooks={"checkpoint": {"filename_tmpl": "ep.pth"}}),
        "default_hooks.checkpoint.filename_tmpl",
        "pattern",
    ),
]


@pytest.mark.parametrize(("data", "path", "text"), CONTRADICTORY, ids=[t for _, _, t in CONTRADICTORY])
def test_contradictory_settings_are_rejected(data: dict[str, Any], path: str, text: str) -> None:
    problem = only_problem(data)
    assert problem.path == path
    assert text in problem.message


@pytest.mark.parametrize(("data", "path"), NOT_SUPPORTED, ids=[p for _, p in NOT_SUPPORTED])
def test_settings_not_supported_yet_are_rejected(data: dict[str, Any], path: str) -> None:
    problem = only_problem(data)
    assert problem.path == path
    assert "not supported yet" in problem.message


def test_not_supported_defaults_are_accepted() -> None:
    cfg = RunnerConfig.from_dict(
        with_model(
            resume=False,
            launcher="none",
            compile=False,
            visualizer=None,
            train_cfg={"max_epochs": 2, "by_epoch": True, "type": "EpochBasedTrainLoop"},
            optim_wrapper={"optimizer": {"type": "Adam"}, "accumulative_counts": 1, "type": "OptimWrapper"},
            default_hooks={"checkpoint": {"type": "CheckpointHook", "save_best": None}},
        )
    )
    assert cfg.train_cfg == TrainLoop(max_epochs=2)


def test_not_supported_message_names_the_accepted_value() -> None:
    problem = only_problem(with_model(launcher="pytorch"))
    assert "{" not in problem.message, problem.message
    assert "'none'" in problem.message


# --------------------------------------------------------------------------------------------
# env_cfg.backend: the tutorial's flat key
# --------------------------------------------------------------------------------------------
def test_flat_env_cfg_backend_is_read_as_dist_cfg_backend_with_a_warning() -> None:
    with pytest.warns(TypedRunnerWarning, match="env_cfg.dist_cfg.backend"):
        cfg = RunnerConfig.from_dict(with_model(env_cfg={"cudnn_benchmark": True, "backend": "gloo"}))
    assert cfg.env_cfg.dist_cfg.backend == "gloo"
    assert cfg.env_cfg.dist_cfg.timeout == 1800
    assert cfg.env_cfg.cudnn_benchmark is True
    assert cfg.env_cfg == EnvCfg(cudnn_benchmark=True, dist_cfg=DistCfg(backend="gloo"))


def test_flat_backend_agreeing_with_dist_cfg_is_accepted() -> None:
    with pytest.warns(TypedRunnerWarning):
        cfg = RunnerConfig.from_dict(
            with_model(env_cfg={"backend": "gloo", "dist_cfg": {"backend": "gloo", "timeout": 60}})
        )
    assert cfg.env_cfg.dist_cfg == DistCfg(backend="gloo", timeout=60)


def test_flat_backend_disagreeing_with_dist_cfg_is_rejected() -> None:
    problem = only_problem(with_model(env_cfg={"backend": "gloo", "dist_cfg": {"backend": "nccl"}}))
    assert problem.path.startswith("env_cfg")
    assert "disagree" in problem.message


def test_flat_backend_is_still_validated() -> None:
    with pytest.warns(TypedRunnerWarning):
        problem = only_problem(with_model(env_cfg={"backend": "carrier-pigeon"}))
    # Reported where the user wrote it.
    assert problem.path == "env_cfg.backend"
    assert problem.value == "carrier-pigeon"


def test_canonical_backend_path_gives_no_warning() -> None:
    # pytest runs with filterwarnings=error: any warning here would fail the test.
    cfg = RunnerConfig.from_dict(with_model(env_cfg={"dist_cfg": {"backend": "gloo"}}))
    assert cfg.env_cfg.dist_cfg.backend == "gloo"


# --------------------------------------------------------------------------------------------
# param_scheduler: one or a list, always a list
# --------------------------------------------------------------------------------------------
def test_param_scheduler_one_or_many_always_holds_a_list() -> None:
    one = RunnerConfig.from_dict(with_model(param_scheduler={"type": "MultiStepLR", "milestones": [4, 8]}))
    many = RunnerConfig.from_dict(with_model(param_scheduler=[{"type": "MultiStepLR", "milestones": [4, 8]}]))
    none = RunnerConfig.from_dict(with_model(param_scheduler=None))
    assert one.param_scheduler == [MultiStepLR(milestones=[4, 8])]
    assert many.param_scheduler == one.param_scheduler
    assert none.param_scheduler == []
    two = RunnerConfig.from_dict(
        with_model(
            param_scheduler=[
                {"type": "LinearLR", "start_factor": 0.1, "by_epoch": False, "total_iters": 10},
                {"type": "CosineAnnealingLR", "T_max": 5},
            ]
        )
    )
    assert two.param_scheduler == [
        LinearLR(start_factor=0.1, by_epoch=False, total_iters=10),
        CosineAnnealingLR(T_max=5),
    ]


def test_param_scheduler_typed_object_accepted_as_one() -> None:
    cfg = RunnerConfig(model=dict(MODEL), param_scheduler=StepLR(step_size=2))  # type: ignore[arg-type]
    assert cfg.param_scheduler == [StepLR(step_size=2)]


# --------------------------------------------------------------------------------------------
# Typed optimizers and schedulers mirror torch
# --------------------------------------------------------------------------------------------
TYPED_OPTIMIZERS: list[type[Adam | AdamW | SGD]] = [Adam, AdamW, SGD]
SCHEDULER_EXTRA = {"type", "by_epoch", "begin", "end", "convert_to_iter_based"}  # typedrunner's own keys
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
