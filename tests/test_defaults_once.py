"""Each default is written once, in the schema: the built-in hooks are built from their schema
objects, and the priority names a config accepts are the ``Priority`` enum's."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

import pytest

from typedrunner.config import hooks as schema
from typedrunner.config.hooks import DefaultHooks
from typedrunner.config.logging import LogProcessor
from typedrunner.hooks import (
    CheckpointHook,
    DistSamplerSeedHook,
    Hook,
    IterTimerHook,
    LoggerHook,
    ParamSchedulerHook,
    Priority,
    RuntimeInfoHook,
)
from typedrunner.runner import Runner
from typedrunner.testing import RecordingHook, toy_config

# ----------------------------------------------------------------------------------------------
# Defaults written once; priorities named alike
# ----------------------------------------------------------------------------------------------
BUILTIN_HOOKS: list[type[Hook]] = [
    RuntimeInfoHook,
    IterTimerHook,
    DistSamplerSeedHook,
    LoggerHook,
    ParamSchedulerHook,
    CheckpointHook,
]


@pytest.mark.parametrize("hook", BUILTIN_HOOKS, ids=[h.__name__ for h in BUILTIN_HOOKS])
def test_builtin_hook_defaults_come_from_its_schema(hook: type[Hook]) -> None:
    """A built-in hook's constructor writes no default of its own: its schema object, or nothing."""
    schema_class = getattr(hook, "config_schema", None)
    assert schema_class is getattr(schema, hook.__name__)
    built = hook()
    assert getattr(built, "cfg", None) == schema_class()
    for name, parameter in list(inspect.signature(hook.__init__).parameters.items())[1:]:
        assert parameter.default in (None, ()), f"{hook.__name__}({name}=...) has a default of its own"


def test_builtin_hooks_built_bare_match_the_schema_defaults() -> None:
    logger, timer, checkpoint = LoggerHook(), IterTimerHook(), CheckpointHook()
    logger_defaults, checkpoint_defaults = schema.LoggerHook(), schema.CheckpointHook()
    window = LogProcessor().window_size
    assert (logger.interval, logger.ignore_last) == (logger_defaults.interval, logger_defaults.ignore_last)
    assert logger.window.maxlen == window
    assert timer.iter_times.maxlen == timer.data_times.maxlen == window
    assert checkpoint.by_epoch == checkpoint_defaults.by_epoch
    assert checkpoint.filename_tmpl == ("epoch_{}.pth" if checkpoint_defaults.by_epoch else "iter_{}.pth")
    assert checkpoint.save_best == [] and checkpoint_defaults.save_best is None
    assert checkpoint.out_dir is None and checkpoint_defaults.out_dir is None


def test_runner_defaults_come_from_the_schemas(tmp_path: Path) -> None:
    """A default Runner's hooks and its non-finite guard have the schemas' settings."""
    runner = Runner(toy_config(tmp_path))
    defaults = DefaultHooks()
    assert runner.nonfinite_guard.interval == schema.LoggerHook().interval
    logger = next(h for h in runner.hooks.hooks if isinstance(h, LoggerHook))
    timer = next(h for h in runner.hooks.hooks if isinstance(h, IterTimerHook))
    assert logger.cfg == defaults.logger and logger.interval == schema.LoggerHook().interval
    assert logger.window.maxlen == timer.iter_times.maxlen == LogProcessor().window_size
    checkpoint = next(h for h in runner.hooks.hooks if isinstance(h, CheckpointHook))
    assert checkpoint.cfg == defaults.checkpoint
    # and a setting in the config reaches the guard as it reaches the hook
    changed = Runner(toy_config(tmp_path / "changed", default_hooks=DefaultHooks(logger=schema.LoggerHook(interval=3))))
    assert changed.nonfinite_guard.interval == 3


def _literal_names(annotation: Any) -> set[str]:
    names: set[str] = set()
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            names.update(typing.get_args(arg))
    return names


def test_priority_names_match_the_config() -> None:
    """The names a config may give a hook's ``priority`` are exactly ``Priority``'s members."""
    accepted = _literal_names(schema.Priority)
    assert accepted == {p.name for p in Priority}
    assert int in typing.get_args(schema.Priority)  # a number is accepted too


@pytest.mark.parametrize("name", [p.name for p in Priority])
def test_priority_name_in_a_config_sets_the_hook_priority(name: str, tmp_path: Path) -> None:
    cfg = toy_config(tmp_path, custom_hooks=[{"type": "typedrunner.testing.RecordingHook", "priority": name}])
    runner = Runner(cfg)
    recorder = next(h for h in runner.hooks.hooks if isinstance(h, RecordingHook))
    assert recorder.priority_value == Priority[name].value
