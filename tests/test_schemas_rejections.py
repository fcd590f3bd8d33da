"""Every schema's rejections, each with the dotted config path it reports: required fields, unknown keys
and types with did-you-mean suggestions, bad values, and every problem of a config in one error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import examples.seed_mlp  # noqa: F401  (registers MyAwesomeModel, MyDataset, Accuracy)
from tests.helpers import DATASET, MODEL, only_problem, problems_of, with_model
from typedrunner.config import (
    DataLoader,
    RunnerConfig,
)
from typedrunner.errors import ConfigError


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
