"""The loops: straight-line code implementing the data-flow contract (DESIGN.md section 2).

A loop advances the run state and calls the hooks; it sees the run through :class:`LoopHost` (the
Runner implements it), never through the Runner class itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor, nn

from typedrunner.config.train import EpochBasedTrainLoop as EpochLoopConfig
from typedrunner.config.train import IterBasedTrainLoop as IterLoopConfig
from typedrunner.engine.fsdp import gathered
from typedrunner.engine.guards import NonFiniteGuard, guarded, loading_failed
from typedrunner.engine.state import RunState
from typedrunner.errors import TrainingStopped
from typedrunner.parts.data import DefaultSampler, start_pass
from typedrunner.parts.distributed import any_rank, world_size
from typedrunner.parts.evaluator import Evaluator, gather_results
from typedrunner.parts.hooks.base import HookList, RunView
from typedrunner.parts.model import BaseModel, parse_losses, run_forward
from typedrunner.parts.optim import NO_CONTEXT, AnyOptimWrapper

__all__ = [
    "EpochBasedTrainLoop",
    "IterBasedTrainLoop",
    "LoopHost",
    "TestLoop",
    "TrainLoop",
    "ValLoop",
    "predict_step_for",
    "train_loop_for",
    "train_step_for",
]

TrainStep = Callable[[Any, AnyOptimWrapper], dict[str, Tensor]]
PredictStep = Callable[[Any], Any]


def train_step_for(model: nn.Module, preprocessor: nn.Module) -> TrainStep:
    """``model.train_step`` for a ``BaseModel``; the same three steps for any other ``nn.Module``."""
    if isinstance(model, BaseModel):
        return model.train_step

    def train_step(data: Any, optim_wrapper: AnyOptimWrapper) -> dict[str, Tensor]:
        batch = preprocessor(data, True)
        context = optim_wrapper.optim_context(model)
        if context is NO_CONTEXT:
            losses = run_forward(model, batch, "loss")
        else:
            with context:
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


class LoopHost(RunView, Protocol):
    """What the loops use of the run: the hooks' view, plus the state and the parts they drive."""

    @property
    def state(self) -> RunState: ...
    @property
    def seed(self) -> int: ...
    @property
    def device(self) -> torch.device: ...
    @property
    def train_step(self) -> TrainStep: ...
    @property
    def data_preprocessor(self) -> nn.Module: ...
    @property
    def nonfinite_guard(self) -> NonFiniteGuard: ...
    @property
    def val_loop(self) -> ValLoop | None: ...


class _TrainLoopBase:
    """What both train loops share: the validation schedule and the body of one iteration."""

    length: int
    """The run's length in the unit validation counts in (epochs or iterations)."""
    cfg: EpochLoopConfig | IterLoopConfig
    _intervals: list[tuple[int, int]]

    def __init__(self, host: LoopHost, dataloader: Iterable[Any], optim_wrapper: AnyOptimWrapper) -> None:
        self.host = host
        self.dataloader = dataloader
        self.optim_wrapper = optim_wrapper
        self._vote = False
        """Whether the ranks vote on a stop after every iteration (several processes; set by ``_begin``)."""

    def _begin(self) -> None:
        """Once per run, before its first iteration: what the hot loop need not ask again."""
        self._vote = world_size() > 1

    def interval_at(self, done: int) -> int:
        """The validation interval once ``done`` epochs (or iterations) are finished (``dynamic_intervals``)."""
        return _interval(self._intervals, self.cfg.val_interval, done)

    def _val_due(self, done: int, val_begin: int) -> bool:
        """Whether validation follows; asked after every iteration of an iteration-based loop."""
        if done < val_begin or self.host.val_loop is None:
            return False
        interval = self.interval_at(done) if self._intervals else self.cfg.val_interval
        return done % interval == 0 or done == self.length

    def _validate(self, val_loop: ValLoop | None) -> None:
        if val_loop is not None:
            val_loop.run()  # it puts the model back in training mode
            self.host.state.last_val_iter = self.host.state.iter

    def _iteration(self, batch_idx: int, data_batch: Any) -> None:
        """One training step between its hooks; then a requested stop (SIGTERM) takes effect.

        The hot path: only the hooks that override an event are called (the hook list's prebuilt
        tuples), the non-finite guard keeps a reference to the loss, and a stop costs one attribute
        read unless several ranks must vote on it."""
        host = self.host
        state, hooks = host.state, host.hooks
        for fn in hooks.before_train_iter_handlers:
            fn(host, batch_idx, data_batch)
        outputs = host.train_step(data_batch, self.optim_wrapper)
        state.inner_iter += 1
        host.nonfinite_guard.update(state, outputs)  # before the hooks: a checkpoint they write must not hold NaN
        for fn in hooks.after_train_iter_handlers:
            fn(host, batch_idx, data_batch, outputs)
        state.iter += 1
        if self._vote or state.stop_signal is not None:
            _stop_if_signalled(state)


