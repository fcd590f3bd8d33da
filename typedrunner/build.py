"""The one place where validated configs become objects."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import Dataset, Sampler

from typedrunner import config as C
from typedrunner.config.data import DataLoaderField
from typedrunner.config.optim import build_optimizer
from typedrunner.data import DefaultSampler
from typedrunner.errors import ConfigError, Problem, did_you_mean
from typedrunner.evaluator import BaseMetric, Evaluator, TorchMetricAdapter, is_torchmetric
from typedrunner.hooks import (
    CheckpointHook,
    DistSamplerSeedHook,
    Hook,
    IterTimerHook,
    LoggerHook,
    ParamSchedulerHook,
    RuntimeInfoHook,
)
from typedrunner.lazy import Lazy
from typedrunner.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict, param_groups

__all__ = [
    "build_dataloader",
    "build_default_hooks",
    "build_evaluator",
    "build_hook",
    "build_model",
    "build_optim_wrapper",
    "build_optim_wrappers",
]


def _build(spec: Any, path: str, expected: type[Any], *args: Any) -> Any:
    obj = spec.build(*args) if isinstance(spec, Lazy) else spec
    if not isinstance(obj, expected):
        raise ConfigError(
            [Problem(path, f"built a {type(obj).__name__}, expected a {expected.__module__}.{expected.__qualname__}")]
        )
    return obj


def build_model(spec: Any) -> nn.Module:
    model: nn.Module = _build(spec, "model", nn.Module)
    return model


def build_dataloader(
    cfg: DataLoaderField, path: str, seed: int | None, pin_memory_ok: bool, start_method: str | None = None
) -> TorchDataLoader[Any]:
    """A torch ``DataLoader`` from its config (a built one is returned as is)."""
    if isinstance(cfg, TorchDataLoader):
        return cfg
    assert isinstance(cfg, C.DataLoader)  # the field is a config or a built DataLoader
    dataset: Dataset[Any] = _build(cfg.dataset, f"{path}.dataset", Dataset)
    sampler_cfg = cfg.sampler_config()
    sampler: Sampler[int]
    if isinstance(sampler_cfg, C.DefaultSampler):
        sampler_seed = sampler_cfg.seed if sampler_cfg.seed is not None else seed
        sampler = DefaultSampler(dataset, shuffle=sampler_cfg.shuffle, seed=sampler_seed, round_up=sampler_cfg.round_up)  # type: ignore[arg-type]
    elif isinstance(sampler_cfg, Lazy):
        sampler = sampler_cfg.build(dataset)
    else:
        sampler = sampler_cfg
    collate = functools.partial(cfg.collate_fn.target, **cfg.collate_fn.kwargs)
    return TorchDataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.num_workers,
        pin_memory=cfg.pin_memory and pin_memory_ok,
        persistent_workers=cfg.persistent_workers,
        drop_last=cfg.drop_last,
        prefetch_factor=cfg.prefetch_factor,
        timeout=cfg.timeout,
        generator=torch.Generator(),  # reseeded per pass by data.start_pass: no draw from the global RNG
        multiprocessing_context=start_method if cfg.num_workers > 0 else None,
    )


def build_optim_wrappers(
    cfg: C.OptimWrapper | dict[str, C.OptimWrapper], model: nn.Module, device: torch.device, lr_scale: float = 1.0
) -> OptimWrapper | OptimWrapperDict:
    """One wrapper over the model, or one per named sub-module (``{generator: {...}, ...}``)."""
    if not isinstance(cfg, dict):
        return build_optim_wrapper(cfg, model, device, lr_scale)
    wrappers = {}
    for name, sub_cfg in cfg.items():
        sub_module = getattr(model, name, None)
        if not isinstance(sub_module, nn.Module):
            children = [n for n, _ in model.named_children()]
            raise ConfigError(
                [
                    Problem(
                        f"optim_wrapper.{name}", f"the model has no sub-module {name!r}{did_you_mean(name, children)}"
                    )
                ]
            )
        wrappers[name] = build_optim_wrapper(sub_cfg, sub_module, device, lr_scale)
    return OptimWrapperDict(wrappers)


def build_optim_wrapper(
    cfg: C.OptimWrapper, model: nn.Module, device: torch.device, lr_scale: float = 1.0
) -> OptimWrapper:
    """The optimizer over the model's trainable parameters (grouped by ``paramwise_cfg``), wrapped."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ConfigError([Problem("model", "has no trainable parameter: there is nothing to optimize")])
    optimizer = build_optimizer(cfg.optimizer, trainable)
    if cfg.paramwise_cfg is not None:
        defaults = optimizer.defaults
        groups = param_groups(model, float(defaults["lr"]), float(defaults.get("weight_decay", 0.0)), cfg.paramwise_cfg)
        optimizer = build_optimizer(cfg.optimizer, groups)
    if lr_scale != 1.0:
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * lr_scale
    if cfg.type == "OptimWrapper":
        return OptimWrapper(optimizer, cfg.clip_grad, cfg.accumulative_counts, cfg.nonfinite == "skip")
    dtype_name = cfg.dtype or ("float16" if device.type == "cuda" else "bfloat16")
    if dtype_name == "float16" and device.type != "cuda":
        raise ConfigError(
            [
                Problem(
                    "optim_wrapper.dtype",
                    f"float16 mixed precision needs CUDA; this run is on {device.type}: use bfloat16",
                )
            ]
        )
    return AmpOptimWrapper(
        optimizer,
        device,
        getattr(torch, dtype_name),
        cfg.loss_scale,
        cfg.clip_grad,
        cfg.accumulative_counts,
        cfg.nonfinite == "skip",
    )


