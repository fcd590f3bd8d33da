"""Type-checked by mypy (``.ci/run``), never run: pins the public types of typedrunner's API.

Each ``# type: ignore[code]`` marks a line that MUST fail type-checking; mypy's
``warn_unused_ignores`` fails the build if one of them starts to type-check.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from typing_extensions import assert_type

from typedrunner import Lazy, Runner, RunnerConfig, lazy
from typedrunner.config import (
    Adam,
    EpochBasedTrainLoop,
    IterBasedTrainLoop,
    MultiStepLR,
    OptimWrapper,
    TrainLoop,
    TrainLoopConfig,
)
from typedrunner.evaluator import BaseMetric
from typedrunner.hooks import Hook, Priority, RunView
from typedrunner.model import BaseModel
from typedrunner.registry import MODELS


class Net(BaseModel):
    def __init__(self, layers: int = 2, activation: Literal["relu", "silu"] = "relu") -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, data: torch.Tensor, labels: torch.Tensor, mode: str = "tensor") -> Any:
        return self.fc(data)


class Acc(BaseMetric):
    def process(self, data_batch: Any, data_samples: Any) -> None:
        self.results.append(1)

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return {"acc": float(len(results))}


# lazy(...) is typed by the target's signature and returns Lazy[target].
assert_type(lazy(Net, layers=3, activation="silu"), Lazy[Net])
assert_type(lazy(Net, layers=3).build(), Net)
lazy(Net, layerz=3)  # type: ignore[call-arg]
lazy(Net, layers="three")  # type: ignore[arg-type]
lazy(Net, activation="gelu")  # type: ignore[arg-type]

# Typed configs build precise torch types.
params = [nn.Parameter(torch.zeros(1))]
assert_type(Adam(lr=1e-3).build(params), torch.optim.Adam)
assert_type(MultiStepLR(milestones=[4, 8]).build(Adam().build(params)), torch.optim.lr_scheduler.LRScheduler)
Adam(lr="fast")  # type: ignore[arg-type]
TrainLoop(max_epoch=3)  # type: ignore[call-overload]

# The two kinds of train loop are a tagged union: each has its own length field, neither optional.
assert_type(TrainLoop(max_epochs=3), EpochBasedTrainLoop)
assert_type(TrainLoop(by_epoch=False, max_iters=30), IterBasedTrainLoop)
assert_type(TrainLoop(max_epochs=3).max_epochs, int)
_ = TrainLoop(max_epochs=3).max_iters  # type: ignore[attr-defined]
loop_cfg: TrainLoopConfig = TrainLoop(by_epoch=False, max_iters=30)


# A hook sees the run through RunView: typed counters, no access to the Runner's internals.
class Tick(Hook):
    priority = Priority.LOW

    def after_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        assert_type(runner.iter, int)
        runner.request_stop()
        _ = runner.state  # type: ignore[attr-defined]


cfg = RunnerConfig(
    model=lazy(Net, layers=2),
    train_cfg=TrainLoop(max_epochs=2),
    optim_wrapper=OptimWrapper(optimizer=Adam(lr=1e-3)),
)
assert_type(cfg, RunnerConfig)
assert_type(RunnerConfig.from_dict({"model": {"type": "Net"}}), RunnerConfig)
runner = Runner(cfg)
assert_type(runner.train(), nn.Module)
assert_type(runner.val(), dict[str, float])
assert_type(MODELS.register_module()(Net), type[Net])
assert_type(Acc().evaluate(1), dict[str, float])