def _stop_if_signalled(state: RunState) -> None:
    """Stop (the caller saves a checkpoint) once a signal arrived. With several ranks they decide
    together (one small gloo all-reduce), so all stop after the same iteration: a rank that stopped
    alone would leave the others waiting in the next step's all-reduce."""
    if any_rank(state.stop_signal is not None):
        raise TrainingStopped(state.stop_signal or "a signal to another rank")


def _interval(intervals: list[tuple[int, int]], default: int, done: int) -> int:
    """The interval in force once ``done`` are finished; ``intervals`` sorted by start."""
    return next((v for start, v in reversed(intervals) if done >= start), default)


class EpochBasedTrainLoop(_TrainLoopBase):
    """Train ``max_epochs`` epochs; validate after epoch ``val_begin`` and every ``val_interval``."""

    by_epoch = True

    def __init__(
        self, host: LoopHost, dataloader: Iterable[Any], optim_wrapper: AnyOptimWrapper, cfg: EpochLoopConfig
    ) -> None:
        super().__init__(host, dataloader, optim_wrapper)
        self.cfg: EpochLoopConfig = cfg
        self.max_epochs = self.length = cfg.max_epochs
        self._intervals = sorted(cfg.dynamic_intervals)

    @property
    def max_iters(self) -> int:
        return self.max_epochs * self.host.iters_per_epoch

    def run(self) -> None:
        host, state = self.host, self.host.state
        host.hooks.before_train(host)
        self._begin()
        # Resumed from an end-of-epoch checkpoint written before that epoch's validation: run it now,
        # so hooks that learn from metrics (early stopping, plateau schedules, best checkpoints) see it.
        if (
            state.inner_iter == 0
            and state.epoch > 0
            and state.last_val_iter != state.iter
            and self._val_due(state.epoch, self.cfg.val_begin)
        ):
            self._validate(host.val_loop)
        while state.epoch < self.max_epochs and not state.stop_requested:
            self.run_epoch()
            if self._val_due(state.epoch, self.cfg.val_begin):
                self._validate(host.val_loop)
            _stop_if_signalled(state)
        host.hooks.after_train(host)

    def run_epoch(self) -> None:
        # 1. epoch start (a resumed run may start mid-epoch)  2. each batch  3. epoch end
        host, state, hooks = self.host, self.host.state, self.host.hooks
        loader, batch_idx = self.dataloader, state.inner_iter
        start_pass(loader, host.seed, state.epoch, skip_batches=batch_idx)
        hooks.before_train_epoch(host)
        host.model.train()
        iterator = iter(loader)
        while True:
            try:  # `guarded`, inlined: no generator between the loader and each batch
                data_batch = next(iterator)
            except StopIteration:
                break
            except Exception as e:
                loading_failed(loader, iterator, "train_dataloader", batch_idx, state, e)
            self._iteration(batch_idx, data_batch)
            batch_idx += 1
        hooks.after_train_epoch(host)
        state.epoch += 1
        state.inner_iter = 0


class IterBasedTrainLoop(_TrainLoopBase):
    """Train ``max_iters`` iterations, cycling the data; validate every ``val_interval`` iterations."""

    by_epoch = False
    max_epochs = 0  # not counted in epochs

    def __init__(
        self, host: LoopHost, dataloader: Iterable[Any], optim_wrapper: AnyOptimWrapper, cfg: IterLoopConfig
    ) -> None:
        super().__init__(host, dataloader, optim_wrapper)
        self.cfg: IterLoopConfig = cfg
        self.max_iters = self.length = cfg.max_iters
        self._intervals = sorted(cfg.dynamic_intervals)

    def run(self) -> None:
        """The data pass after pass (``state.epoch`` counts passes, ``state.inner_iter`` the position)
        until ``max_iters``."""
        host, state, hooks = self.host, self.host.state, self.host.hooks
        hooks.before_train(host)
        hooks.before_train_epoch(host)
        host.model.train()
        self._begin()
        val_begin = self.cfg.val_begin
        if state.iter > 0 and state.last_val_iter != state.iter and self._val_due(state.iter, val_begin):
            self._validate(host.val_loop)  # resumed from a checkpoint written before this iteration's validation
        loader = self.dataloader
        iterator: Iterator[Any] | None = None
        while state.iter < self.max_iters and not state.stop_requested:
            if iterator is None:  # a new pass
                start_pass(loader, host.seed, state.epoch, skip_batches=state.inner_iter)
                iterator = iter(loader)
            try:  # `guarded`, inlined: no generator between the loader and each batch
                data_batch = next(iterator)
            except StopIteration:
                state.epoch += 1
                state.inner_iter = 0
                iterator = None
                continue
            except Exception as e:
                loading_failed(loader, iterator, "train_dataloader", state.inner_iter, state, e)
            self._iteration(state.iter, data_batch)
            if self._val_due(state.iter, val_begin):
                self._validate(host.val_loop)
        hooks.after_train_epoch(host)
        hooks.after_train(host)


