"""Checks across fields that no single schema can make. Findings are data: a list of ``Problem``.

``cross_field_problems(cfg)`` needs only the validated config (nothing built): it runs before any
model or dataloader exists. ``built_problems`` needs the dataloaders' lengths and the metric names
the contract probe observed.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from typedrunner.config import scheduler as S
from typedrunner.config.runner import RunnerConfig
from typedrunner.errors import Problem, did_you_mean
from typedrunner.parts.hooks.base import EVENTS
from typedrunner.registry.lazy import Lazy

__all__ = ["amp_problems", "built_problems", "cross_field_problems"]

_TRIOS = {
    "train": ("train_dataloader", "train_cfg", "optim_wrapper"),
    "val": ("val_dataloader", "val_cfg", "val_evaluator"),
    "test": ("test_dataloader", "test_cfg", "test_evaluator"),
}
_STAGE = "cross-field"


def _problem(path: str, message: str, value: Any = None, severity: str = "error") -> Problem:
    return Problem(path, message, value, stage=_STAGE, severity="warning" if severity == "warning" else "error")


def cross_field_problems(cfg: RunnerConfig) -> list[Problem]:
    """Everything wrong between fields of a validated config, before anything is built."""
    return _debug_run(
        cfg,
        [
            *_trios(cfg),
            *_schedulers_fire(cfg),
            *_checkpoint_interval(cfg),
            *_hook_events(cfg),
            *_load_from_exists(cfg),
            *_wrapper_unused(cfg),
        ],
    )


def _wrapper_unused(cfg: RunnerConfig) -> Iterable[Problem]:
    """FSDP2 asked for in a one-process run: the model trains unsharded, as DDP's keys do there."""
    if cfg.launcher == "none" and cfg.model_wrapper_cfg.type == "FSDP2":
        yield _problem(
            "model_wrapper_cfg.type",
            "FSDP2 takes effect under a distributed launcher only; with launcher: none the model trains "
            "unsharded and checkpoints are single .pth files (start with torchrun ... launcher=pytorch to shard)",
            "FSDP2",
            severity="warning",
        )


def _debug_run(cfg: RunnerConfig, problems: list[Problem]) -> list[Problem]:
    """``debug.fast_dev_run``: a schedule that would not fire in the short run is a warning."""
    if cfg.debug.fast_dev_run is None:
        return problems
    return [replace(p, severity="warning") if p.path.startswith("param_scheduler") else p for p in problems]


def _trios(cfg: RunnerConfig) -> Iterable[Problem]:
    for stage, keys in _TRIOS.items():
        given = [k for k in keys if getattr(cfg, k) is not None]
        if given and len(given) < len(keys):
            for key in keys:
                if key not in given:
                    verb = "is" if len(given) == 1 else "are"
                    yield _problem(
                        key,
                        f"required because {', '.join(given)} {verb} set (the {stage} trio "
                        f"{', '.join(keys)} is all or none: otherwise {stage} never runs)",
                    )


def _epoch_points(config: S.SchedulerConfig) -> tuple[str, list[int]] | None:
    """The steps at which an epoch-stepped schedule changes the lr: (field name, steps)."""
    if isinstance(config, S.MultiStepLR):
        return "milestones", list(config.milestones)
    if isinstance(config, S.StepLR):
        return "step_size", [config.step_size]
    if isinstance(config, Lazy):
        milestones = config.kwargs.get("milestones")
        if isinstance(milestones, (list, tuple)) and all(isinstance(m, int) for m in milestones):
            return "milestones", list(milestones)
        step = config.kwargs.get("step_size")
        if isinstance(step, int):
            return "step_size", [step]
    return None


def _by_epoch(config: S.SchedulerConfig) -> bool:
    return bool(config.meta.get("by_epoch", True)) if isinstance(config, Lazy) else config.by_epoch


