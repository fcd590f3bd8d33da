"""The loops: straight-line code implementing the data-flow contract (DESIGN.md section 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from typedrunner.data import start_pass
from typedrunner.evaluator import Evaluator
from typedrunner.model import BaseModel, parse_losses, run_forward
from typedrunner.safety import TrainingStopped, guarded

if TYPE_CHECKING:
    from typedrunner.optim import AnyOptimWrapper
    from typedrunner.runner import Runner

__all__ = [
    "EpochBasedTrainLoop",
    "IterBasedTrainLoop",
    "TestLoop",
    "TrainLoop",
    "ValLoop",
    "predict_step_for",
    "train_step_for",
]

TrainStep = Callable[[Any, "AnyOptimWrapper"], dict[str, Tensor]]
PredictStep = Callable[[Any], Any]


def train_step_for(model: nn.Module, preprocessor: nn.Module) -> TrainStep:
    """``model.train_step`` for a ``BaseModel``; the same three steps for any other ``nn.Module``."""
    if isinstance(model, BaseModel):
        return model.train_step

    def train_step(data: Any, optim_wrapper: AnyOptimWrapper) -> dict[str, Tensor]:
        batch = preprocessor(data, True)
        with optim_wrapper.optim_context(model):
            losses = run_forward(model, batch, "loss")
        loss, log_vars = parse_losses(losses)
        optim_wrapper.update_params(loss)
        return log_vars

    return train_step


def predict_step_for(model: nn.Module, preprocessor: nn.Module, stage: str) -> PredictStep:
    """``model.val_step`` / ``test_step`` for a ``BaseModel``; preprocess + predict otherwise."""
    if isinstance(model, BaseModel):
        return model.val_step if stage == "val" else model.test_step

    def predict_step(data: Any) -> Any:
        return run_forward(model, preprocessor(data, False), "predict")

    return predict_step


class _TrainLoopBase:
    """What both train loops share: the validation schedule and the body of one iteration."""

    def __init__(
        self,
        runner: Runner,
        dataloader: Iterable[Any],
        optim_wrapper: AnyOptimWrapper,
        val_begin: int,
        val_interval: int,
        dynamic_intervals: Sequence[tuple[int, int]],
    ) -> None:
        self.runner = runner
        self.dataloader = dataloader
        self.optim_wrapper = optim_wrapper
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.dynamic_intervals = sorted(dynamic_intervals)

    @property
    def length(self) -> int:
        """The run's length in the unit validation counts in (epochs or iterations)."""
        raise NotImplementedError

    def interval_at(self, done: int) -> int:
        """The validation interval once ``done`` epochs (or iterations) are finished (``dynamic_intervals``)."""
        return next((v for start, v in reversed(self.dynamic_intervals) if done >= start), self.val_interval)

    def _val_due(self, done: int) -> bool:
        return (
            self.runner.val_loop is not None
            and done >= self.val_begin
            and (done % self.interval_at(done) == 0 or done == self.length)
        )

    def _validate(self) -> None:
        assert self.runner.val_loop is not None  # checked by _val_due
        self.runner.val_loop.run()  # it puts the model back in training mode
        self.runner.last_val_iter = self.runner.iter

    def _iteration(self, batch_idx: int, data_batch: Any) -> None:
        """One training step between its hooks; then a requested stop (SIGTERM) takes effect."""
        runner, hooks = self.runner, self.runner.hooks
        hooks.before_train_iter(runner, batch_idx, data_batch)
        outputs = runner.train_step(data_batch, self.optim_wrapper)
        runner.inner_iter += 1
        runner.nonfinite_guard.update(runner, outputs)  # before the hooks: a checkpoint they write must not hold NaN
        hooks.after_train_iter(runner, batch_idx, data_batch, outputs)
        runner.iter += 1
        if runner.stop_signal is not None:
            raise TrainingStopped(runner.stop_signal)


