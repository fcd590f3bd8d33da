"""Hooks: one typed method per event, dispatched only to the hooks that override it.

Event names, signatures and priorities are MMEngine's, so a user's hook ports unchanged.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from typedrunner.checkpoint import load_checkpoint

if TYPE_CHECKING:
    from typedrunner.runner import Runner
    from typedrunner.schedulers import ScheduleSlot

__all__ = [
    "EVENTS",
    "PRIORITIES",
    "CheckpointHook",
    "DistSamplerSeedHook",
    "Hook",
    "HookList",
    "IterTimerHook",
    "LoggerHook",
    "ParamSchedulerHook",
    "RuntimeInfoHook",
]

PRIORITIES: dict[str, int] = {
    "HIGHEST": 0,
    "VERY_HIGH": 10,
    "HIGH": 30,
    "ABOVE_NORMAL": 40,
    "NORMAL": 50,
    "BELOW_NORMAL": 60,
    "LOW": 70,
    "VERY_LOW": 90,
    "LOWEST": 100,
}

EVENTS = (
    "before_run",
    "after_run",
    "before_train",
    "after_train",
    "before_train_epoch",
    "after_train_epoch",
    "before_train_iter",
    "after_train_iter",
    "before_val",
    "after_val",
    "before_val_epoch",
    "after_val_epoch",
    "before_val_iter",
    "after_val_iter",
    "before_test",
    "after_test",
    "before_test_epoch",
    "after_test_epoch",
    "before_test_iter",
    "after_test_iter",
    "before_save_checkpoint",
    "after_load_checkpoint",
)


class Hook:
    """Base class of hooks. Override the events you need; the others cost nothing."""

    priority: int | str = "NORMAL"

    def before_run(self, runner: Runner) -> None: ...
    def after_run(self, runner: Runner) -> None: ...
    def before_train(self, runner: Runner) -> None: ...
    def after_train(self, runner: Runner) -> None: ...
    def before_train_epoch(self, runner: Runner) -> None: ...
    def after_train_epoch(self, runner: Runner) -> None: ...
    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None: ...
    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None: ...
    def before_val(self, runner: Runner) -> None: ...
    def after_val(self, runner: Runner) -> None: ...
    def before_val_epoch(self, runner: Runner) -> None: ...
    def after_val_epoch(self, runner: Runner, metrics: Mapping[str, float] | None = None) -> None: ...
    def before_val_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None: ...
    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None: ...
    def before_test(self, runner: Runner) -> None: ...
    def after_test(self, runner: Runner) -> None: ...
    def before_test_epoch(self, runner: Runner) -> None: ...
    def after_test_epoch(self, runner: Runner, metrics: Mapping[str, float] | None = None) -> None: ...
    def before_test_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None: ...
    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None: ...
    def before_save_checkpoint(self, runner: Runner, checkpoint: dict[str, Any]) -> None: ...
    def after_load_checkpoint(self, runner: Runner, checkpoint: dict[str, Any]) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What this hook needs to continue after a resume (saved in checkpoints); none by default."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def events(self) -> set[str]:
        """The events this hook handles: by default, the methods its class overrides."""
        return {name for name in EVENTS if getattr(type(self), name) is not getattr(Hook, name)}

    @property
    def priority_value(self) -> int:
        return PRIORITIES[self.priority] if isinstance(self.priority, str) else int(self.priority)


def _calls(hooks: Sequence[Hook], event: str) -> tuple[Callable[..., None], ...]:
    return tuple(getattr(h, event) for h in hooks if event in h.events())


class HookList:
    """The hooks of a run, sorted by priority (stable), with one call list per event."""

    def __init__(self, hooks: Sequence[Hook]) -> None:
        self.hooks = sorted(hooks, key=lambda h: h.priority_value)
        calls = {event: _calls(self.hooks, event) for event in EVENTS}
        self._before_train_iter = calls["before_train_iter"]
        self._after_train_iter = calls["after_train_iter"]
        self._before_val_iter = calls["before_val_iter"]
        self._after_val_iter = calls["after_val_iter"]
        self._before_test_iter = calls["before_test_iter"]
        self._after_test_iter = calls["after_test_iter"]
        self._calls = calls
        self._order = {event: [type(h).__name__ for h in self.hooks if event in h.events()] for event in EVENTS}

    def order(self) -> dict[str, list[str]]:
        """Per event, the names of the hooks called, in order (logged at start)."""
        return {event: names for event, names in self._order.items() if names}

    def call(self, event: str, runner: Runner, *args: Any) -> None:
        """Call a per-run or per-epoch event (not per iteration) on the hooks that handle it."""
        for fn in self._calls[event]:
            fn(runner, *args)

    # Per-iteration events: a direct loop over a prebuilt tuple, nothing else.
    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any) -> None:
        for fn in self._before_train_iter:
            fn(runner, batch_idx, data_batch)

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any, outputs: Mapping[str, Tensor]) -> None:
        for fn in self._after_train_iter:
            fn(runner, batch_idx, data_batch, outputs)

    def before_val_iter(self, runner: Runner, batch_idx: int, data_batch: Any) -> None:
        for fn in self._before_val_iter:
            fn(runner, batch_idx, data_batch)

    def after_val_iter(self, runner: Runner, batch_idx: int, data_batch: Any, outputs: Any) -> None:
        for fn in self._after_val_iter:
            fn(runner, batch_idx, data_batch, outputs)

    def before_test_iter(self, runner: Runner, batch_idx: int, data_batch: Any) -> None:
        for fn in self._before_test_iter:
            fn(runner, batch_idx, data_batch)

    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch: Any, outputs: Any) -> None:
        for fn in self._after_test_iter:
            fn(runner, batch_idx, data_batch, outputs)


# ----------------------------------------------------------------------------------------------
# Built-in hooks
# ----------------------------------------------------------------------------------------------
class RuntimeInfoHook(Hook):
    """Logs the run's hooks, per event and in call order, when the run starts."""

    priority = "VERY_HIGH"

    def before_run(self, runner: Runner) -> None:
        for event, names in runner.hooks.order().items():
            runner.logger.debug("hooks", on=event, order=" > ".join(names))


