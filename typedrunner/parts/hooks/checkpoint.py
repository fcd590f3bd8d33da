"""``CheckpointHook``: periodic checkpoints, the best by a metric, at most N kept. Built from its
schema (``typedrunner.config.hooks.CheckpointHook``), where its settings and defaults are written."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError, field_validator
from torch import Tensor

from typedrunner.config import hooks as schema
from typedrunner.errors import ConfigError, Problem, format_path
from typedrunner.parts import distributed
from typedrunner.parts.checkpoint import load_checkpoint
from typedrunner.parts.evaluator import infer_rule
from typedrunner.parts.hooks.base import Event, Hook, Priority, RunView
from typedrunner.parts.sharded_checkpoint import SUFFIX, is_sharded_checkpoint, load_full, sharded_name

__all__ = ["CheckpointHook"]


def _is_file_name(name: str) -> bool:
    """A plain file name: no directory part, nothing that leaves the directory it is joined to."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


class _SavedState(BaseModel):
    """The hook's state as a checkpoint holds it; ``saved`` names files that pruning deletes, so it may
    only name files inside the checkpoint directory."""

    model_config = ConfigDict(extra="ignore")
    saved: list[StrictStr] = []
    best: dict[str, float] = {}

    @field_validator("saved")
    @classmethod
    def _file_names(cls, names: list[str]) -> list[str]:
        outside = [n for n in names if not _is_file_name(n)]
        if outside:
            raise ValueError(
                f"{outside!r}: not file names inside the checkpoint directory (a checkpoint may not name "
                "paths outside the run directory)"
            )
        return names


class CheckpointHook(Hook):
    """Saves ``epoch_N.pth`` (or ``iter_N.pth``) every ``interval``, the best by a metric, keeps at most N."""

    config_schema: ClassVar = schema.CheckpointHook
    priority = Priority.VERY_LOW

    def __init__(self, cfg: schema.CheckpointHook | None = None) -> None:
        self.cfg = cfg = cfg or schema.CheckpointHook()
        self.by_epoch = cfg.by_epoch
        self.save_best = cfg.best_keys()
        self.rules: list[str | None] = (
            list(cfg.rule) if isinstance(cfg.rule, list) else [cfg.rule] * len(self.save_best)
        )
        self.out_dir = Path(cfg.out_dir) if cfg.out_dir else None
        self.filename_tmpl = cfg.file_template()
        self.saved: list[str] = []
        self.best: dict[str, float] = {}
        self.last_path: Path | None = None

    def events(self) -> set[Event]:
        events = super().events()
        events.discard(Event.AFTER_TRAIN_ITER if self.by_epoch else Event.AFTER_TRAIN_EPOCH)
        if not self.save_best:
            events.discard(Event.AFTER_VAL_EPOCH)
            events.discard(Event.AFTER_LOAD_CHECKPOINT)
        if not self.cfg.published_keys:
            events.discard(Event.AFTER_TRAIN)
        return events

    def _directory(self, runner: RunView) -> Path:
        return self.out_dir or runner.work_dir

    def _save(self, runner: RunView, count: int, last: bool, position: tuple[int, int, int]) -> None:
        cfg = self.cfg
        due = count > cfg.save_begin and count % cfg.interval == 0
        if not (due or (last and cfg.save_last)):
            return
        name = self.filename_tmpl.format(count)
        if name not in self.saved:
            self.saved.append(name)  # before saving: the checkpoint's own hook state lists itself
        self.last_path = runner.save_checkpoint(
            name,
            directory=self._directory(runner),
            save_optimizer=cfg.save_optimizer,
            save_param_scheduler=cfg.save_param_scheduler,
            position=position,
        )
        if cfg.max_keep_ckpts > 0 and distributed.is_main_process():  # rank 0 writes, and prunes
            while len(self.saved) > cfg.max_keep_ckpts:
                old = self.saved.pop(0)
                if _is_file_name(old):  # never a path elsewhere, whatever the list was given
                    (self._directory(runner) / old).unlink(missing_ok=True)
                    # under FSDP2 the checkpoint of that name is a directory (epoch_1.pth -> epoch_1.dcp)
                    sharded = self._directory(runner) / sharded_name(old)
                    if is_sharded_checkpoint(sharded) and not sharded.is_symlink():
                        shutil.rmtree(sharded)

    def after_train_epoch(self, runner: RunView) -> None:
        # the epoch is over (its end-of-epoch hooks of higher priority have run): resume at the next one
        done = runner.epoch + 1
        self._save(runner, done, last=done == runner.max_epochs, position=(done, runner.iter, 0))

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        # this iteration is done (the runner counts it after the hooks): resume at the next one
        done = runner.iter + 1
        if done % self.cfg.interval and done != runner.max_iters:
            return  # neither due nor the last: the common case, decided without a call
        self._save(runner, done, last=done == runner.max_iters, position=(runner.epoch, done, runner.inner_iter))

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
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
                    schema.CheckpointHook.best_file(name),
                    directory=self._directory(runner),
                    save_optimizer=False,
                    save_param_scheduler=False,
                    pointer=False,
                    extra_meta={"best_metric": name, "best_score": value},
                )
                runner.logger.info("new best", metric=name, value=value)

    def after_load_checkpoint(self, runner: RunView, checkpoint: dict[str, Any]) -> None:
        """On resume, the best files on disk are the reference: a periodic checkpoint can predate
        the validation that made the current best (it is written before that epoch's validation)."""
        if not runner.cfg.resume:
            return  # load_from: pretrained weights, not this run's history
        directory = self._directory(runner)
        sharded = filter(is_sharded_checkpoint, directory.glob(f"best_*{SUFFIX}"))
        for path in [*directory.glob("best_*.pth"), *sharded]:
            checkpoint = load_full(path, weights=False) if path.is_dir() else load_checkpoint(path)
            meta = checkpoint.get("meta", {})
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

    def after_train(self, runner: RunView) -> None:
        if self.last_path is not None and self.cfg.published_keys:
            runner.publish_checkpoint(self.last_path, list(self.cfg.published_keys))

    def state_dict(self) -> dict[str, Any]:
        return {"saved": list(self.saved), "best": dict(self.best)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the saved files and best scores; a malformed state is a ``ConfigError`` (path ``resume``)."""
        try:
            loaded = _SavedState.model_validate(dict(state))
        except ValidationError as e:
            raise ConfigError(
                [
                    Problem("resume", f"the checkpoint's CheckpointHook state: {format_path(err['loc'])}: {err['msg']}")
                    for err in e.errors()
                ],
                title="cannot resume: the checkpoint's CheckpointHook state is malformed",
            ) from None
        self.saved, self.best = list(loaded.saved), dict(loaded.best)
