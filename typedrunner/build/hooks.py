"""Hooks from configs: the default hooks from their schemas (wired to what they read: the timer, the
schedules), and the custom hooks from their components."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from typedrunner import config as C
from typedrunner.build.parts import build_object
from typedrunner.parts.hooks.base import Hook
from typedrunner.parts.hooks.builtin import (
    DistSamplerSeedHook,
    IterTimerHook,
    LoggerHook,
    ParamSchedulerHook,
    RuntimeInfoHook,
)
from typedrunner.parts.hooks.checkpoint import CheckpointHook
from typedrunner.parts.hooks.progress import ProgressBarHook
from typedrunner.parts.schedulers import ScheduleSlot
from typedrunner.registry.lazy import Lazy

__all__ = ["build_default_hooks", "build_hook", "build_progress_bar"]


def build_progress_bar(log_processor: C.LogProcessor, val_loader: Any, test_loader: Any) -> ProgressBarHook | None:
    """``log_processor.progress``: the bar hook, or None (``auto`` and stdout is not a terminal: the
    periodic log lines are the progress)."""
    if log_processor.progress == "off" or (log_processor.progress == "auto" and not sys.stdout.isatty()):
        return None

    def length(loader: Any) -> int | None:
        try:
            return len(loader) if loader is not None else None
        except TypeError:  # an iterable dataset: a bar without a total
            return None

    return ProgressBarHook(length(val_loader), length(test_loader))


def build_hook(spec: Any, path: str) -> Hook:
    """A custom hook (``custom_hooks[i]``); a ``priority`` given in the config overrides the class's."""
    hook: Hook = build_object(spec, path, Hook)
    priority = spec.meta.get("priority") if isinstance(spec, Lazy) else None
    if priority is not None:
        hook.priority = priority
    return hook


def build_default_hooks(
    cfg: C.DefaultHooks, log_processor: C.LogProcessor, schedules: Sequence[ScheduleSlot]
) -> list[Hook]:
    """The default hooks that are not set to null, each built from its schema object."""
    hooks: list[Hook] = []
    timer = IterTimerHook(cfg.timer, log_processor) if cfg.timer is not None else None
    if cfg.runtime_info is not None:
        hooks.append(RuntimeInfoHook(cfg.runtime_info))
    if timer is not None:
        hooks.append(timer)
    if cfg.sampler_seed is not None:
        hooks.append(DistSamplerSeedHook(cfg.sampler_seed))
    if cfg.logger is not None:
        hooks.append(LoggerHook(cfg.logger, log_processor, timer))
    if cfg.param_scheduler is not None:
        hooks.append(ParamSchedulerHook(cfg.param_scheduler, schedules))
    if cfg.checkpoint is not None:
        hooks.append(CheckpointHook(cfg.checkpoint))
    return hooks
