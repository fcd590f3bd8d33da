"""The loops: straight-line code implementing the data-flow contract (DESIGN.md section 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from typedrunner.evaluator import Evaluator
from typedrunner.model import BaseModel, parse_losses, run_forward

if TYPE_CHECKING:
    from typedrunner.optim import OptimWrapper
    from typedrunner.runner import Runner

__all__ = ["EpochBasedTrainLoop", "TestLoop", "ValLoop", "predict_step_for", "train_step_for"]

TrainStep = Callable[[Any, "OptimWrapper"], dict[str, Tensor]]
PredictStep = Callable[[Any], Any]


def train_step_for(model: nn.Module, preprocessor: nn.Module) -> TrainStep:
    """``model.train_step`` for a ``BaseModel``; the same three steps for any other ``nn.Module``."""
    if isinstance(model, BaseModel):
        return model.train_step

    def train_step(data: Any, optim_wrapper: OptimWrapper) -> dict[str, Tensor]:
        loss, log_vars = parse_losses(run_forward(model, preprocessor(data, True), "loss"))
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


class EpochBasedTrainLoop:
    """Train ``max_epochs`` epochs; validate after epoch ``val_begin`` and every ``val_interval``."""

    def __init__(
        self,
        runner: Runner,
        dataloader: Iterable[Any],
        optim_wrapper: OptimWrapper,
        max_epochs: int,
        val_begin: int = 1,
        val_interval: int = 1,
    ) -> None:
        self.runner = runner
        self.dataloader = dataloader
        self.optim_wrapper = optim_wrapper
        self.max_epochs = max_epochs
        self.val_begin = val_begin
        self.val_interval = val_interval

    def run(self) -> None:
        runner = self.runner
        runner.hooks.call("before_train", runner)
        while runner.epoch < self.max_epochs:
            self.run_epoch()
            if (
                runner.val_loop is not None
                and runner.epoch >= self.val_begin
                and (runner.epoch % self.val_interval == 0 or runner.epoch == self.max_epochs)
            ):
                runner.val_loop.run()
        runner.hooks.call("after_train", runner)

    def run_epoch(self) -> None:
        # 1. epoch start  2. per batch: hooks, preprocess + loss + update, hooks  3. epoch end
        runner, hooks, optim_wrapper = self.runner, self.runner.hooks, self.optim_wrapper
        hooks.call("before_train_epoch", runner)
        runner.model.train()
        train_step = runner.train_step
        for batch_idx, data_batch in enumerate(self.dataloader):
            hooks.before_train_iter(runner, batch_idx, data_batch)
            outputs = train_step(data_batch, optim_wrapper)
            hooks.after_train_iter(runner, batch_idx, data_batch, outputs)
            runner.iter += 1
        hooks.call("after_train_epoch", runner)
        runner.epoch += 1


class _EvalLoop:
    stage = "val"

    def __init__(self, runner: Runner, dataloader: Any, evaluator: Evaluator) -> None:
        self.runner = runner
        self.dataloader = dataloader
        self.evaluator = evaluator

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
        with torch.no_grad():
            for batch_idx, data_batch in enumerate(self.dataloader):
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
