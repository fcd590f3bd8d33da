"""Small fixtures for tests (typedrunner's and users'): a toy model, dataset and metric, a recording hook.

``toy_config(tmp_path)`` is a complete, fast ``RunnerConfig`` (a few hundred samples, two epochs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from typedrunner.config import (
    SGD,
    DataLoader,
    DefaultSampler,
    Evaluator,
    OptimWrapper,
    Randomness,
    RunnerConfig,
    TrainLoop,
    ValLoop,
)
from typedrunner.parts.evaluator import BaseMetric
from typedrunner.parts.hooks.base import Hook, RunView
from typedrunner.parts.model import BaseModel
from typedrunner.registry.lazy import lazy

__all__ = [
    "EpochToMetric",
    "Interrupt",
    "Interrupted",
    "RecordingHook",
    "ScriptedMetric",
    "ToyDataset",
    "ToyMetric",
    "ToyModel",
    "toy_config",
]


class ToyDataset(Dataset[tuple[Tensor, Tensor]]):
    """``size`` points in ``dim`` dimensions, labelled by the sign of their first coordinate."""

    def __init__(self, size: int = 64, dim: int = 4, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.data = torch.randn(size, dim, generator=generator)
        self.labels = (self.data[:, 0] > 0).long()

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.data[index], self.labels[index]

    def __len__(self) -> int:
        return len(self.data)


class ToyModel(BaseModel):
    """A linear (or one-hidden-layer) classifier following the data-flow contract."""

    def __init__(self, dim: int = 4, hidden: int = 0, activation: Literal["relu", "tanh"] = "relu") -> None:
        super().__init__()
        act: nn.Module = nn.ReLU() if activation == "relu" else nn.Tanh()
        self.net = nn.Sequential(nn.Linear(dim, hidden), act, nn.Linear(hidden, 2)) if hidden else nn.Linear(dim, 2)

    def forward(self, data: Tensor, labels: Tensor, mode: str = "tensor") -> Any:
        logits = self.net(data)
        if mode == "loss":
            return {"loss": F.cross_entropy(logits, labels)}
        if mode == "predict":
            return logits.softmax(dim=1), labels
        return logits


class ToyMetric(BaseMetric):
    """Accuracy in percent, as the seed's."""

    def process(self, data_batch: Any, data_samples: Any) -> None:
        scores, labels = data_samples
        self.results.append((len(labels), int((scores.argmax(dim=1) == labels).sum())))

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        total = sum(n for n, _ in results)
        return {"accuracy": 100.0 * sum(c for _, c in results) / max(total, 1)}


