"""The custom hooks MMEngine users reach for: EMA, early stopping, cache emptying, buffer sync, profiling.

Each is a typed class; in a config, ``custom_hooks: [{type: EMAHook, momentum: 0.001}]``, its
arguments are checked against ``__init__``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from typedrunner.parts.evaluator import infer_rule
from typedrunner.parts.hooks.base import Event, Hook, Priority, RunView

__all__ = ["EMAHook", "EarlyStoppingHook", "EmptyCacheHook", "ProfilerHook", "SyncBuffersHook"]


class EMAHook(Hook):
    """An exponential moving average of the weights (``torch.optim.swa_utils.AveragedModel``),
    updated every ``interval`` iterations from ``begin_iter``; validation and testing use it, and it
    is saved and resumed with the checkpoints.

    ``momentum`` is MMEngine's: ``ema = (1 - momentum) * ema + momentum * weights``.
    """

    priority = Priority.NORMAL

    def __init__(
        self, momentum: float = 0.0002, interval: int = 1, begin_iter: int = 0, update_buffers: bool = False
    ) -> None:
        if not 0 < momentum < 1:
            raise ValueError(f"momentum must be in (0, 1), got {momentum}")
        if interval < 1 or begin_iter < 0:
            raise ValueError("interval must be >= 1 and begin_iter >= 0")
        self.momentum = momentum
        self.interval = interval
        self.begin_iter = begin_iter
        self.update_buffers = update_buffers
        self.ema: AveragedModel | None = None
        self._pending: Mapping[str, Any] | None = None
        self._swapped: list[Tensor] | None = None

    def _ensure(self, runner: RunView) -> AveragedModel:
        if self.ema is None:
            self.ema = AveragedModel(
                runner.model,
                multi_avg_fn=get_ema_multi_avg_fn(1.0 - self.momentum),  # type: ignore[no-untyped-call]
                use_buffers=self.update_buffers,
            )
            if self._pending is not None:
                self.ema.load_state_dict(dict(self._pending))
                self._pending = None
        return self.ema

    def before_run(self, runner: RunView) -> None:
        self._ensure(runner)

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        done = runner.iter + 1
        if runner.iter >= self.begin_iter and done % self.interval == 0:
            self._ensure(runner).update_parameters(runner.model)

    def _swap(self, runner: RunView) -> None:
        """Exchange the model's and the average's weights (twice restores them)."""
        ema = self._ensure(runner)
        pairs: list[tuple[Tensor, Tensor]] = list(zip(runner.model.parameters(), ema.module.parameters(), strict=True))
        if self.update_buffers:
            pairs += list(zip(runner.model.buffers(), ema.module.buffers(), strict=True))
        with torch.no_grad():
            for own, avg in pairs:
                saved = own.detach().clone()
                own.copy_(avg)
                avg.copy_(saved)

    def before_val_epoch(self, runner: RunView) -> None:
        self._swap(runner)

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self._swap(runner)

    def before_test_epoch(self, runner: RunView) -> None:
        self._swap(runner)

    def after_test_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self._swap(runner)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.ema.state_dict()) if self.ema is not None else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.ema is not None:
            self.ema.load_state_dict(dict(state))
        else:
            self._pending = state


class EarlyStoppingHook(Hook):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience`` validations,
    or as soon as it reaches ``stopping_threshold``; a non-finite value stops at once."""

    priority = Priority.LOWEST

    def __init__(
        self,
        monitor: str,
        rule: Literal["greater", "less"] | None = None,
        min_delta: float = 0.1,
        patience: int = 5,
        stopping_threshold: float | None = None,
        check_finite: bool = True,
    ) -> None:
        if patience < 1 or min_delta < 0:
            raise ValueError("patience must be >= 1 and min_delta >= 0")
        self.monitor = monitor
        self.rule = rule or infer_rule(monitor)
        self.min_delta = min_delta
        self.patience = patience
        self.stopping_threshold = stopping_threshold
        self.check_finite = check_finite
        self.best: float | None = None
        self.wait = 0

    def _better(self, value: float, than: float) -> bool:
        return value > than + self.min_delta if self.rule == "greater" else value < than - self.min_delta

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        if not metrics or self.monitor not in metrics:
            return
        value = float(metrics[self.monitor])
        reason = None
        if self.check_finite and not math.isfinite(value):
            reason = f"{self.monitor} is {value}"
        elif self.stopping_threshold is not None and (
            value >= self.stopping_threshold if self.rule == "greater" else value <= self.stopping_threshold
        ):
            reason = f"{self.monitor}={value} reached the stopping threshold {self.stopping_threshold}"
        elif self.best is None or self._better(value, self.best):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                reason = f"{self.monitor} has not improved by {self.min_delta} for {self.patience} validations"
        if reason is not None:
            runner.logger.info("early stopping", reason=reason, epoch=runner.epoch, iter=runner.iter)
            runner.request_stop()

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        best, wait = state.get("best"), state.get("wait", 0)
        if best is not None and (isinstance(best, bool) or not isinstance(best, int | float)):
            raise TypeError(f"best is {best!r}: a number or None (no validation yet) was expected")
        if isinstance(wait, bool) or not isinstance(wait, int) or wait < 0:
            raise TypeError(f"wait is {wait!r}: a count of validations (an int >= 0) was expected")
        self.best = None if best is None else float(best)
        self.wait = wait


