"""Property tests: validated configs are built by ``Runner.checked``, which writes nothing.

Cheap mutations of the small seed (values that keep a build cheap: no worker processes, small data)
validate or raise ``ConfigError`` with sound paths (``tests.helpers.check_config``); those that
validate go through ``Runner.checked`` under a SIGALRM limit (``tests.helpers.check_runner``): it builds
or raises ``ConfigError`` (a ``ContractError`` included), warns only with ``TypedRunnerWarning`` and
writes nothing.

Configs fuzzed per run here: 100 cheap mutations drawn by hypothesis (derandomized, no example database).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz_support import (
    CHECK_LIMIT_S,
    FUZZ,
    VALIDATE_LIMIT_S,
    ConfigPath,
    TimeLimit,
    check_config,
    check_runner,
    get_at,
    small_seed,
)

# ---------------------------------------------------------------------------------------------
# Validated configs are built by Runner.checked, which writes nothing
# ---------------------------------------------------------------------------------------------
CHEAP_PATHS: list[ConfigPath] = [
    ("experiment_name",),
    ("work_dir",),
    ("launcher",),
    ("log_level",),
    ("resume",),
    ("load_from",),
    ("randomness",),
    ("randomness", "seed"),
    ("randomness", "deterministic"),
    ("log_processor",),
    ("log_processor", "window_size"),
    ("model", "layers"),
    ("model", "activation"),
    ("model", "type"),
    ("train_cfg",),
    ("train_cfg", "by_epoch"),
    ("train_cfg", "max_epochs"),
    ("train_cfg", "max_iters"),
    ("train_cfg", "val_begin"),
    ("train_cfg", "val_interval"),
    ("train_cfg", "type"),
    ("val_cfg",),
    ("val_cfg", "fp16"),
    ("optim_wrapper", "type"),
    ("optim_wrapper", "clip_grad"),
    ("optim_wrapper", "accumulative_counts"),
    ("optim_wrapper", "nonfinite"),
    ("optim_wrapper", "optimizer", "type"),
    ("optim_wrapper", "optimizer", "lr"),
    ("optim_wrapper", "optimizer", "weight_decay"),
    ("param_scheduler",),
    ("param_scheduler", "type"),
    ("param_scheduler", "by_epoch"),
    ("param_scheduler", "milestones"),
    ("param_scheduler", "gamma"),
    ("param_scheduler", "begin"),
    ("param_scheduler", "end"),
    ("default_hooks", "checkpoint"),
    ("default_hooks", "checkpoint", "interval"),
    ("default_hooks", "checkpoint", "by_epoch"),
    ("default_hooks", "checkpoint", "save_best"),
    ("default_hooks", "checkpoint", "save_last"),
    ("default_hooks", "logger"),
    ("default_hooks", "logger", "interval"),
    ("default_hooks", "param_scheduler"),
    ("val_evaluator",),
    ("val_evaluator", "type"),
    ("train_dataloader", "batch_size"),
    ("train_dataloader", "drop_last"),
    ("train_dataloader", "shuffle"),
    ("train_dataloader", "sampler"),
    ("train_dataloader", "sampler", "shuffle"),
    ("train_dataloader", "collate_fn", "type"),
    ("train_dataloader", "dataset", "size"),
    ("train_dataloader", "dataset", "is_train"),
    ("val_dataloader",),
    ("val_dataloader", "batch_size"),
    ("val_dataloader", "dataset", "size"),
    ("custom_hooks",),
    ("auto_scale_lr",),
]
"""Paths whose values keep a build cheap (no worker processes, no torch.compile, no huge sizes)."""

cheap_values: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 12),
    st.sampled_from([0.0, 0.1, 1e-3, -1.0, math.nan, math.inf, 1e308]),
    st.sampled_from(
        ["", "auto", "yes", "{}", "${oc.env:HOME}", "日本", "\x00", "INFO", "iter", "norm", "relu", "none", "silu"]
    ),
    st.sampled_from(
        [
            "SGD",
            "AdamW",
            "RMSprop",
            "CosineAnnealingLR",
            "LinearLR",
            "StepLR",
            "OneCycleLR",
            "ReduceOnPlateauLR",
            "IterBasedTrainLoop",
            "AmpOptimWrapper",
            "Accuracy",
            "MyAwesomeModel",
            "torch.nn.Linear",
            "pseudo_collate",
            "default_collate",
            "SequentialSampler",
            "RandomSampler",
            "EMAHook",
            "EarlyStoppingHook",
            "no_such_module_fuzz.Thing",
        ]
    ),
    st.lists(st.integers(-1, 6), max_size=3),
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["EMAHook", "EarlyStoppingHook", "Accuracy", "CheckpointHook", "norm"]),
            "max_norm": st.sampled_from([1.0, -1.0]),
            "seed": st.integers(-1, 3),
            "interval": st.integers(0, 3),
            "monitor": st.just("accuracy"),
            "enable": st.booleans(),
            "base_batch_size": st.integers(0, 16),
        },
    ),
)


PLAUSIBLE: dict[ConfigPath, list[Any]] = {
    ("experiment_name",): ["exp", "日本語", "a b", "${oc.env:HOME}"],
    ("resume",): ["auto", False],
    ("log_level",): ["DEBUG", "ERROR"],
    ("randomness",): [{"seed": 0, "deterministic": True}, {"diff_rank_seed": True}],
    ("randomness", "seed"): [0, 2**32 - 1],
    ("log_processor",): [{"window_size": 1, "by_epoch": False, "num_digits": 12}],
    ("model", "layers"): [1, 3],
    ("model", "activation"): ["silu", "none"],
    ("train_cfg",): [{"by_epoch": False, "max_iters": 3, "val_interval": 1}, {"max_epochs": 1}],
    ("train_cfg", "max_epochs"): [1, 3],
    ("train_cfg", "val_interval"): [1, 2],
    ("val_cfg", "fp16"): [False],
    ("optim_wrapper", "type"): ["AmpOptimWrapper"],
    ("optim_wrapper", "clip_grad"): [{"max_norm": 1.0}, {"type": "value", "clip_value": 0.5}],
    ("optim_wrapper", "accumulative_counts"): [2, 3],
    ("optim_wrapper", "nonfinite"): ["skip"],
    ("optim_wrapper", "optimizer", "type"): ["SGD", "AdamW", "RMSprop", "Adagrad", "torch.optim.SGD"],
    ("optim_wrapper", "optimizer", "lr"): [0.1, 1e-6],
    ("param_scheduler",): [
        [],
        None,
        {"type": "CosineAnnealingLR", "T_max": 2},
        [{"type": "LinearLR", "by_epoch": False, "end": 3}, {"type": "StepLR", "step_size": 1}],
        {"type": "ConstantLR", "factor": 0.5},
    ],
    ("param_scheduler", "milestones"): [[1], [1, 1]],
    ("param_scheduler", "gamma"): [0.5, 2.0],
    ("default_hooks", "checkpoint"): [None, {"interval": 2, "save_best": "accuracy", "rule": "greater"}],
    ("default_hooks", "checkpoint", "save_best"): ["auto", "accuracy", "loss", "no_such_metric"],
    ("default_hooks", "logger", "interval"): [1, 100],
    ("val_evaluator",): [[{"type": "Accuracy"}], {"type": "Evaluator", "metrics": {"type": "Accuracy"}}],
    ("train_dataloader", "batch_size"): [1, 32, 33],
    ("train_dataloader", "drop_last"): [True],
    ("train_dataloader", "sampler"): [{"type": "SequentialSampler"}, {"type": "DefaultSampler", "seed": 1}],
    ("train_dataloader", "collate_fn", "type"): ["pseudo_collate", "torch.utils.data.default_collate"],
    ("train_dataloader", "dataset", "size"): [1, 7],
    ("val_dataloader",): [None],
    ("val_dataloader", "batch_size"): [1, 100],
    ("custom_hooks",): [
        [{"type": "EMAHook"}],
        [{"type": "EarlyStoppingHook", "monitor": "accuracy"}],
        [{"type": "EmptyCacheHook", "priority": "LOWEST"}],
    ],
    ("auto_scale_lr",): [{"enable": True, "base_batch_size": 16}],
}
"""Values that keep the config valid (or nearly), so that many cheap configs reach ``Runner.checked``."""


@st.composite
def cheap_configs(draw: st.DrawFn) -> dict[str, Any]:
    """The small seed with one to three cheap paths set to plausible or odd small values, or deleted."""
    data = small_seed()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(CHEAP_PATHS))
        try:
            parent = get_at(data, path[:-1])
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, dict):
            continue
        choice = draw(st.integers(0, 5))
        if choice == 0:
            parent.pop(path[-1], None)
        elif choice <= 2 and path in PLAUSIBLE:
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(PLAUSIBLE[path])))
        else:
            parent[path[-1]] = draw(cheap_values)
    return data


@settings(FUZZ, max_examples=100)
@given(data=cheap_configs())
def test_cheap_configs_build_or_report(data: dict[str, Any], in_tmp: Path, time_limit: TimeLimit) -> None:
    with time_limit(VALIDATE_LIMIT_S):
        cfg = check_config(data, in_tmp)
    if cfg is not None:
        with time_limit(CHECK_LIMIT_S):
            check_runner(cfg, in_tmp)
