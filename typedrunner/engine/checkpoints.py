"""What a checkpoint holds, written and read back: the one place its layout is known.

A checkpoint holds the model, optimizer and schedulers, the loop position (epoch, iteration, position
inside the epoch), every RNG stream (python, numpy, torch, CUDA), each hook's state and the validated
config. Everything is a tensor or a plain Python value, so it loads with ``weights_only=True``.
Restoring it continues the run as if it had never stopped: bit for bit on CPU.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from typedrunner._version import __version__
from typedrunner.config import data as data_cfg
from typedrunner.config.runner import RunnerConfig
from typedrunner.engine.fsdp import is_sharded
from typedrunner.engine.loops import TrainLoop
from typedrunner.engine.resume_checks import (
    ResumeMeta,
    check_rng,
    check_schedulers,
    check_within,
    restore_hooks,
    resume_problems,
)
from typedrunner.engine.rng import capture_rng, restore_rng
from typedrunner.engine.state import Position, RunState
from typedrunner.errors import CheckpointError, ConfigError, refuse
from typedrunner.parts.checkpoint import load_checkpoint, load_model_state, load_optimizer_state
from typedrunner.parts.data import DefaultSampler
from typedrunner.parts.hooks.base import Hook
from typedrunner.parts.optim import AnyOptimWrapper, OptimWrapper
from typedrunner.parts.schedulers import ScheduleSlot
from typedrunner.parts.sharded_checkpoint import SUFFIX, is_sharded_checkpoint, load_into, read_metadata

__all__ = [
    "ResumeMeta",
    "adopt_seed",
    "capture_rng",
    "checkpoint_state",
    "config_diff",
    "find_latest",
    "pointer_text",
    "restore",
    "restore_rng",
    "restore_schedulers",
    "resume_checkpoint",
    "resume_problems",
    "saved_config",
]

# Scheduler state that is position, not configuration: restored from the checkpoint. Everything
# else (milestones, gamma, T_max, ...) comes from the current config, so a changed schedule applies.
_SCHEDULER_POSITION = ("last_epoch", "_step_count", "_last_lr", "_get_lr_called_within_step", "_is_initial")


def pointer_text(path: Path, work_dir: Path) -> str:
    """What ``last_checkpoint`` holds: the checkpoint's path relative to ``work_dir``, so that a copied
    run directory resumes from its own files."""
    return os.path.relpath(path.resolve(), work_dir.resolve())


def _inside(path: Path, directories: Iterable[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(d.resolve()) for d in directories)


def _pointed(pointer: Path) -> Path | None:
    """The existing file the pointer names (relative to its directory), or None when there is no
    pointer or what it holds is not a usable path (too long, a NUL byte, not text)."""
    try:
        if not pointer.is_file():
            return None
        target = Path(pointer.read_text(encoding="utf-8").strip())
        target = target if target.is_absolute() else pointer.parent / target
        return target if target.is_file() or is_sharded_checkpoint(target) else None
    except (OSError, ValueError):
        return None


def find_latest(work_dir: Path, checkpoint_dir: Path | None = None) -> Path | None:
    """The checkpoint ``last_checkpoint`` points at, else the newest ``*.pth`` or ``*.dcp`` directory
    (not a best/published copy).

    The pointer is data read from the run directory: a target outside ``work_dir`` (and the configured
    ``checkpoint_dir``) is ignored."""
    allowed = [work_dir] if checkpoint_dir is None else [work_dir, checkpoint_dir]
    target = _pointed(work_dir / "last_checkpoint")
    if target is not None and _inside(target, allowed):
        return target
    candidates = [
        p
        for p in [*work_dir.glob("*.pth"), *filter(is_sharded_checkpoint, work_dir.glob(f"*{SUFFIX}"))]
        if not p.name.startswith(("best_", ".")) and not p.stem.endswith("_published")
    ]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for i, inner in enumerate(value):
            out.update(_flatten(inner, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


_IGNORED_ON_RESUME = ("work_dir", "resume", "load_from")


def config_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], ignore: Sequence[str] = _IGNORED_ON_RESUME
) -> list[str]:
    """``optim_wrapper.optimizer.lr: 0.001 -> 0.01`` for every path whose value differs (top-level
    keys in ``ignore`` left out)."""
    before, after = _flatten(old), _flatten(new)
    lines = []
    for path in sorted(set(before) | set(after)):
        if path.split(".")[0].split("[")[0] in ignore:
            continue
        if before.get(path, "<absent>") != after.get(path, "<absent>"):
            lines.append(f"{path}: {before.get(path, '<absent>')!r} -> {after.get(path, '<absent>')!r}")
    return lines


def restore_schedulers(
    slots: Sequence[ScheduleSlot],
    states: Sequence[Mapping[str, Any]],
    optimizer: torch.optim.Optimizer | None,
    configured_lrs: Sequence[float] | None,
    done: tuple[int, int] = (0, 0),
) -> None:
    """Put back the schedules. Unchanged config (``configured_lrs`` None): exactly as saved. Changed:
    only their position, keeping the configured schedule and lr, and set the lr it gives there. The
    position is the run's (``done``: epochs and iterations finished) inside each configured window:
    a saved schedule stops at its old window's last step, which a longer window goes past."""
    if len(states) != len(slots):
        raise ValueError(f"the checkpoint has {len(states)} schedules, the config {len(slots)}")
    if configured_lrs is None or optimizer is None:
        for slot, state in zip(slots, states, strict=True):
            slot.load_state_dict(state)
        return
    for group, lr in zip(optimizer.param_groups, configured_lrs, strict=True):
        group["initial_lr"] = lr
        group["lr"] = lr
    for slot, state in zip(slots, states, strict=True):
        if not state.get("opened", True):
            slot.scheduler = None
            continue
        scheduler = slot.scheduler if slot.scheduler is not None else slot.open()
        saved = state.get("state", state)
        position = {k: v for k, v in saved.items() if k in _SCHEDULER_POSITION}
        if not slot.plateau and "last_epoch" in position:
            steps = done[0] if slot.by_epoch else done[1]
            position["last_epoch"] = max(min(steps, slot.end - 1) - slot.begin, 0)
        scheduler.load_state_dict({**scheduler.state_dict(), **position})
    # The lr now is the configured base lr times each open schedule's factor at its position: exact
    # for the schedules with a closed form (a schedule without one keeps the checkpoint's lr).
    bases = [group["initial_lr"] for group in optimizer.param_groups]
    lrs = list(bases)
    for slot in slots:
        closed = getattr(slot.scheduler, "_get_closed_form_lr", None)
        if slot.scheduler is None or closed is None:
            continue
        slot.scheduler.base_lrs = list(bases)
        factors = [value / base if base else 1.0 for value, base in zip(closed(), bases, strict=True)]
        lrs = [lr * f for lr, f in zip(lrs, factors, strict=True)]
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    for slot in slots:
        if slot.scheduler is not None and hasattr(slot.scheduler, "_last_lr"):
            slot.scheduler._last_lr = list(lrs)  # torch keeps get_last_lr() here


