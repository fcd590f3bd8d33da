"""Public home of the hooks (``from typedrunner.hooks import Hook``): the base class and the view of
the run a hook receives, the built-in hooks, and the custom hooks MMEngine users reach for."""

from typedrunner.parts.hooks.base import Event, Hook, HookList, Priority, RunView
from typedrunner.parts.hooks.builtin import (
    DistSamplerSeedHook,
    IterTimerHook,
    LoggerHook,
    ParamSchedulerHook,
    RuntimeInfoHook,
)
from typedrunner.parts.hooks.checkpoint import CheckpointHook
from typedrunner.parts.hooks.extra import EarlyStoppingHook, EMAHook, EmptyCacheHook, ProfilerHook, SyncBuffersHook

__all__ = [
    "CheckpointHook",
    "DistSamplerSeedHook",
    "EMAHook",
    "EarlyStoppingHook",
    "EmptyCacheHook",
    "Event",
    "Hook",
    "HookList",
    "IterTimerHook",
    "LoggerHook",
    "ParamSchedulerHook",
    "Priority",
    "ProfilerHook",
    "RunView",
    "RuntimeInfoHook",
    "SyncBuffersHook",
]
