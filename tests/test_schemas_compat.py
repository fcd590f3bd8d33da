"""Compatibility spellings and limits: settings that contradict each other or are "not supported yet" are
rejected with their paths; the tutorial's flat ``env_cfg.backend`` is read as ``dist_cfg.backend``
with a warning; ``param_scheduler`` takes one or a list and always holds a list.
"""

from __future__ import annotations

from typing import Any

import pytest

import examples.seed_mlp  # noqa: F401  (registers MyAwesomeModel, MyDataset, Accuracy)
from tests.helpers import MODEL, only_problem, with_model
from typedrunner.config import (
    CosineAnnealingLR,
    DistCfg,
    EnvCfg,
    LinearLR,
    MultiStepLR,
    RunnerConfig,
    StepLR,
    TrainLoop,
    TypedRunnerWarning,
)

# --------------------------------------------------------------------------------------------
# "not supported yet"
# --------------------------------------------------------------------------------------------
NOT_SUPPORTED: list[tuple[dict[str, Any], str]] = [
    (with_model(launcher="mpi"), "launcher"),
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
    problem = only_problem(with_model(log_processor={"by_epoch": False}))
    assert "{" not in problem.message, problem.message
    assert "only True is accepted" in problem.message


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