def build_evaluator(cfg: C.Evaluator, path: str) -> Evaluator:
    """The evaluator; a ``torchmetrics.Metric`` (built, or by dotted path) is adapted to ``BaseMetric``."""
    metrics = []
    for i, spec in enumerate(cfg.metrics):
        obj = spec.build() if isinstance(spec, Lazy) else spec
        metrics.append(
            _build(TorchMetricAdapter(obj) if is_torchmetric(obj) else obj, f"{path}.metrics[{i}]", BaseMetric)
        )
    return Evaluator(metrics)


def build_hook(spec: Any, path: str) -> Hook:
    hook: Hook = _build(spec, path, Hook)
    if isinstance(spec, Lazy) and spec.meta.get("priority") is not None:
        hook.priority = spec.meta["priority"]
    return hook


def build_default_hooks(cfg: C.DefaultHooks, log_processor: C.LogProcessor) -> list[Hook]:
    hooks: list[Hook] = []
    if cfg.runtime_info is not None:
        hooks.append(RuntimeInfoHook())
    if cfg.timer is not None:
        hooks.append(IterTimerHook(window=log_processor.window_size))
    if cfg.sampler_seed is not None:
        hooks.append(DistSamplerSeedHook())
    if cfg.logger is not None:
        hooks.append(LoggerHook(cfg.logger.interval, cfg.logger.ignore_last, log_processor.window_size))
    if cfg.param_scheduler is not None:
        hooks.append(ParamSchedulerHook())
    if cfg.checkpoint is not None:
        c = cfg.checkpoint
        rules = c.rule if isinstance(c.rule, list) else [c.rule] * len(c.best_keys())
        hooks.append(
            CheckpointHook(
                interval=c.interval,
                by_epoch=c.by_epoch,
                save_begin=c.save_begin,
                save_last=c.save_last,
                max_keep_ckpts=c.max_keep_ckpts,
                save_optimizer=c.save_optimizer,
                save_param_scheduler=c.save_param_scheduler,
                save_best=c.best_keys(),
                rules=rules,
                out_dir=c.out_dir,
                filename_tmpl=c.filename_tmpl,
                published_keys=c.published_keys,
            )
        )
    return hooks