def saved_config(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The config a checkpoint was written with (``meta.config``, JSON text): data to compare,
    never built. Text that is not a config's JSON is refused (exit 2), not a traceback."""
    meta = checkpoint.get("meta", {})
    text = meta.get("config") if isinstance(meta, Mapping) else None
    if not isinstance(text, str):
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise refuse(
            "meta.config",
            "is not the JSON of a config (a damaged or crafted checkpoint): resume from another checkpoint",
            text[:80],
            title="the checkpoint cannot be resumed",
        )
    return data


def checkpoint_state(
    position: Position,
    *,
    seed: int,
    cfg: RunnerConfig,
    model: nn.Module,
    hooks: Sequence[Hook],
    optim_wrapper: AnyOptimWrapper | None,
    schedulers: Sequence[ScheduleSlot] | None,
    extra_meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to resume exactly: weights, optimizer, schedulers, the position (one typed
    record, flat in ``meta`` as MMEngine has it), every RNG stream, hook state and the validated config.
    ``optim_wrapper`` / ``schedulers`` None: left out."""
    state: dict[str, Any] = {
        "meta": {
            **position.model_dump(),
            "seed": seed,
            "typedrunner_version": __version__,
            "torch_version": str(torch.__version__),
            "config": json.dumps(cfg.model_dump(mode="json")),
            **(extra_meta or {}),
        },
        "state_dict": model.state_dict(),
        "rng": capture_rng(),
        "hooks": {type(h).__name__: h.state_dict() for h in hooks if h.state_dict()},
    }
    if optim_wrapper is not None:
        state["optimizer"] = optim_wrapper.state_dict()
    if schedulers is not None:
        state["param_schedulers"] = [slot.state_dict() for slot in schedulers]
    return state


def resume_checkpoint(
    cfg: RunnerConfig, work_dir: Path, model: nn.Module, optim_wrapper: AnyOptimWrapper | None
) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint ``resume`` continues from (``load_from``, else the latest in work_dir), loaded
    and checked against the model and optimizer; None when ``resume: auto`` finds nothing."""
    spec, hook = cfg.load_from, cfg.default_hooks.checkpoint
    out_dir = Path(hook.out_dir) if hook is not None and hook.out_dir else None
    path = Path(spec.path) if spec is not None else find_latest(work_dir, out_dir)
    if path is None:
        if cfg.resume == "auto":
            return None
        raise refuse(
            "resume",
            f"true, but {str(work_dir)!r} holds no checkpoint to resume: give work_dir of the run to continue, "
            "load_from: <checkpoint>, or resume: auto (resume if there is a checkpoint, else start)",
        )
    if is_sharded_checkpoint(path):
        return path, _resume_sharded(path, model, optim_wrapper)
    try:
        # on the CPU: load_state_dict moves weights and optimizer state to their parameters' device,
        # and the RNG states must stay CPU tensors
        checkpoint = load_checkpoint(path, map_location="cpu")
    except CheckpointError as e:
        raise refuse("resume", str(e)) from e
    problems = resume_problems(model, optim_wrapper, checkpoint, path)
    if problems:
        raise ConfigError(problems, title=f"cannot resume from {str(path)!r}")
    return path, checkpoint


def _resume_sharded(path: Path, model: nn.Module, optim_wrapper: AnyOptimWrapper | None) -> dict[str, Any]:
    """A sharded (FSDP2) checkpoint read for resume, into this run's layout (sharded or not, any
    world size): the model's keys and shapes are checked against its metadata first."""
    if optim_wrapper is not None and not isinstance(optim_wrapper, OptimWrapper):
        raise refuse("resume", f"{path.name} is a sharded checkpoint of one optimizer; this run has several")
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata  # 0.3 s: FSDP2 runs only

    try:
        metadata = read_metadata(path)
        saved = {
            key.removeprefix("state_dict."): torch.empty(item.size, device="meta")
            for key, item in metadata.state_dict_metadata.items()
            if isinstance(item, TensorStorageMetadata) and key.startswith("state_dict.")
        }
        problems = resume_problems(model, None, {"state_dict": saved}, path)
        if problems:
            raise ConfigError(problems, title=f"cannot resume from {str(path)!r}")
        return load_into(path, model, optim_wrapper.optimizer if optim_wrapper is not None else None)
    except CheckpointError as e:
        raise refuse("resume", str(e)) from e


def restore(
    checkpoint: Mapping[str, Any],
    path: Path,
    *,
    cfg: RunnerConfig,
    state: RunState,
    model: nn.Module,
    hooks: Sequence[Hook],
    optim_wrapper: AnyOptimWrapper | None,
    schedulers: Sequence[ScheduleSlot],
    train_loop: TrainLoop | None = None,
) -> tuple[ResumeMeta, list[str]]:
    """Put a checked checkpoint back into the run, exactly; return its meta and the config changes
    since it was written (``path: old -> new``). Everything read is checked before anything of the
    run is restored: a malformed checkpoint, or one past the end of ``train_loop``, is a ``ConfigError``."""
    meta = ResumeMeta.from_meta(checkpoint.get("meta"), str(path))
    if train_loop is not None:
        by_epoch = train_loop.by_epoch
        check_within(meta, ("epoch", train_loop.max_epochs) if by_epoch else ("iter", train_loop.max_iters), path)
    check_rng(checkpoint.get("rng"), path)
    check_schedulers(checkpoint.get("param_schedulers", []), schedulers, path)
    restore_hooks(hooks, checkpoint.get("hooks", {}), path)
    changes = config_diff(saved_config(checkpoint), cfg.model_dump(mode="json"))
    configured_lrs = [group["lr"] for group in optim_wrapper.param_groups] if optim_wrapper else []
    if is_sharded_checkpoint(path):  # in the layout of get_model/optimizer_state_dict (FQN keys)
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        set_model_state_dict(model, checkpoint["state_dict"])
        if isinstance(optim_wrapper, OptimWrapper):
            set_optimizer_state_dict(model, optim_wrapper.optimizer, checkpoint["optimizer"])
    else:  # a .pth: into a model FSDP2 shards too (every rank keeps its shard)
        load_model_state(model, checkpoint["state_dict"])
        if isinstance(optim_wrapper, OptimWrapper) and is_sharded(model):
            load_optimizer_state(model, optim_wrapper.optimizer, checkpoint["optimizer"])
        elif optim_wrapper is not None:
            optim_wrapper.load_state_dict(checkpoint["optimizer"])
    restore_schedulers(
        schedulers,
        checkpoint.get("param_schedulers", []),
        optim_wrapper.optimizer if isinstance(optim_wrapper, OptimWrapper) else None,
        configured_lrs if changes else None,
        (meta.epoch, meta.iter),
    )
    state.restore(meta)
    if optim_wrapper is not None:
        optim_wrapper.calls = state.iter
    if "rng" in checkpoint:
        restore_rng(checkpoint["rng"])
    return meta, changes


def adopt_seed(cfg: RunnerConfig, loaders: Sequence[Any], saved: int | None, current: int) -> int:
    """The seed a resumed run continues with: with ``randomness.seed`` unset, the checkpoint's (the
    one the interrupted run drew), as MMEngine does; the samplers that took the run's seed take it
    too, so the data order after resume is the interrupted run's (the loaders' own generators are
    reseeded from the run's seed at each pass). ``loaders``: train, val, test (None where absent)."""
    if cfg.randomness.seed is not None or saved is None:
        return current
    specs = (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader)
    for spec, loader in zip(specs, loaders, strict=True):
        if not isinstance(spec, data_cfg.DataLoader) or loader is None:
            continue
        sampler_cfg, sampler = spec.sampler_config(), getattr(loader, "sampler", None)
        own_seed = isinstance(sampler_cfg, data_cfg.DefaultSampler) and sampler_cfg.seed is not None
        if isinstance(sampler, DefaultSampler) and not own_seed:
            sampler.seed = saved
    return saved