class RecordingHook(Hook):
    """Records every event it receives, in order, as ``(event, epoch, iter)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def names(self) -> list[str]:
        """The events received, in order."""
        return [event for event, _, _ in self.calls]

    def before_run(self, runner: RunView) -> None:
        self.calls.append(("before_run", runner.epoch, runner.iter))

    def after_run(self, runner: RunView) -> None:
        self.calls.append(("after_run", runner.epoch, runner.iter))

    def before_train(self, runner: RunView) -> None:
        self.calls.append(("before_train", runner.epoch, runner.iter))

    def after_train(self, runner: RunView) -> None:
        self.calls.append(("after_train", runner.epoch, runner.iter))

    def before_train_epoch(self, runner: RunView) -> None:
        self.calls.append(("before_train_epoch", runner.epoch, runner.iter))

    def after_train_epoch(self, runner: RunView) -> None:
        self.calls.append(("after_train_epoch", runner.epoch, runner.iter))

    def before_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None:
        self.calls.append(("before_train_iter", runner.epoch, runner.iter))

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        self.calls.append(("after_train_iter", runner.epoch, runner.iter))

    def before_val(self, runner: RunView) -> None:
        self.calls.append(("before_val", runner.epoch, runner.iter))

    def after_val(self, runner: RunView) -> None:
        self.calls.append(("after_val", runner.epoch, runner.iter))

    def before_val_epoch(self, runner: RunView) -> None:
        self.calls.append(("before_val_epoch", runner.epoch, runner.iter))

    def after_val_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self.calls.append(("after_val_epoch", runner.epoch, runner.iter))

    def before_val_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None:
        self.calls.append(("before_val_iter", runner.epoch, runner.iter))

    def after_val_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self.calls.append(("after_val_iter", runner.epoch, runner.iter))

    def before_test(self, runner: RunView) -> None:
        self.calls.append(("before_test", runner.epoch, runner.iter))

    def after_test(self, runner: RunView) -> None:
        self.calls.append(("after_test", runner.epoch, runner.iter))

    def before_test_epoch(self, runner: RunView) -> None:
        self.calls.append(("before_test_epoch", runner.epoch, runner.iter))

    def after_test_epoch(self, runner: RunView, metrics: Mapping[str, float] | None = None) -> None:
        self.calls.append(("after_test_epoch", runner.epoch, runner.iter))

    def before_test_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None) -> None:
        self.calls.append(("before_test_iter", runner.epoch, runner.iter))

    def after_test_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self.calls.append(("after_test_iter", runner.epoch, runner.iter))

    def before_save_checkpoint(self, runner: RunView, checkpoint: dict[str, Any]) -> None:
        self.calls.append(("before_save_checkpoint", runner.epoch, runner.iter))

    def after_load_checkpoint(self, runner: RunView, checkpoint: dict[str, Any]) -> None:
        self.calls.append(("after_load_checkpoint", runner.epoch, runner.iter))


def toy_config(work_dir: str | Path, max_epochs: int = 2, seed: int = 0, **overrides: Any) -> RunnerConfig:
    """A complete, fast config on the toy parts: 64 train / 32 val samples, batch 16."""
    values: dict[str, Any] = dict(
        model=lazy(ToyModel, dim=4, hidden=8),
        work_dir=str(work_dir),
        train_dataloader=DataLoader(
            dataset=lazy(ToyDataset, size=64, seed=0), sampler=DefaultSampler(shuffle=True), batch_size=16
        ),
        val_dataloader=DataLoader(
            dataset=lazy(ToyDataset, size=32, seed=1), sampler=DefaultSampler(shuffle=False), batch_size=32
        ),
        train_cfg=TrainLoop(max_epochs=max_epochs, val_begin=1, val_interval=1),
        val_cfg=ValLoop(),
        val_evaluator=Evaluator(metrics=[lazy(ToyMetric)]),
        optim_wrapper=OptimWrapper(optimizer=SGD(lr=0.1)),
        randomness=Randomness(seed=seed),
    )
    values.update(overrides)
    return RunnerConfig.model_validate(values)


def as_mapping(cfg: RunnerConfig) -> Mapping[str, Any]:
    """The config as plain data (what a YAML file holding it would say)."""
    return cfg.model_dump(mode="json")


class Interrupted(Exception):
    """Raised by :class:`Interrupt`: a stand-in for a crash at a chosen point of training."""


class Interrupt(Hook):
    """Raises ``Interrupted`` once ``epochs`` epochs or ``iters`` iterations are done. Priority
    LOWEST: the CheckpointHook (VERY_LOW) has already saved that point, as before a real crash."""

    priority = "LOWEST"

    def __init__(self, *, epochs: int | None = None, iters: int | None = None) -> None:
        self.epochs = epochs
        self.iters = iters

    def after_train_epoch(self, runner: RunView) -> None:
        if self.epochs is not None and runner.epoch + 1 == self.epochs:
            raise Interrupted(f"after epoch {self.epochs}")

    def after_train_iter(
        self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Mapping[str, Tensor] | None = None
    ) -> None:
        if self.iters is not None and runner.iter + 1 == self.iters:
            raise Interrupted(f"after iteration {self.iters}")


class ScriptedMetric(BaseMetric):
    """``{key: values[epoch - 1]}`` for the validation after epoch ``epoch``: a score the test
    chooses (``EpochToMetric`` tells it the epoch; the contract probe sees ``values[0]``)."""

    def __init__(self, key: str = "accuracy", values: Sequence[float] = ()) -> None:
        super().__init__()
        self.key = key
        self.values = list(values)
        self.epoch = 0

    def process(self, data_batch: Any, data_samples: Any) -> None:
        self.results.append(1)

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return {self.key: self.values[max(self.epoch - 1, 0)]}


class EpochToMetric(Hook):
    """Tells each :class:`ScriptedMetric` which epoch is being validated."""

    priority = "HIGHEST"

    def before_val_epoch(self, runner: RunView) -> None:
        if runner.val_evaluator is not None:
            for metric in runner.val_evaluator.metrics:
                if isinstance(metric, ScriptedMetric):
                    metric.epoch = runner.epoch
