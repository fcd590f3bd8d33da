"""The default hooks (``default_hooks``): each is built from its schema object, so its settings and
their defaults are written once, in ``typedrunner.config.hooks``."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from typedrunner.config import hooks as schema
from typedrunner.config.logging import LogProcessor
from typedrunner.parts.hooks.base import Event, Hook, Priority, RunView
from typedrunner.parts.schedulers import ScheduleSlot

__all__ = ["DistSamplerSeedHook", "IterTimerHook", "LoggerHook", "ParamSchedulerHook", "RuntimeInfoHook"]


class RuntimeInfoHook(Hook):
    """Logs the run's hooks, per event and in call order, when the run starts (at DEBUG level)."""

    config_schema: ClassVar = schema.RuntimeInfoHook
    priority = Priority.VERY_HIGH

    def __init__(self, cfg: schema.RuntimeInfoHook | None = None) -> None:
        self.cfg = cfg or schema.RuntimeInfoHook()

    def before_run(self, runner: RunView) -> None:
        for event, names in runner.hooks.order().items():
            runner.logger.debug("hooks", on=event, order=" > ".join(names))


class IterTimerHook(Hook):
    """Measures each training iteration's time and the part spent waiting for data, over the last
    ``log_processor.window_size`` iterations."""

    config_schema: ClassVar = schema.IterTimerHook
    priority = Priority.NORMAL

    def __init__(self, cfg: schema.IterTimerHook | None = None, log_processor: LogProcessor | None = None) -> None:
        self.cfg = cfg or schema.IterTimerHook()
        window = (log_processor or LogProcessor()).window_size
        self.iter_times: deque[float] = deque(maxlen=window)
        self.data_times: deque[float] = deque(maxlen=window)
        self._last = 0.0

    def before_train_epoch(self, runner: RunView) -> None:
        self._last = time.perf_counter()

    def before_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None:
        self.data_times.append(time.perf_counter() - self._last)

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        now = time.perf_counter()
        self.iter_times.append(now - self._last)
        self._last = now

    def averages(self) -> dict[str, float]:
        """``time`` and ``data_time`` averaged over the window (empty before the first iteration)."""
        if not self.iter_times:
            return {}
        return {
            "time": sum(self.iter_times) / len(self.iter_times),
            "data_time": sum(self.data_times) / max(len(self.data_times), 1),
        }


class DistSamplerSeedHook(Hook):
    """Tells the sampler the epoch, so each epoch is shuffled differently (and reproducibly)."""

    config_schema: ClassVar = schema.DistSamplerSeedHook
    priority = Priority.NORMAL

    def __init__(self, cfg: schema.DistSamplerSeedHook | None = None) -> None:
        self.cfg = cfg or schema.DistSamplerSeedHook()

    def before_train_epoch(self, runner: RunView) -> None:
        sampler = getattr(runner.train_dataloader, "sampler", None)
        set_epoch = getattr(sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(runner.epoch)


class ParamSchedulerHook(Hook):
    """Steps the parameter schedules: per epoch, per iteration, or on a validation metric (plateau)."""

    config_schema: ClassVar = schema.ParamSchedulerHook
    priority = Priority.LOW

    def __init__(self, cfg: schema.ParamSchedulerHook | None = None, slots: Sequence[ScheduleSlot] = ()) -> None:
        self.cfg = cfg or schema.ParamSchedulerHook()
        self.plateau = [s for s in slots if s.plateau]
        self.by_epoch = [s for s in slots if s.by_epoch and not s.plateau]
        self.by_iter = [s for s in slots if not s.by_epoch and not s.plateau]

    def events(self) -> set[Event]:
        events = super().events()
        if not self.by_iter:
            events.discard(Event.AFTER_TRAIN_ITER)
        if not self.plateau:
            events.discard(Event.AFTER_VAL_EPOCH)
        return events

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        done = runner.iter + 1
        for slot in self.by_iter:
            slot.advance(done)

    def after_train_epoch(self, runner: RunView) -> None:
        done = runner.epoch + 1
        for slot in self.by_epoch:
            slot.advance(done)

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        for slot in self.plateau:
            slot.observe(metrics or {}, runner.epoch if slot.by_epoch else runner.iter)


class LoggerHook(Hook):
    """Logs training scalars every ``interval`` iterations (averaged over ``log_processor.window_size``
    iterations) and every validation's and test's metrics."""

    config_schema: ClassVar = schema.LoggerHook
    priority = Priority.BELOW_NORMAL

    def __init__(
        self,
        cfg: schema.LoggerHook | None = None,
        log_processor: LogProcessor | None = None,
        timer: IterTimerHook | None = None,
    ) -> None:
        self.cfg = cfg or schema.LoggerHook()
        self.interval = self.cfg.interval
        self.ignore_last = self.cfg.ignore_last
        self.window: deque[Mapping[str, Tensor]] = deque(maxlen=(log_processor or LogProcessor()).window_size)
        self.timer = timer

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        if outputs is not None:
            self.window.append(outputs)
        inner = batch_idx + 1
        if inner % self.interval != 0 and (self.ignore_last or inner != runner.iters_per_epoch):
            return
        # The only host sync of the loop: one stack + item per logged key, every `interval` iterations.
        keys = self.window[0].keys() if self.window else ()
        values = {key: torch.stack([o[key] for o in self.window]).float().mean().item() for key in keys}
        optim_wrapper = runner.optim_wrapper
        scalars: dict[str, float] = {}
        lrs = optim_wrapper.get_lr() if optim_wrapper is not None else []
        if isinstance(lrs, dict):
            scalars.update({f"lr_{name}": group_lrs[0] for name, group_lrs in lrs.items()})
        elif lrs:
            scalars["lr"] = lrs[0]
        scalars.update(values)
        times = self.timer.averages() if self.timer is not None else {}
        if times:
            scalars.update(times)
            scalars["eta_s"] = round(times["time"] * (runner.max_iters - runner.iter - 1), 1)
        # MMEngine's `memory`: peak MB since the last log, when the run uses CUDA (0 allocated: it does not)
        if torch.cuda.is_available() and torch.cuda.memory_allocated() > 0:
            scalars["memory"] = float(torch.cuda.max_memory_allocated() // 2**20)
            torch.cuda.reset_peak_memory_stats()
        grad_norm = optim_wrapper.last_grad_norm if optim_wrapper is not None else None
        if grad_norm is not None:
            scalars["grad_norm"] = float(grad_norm.item())
        runner.logger.scalars(
            "train",
            epoch=runner.epoch + 1,
            iter=inner,
            iters_per_epoch=runner.iters_per_epoch,
            step=runner.iter + 1,
            values=scalars,
        )

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        runner.logger.scalars(
            "val", epoch=runner.epoch, iter=None, iters_per_epoch=None, step=runner.iter, values=dict(metrics or {})
        )

    def after_test_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        runner.logger.scalars(
            "test", epoch=runner.epoch, iter=None, iters_per_epoch=None, step=runner.iter, values=dict(metrics or {})
        )
