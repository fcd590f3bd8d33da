"""Every schema's defaults: ``RunnerConfig`` has exactly MMEngine's Runner arguments, and each schema's
defaults (hooks, dataloaders, optimizer wrapper, evaluators) are MMEngine's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import BaseModel as PydanticModel

import examples.seed_mlp  # registers MyAwesomeModel, MyDataset, Accuracy
from tests.helpers import DATASET, MODEL, with_model
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
    ValLoop,
)
from typedrunner.config import train as loop_schemas  # its TestLoop would be collected by pytest
from typedrunner.registry.lazy import Lazy
from typedrunner.testing import ToyMetric

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
TYPEDRUNNER_ONLY_ARGS = {
    "debug",  # Lightning's fast_dev_run / limit_*_batches / overfit_batches: MMEngine's Runner has no such knob
}


# --------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------
MMENGINE_CONFIG_KEYS = {"model_wrapper_cfg", "sync_bn"}
"""Top-level keys of an MMEngine config that its Runner reads from ``cfg`` (in ``wrap_model``), not
as arguments."""


def test_runner_config_has_exactly_mmengine_runner_arguments() -> None:
    assert set(RunnerConfig.model_fields) == MMENGINE_RUNNER_ARGS | MMENGINE_CONFIG_KEYS | TYPEDRUNNER_ONLY_ARGS


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
            "val_begin": 1,
            "val_interval": 1,
            "dynamic_intervals": [],
        },
    ),
    (
        lambda: TrainLoop(by_epoch=False, max_iters=5),
        {
            "type": "IterBasedTrainLoop",
            "by_epoch": False,
            "max_iters": 5,
            "val_begin": 1,
            "val_interval": 1000,
            "dynamic_intervals": [],
        },
    ),
    (lambda: ValLoop(), {"type": "ValLoop", "fp16": False}),
    (lambda: loop_schemas.TestLoop(), {"type": "TestLoop", "fp16": False}),
    (lambda: DefaultSampler(), {"type": "DefaultSampler", "shuffle": True, "seed": None, "round_up": True}),
    (lambda: MpCfg(), {"mp_start_method": None, "opencv_num_threads": None}),
    (lambda: DistCfg(), {"backend": None, "timeout": 1800}),
    (
        lambda: EnvCfg(),
        {
            "cudnn_benchmark": False,
            "mp_cfg": {"mp_start_method": None, "opencv_num_threads": None},
            "dist_cfg": {"backend": None, "timeout": 1800},
        },
    ),
    (lambda: Randomness(), {"seed": None, "deterministic": False, "diff_rank_seed": False}),
    (lambda: AutoScaleLR(), {"enable": False, "base_batch_size": None}),
    (lambda: LogProcessor(), {"window_size": 10, "by_epoch": True, "num_digits": 4, "progress": "auto"}),
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
            "eta_min_ratio": None,
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