def _schedulers_fire(cfg: RunnerConfig) -> Iterable[Problem]:
    """A schedule that never steps, or whose steps all fall after the end of training, has no effect."""
    if not cfg.param_scheduler:
        return
    if cfg.default_hooks.param_scheduler is None:
        yield _problem(
            "default_hooks.param_scheduler",
            "is null, so param_scheduler would never step; remove param_scheduler or restore the hook",
        )
    loop = cfg.train_cfg
    if loop is None:
        return
    for where, config in cfg.all_schedules():
        if _by_epoch(config) and not loop.by_epoch:
            yield _problem(
                f"{where}.by_epoch",
                "true, but train_cfg is iteration-based (by_epoch: false): an epoch-stepped schedule would "
                "never step; set by_epoch: false and give its steps in iterations",
            )
            continue
        if _by_epoch(config) != loop.by_epoch:
            continue  # iteration-stepped in an epoch-based run: checked once the data is built
        length, unit = loop.length, ("epochs" if loop.by_epoch else "iterations")
        length_key = "max_epochs" if loop.by_epoch else "max_iters"
        begin = S.window_of(config).begin
        if begin >= length:
            yield _problem(
                f"{where}.begin",
                f"{begin}: the schedule would start after training ends (train_cfg.{length_key}={length})",
            )
            continue
        points = _epoch_points(config)
        if points is None:
            continue
        name, steps = points
        late = [s for s in steps if begin + s >= length]
        if late and len(late) == len(steps):
            yield _problem(
                f"{where}.{name}",
                f"{steps} {unit}: the schedule never changes the lr within train_cfg.{length_key}={length} "
                f"(a change at {late[0]} would apply after training ends)",
            )
        elif late:
            yield _problem(
                f"{where}.{name}",
                f"{late} of {steps} fall at or after train_cfg.{length_key}={length} and never take effect",
                severity="warning",
            )


def _checkpoint_interval(cfg: RunnerConfig) -> Iterable[Problem]:
    hook, loop = cfg.default_hooks.checkpoint, cfg.train_cfg
    if hook is None or loop is None:
        return
    if hook.by_epoch and not loop.by_epoch:
        yield _problem(
            "default_hooks.checkpoint.by_epoch",
            "true, but train_cfg is iteration-based: set by_epoch: false (interval in iterations)",
        )
        return
    if hook.by_epoch != loop.by_epoch:
        return  # iteration checkpoints in an epoch-based run: checked once the data is built
    length, unit = loop.length, ("epochs" if loop.by_epoch else "iterations")
    if hook.interval > length:
        if hook.save_last:
            yield _problem(
                "default_hooks.checkpoint.interval",
                f"{hook.interval} is longer than the run ({length} {unit}): only the end of training is saved",
                hook.interval,
                severity="warning",
            )
        else:
            yield _problem(
                "default_hooks.checkpoint.interval",
                f"{hook.interval} is longer than the run ({length} {unit}) and save_last is false: no "
                "checkpoint would ever be written",
                hook.interval,
            )
    if hook.save_begin >= length and not hook.save_last:
        yield _problem(
            "default_hooks.checkpoint.save_begin",
            f"{hook.save_begin} >= the run's {length} {unit} and save_last is false: no checkpoint would be written",
        )
    if hook.save_best is not None and cfg.val_evaluator is None:
        yield _problem(
            "default_hooks.checkpoint.save_best",
            "needs validation (val_dataloader, val_cfg, val_evaluator): without it no metric is ever computed",
        )


def _hook_events(cfg: RunnerConfig) -> Iterable[Problem]:
    """A user hook method named like an event but not one (``after_train_iteration``) is never called."""
    for i, spec in enumerate(cfg.custom_hooks):
        cls = spec.target if isinstance(spec, Lazy) else type(spec)
        if not inspect.isclass(cls):
            continue
        overridden = [n for n in EVENTS if getattr(cls, n, None) is not None and n in cls.__dict__]
        for name in _own_methods(cls):
            if name.startswith(("before_", "after_")) and name not in EVENTS:
                yield _problem(
                    f"custom_hooks[{i}]",
                    f"{cls.__qualname__}.{name} is not a hook event and would never be called"
                    f"{did_you_mean(name, EVENTS)}",
                )
        if not overridden and not any(n in EVENTS for n in _own_methods(cls)):
            yield _problem(
                f"custom_hooks[{i}]",
                f"{cls.__qualname__} overrides no hook event, so it would never run",
            )


def _own_methods(cls: type[Any]) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        if klass.__module__.startswith("typedrunner.") and klass.__name__ == "Hook":
            break
        names += [n for n, v in vars(klass).items() if callable(v) and not n.startswith("_")]
    return names


def _load_from_exists(cfg: RunnerConfig) -> Iterable[Problem]:
    if cfg.load_from is None:
        return
    path = Path(cfg.load_from.path)
    try:
        path.exists()
    except (OSError, ValueError) as e:  # a name too long, a NUL byte
        yield _problem("load_from", f"{str(path)[:60]!r}... cannot be a file: {e}")
        return
    if not path.exists():
        yield _problem("load_from", f"{str(path)!r} does not exist", severity="error")
    elif not path.is_file() and not (path.suffix == ".dcp" and (path / ".metadata").is_file()):
        yield _problem(
            "load_from", f"{str(path)!r} is not a file (nor a sharded checkpoint, <name>.dcp/)", severity="error"
        )


