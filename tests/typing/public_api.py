"""Type-checked by mypy and pyright (``.ci/run``), never run: pins the public types of typedrunner's API.

pyright (basic mode, ``[tool.pyright]`` in pyproject.toml) is what VS Code's Pylance runs: a Python
config that type-checks here gets no false errors in the editor, and its completion offers the
schema's fields with their types.

Each line that MUST fail type-checking carries both tools' expectation, ``# type: ignore[code]``
(mypy) and ``# pyright: ignore[rule]``: mypy's ``warn_unused_ignores`` and pyright's
``reportUnnecessaryTypeIgnoreComment`` fail the build if the line starts to type-check in either,
and each reads only its own comment, so each tool must report the error itself.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn
from typing_extensions import assert_type

from typedrunner import Lazy, Runner, RunnerConfig, lazy
from typedrunner.config import (
    Adam,
    CheckpointHook,
    DataLoader,
    DefaultHooks,
    DefaultSampler,
    EpochBasedTrainLoop,
    IterBasedTrainLoop,
    MultiStepLR,
    OptimWrapper,
    TrainLoop,
    TrainLoopConfig,
    ValLoop,
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


class Points(torch.utils.data.Dataset[torch.Tensor]):
    def __init__(self, size: int = 4) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.zeros(2)


class Acc(BaseMetric):
    def process(self, data_batch: Any, data_samples: Any) -> None:
        self.results.append(1)

    def compute_metrics(self, results: list[Any]) -> dict[str, float]:
        return {"acc": float(len(results))}


# lazy(...) is typed by the target's signature and returns Lazy[target].
assert_type(lazy(Net, layers=3, activation="silu"), Lazy[Net])
assert_type(lazy(Net, layers=3).build(), Net)
lazy(Net, layerz=3)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
lazy(Net, layers="three")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
lazy(Net, activation="gelu")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]

# Typed configs build precise torch types.
params = [nn.Parameter(torch.zeros(1))]
assert_type(Adam(lr=1e-3).build(params), torch.optim.Adam)
assert_type(MultiStepLR(milestones=[4, 8]).build(Adam().build(params)), torch.optim.lr_scheduler.LRScheduler)
Adam(lr="fast")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
TrainLoop(max_epoch=3)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]

# The two kinds of train loop are a tagged union: each has its own length field, neither optional.
assert_type(TrainLoop(max_epochs=3), EpochBasedTrainLoop)
assert_type(TrainLoop(by_epoch=False, max_iters=30), IterBasedTrainLoop)
assert_type(TrainLoop(max_epochs=3).max_epochs, int)
_ = TrainLoop(max_epochs=3).max_iters  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]
loop_cfg: TrainLoopConfig = TrainLoop(by_epoch=False, max_iters=30)


# A hook sees the run through RunView: typed counters, no access to the Runner's internals.
class Tick(Hook):
    priority = Priority.LOW

    def after_train_iter(self, runner: RunView, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        assert_type(runner.iter, int)
        runner.request_stop()
        _ = runner.state  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue]


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

# Config constructors: every field with a default may be left out (no "Arguments missing" in either
# tool), each field keeps its type, and a misspelt or mistyped field is an error in both.
loader = DataLoader(dataset=lazy(Points, size=8), sampler=DefaultSampler(shuffle=True), batch_size=64)
assert_type(loader.batch_size, int)
assert_type(loader.prefetch_factor, int | None)
hooks = DefaultHooks(checkpoint=CheckpointHook(interval=1, max_keep_ckpts=3))
assert_type(Adam().lr, float)
assert_type(ValLoop(), ValLoop)
DataLoader(dataset=lazy(Points), batch_sise=64)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
DataLoader(dataset=lazy(Points), batch_size="64")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
Adam(lrr=0.1)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
MultiStepLR(milestonez=[4, 8])  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
CheckpointHook(max_keep_ckpt=3)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
CheckpointHook(max_keep_ckpts="3")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
RunnerConfig(model=lazy(Net), train_cfgg=TrainLoop(max_epochs=2))  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