class IterTimerHook(Hook):
    """Measures each training iteration's time and the part spent waiting for data."""

    priority = "NORMAL"

    def __init__(self, window: int = 10) -> None:
        self.iter_times: deque[float] = deque(maxlen=window)
        self.data_times: deque[float] = deque(maxlen=window)
        self._last = 0.0

    def before_train_epoch(self, runner: Runner) -> None:
        self._last = time.perf_counter()

    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None:
        self.data_times.append(time.perf_counter() - self._last)

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        now = time.perf_counter()
        self.iter_times.append(now - self._last)
        self._last = now


class DistSamplerSeedHook(Hook):
    """Tells the sampler the epoch, so each epoch is shuffled differently (and reproducibly)."""

    priority = "NORMAL"

    def before_train_epoch(self, runner: Runner) -> None:
        sampler = getattr(runner.train_dataloader, "sampler", None)
        set_epoch = getattr(sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(runner.epoch)


class ParamSchedulerHook(Hook):
    """Steps the parameter schedules: per epoch, per iteration, or on a validation metric (plateau)."""

    priority = "LOW"

    def __init__(self) -> None:
        self.by_epoch: list[ScheduleSlot] = []
        self.by_iter: list[ScheduleSlot] = []
        self.plateau: list[ScheduleSlot] = []

    def set_slots(self, slots: Sequence[ScheduleSlot]) -> None:
        self.plateau = [s for s in slots if s.plateau]
        self.by_epoch = [s for s in slots if s.by_epoch and not s.plateau]
        self.by_iter = [s for s in slots if not s.by_epoch and not s.plateau]

    def events(self) -> set[str]:
        events = super().events()
        if not self.by_iter:
            events.discard("after_train_iter")
        if not self.plateau:
            events.discard("after_val_epoch")
        return events

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        done = runner.iter + 1
        for slot in self.by_iter:
            slot.advance(done)

    def after_train_epoch(self, runner: Runner) -> None:
        done = runner.epoch + 1
        for slot in self.by_epoch:
            slot.advance(done)

    def after_val_epoch(self, runner: Runner, metrics: Mapping[str, float] | None = None) -> None:
        for slot in self.plateau:
            slot.observe(metrics or {}, runner.epoch if slot.by_epoch else runner.iter)


class LoggerHook(Hook):
    """Logs training scalars every ``interval`` iterations (averaged over a window) and val metrics."""

    priority = "BELOW_NORMAL"

    def __init__(self, interval: int = 10, ignore_last: bool = True, window_size: int = 10) -> None:
        self.interval = interval
        self.ignore_last = ignore_last
        self.window: deque[Mapping[str, Tensor]] = deque(maxlen=window_size)

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
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
            scalars.update({f"lr_{name}": values[0] for name, values in lrs.items()})
        elif lrs:
            scalars["lr"] = lrs[0]
        scalars.update(values)
        timer = runner.timer
        if timer is not None and timer.iter_times:
            iter_time = sum(timer.iter_times) / len(timer.iter_times)
            scalars["time"] = iter_time
            scalars["data_time"] = sum(timer.data_times) / max(len(timer.data_times), 1)
            remaining = runner.max_iters - runner.iter - 1
            scalars["eta_s"] = round(iter_time * remaining, 1)
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

    def after_val_epoch(self, runner: Runner, metrics: Mapping[str, float] | None = None) -> None:
        runner.logger.scalars(
            "val", epoch=runner.epoch, iter=None, iters_per_epoch=None, step=runner.iter, values=dict(metrics or {})
        )

    def after_test_epoch(self, runner: Runner, metrics: Mapping[str, float] | None = None) -> None:
        runner.logger.scalars(
            "test", epoch=runner.epoch, iter=None, iters_per_epoch=None, step=runner.iter, values=dict(metrics or {})
        )


_LESS_HINTS = ("loss", "error", "err", "mse", "mae", "rmse", "wer", "cer")


def infer_rule(key: str) -> str:
    """``less`` for keys that name an error or a loss, ``greater`` otherwise (accuracy, mAP, ...)."""
    return "less" if any(h in key.lower() for h in _LESS_HINTS) else "greater"


class CheckpointHook(Hook):
    """Saves ``epoch_N.pth`` (or ``iter_N.pth``) every ``interval``, the best by a metric, keeps at most N."""

    priority = "VERY_LOW"

    def __init__(
        self,
        interval: int = 1,
        by_epoch: bool = True,
        save_begin: int = 0,
        save_last: bool = True,
        max_keep_ckpts: int = -1,
        save_optimizer: bool = True,
        save_param_scheduler: bool = True,
        save_best: Sequence[str] = (),
        rules: Sequence[str | None] = (),
        out_dir: str | None = None,
        filename_tmpl: str | None = None,
        published_keys: Sequence[str] | None = None,
    ) -> None:
        self.interval = interval
        self.by_epoch = by_epoch
        self.save_begin = save_begin
        self.save_last = save_last
        self.max_keep_ckpts = max_keep_ckpts
        self.save_optimizer = save_optimizer
        self.save_param_scheduler = save_param_scheduler
        self.save_best = list(save_best)
        self.rules = list(rules) or [None] * len(self.save_best)
        self.out_dir = Path(out_dir) if out_dir else None
        self.filename_tmpl = filename_tmpl or ("epoch_{}.pth" if by_epoch else "iter_{}.pth")
        self.published_keys = list(published_keys) if published_keys else None
        self.saved: list[str] = []
        self.best: dict[str, float] = {}
        self.last_path: Path | None = None

    def events(self) -> set[str]:
        events = super().events()
        events.discard("after_train_iter" if self.by_epoch else "after_train_epoch")
        if not self.save_best:
            events.discard("after_val_epoch")
            events.discard("after_load_checkpoint")
        if not self.published_keys:
            events.discard("after_train")
        return events

    def _directory(self, runner: Runner) -> Path:
        return self.out_dir or runner.work_dir

    def _save(self, runner: Runner, count: int, last: bool, position: tuple[int, int, int]) -> None:
        due = count > self.save_begin and count % self.interval == 0
        if not (due or (last and self.save_last)):
            return
        name = self.filename_tmpl.format(count)
        if name not in self.saved:
            self.saved.append(name)  # before saving: the checkpoint's own hook state lists itself
        self.last_path = runner.save_checkpoint(
            name,
            directory=self._directory(runner),
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            position=position,
        )
        if self.max_keep_ckpts > 0:
            while len(self.saved) > self.max_keep_ckpts:
                (self._directory(runner) / self.saved.pop(0)).unlink(missing_ok=True)

    def after_train_epoch(self, runner: Runner) -> None:
        # the epoch is over (its end-of-epoch hooks of higher priority have run): resume at the next one
        done = runner.epoch + 1
        self._save(runner, done, last=done == runner.max_epochs, position=(done, runner.iter, 0))

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        # this iteration is done (the runner counts it after the hooks): resume at the next one
        done = runner.iter + 1
        self._save(runner, done, last=done == runner.max_iters, position=(runner.epoch, done, runner.inner_iter))

    def after_val_epoch(self, runner: Runner, metrics: Mapping[str, float] | None = None) -> None:
        if not metrics:
            return
        for key, rule in zip(self.save_best, self.rules, strict=True):
            name = next(iter(metrics)) if key == "auto" else key
            if name not in metrics:
                raise KeyError(
                    f"default_hooks.checkpoint.save_best: {name!r} is not among the metrics {sorted(metrics)}"
                )
            value = float(metrics[name])
            rule = rule or infer_rule(name)
            best = self.best.get(name)
            if best is None or (value > best if rule == "greater" else value < best):
                self.best[name] = value
                runner.save_checkpoint(
                    self._best_name(name),
                    directory=self._directory(runner),
                    save_optimizer=False,
                    save_param_scheduler=False,
                    pointer=False,
                    extra_meta={"best_metric": name, "best_score": value},
                )
                runner.logger.info("new best", metric=name, value=value)

    @staticmethod
    def _best_name(key: str) -> str:
        return f"best_{key.replace('/', '_')}.pth"

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict[str, Any]) -> None:
        """On resume, the best files on disk are the reference: a periodic checkpoint can predate
        the validation that made the current best (it is written before that epoch's validation)."""
        if not runner.cfg.resume:
            return  # load_from: pretrained weights, not this run's history
        directory = self._directory(runner)
        for path in directory.glob("best_*.pth"):
            meta = load_checkpoint(path).get("meta", {})
            name, score = meta.get("best_metric"), meta.get("best_score")
            if isinstance(name, str) and isinstance(score, (int, float)):
                rule = self._rule_for(name)
                known = self.best.get(name)
                if known is None or (score > known if rule == "greater" else score < known):
                    self.best[name] = float(score)

    def _rule_for(self, name: str) -> str:
        for key, rule in zip(self.save_best, self.rules, strict=True):
            if key in (name, "auto"):
                return rule or infer_rule(name)
        return infer_rule(name)

    def after_train(self, runner: Runner) -> None:
        if self.last_path is not None and self.published_keys:
            runner.publish_checkpoint(self.last_path, self.published_keys)

    def state_dict(self) -> dict[str, Any]:
        return {"saved": list(self.saved), "best": dict(self.best)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.saved = list(state.get("saved", []))
        self.best = {str(k): float(v) for k, v in dict(state.get("best", {})).items()}
