"""Every finding short of training, in one list: the config's warnings, the work directory, the
checks that need the built parts, and the contract probe on one real batch per dataloader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from typedrunner.check.cross_field import amp_problems, built_problems
from typedrunner.check.probe import ProbeResult, preserved_state, probe_eval, probe_train
from typedrunner.check.work_dir import checkpoint_dir_problems, work_dir_problems
from typedrunner.config.runner import RunnerConfig
from typedrunner.errors import Problem
from typedrunner.parts.evaluator import FilledMetric
from typedrunner.parts.model import BaseModel

__all__ = ["EvalStage", "run_checks"]


@dataclass(frozen=True)
class EvalStage:
    """An evaluation loop as the probe sees it."""

    stage: str
    dataloader: Any
    metrics: Sequence[FilledMetric]


def run_checks(
    cfg: RunnerConfig,
    *,
    model: nn.Module,
    preprocessor: nn.Module,
    train_dataloader: Any,
    evals: Sequence[EvalStage],
    work_dir: Path,
    iters_per_epoch: int,
    config_warnings: Sequence[Problem],
) -> tuple[list[Problem], ProbeResult]:
    """The findings (errors and warnings), and what the probe saw (batch structures, metric names).
    The probe runs on copies: the model, the RNG streams and the dataloaders are left as they were."""
    result = ProbeResult()
    # A model with its own train_step (several optimizers, a GAN) owns its loss contract.
    own_step = isinstance(model, BaseModel) and type(model).train_step is not BaseModel.train_step
    trains = cfg.train_cfg is not None and cfg.optim_wrapper is not None and not own_step
    with preserved_state(model, preprocessor):
        if trains and train_dataloader is not None:
            probe_train(model, preprocessor, train_dataloader, result)
        for loop in evals:
            probe_eval(loop.stage, model, preprocessor, loop.dataloader, loop.metrics, result)
    hook = cfg.default_hooks.checkpoint
    writes = cfg.train_cfg is not None and hook is not None
    with_optimizer = cfg.optim_wrapper is not None
    checkpoints: list[Problem] = []
    if writes and hook is not None and cfg.train_cfg is not None:
        epochs = cfg.train_cfg.length if cfg.train_cfg.by_epoch else 1
        iters = cfg.train_cfg.length if not cfg.train_cfg.by_epoch else epochs * max(iters_per_epoch, 1)
        checkpoints = checkpoint_dir_problems(hook, work_dir, epochs if hook.by_epoch else iters, model, with_optimizer)
    findings = [
        *config_warnings,
        *(work_dir_problems(work_dir, model, with_optimizer) if writes else []),
        *checkpoints,
        *built_problems(cfg, iters_per_epoch, result.metric_names),
        *(amp_problems(cfg, _device_type(model)) if trains else []),
        *result.problems,
    ]
    return findings, result


def _device_type(model: nn.Module) -> str:
    """Where the model's weights are (``cpu`` for a model without any)."""
    first = next(iter(model.parameters()), None)
    return first.device.type if first is not None else "cpu"
