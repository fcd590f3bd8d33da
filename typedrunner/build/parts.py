"""Configs become parts: the model, the dataloaders, the optimizer wrappers and the evaluators."""

from __future__ import annotations

import functools
from collections.abc import Sized
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader as TorchDataLoader
from torch.utils.data import Dataset, Sampler, Subset

from typedrunner import config as C
from typedrunner.config.data import DataLoaderField
from typedrunner.config.evaluator import METRIC_METHODS, MetricShape, missing_metric_methods
from typedrunner.config.optim import build_optimizer
from typedrunner.errors import did_you_mean, refuse
from typedrunner.parts.data import DefaultSampler
from typedrunner.parts.evaluator import Evaluator, TorchMetricAdapter, is_torchmetric
from typedrunner.parts.model import BaseDataPreprocessor, BaseModel
from typedrunner.parts.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict, param_groups
from typedrunner.parts.schedulers import ScheduleSlot, build_slots
from typedrunner.registry.lazy import Lazy

__all__ = [
    "build_data_preprocessor",
    "build_dataloader",
    "build_evaluator",
    "build_model",
    "build_object",
    "build_optim_wrapper",
    "build_optim_wrappers",
    "build_schedules",
    "eval_fp16",
    "lr_scale",
]


def build_object(spec: Any, path: str, expected: type[Any], *args: Any) -> Any:
    """``spec`` built (a ``Lazy``) or taken as is (a built object), checked to be an ``expected``."""
    obj = spec.build(*args) if isinstance(spec, Lazy) else spec
    if not isinstance(obj, expected):
        raise refuse(path, f"built a {type(obj).__name__}, expected a {expected.__module__}.{expected.__qualname__}")
    return obj


def build_model(spec: Any) -> nn.Module:
    model: nn.Module = build_object(spec, "model", nn.Module)
    return model


def build_dataloader(
    cfg: DataLoaderField,
    path: str,
    seed: int | None,
    pin_memory_ok: bool,
    start_method: str | None = None,
    batches: int | None = None,
    in_order: bool = False,
) -> TorchDataLoader[Any]:
    """A torch ``DataLoader`` from its config (a built one is returned as is). ``batches``: over the
    samples of the first that many batches only (``debug.limit_*``); ``in_order``: unshuffled."""
    if isinstance(cfg, TorchDataLoader):  # the manual style: a built torch DataLoader, used as is
        if batches is not None or in_order:
            raise refuse(path, "debug's batch limits need a dataloader config, not a built torch DataLoader")
        return cfg
    if not isinstance(cfg, C.DataLoader):
        raise refuse(path, f"expected a dataloader config or a built torch DataLoader, not {type(cfg).__name__}")
    dataset: Dataset[Any] = build_object(cfg.dataset, f"{path}.dataset", Dataset)
    if batches is not None:
        if not isinstance(dataset, Sized):
            raise refuse(f"{path}.dataset", "debug's batch limits need a dataset with a length")
        dataset = Subset(dataset, range(min(len(dataset), batches * cfg.batch_size)))
    sampler_cfg = cfg.sampler_config()
    sampler: Sampler[int]
    if isinstance(sampler_cfg, C.DefaultSampler):
        sampler_seed = sampler_cfg.seed if sampler_cfg.seed is not None else seed
        shuffle = sampler_cfg.shuffle and not in_order
        sampler = DefaultSampler(dataset, shuffle=shuffle, seed=sampler_seed, round_up=sampler_cfg.round_up)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    elif in_order:
        raise refuse(f"{path}.sampler", "debug.overfit_batches needs the DefaultSampler (it turns shuffling off)")
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
            raise refuse(f"optim_wrapper.{name}", f"the model has no sub-module {name!r}{did_you_mean(name, children)}")
        wrappers[name] = build_optim_wrapper(sub_cfg, sub_module, device, lr_scale, f"optim_wrapper.{name}")
    if not isinstance(model, BaseModel) or type(model).train_step is BaseModel.train_step:
        raise refuse(
            "optim_wrapper",
            "has several optimizers, so the model must be a BaseModel that defines "
            "train_step(data, optim_wrapper) and steps each one",
        )
    return OptimWrapperDict(wrappers)


def _optimizer(cfg: C.OptimWrapper, params: Any, path: str) -> torch.optim.Optimizer:
    """The optimizer; torch's own check of its arguments (``lr: -1`` for a generic optimizer, whose
    schema is its signature) is reported at the config path, not raised from deep inside torch."""
    try:
        return build_optimizer(cfg.optimizer, params)
    except (ValueError, TypeError) as e:
        name = cfg.optimizer.name if isinstance(cfg.optimizer, Lazy) else cfg.optimizer.type
        raise refuse(f"{path}.optimizer", f"{name} refused its arguments: {e}") from e