def _hook_monitor(spec: Any) -> Any:
    """The metric a custom hook watches (EarlyStoppingHook's ``monitor``), if it has one."""
    if isinstance(spec, Lazy):
        return spec.kwargs.get("monitor")
    return getattr(spec, "monitor", None)


def built_problems(cfg: RunnerConfig, iters_per_epoch: int, metric_names: Mapping[str, Sequence[str]]) -> list[Problem]:
    """Checks that need the built parts: iteration-stepped schedules in an epoch-based run (the
    dataloader's length), and ``save_best`` keys against the metric names the probe saw."""
    problems: list[Problem] = []
    loop = cfg.train_cfg
    if loop is None or iters_per_epoch <= 0:
        return problems
    hook = cfg.default_hooks.checkpoint
    val_names = list(metric_names.get("val", []))
    monitors = [(f"{where}.monitor", getattr(config, "monitor", None)) for where, config in cfg.all_schedules()]
    monitors += [(f"custom_hooks[{i}].monitor", _hook_monitor(spec)) for i, spec in enumerate(cfg.custom_hooks)]
    for where, monitor in monitors:
        if not isinstance(monitor, str):
            continue
        if cfg.val_evaluator is None:
            problems.append(_problem(where, "needs validation: no metric is ever computed"))
        elif val_names and monitor not in val_names:
            problems.append(
                _problem(
                    where,
                    f"{monitor!r} is not a metric the evaluator returns ({', '.join(val_names)})"
                    f"{did_you_mean(monitor, val_names)}",
                )
            )
    if hook is not None and val_names:
        for key in hook.best_keys():
            if key != "auto" and key not in val_names:
                problems.append(
                    _problem(
                        "default_hooks.checkpoint.save_best",
                        f"{key!r} is not a metric the evaluator returns ({', '.join(val_names)})"
                        f"{did_you_mean(key, val_names)}",
                    )
                )
    if not loop.by_epoch:
        return problems
    max_iters = loop.length * iters_per_epoch
    for where, config in cfg.all_schedules():
        if _by_epoch(config):
            continue
        begin = S.window_of(config).begin
        if begin >= max_iters:
            problems.append(
                _problem(
                    f"{where}.begin",
                    f"{begin} iterations: the schedule would start after training ends ({max_iters} iterations)",
                )
            )
            continue
        points = _epoch_points(config)
        if points is None:
            continue
        name, steps = points
        if all(s >= max_iters for s in steps):
            problems.append(
                _problem(
                    f"{where}.{name}",
                    f"{steps} iterations (by_epoch: false): the run has only {max_iters} iterations "
                    f"({iters_per_epoch} per epoch), so the lr never changes; did you mean by_epoch: true?",
                )
            )
        elif loop.length > 1 and all(s < iters_per_epoch for s in steps):
            problems.append(
                _problem(
                    f"{where}.{name}",
                    f"{steps} iterations (by_epoch: false) all fall inside the first epoch "
                    f"({iters_per_epoch} iterations): the whole schedule is over after one epoch of "
                    f"{loop.length}; did you mean by_epoch: true?",
                    severity="warning",
                )
            )
    if hook is not None and not hook.by_epoch and hook.interval > max_iters:
        problems.append(
            _problem(
                "default_hooks.checkpoint.interval",
                f"{hook.interval} iterations is longer than the run ({max_iters} iterations)",
                severity="warning" if hook.save_last else "error",
            )
        )
    return _debug_run(cfg, problems)


def amp_problems(cfg: RunnerConfig, device_type: str) -> list[Problem]:
    """An ``AmpOptimWrapper`` without a ``dtype`` on a CPU trains under bfloat16 autocast (float16
    needs CUDA): legal, but not what a config written for a GPU expects, so it is said."""
    wrappers = cfg.optim_wrapper if isinstance(cfg.optim_wrapper, dict) else {"": cfg.optim_wrapper}
    if device_type == "cuda":
        return []
    found = []
    for name, wrapper in wrappers.items():
        if wrapper is not None and wrapper.type == "AmpOptimWrapper" and wrapper.dtype is None:
            path = f"optim_wrapper.{name}.type" if name else "optim_wrapper.type"
            found.append(
                _problem(
                    path,
                    f"AmpOptimWrapper on {device_type}: training runs under bfloat16 autocast (float16 needs "
                    "CUDA), with less precision than float32; set dtype: bfloat16 to mean it, or type: "
                    "OptimWrapper to train in float32",
                    severity="warning",
                )
            )
    return found
