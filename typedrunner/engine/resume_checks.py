"""What resume checks in a checkpoint before it restores anything: the weights and optimizer state
fit, the position is a valid one inside the configured run, the RNG, schedule and hook states are
well formed. A malformed checkpoint is a ``ConfigError`` (exit 2), never a traceback half-way."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, ValidationError
from torch import nn

from typedrunner.engine.rng import capture_rng, restore_rng
from typedrunner.engine.state import Position
from typedrunner.errors import ConfigError, Problem, format_path, refuse
from typedrunner.parts.hooks.base import Hook
from typedrunner.parts.optim import AnyOptimWrapper, OptimWrapperDict
from typedrunner.parts.schedulers import ScheduleSlot

__all__ = ["ResumeMeta", "check_rng", "check_schedulers", "check_within", "refusal", "restore_hooks", "resume_problems"]


def resume_problems(
    model: nn.Module, wrapper: AnyOptimWrapper | None, checkpoint: Mapping[str, Any], path: Path
) -> list[Problem]:
    """What does not fit between the checkpoint and this run: model and optimizer shapes."""
    problems: list[Problem] = []
    weights = checkpoint.get("state_dict")
    if not isinstance(weights, Mapping):
        return [Problem("resume", f"{path} holds no model weights ('state_dict')")]
    own = model.state_dict()
    for key in own:
        if key not in weights:
            problems.append(Problem("resume", f"the checkpoint {path.name} has no {key}: it is from another model"))
    for key, value in weights.items():
        if key not in own:
            problems.append(Problem("resume", f"the checkpoint {path.name} has {key}, which this model lacks"))
        elif not isinstance(value, torch.Tensor):
            problems.append(Problem("resume", f"{key}: the checkpoint holds a {type(value).__name__}, not a tensor"))
        elif value.shape != own[key].shape:
            problems.append(
                Problem("resume", f"{key}: checkpoint shape {list(value.shape)}, model shape {list(own[key].shape)}")
            )
    if wrapper is None:
        return problems
    saved = checkpoint.get("optimizer")
    if not isinstance(saved, Mapping):
        return [
            *problems,
            Problem("resume", f"{path.name} holds no optimizer state (saved with save_optimizer: false?)"),
        ]
    pairs = (
        [(name, w.optimizer, saved.get(name)) for name, w in wrapper.items()]
        if isinstance(wrapper, OptimWrapperDict)
        else [("", wrapper.optimizer, saved)]
    )
    for name, optimizer, state in pairs:
        which = f"optimizer {name!r}" if name else "optimizer"
        problems += _optimizer_problems(optimizer, state, f"the {which} state in {path.name}")
    return problems


_Value = torch.Tensor | StrictBool | StrictInt | StrictFloat | None | list[torch.Tensor]


class _ParamGroup(BaseModel):
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
    params: list[StrictInt]


class _OptimizerState(BaseModel):
    """What ``torch.optim.Optimizer.state_dict()`` holds: per-parameter tensors and numbers, and groups."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
    state: dict[StrictInt, dict[str, _Value]]
    param_groups: list[_ParamGroup]


def _optimizer_problems(optimizer: torch.optim.Optimizer, state: Any, what: str) -> list[Problem]:
    """A malformed optimizer state, or one for other parameters, is refused before anything is restored."""
    try:
        saved = _OptimizerState.model_validate(state)
    except ValidationError as e:
        return [
            Problem("resume", f"{what} is malformed: {format_path(err['loc'])}: {err['msg']}") for err in e.errors()
        ]
    groups = saved.param_groups
    if len(groups) != len(optimizer.param_groups) or any(
        len(g.params) != len(o["params"]) for g, o in zip(groups, optimizer.param_groups, strict=False)
    ):
        return [Problem("resume", f"{what} has another number of parameter groups or parameters")]
    params = dict(
        zip(
            itertools.chain.from_iterable(g.params for g in groups),
            itertools.chain.from_iterable(o["params"] for o in optimizer.param_groups),
            strict=True,
        )
    )
    problems = []
    for index, values in saved.state.items():
        if index not in params:
            problems.append(Problem("resume", f"{what} is malformed: state {index} is no parameter's"))
            continue
        for key, value in values.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape != params[index].shape:
                problems.append(
                    Problem(
                        "resume",
                        f"{what} is malformed: state {index}.{key} has shape {list(value.shape)}, "
                        f"its parameter {list(params[index].shape)}",
                    )
                )
    return problems


class ResumeMeta(Position):
    """A checkpoint's ``meta`` as resume reads it: the position and the seed the run drew."""

    seed: int | None = Field(default=None, ge=0, lt=2**32)
    """The run's seed (a random one when ``randomness.seed`` was unset): restored when it is unset."""


def refusal(path: Path, message: str) -> ConfigError:
    return refuse("resume", f"{path.name}: {message}", title=f"cannot resume from {str(path)!r}")


def check_within(meta: ResumeMeta, end: tuple[str, int], path: Path) -> None:
    """A position past the configured end of training is refused (it would train nothing, silently)."""
    unit, limit = end
    done = meta.epoch if unit == "epoch" else meta.iter
    if done > limit or (unit == "epoch" and done == limit and meta.inner_iter > 0):
        raise refusal(
            path,
            f"the checkpoint is past the configured end of training ({unit} {done} done, "
            f"train_cfg.max_{unit}s={limit}): give the checkpoint of this run, or a longer train_cfg.max_{unit}s",
        )


def check_rng(rng: Any, path: Path) -> None:
    """Try the checkpoint's RNG streams, then put the current ones back: refuse a malformed one."""
    if rng is None:
        return
    current = capture_rng()
    try:
        if not isinstance(rng, Mapping):
            raise TypeError(f"a {type(rng).__name__}, not a mapping")
        restore_rng(rng)
    except Exception as e:
        raise refusal(path, f"its RNG state ('rng') is malformed: {type(e).__name__}: {e}") from None
    finally:
        restore_rng(current)


def check_schedulers(states: Any, slots: Sequence[ScheduleSlot], path: Path) -> None:
    if not isinstance(states, list) or not all(isinstance(s, Mapping) for s in states):
        raise refusal(path, "its schedules ('param_schedulers') are malformed: not a list of mappings")
    if len(states) != len(slots):
        raise refusal(path, f"it holds {len(states)} schedules, the config {len(slots)} (param_scheduler)")


def restore_hooks(hooks: Sequence[Hook], saved: Any, path: Path) -> None:
    """Each hook's state, first: a malformed one is refused before the run's own state is touched."""
    if not isinstance(saved, Mapping):
        raise refusal(path, f"its hook state ('hooks') is a {type(saved).__name__}, not a mapping")
    for hook in hooks:
        name = type(hook).__name__
        if name not in saved:
            continue
        try:
            if not isinstance(saved[name], Mapping):
                raise TypeError(f"a {type(saved[name]).__name__}, not a mapping")
            hook.load_state_dict(saved[name])
        except ConfigError as e:
            raise ConfigError(e.problems, title=f"cannot resume from {str(path)!r}") from None
        except Exception as e:
            raise refusal(path, f"the state of {name} is malformed: {type(e).__name__}: {e}") from None