def build_optim_wrapper(
    cfg: C.OptimWrapper, model: nn.Module, device: torch.device, lr_scale: float = 1.0, path: str = "optim_wrapper"
) -> OptimWrapper:
    """The optimizer over the model's trainable parameters (grouped by ``paramwise_cfg``), wrapped."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise refuse("model", "has no trainable parameter: there is nothing to optimize")
    optimizer = _optimizer(cfg, trainable, path)
    if cfg.paramwise_cfg is not None:
        defaults = optimizer.defaults
        groups = param_groups(model, float(defaults["lr"]), float(defaults.get("weight_decay", 0.0)), cfg.paramwise_cfg)
        optimizer = _optimizer(cfg, groups, path)
    if lr_scale != 1.0:
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * lr_scale
    if cfg.type == "OptimWrapper":
        return OptimWrapper(optimizer, cfg.clip_grad, cfg.accumulative_counts, cfg.nonfinite == "skip")
    dtype_name = cfg.dtype or ("float16" if device.type == "cuda" else "bfloat16")
    if dtype_name == "float16" and device.type != "cuda":
        raise refuse(
            "optim_wrapper.dtype", f"float16 mixed precision needs CUDA; this run is on {device.type}: use bfloat16"
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
    """The evaluator: each metric of ``MetricShape`` (``process`` and ``compute_metrics``: typedrunner's or
    MMEngine's ``BaseMetric``, or any class with the two); a ``torchmetrics.Metric`` (built, or by dotted
    path) is adapted."""
    metrics: list[MetricShape] = []
    for i, spec in enumerate(cfg.metrics):
        obj = spec.build() if isinstance(spec, Lazy) else spec
        if is_torchmetric(obj):
            obj = TorchMetricAdapter(obj)
        missing = missing_metric_methods(obj)
        if missing:
            lacks = " and ".join(METRIC_METHODS[name] for name in missing)
            raise refuse(f"{path}.metrics[{i}]", f"built a {type(obj).__name__}, which has no {lacks} method")
        metrics.append(obj)
    return Evaluator(metrics)


def build_data_preprocessor(spec: Any, model: nn.Module, device: torch.device) -> nn.Module:
    """``data_preprocessor`` if configured (it replaces a BaseModel's own), else the model's own, else
    one that moves batches to the device."""
    if spec is not None:
        preprocessor = build_model(spec).to(device)
        if isinstance(model, BaseModel):
            model.data_preprocessor = preprocessor
        return preprocessor
    own = getattr(model, "data_preprocessor", None)
    if isinstance(own, nn.Module):
        return own
    return BaseDataPreprocessor().to(device)


def lr_scale(cfg: C.AutoScaleLR, loader: C.DataLoader | Any, world_size: int = 1) -> float:
    """``auto_scale_lr``: the factor the configured learning rates are multiplied by (the total batch,
    ``world_size x batch_size``, over ``base_batch_size``)."""
    if not cfg.enable or cfg.base_batch_size is None or loader is None:
        return 1.0
    batch_size = loader.batch_size if hasattr(loader, "batch_size") and loader.batch_size else 1
    return float(world_size * batch_size) / cfg.base_batch_size


def eval_fp16(loop: C.ValLoop | C.TestLoop | None, path: str, device: torch.device) -> bool:
    """Whether an evaluation loop runs under float16 autocast (it needs CUDA)."""
    if loop is None or not loop.fp16:
        return False
    if device.type != "cuda":
        raise refuse(f"{path}.fp16", f"float16 autocast needs CUDA; this run is on {device.type}")
    return True


def build_schedules(
    cfg: C.RunnerConfig, wrappers: OptimWrapper | OptimWrapperDict, max_epochs: int, max_iters: int
) -> list[ScheduleSlot]:
    """Every ``param_scheduler`` entry on its optimizer, in its window of the run."""
    slots: list[ScheduleSlot] = []
    for name, path, configs in cfg.scheduler_groups():
        wrapper = wrappers[name] if isinstance(wrappers, OptimWrapperDict) else wrappers
        try:
            slots += build_slots(configs, wrapper.optimizer, max_epochs, max_iters)
        except ValueError as e:
            raise refuse(path, str(e)) from e
    return slots