class EpochBasedTrainLoop(_TrainLoopBase):
    """Train ``max_epochs`` epochs; validate after epoch ``val_begin`` and every ``val_interval``."""

    by_epoch = True

    def __init__(
        self,
        runner: Runner,
        dataloader: Iterable[Any],
        optim_wrapper: AnyOptimWrapper,
        max_epochs: int,
        val_begin: int = 1,
        val_interval: int = 1,
        dynamic_intervals: Sequence[tuple[int, int]] = (),
    ) -> None:
        super().__init__(runner, dataloader, optim_wrapper, val_begin, val_interval, dynamic_intervals)
        self.max_epochs = max_epochs

    @property
    def length(self) -> int:
        return self.max_epochs

    @property
    def max_iters(self) -> int:
        return self.max_epochs * len(self.dataloader)  # type: ignore[arg-type]

    def run(self) -> None:
        runner = self.runner
        runner.hooks.call("before_train", runner)
        # Resumed from an end-of-epoch checkpoint written before that epoch's validation: run it now,
        # so hooks that learn from metrics (early stopping, plateau schedules, best checkpoints) see it.
        if (
            runner.inner_iter == 0
            and runner.epoch > 0
            and runner.last_val_iter != runner.iter
            and self._val_due(runner.epoch)
        ):
            self._validate()
        while runner.epoch < self.max_epochs and not runner.stop_training:
            self.run_epoch()
            if self._val_due(runner.epoch):
                self._validate()
            if runner.stop_signal is not None:
                raise TrainingStopped(runner.stop_signal)
        runner.hooks.call("after_train", runner)

    def run_epoch(self) -> None:
        # 1. epoch start (a resumed run may start mid-epoch)  2. each batch  3. epoch end
        runner, hooks = self.runner, self.runner.hooks
        start = runner.inner_iter
        start_pass(self.dataloader, runner.seed, runner.epoch, skip_batches=start)
        hooks.call("before_train_epoch", runner)
        runner.model.train()
        for batch_idx, data_batch in enumerate(guarded(self.dataloader, "train_dataloader", start), start):
            self._iteration(batch_idx, data_batch)
        hooks.call("after_train_epoch", runner)
        runner.epoch += 1
        runner.inner_iter = 0


class IterBasedTrainLoop(_TrainLoopBase):
    """Train ``max_iters`` iterations, cycling the data; validate every ``val_interval`` iterations."""

    by_epoch = False

    def __init__(
        self,
        runner: Runner,
        dataloader: Iterable[Any],
        optim_wrapper: AnyOptimWrapper,
        max_iters: int,
        val_begin: int = 1,
        val_interval: int = 1000,
        dynamic_intervals: Sequence[tuple[int, int]] = (),
    ) -> None:
        super().__init__(runner, dataloader, optim_wrapper, val_begin, val_interval, dynamic_intervals)
        self.max_iters = max_iters
        self.max_epochs = 0  # not counted in epochs

    @property
    def length(self) -> int:
        return self.max_iters

    def _batches(self) -> Iterator[Any]:
        """The data, pass after pass; ``runner.epoch`` counts passes, ``runner.inner_iter`` the position."""
        runner = self.runner
        while True:
            start_pass(self.dataloader, runner.seed, runner.epoch, skip_batches=runner.inner_iter)
            yield from guarded(self.dataloader, "train_dataloader", runner.inner_iter)
            runner.epoch += 1
            runner.inner_iter = 0

    def run(self) -> None:
        runner, hooks = self.runner, self.runner.hooks
        hooks.call("before_train", runner)
        hooks.call("before_train_epoch", runner)
        runner.model.train()
        if runner.iter > 0 and runner.last_val_iter != runner.iter and self._val_due(runner.iter):
            self._validate()  # resumed from a checkpoint written before this iteration's validation
        batches = self._batches()
        while runner.iter < self.max_iters and not runner.stop_training:
            self._iteration(runner.iter, next(batches))
            if self._val_due(runner.iter):
                self._validate()
        hooks.call("after_train_epoch", runner)
        hooks.call("after_train", runner)


TrainLoop = EpochBasedTrainLoop | IterBasedTrainLoop


class _EvalLoop:
    stage = "val"

    def __init__(self, runner: Runner, dataloader: Any, evaluator: Evaluator, fp16: bool = False) -> None:
        self.runner = runner
        self.dataloader = dataloader
        self.evaluator = evaluator
        self.fp16 = fp16

    def run(self) -> dict[str, float]:
        runner, stage = self.runner, self.stage
        hooks = runner.hooks
        before_iter = hooks.before_val_iter if stage == "val" else hooks.before_test_iter
        after_iter = hooks.after_val_iter if stage == "val" else hooks.after_test_iter
        predict = runner.predict_step(stage)
        hooks.call(f"before_{stage}", runner)
        hooks.call(f"before_{stage}_epoch", runner)
        was_training = runner.model.training
        runner.model.eval()
        start_pass(self.dataloader, runner.seed, 0)
        autocast = torch.autocast(runner.device.type, dtype=torch.float16, enabled=self.fp16)
        with torch.no_grad(), autocast:
            for batch_idx, data_batch in enumerate(guarded(self.dataloader, f"{stage}_dataloader")):
                before_iter(runner, batch_idx, data_batch)
                outputs = predict(data_batch)
                self.evaluator.process(data_samples=outputs, data_batch=data_batch)
                after_iter(runner, batch_idx, data_batch, outputs)
        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        runner.model.train(was_training)
        if stage == "val":
            runner.last_metrics = metrics
            runner.metric_history.append(metrics)
        hooks.call(f"after_{stage}_epoch", runner, metrics)
        hooks.call(f"after_{stage}", runner)
        return metrics


class ValLoop(_EvalLoop):
    """Predict every validation batch, feed the evaluator, compute the metrics."""

    stage = "val"


class TestLoop(_EvalLoop):
    """Predict every test batch, feed the evaluator, compute the metrics."""

    stage = "test"