TrainLoop = EpochBasedTrainLoop | IterBasedTrainLoop


def train_loop_for(
    host: LoopHost,
    loader: Iterable[Any] | None,
    optim_wrapper: AnyOptimWrapper | None,
    cfg: EpochLoopConfig | IterLoopConfig | None,
) -> TrainLoop | None:
    """The train loop ``train_cfg`` describes; None when a part training needs is not configured."""
    if cfg is None or loader is None or optim_wrapper is None:
        return None
    if isinstance(cfg, EpochLoopConfig):
        return EpochBasedTrainLoop(host, loader, optim_wrapper, cfg)
    return IterBasedTrainLoop(host, loader, optim_wrapper, cfg)


class StageEvents(NamedTuple):
    """The hook events of one evaluation stage (val or test), in the order the loop calls them."""

    before: Callable[[RunView], None]
    before_epoch: Callable[[RunView], None]
    before_iter: Callable[[RunView, int, Any], None]
    after_iter: Callable[[RunView, int, Any, Any], None]
    after_epoch: Callable[[RunView, dict[str, float]], None]
    after: Callable[[RunView], None]


class _EvalLoop:
    stage = "val"

    def __init__(self, host: LoopHost, dataloader: Any, evaluator: Evaluator, fp16: bool = False) -> None:
        self.host = host
        self.dataloader = dataloader
        self.evaluator = evaluator
        self.fp16 = fp16

    def events(self, hooks: HookList) -> StageEvents:
        raise NotImplementedError

    def run(self) -> dict[str, float]:
        host = self.host
        events = self.events(host.hooks)
        predict = predict_step_for(host.model, host.data_preprocessor, self.stage)
        events.before(host)
        events.before_epoch(host)
        was_training = host.model.training
        host.model.eval()
        start_pass(self.dataloader, host.seed, 0)
        sampler = getattr(self.dataloader, "sampler", None)
        sharded = isinstance(sampler, DefaultSampler) and sampler.world_size > 1
        if isinstance(sampler, DefaultSampler) and sharded:
            sampler.pad(False)  # each sample evaluated once, on one rank
        autocast = torch.autocast(host.device.type, dtype=torch.float16, enabled=self.fp16)
        state = host.state
        try:
            with torch.no_grad(), autocast, gathered(host.model, host.cfg):
                batches = guarded(self.dataloader, f"{self.stage}_dataloader", state=state)
                for batch_idx, data_batch in enumerate(batches):
                    # A stop (SIGTERM) abandons the pass at once: the training state is saved as it
                    # was before this pass, and a resumed run validates again. Sharded over several
                    # ranks the pass ends first (the shards differ in length, so the ranks cannot vote
                    # per batch; they vote once training resumes).
                    if state.stop_signal is not None and not sharded:
                        raise TrainingStopped(state.stop_signal)
                    events.before_iter(host, batch_idx, data_batch)
                    outputs = predict(data_batch)
                    self.evaluator.process(data_samples=outputs, data_batch=data_batch)
                    events.after_iter(host, batch_idx, data_batch, outputs)
        finally:
            host.model.train(was_training)
        size = len(self.dataloader.dataset)
        if sharded:  # every rank's results (another sampler gives every rank the whole dataset)
            gather_results(self.evaluator, size)
        metrics = self.evaluator.evaluate(size)
        self.record(metrics)
        events.after_epoch(host, metrics)
        events.after(host)
        return metrics

    def record(self, metrics: dict[str, float]) -> None:
        """Keep the metrics in the run state (validation only)."""


class ValLoop(_EvalLoop):
    """Predict every validation batch, feed the evaluator, compute the metrics."""

    stage = "val"

    def events(self, hooks: HookList) -> StageEvents:
        return StageEvents(
            hooks.before_val,
            hooks.before_val_epoch,
            hooks.before_val_iter,
            hooks.after_val_iter,
            hooks.after_val_epoch,
            hooks.after_val,
        )

    def record(self, metrics: dict[str, float]) -> None:
        self.host.state.record_metrics(metrics)


class TestLoop(_EvalLoop):
    """Predict every test batch, feed the evaluator, compute the metrics."""

    __test__ = False  # not a pytest test class
    stage = "test"

    def events(self, hooks: HookList) -> StageEvents:
        return StageEvents(
            hooks.before_test,
            hooks.before_test_epoch,
            hooks.before_test_iter,
            hooks.after_test_iter,
            hooks.after_test_epoch,
            hooks.after_test,
        )