class EmptyCacheHook(Hook):
    """Release the CUDA allocator's cached memory after each epoch (and, if asked, before each
    epoch or after each iteration). Does nothing without CUDA."""

    priority = Priority.NORMAL

    def __init__(self, before_epoch: bool = False, after_epoch: bool = True, after_iter: bool = False) -> None:
        self.before_epoch = before_epoch
        self.after_epoch = after_epoch
        self.after_iter = after_iter

    def events(self) -> set[Event]:
        if not torch.cuda.is_available():
            return set()
        wanted = {
            Event.BEFORE_TRAIN_EPOCH: self.before_epoch,
            Event.AFTER_TRAIN_EPOCH: self.after_epoch,
            Event.AFTER_TRAIN_ITER: self.after_iter,
            Event.AFTER_VAL_EPOCH: self.after_epoch,
        }
        return {event for event, on in wanted.items() if on}

    def _empty(self) -> None:
        torch.cuda.empty_cache()

    def before_train_epoch(self, runner: RunView) -> None:
        self._empty()

    def after_train_epoch(self, runner: RunView) -> None:
        self._empty()

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        self._empty()

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self._empty()


class SyncBuffersHook(Hook):
    """Average the model's buffers (e.g. BatchNorm statistics) across processes after each epoch.
    In a single process there is nothing to synchronise and it is never called."""

    priority = Priority.NORMAL

    def events(self) -> set[Event]:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        return {Event.AFTER_TRAIN_EPOCH} if distributed else set()

    def after_train_epoch(self, runner: RunView) -> None:
        world = torch.distributed.get_world_size()
        for buffer in runner.model.buffers():
            if buffer.is_floating_point():
                torch.distributed.all_reduce(buffer)
                buffer.div_(world)


class ProfilerHook(Hook):
    """Profile the first ``profile_times`` epochs (or iterations) with ``torch.profiler`` and write a
    Chrome trace to ``work_dir/profiler/trace.json`` (open it in chrome://tracing or Perfetto)."""

    priority = Priority.VERY_LOW

    def __init__(
        self,
        by_epoch: bool = True,
        profile_times: int = 1,
        activity_with_cpu: bool = True,
        activity_with_cuda: bool = False,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        with_flops: bool = False,
    ) -> None:
        if profile_times < 1:
            raise ValueError("profile_times must be >= 1")
        self.by_epoch = by_epoch
        self.profile_times = profile_times
        activities = [torch.profiler.ProfilerActivity.CPU] if activity_with_cpu else []
        if activity_with_cuda:
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self.activities = activities
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.with_flops = with_flops
        self.profiler: torch.profiler.profile | None = None
        self.trace_path: str | None = None

    def before_train(self, runner: RunView) -> None:
        self.profiler = torch.profiler.profile(
            activities=self.activities,
            record_shapes=self.record_shapes,
            profile_memory=self.profile_memory,
            with_stack=self.with_stack,
            with_flops=self.with_flops,
        )
        self.profiler.start()

    def _finish(self, runner: RunView) -> None:
        if self.profiler is None:
            return
        self.profiler.stop()
        directory = runner.work_dir / "profiler"
        directory.mkdir(parents=True, exist_ok=True)
        self.trace_path = str(directory / "trace.json")
        self.profiler.export_chrome_trace(self.trace_path)
        self.profiler = None
        runner.logger.info("profiler trace written", path=self.trace_path)

    def after_train_epoch(self, runner: RunView) -> None:
        if self.by_epoch and runner.epoch + 1 >= self.profile_times:
            self._finish(runner)

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        if not self.by_epoch and runner.iter + 1 >= self.profile_times:
            self._finish(runner)

    def after_train(self, runner: RunView) -> None:
        self._finish(runner)

    def events(self) -> set[Event]:
        events = super().events()
        events.discard(Event.AFTER_TRAIN_ITER if self.by_epoch else Event.AFTER_TRAIN_EPOCH)
        return events
